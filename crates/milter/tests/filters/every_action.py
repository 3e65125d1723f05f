#!/usr/bin/python3
"""A milter written for Postern's tests with Debian's pymilter (libmilter
underneath): it takes every action the protocol has, chosen by the
message, and reports what it saw in headers it adds.

  every_action.py SOCKET       (unix:/path or inet:port@127.0.0.1)

  sender with "reject-mail"    MAIL rejected (550 5.7.1 Command rejected)
  recipient with "tempfail"    that RCPT temp-failed
  recipient with "custom"      that RCPT gets a two-line 550 reply
  Subject "discard"            discarded at end of message
  unknown command XYZZY        502 5.5.1 Nothing happens
  the EICAR test string        554 5.7.1 virus found: Eicar-Test-Signature
  otherwise, at end of message:
    X-Seen: connect=<host> <addr> helo=<name> from=<sender> rcpts=<n>
            headers=<n> body=<bytes> daemon=<{daemon_name}> msg=<{msg_id}>
    inserted first: X-First: yes
    Subject changed to "[filtered] <old>"
    the 2nd "X-Drop" header deleted
    recipient added <added@example.org>, <gone@example.org> deleted
    sender changed to <filter@example.org>
    body replaced by "replaced body\r\n" when the body says "replace me"
    quarantined when the Subject says "quarantine"
"""

import os
import sys

import Milter


class EveryAction(Milter.Base):
    def __init__(self):
        self.rcpts = 0
        self.headers = 0
        self.text = b""
        self.subject = ""
        self.sender = ""

    def connect(self, hostname, family, hostaddr):
        self.where = f"{hostname} {hostaddr[0] if hostaddr else '?'}"
        self.daemon = self.getsymval("{daemon_name}")
        return Milter.CONTINUE

    def hello(self, name):
        self.helo = name
        return Milter.CONTINUE

    def envfrom(self, sender, *params):
        self.rcpts = 0
        self.headers = 0
        self.text = b""
        self.sender = sender
        self.params = params
        if "reject-mail" in sender:
            return Milter.REJECT
        return Milter.CONTINUE

    def envrcpt(self, rcpt, *params):
        if "tempfail" in rcpt:
            return Milter.TEMPFAIL
        if "custom" in rcpt:
            self.setreply("550", "5.7.1", "first line", "second line")
            return Milter.REJECT
        self.rcpts += 1
        return Milter.CONTINUE

    def header(self, name, value):
        self.headers += 1
        if name.lower() == "subject":
            self.subject = value
        return Milter.CONTINUE

    def unknown(self, cmd):
        if "XYZZY" in cmd:
            self.setreply("502", "5.5.1", "Nothing happens")
            return Milter.REJECT
        return Milter.CONTINUE

    def eoh(self):
        return Milter.CONTINUE

    def body(self, chunk):
        self.text += chunk
        return Milter.CONTINUE

    def eom(self):
        if self.subject == "discard":
            return Milter.DISCARD
        # What clamav-milter does with the EICAR test file (its virus
        # database cannot be fetched here).
        if b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE" in self.text:
            self.setreply("554", "5.7.1", "virus found: Eicar-Test-Signature")
            return Milter.REJECT
        msg_id = self.getsymval("{msg_id}")
        self.addheader("X-Seen", f"connect={self.where} helo={self.helo} from={self.sender} "
                       f"rcpts={self.rcpts} headers={self.headers} body={len(self.text)} "
                       f"daemon={self.daemon} msg={msg_id}")
        self.addheader("X-First", "yes", 0)
        self.chgheader("Subject", 1, f"[filtered] {self.subject}")
        self.chgheader("X-Drop", 2, "")
        self.addrcpt("<added@example.org>")
        self.delrcpt("<gone@example.org>")
        self.chgfrom("<filter@example.org>")
        if b"replace me" in self.text:
            self.replacebody(b"replaced body\r\n")
        if "quarantine" in self.subject:
            self.quarantine("held by the test")
        return Milter.ACCEPT

    def close(self):
        return Milter.CONTINUE


def main():
    # The socket must be reachable by Postern's FrontUser (the tests'
    # daemon runs its fronts as another user than this filter's).
    os.umask(0)
    Milter.factory = EveryAction
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.CHGBODY | Milter.ADDRCPT
                     | Milter.DELRCPT | Milter.CHGFROM | Milter.QUARANTINE)
    Milter.runmilter("every_action", sys.argv[1], 60)


if __name__ == "__main__":
    main()

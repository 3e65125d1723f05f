//! Never an open relay: every classic trick, tried from a client outside
//! the relay networks (in a network namespace of its own), with and
//! without SMART_HOST, is refused with sendmail's reply; local users are
//! still accepted and unknown ones refused at RCPT; the queue records the
//! client's address as master saw it; a client cannot hold more than its
//! share of connections. From loopback, which may relay, a quoted local
//! part still never reaches the smart host.

mod common;

use std::net::SocketAddr;

use common::WAIT;
use postern_testkit::{
    ensure_test_users, free_port, running_as_root, wait_for_maildir, DaemonBuilder, NetNs, Sink,
    SmtpConversation,
};

/// Runs RCPT for each of `rcpts` from inside `ns` (Python's smtplib,
/// commands sent raw so nothing rewrites the addresses); returns each
/// reply as `code text`.
fn rcpt_replies(ns: &NetNs, addr: SocketAddr, rcpts: &[&str]) -> Vec<String> {
    const SCRIPT: &str = r#"
import smtplib, sys
host, port, rcpts = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
s = smtplib.SMTP(host, port, local_hostname="client.example", timeout=30)
s.ehlo("client.example")
for r in rcpts:
    s.docmd("MAIL FROM:<attacker@example.net>")
    code, text = s.docmd("RCPT TO:" + r)
    print(code, text.decode().replace("\n", " "))
    s.docmd("RSET")
s.quit()
"#;
    let port = addr.port().to_string();
    let host = addr.ip().to_string();
    let mut args = vec!["-c", SCRIPT, &host, &port];
    args.extend_from_slice(rcpts);
    let out = ns.run("python3", &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A daemon listening on the namespace link (first) and on loopback.
fn daemon(ns: &NetNs, sink: &Sink, extra: &[&str]) -> postern_testkit::Daemon {
    ensure_test_users();
    let mut b = DaemonBuilder::new(postern_testkit::binary("posternd"))
        .config_line(&format!(
            "O DaemonPortOptions=Port={}, Addr={}, Name=MTA",
            free_port(),
            ns.host_ip()
        ))
        .config_line(&format!(
            "O DaemonPortOptions=Port={}, Addr=127.0.0.1, Name=LOCAL",
            free_port()
        ))
        .table(
            "mailertable",
            format!("sink.test esmtp:[127.0.0.1]:{}\n", sink.addr().port()),
        )
        .config_line("O LogLevel=9");
    for line in extra {
        b = b.config_line(line);
    }
    b.start()
}

/// The relay tricks of REFERENCE §4.3 and issue 8, each with sendmail's
/// refusal, and the local recipients an outsider may use.
const TRICKS: &[(&str, &str)] = &[
    (
        "<victim@example.com>",
        "550 5.7.1 <victim@example.com>... Relaying denied",
    ),
    (
        "<Victim@EXAMPLE.COM>",
        "550 5.7.1 <Victim@EXAMPLE.COM>... Relaying denied",
    ),
    (
        "<\"victim@example.com\">",
        "550 5.7.1 <\"victim@example.com\">... Relaying denied",
    ),
    (
        "<\"victim@example.com\"@mx.test>",
        "550 5.7.1 <\"victim@example.com\"@mx.test>... Relaying denied",
    ),
    (
        "<victim%example.com@mx.test>",
        "550 5.7.1 <victim%example.com@mx.test>... Relaying denied",
    ),
    (
        "<victim%example.com@MX.TEST>",
        "550 5.7.1 <victim%example.com@MX.TEST>... Relaying denied",
    ),
    (
        "<example.com!victim@mx.test>",
        "550 5.7.1 <example.com!victim@mx.test>... Relaying denied",
    ),
    (
        "<\"example.com!victim\">",
        "550 5.7.1 <\"example.com!victim\">... Relaying denied",
    ),
    (
        "<@mx.test:victim@example.com>",
        "550 5.7.1 <victim@example.com>... Relaying denied",
    ),
    (
        "<@mx.test,@other.test:victim@example.com>",
        "550 5.7.1 <victim@example.com>... Relaying denied",
    ),
    (
        "<victim@[192.0.2.9]>",
        "550 5.7.1 <victim@[192.0.2.9]>... Relaying denied",
    ),
    (
        "<victim@[127.0.0.1]>",
        "550 5.7.1 <victim@[127.0.0.1]>... Relaying denied",
    ),
    (
        "<victim@[IPv6:::1]>",
        "550 5.7.1 <victim@[IPv6:::1]>... Relaying denied",
    ),
    (
        "<victim@sink.test>",
        "550 5.7.1 <victim@sink.test>... Relaying denied",
    ),
];

/// What an outsider may still do.
const LOCAL: &[(&str, &str)] = &[
    ("<root@mx.test>", "250 2.1.5 <root@mx.test>... Recipient ok"),
    ("<ROOT@MX.TEST>", "250 2.1.5 <ROOT@MX.TEST>... Recipient ok"),
    ("<postmaster>", "250 2.1.5 <postmaster>... Recipient ok"),
    (
        "<nosuchuser@mx.test>",
        "550 5.1.1 <nosuchuser@mx.test>... User unknown",
    ),
];

fn check_tricks(ns: &NetNs, daemon: &postern_testkit::Daemon) {
    let all: Vec<&(&str, &str)> = TRICKS.iter().chain(LOCAL).collect();
    let rcpts: Vec<&str> = all.iter().map(|(r, _)| *r).collect();
    let replies = rcpt_replies(ns, daemon.smtp_addr(), &rcpts);
    for ((rcpt, want), got) in all.iter().zip(&replies) {
        assert_eq!(got, want, "RCPT TO:{rcpt}");
    }
    assert_eq!(replies.len(), all.len());
    // A trailing dot is not an address at all.
    let dot = rcpt_replies(ns, daemon.smtp_addr(), &["<victim@example.com.>"]);
    assert!(
        dot[0].starts_with("553 ") || dot[0].starts_with("501 "),
        "{dot:?}"
    );
}

#[test]
fn every_relay_trick_from_outside_is_refused_without_smart_host() {
    if !running_as_root() {
        eprintln!("skipped: network namespaces need root (CI runs as root)");
        return;
    }
    let ns = NetNs::create();
    let sink = Sink::start();
    let daemon = daemon(&ns, &sink, &[]);
    check_tricks(&ns, &daemon);
    assert!(sink.connections() == 0);
}

#[test]
fn every_relay_trick_from_outside_is_refused_with_smart_host() {
    if !running_as_root() {
        eprintln!("skipped: network namespaces need root (CI runs as root)");
        return;
    }
    let ns = NetNs::create();
    let sink = Sink::start();
    let smart = format!(
        "define(`SMART_HOST', `esmtp:[127.0.0.1]:{}')",
        sink.addr().port()
    );
    let daemon = daemon(&ns, &sink, &[&smart]);
    check_tricks(&ns, &daemon);

    // A whole message from outside: only the local recipient is taken,
    // and the queue records the client as master saw it.
    const SEND: &str = r#"
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), local_hostname="forged.example", timeout=30)
s.ehlo("forged.example")
s.docmd("MAIL FROM:<attacker@example.net>")
for r in ("<\"victim@example.com\">", "<root@mx.test>"):
    print(*s.docmd("RCPT TO:" + r))
code, text = s.data(b"Subject: from outside\r\n\r\nhello\r\n")
print(code, text.decode())
s.quit()
"#;
    let host = daemon.smtp_addr().ip().to_string();
    let port = daemon.smtp_addr().port().to_string();
    let out = ns.run("python3", &["-c", SEND, &host, &port]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("250 2.0.0 "), "{text}");
    let from = daemon.wait_for_log(": from=<attacker@example.net>", WAIT);
    assert!(
        from.ends_with(&format!(", relay=[{}]", ns.ns_ip())),
        "the client's address is master's: {from}"
    );
    assert!(from.contains("nrcpts=1"), "{from}");
    wait_for_maildir(&daemon.mail_dir().join("root/Maildir"), 1, WAIT);
    daemon.wait_for_log("to=<root@mx.test>", WAIT);
    assert!(sink.connections() == 0, "the smart host got mail");
}

#[test]
fn from_loopback_a_quoted_local_part_never_reaches_the_smart_host() {
    // Issue 8's first finding: `RCPT TO:<"victim@example.com">` was taken
    // as a local user and then routed by its last `@` to the SMART_HOST.
    ensure_test_users();
    let sink = Sink::start();
    let smart = format!(
        "define(`SMART_HOST', `esmtp:[127.0.0.1]:{}')",
        sink.addr().port()
    );
    let daemon = common::daemon_with_sink(&sink, &[&smart]);
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    c.read_reply();
    c.cmd("EHLO localhost", "250");
    c.cmd("MAIL FROM:<a@example.net>", "250");
    for rcpt in [
        "<\"victim@example.com\">",
        "<\"victim@example.com\"@mx.test>",
        "<victim%example.com@mx.test>",
    ] {
        c.send_line(&format!("RCPT TO:{rcpt}"));
        assert_eq!(
            c.read_reply(),
            format!("550 5.1.1 {rcpt}... User unknown"),
            "{rcpt}"
        );
    }
    c.cmd("QUIT", "221");
    assert!(sink.connections() == 0);
}

#[test]
fn unknown_local_users_get_no_mailbox() {
    ensure_test_users();
    let sink = Sink::start();
    let daemon = common::daemon_with_sink(&sink, &[]);
    let mut c = SmtpConversation::connect(daemon.smtp_addr());
    c.read_reply();
    c.cmd("EHLO localhost", "250");
    c.cmd("MAIL FROM:<a@example.net>", "250");
    for user in ["alice", "bob", "carol", "dave", "eve", "mallory"] {
        c.send_line(&format!("RCPT TO:<{user}@mx.test>"));
        assert_eq!(
            c.read_reply(),
            format!("550 5.1.1 <{user}@mx.test>... User unknown")
        );
    }
    c.cmd("RCPT TO:<root@mx.test>", "250");
    c.cmd("DATA", "354");
    c.send_line("Subject: x\r\n\r\nbody\r\n.");
    assert!(c.read_reply().starts_with("250 2.0.0 "));
    c.cmd("QUIT", "221");
    wait_for_maildir(&daemon.mail_dir().join("root/Maildir"), 1, WAIT);
    let boxes: Vec<String> = std::fs::read_dir(daemon.mail_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(boxes, ["root"], "mailboxes for unknown users");
}

#[test]
fn a_client_may_hold_only_its_share_of_connections() {
    if !running_as_root() {
        eprintln!("skipped: network namespaces need root (CI runs as root)");
        return;
    }
    let ns = NetNs::create();
    let sink = Sink::start();
    let d = DaemonBuilder::new(postern_testkit::binary("posternd"));
    ensure_test_users();
    let daemon = d
        .config_line(&format!(
            "O DaemonPortOptions=Port={}, Addr={}, Name=MTA",
            free_port(),
            ns.host_ip()
        ))
        .table("access", "ClientConn: 3\n")
        .start();
    // Three idle sessions from the namespace, then a fourth.
    const HOLD: &str = r#"
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
held = []
for i in range(4):
    s = socket.create_connection((host, port), timeout=30)
    line = s.makefile("rb").readline().decode().strip()
    print(line)
    held.append(s)
"#;
    let host = daemon.smtp_addr().ip().to_string();
    let port = daemon.smtp_addr().port().to_string();
    let out = ns.run("python3", &["-c", HOLD, &host, &port]);
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    for greeting in &lines[..3] {
        assert!(greeting.starts_with("220 mx.test ESMTP "), "{greeting}");
    }
    assert_eq!(lines[3], "421 4.3.2 Too many open connections.");
    daemon.wait_for_log("Too many open connections", WAIT);
    drop(sink);
}

/// Each of `rcpts` asked from this host (loopback): `code text` replies.
fn loopback_replies(addr: SocketAddr, rcpts: &[&str]) -> Vec<String> {
    let mut c = SmtpConversation::connect(addr);
    assert!(c.read_reply().starts_with("220"));
    c.cmd("EHLO client.example", "250");
    let mut out = Vec::new();
    for r in rcpts {
        c.cmd("MAIL FROM:<someone@example.net>", "250");
        c.send_raw(format!("RCPT TO:{r}\r\n").as_bytes());
        out.push(c.read_reply().replace("\r\n", " ").trim_end().to_string());
        c.cmd("RSET", "250");
    }
    out
}

#[test]
fn relay_networks_decide_who_relays_by_address() {
    ensure_test_users();
    let sink = Sink::start();
    let start = |extra: &str| {
        DaemonBuilder::new(postern_testkit::binary("posternd"))
            .table(
                "mailertable",
                format!("sink.test esmtp:[127.0.0.1]:{}\n", sink.addr().port()),
            )
            .config_line(extra)
            .start()
    };
    // Empty: even loopback is an outsider, to foreign domains and with
    // every trick; local users are still accepted.
    let closed = start("O RelayNetworks=");
    let mut rcpts: Vec<&str> = TRICKS.iter().map(|(r, _)| *r).collect();
    rcpts.push("<postmaster@mx.test>");
    let replies = loopback_replies(closed.smtp_addr(), &rcpts);
    for ((rcpt, want), got) in TRICKS.iter().zip(&replies) {
        assert_eq!(got, want, "RCPT TO:{rcpt}");
    }
    assert!(
        replies.last().unwrap().starts_with("250 2.1.5"),
        "{replies:?}"
    );
    // The default lets loopback relay; a network that leaves loopback out
    // does not.
    let open = start("O LogLevel=9");
    let r = loopback_replies(open.smtp_addr(), &["<a@sink.test>"]);
    assert!(r[0].starts_with("250 2.1.5"), "{r:?}");
    let elsewhere = start("O RelayNetworks=192.0.2.0/24, [2001:db8::]/32");
    let r = loopback_replies(elsewhere.smtp_addr(), &["<a@sink.test>"]);
    assert_eq!(r[0], "550 5.7.1 <a@sink.test>... Relaying denied");
}

#[test]
fn a_client_network_listed_in_relay_networks_may_relay() {
    if !running_as_root() {
        eprintln!("skipped: network namespaces need root (CI runs as root)");
        return;
    }
    let ns = NetNs::create();
    let sink = Sink::start();
    let net = format!("O RelayNetworks=127.0.0.0/8,{}/32", ns.ns_ip());
    let daemon = daemon(&ns, &sink, &[&net]);
    let replies = rcpt_replies(&ns, daemon.smtp_addr(), &["<a@sink.test>"]);
    assert!(replies[0].starts_with("250 2.1.5"), "{replies:?}");
}

#[test]
fn relay_domains_and_the_access_map_grant_relaying() {
    ensure_test_users();
    let sink = Sink::start();
    let start = |access: &str| {
        DaemonBuilder::new(postern_testkit::binary("posternd"))
            .table(
                "mailertable",
                format!("sink.test esmtp:[127.0.0.1]:{}\n", sink.addr().port()),
            )
            .table("relay-domains", "partner.example\n")
            .table("access", access)
            .config_line("O RelayNetworks=")
            .start()
    };
    // Loopback is an outsider here: only what the tables grant goes.
    let d = start("To:example.org RELAY\nTo:boss@example.net RELAY\n");
    let replies = loopback_replies(
        d.smtp_addr(),
        &[
            "<a@partner.example>",
            "<a@mail.partner.example>",
            "<x@example.org>",
            "<boss@example.net>",
            "<other@example.net>",
            "<user%evil.example@partner.example>",
            "<a@elsewhere.example>",
        ],
    );
    let codes: Vec<&str> = replies.iter().map(|r| &r[..3]).collect();
    assert_eq!(
        codes,
        ["250", "250", "250", "250", "550", "550", "550"],
        "{replies:#?}"
    );
    assert_eq!(
        replies[4],
        "550 5.7.1 <other@example.net>... Relaying denied"
    );
    // A `Connect:` RELAY entry makes the client a relay client.
    let d = start("Connect:127.0.0.1 RELAY\n");
    let r = loopback_replies(d.smtp_addr(), &["<a@elsewhere.example>"]);
    assert!(r[0].starts_with("250 2.1.5"), "{r:?}");
    // And so does its address in relay-domains.
    drop(d);
    let d = DaemonBuilder::new(postern_testkit::binary("posternd"))
        .table("relay-domains", "127.0.0\n")
        .config_line("O RelayNetworks=")
        .start();
    let r = loopback_replies(d.smtp_addr(), &["<a@elsewhere.example>"]);
    assert!(r[0].starts_with("250 2.1.5"), "{r:?}");
}

/// A daemon on loopback relaying `@sink.test` to `sink`, with this
/// access map and these extra configuration lines.
fn access_daemon(sink: &Sink, access: &str, extra: &[&str]) -> postern_testkit::Daemon {
    let mut b = DaemonBuilder::new(postern_testkit::binary("posternd"))
        .table(
            "mailertable",
            format!("sink.test esmtp:[127.0.0.1]:{}\n", sink.addr().port()),
        )
        .table("access", access);
    for line in extra {
        b = b.config_line(line);
    }
    b.start()
}

#[test]
fn the_access_map_refuses_senders_and_recipients_as_sendmail_does() {
    ensure_test_users();
    let sink = Sink::start();
    let d = access_daemon(
        &sink,
        "From:spammer@example.net REJECT\nFrom:spam.example ERROR:5.7.1:550 Go away\n\
         To:closed.sink.test ERROR:4.2.1:450 Come back later\nTo:nobody@mx.test REJECT\n",
        &[],
    );
    let mut c = SmtpConversation::connect(d.smtp_addr());
    assert!(c.read_reply().starts_with("220"));
    c.cmd("EHLO client.example", "250");
    let r = c.cmd("MAIL FROM:<Spammer@example.net>", "550");
    assert_eq!(
        r.trim_end(),
        "550 5.7.1 <Spammer@example.net>... Access denied"
    );
    let r = c.cmd("MAIL FROM:<x@mail.spam.example>", "550");
    assert_eq!(r.trim_end(), "550 5.7.1 <x@mail.spam.example>... Go away");
    c.cmd("MAIL FROM:<fine@example.net>", "250");
    let r = c.cmd("RCPT TO:<a@closed.sink.test>", "450");
    assert_eq!(
        r.trim_end(),
        "450 4.2.1 <a@closed.sink.test>... Come back later"
    );
    let r = c.cmd("RCPT TO:<nobody@mx.test>", "550");
    assert_eq!(r.trim_end(), "550 5.7.1 <nobody@mx.test>... Access denied");
    c.cmd("RCPT TO:<a@sink.test>", "250");
    c.cmd("QUIT", "221");
}

#[test]
fn discard_accepts_the_message_and_delivers_none_of_it() {
    ensure_test_users();
    let sink = Sink::start();
    let d = access_daemon(
        &sink,
        "From:junk.example DISCARD\nTo:trap@sink.test DISCARD\n",
        &["O RelayNetworks=", "O LogLevel=9"],
    );
    let send = |from: &str, rcpts: &[&str]| {
        let mut c = SmtpConversation::connect(d.smtp_addr());
        assert!(c.read_reply().starts_with("220"));
        c.cmd("EHLO client.example", "250");
        c.cmd(&format!("MAIL FROM:<{from}>"), "250");
        for r in rcpts {
            c.cmd(&format!("RCPT TO:<{r}>"), "250");
        }
        c.cmd("DATA", "354");
        let reply = c.cmd("Subject: discard\r\n\r\nbody\r\n.", "250");
        c.cmd("QUIT", "221");
        reply
    };
    // A discarding recipient is accepted even where relaying is refused,
    // and takes the whole envelope with it, as sendmail's check_rcpt does.
    let r = send(
        "someone@example.net",
        &["trap@sink.test", "postmaster@mx.test"],
    );
    assert!(r.contains("Message accepted for delivery"), "{r}");
    d.wait_for_log("discarded (To:<trap@sink.test>)", WAIT);
    send("x@mail.junk.example", &["postmaster@mx.test"]);
    d.wait_for_log("discarded (From:<x@mail.junk.example>)", WAIT);
    // Nothing waits in the queue, nothing reached the sink.
    let queued = std::fs::read_dir(d.spool_dir().join("queue"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("qf") || name.starts_with("df")
        })
        .count();
    assert_eq!(queued, 0);
    assert!(sink.messages().is_empty());
}

#[test]
fn the_access_map_grants_and_refuses_ipv6_clients_by_prefix() {
    ensure_test_users();
    let sink = Sink::start();
    let start = |access: &str| {
        DaemonBuilder::new(postern_testkit::binary("posternd"))
            .config_line(&format!(
                "O DaemonPortOptions=Port={}, Addr=::1, Family=inet6, Name=MTA",
                free_port()
            ))
            .config_line("O RelayNetworks=")
            .table(
                "mailertable",
                format!("sink.test esmtp:[127.0.0.1]:{}\n", sink.addr().port()),
            )
            .table("access", access)
            .start()
    };
    // ::1 written out by groups is 0:0:0:0:0:0:0:1; a prefix of it.
    let d = start("Connect:IPv6:0:0:0:0:0:0 RELAY\n");
    assert!(d.smtp_addr().is_ipv6(), "{}", d.smtp_addr());
    let r = loopback_replies(d.smtp_addr(), &["<a@sink.test>"]);
    assert!(r[0].starts_with("250 2.1.5"), "{r:?} {:?}", d.log_lines());
    let d = start("Connect:IPv6:0:0:0:0:1 RELAY\nTo:sink.test REJECT\n");
    let r = loopback_replies(d.smtp_addr(), &["<a@sink.test>", "<b@elsewhere.example>"]);
    assert_eq!(
        r,
        [
            "550 5.7.1 <a@sink.test>... Access denied",
            "550 5.7.1 <b@elsewhere.example>... Relaying denied"
        ]
    );
}

#[test]
fn connect_reject_and_error_refuse_every_command_after_a_normal_greeting() {
    ensure_test_users();
    let sink = Sink::start();
    let start = |access: &str| access_daemon(&sink, access, &["O LogLevel=9"]);
    // sendmail's check_relay: the greeting is normal, HELO/EHLO, NOOP,
    // RSET and QUIT work, everything else gets the map's reply.
    let d = start("Connect:127.0.0.1 REJECT\n");
    let mut c = SmtpConversation::connect(d.smtp_addr());
    assert!(c.read_reply().starts_with("220 "));
    c.send_line("EHLO client.example");
    assert_eq!(
        c.read_reply(),
        "250-mx.test Hello localhost [127.0.0.1], pleased to meet you\n250 ENHANCEDSTATUSCODES"
    );
    c.send_line("MAIL FROM:<a@example.net>");
    assert_eq!(c.read_reply(), "550 5.7.1 Access denied");
    c.send_line("VRFY root");
    assert_eq!(c.read_reply(), "550 5.7.1 Access denied");
    c.cmd("NOOP", "250");
    c.cmd("QUIT", "221");
    d.wait_for_log(
        "ruleset=check_relay, arg1=localhost, arg2=127.0.0.1, relay=localhost [127.0.0.1], \
         reject=550 5.7.1 Access denied",
        WAIT,
    );
    let d = start("Connect:127.0.0 ERROR:4.7.1:421 Try later\n");
    let mut c = SmtpConversation::connect(d.smtp_addr());
    c.read_reply();
    c.cmd("HELO client.example", "250");
    c.send_line("MAIL FROM:<a@example.net>");
    assert_eq!(c.read_reply(), "421 4.7.1 Try later");
    // A client the map discards has its mail accepted and thrown away.
    let d = start("Connect:127.0.0.1 DISCARD\n");
    let mut c = SmtpConversation::connect(d.smtp_addr());
    c.read_reply();
    c.cmd("EHLO client.example", "250");
    c.cmd("MAIL FROM:<a@example.net>", "250");
    c.cmd("RCPT TO:<b@sink.test>", "250");
    c.cmd("DATA", "354");
    c.cmd("Subject: x\r\n\r\nbody\r\n.", "250");
    c.cmd("QUIT", "221");
    d.wait_for_log("discarded (Connect:127.0.0.1)", WAIT);
    assert!(sink.messages().is_empty());
}

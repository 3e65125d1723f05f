//! smtp-transcripts.txt: the network sessions under authwarnings and
//! goaway, and `sendmail -bs`.

use super::*;

/// The sessions of a transcript file: `=== A1. …` headers, then `C:`/`S:`
/// lines.
fn sessions(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if let Some(title) = line.strip_prefix("=== ") {
            let id = title.split('.').next().unwrap_or("").to_string();
            out.push((id, Vec::new()));
        } else if line.starts_with("C: ") || line.starts_with("S: ") || line == "C:" {
            if let Some((_, lines)) = out.last_mut() {
                lines.push(line.to_string());
            }
        }
    }
    out
}

/// How many replies the sample's server lines hold (VERB's `050` lines
/// are commentary before a reply, not replies).
fn replies_in(lines: &[String]) -> usize {
    lines
        .iter()
        .filter(|l| {
            let reply = l.strip_prefix("S: ").unwrap_or("");
            reply.as_bytes().get(3) != Some(&b'-') && !reply.starts_with("050 ")
        })
        .count()
}

/// Plays the client's side of `session` against `addr` and returns the
/// transcript as the sample writes it: each client line, then as many
/// server replies as the sample shows there.
fn replay(addr: std::net::SocketAddr, session: &[String]) -> Vec<String> {
    let mut c = SmtpConversation::connect(addr);
    let mut out = Vec::new();
    let mut i = 0;
    let mut server = Vec::new();
    while i < session.len() && session[i].starts_with("S: ") {
        server.push(session[i].clone());
        i += 1;
    }
    for _ in 0..replies_in(&server) {
        push_reply(&mut out, &c.read_reply());
    }
    while i < session.len() {
        let line = session[i].strip_prefix("C: ").unwrap_or("");
        out.push(format!("C: {line}").trim_end().to_string());
        c.send_line(line);
        i += 1;
        let mut server = Vec::new();
        while i < session.len() && session[i].starts_with("S: ") {
            server.push(session[i].clone());
            i += 1;
        }
        for _ in 0..replies_in(&server) {
            push_reply(&mut out, &c.read_reply());
        }
    }
    out
}

fn push_reply(out: &mut Vec<String>, reply: &str) {
    out.extend(reply.lines().map(|l| format!("S: {l}")));
}

/// The sample session `id`, masked.
fn sample_session(all: &[(String, Vec<String>)], id: &str) -> Vec<String> {
    let (_, lines) = all
        .iter()
        .find(|(s, _)| s == id)
        .unwrap_or_else(|| panic!("no session {id} in the sample"));
    lines.iter().map(|l| mask(l.trim_end())).collect()
}

/// Differences in every SMTP session.
pub(super) const SMTP_DIFFERENCES: &[Difference] = &[
    Difference {
        sendmail: "S: 250-SIZE",
        postern: &["S: 250-SIZE 36700160"],
        why: "MaxMessageSize defaults to 35 MiB (sendmail: unlimited), and EHLO says so",
    },
    Difference {
        sendmail: "S: 250-AUTH DIGEST-MD5 CRAM-MD5",
        postern: &[],
        why: "AUTH is offered only once configured (issue 12); sendmail offered it because Cyrus SASL was installed",
    },
    Difference {
        sendmail: "S: 354 End data with <CR><LF>.<CR><LF>",
        postern: &["S: 354 Enter mail, end with \".\" on a line by itself"],
        why: "the text users know from the seed transcripts and the Cookbook (sendmail up to 8.16)",
    },
    Difference {
        sendmail: "S: 214-2.0.0 For more info use \"HELP <topic>\".",
        postern: &["S: 214-2.0.0 For more information, use \"HELP <topic>\"."],
        why: "help texts are Postern's own words",
    },
    Difference {
        sendmail: "S: 214-2.0.0 To report bugs in the implementation see",
        postern: &["S: 214-2.0.0 To report bugs in the implementation, contact your postmaster."],
        why: "help texts are Postern's own words",
    },
    Difference {
        sendmail: "S: 214-2.0.0 \thttp://www.sendmail.org/email-addresses.html",
        postern: &[],
        why: "help texts are Postern's own words",
    },
    Difference {
        sendmail: "S: 214-2.0.0 For local information send email to Postmaster at your site.",
        postern: &[],
        why: "help texts are Postern's own words",
    },
    Difference {
        sendmail: "S: 214-2.0.0 RCPT To:<recipient> [ <parameters> ]",
        postern: &["S: 214-2.0.0 RCPT TO: <recipient> [ <parameters> ]"],
        why: "help texts are Postern's own words",
    },
    Difference {
        sendmail: "S: 214-2.0.0 \tSpecifies the recipient.  Can be used any number of times.",
        postern: &["S: 214-2.0.0 \tSpecify a recipient. Parameters are NOTIFY and ORCPT."],
        why: "help texts are Postern's own words",
    },
    Difference {
        sendmail: "S: 214-2.0.0 \tParameters are ESMTP extensions.  See \"HELP DSN\" for details.",
        postern: &[],
        why: "help texts are Postern's own words",
    },
    Difference {
        sendmail: "S: 050 *",
        postern: &[],
        why: "VERB is accepted but the delivery is not shown to the SMTP client: fronts do not deliver (sendmail -v shows it)",
    },
];

/// `sendmail -bs` only.
pub(super) const BS_DIFFERENCES: &[Difference] = &[Difference {
    sendmail: "S: 250-STARTTLS",
    postern: &[],
    why: "sendmail -bs talks over the caller's own pipe, where STARTTLS protects nothing; it is not offered",
}];

pub(super) fn transcript_daemon(
    privacy: &str,
    sink: &Sink,
    certs: &std::path::Path,
) -> postern_testkit::Daemon {
    mx_example(privacy, 9, Some(sink), Some(certs))
}

/// `sendmail -bs` as root, fed the sample's client lines.
fn replay_bs(config: &std::path::Path, session: &[String]) -> Vec<String> {
    let input: String = session
        .iter()
        .filter_map(|l| l.strip_prefix("C: ").or((l == "C:").then_some("")))
        .map(|l| format!("{l}\r\n"))
        .collect();
    let out = sendmail(config, &["-bs"], &input);
    // Interleave: the replies in order, each after the client line the
    // sample puts before it.
    let replies: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    interleave(session, &replies)
}

/// Puts `replies` (server lines, in order) between the sample's client
/// lines where the sample has its server lines.
fn interleave(session: &[String], replies: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut replies = replies.iter().peekable();
    let mut i = 0;
    while i < session.len() {
        if session[i].starts_with("C:") {
            out.push(session[i].trim_end().to_string());
            i += 1;
            continue;
        }
        let mut expected = Vec::new();
        while i < session.len() && session[i].starts_with("S: ") {
            expected.push(session[i].clone());
            i += 1;
        }
        for _ in 0..replies_in(&expected) {
            for line in replies.by_ref() {
                out.push(format!("S: {line}"));
                if line.as_bytes().get(3) != Some(&b'-') {
                    break;
                }
            }
        }
    }
    out
}

fn smtp_part(part: char, privacy: &str) {
    let certs = make_certs();
    let sink = SinkBehavior::new().start();
    let daemon = transcript_daemon(privacy, &sink, certs.path());
    let all = sessions(&sample("smtp-transcripts.txt"));
    let differences: Vec<&Difference> = SMTP_DIFFERENCES.iter().collect();
    for n in 1..=4 {
        let id = format!("{part}{n}");
        let want = expected(&sample_session(&all, &id), &differences);
        let raw: Vec<String> = all.iter().find(|(s, _)| *s == id).unwrap().1.clone();
        let got: Vec<String> = replay(daemon.smtp_addr(), &raw)
            .iter()
            .map(|l| mask(l))
            .collect();
        assert_same(&format!("session {id}"), &want, &got);
    }
    // The session on standard input, as root.
    if postern_testkit::running_as_root() {
        let id = format!("{part}5");
        let raw: Vec<String> = all.iter().find(|(s, _)| *s == id).unwrap().1.clone();
        let bs: Vec<&Difference> = differences.iter().copied().chain(BS_DIFFERENCES).collect();
        let want = expected(&sample_session(&all, &id), &bs);
        let got: Vec<String> = replay_bs(&daemon.config_path(), &raw)
            .iter()
            .map(|l| mask(l))
            .collect();
        assert_same(&format!("session {id} (sendmail -bs)"), &want, &got);
    }
    sink.wait_for_messages(1, WAIT);
}

#[test]
fn smtp_sessions_under_authwarnings() {
    smtp_part('A', "authwarnings");
}

#[test]
fn smtp_sessions_under_goaway() {
    smtp_part('B', "goaway");
}

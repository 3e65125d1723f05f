//! The SMTP command line parser: the verb table, MAIL and RCPT's
//! `KEYWORD:path params` split, the paths and the ESMTP parameters.
//!
//! Input: one knob byte (the server's parameter policy), then one command
//! line (invalid UTF-8 is replaced, as the session does).
//!
//! Asserts, beyond "does not panic": a parsed command written back in its
//! wire form (`MAIL FROM:<path> SIZE=… BODY=…`, `RCPT TO:<path> NOTIFY=…
//! ORCPT=…`) parses to the same verb, path and parameters; a parsed path
//! carries no control or 8-bit byte; the split pieces lie inside the line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_fuzz::script::Knobs;
use postern_smtp::address::{parse_forward_path, parse_reverse_path, Mailbox, ReversePath};
use postern_smtp::command::{split_command, split_path_arg, Verb};
use postern_smtp::params::{
    parse_mail_params, parse_rcpt_params, MailParams, ParamPolicy, RcptParams,
};
use postern_smtp::xtext;

fuzz_target!(|data: &[u8]| {
    let (knobs, line) = Knobs::split(data, 1);
    let policy = ParamPolicy {
        max_size: if knobs.bit(0, 0) { 1000 } else { 0 },
        dsn: !knobs.bit(0, 1),
        deliver_by_min: (!knobs.bit(0, 2)).then_some(i64::from(knobs.byte(0) >> 4)),
    };
    let line = String::from_utf8_lossy(line);
    let Some(parsed) = parse(&line, &policy) else {
        return;
    };
    let again = parse(&parsed.to_wire(), &policy);
    assert_eq!(
        again.as_ref(),
        Some(&parsed),
        "{:?} written back",
        parsed.to_wire()
    );
});

/// A MAIL or RCPT command, parsed the way the session parses it.
#[derive(Debug, PartialEq)]
enum Parsed {
    Mail(ReversePath, MailParams),
    Rcpt(Mailbox, RcptParams),
}

fn parse(line: &str, policy: &ParamPolicy) -> Option<Parsed> {
    let command = split_command(line)?;
    assert!(command
        .spec
        .name
        .eq_ignore_ascii_case(&line[..command.spec.name.len()]));
    assert!(line.ends_with(command.arg) && !command.arg.starts_with(' '));
    let keyword = match command.spec.verb {
        Verb::Mail => "FROM:",
        Verb::Rcpt => "TO:",
        _ => return None,
    };
    let (path, params) = split_path_arg(command.arg, keyword)?;
    assert!(!path.is_empty() && !params.starts_with(' '));
    assert!(command.arg.contains(path) && command.arg.ends_with(params));
    match command.spec.verb {
        Verb::Mail => {
            let path = parse_reverse_path(path).ok()?;
            check_printable(&path.to_string());
            Some(Parsed::Mail(path, parse_mail_params(params, policy).ok()?))
        }
        _ => {
            let path = parse_forward_path(path).ok()?;
            check_printable(&path.to_string());
            Some(Parsed::Rcpt(path, parse_rcpt_params(params, policy).ok()?))
        }
    }
}

/// A path that parsed is safe to put into a header or a file.
fn check_printable(text: &str) {
    assert!(
        text.bytes().all(|b| (0x20..0x7f).contains(&b)),
        "control or 8-bit byte in {text:?}"
    );
}

impl Parsed {
    /// The command in its wire form, as a client would write it.
    fn to_wire(&self) -> String {
        let mut words = Vec::new();
        match self {
            Parsed::Mail(path, p) => {
                words.push(format!("MAIL FROM:{path}"));
                words.extend(p.size.map(|s| format!("SIZE={s}")));
                words.extend(p.body.map(|b| format!("BODY={}", b.as_str())));
                words.extend(p.ret.map(|r| format!("RET={}", r.as_str())));
                let xtext = |s: &String| xtext::encode(s.as_bytes());
                words.extend(p.envid.as_ref().map(|e| format!("ENVID={}", xtext(e))));
                words.extend(p.auth.as_ref().map(|a| format!("AUTH={}", xtext(a))));
                words.extend(p.by.map(|by| format!("BY={by}")));
            }
            Parsed::Rcpt(path, p) => {
                words.push(format!("RCPT TO:<{path}>"));
                words.extend(p.notify.map(|n| format!("NOTIFY={n}")));
                words.extend(p.orcpt.as_ref().map(|o| format!("ORCPT={}", o.to_xtext())));
            }
        }
        words.join(" ")
    }
}

//! The milter client talking to a filter that answers with arbitrary
//! bytes: negotiation, each stage's answer, end of message's changes.
//!
//! Input: everything the "filter" sends, read by the client as packets,
//! through a whole session (connect, helo, mail, rcpt, data, a header,
//! end of headers, body, end of message, then a second message aborted).
//!
//! Asserts, beyond "does not panic" and "does not hang": a reply the
//! client takes is a 4xx or 5xx SMTP reply; a header change carries a
//! name without colon or spaces and a value whose line breaks are all
//! folds (no header can be smuggled in by a filter).
#![no_main]

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use postern_milter::filter::{ClientAddress, Timeouts, Transport};
use postern_milter::{Filter, Modification, Verdict};

struct Replay<'a> {
    input: &'a [u8],
}

impl Read for Replay<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Replay<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for Replay<'_> {
    fn set_read_timeout(&self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
    fn set_write_timeout(&self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
}

fn check(v: &Verdict) {
    if let Verdict::Reply(text) = v {
        assert!(
            matches!(text.as_bytes().first(), Some(b'4' | b'5')),
            "{text:?}"
        );
        assert!(!text.contains('\0'));
    }
}

fn check_change(m: &Modification) {
    let (name, value) = match m {
        Modification::AddHeader { name, value }
        | Modification::InsertHeader { name, value, .. }
        | Modification::ChangeHeader { name, value, .. } => (name, value),
        _ => return,
    };
    assert!(!name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':'));
    let bytes = value.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            assert!(matches!(bytes.get(i + 1), Some(b' ' | b'\t')), "{value:?}");
        }
    }
}

fn macro_value(name: &str) -> Option<String> {
    (name == "j").then(|| "mx.example".to_string())
}

fuzz_target!(|data: &[u8]| {
    let stream = Replay { input: data };
    let Ok(mut f) = Filter::negotiate(stream, Timeouts::default(), BTreeMap::new()) else {
        return;
    };
    let args = |a: &str| vec![a.to_string()];
    let run = |f: &mut Filter<Replay<'_>>| -> Result<(), postern_milter::FilterError> {
        check(&f.connect("localhost", &ClientAddress::Unknown, &macro_value)?);
        check(&f.helo("client.example", &macro_value)?);
        check(&f.mail(&args("<s@example.com>"), &macro_value)?);
        check(&f.rcpt(&args("<r@example.net>"), &macro_value)?);
        check(&f.data(&macro_value)?);
        check(&f.header("Subject", b" hello")?);
        check(&f.end_of_headers(&macro_value)?);
        check(&f.body(b"body\r\n")?);
        let (verdict, changes) = f.end_of_message(&macro_value)?;
        check(&verdict);
        changes.iter().for_each(check_change);
        check(&f.mail(&args("<s@example.com>"), &macro_value)?);
        f.abort()?;
        check(&f.unknown("XYZZY")?);
        Ok(())
    };
    let _ = run(&mut f);
    f.quit();
});

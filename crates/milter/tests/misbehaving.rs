//! Filters that stall, babble or lie: every case ends in an error the
//! caller can apply its `F=` to, within the timeouts, never a hang.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use postern_milter::filter::{ClientAddress, FilterError, Timeouts};
use postern_milter::wire::{self, reply, WireError};
use postern_milter::Filter;

fn short() -> Timeouts {
    Timeouts {
        send: Duration::from_millis(300),
        read: Duration::from_millis(300),
        end_of_message: Duration::from_millis(800),
    }
}

/// A fake filter on the other end of a socketpair, running `script`.
fn fake(script: impl FnOnce(UnixStream) + Send + 'static) -> (UnixStream, JoinHandle<()>) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    (ours, std::thread::spawn(move || script(theirs)))
}

/// Reads the MTA's negotiation and answers it as a plain version 6
/// filter that wants nothing special.
fn negotiate(s: &mut UnixStream) {
    let p = wire::read_packet(s).unwrap();
    assert_eq!(p.code, b'O');
    let mut data = Vec::new();
    for w in [6u32, 0x1ff, 0] {
        data.extend_from_slice(&w.to_be_bytes());
    }
    wire::write_packet(s, reply::OPTNEG, &data).unwrap();
}

fn no_macros(_: &str) -> Option<String> {
    None
}

fn unknown_client() -> ClientAddress {
    ClientAddress::Unknown
}

#[test]
fn a_filter_that_never_answers_times_out() {
    let (ours, t) = fake(|mut s| {
        negotiate(&mut s);
        // Reads the connect, answers nothing, until the MTA gives up.
        let _ = wire::read_packet(&mut s);
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    let mut f = Filter::negotiate(ours, short(), BTreeMap::new()).unwrap();
    let started = Instant::now();
    let e = f
        .connect("localhost", &unknown_client(), &no_macros)
        .unwrap_err();
    assert!(matches!(e, FilterError::Timeout), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(f);
    t.join().unwrap();
}

#[test]
fn progress_reports_do_not_stretch_end_of_message_past_its_timeout() {
    let (ours, t) = fake(|mut s| {
        negotiate(&mut s);
        // connect, then mail: answered; end of message: progress forever.
        for _ in 0..2 {
            wire::read_packet(&mut s).unwrap();
            wire::write_packet(&mut s, reply::CONTINUE, &[]).unwrap();
        }
        let _ = wire::read_packet(&mut s);
        while wire::write_packet(&mut s, reply::PROGRESS, &[]).is_ok() {
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let mut f = Filter::negotiate(ours, short(), BTreeMap::new()).unwrap();
    f.connect("localhost", &unknown_client(), &no_macros)
        .unwrap();
    f.mail(&["<s@example.com>".to_string()], &no_macros)
        .unwrap();
    let started = Instant::now();
    let e = f.end_of_message(&no_macros).unwrap_err();
    assert!(matches!(e, FilterError::Timeout), "{e}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(2),
        "{took:?}"
    );
    drop(f);
    t.join().unwrap();
}

#[test]
fn garbage_is_an_error_not_a_crash() {
    type Case = (&'static str, fn(&mut UnixStream));
    let cases: [Case; 5] = [
        ("bad negotiation", |s| {
            wire::read_packet(s).unwrap();
            wire::write_packet(s, reply::OPTNEG, b"\0\0").unwrap();
        }),
        ("unknown code", |s| {
            negotiate(s);
            wire::read_packet(s).unwrap();
            wire::write_packet(s, b'Z', b"").unwrap();
        }),
        ("a 16 MB packet", |s| {
            negotiate(s);
            wire::read_packet(s).unwrap();
            let _ = s.write_all(&(16u32 << 20).to_be_bytes());
        }),
        ("a change outside end of message", |s| {
            negotiate(s);
            wire::read_packet(s).unwrap();
            wire::write_packet(s, reply::ADD_HEADER, b"X-A\0v\0").unwrap();
        }),
        ("a reply code that is a success", |s| {
            negotiate(s);
            wire::read_packet(s).unwrap();
            wire::write_packet(s, reply::REPLY_CODE, b"250 fine\0").unwrap();
        }),
    ];
    for (name, script) in cases {
        let (ours, t) = fake(move |mut s| {
            script(&mut s);
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
        });
        let result = Filter::negotiate(ours, short(), BTreeMap::new())
            .and_then(|mut f| f.connect("localhost", &unknown_client(), &no_macros));
        match result {
            Err(FilterError::Timeout) | Ok(_) => panic!("{name}: {result:?}"),
            Err(FilterError::Wire(WireError::TooLarge(_))) if name == "a 16 MB packet" => {}
            Err(e) => assert!(name != "a 16 MB packet", "{name}: {e}"),
        }
        t.join().unwrap();
    }
}

#[test]
fn an_action_not_negotiated_is_refused() {
    let (ours, t) = fake(|mut s| {
        let p = wire::read_packet(&mut s).unwrap();
        assert_eq!(p.code, b'O');
        let mut data = Vec::new();
        // Asks to add headers only.
        for w in [6u32, 0x01, 0] {
            data.extend_from_slice(&w.to_be_bytes());
        }
        wire::write_packet(&mut s, reply::OPTNEG, &data).unwrap();
        wire::read_packet(&mut s).unwrap();
        wire::write_packet(&mut s, reply::CONTINUE, &[]).unwrap();
        wire::read_packet(&mut s).unwrap();
        wire::write_packet(&mut s, reply::CONTINUE, &[]).unwrap();
        wire::read_packet(&mut s).unwrap();
        wire::write_packet(&mut s, reply::DEL_RCPT, b"<a@b>\0").unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    let mut f = Filter::negotiate(ours, short(), BTreeMap::new()).unwrap();
    f.connect("localhost", &unknown_client(), &no_macros)
        .unwrap();
    f.mail(&["<s@example.com>".to_string()], &no_macros)
        .unwrap();
    let e = f.end_of_message(&no_macros).unwrap_err();
    assert!(
        matches!(e, FilterError::Unexpected { code: b'-', .. }),
        "{e}"
    );
    drop(f);
    t.join().unwrap();
}

//! The header work of a local submission (`sendmail [-t]`, `-bs`): the
//! header section found as sendmail finds it, recipients taken from To:,
//! Cc: and Bcc:, Bcc: removed, Date: and From: added when missing.
//!
//! The daemon's own header scanning (the front's `HeaderScan`, which
//! adds Date: and Message-Id:, and the bounce's returned header section)
//! lives in the `posternd` binary, which no library exposes; this is the
//! library function nearest to it, the same rule over `mail-parser`.
//!
//! Input: one knob byte (`-t` or not, `-F` or not), then the message.
//!
//! Asserts, beyond "does not panic": no recipient is listed twice, and
//! preparing the prepared message again changes nothing: the same text
//! (so Bcc: is gone, Date: and From: are there, the header section ends
//! where it ended and the body is kept) and the same Message-Id, given
//! the recipients the first pass found (under `-t` its Bcc: ones are
//! gone from the text).
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_cli::prepare::{prepare, Draft};
use postern_fuzz::script::Knobs;

fuzz_target!(|data: &[u8]| {
    let (knobs, raw) = Knobs::split(data, 1);
    let command_line = ["rcpt@example.org".to_string()];
    let draft = Draft {
        recipients: if knobs.bit(0, 1) { &command_line } else { &[] },
        extract_recipients: knobs.bit(0, 0),
        from: "user@example.org",
        full_name: knobs.bit(0, 2).then_some("A \"quoted\" User"),
        date: "Mon, 10 Mar 2003 14:39:47 -0500",
    };
    let Ok(prepared) = prepare(raw, &draft) else {
        return;
    };
    for (i, r) in prepared.recipients.iter().enumerate() {
        assert!(!prepared.recipients[..i].contains(r), "{r} twice");
    }
    // Under -t, Bcc: recipients are gone from the prepared text: give the
    // second pass the recipients the first one found.
    let second = Draft {
        recipients: &prepared.recipients,
        extract_recipients: false,
        ..draft.clone()
    };
    let again = prepare(&prepared.text, &second).expect("it has recipients");
    assert_eq!(
        String::from_utf8_lossy(&again.text),
        String::from_utf8_lossy(&prepared.text),
        "preparing twice changed the message"
    );
    assert_eq!(again.message_id, prepared.message_id);
    assert_eq!(again.recipients, prepared.recipients);
});

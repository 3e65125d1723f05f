//! The DATA body encoder of the delivery-side client, and properties that
//! must hold for any input: the reply reader never panics, and stuffed
//! output never carries a bare CR, a bare LF or an early terminator.

use postern_smtp::client::{DotStuffer, ReplyReader};
use proptest::prelude::*;

// ---- DotStuffer ----

fn stuff_chunks(chunks: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut d = DotStuffer::new();
    for c in chunks {
        d.encode(c, &mut out);
    }
    d.finish(&mut out);
    out
}

#[test]
fn dot_stuffer_leading_dots() {
    assert_eq!(
        DotStuffer::encode_all(b".hidden\r\n.\r\nx\r\n"),
        b"..hidden\r\n..\r\nx\r\n.\r\n"
    );
    assert_eq!(DotStuffer::encode_all(b"..\r\n"), b"...\r\n.\r\n");
}

#[test]
fn dot_stuffer_canonicalises_line_ends() {
    // The SMTP smuggling payloads (REFERENCE §4.2) become ordinary lines.
    assert_eq!(DotStuffer::encode_all(b"a\n.\nb"), b"a\r\n..\r\nb\r\n.\r\n");
    assert_eq!(
        DotStuffer::encode_all(b"a\n.\r\nb\r\n"),
        b"a\r\n..\r\nb\r\n.\r\n"
    );
    assert_eq!(
        DotStuffer::encode_all(b"a\r.\rb\r\n"),
        b"a\r\n..\r\nb\r\n.\r\n"
    );
    assert_eq!(
        DotStuffer::encode_all(b"a\r\n.\r\r\nb\r\n"),
        b"a\r\n..\r\n\r\nb\r\n.\r\n"
    );
}

#[test]
fn dot_stuffer_end_of_body() {
    assert_eq!(DotStuffer::encode_all(b""), b".\r\n");
    assert_eq!(DotStuffer::encode_all(b"last line"), b"last line\r\n.\r\n");
    assert_eq!(
        DotStuffer::encode_all(b"last line\r\n"),
        b"last line\r\n.\r\n"
    );
    assert_eq!(DotStuffer::encode_all(b"."), b"..\r\n.\r\n");
}

#[test]
fn dot_stuffer_chunk_boundaries_anywhere() {
    let body: &[u8] = b".a\r\n.\r\nb\r\r\nc\n.d\r.e\r\n..\r\nend.";
    let whole = DotStuffer::encode_all(body);
    for i in 0..=body.len() {
        for j in i..=body.len() {
            let out = stuff_chunks(&[&body[..i], &body[i..j], &body[j..]]);
            assert_eq!(out, whole, "split at {i}, {j}");
        }
    }
    let bytewise: Vec<&[u8]> = body.chunks(1).collect();
    assert_eq!(stuff_chunks(&bytewise), whole);
}

/// Undoes the stuffing: the body as the receiver will store it.
fn unstuff(wire: &[u8]) -> Vec<u8> {
    let body = wire.strip_suffix(b".\r\n").expect("terminator");
    let mut out = Vec::new();
    let text = body.strip_suffix(b"\r\n").unwrap_or(body);
    if body.is_empty() {
        return out;
    }
    for line in text.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The input with every line end as CRLF and a final line end added.
fn canonical(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'\r' if body.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    // Mostly the interesting bytes, so that CR, LF and dots meet often.
    proptest::collection::vec(
        prop_oneof![
            Just(b'\r'),
            Just(b'\n'),
            Just(b'.'),
            Just(b'a'),
            any::<u8>()
        ],
        0..200,
    )
}

proptest! {
    #[test]
    fn reply_reader_never_panics(chunks in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..300), 0..8)) {
        let mut r = ReplyReader::new();
        for c in &chunks {
            r.feed(c);
            while let Ok(Some(reply)) = r.next_reply() {
                prop_assert!((200..=599).contains(&reply.code));
                let _ = reply.text();
            }
        }
    }

    #[test]
    fn reply_reader_never_panics_on_reply_like_input(text in "([0-9]{3}[ -]?[0-9. a-z]{0,12}\r?\n?){0,20}") {
        let mut r = ReplyReader::new();
        r.feed(text.as_bytes());
        while let Ok(Some(_)) = r.next_reply() {}
    }

    #[test]
    fn dot_stuffer_output_is_safe(body in body_bytes(), cuts in proptest::collection::vec(any::<usize>(), 0..4)) {
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (body.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for c in cuts {
            chunks.push(&body[last..c]);
            last = c;
        }
        chunks.push(&body[last..]);
        let out = stuff_chunks(&chunks);
        prop_assert_eq!(&out, &DotStuffer::encode_all(&body));
        // No bare CR, no bare LF.
        for (i, &b) in out.iter().enumerate() {
            if b == b'\r' {
                prop_assert_eq!(out.get(i + 1), Some(&b'\n'));
            }
            if b == b'\n' {
                prop_assert!(i > 0 && out[i - 1] == b'\r');
            }
        }
        // The only end-of-data is the terminator.
        prop_assert!(out.ends_with(b".\r\n"));
        let head = &out[..out.len() - 3];
        prop_assert!(head.is_empty() || head.ends_with(b"\r\n"));
        prop_assert!(!head.starts_with(b".\r\n"));
        prop_assert!(!head.windows(5).any(|w| w == b"\r\n.\r\n"));
        // And the receiver gets the body back, line ends canonicalised.
        prop_assert_eq!(unstuff(&out), canonical(&body));
    }
}

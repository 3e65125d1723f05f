//! The header work of a local submission, done here, as the caller, before
//! the message goes to the daemon (OpenSMTPD's enqueue does the same): the
//! queue runner, the one process that can write the spool, then parses no
//! header of a user's message. What it must decide with authority (the
//! caller's uid, the `Received:` header, X-Authentication-Warning, the
//! Message-Id that names the queue ID) stays there.
//!
//! As sendmail does for `sendmail [-t] [-F name]` and `sendmail -bs`:
//! - with `-t`, the recipients are taken from To:, Cc: and Bcc:, and
//!   addresses also given on the command line are left out;
//! - Bcc: is removed, with or without `-t`, so blind copies stay blind;
//! - Date: and From: (with `-F`'s name) are added when missing, at the
//!   top, where sendmail puts them (after its Received:);
//! - the header section ends at the first line that is not a header (that
//!   line and the rest are the body), and a blank line is put before the
//!   body when there was none.
//!
//! Headers are parsed with `mail-parser`; header lines are copied
//! byte for byte. Line ends are left as they came (the queue runner makes
//! every line end CRLF when it stores the message).

use mail_parser::{Address, Header, HeaderValue, MessageParser};

mod section;

/// What the submission says besides the message.
#[derive(Debug, Clone)]
pub struct Draft<'a> {
    /// Recipients from the command line (or the SMTP envelope under -bs).
    pub recipients: &'a [String],
    /// `-t`.
    pub extract_recipients: bool,
    /// The address for a From: header the message lacks: the envelope
    /// sender, else the caller's own address.
    pub from: &'a str,
    /// `-F`: the display name for that From: header.
    pub full_name: Option<&'a str>,
    /// Today, as an RFC 5322 date, for a Date: header the message lacks.
    pub date: &'a str,
}

/// The message ready to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// Headers (Bcc: removed, From: and Date: added), a blank line, the
    /// body.
    pub text: Vec<u8>,
    /// The recipients, without duplicates, in order.
    pub recipients: Vec<String>,
    /// The Message-Id header's value; `None` when the message has none
    /// (the queue runner then adds one).
    pub message_id: Option<String>,
}

/// sendmail's complaint when `-t` finds nobody.
pub const NO_RECIPIENTS: &str = "No recipient addresses found in header";

/// Prepares `raw` for submission; `Err` when there is no recipient.
pub fn prepare(raw: &[u8], draft: &Draft<'_>) -> Result<Prepared, &'static str> {
    let fields = section::fields(raw);
    let end = fields.last().map_or(0, |f| f.end);
    // mail-parser reads the values, of the section alone.
    let parsed = MessageParser::new().parse_headers(&raw[..end]);
    let headers = parsed.as_ref().map_or(&[][..], |m| m.headers());
    let body = match &raw[end..] {
        [b'\r', b'\n', rest @ ..] | [b'\n', rest @ ..] => rest,
        rest => rest,
    };
    let named = |name: &'static str| named(headers, name);

    let mut recipients = Vec::new();
    let mut add = |address: String| {
        if !recipients.contains(&address) {
            recipients.push(address);
        }
    };
    if draft.extract_recipients {
        let suppressed = draft.recipients;
        for h in ["To", "Cc", "Bcc"].into_iter().flat_map(&named) {
            for address in addresses(&h.value) {
                if !suppressed.contains(&address) {
                    add(address);
                }
            }
        }
    } else {
        draft.recipients.iter().cloned().for_each(&mut add);
    }
    if recipients.is_empty() {
        return Err(NO_RECIPIENTS);
    }

    // What the message lacks goes first, as sendmail puts it right after
    // its Received: header: Date:, then From:.
    let has = |wanted: &str| {
        fields.iter().any(|f| {
            section::name(&raw[f.clone()])
                .is_some_and(|n| n.eq_ignore_ascii_case(wanted.as_bytes()))
        })
    };
    let mut text = Vec::with_capacity(raw.len() + 256);
    if !has("Date") {
        text.extend_from_slice(format!("Date: {}\r\n", draft.date).as_bytes());
    }
    if !has("From") {
        let name = draft.full_name.map(quoted_name).unwrap_or_default();
        let from = if name.is_empty() {
            format!("From: {}\r\n", draft.from)
        } else {
            format!("From: {name} <{}>\r\n", draft.from)
        };
        text.extend_from_slice(from.as_bytes());
    }
    for field in &fields {
        let bytes = &raw[field.clone()];
        if !section::name(bytes).is_some_and(|n| n.eq_ignore_ascii_case(b"Bcc")) {
            text.extend_from_slice(bytes);
        }
    }
    if !text.is_empty() && !text.ends_with(b"\n") {
        // The last header ended the input without a line end.
        text.extend_from_slice(b"\r\n");
    }
    text.extend_from_slice(b"\r\n");
    text.extend_from_slice(body);

    let message_id = named("Message-Id")
        .next()
        .and_then(|h| raw.get(h.offset_start as usize..h.offset_end as usize))
        .map(unfolded)
        .filter(|id| !id.is_empty());
    Ok(Prepared {
        text,
        recipients,
        message_id,
    })
}

/// The headers called `name`, in any case.
fn named<'x, 'a>(
    headers: &'x [Header<'a>],
    name: &'static str,
) -> impl Iterator<Item = &'x Header<'a>> {
    headers
        .iter()
        .filter(move |h| h.name.as_str().eq_ignore_ascii_case(name))
}

/// The addresses of an address-list header. A bare word (`To: bob`) is a
/// local user, as sendmail reads it; group names and display names are not
/// addresses.
fn addresses(value: &HeaderValue<'_>) -> Vec<String> {
    let HeaderValue::Address(address) = value else {
        return Vec::new();
    };
    let addrs: Vec<_> = match address {
        Address::List(list) => list.iter().collect(),
        Address::Group(groups) => groups.iter().flat_map(|g| g.addresses.iter()).collect(),
    };
    addrs
        .into_iter()
        .filter_map(|a| match (&a.address, &a.name) {
            (Some(address), _) => Some(address.trim().to_string()),
            (None, Some(name)) if is_bare_word(name) => Some(name.to_string()),
            _ => None,
        })
        .filter(|a| !a.is_empty())
        .collect()
}

fn is_bare_word(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>[]:;@\\,\"".contains(&b))
}

/// A header value as one line: folding undone, trimmed, control
/// characters dropped.
fn unfolded(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_string()
}

/// `-F`'s full name as an RFC 5322 quoted string: no control characters,
/// at most 256 characters, `"` and `\\` escaped, so it can only ever be a
/// display name.
fn quoted_name(name: &str) -> String {
    let clean: String = name.chars().filter(|c| !c.is_control()).take(256).collect();
    let clean = clean.trim();
    if clean.is_empty() {
        return String::new();
    }
    format!("\"{}\"", clean.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests;

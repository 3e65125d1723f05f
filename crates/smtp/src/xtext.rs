//! xtext (RFC 3461 §4): the encoding of ENVID, ORCPT and AUTH= values.
//!
//! `xchar` is any printable ASCII character other than `+` and `=`;
//! everything else is written `+XX` with two upper-case hex digits.

/// Why a string is not valid xtext.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum XtextError {
    /// A byte outside `!`..=`~`, or a bare `=`.
    #[error("invalid character in xtext")]
    InvalidChar,
    /// `+` not followed by two upper-case hex digits.
    #[error("invalid hexchar in xtext")]
    InvalidHex,
}

/// Decodes xtext into raw bytes.
pub fn decode(text: &str) -> Result<Vec<u8>, XtextError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                let hi = bytes.get(i + 1).and_then(|&b| hex_value(b));
                let lo = bytes.get(i + 2).and_then(|&b| hex_value(b));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(XtextError::InvalidHex),
                }
                i += 3;
            }
            b'=' => return Err(XtextError::InvalidChar),
            b'!'..=b'~' => {
                out.push(bytes[i]);
                i += 1;
            }
            _ => return Err(XtextError::InvalidChar),
        }
    }
    Ok(out)
}

/// Encodes raw bytes as xtext.
pub fn encode(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for &b in raw {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// RFC 3461 allows only upper-case hex digits after `+`.
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_hexchars() {
        assert_eq!(decode("a+2Bb+3D").unwrap(), b"a+b=");
        assert_eq!(decode("").unwrap(), b"");
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(decode("a+2b"), Err(XtextError::InvalidHex));
        assert_eq!(decode("a+2"), Err(XtextError::InvalidHex));
        assert_eq!(decode("a=b"), Err(XtextError::InvalidChar));
        assert_eq!(decode("a b"), Err(XtextError::InvalidChar));
        assert_eq!(decode("\u{e9}"), Err(XtextError::InvalidChar));
    }

    #[test]
    fn encode_round_trips() {
        let raw = b"rfc822;user+tag=x@example.org \x01";
        assert_eq!(decode(&encode(raw)).unwrap(), raw);
        assert_eq!(encode(b"a+b"), "a+2Bb");
    }
}

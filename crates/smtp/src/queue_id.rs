//! Queue IDs as they travel: in the `250 2.0.0 <qid> Message accepted for
//! delivery` reply, between Postern's processes, in the spool's file
//! names. sendmail's 14-character format (`YMDhmsSSpppppp`, see
//! `postern_queue::id` for how they are made); this type only guarantees
//! the shape: exactly 14 characters of `[0-9A-Za-z]`, so a queue ID can
//! never name a path outside the spool (`../x`, `/`, NUL are impossible),
//! whoever sent it.

use std::fmt;
use std::str::FromStr;

/// Length of every queue ID.
pub const ID_LEN: usize = 14;

/// A validated queue ID.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "String", into = "String")
)]
pub struct QueueId(String);

impl QueueId {
    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a string is not a queue ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid queue id {0:?}: must be {ID_LEN} characters of [0-9A-Za-z]")]
pub struct InvalidQueueId(pub String);

impl FromStr for QueueId {
    type Err = InvalidQueueId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() == ID_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(QueueId(s.to_owned()))
        } else {
            Err(InvalidQueueId(s.chars().take(64).collect()))
        }
    }
}

impl TryFrom<String> for QueueId {
    type Error = InvalidQueueId;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<QueueId> for String {
    fn from(id: QueueId) -> String {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fourteen_alphanumerics() {
        assert!("6AP8Cx00006826".parse::<QueueId>().is_ok());
        for bad in [
            "",
            "6AP8Cx0000682",
            "6AP8Cx000068266",
            "../AP8Cx000068",
            "6AP8Cx0000682/",
        ] {
            assert!(bad.parse::<QueueId>().is_err(), "{bad}");
        }
    }
}

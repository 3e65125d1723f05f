//! `QueueSync` (Postern's own; m4 `confQUEUE_SYNC`): how the queue runner
//! makes a batch of messages durable before their `250`s.

/// The flush a commit waits for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QueueSync {
    /// One `syncfs(2)` of the spool's file system per barrier (the
    /// default): a batch costs two disk flushes whatever its size. Every
    /// dirty page of that file system is written with it, so a spool
    /// sharing its file system with a heavy writer waits for that writer.
    #[default]
    Syncfs,
    /// `fsync(2)` of each file and directory: only the spool's own writes
    /// are flushed, at a few flushes per message.
    Fsync,
}

impl QueueSync {
    /// Parses the option's value: `syncfs` or `fsync`.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim() {
            v if v.eq_ignore_ascii_case("syncfs") => Ok(Self::Syncfs),
            v if v.eq_ignore_ascii_case("fsync") => Ok(Self::Fsync),
            other => Err(format!("\"{other}\" is not syncfs or fsync")),
        }
    }

    /// The option's value as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Syncfs => "syncfs",
            Self::Fsync => "fsync",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::QueueSync;

    #[test]
    fn values_round_trip_and_others_are_refused() {
        for sync in [QueueSync::Syncfs, QueueSync::Fsync] {
            assert_eq!(QueueSync::parse(sync.as_str()), Ok(sync));
        }
        assert_eq!(QueueSync::parse("FSYNC"), Ok(QueueSync::Fsync));
        assert!(QueueSync::parse("none")
            .unwrap_err()
            .contains("syncfs or fsync"));
    }
}

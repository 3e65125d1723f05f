//! Queue IDs: sendmail's 14-character format, safe as file names.
//!
//! `YMDhmsSSpppppp`: year since 1900 mod 60, month (0-11), day (1-31),
//! hour, minute and second (UTC), one base-60 digit each (`0-9A-Za-x`);
//! a two-digit base-60 sequence number; the pid mod 1 000 000 as six
//! decimal digits. The alphabet is in ASCII order, so IDs sort by time as
//! strings (within a 60-year cycle), which makes `ls` and `list()` show the
//! queue oldest first.

use std::time::{SystemTime, UNIX_EPOCH};

pub use postern_smtp::queue_id::{InvalidQueueId, QueueId, ID_LEN};

use chrono::{DateTime, Datelike, Timelike};

const BASE60: &[u8; 60] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx";

/// Number of distinct sequence values (two base-60 digits).
const SEQ_SPACE: u16 = 3600;

/// Hands out IDs unique within one process.
///
/// Uniqueness: the sequence number increments on every call. When all 3600
/// sequence values have been used for one second, the time part is bumped
/// forward by one second (so under a burst of more than 3600 IDs per second
/// the time in the ID runs ahead of the clock). The time part never goes
/// backwards either: if the clock is stepped back, the generator keeps the
/// last time it used until the clock catches up. Across processes the pid
/// part keeps IDs apart; `Spool::create` also checks the spool itself.
#[derive(Debug, Clone)]
pub struct QueueIdGenerator {
    pid: u32,
    /// The time (unix seconds) in the last ID handed out.
    last_time: u64,
    /// The sequence number of the first ID handed out with `last_time`.
    first_seq: u16,
    /// The sequence number of the next ID.
    seq: u16,
    started: bool,
}

impl QueueIdGenerator {
    /// A generator for the process `pid`.
    pub fn new(pid: u32) -> Self {
        QueueIdGenerator {
            pid,
            last_time: 0,
            first_seq: 0,
            seq: 0,
            started: false,
        }
    }

    /// The next ID, for a message received at `now`.
    pub fn next(&mut self, now: SystemTime) -> QueueId {
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if !self.started || now > self.last_time {
            self.started = true;
            self.last_time = now;
            self.first_seq = self.seq;
        } else if self.seq == self.first_seq {
            // Every sequence value is taken for `last_time`: move on.
            self.last_time += 1;
        }
        let id = format_id(self.last_time, self.seq, self.pid);
        self.seq = (self.seq + 1) % SEQ_SPACE;
        id
    }
}

fn format_id(time: u64, seq: u16, pid: u32) -> QueueId {
    let c = i64::try_from(time)
        .ok()
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .unwrap_or_default();
    let digit = |v: i64| BASE60[v.rem_euclid(60) as usize] as char;
    let mut s = String::with_capacity(ID_LEN);
    s.push(digit(i64::from(c.year()) - 1900));
    s.push(digit(i64::from(c.month0())));
    s.push(digit(c.day().into()));
    s.push(digit(c.hour().into()));
    s.push(digit(c.minute().into()));
    s.push(digit(c.second().into()));
    s.push(digit(i64::from(seq / 60)));
    s.push(digit(i64::from(seq % 60)));
    s.push_str(&format!("{:06}", pid % 1_000_000));
    s.parse().expect("the generator's alphabet is [0-9A-Za-z]")
}

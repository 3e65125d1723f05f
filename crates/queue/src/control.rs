//! The control file (`qf<id>`): envelope, DSN parameters and per-recipient
//! delivery state of one message.
//!
//! Format, version 1: UTF-8 text, one record per line, every line ending in
//! LF, so `cat qf…` is readable.
//!
//! ```text
//! V1
//! I <queue id>                 required
//! T <creation time>            required, unix seconds
//! S <sender>                   required; reverse path without <>, empty = <>
//! E <envid>    R FULL|HDRS     B 7BIT|8BITMIME     Z <size>
//! H <helo>     C <client $_>   P <protocol>        A <auth identity>
//! Y <secs>;R|N[T]              DELIVERBY
//! U <uid>                      local submitter
//! W warned                     the delay warning was sent (Timeout.queuewarn)
//! G dsn|postmaster             this message is a report Postern made
//! N <attempts>  K <next attempt, unix seconds>
//! r <address>\tstate=pending\tattempts=0\tnext=0[\tnotify=…][\torcpt=…][\treply=…]
//!   [\tstatus=5.1.1][\tmta=[192.0.2.1]][\tdiag=550 …][\tcmd=RCPT To:<…>]
//!   [\tlast=<unix seconds>][\tdsn=failed|delivered|relayed]
//!   [\talias=<address as the sender wrote it>][\tkind=file|program\tctl=<uid>:<gid>]
//! ```
//!
//! `alias`, `kind` and `ctl` came with aliases: a recipient the queue
//! runner expanded carries the address it came from (`alias=`, for the
//! DSN's Final-Recipient); a file or program target (`/path`, `|cmd` as
//! the address) carries its kind and the controlling user whose rights
//! its delivery takes. Only the queue runner's expansion writes them.
//!
//! `W`, `G` and the recipient fields `status`, `mta`, `diag`, `cmd`,
//! `last` and `dsn` came with delivery status notifications; files written before
//! them simply lack them and read as "nothing reported, nothing owed".
//! `dsn=` on a recipient means a report with that action is owed to the
//! sender: it is set when the recipient's fate is known and cleared only
//! after the report is committed to the spool, so a crash in between
//! yields the report twice, never not at all.
//!
//! Why this encoding: every value is percent-encoded for `%`, all control
//! characters (so CR, LF, TAB and NUL) and DEL, so a value can never end a
//! line or split a field. Message-level values are the rest of the line;
//! recipient fields are separated by TAB, which is always escaped inside
//! values, so spaces (common in replies and `$_`) stay readable. Optional
//! values that are absent have no line or no field; present-but-empty is
//! `key ` / `notify=`. The file must end with a newline: a missing final LF
//! means truncation and is an error rather than a silently shorter file.
//!
//! The parser is strict, since a qf we misread is mail we misdeliver:
//! unknown keys, duplicates, bad numbers, bad escapes and missing required
//! records are errors naming the line; it never panics.

use std::fmt::Write as _;

use postern_smtp::params::{BodyType, DeliverBy, Notify, Orcpt, Ret};

use crate::id::QueueId;

/// Delivery state of one recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecipientState {
    /// Not yet tried.
    Pending,
    /// Delivered (or relayed); done.
    Sent,
    /// Temporarily failed; will be retried.
    Deferred,
    /// Permanently failed; done (a bounce is due or was sent).
    Failed,
}

impl RecipientState {
    fn as_str(self) -> &'static str {
        match self {
            RecipientState::Pending => "pending",
            RecipientState::Sent => "sent",
            RecipientState::Deferred => "deferred",
            RecipientState::Failed => "failed",
        }
    }
}

/// The report (DSN) owed to the sender for a recipient (RFC 3464 `Action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsnDue {
    /// A failure report (`Action: failed`).
    Failed,
    /// A success report for a final delivery (`Action: delivered`).
    Delivered,
    /// A success report for a hand-over to a next hop that does not speak
    /// DSN (`Action: relayed`).
    Relayed,
}

impl DsnDue {
    /// The word stored in the control file.
    pub fn as_str(self) -> &'static str {
        match self {
            DsnDue::Failed => "failed",
            DsnDue::Delivered => "delivered",
            DsnDue::Relayed => "relayed",
        }
    }

    pub(crate) fn from_str(s: &str) -> Option<DsnDue> {
        [DsnDue::Failed, DsnDue::Delivered, DsnDue::Relayed]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// What kind of report a message Postern made itself is: a bounce must
/// never be bounced in a loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generated {
    /// A DSN to a message's sender (sender `<>`); if it fails, the
    /// postmaster is told.
    Dsn,
    /// A failed DSN sent to the postmaster (the double bounce); if it
    /// fails too, it is logged and dropped.
    Postmaster,
}

impl Generated {
    /// The word stored in the control file.
    pub fn as_str(self) -> &'static str {
        match self {
            Generated::Dsn => "dsn",
            Generated::Postmaster => "postmaster",
        }
    }

    pub(crate) fn from_str(s: &str) -> Option<Generated> {
        [Generated::Dsn, Generated::Postmaster]
            .into_iter()
            .find(|g| g.as_str() == s)
    }
}

/// What a recipient that is not a mail address is: a target of an alias
/// or an included list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// `/path/file`: append the message to the file (the address).
    File,
    /// `|command`: pipe the message to the command (the address, without `|`).
    Program,
}

impl TargetKind {
    /// The word stored in the control file.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::File => "file",
            TargetKind::Program => "program",
        }
    }

    pub(crate) fn from_str(s: &str) -> Option<TargetKind> {
        [TargetKind::File, TargetKind::Program]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A file or program target and whose rights its delivery takes
/// (sendmail's controlling user, `ctladdr=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalTarget {
    /// File or program.
    pub kind: TargetKind,
    /// The controlling user's uid (never 0).
    pub uid: u32,
    /// Its gid.
    pub gid: u32,
}

/// One envelope recipient and where its delivery stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientEntry {
    /// The forward path, without angle brackets.
    pub address: String,
    /// NOTIFY= (written `SUCCESS,FAILURE`).
    pub notify: Option<Notify>,
    /// ORCPT=, decoded from xtext (written `type;address`).
    pub orcpt: Option<Orcpt>,
    /// Delivery state.
    pub state: RecipientState,
    /// Delivery attempts so far for this recipient.
    pub attempts: u32,
    /// Earliest next attempt for this recipient, unix seconds (0 = now).
    pub next_attempt: u64,
    /// The last reply for this recipient, code and text.
    pub last_reply: Option<String>,
    /// The last attempt's enhanced status code (`5.1.1`), for the DSN.
    pub status: Option<String>,
    /// The server the last attempt talked to (`[192.0.2.1]`), the DSN's
    /// Remote-MTA.
    pub remote_mta: Option<String>,
    /// The server's own reply to the last attempt, the DSN's
    /// Diagnostic-Code (absent when the reason is Postern's own).
    pub diagnostic: Option<String>,
    /// The command the server's reply answered, for the report's
    /// transcript (`>>> RCPT To:<…>`).
    pub command: Option<String>,
    /// When the last attempt ended, unix seconds.
    pub last_attempt: Option<u64>,
    /// A report owed to the sender for this recipient.
    pub dsn: Option<DsnDue>,
    /// The address the sender gave, when this recipient came from
    /// expanding it (an alias or list).
    pub alias: Option<String>,
    /// A file or program target, with its controlling user.
    pub target: Option<LocalTarget>,
}

impl RecipientEntry {
    /// A fresh pending recipient.
    pub fn new(address: impl Into<String>) -> Self {
        RecipientEntry {
            address: address.into(),
            notify: None,
            orcpt: None,
            state: RecipientState::Pending,
            attempts: 0,
            next_attempt: 0,
            last_reply: None,
            status: None,
            remote_mta: None,
            diagnostic: None,
            command: None,
            last_attempt: None,
            dsn: None,
            alias: None,
            target: None,
        }
    }
}

/// The control file of one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlFile {
    /// The message's queue ID (must match the file name).
    pub id: QueueId,
    /// When the message was received, unix seconds.
    pub created: u64,
    /// Reverse path without brackets; empty for the null sender `<>`.
    pub sender: String,
    /// DSN ENVID.
    pub envid: Option<String>,
    /// DSN RET.
    pub ret: Option<Ret>,
    /// BODY=.
    pub body: Option<BodyType>,
    /// Size of the data file in octets.
    pub size: u64,
    /// The HELO/EHLO name ($s).
    pub helo: Option<String>,
    /// The client relay string, sendmail's `$_` (`host [192.0.2.1]`).
    pub client: String,
    /// The protocol, `$r` (`ESMTPS` …), empty for local submission.
    pub protocol: String,
    /// The authenticated identity.
    pub auth: Option<String>,
    /// DELIVERBY.
    pub deliver_by: Option<DeliverBy>,
    /// Uid of the local user who submitted the message.
    pub submitter_uid: Option<u32>,
    /// Held by the administrator (`postern queue hold`) or quarantined by
    /// a mail filter: kept, not tried.
    pub held: bool,
    /// Why a mail filter quarantined it (sendmail's `q` line); `None`
    /// for an administrator's hold.
    pub quarantine: Option<String>,
    /// A local submission that goes to Postern's own MTA listener first,
    /// whose mail filters see it there (sendmail's MSP relaying to
    /// `[127.0.0.1]`): relayed as it is, recipients not expanded.
    pub through_mta: bool,
    /// The delay warning (Timeout.queuewarn) was sent.
    pub warned: bool,
    /// Set when this message is a report Postern made.
    pub generated: Option<Generated>,
    /// Queue runs that tried this message.
    pub attempts: u32,
    /// Earliest next queue run for this message, unix seconds (0 = now).
    pub next_attempt: u64,
    /// The envelope recipients, in RCPT order.
    pub recipients: Vec<RecipientEntry>,
}

/// A control file that does not parse; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// The offending line (1-based; 0 when the file as a whole is at fault).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl ControlFile {
    /// A control file with no recipients and everything optional unset.
    pub fn new(id: QueueId, created: u64, sender: impl Into<String>) -> Self {
        ControlFile {
            id,
            created,
            sender: sender.into(),
            envid: None,
            ret: None,
            body: None,
            size: 0,
            helo: None,
            client: String::new(),
            protocol: String::new(),
            auth: None,
            deliver_by: None,
            submitter_uid: None,
            held: false,
            quarantine: None,
            through_mta: false,
            warned: false,
            generated: None,
            attempts: 0,
            next_attempt: 0,
            recipients: Vec::new(),
        }
    }

    /// Recipients still to be tried: `Pending` or `Deferred`.
    pub fn pending_recipients(&self) -> impl Iterator<Item = &RecipientEntry> {
        self.recipients
            .iter()
            .filter(|r| matches!(r.state, RecipientState::Pending | RecipientState::Deferred))
    }

    /// True when no recipient is `Pending` or `Deferred`: nothing is left
    /// to deliver.
    pub fn is_finished(&self) -> bool {
        self.pending_recipients().next().is_none()
    }

    /// True when a report is owed to the sender for some recipient.
    pub fn reports_owed(&self) -> bool {
        self.recipients.iter().any(|r| r.dsn.is_some())
    }

    /// True when every recipient is settled (sent, or failed and
    /// reported): the message can leave the queue.
    pub fn is_settled(&self) -> bool {
        self.is_finished() && !self.reports_owed()
    }

    /// Serialises to the version-1 text format.
    pub fn to_text(&self) -> String {
        let mut out = String::from("V1\n");
        let mut line = |key: &str, value: &str| {
            let _ = writeln!(out, "{key} {}", encode(value));
        };
        line("I", self.id.as_str());
        line("T", &self.created.to_string());
        line("S", &self.sender);
        if let Some(v) = &self.envid {
            line("E", v);
        }
        if let Some(v) = self.ret {
            line("R", v.as_str());
        }
        if let Some(v) = self.body {
            line("B", v.as_str());
        }
        line("Z", &self.size.to_string());
        if let Some(v) = &self.helo {
            line("H", v);
        }
        line("C", &self.client);
        line("P", &self.protocol);
        if let Some(v) = &self.auth {
            line("A", v);
        }
        if let Some(by) = self.deliver_by {
            line("Y", &by.to_string());
        }
        if let Some(uid) = self.submitter_uid {
            line("U", &uid.to_string());
        }
        if self.held {
            line("Q", self.quarantine.as_deref().unwrap_or("held"));
        }
        if self.through_mta {
            line("M", "mta");
        }
        if self.warned {
            line("W", "warned");
        }
        if let Some(g) = self.generated {
            line("G", g.as_str());
        }
        line("N", &self.attempts.to_string());
        line("K", &self.next_attempt.to_string());
        for r in &self.recipients {
            let mut fields = format!(
                "{}\tstate={}\tattempts={}\tnext={}",
                encode(&r.address),
                r.state.as_str(),
                r.attempts,
                r.next_attempt
            );
            for (name, value) in [
                ("notify", &r.notify.map(|n| n.to_string())),
                ("orcpt", &r.orcpt.as_ref().map(ToString::to_string)),
                ("reply", &r.last_reply),
                ("status", &r.status),
                ("mta", &r.remote_mta),
                ("diag", &r.diagnostic),
                ("cmd", &r.command),
                ("last", &r.last_attempt.map(|t| t.to_string())),
                ("dsn", &r.dsn.map(|d| d.as_str().to_string())),
                ("alias", &r.alias),
                ("kind", &r.target.map(|t| t.kind.as_str().to_string())),
                ("ctl", &r.target.map(|t| format!("{}:{}", t.uid, t.gid))),
            ] {
                if let Some(v) = value {
                    let _ = write!(fields, "\t{name}={}", encode(v));
                }
            }
            out.push_str("r ");
            out.push_str(&fields);
            out.push('\n');
        }
        out
    }

    /// Parses the version-1 text format, strictly.
    pub fn parse(text: &str) -> Result<ControlFile, ParseError> {
        crate::control_parse::parse(text)
    }
}

pub(crate) fn state_from_str(s: &str) -> Option<RecipientState> {
    [
        RecipientState::Pending,
        RecipientState::Sent,
        RecipientState::Deferred,
        RecipientState::Failed,
    ]
    .into_iter()
    .find(|st| st.as_str() == s)
}

/// Percent-encodes `%`, control characters and DEL.
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c == '%' || c.is_ascii_control() {
            let _ = write!(out, "%{:02X}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Reverses [`encode`]; accepts exactly what it produces (uppercase hex,
/// only escapes of `%`, controls and DEL, no raw control characters).
pub(crate) fn decode(field: &str) -> Result<String, String> {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c.is_ascii_control() {
            return Err(format!("raw control character {:#04x} in value", c as u32));
        }
        if c != '%' {
            out.push(c);
            continue;
        }
        let hex: String = chars.by_ref().take(2).collect();
        let byte = (hex.len() == 2
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)))
        .then(|| u8::from_str_radix(&hex, 16).ok())
        .flatten()
        .filter(|b| *b == b'%' || b.is_ascii_control())
        .ok_or_else(|| format!("bad escape %{hex}"))?;
        out.push(byte as char);
    }
    Ok(out)
}

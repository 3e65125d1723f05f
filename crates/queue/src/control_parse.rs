//! The strict parser of the version-1 control file (see [`crate::control`]).
//!
//! Kept apart from the writer so each stays small; both share the field
//! encoding in `control.rs`.

use std::str::FromStr;

use postern_smtp::params::{BadParam, BodyType, DeliverBy, Ret};

use crate::control::{
    decode, state_from_str, ControlFile, DsnDue, Generated, LocalTarget, ParseError,
    RecipientEntry, TargetKind,
};
use crate::id::QueueId;

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

fn number<T: FromStr>(line: usize, what: &str, s: &str) -> Result<T, ParseError> {
    // `u64::from_str` accepts a leading `+`; we never write one.
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(line, format!("{what}: bad number {s:?}")));
    }
    s.parse()
        .map_err(|_| err(line, format!("{what}: bad number {s:?}")))
}

/// A parameter in its stored form (`postern_smtp::params`' `FromStr`).
fn param<T: std::str::FromStr<Err = BadParam>>(
    line: usize,
    key: &str,
    s: &str,
) -> Result<T, ParseError> {
    s.parse()
        .map_err(|e: BadParam| err(line, format!("{key}: {e}")))
}

fn recipient(line: usize, value: &str) -> Result<RecipientEntry, ParseError> {
    let mut fields = value.split('\t');
    let address = fields.next().unwrap_or_default();
    let mut r = RecipientEntry::new(decode(address).map_err(|m| err(line, m))?);
    let (mut state, mut attempts, mut next) = (None, None, None);
    let (mut kind, mut ctl) = (None, None);
    for field in fields {
        let (name, raw) = field
            .split_once('=')
            .ok_or_else(|| err(line, format!("recipient field without '=': {field:?}")))?;
        let dup = || err(line, format!("duplicate recipient field {name}"));
        let v = decode(raw).map_err(|m| err(line, m))?;
        match name {
            "state" if state.is_some() => return Err(dup()),
            "state" => {
                state =
                    Some(state_from_str(&v).ok_or_else(|| err(line, format!("bad state {v:?}")))?)
            }
            "attempts" if attempts.is_some() => return Err(dup()),
            "attempts" => attempts = Some(number(line, "attempts", &v)?),
            "next" if next.is_some() => return Err(dup()),
            "next" => next = Some(number(line, "next", &v)?),
            "notify" if r.notify.is_some() => return Err(dup()),
            "notify" => r.notify = Some(param(line, "notify", &v)?),
            "orcpt" if r.orcpt.is_some() => return Err(dup()),
            "orcpt" => r.orcpt = Some(param(line, "orcpt", &v)?),
            "reply" if r.last_reply.is_some() => return Err(dup()),
            "reply" => r.last_reply = Some(v),
            "status" if r.status.is_some() => return Err(dup()),
            "status" => r.status = Some(v),
            "mta" if r.remote_mta.is_some() => return Err(dup()),
            "mta" => r.remote_mta = Some(v),
            "diag" if r.diagnostic.is_some() => return Err(dup()),
            "diag" => r.diagnostic = Some(v),
            "cmd" if r.command.is_some() => return Err(dup()),
            "cmd" => r.command = Some(v),
            "last" if r.last_attempt.is_some() => return Err(dup()),
            "last" => r.last_attempt = Some(number(line, "last", &v)?),
            "dsn" if r.dsn.is_some() => return Err(dup()),
            "dsn" => {
                r.dsn =
                    Some(DsnDue::from_str(&v).ok_or_else(|| err(line, format!("bad dsn {v:?}")))?)
            }
            "alias" if r.alias.is_some() => return Err(dup()),
            "alias" => r.alias = Some(v),
            "kind" if kind.is_some() => return Err(dup()),
            "kind" => {
                kind = Some(
                    TargetKind::from_str(&v).ok_or_else(|| err(line, format!("bad kind {v:?}")))?,
                )
            }
            "ctl" if ctl.is_some() => return Err(dup()),
            "ctl" => {
                let (uid, gid) = v
                    .split_once(':')
                    .ok_or_else(|| err(line, format!("bad ctl {v:?}")))?;
                ctl = Some((
                    number::<u32>(line, "ctl", uid)?,
                    number::<u32>(line, "ctl", gid)?,
                ));
            }
            _ => return Err(err(line, format!("unknown recipient field {name:?}"))),
        }
    }
    r.target = match (kind, ctl) {
        (None, None) => None,
        (Some(kind), Some((uid, gid))) => Some(LocalTarget { kind, uid, gid }),
        _ => return Err(err(line, "kind= and ctl= go together")),
    };
    r.state = state.ok_or_else(|| err(line, "recipient without state="))?;
    r.attempts = attempts.ok_or_else(|| err(line, "recipient without attempts="))?;
    r.next_attempt = next.ok_or_else(|| err(line, "recipient without next="))?;
    Ok(r)
}

/// Message-level records seen so far, by key letter.
#[derive(Default)]
struct Seen {
    keys: Vec<char>,
}

pub(crate) fn parse(text: &str) -> Result<ControlFile, ParseError> {
    let body = text
        .strip_suffix('\n')
        .ok_or_else(|| err(0, "file does not end with a newline (truncated?)"))?;
    let mut lines = body.split('\n').enumerate().map(|(i, l)| (i + 1, l));
    match lines.next() {
        Some((_, "V1")) => {}
        Some((n, other)) => return Err(err(n, format!("expected version line V1, got {other:?}"))),
        None => return Err(err(1, "empty file")),
    }
    let mut id = None;
    let mut created = None;
    let mut sender = None;
    // I, T and S are only known once read; the placeholders below are
    // always overwritten or the parse fails.
    let placeholder: QueueId = "00000000000000".parse().expect("a valid id");
    let mut cf = ControlFile::new(placeholder, 0, "");
    let mut seen = Seen::default();
    for (n, line) in lines {
        let (key, raw) = line
            .split_once(' ')
            .ok_or_else(|| err(n, format!("expected \"<key> <value>\", got {line:?}")))?;
        let mut chars = key.chars();
        let k = match (chars.next(), chars.next()) {
            (Some(k), None) => k,
            _ => return Err(err(n, format!("unknown key {key:?}"))),
        };
        if k == 'r' {
            cf.recipients.push(recipient(n, raw)?);
            continue;
        }
        if seen.keys.contains(&k) {
            return Err(err(n, format!("duplicate key {k}")));
        }
        seen.keys.push(k);
        let v = decode(raw).map_err(|m| err(n, m))?;
        match k {
            'I' => {
                id = Some(
                    v.parse::<QueueId>()
                        .map_err(|e| err(n, format!("I: {e}")))?,
                )
            }
            'T' => created = Some(number(n, "T", &v)?),
            'S' => sender = Some(v),
            'E' => cf.envid = Some(v),
            'R' => cf.ret = Some(param::<Ret>(n, "R", &v)?),
            'B' => cf.body = Some(param::<BodyType>(n, "B", &v)?),
            'Z' => cf.size = number(n, "Z", &v)?,
            'H' => cf.helo = Some(v),
            'C' => cf.client = v,
            'P' => cf.protocol = v,
            'A' => cf.auth = Some(v),
            'Y' => cf.deliver_by = Some(param::<DeliverBy>(n, "Y", &v)?),
            'U' => cf.submitter_uid = Some(number(n, "U", &v)?),
            'Q' if v == "held" => cf.held = true,
            'Q' if !v.is_empty() => {
                cf.held = true;
                cf.quarantine = Some(v);
            }
            'Q' => return Err(err(n, "Q: empty hold reason".to_string())),
            'M' if v == "mta" => cf.through_mta = true,
            'M' => return Err(err(n, format!("M: bad route {v:?}"))),
            'W' if v == "warned" => cf.warned = true,
            'W' => return Err(err(n, format!("W: bad warning state {v:?}"))),
            'G' => {
                cf.generated = Some(
                    Generated::from_str(&v)
                        .ok_or_else(|| err(n, format!("G: bad report kind {v:?}")))?,
                )
            }
            'N' => cf.attempts = number(n, "N", &v)?,
            'K' => cf.next_attempt = number(n, "K", &v)?,
            _ => return Err(err(n, format!("unknown key {k:?}"))),
        }
    }
    cf.id = id.ok_or_else(|| err(0, "missing required key I (queue id)"))?;
    cf.created = created.ok_or_else(|| err(0, "missing required key T (creation time)"))?;
    cf.sender = sender.ok_or_else(|| err(0, "missing required key S (sender)"))?;
    Ok(cf)
}

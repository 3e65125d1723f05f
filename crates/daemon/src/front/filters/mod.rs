//! The mail filters (milter, `INPUT_MAIL_FILTER`), as a front runs them
//! for its one client, the way sendmail's `milter.c` and `srvrsmtp.c` do:
//!
//! - each SMTP stage goes to every filter in `InputMailFilters` order;
//!   the first that does not let it through decides (sendmail's replies:
//!   `550 5.7.1 Command rejected`, `451 4.3.2 Please try again later`, the
//!   filter's own reply, or 421 and the end of the session);
//! - a filter that accepts is done with the message (or, at connect and
//!   HELO, the connection); one that discards has the message accepted
//!   and thrown away;
//! - at end of message each filter in turn gets the header section, the
//!   body and the end, and its changes are made before the next one sees
//!   the message: the queue then holds exactly what the filters decided;
//! - a filter that cannot be used (down, stalled past `T=`, babbling) is
//!   dropped for the session, and its `F=` decides: nothing (mail goes
//!   on unfiltered), `T` temp-fail, `R` reject, `4` close with 421, for
//!   this command and each one after.

mod open;
mod values;

use postern_config::{FailureMode, MailFilter};
use postern_milter::edit::Message;
use postern_milter::filter::{ClientAddress, MacroLists, Timeouts};
use postern_milter::negotiate::Steps;
use postern_milter::{Filter, FilterError, Modification, Verdict};
use postern_smtp::{EnhancedCode, Reply};

use crate::log::{self, Level};
pub use open::{connect_all, FilterDirs, FilterStream, Opened};
pub use values::Values;

/// What a stage's filters decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Go on (every filter continued or accepted).
    Go,
    /// Answer the command with this (a 421 ends the session).
    Refuse(Reply),
    /// Accept, and throw the message away.
    Discard,
}

/// The envelope changes filters asked for at end of message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvelopeChanges {
    /// Recipients added, as the filter wrote them (`<a@b>`), with their
    /// ESMTP parameters.
    pub added: Vec<(String, Option<String>)>,
    /// Recipients removed.
    pub deleted: Vec<String>,
    /// A new sender, and its ESMTP parameters.
    pub sender: Option<(String, Option<String>)>,
    /// Held in the queue for this reason (`postern queue release`).
    pub quarantine: Option<String>,
}

/// What the connect stage decided for the session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectOutcome {
    /// Every command but QUIT, HELO, EHLO, NOOP and RSET gets this.
    pub refusal: Option<Reply>,
    /// The greeting's code (554 when a filter rejected the connection).
    pub greeting_code: Option<u16>,
    /// Say this instead of the greeting, and close.
    pub close: Option<Reply>,
}

struct Active {
    def: MailFilter,
    filter: Option<Filter<FilterStream>>,
}

/// The session's filters.
pub struct Filters {
    active: Vec<Active>,
    values: Values,
    hostname: String,
    /// A stage's log lines carry the message's queue ID once there is one.
    queue_id: Option<String>,
}

fn reply(code: u16, (c, s, d): (u8, u16, u16), text: &str) -> Reply {
    Reply::new(code, EnhancedCode::new(c, s, d), text)
}

/// sendmail's MSG_TEMPFAIL.
fn tempfail() -> Reply {
    reply(451, (4, 3, 2), "Please try again later")
}

/// A filter's own reply (`550-5.7.1 a\r\n550 5.7.1 b`), as a Reply.
fn filter_reply(text: &str) -> Reply {
    let code: u16 = text.get(..3).and_then(|c| c.parse().ok()).unwrap_or(451);
    let mut enhanced = None;
    let lines: Vec<String> = text
        .split("\r\n")
        .map(|line| {
            let rest = line.get(4..).unwrap_or("");
            match rest.split_once(' ') {
                Some((e, t)) if EnhancedCode::parse(e).is_some() => {
                    enhanced = EnhancedCode::parse(e);
                    t.to_string()
                }
                _ if EnhancedCode::parse(rest).is_some() => {
                    enhanced = EnhancedCode::parse(rest);
                    String::new()
                }
                _ => rest.to_string(),
            }
        })
        .collect();
    Reply::multi(code, enhanced, lines)
}

/// sendmail's "MilterLogLevel > n" as a LogLevel.
fn above(n: u8) -> Level {
    match n {
        0 => Level::Serious,
        1 => Level::LostConnection,
        2 => Level::Failure,
        3 => Level::Refusal,
        4 => Level::Received,
        5 => Level::Query,
        6 => Level::DeliveryFailure,
        7 => Level::Delivered,
        8 => Level::Deferred,
        9 => Level::Authentication,
        10 => Level::EndOfJob,
        11 => Level::Connection,
        12 => Level::BadPermission,
        13 => Level::Diagnostic,
        _ => Level::Commands,
    }
}

/// How one filter answered a stage.
enum Answer {
    Passed,
    Verdict(Verdict),
    Failed(FailureMode),
}

impl Filters {
    /// No filters: every stage goes on.
    pub fn none() -> Filters {
        Filters {
            active: Vec::new(),
            values: Values::default(),
            hostname: String::new(),
            queue_id: None,
        }
    }

    /// Whether any filter takes part (HELO is then asked about): one
    /// that is connected, or one dropped whose `F=` still answers.
    pub fn any(&self) -> bool {
        self.active
            .iter()
            .any(|a| a.filter.is_some() || a.def.on_failure != FailureMode::Ignore)
    }

    /// The macro values, for the stages to fill in.
    pub fn values(&mut self) -> &mut Values {
        &mut self.values
    }

    /// Names the message in log lines.
    pub fn set_queue_id(&mut self, queue_id: &str) {
        self.queue_id = Some(queue_id.to_string());
        self.values.set("i", queue_id);
    }

    fn log(&self, level: Level, text: &str) {
        let line = match &self.queue_id {
            Some(id) => format!("{id}: {text}"),
            None => text.to_string(),
        };
        log::info(level, &line);
    }

    /// Negotiates with every filter that could be reached and sends the
    /// connect stage: `hostname` and `client` as the connect command
    /// carries them.
    pub fn start(
        opened: Vec<Opened>,
        macros: &MacroLists,
        values: Values,
        hostname: &str,
        client_host: &str,
        client: &ClientAddress,
    ) -> (Filters, ConnectOutcome) {
        let mut filters = Filters {
            active: Vec::new(),
            values,
            hostname: hostname.to_string(),
            queue_id: None,
        };
        let mut outcome = ConnectOutcome::default();
        for o in opened {
            let timeouts = Timeouts {
                send: o.def.timeouts.send,
                read: o.def.timeouts.read,
                end_of_message: o.def.timeouts.end_of_message,
            };
            let negotiated = o
                .stream
                .map_err(|e| format!("error connecting to filter: {e}"))
                .and_then(|s| {
                    Filter::negotiate(s, timeouts, macros.clone()).map_err(|e| e.to_string())
                });
            let filter = match negotiated {
                Ok(f) => {
                    filters.log(
                        above(9),
                        &format!("Milter ({}): init success to negotiate", o.def.name),
                    );
                    Some(f)
                }
                Err(e) => {
                    filters.log(above(0), &format!("Milter ({}): {e}", o.def.name));
                    filters.log(
                        above(0),
                        &format!("Milter ({}): to error state", o.def.name),
                    );
                    None
                }
            };
            filters.active.push(Active { def: o.def, filter });
        }
        // A filter that could not be reached at all counts as sendmail's
        // milter_init failing: its F= decides for the whole session.
        let failed = filters
            .active
            .iter()
            .find(|a| a.filter.is_none() && a.def.on_failure != FailureMode::Ignore)
            .map(|a| a.def.on_failure);
        let addr = match client {
            ClientAddress::Ip { addr, .. } => addr.to_string(),
            ClientAddress::Unknown => "localhost".to_string(),
        };
        let verdict = match failed {
            Some(mode) => Answer::Failed(mode),
            None => {
                let values = filters.values.clone();
                filters.each("connect", |f| {
                    f.connect(client_host, client, &|n| values.get(n))
                })
            }
        };
        let what = |s: &str| format!("Milter: connect: host={client_host}, addr={addr}, {s}");
        match verdict {
            Answer::Passed => {}
            Answer::Verdict(Verdict::Reject | Verdict::Reply(_))
            | Answer::Failed(FailureMode::Reject) => {
                filters.log(above(3), &what("rejecting commands"));
                outcome.greeting_code = Some(554);
                outcome.refusal = Some(reply(550, (5, 0, 0), "Command rejected"));
                filters.close_all();
            }
            Answer::Verdict(Verdict::TempFail) | Answer::Failed(FailureMode::TempFail) => {
                filters.log(above(3), &what("temp failing commands"));
                outcome.refusal = Some(reply(
                    452,
                    (4, 4, 5),
                    "Insufficient disk space; try again later",
                ));
                filters.close_all();
            }
            Answer::Verdict(_) | Answer::Failed(_) => {
                filters.log(above(3), &what("shutdown"));
                outcome.close = Some(filters.closing());
                filters.close_all();
            }
        }
        if outcome != ConnectOutcome::default() {
            // The session is decided: no filter takes part any more.
            filters.active.clear();
        }
        (filters, outcome)
    }

    /// `421 4.7.0 <host> closing connection`.
    fn closing(&self) -> Reply {
        reply(
            421,
            (4, 7, 0),
            &format!("{} closing connection", self.hostname),
        )
    }

    /// Runs one stage through the filters in order: the first that does
    /// not pass it decides. sendmail's `milter=…, action=…` lines.
    fn each(
        &mut self,
        action: &str,
        mut call: impl FnMut(&mut Filter<FilterStream>) -> Result<Verdict, FilterError>,
    ) -> Answer {
        for i in 0..self.active.len() {
            let name = self.active[i].def.name.clone();
            let mode = self.active[i].def.on_failure;
            let Some(filter) = self.active[i].filter.as_mut() else {
                // Dropped earlier: its F= applies to every command after.
                if mode != FailureMode::Ignore {
                    return Answer::Failed(mode);
                }
                continue;
            };
            match call(filter) {
                Ok(Verdict::Continue) => {}
                Ok(Verdict::Accept) => self.log(
                    above(10),
                    &format!("milter={name}, action={action}, accepted"),
                ),
                Ok(v) => {
                    let said = match &v {
                        Verdict::Reply(r) => format!("reject={r}"),
                        Verdict::Reject => "reject".into(),
                        Verdict::TempFail => "tempfail".into(),
                        Verdict::Discard => "discard".into(),
                        _ => "shutdown".into(),
                    };
                    self.log(
                        above(10),
                        &format!("milter={name}, action={action}, {said}"),
                    );
                    return Answer::Verdict(v);
                }
                Err(e) => {
                    self.drop_filter(i, action, &e);
                    if mode != FailureMode::Ignore {
                        return Answer::Failed(mode);
                    }
                }
            }
        }
        Answer::Passed
    }

    fn drop_filter(&mut self, i: usize, action: &str, e: &FilterError) {
        let name = self.active[i].def.name.clone();
        self.active[i].filter = None;
        self.log(above(0), &format!("Milter ({name}): {action}: {e}"));
        self.log(above(0), &format!("Milter ({name}): to error state"));
    }

    /// The decision for a command stage (`helo`, `from`, `to`), with
    /// sendmail's replies and its `Milter: <what>=<arg>, reject=…` line.
    fn decide(&mut self, what: &str, arg: &str, answer: Answer) -> Decision {
        let refuse = |r: Reply| Decision::Refuse(r);
        let decision = match answer {
            Answer::Passed => return Decision::Go,
            Answer::Verdict(Verdict::Discard) => {
                self.log(above(3), &format!("Milter: {what}={arg}, discard"));
                return Decision::Discard;
            }
            Answer::Verdict(Verdict::Reject) | Answer::Failed(FailureMode::Reject) => {
                refuse(reply(550, (5, 7, 1), "Command rejected"))
            }
            Answer::Verdict(Verdict::TempFail) | Answer::Failed(FailureMode::TempFail) => {
                refuse(tempfail())
            }
            Answer::Verdict(Verdict::Reply(text)) => refuse(filter_reply(&text)),
            Answer::Verdict(_) | Answer::Failed(_) => {
                self.log(
                    above(3),
                    &format!("Milter: {what}={arg}, reject=421, errormode=4"),
                );
                self.close_all();
                return Decision::Refuse(reply(421, (4, 3, 0), "closing connection"));
            }
        };
        if let Decision::Refuse(r) = &decision {
            self.log(above(3), &format!("Milter: {what}={arg}, reject={r}"));
            if r.code() == 421 {
                self.close_all();
            }
        }
        decision
    }

    /// HELO or EHLO.
    pub fn helo(&mut self, name: &str) -> Decision {
        let values = self.values.clone();
        let answer = self.each("helo", |f| f.helo(name, &|n| values.get(n)));
        match self.decide("helo", name, answer) {
            // sendmail's HELO shutdown says 421 4.7.0 with the host name.
            Decision::Refuse(r) if r.code() == 421 && r.to_string().contains("4.3.0") => {
                Decision::Refuse(self.closing())
            }
            other => other,
        }
    }

    /// A command the session does not know (sendmail's milter_unknown).
    pub fn unknown(&mut self, line: &str) -> Decision {
        let answer = self.each("unknown", |f| f.unknown(line));
        self.decide("unknown", line, answer)
    }

    /// MAIL: `<sender>` and its parameters. A new message: a message in
    /// progress is aborted first.
    pub fn mail(&mut self, path: &str, params: &[String]) -> Decision {
        self.abort();
        let mut args = vec![format!("<{path}>")];
        args.extend_from_slice(params);
        let values = self.values.clone();
        let answer = self.each("mail", |f| f.mail(&args, &|n| values.get(n)));
        self.decide("from", &format!("<{path}>"), answer)
    }

    /// RCPT: `<recipient>` and its parameters.
    pub fn rcpt(&mut self, path: &str, params: &[String]) -> Decision {
        let mut args = vec![format!("<{path}>")];
        args.extend_from_slice(params);
        let values = self.values.clone();
        let answer = self.each("rcpt", |f| f.rcpt(&args, &|n| values.get(n)));
        self.decide("to", &format!("<{path}>"), answer)
    }

    /// DATA, before the 354.
    pub fn data(&mut self) -> Decision {
        let values = self.values.clone();
        let answer = self.each("data", |f| f.data(&|n| values.get(n)));
        let decision = match answer {
            Answer::Passed => return Decision::Go,
            Answer::Verdict(Verdict::Discard) => {
                self.log(above(3), "Milter: cmd=data, discard");
                return Decision::Discard;
            }
            Answer::Verdict(Verdict::Reject) | Answer::Failed(FailureMode::Reject) => {
                reply(550, (5, 7, 1), "Command rejected")
            }
            Answer::Verdict(Verdict::TempFail) | Answer::Failed(FailureMode::TempFail) => {
                tempfail()
            }
            Answer::Verdict(Verdict::Reply(text)) => filter_reply(&text),
            Answer::Verdict(_) | Answer::Failed(_) => self.closing(),
        };
        self.log(above(3), &format!("Milter: cmd=data, reject={decision}"));
        if decision.code() == 421 {
            self.close_all();
        }
        Decision::Refuse(decision)
    }

    /// End of message: each filter in turn sees the header section and
    /// body as the filters before it left them, and its changes are made
    /// at once. Returns the decision and the envelope changes.
    pub fn end_of_message(&mut self, message: &mut Message) -> (Decision, EnvelopeChanges) {
        let mut changes = EnvelopeChanges::default();
        for i in 0..self.active.len() {
            let name = self.active[i].def.name.clone();
            let mode = self.active[i].def.on_failure;
            let Some(filter) = self.active[i].filter.as_mut() else {
                if mode != FailureMode::Ignore {
                    return (self.message_failed(mode), changes);
                }
                continue;
            };
            let leading_space = filter.negotiated().steps.has(Steps::HEADER_LEADING_SPACE);
            let values = self.values.clone();
            match one_filter(filter, message, &values) {
                Ok((verdict, mods)) => {
                    let mut first_chunk = true;
                    for m in &mods {
                        self.apply(m, message, &mut changes, leading_space, first_chunk, &name);
                        if matches!(m, Modification::ReplaceBody(_)) {
                            first_chunk = false;
                        }
                    }
                    if !first_chunk {
                        message.normalise_body();
                    }
                    match verdict {
                        Verdict::Continue | Verdict::Accept => {}
                        other => return (self.message_verdict(&name, other), changes),
                    }
                }
                Err(e) => {
                    self.drop_filter(i, "eom", &e);
                    if mode != FailureMode::Ignore {
                        return (self.message_failed(mode), changes);
                    }
                }
            }
        }
        self.log(above(9), "Milter accept: message");
        (Decision::Go, changes)
    }

    /// One change: the message's, or noted for the envelope.
    fn apply(
        &mut self,
        m: &Modification,
        message: &mut Message,
        changes: &mut EnvelopeChanges,
        leading_space: bool,
        first_chunk: bool,
        name: &str,
    ) {
        let line = match m {
            Modification::AddRecipient { address, args } => {
                changes.added.push((address.clone(), args.clone()));
                Some(format!("Milter add: rcpt: {address}"))
            }
            Modification::DeleteRecipient(address) => {
                changes.deleted.push(address.clone());
                Some(format!("Milter delete: rcpt {address}"))
            }
            Modification::ChangeSender { address, args } => {
                changes.sender = Some((address.clone(), args.clone()));
                Some(format!("Milter chgfrom: {address}"))
            }
            Modification::Quarantine(reason) => {
                changes.quarantine = Some(reason.clone());
                self.log(above(3), &format!("milter={name}, quarantine={reason}"));
                None
            }
            other => message.apply(other, leading_space, first_chunk),
        };
        if let Some(line) = line {
            self.log(above(8), &line);
        }
    }

    fn message_verdict(&mut self, name: &str, verdict: Verdict) -> Decision {
        let r = match verdict {
            Verdict::Discard => {
                self.log(above(12), &format!("milter={name}, discard"));
                self.log(above(3), "Milter: data, discard");
                return Decision::Discard;
            }
            Verdict::Reject => reply(554, (5, 7, 1), "Command rejected"),
            Verdict::TempFail => tempfail(),
            Verdict::Reply(text) => filter_reply(&text),
            _ => self.closing(),
        };
        self.log(above(12), &format!("milter={name}, reject={r}"));
        self.log(above(3), &format!("Milter: data, reject={r}"));
        if r.code() == 421 {
            self.close_all();
        }
        Decision::Refuse(r)
    }

    fn message_failed(&mut self, mode: FailureMode) -> Decision {
        let r = match mode {
            FailureMode::Reject => reply(554, (5, 7, 1), "Command rejected"),
            FailureMode::TempFail => tempfail(),
            _ => self.closing(),
        };
        self.log(above(3), &format!("Milter: data, reject={r}"));
        if r.code() == 421 {
            self.close_all();
        }
        Decision::Refuse(r)
    }

    /// The message was given up: the filters forget it.
    pub fn abort(&mut self) {
        for i in 0..self.active.len() {
            if let Some(f) = self.active[i].filter.as_mut() {
                if let Err(e) = f.abort() {
                    self.drop_filter(i, "abort", &e);
                }
            }
        }
        self.values.forget_transaction();
        self.queue_id = None;
    }

    /// The session is over.
    pub fn quit(&mut self) {
        self.close_all();
    }

    fn close_all(&mut self) {
        for a in &mut self.active {
            if let Some(f) = a.filter.take() {
                f.quit();
            }
        }
    }
}

/// Headers, end of headers, body and end of message to one filter.
fn one_filter(
    filter: &mut Filter<FilterStream>,
    message: &Message,
    values: &Values,
) -> Result<(Verdict, Vec<Modification>), FilterError> {
    let value = |n: &str| values.get(n);
    let early = |v: Verdict| -> Option<(Verdict, Vec<Modification>)> {
        match v {
            Verdict::Continue | Verdict::Skip => None,
            other => Some((other, Vec::new())),
        }
    };
    for h in message.user_headers() {
        if let Some(done) = early(filter.header(&h.name, &h.value)?) {
            return Ok(done);
        }
    }
    if let Some(done) = early(filter.end_of_headers(&value)?) {
        return Ok(done);
    }
    if let Some(done) = early(filter.body(&message.body)?) {
        return Ok(done);
    }
    filter.end_of_message(&value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filters_reply_keeps_its_lines_and_enhanced_code() {
        assert_eq!(
            filter_reply("554 5.7.1 Gtube pattern").to_string(),
            "554 5.7.1 Gtube pattern"
        );
        assert_eq!(
            filter_reply("550-5.7.1 first line\r\n550 5.7.1 second line").to_string(),
            "550-5.7.1 first line\n550 5.7.1 second line"
        );
        assert_eq!(filter_reply("450 try later").to_string(), "450 try later");
    }
}

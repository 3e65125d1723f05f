//! One filter's connection, a stage at a time, as sendmail's
//! `milter_command` drives it: the stage's macros first (even when the
//! filter skips the command), then the command unless negotiated away,
//! then its answer unless negotiated away (`SMFIP_NR_*`).
//!
//! The caller keeps sendmail's order, as libmilter expects it: connect,
//! helo, then per message mail, rcpt…, data, header…, end of headers,
//! body…, end of message (or abort at any point after mail).
//!
//! Blocking, with timeouts, over any stream the caller connected: the
//! front serves one client, so a filter's wait is that client's only.
//! `T=` gives the timeouts: `S` for each write, `R` for each read, `E` for
//! the whole answer to end of message (sendmail's defaults: 10 s, 10 s,
//! 5 min); `C`, the connection's, is the caller's.

use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::macros::{self, Stage as MacroStage};
use crate::negotiate::{self, Negotiated, Steps};
use crate::response::{self, Modification, Response, ResponseError, Verdict};
use crate::wire::{self, command, WireError, DEFAULT_MAX_DATA};

/// A stream whose reads and writes can be bounded in time.
pub trait Transport: Read + Write {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()>;
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()>;
}

impl Transport for std::net::TcpStream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_read_timeout(self, t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_write_timeout(self, t)
    }
}

impl Transport for std::os::unix::net::UnixStream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(self, t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_write_timeout(self, t)
    }
}

/// `T=S`, `T=R` and `T=E`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub send: Duration,
    pub read: Duration,
    pub end_of_message: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            send: Duration::from_secs(10),
            read: Duration::from_secs(10),
            end_of_message: Duration::from_secs(300),
        }
    }
}

/// Why a filter could not be used; the caller applies its `F=`.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("timeout")]
    Timeout,
    #[error("{0}")]
    Io(io::Error),
    #[error("{0}")]
    Wire(WireError),
    #[error("negotiation: {0}")]
    Negotiation(#[from] negotiate::NegotiationError),
    #[error("{0}")]
    Response(#[from] ResponseError),
    #[error("unexpected '{}' response to {stage}", *code as char)]
    Unexpected { code: u8, stage: &'static str },
}

impl From<io::Error> for FilterError {
    fn from(e: io::Error) -> Self {
        if matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            Self::Timeout
        } else {
            Self::Io(e)
        }
    }
}

impl From<WireError> for FilterError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Io(io) => io.into(),
            other => Self::Wire(other),
        }
    }
}

/// The client, as the connect command describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientAddress {
    Ip {
        addr: IpAddr,
        port: u16,
    },
    /// A local submission (`sendmail -bs`, the command line).
    Unknown,
}

/// Where a filter stands with the current connection and message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Takes part.
    Open,
    /// Accepted or refused the message: nothing more until the next.
    DoneWithMessage,
    /// Accepted or refused the connection: nothing more at all.
    DoneWithConnection,
}

/// The macro lists in force, by stage.
pub type MacroLists = std::collections::BTreeMap<MacroStage, Vec<String>>;

/// One negotiated filter connection.
pub struct Filter<S: Transport> {
    stream: S,
    negotiated: Negotiated,
    timeouts: Timeouts,
    macros: MacroLists,
    stage: Stage,
    in_message: bool,
    skip_body: bool,
}

impl<S: Transport> Filter<S> {
    /// Negotiates over a connected stream; `macros` are the configured
    /// lists, which the filter's own requests replace stage by stage.
    pub fn negotiate(
        stream: S,
        timeouts: Timeouts,
        macros: MacroLists,
    ) -> Result<Self, FilterError> {
        let mut filter = Self {
            stream,
            negotiated: Negotiated::default(),
            timeouts,
            macros,
            stage: Stage::Open,
            in_message: false,
            skip_body: false,
        };
        filter.send(command::OPTNEG, &negotiate::offer())?;
        filter.stream.set_read_timeout(Some(timeouts.read))?;
        let packet = wire::read_packet(&mut filter.stream)?;
        if packet.code != wire::reply::OPTNEG {
            return Err(FilterError::Unexpected {
                code: packet.code,
                stage: "negotiation",
            });
        }
        filter.negotiated = negotiate::accept(&packet.data)?;
        for (stage, names) in &filter.negotiated.macro_requests {
            filter.macros.insert(*stage, names.clone());
        }
        Ok(filter)
    }

    /// What the filter negotiated.
    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// Where the filter stands.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// The connect command: the client's name and address.
    pub fn connect(
        &mut self,
        hostname: &str,
        client: &ClientAddress,
        value: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Verdict, FilterError> {
        let mut data = Vec::new();
        wire::c_string(&mut data, hostname.as_bytes());
        match client {
            ClientAddress::Ip { addr, port } => {
                data.push(if addr.is_ipv4() { b'4' } else { b'6' });
                data.extend_from_slice(&port.to_be_bytes());
                wire::c_string(&mut data, addr.to_string().as_bytes());
            }
            ClientAddress::Unknown => data.push(b'U'),
        }
        let v = self.command(
            MacroStage::Connect,
            value,
            &data,
            Steps::NO_CONNECT,
            Steps::NR_CONNECT,
            "connect",
        )?;
        self.settle_connection(&v);
        Ok(v)
    }

    /// HELO or EHLO's name.
    pub fn helo(
        &mut self,
        name: &str,
        value: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Verdict, FilterError> {
        let mut data = Vec::new();
        wire::c_string(&mut data, name.as_bytes());
        let v = self.command(
            MacroStage::Helo,
            value,
            &data,
            Steps::NO_HELO,
            Steps::NR_HELO,
            "helo",
        )?;
        self.settle_connection(&v);
        Ok(v)
    }

    /// MAIL: `<sender>` then each ESMTP parameter. Starts a message.
    pub fn mail(
        &mut self,
        args: &[String],
        value: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Verdict, FilterError> {
        if self.stage == Stage::DoneWithMessage {
            self.stage = Stage::Open;
        }
        self.in_message = true;
        self.skip_body = false;
        let data = strings(args);
        let v = self.command(
            MacroStage::EnvFrom,
            value,
            &data,
            Steps::NO_MAIL,
            Steps::NR_MAIL,
            "envfrom",
        )?;
        self.settle_message(&v);
        Ok(v)
    }

    /// RCPT: `<recipient>` then each ESMTP parameter. A refusal is the
    /// recipient's only.
    pub fn rcpt(
        &mut self,
        args: &[String],
        value: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Verdict, FilterError> {
        let data = strings(args);
        let v = self.command(
            MacroStage::EnvRcpt,
            value,
            &data,
            Steps::NO_RCPT,
            Steps::NR_RCPT,
            "envrcpt",
        )?;
        if matches!(v, Verdict::Accept | Verdict::Discard) {
            self.stage = Stage::DoneWithMessage;
        }
        Ok(v)
    }

    /// DATA.
    pub fn data(&mut self, value: &dyn Fn(&str) -> Option<String>) -> Result<Verdict, FilterError> {
        let v = self.command(
            MacroStage::Data,
            value,
            &[],
            Steps::NO_DATA,
            Steps::NR_DATA,
            "data",
        )?;
        self.settle_message(&v);
        Ok(v)
    }

    /// One header, its value as it follows the colon in the message
    /// (folded with CRLF, possibly 8-bit): sent with LF line ends, as
    /// sendmail keeps them, and without the leading space unless the
    /// filter wants it.
    pub fn header(&mut self, name: &str, raw_value: &[u8]) -> Result<Verdict, FilterError> {
        let mut value: Vec<u8> = Vec::with_capacity(raw_value.len());
        let mut i = 0;
        while i < raw_value.len() {
            if raw_value[i] == b'\r' && raw_value.get(i + 1) == Some(&b'\n') {
                i += 1;
                continue;
            }
            value.push(raw_value[i]);
            i += 1;
        }
        if !self.negotiated.steps.has(Steps::HEADER_LEADING_SPACE) {
            let start = value.iter().position(|b| !matches!(b, b' ' | b'\t'));
            value.drain(..start.unwrap_or(value.len()));
        }
        let mut data = Vec::new();
        wire::c_string(&mut data, name.as_bytes());
        wire::c_string(&mut data, &value);
        let v = self.plain_command(
            command::HEADER,
            &data,
            Steps::NO_HEADERS,
            Steps::NR_HEADER,
            "header",
        )?;
        self.settle_message(&v);
        Ok(v)
    }

    /// The end of the header section.
    pub fn end_of_headers(
        &mut self,
        value: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Verdict, FilterError> {
        let v = self.command(
            MacroStage::Eoh,
            value,
            &[],
            Steps::NO_EOH,
            Steps::NR_EOH,
            "eoh",
        )?;
        self.settle_message(&v);
        Ok(v)
    }

    /// Body text, CRLF line ends, as received (dot-unstuffed), in chunks
    /// of at most 64 KiB.
    pub fn body(&mut self, text: &[u8]) -> Result<Verdict, FilterError> {
        for chunk in text.chunks(DEFAULT_MAX_DATA) {
            if self.skip_body || self.stage != Stage::Open {
                break;
            }
            let v =
                self.plain_command(command::BODY, chunk, Steps::NO_BODY, Steps::NR_BODY, "body")?;
            match v {
                Verdict::Skip if self.negotiated.steps.has(Steps::SKIP) => self.skip_body = true,
                Verdict::Skip => {
                    return Err(FilterError::Unexpected {
                        code: wire::reply::SKIP,
                        stage: "body",
                    })
                }
                Verdict::Continue => {}
                other => {
                    self.settle_message(&other);
                    return Ok(other);
                }
            }
        }
        Ok(Verdict::Continue)
    }

    /// End of message: the filter's changes, then its verdict, all within
    /// `T=E`.
    pub fn end_of_message(
        &mut self,
        value: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Verdict, Vec<Modification>), FilterError> {
        if self.stage != Stage::Open {
            return Ok((Verdict::Continue, Vec::new()));
        }
        self.send_macros(MacroStage::Eom, value)?;
        self.send(command::BODY_EOB, &[])?;
        let deadline = Instant::now() + self.timeouts.end_of_message;
        let mut changes = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(FilterError::Timeout);
            }
            self.stream
                .set_read_timeout(Some(left.min(self.timeouts.read)))?;
            let packet = wire::read_packet(&mut self.stream)?;
            match response::decode(&packet)? {
                Response::Progress => continue,
                Response::Modification(m) => {
                    self.check_allowed(&m, packet.code)?;
                    changes.push(m);
                }
                Response::Verdict(Verdict::Skip) => {
                    return Err(FilterError::Unexpected {
                        code: packet.code,
                        stage: "eom",
                    })
                }
                Response::Verdict(v) => {
                    self.in_message = false;
                    self.stage = match self.stage {
                        Stage::DoneWithConnection => Stage::DoneWithConnection,
                        _ => Stage::Open,
                    };
                    return Ok((v, changes));
                }
            }
        }
    }

    /// A command the SMTP server did not know.
    pub fn unknown(&mut self, line: &str) -> Result<Verdict, FilterError> {
        if self.negotiated.version < 3 {
            return Ok(Verdict::Continue);
        }
        let mut data = Vec::new();
        wire::c_string(&mut data, line.as_bytes());
        self.plain_command(
            command::UNKNOWN,
            &data,
            Steps::NO_UNKNOWN,
            Steps::NR_UNKNOWN,
            "unknown",
        )
    }

    /// The message was given up (RSET, a refusal, the client left): the
    /// filter forgets it. Nothing is answered.
    pub fn abort(&mut self) -> Result<(), FilterError> {
        if self.in_message && self.stage != Stage::DoneWithConnection {
            self.send(command::ABORT, &[])?;
        }
        self.in_message = false;
        if self.stage == Stage::DoneWithMessage {
            self.stage = Stage::Open;
        }
        Ok(())
    }

    /// The session is over.
    pub fn quit(mut self) {
        let _ = self.send(command::QUIT, &[]);
    }

    /// Macros, then the command unless skipped, then its answer unless
    /// not answered.
    fn command(
        &mut self,
        stage: MacroStage,
        value: &dyn Fn(&str) -> Option<String>,
        data: &[u8],
        skip: u32,
        no_reply: u32,
        name: &'static str,
    ) -> Result<Verdict, FilterError> {
        if self.stage != Stage::Open {
            return Ok(Verdict::Continue);
        }
        self.send_macros(stage, value)?;
        self.plain_command(stage.command(), data, skip, no_reply, name)
    }

    fn plain_command(
        &mut self,
        code: u8,
        data: &[u8],
        skip: u32,
        no_reply: u32,
        name: &'static str,
    ) -> Result<Verdict, FilterError> {
        let steps = self.negotiated.steps;
        if self.stage != Stage::Open || steps.has(skip) {
            return Ok(Verdict::Continue);
        }
        self.send(code, data)?;
        if steps.has(no_reply) {
            return Ok(Verdict::Continue);
        }
        self.read_verdict(name)
    }

    fn send_macros(
        &mut self,
        stage: MacroStage,
        value: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), FilterError> {
        let Some(wanted) = self.macros.get(&stage).filter(|w| !w.is_empty()) else {
            return Ok(());
        };
        let data = macros::packet_data(stage, wanted, value);
        if data.len() > 1 {
            self.send(command::MACRO, &data)?;
        }
        Ok(())
    }

    fn send(&mut self, code: u8, data: &[u8]) -> Result<(), FilterError> {
        self.stream.set_write_timeout(Some(self.timeouts.send))?;
        wire::write_packet(&mut self.stream, code, data)?;
        Ok(())
    }

    /// A verdict, after any progress reports; a modification here is a
    /// protocol error (they belong to end of message).
    fn read_verdict(&mut self, stage: &'static str) -> Result<Verdict, FilterError> {
        loop {
            self.stream.set_read_timeout(Some(self.timeouts.read))?;
            let packet = wire::read_packet(&mut self.stream)?;
            match response::decode(&packet)? {
                Response::Progress => continue,
                Response::Verdict(v) => return Ok(v),
                Response::Modification(_) => {
                    return Err(FilterError::Unexpected {
                        code: packet.code,
                        stage,
                    })
                }
            }
        }
    }

    /// A change the filter did not negotiate is refused, as sendmail
    /// refuses it.
    fn check_allowed(&self, m: &Modification, code: u8) -> Result<(), FilterError> {
        use crate::negotiate::Actions as A;
        let needed = match m {
            Modification::AddHeader { .. } => A::ADD_HEADERS,
            Modification::InsertHeader { .. } => A::ADD_HEADERS,
            Modification::ChangeHeader { .. } => A::CHANGE_HEADERS,
            Modification::ReplaceBody(_) => A::CHANGE_BODY,
            Modification::AddRecipient { args: None, .. } => A::ADD_RCPT | A::ADD_RCPT_PAR,
            Modification::AddRecipient { .. } => A::ADD_RCPT_PAR,
            Modification::DeleteRecipient(_) => A::DEL_RCPT,
            Modification::ChangeSender { .. } => A::CHANGE_FROM,
            Modification::Quarantine(_) => A::QUARANTINE,
        };
        if self.negotiated.actions.allows(needed) {
            Ok(())
        } else {
            Err(FilterError::Unexpected {
                code,
                stage: "eom (action not negotiated)",
            })
        }
    }

    /// Accept or refusal of the connection ends the filter's part in it.
    fn settle_connection(&mut self, v: &Verdict) {
        if matches!(
            v,
            Verdict::Accept
                | Verdict::Reject
                | Verdict::TempFail
                | Verdict::Reply(_)
                | Verdict::Discard
        ) {
            self.stage = Stage::DoneWithConnection;
        }
    }

    /// Accept or refusal of the message ends the filter's part in it.
    fn settle_message(&mut self, v: &Verdict) {
        if !matches!(v, Verdict::Continue | Verdict::Skip) && self.stage == Stage::Open {
            self.stage = Stage::DoneWithMessage;
        }
    }
}

/// NUL-terminated strings, one after the other.
fn strings(args: &[String]) -> Vec<u8> {
    let mut data = Vec::new();
    for a in args {
        wire::c_string(&mut data, a.as_bytes());
    }
    data
}

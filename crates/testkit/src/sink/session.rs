//! One sink connection: read a line, answer it, repeat.
//!
//! PIPELINING (RFC 2920) needs nothing special from a server that answers
//! every command in order; the one rule is when to write. Like Postfix, the
//! sink buffers replies and flushes only when its input buffer is empty,
//! so a pipelined group is answered in one write and a client that waits
//! for each reply still gets it at once.
//!
//! DATA ends only at CRLF `.` CRLF: a `.` CRLF line counts as the end only
//! if the previous line ended in CRLF (or it is the first line). A leading
//! dot is removed (unstuffed) at the same line starts. Bare LF and bare CR
//! are kept in the data as received, so tests can see what a client sent.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, TcpStream};

use super::{ReceivedMessage, Shared};

/// What the command loop does next.
enum Next {
    Continue,
    /// QUIT answered, or the scripted drop after DATA.
    Close,
}

struct Session<'a> {
    shared: &'a Shared,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    out: Vec<u8>,
    helo: Option<String>,
    mail_from: Option<String>,
    mail_params: String,
    rcpt_to: Vec<String>,
    rcpt_params: Vec<String>,
}

/// Serves one connection until QUIT, EOF or an I/O error.
pub(super) fn serve(shared: &Shared, stream: TcpStream) -> io::Result<()> {
    let writer = stream.try_clone()?;
    let mut session = Session {
        shared,
        reader: BufReader::new(stream),
        writer,
        out: Vec::new(),
        helo: None,
        mail_from: None,
        mail_params: String::new(),
        rcpt_to: Vec::new(),
        rcpt_params: Vec::new(),
    };
    session.run()
}

impl Session<'_> {
    fn run(&mut self) -> io::Result<()> {
        let greeting = self.shared.behavior.greeting.clone();
        self.reply(&greeting);
        self.flush()?;
        if !greeting.starts_with('2') {
            return Ok(());
        }
        loop {
            let mut line = Vec::new();
            if self.reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            let text = String::from_utf8_lossy(strip_line_end(&line)).into_owned();
            if let Next::Close = self.command(&text)? {
                self.flush()?;
                return Ok(());
            }
            self.flush_if_idle()?;
        }
    }

    fn command(&mut self, line: &str) -> io::Result<Next> {
        let (verb, arg) = match line.split_once(' ') {
            Some((verb, arg)) => (verb, arg.trim()),
            None => (line.trim(), ""),
        };
        match verb.to_ascii_uppercase().as_str() {
            "HELO" | "EHLO" if arg.is_empty() => self.code(501, "5.5.4", "Hostname required"),
            "HELO" => {
                self.start_over(arg);
                self.reply(&format!("250 {}", self.shared.behavior.hostname));
            }
            "EHLO" if self.shared.behavior.reject_ehlo => self.reply("500 Command unrecognized"),
            "EHLO" => {
                self.start_over(arg);
                let mut lines = vec![self.shared.behavior.hostname.clone()];
                lines.extend(self.shared.behavior.extensions.iter().cloned());
                let last = lines.len() - 1;
                let reply: Vec<String> = lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("250{}{l}", if i == last { ' ' } else { '-' }))
                    .collect();
                self.reply(&reply.join("\n"));
            }
            "MAIL" => self.mail(arg),
            "RCPT" => self.rcpt(arg),
            "DATA" => return self.data(),
            "RSET" => {
                self.reset();
                self.code(250, "2.0.0", "Ok");
            }
            "NOOP" => self.code(250, "2.0.0", "Ok"),
            "VRFY" => self.code(252, "2.5.2", "Cannot VRFY user"),
            "QUIT" => {
                match self.shared.behavior.quit_reply.clone() {
                    Some(reply) => self.reply(&reply),
                    None => {
                        let text = format!("{} closing connection", self.shared.behavior.hostname);
                        self.code(221, "2.0.0", &text)
                    }
                }
                return Ok(Next::Close);
            }
            _ => self.code(500, "5.5.2", "Command unrecognized"),
        }
        Ok(Next::Continue)
    }

    fn mail(&mut self, arg: &str) {
        if self.helo.is_none() {
            return self.code(503, "5.5.1", "Send HELO/EHLO first");
        }
        if self.mail_from.is_some() {
            return self.code(503, "5.5.1", "Nested MAIL command");
        }
        let Some(path) = parse_path(arg, "FROM:") else {
            return self.code(501, "5.5.4", "Syntax: MAIL FROM:<address>");
        };
        let reply = match &self.shared.behavior.mail_reply {
            Some(reply) => reply.clone(),
            None => self.format_code(250, "2.1.0", "Ok"),
        };
        if reply.starts_with('2') {
            self.mail_from = Some(path);
            self.mail_params = after_path(arg).to_string();
        }
        self.reply(&reply);
    }

    fn rcpt(&mut self, arg: &str) {
        if self.mail_from.is_none() {
            return self.code(503, "5.5.1", "Need MAIL command");
        }
        let Some(path) = parse_path(arg, "TO:") else {
            return self.code(501, "5.5.4", "Syntax: RCPT TO:<address>");
        };
        let key = path.to_ascii_lowercase();
        let behavior = &self.shared.behavior;
        let attempts = {
            let mut st = self.shared.lock();
            let n = st.rcpt_attempts.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let reply = match (
            behavior.rcpt_tempfails.get(&key),
            behavior.rcpt_replies.get(&key),
        ) {
            (Some(&fails), _) if attempts <= fails => "451 4.3.0 try later".to_string(),
            (_, Some(reply)) => reply.clone(),
            _ => self.format_code(250, "2.1.5", "Ok"),
        };
        if reply.starts_with('2') {
            self.rcpt_to.push(path);
            self.rcpt_params.push(after_path(arg).to_string());
        }
        self.reply(&reply);
    }

    fn data(&mut self) -> io::Result<Next> {
        let Some(mail_from) = self.mail_from.clone() else {
            self.code(503, "5.5.1", "Need MAIL command");
            return Ok(Next::Continue);
        };
        if self.rcpt_to.is_empty() {
            self.code(554, "5.5.1", "No valid recipients");
            return Ok(Next::Continue);
        }
        self.reply("354 End data with <CR><LF>.<CR><LF>");
        self.flush_if_idle()?;
        let data = self.read_body()?;
        let message = ReceivedMessage {
            mail_from,
            mail_params: std::mem::take(&mut self.mail_params),
            rcpt_to: std::mem::take(&mut self.rcpt_to),
            rcpt_params: std::mem::take(&mut self.rcpt_params),
            data,
            helo: self.helo.clone().unwrap_or_default(),
        };
        self.reset();
        let behavior = &self.shared.behavior;
        // Recorded before the reply is written, so a test that has seen the
        // 250 also sees the message.
        let mut st = self.shared.lock();
        st.data_count += 1;
        if st.data_count <= behavior.drop_after_data {
            st.dropped.push(message);
            drop(st);
            self.shared.notify();
            // No reply at all: the client must treat the message as not sent.
            let _ = self.writer.shutdown(Shutdown::Both);
            self.out.clear();
            return Ok(Next::Close);
        }
        let reply = match &behavior.data_reply {
            Some(reply) => reply.clone(),
            None => self.format_code(
                250,
                "2.0.0",
                &format!("Ok: queued as SINK{:04}", st.data_count),
            ),
        };
        if reply.starts_with('2') {
            st.messages.push(message);
        }
        drop(st);
        self.shared.notify();
        self.reply(&reply);
        Ok(Next::Continue)
    }

    /// Reads the body up to CRLF `.` CRLF, unstuffing leading dots.
    fn read_body(&mut self) -> io::Result<Vec<u8>> {
        let mut data = Vec::new();
        let mut at_line_start = true;
        loop {
            let mut line = Vec::new();
            if self.reader.read_until(b'\n', &mut line)? == 0 || !line.ends_with(b"\n") {
                // A client that vanishes mid-DATA sent no message.
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before the end of DATA",
                ));
            }
            if at_line_start && line == b".\r\n" {
                return Ok(data);
            }
            let unstuffed = match line.first() {
                Some(b'.') if at_line_start => &line[1..],
                _ => &line[..],
            };
            data.extend_from_slice(unstuffed);
            at_line_start = line.ends_with(b"\r\n");
        }
    }

    /// HELO/EHLO: a new name and no transaction (RFC 5321 §4.1.4).
    fn start_over(&mut self, name: &str) {
        self.helo = Some(name.to_string());
        self.reset();
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.mail_params.clear();
        self.rcpt_to.clear();
        self.rcpt_params.clear();
    }

    fn format_code(&self, code: u16, enhanced: &str, text: &str) -> String {
        if self.shared.behavior.enhanced_codes() {
            format!("{code} {enhanced} {text}")
        } else {
            format!("{code} {text}")
        }
    }

    fn code(&mut self, code: u16, enhanced: &str, text: &str) {
        let reply = self.format_code(code, enhanced, text);
        self.reply(&reply);
    }

    /// Queues a reply; `\n` separates the lines of a multi-line reply.
    fn reply(&mut self, text: &str) {
        for line in text.split('\n') {
            self.out
                .extend_from_slice(line.trim_end_matches('\r').as_bytes());
            self.out.extend_from_slice(b"\r\n");
        }
    }

    /// Writes the queued replies once the client has nothing more in flight.
    fn flush_if_idle(&mut self) -> io::Result<()> {
        if self.reader.buffer().is_empty() {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.writer.write_all(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }
}

fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `FROM:<a@b> SIZE=1` → `a@b`; the keyword is case-insensitive and a
/// space after the colon is tolerated, as many servers do.
fn parse_path(arg: &str, keyword: &str) -> Option<String> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start().strip_prefix('<')?;
    let end = rest.find('>')?;
    Some(rest[..end].to_string())
}

/// What follows the `<path>` of a MAIL or RCPT argument: its parameters.
fn after_path(arg: &str) -> &str {
    arg.find('>').map_or("", |end| arg[end + 1..].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("FROM:<a@b> SIZE=10", "FROM:").as_deref(),
            Some("a@b")
        );
        assert_eq!(parse_path("from: <>", "FROM:").as_deref(), Some(""));
        assert_eq!(parse_path("TO:a@b", "TO:"), None);
        assert_eq!(parse_path("FROM:<a@b>", "TO:"), None);
        assert_eq!(parse_path("T", "TO:"), None);
        assert_eq!(after_path("FROM:<a@b> SIZE=10 BY=5;R"), "SIZE=10 BY=5;R");
        assert_eq!(after_path("FROM:<>"), "");
    }
}

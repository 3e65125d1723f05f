//! A tiny blocking SMTP client for tests: [`smtp_send`] for "send this
//! message", [`SmtpConversation`] for transcripts written line by line.
//!
//! Replies are read strictly: every line must end in CRLF and start with
//! three digits and a space or hyphen, because the server under test is
//! ours and a sloppy reply is a bug worth failing on.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use postern_smtp::client::DotStuffer;

/// Connect, read and write timeout of the test client.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The name the test client gives in EHLO/HELO.
const CLIENT_NAME: &str = "client.test";

/// A scripted SMTP conversation over one connection.
///
/// The plain methods panic with a message naming the peer and what went
/// wrong, which keeps transcripts short; the `try_` ones return the error
/// for tests that expect a failure.
#[derive(Debug)]
pub struct SmtpConversation {
    peer: SocketAddr,
    reader: BufReader<TcpStream>,
}

impl SmtpConversation {
    /// Connects to `addr`; panics if that fails. Does not read the greeting.
    pub fn connect(addr: SocketAddr) -> Self {
        Self::try_connect(addr).unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"))
    }

    /// Connects to `addr` with the kit's 10 s timeouts.
    pub fn try_connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        Self::from_stream(stream, IO_TIMEOUT)
    }

    pub(crate) fn from_stream(stream: TcpStream, timeout: Duration) -> io::Result<Self> {
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Self {
            peer: stream.peer_addr()?,
            reader: BufReader::new(stream),
        })
    }

    /// The underlying socket, e.g. to shut down one direction.
    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// Reads one complete reply; its lines (without CRLF) joined by `\n`.
    /// Panics on EOF, timeout or a malformed line.
    pub fn read_reply(&mut self) -> String {
        self.try_read_reply()
            .unwrap_or_else(|e| panic!("reading a reply from {}: {e}", self.peer))
    }

    /// Reads one complete reply.
    pub fn try_read_reply(&mut self) -> io::Result<String> {
        let mut lines: Vec<String> = Vec::new();
        loop {
            let mut raw = Vec::new();
            self.reader.read_until(b'\n', &mut raw)?;
            let line = String::from_utf8_lossy(&raw).into_owned();
            if raw.is_empty() || !raw.ends_with(b"\n") {
                let before = if lines.is_empty() {
                    String::new()
                } else {
                    format!(" after {:?}", lines.join("\n"))
                };
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("connection closed{before} (partial line {line:?})"),
                ));
            }
            let Some(line) = line.strip_suffix("\r\n") else {
                return Err(invalid(format!("reply line without CRLF: {line:?}")));
            };
            let bytes = line.as_bytes();
            let well_formed = bytes.len() >= 3
                && bytes[..3].iter().all(u8::is_ascii_digit)
                && matches!(bytes.get(3), None | Some(b' ') | Some(b'-'));
            if !well_formed {
                return Err(invalid(format!("malformed reply line: {line:?}")));
            }
            if let Some(first) = lines.first() {
                if first[..3] != line[..3] {
                    return Err(invalid(format!(
                        "reply code changed inside a reply: {first:?} then {line:?}"
                    )));
                }
            }
            let last = bytes.get(3) != Some(&b'-');
            lines.push(line.to_string());
            if last {
                return Ok(lines.join("\n"));
            }
        }
    }

    /// Sends `line` followed by CRLF; panics on error.
    pub fn send_line(&mut self, line: &str) {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.send_raw(&bytes);
    }

    /// Sends bytes exactly as given (several pipelined commands, a body
    /// with bare LFs, half a line …); panics on error.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.try_send_raw(bytes)
            .unwrap_or_else(|e| panic!("writing to {}: {e}", self.peer));
    }

    /// Sends bytes exactly as given.
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        let stream = self.reader.get_mut();
        stream.write_all(bytes)?;
        stream.flush()
    }

    /// Sends `line`, reads the reply and asserts that it starts with
    /// `expect` (`"250"`, `"550 5.1.1"` …); returns the reply.
    pub fn cmd(&mut self, line: &str, expect: &str) -> String {
        self.send_line(line);
        let reply = self.read_reply();
        assert!(
            reply.starts_with(expect),
            "{}: {line:?} got {reply:?}, expected a reply starting with {expect:?}",
            self.peer
        );
        reply
    }

    /// Asserts that the server closes the connection without sending
    /// anything more (within the read timeout).
    pub fn expect_closed(&mut self) {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) if rest.is_empty() => {}
            Ok(_) => panic!(
                "{}: expected the connection to close, got {:?}",
                self.peer,
                String::from_utf8_lossy(&rest)
            ),
            // A reset is also a close.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("{}: expected the connection to close: {e}", self.peer),
        }
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Sends one message and returns the reply to its final dot, e.g.
/// `250 2.0.0 <qid> Message accepted for delivery`.
///
/// EHLO as `client.test` (HELO if EHLO is refused); MAIL, RCPTs and DATA
/// as one pipelined write when the server offers PIPELINING, one by one
/// otherwise. The body is dot-stuffed and line ends made CRLF by
/// [`DotStuffer::encode_all`]; use [`SmtpConversation::send_raw`] to send
/// anything else. Any reply other than the expected one is an `Err` naming
/// the command; a refused recipient aborts the whole message (RSET, or, if
/// the server already said 354 to a pipelined DATA, closing the connection
/// without the final dot).
pub fn smtp_send(
    addr: SocketAddr,
    from: &str,
    rcpts: &[&str],
    data: &[u8],
) -> Result<String, String> {
    let mut c = SmtpConversation::try_connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let read = |c: &mut SmtpConversation, what: &str| {
        c.try_read_reply()
            .map_err(|e| format!("{what}: no reply from {addr}: {e}"))
    };
    let send = |c: &mut SmtpConversation, bytes: &[u8]| {
        c.try_send_raw(bytes)
            .map_err(|e| format!("writing to {addr}: {e}"))
    };

    let greeting = read(&mut c, "greeting")?;
    expect(&greeting, "220", "greeting")?;
    send(&mut c, format!("EHLO {CLIENT_NAME}\r\n").as_bytes())?;
    let ehlo = read(&mut c, "EHLO")?;
    let pipelining = if ehlo.starts_with("250") {
        ehlo.lines().skip(1).any(|l| {
            let keyword = l.get(4..).unwrap_or("").split(' ').next().unwrap_or("");
            keyword.eq_ignore_ascii_case("PIPELINING")
        })
    } else {
        send(&mut c, format!("HELO {CLIENT_NAME}\r\n").as_bytes())?;
        let helo = read(&mut c, "HELO")?;
        expect(&helo, "250", "HELO")?;
        false
    };

    let mut commands = vec![format!("MAIL FROM:<{from}>")];
    commands.extend(rcpts.iter().map(|r| format!("RCPT TO:<{r}>")));
    commands.push("DATA".to_string());
    let mut failure = None;
    let mut data_ok = false;
    if pipelining {
        let group: String = commands.iter().map(|c| format!("{c}\r\n")).collect();
        send(&mut c, group.as_bytes())?;
        // Every pipelined command gets its reply, failed or not.
        for (i, command) in commands.iter().enumerate() {
            let reply = read(&mut c, command)?;
            let wanted = if i + 1 == commands.len() {
                "354"
            } else {
                "250"
            };
            match expect(&reply, wanted, command) {
                Ok(()) => data_ok = wanted == "354",
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
    } else {
        for (i, command) in commands.iter().enumerate() {
            send(&mut c, format!("{command}\r\n").as_bytes())?;
            let reply = read(&mut c, command)?;
            let wanted = if i + 1 == commands.len() {
                "354"
            } else {
                "250"
            };
            if let Err(e) = expect(&reply, wanted, command) {
                failure = Some(e);
                break;
            }
            data_ok = wanted == "354";
        }
    }
    if let Some(failure) = failure {
        if data_ok {
            // The server waits for a body we must not send: closing the
            // connection without the final dot aborts the transaction.
            let _ = c.stream().shutdown(Shutdown::Both);
        } else {
            let _ = send(&mut c, b"RSET\r\nQUIT\r\n");
        }
        return Err(failure);
    }

    send(&mut c, &DotStuffer::encode_all(data))?;
    let last = read(&mut c, "end of data")?;
    // QUIT is courtesy; the message's fate is already decided.
    if send(&mut c, b"QUIT\r\n").is_ok() {
        let _ = c.try_read_reply();
    }
    expect(&last, "2", "end of data")?;
    Ok(last)
}

fn expect(reply: &str, prefix: &str, what: &str) -> Result<(), String> {
    if reply.starts_with(prefix) {
        Ok(())
    } else {
        Err(format!("{what}: {reply}"))
    }
}

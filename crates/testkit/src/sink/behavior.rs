//! What the sink says: its extensions and the replies a test scripts.

use std::collections::HashMap;

use super::Sink;

/// How a [`Sink`] behaves; a builder, used as
/// `SinkBehavior::new().rcpt_reply("bad@x", "550 5.1.1 no").start()`.
///
/// Replies are given as wire text without the final CRLF; a multi-line
/// reply separates its lines with `\n` and writes its own `250-` hyphens.
/// Recipient addresses are matched case-insensitively, without the angle
/// brackets.
#[derive(Clone, Debug)]
pub struct SinkBehavior {
    pub(crate) greeting: String,
    pub(crate) extensions: Vec<String>,
    pub(crate) reject_ehlo: bool,
    pub(crate) mail_reply: Option<String>,
    pub(crate) rcpt_replies: HashMap<String, String>,
    pub(crate) rcpt_tempfails: HashMap<String, usize>,
    pub(crate) data_reply: Option<String>,
    pub(crate) quit_reply: Option<String>,
    pub(crate) drop_after_data: usize,
    pub(crate) hostname: String,
}

impl Default for SinkBehavior {
    fn default() -> Self {
        Self::new()
    }
}

impl SinkBehavior {
    /// A well-behaved server: greeting `220 sink.test ESMTP`, EHLO offering
    /// PIPELINING, 8BITMIME, SIZE and ENHANCEDSTATUSCODES, everything
    /// accepted.
    pub fn new() -> Self {
        Self {
            greeting: "220 sink.test ESMTP".to_string(),
            extensions: ["PIPELINING", "8BITMIME", "SIZE", "ENHANCEDSTATUSCODES"]
                .map(String::from)
                .to_vec(),
            reject_ehlo: false,
            mail_reply: None,
            rcpt_replies: HashMap::new(),
            rcpt_tempfails: HashMap::new(),
            data_reply: None,
            quit_reply: None,
            drop_after_data: 0,
            hostname: "sink.test".to_string(),
        }
    }

    /// Starts a sink with this behaviour.
    pub fn start(self) -> Sink {
        Sink::start_with(self)
    }

    /// Starts a sink with this behaviour on `addr`.
    pub fn start_at(self, addr: std::net::SocketAddr) -> Sink {
        Sink::start_at(self, addr)
    }

    /// Replaces the greeting, e.g. `"554 5.3.2 go away"` or a multi-line
    /// `"220-sink.test\n220 hello"`.
    pub fn greeting(mut self, reply: &str) -> Self {
        self.greeting = reply.to_string();
        self
    }

    /// The name the sink gives itself in its greeting and its EHLO, HELO
    /// and QUIT replies (default `sink.test`).
    pub fn hostname(mut self, name: &str) -> Self {
        self.greeting = self.greeting.replace(&self.hostname, name);
        self.hostname = name.to_string();
        self
    }

    /// Replaces the EHLO extension list; an empty list answers EHLO with
    /// the bare `250 sink.test`. Without `ENHANCEDSTATUSCODES` the sink's
    /// own replies carry no `x.y.z` codes (RFC 2034 §3).
    pub fn extensions(mut self, extensions: &[&str]) -> Self {
        self.extensions = extensions.iter().map(|e| e.to_string()).collect();
        self
    }

    /// Answers EHLO with `500 Command unrecognized`, as a pre-ESMTP server
    /// does, so that the client must fall back to HELO. Implies no
    /// extensions.
    pub fn reject_ehlo(mut self) -> Self {
        self.reject_ehlo = true;
        self.extensions.clear();
        self
    }

    /// The reply to every MAIL command; a non-2xx reply refuses the sender.
    pub fn mail_reply(mut self, reply: &str) -> Self {
        self.mail_reply = Some(reply.to_string());
        self
    }

    /// The reply to every `RCPT TO:<addr>`; a non-2xx reply refuses the
    /// recipient, a 2xx one (say `251 …`) accepts it.
    pub fn rcpt_reply(mut self, addr: &str, reply: &str) -> Self {
        self.rcpt_replies
            .insert(addr.to_ascii_lowercase(), reply.to_string());
        self
    }

    /// The first `attempts` RCPTs for `addr` (counted over all connections)
    /// get `451 4.3.0 try later`; later ones are answered normally.
    pub fn rcpt_tempfail(mut self, addr: &str, attempts: usize) -> Self {
        self.rcpt_tempfails
            .insert(addr.to_ascii_lowercase(), attempts);
        self
    }

    /// The reply to the final dot of every message; a non-2xx reply means
    /// the message is not recorded.
    pub fn data_reply(mut self, reply: &str) -> Self {
        self.data_reply = Some(reply.to_string());
        self
    }

    /// The reply to QUIT (Postfix's smtp-sink says `221 Bye`).
    pub fn quit_reply(mut self, reply: &str) -> Self {
        self.quit_reply = Some(reply.to_string());
        self
    }

    /// For the first `messages` DATA transactions, read the whole body and
    /// then close the connection without a reply: the client cannot know
    /// whether the message arrived and must try again. The bodies are kept
    /// in [`Sink::dropped_messages`], not in [`Sink::messages`].
    pub fn drop_connection_after_data(mut self, messages: usize) -> Self {
        self.drop_after_data = messages;
        self
    }

    pub(crate) fn enhanced_codes(&self) -> bool {
        self.extensions
            .iter()
            .any(|e| e.eq_ignore_ascii_case("ENHANCEDSTATUSCODES"))
    }
}

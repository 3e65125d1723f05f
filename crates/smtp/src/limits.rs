//! Size limits, from RFC 5321 §4.5.3 and sendmail.
//!
//! RFC 5321 gives minimums that every receiver must accept; we enforce them
//! as maximums on the parts of a command that end up in files and headers
//! (local part, domain, path), and we cap every line we buffer so that a
//! client can never make a front process grow without bound.

/// Longest local part (RFC 5321 §4.5.3.1.1).
pub const LOCAL_PART: usize = 64;
/// Longest domain (RFC 5321 §4.5.3.1.2).
pub const DOMAIN: usize = 255;
/// Longest path, angle brackets included (RFC 5321 §4.5.3.1.3).
pub const PATH: usize = 256;
/// Longest command line, CRLF included (RFC 5321 §4.5.3.1.4).
pub const COMMAND_LINE: usize = 512;
/// Longest MAIL or RCPT line: the base 512 plus every allowance the offered
/// extensions grant: SIZE 26 (RFC 1870), ENVID 100 and ORCPT/NOTIFY 500
/// (RFC 3461), AUTH 500 (RFC 4954), and 64 for BODY, RET and BY, which name
/// none.
pub const MAIL_RCPT_LINE: usize = COMMAND_LINE + 26 + 100 + 500 + 500 + 64;
/// The most we ever buffer while waiting for a CRLF (sendmail's MAXLINE).
/// Past this the client is not speaking SMTP: the connection is closed
/// with `421 4.7.0 … Command too long`.
pub const MAX_BUFFERED_LINE: usize = 2048;
/// Longest HELO/EHLO argument before sendmail calls it an invalid domain
/// name (MAXNAME): a longer one would hide the rest of a Received: header.
pub const HELO_NAME: usize = 256;
/// Longest ENVID value after xtext decoding (RFC 3461 §4.4).
pub const ENVID: usize = 100;
/// Longest ORCPT value, type and address (RFC 3461 §4.2).
pub const ORCPT: usize = 500;
/// Bad commands tolerated before the session is closed (sendmail MAXBADCOMMANDS).
pub const BAD_COMMANDS: u32 = 25;
/// HELO and EHLO commands in one session before the replies slow down
/// (sendmail's MAXHELOCOMMANDS).
pub const HELO_COMMANDS: u32 = 3;
/// ETRN commands in one session before the replies slow down (sendmail's
/// MAXETRNCOMMANDS).
pub const ETRN_COMMANDS: u32 = 8;
/// NOOP and VERB commands in one session before the replies slow down,
/// unless MaxNOOPCommands says otherwise (sendmail's MAXNOOPCOMMANDS).
pub const NOOP_COMMANDS: u32 = 20;
/// VRFY and EXPN commands in one session before the replies slow down
/// (sendmail's MAXVRFYCOMMANDS): against address harvesting.
pub const VRFY_COMMANDS: u32 = 6;
/// The longest a slowed-down reply waits, in seconds (sendmail's MAXTIMEOUT).
pub const MAX_SLOWDOWN_SECS: u64 = 4 * 60;
/// Longest AUTH response line we buffer (RFC 4954 §4: 12288 octets).
pub const AUTH_LINE: usize = 12288;

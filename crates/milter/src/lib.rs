//! The milter protocol, as sendmail's MTA side speaks it to libmilter
//! filters (OpenDKIM, rspamd's proxy, clamav-milter, pymilter): protocol
//! version 6.
//!
//! - [`wire`]: the packets: a 4-byte length, a command byte, the data.
//! - [`negotiate`]: option negotiation, the actions a filter may take and
//!   the protocol steps it skips or does not answer.
//! - [`response`]: what a filter answers, decoded and checked.
//! - [`filter`]: one filter's connection, stage by stage, over any
//!   blocking stream with timeouts (the front's socket to it).
//! - [`macros`]: which sendmail macros go with which stage.
//! - [`edit`]: the message as filters change it, with sendmail's rules.
//!
//! Nothing here opens a socket or reads the configuration: the daemon
//! connects (a front cannot) and says what to send.

pub mod edit;
pub mod filter;
pub mod macros;
pub mod negotiate;
pub mod response;
pub mod wire;

pub use filter::{Filter, FilterError, Stage};
pub use negotiate::{Actions, Negotiated, Steps};
pub use response::{Modification, Verdict};

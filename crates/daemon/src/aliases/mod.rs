//! Aliases as the queue runner uses them: the table, kept current
//! (`table.rs`), and the expansion of one recipient into the users,
//! addresses, files and programs it stands for (`expand.rs`).
//!
//! Owns: when the aliases file is re-read, nesting, `:include:` lists
//! (read and checked here), `owner-` lists, duplicates, the loop limit,
//! and which user controls a file or program target. Does not own: the
//! file's syntax (`postern_config::Aliases`), delivering to files and
//! programs (the local delivery agent; until it exists the delivery
//! client defers such targets, `delivery/route.rs`), or `.forward`.
//!
//! Security posture: the queue runner reads the aliases file and include
//! files with its own rights (QueueOwner): an include file it cannot read
//! fails its recipient. An include file that is group- or world-writable,
//! or lies under a group- or world-writable directory, is refused as
//! sendmail's DontBlameSendmail defaults refuse it: anyone who could write
//! it could add a program target. File and program targets are accepted
//! only from the aliases file and include files, never from a recipient
//! address, and they carry the controlling user (the owner of the file
//! that named them; root's files give DefaultUser, `daemon`): their
//! delivery never runs as root.

mod expand;
mod table;

pub use expand::{expand, Expansion};
pub use table::AliasTable;

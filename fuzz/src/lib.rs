//! What Postern's fuzz targets (`fuzz_targets/`, one file each) share: the
//! check that bytes a server wrote are well-formed SMTP replies, and the
//! input format of the session targets, a peer's byte stream with the
//! shell's own events written between its bytes.
//!
//! The targets assert invariants, not only "does not panic": a panic here
//! is how libFuzzer learns that an invariant broke, and the input that
//! broke it is saved as a crash.

pub mod replies;
pub mod script;

//! sendmail's exit statuses (`<sysexits.h>`), the only ones the tools use.

/// Success.
pub const EX_OK: i32 = 0;
/// Command line usage error: an unknown or forbidden flag.
pub const EX_USAGE: i32 = 64;
/// The input data was incorrect.
pub const EX_DATAERR: i32 = 65;
/// An input file did not exist or was unreadable.
pub const EX_NOINPUT: i32 = 66;
/// The service is unavailable.
pub const EX_UNAVAILABLE: i32 = 69;
/// An internal software error (the daemon broke the protocol).
pub const EX_SOFTWARE: i32 = 70;
/// A system error (temporary file, terminal).
pub const EX_OSERR: i32 = 71;
/// I/O error.
pub const EX_IOERR: i32 = 74;
/// Temporary failure: nothing was accepted, try again later.
pub const EX_TEMPFAIL: i32 = 75;
/// Permission denied (restrictmailq, restrictqrun).
pub const EX_NOPERM: i32 = 77;
/// Configuration error.
pub const EX_CONFIG: i32 = 78;

/// An exit status that came over the control socket: used when it is a
/// failure status a process can exit with, else EX_SOFTWARE (a reply that
/// says "failed" must never turn into success).
pub fn from_daemon(code: i32) -> i32 {
    if (1..=255).contains(&code) {
        code
    } else {
        EX_SOFTWARE
    }
}

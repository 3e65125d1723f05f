//! sendmail's exit statuses (`<sysexits.h>`): the one type the tools and
//! the daemon use, and what a control reply carries. On the wire it is an
//! enum, so a status outside the list is a decode error, never a silent
//! success.

use serde::{Deserialize, Serialize};

/// An exit status of sendmail's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sysexit {
    /// 0: success.
    Ok,
    /// 64: command line usage error (an unknown or forbidden flag).
    Usage,
    /// 65: the input data was incorrect (a message or an address).
    DataErr,
    /// 66: an input was missing (no such message in the queue).
    NoInput,
    /// 67: the addressee is unknown (`sendmail -v` to a refused user).
    NoUser,
    /// 68: the host name is unknown.
    NoHost,
    /// 69: the service is unavailable.
    Unavailable,
    /// 70: an internal software error (a peer broke the protocol).
    Software,
    /// 71: a system error (temporary file, terminal).
    OsErr,
    /// 74: an I/O error.
    IoErr,
    /// 75: a temporary failure: nothing was accepted, try again later.
    TempFail,
    /// 77: permission denied (restrictmailq, restrictqrun).
    NoPerm,
    /// 78: a configuration error.
    Config,
}

impl Sysexit {
    /// The number a process exits with.
    pub const fn code(self) -> u8 {
        match self {
            Sysexit::Ok => 0,
            Sysexit::Usage => 64,
            Sysexit::DataErr => 65,
            Sysexit::NoInput => 66,
            Sysexit::NoUser => 67,
            Sysexit::NoHost => 68,
            Sysexit::Unavailable => 69,
            Sysexit::Software => 70,
            Sysexit::OsErr => 71,
            Sysexit::IoErr => 74,
            Sysexit::TempFail => 75,
            Sysexit::NoPerm => 77,
            Sysexit::Config => 78,
        }
    }
}

impl From<Sysexit> for std::process::ExitCode {
    fn from(status: Sysexit) -> Self {
        std::process::ExitCode::from(status.code())
    }
}

#[cfg(test)]
mod tests {
    use super::Sysexit;

    #[test]
    fn sendmails_numbers() {
        assert_eq!(Sysexit::Ok.code(), 0);
        assert_eq!(Sysexit::NoUser.code(), 67);
        assert_eq!(Sysexit::TempFail.code(), 75);
        assert_eq!(Sysexit::NoPerm.code(), 77);
        assert_eq!(Sysexit::Config.code(), 78);
    }
}

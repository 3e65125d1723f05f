//! The control socket, from a tool's side: one connection per request, one
//! `ControlHello` out (with the message descriptor for a submission), one
//! `ControlReply` back. Who is asking is not sent: master reads it from the
//! socket (SO_PEERCRED) and decides everything there.

use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use postern_ipc::{
    tool_channel, ChannelError, ControlHello, ControlReply, ControlRequest, PROTOCOL_VERSION,
};

use postern_ipc::Sysexit;

/// How long to wait for master's answer. A submission waits for the queue
/// runner's fsyncs, a queue run only for it to start; five minutes is far
/// beyond either and still ends a cron job that talks to a wedged daemon.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(300);

/// Why there is no reply: the text to print and the exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlError {
    /// What to print (without the program name).
    pub message: String,
    /// The exit status.
    pub exit_code: Sysexit,
}

/// Sends `request` to master at `socket` and waits for its answer.
pub fn ask(
    socket: &Path,
    request: ControlRequest,
    fds: &[BorrowedFd<'_>],
) -> Result<ControlReply, ControlError> {
    let stream = UnixStream::connect(socket).map_err(|e| ControlError {
        // Nothing is lost: a message was not accepted, the caller keeps it.
        message: format!(
            "cannot connect to the mail daemon at {}: {e}",
            socket.display()
        ),
        exit_code: Sysexit::TempFail,
    })?;
    let _ = stream.set_read_timeout(Some(REPLY_TIMEOUT));
    let _ = stream.set_write_timeout(Some(REPLY_TIMEOUT));
    let mut channel = tool_channel(stream);
    let hello = ControlHello {
        version: PROTOCOL_VERSION,
        request,
    };
    let lost = |e: ChannelError| {
        let (what, exit_code) = match &e {
            ChannelError::Closed => (
                "the mail daemon closed the connection without an answer".to_string(),
                Sysexit::TempFail,
            ),
            ChannelError::Io(io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                (
                    "no answer from the mail daemon".to_string(),
                    Sysexit::TempFail,
                )
            }
            ChannelError::Io(io) => (
                format!("talking to the mail daemon: {io}"),
                Sysexit::TempFail,
            ),
            other => (
                format!("the mail daemon's answer: {other}"),
                Sysexit::Software,
            ),
        };
        ControlError {
            message: format!("{what} (at {})", socket.display()),
            exit_code,
        }
    };
    channel.send(&hello, fds).map_err(lost)?;
    let (reply, _fds) = channel.recv().map_err(lost)?;
    Ok(reply)
}

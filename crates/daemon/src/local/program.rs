//! Delivery to a program an alias names (`"|/usr/bin/procmail -d x"`), as
//! sendmail's `prog` mailer does it: `/bin/sh -c <command>` with the message
//! on its standard input (LF line ends, no `From ` line), run as the
//! alias's controlling user (the agent already is), in that user's home
//! (or `/`), with a small clean environment.
//!
//! The exit status decides, as sendmail's mailers' do (`<sysexits.h>`): 0
//! delivered; 75 (EX_TEMPFAIL) deferred; 67 (EX_NOUSER) `User unknown`;
//! anything else, or a signal, a permanent failure with what the program
//! printed first. The agent's alarm bounds how long it may run.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use postern_ipc::{AgentReport, RecipientStatus};

use super::mailbox::{copy_lines, Message};

/// How much of the program's output is kept for the reply.
const OUTPUT_KEPT: u64 = 1024;

/// Runs `command` with the message on its standard input.
pub fn run(command: &str, home: &Path, sender: &str, data: &Message) -> AgentReport {
    let dir = if home.is_dir() { home } else { Path::new("/") };
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", dir)
        .env("SHELL", "/bin/sh")
        .env("SENDER", sender)
        .env("AGENT", "sendmail")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => return failed(RecipientStatus::TempFail, format!("451 4.3.0 /bin/sh: {e}")),
    };
    // Output is read on threads so that a program that writes much before
    // it reads cannot block on a full pipe while we write its input.
    let keep = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(pipe) = pipe {
                let mut pipe = pipe;
                let _ = (&mut pipe).take(OUTPUT_KEPT).read_to_end(&mut out);
                // The rest is drained, not kept.
                let _ = std::io::copy(&mut pipe, &mut std::io::sink());
            }
            out
        })
    };
    let stdout = keep(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = keep(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    if let Some(mut stdin) = child.stdin.take() {
        // A program that exits without reading all of it (EPIPE) is judged
        // by its exit status, as sendmail judges it.
        let mut input = std::io::BufWriter::new(&mut stdin);
        let _ = copy_lines(data, &mut input, false).and_then(|()| input.flush());
    }
    let status = match child.wait() {
        Ok(status) => status,
        Err(e) => return failed(RecipientStatus::TempFail, format!("451 4.3.0 wait: {e}")),
    };
    let mut output = stderr.join().unwrap_or_default();
    output.extend(stdout.join().unwrap_or_default());
    let said = String::from_utf8_lossy(&output)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| {
            l.chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        });
    let with_output = |base: String| match &said {
        Some(line) => format!("{base} ({line})"),
        None => base,
    };
    match status.code() {
        Some(0) => AgentReport::new(RecipientStatus::Sent, "250 2.0.0 Delivered"),
        Some(75) => failed(
            RecipientStatus::TempFail,
            with_output("451 4.3.0 Program exited with EX_TEMPFAIL".into()),
        ),
        Some(67) => failed(RecipientStatus::PermFail, "550 5.1.1 User unknown".into()),
        Some(code) => failed(
            RecipientStatus::PermFail,
            with_output(format!("554 5.3.0 unknown mailer error {code}")),
        ),
        None => failed(
            RecipientStatus::PermFail,
            with_output("554 5.3.0 Program killed by a signal".into()),
        ),
    }
}

fn failed(status: RecipientStatus, reply: String) -> AgentReport {
    AgentReport::new(status, reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(bytes: &[u8]) -> Message {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        Message::new(f, bytes.len() as u64)
    }

    #[test]
    fn the_message_reaches_the_program_with_lf_line_ends() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got");
        let command = format!(
            "cat > {}; echo \"$SENDER\" >> {}",
            out.display(),
            out.display()
        );
        let r = run(
            &command,
            dir.path(),
            "s@x",
            &message(b"Subject: x\r\n\r\nbody\r\n"),
        );
        assert_eq!(
            (r.status, r.reply.as_str()),
            (RecipientStatus::Sent, "250 2.0.0 Delivered")
        );
        assert_eq!(std::fs::read(&out).unwrap(), b"Subject: x\n\nbody\ns@x\n");
    }

    #[test]
    fn exit_statuses_are_sendmails() {
        let dir = tempfile::tempdir().unwrap();
        let data = message(b"x\r\n");
        let r = run("exit 75", dir.path(), "", &data);
        assert_eq!(r.status, RecipientStatus::TempFail);
        let r = run("echo 'no such list' >&2; exit 1", dir.path(), "", &data);
        assert_eq!(
            (r.status, r.reply.as_str()),
            (
                RecipientStatus::PermFail,
                "554 5.3.0 unknown mailer error 1 (no such list)"
            )
        );
        let r = run("exit 67", dir.path(), "", &data);
        assert_eq!(r.reply, "550 5.1.1 User unknown");
        // A program that reads nothing is judged by its status.
        let big = message(&vec![b'y'; 1 << 20]);
        assert_eq!(
            run("true", dir.path(), "", &big).status,
            RecipientStatus::Sent
        );
    }
}

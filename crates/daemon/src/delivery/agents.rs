//! The delivery client's side of local delivery: asking master for a
//! local delivery agent per mailbox ([`MAX_AGENTS`](super::MAX_AGENTS) at
//! once, the rest waiting), and reading each agent's one report from the
//! socket it was given. An agent that ends without a report (killed)
//! defers its recipients.

use std::io;

use mio::{Interest, Token};
use postern_ipc::{DeliveryToMaster, RecipientStatus};

use super::job::LocalGroup;
use super::{Client, MAX_AGENTS};
use crate::log;

/// A local delivery agent at work.
pub(super) struct Agent {
    job_key: u64,
    group: LocalGroup,
    socket: mio::net::UnixStream,
    /// What it sent so far: one frame, then its end.
    report: Vec<u8>,
}

impl Client {
    /// Asks master for agents for the waiting local deliveries, while
    /// fewer than [`MAX_AGENTS`] run.
    pub(super) fn start_agents(&mut self) -> io::Result<()> {
        while self.agents.len() < MAX_AGENTS {
            let Some((key, group)) = self.agents_waiting.pop_front() else {
                break;
            };
            let Some(job) = self.jobs.get_mut(&key) else {
                continue;
            };
            let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
            let request = DeliveryToMaster::Local(job.local_request(&group));
            if let Err(e) = self.master.send(
                &request,
                &[job.data.fd(), std::os::fd::AsFd::as_fd(&theirs)],
            ) {
                log::err(&format!("delivery client: master channel: {e}"));
                job.settle_local(
                    &group,
                    Some(postern_ipc::AgentReport::new(
                        RecipientStatus::TempFail,
                        "451 4.3.0 Local delivery unavailable (master)",
                    )),
                );
                self.report_if_complete(key);
                continue;
            }
            // Only the agent may hold the other end: its end of file is
            // how a crashed agent is noticed.
            drop(theirs);
            ours.set_nonblocking(true)?;
            let mut socket = mio::net::UnixStream::from_std(ours);
            let token = Token(self.next_token);
            self.next_token += 1;
            self.poll
                .registry()
                .register(&mut socket, token, Interest::READABLE)?;
            self.agents.insert(
                token,
                Agent {
                    job_key: key,
                    group,
                    socket,
                    report: Vec::new(),
                },
            );
        }
        Ok(())
    }

    /// An agent's socket is readable: its report so far, and at its end
    /// the recipients' results.
    pub(super) fn on_agent(&mut self, token: Token) -> io::Result<()> {
        use std::io::Read;
        let Some(agent) = self.agents.get_mut(&token) else {
            return Ok(());
        };
        let limit = postern_ipc::LOCAL_LIMIT + postern_ipc::frame::HEADER_LEN;
        let mut buf = [0u8; 4096];
        let ended = loop {
            match agent.socket.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) if agent.report.len() + n > limit => break true,
                Ok(n) => agent.report.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
        };
        if !ended {
            return Ok(());
        }
        let Some(mut agent) = self.agents.remove(&token) else {
            return Ok(());
        };
        self.poll.registry().deregister(&mut agent.socket)?;
        let outcome = decode_agent_report(&agent.report);
        if let Some(job) = self.jobs.get_mut(&agent.job_key) {
            job.settle_local(&agent.group, outcome);
        }
        self.report_if_complete(agent.job_key);
        self.start_agents()
    }
}

/// An agent's one frame, if it sent a whole one.
fn decode_agent_report(bytes: &[u8]) -> Option<postern_ipc::AgentReport> {
    use postern_ipc::frame;
    let header = frame::header(bytes, postern_ipc::LOCAL_LIMIT).ok()??;
    let body = bytes.get(frame::HEADER_LEN..frame::HEADER_LEN + header.len)?;
    frame::decode(body).ok()
}

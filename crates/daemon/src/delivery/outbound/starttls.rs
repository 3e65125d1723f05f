//! STARTTLS on an outbound connection: the handshake after the server's
//! `220` to STARTTLS, driven on readiness, the `STARTTLS=client` log
//! lines, the access map's TLS requirement checked once it is done, and
//! what a failed handshake leaves (a clear-text retry under
//! TLSFallbacktoClear, or the recipients deferred).

use super::*;

impl Outbound {
    /// `220` to STARTTLS: moves the socket into TLS and starts the
    /// handshake.
    pub(super) fn start_tls(&mut self, now: Instant) {
        if self.out.pending() > 0 {
            // The 220 came before STARTTLS was even written: not an answer.
            return self.lose(format!(
                "STARTTLS reply before the command was sent by {}",
                self.plan.host
            ));
        }
        let Some(tls) = self.plan.tls.clone() else {
            // The session was made with StartTlsPolicy::Never (job.rs).
            debug_assert!(false, "StartTls without a TLS context");
            return self.handshake_failed("no TLS context");
        };
        self.tls_log(
            Priority::Info,
            log::Level::Diagnostic,
            "STARTTLS=client, start=ok".into(),
        );
        let host = &self.plan.host;
        let started = match self.stream.as_mut() {
            Some(stream) => stream
                .start_tls(|socket| tls.session(socket, host))
                .map(drop),
            None => Err(TlsError::Config("no connection".into())),
        };
        if let Err(e) = started {
            return self.handshake_failed(&tls_reason(e));
        }
        self.state = State::Handshake;
        self.tls_want = Interest::READABLE;
        self.phase = Phase::TlsHandshake;
        self.deadline = now + self.timeout(Phase::TlsHandshake);
        self.handshake(now);
        if self.state == State::Open {
            // Done in one step: EHLO is queued.
            self.pump(now);
        }
    }

    /// One step of the handshake; on `Done` the session starts over at EHLO.
    pub(super) fn handshake(&mut self, now: Instant) {
        let Some(stream) = self.stream.as_mut().and_then(Transport::tls_mut) else {
            return self.handshake_failed("no TLS stream");
        };
        match stream.handshake() {
            Ok(Handshake::WantRead) => self.tls_want = Interest::READABLE,
            Ok(Handshake::WantWrite) => self.tls_want = Interest::WRITABLE,
            Ok(Handshake::Done) => {
                let info = stream.info();
                let trace = stream.verify_trace();
                if let Some(requirement) = &self.plan.tls_requirement {
                    let names = tls_policy::wanted_names(requirement, &self.plan.host)
                        .into_iter()
                        .map(|name| {
                            let ok = stream.peer_names_host(&name);
                            (name, ok)
                        })
                        .collect();
                    self.achieved = Some(Achieved {
                        info: info.clone(),
                        common_name: stream.peer_common_name(),
                        names,
                    });
                }
                self.tls_established(&info, trace);
                self.state = State::Open;
                self.plan.session.tls_started();
                self.phase = self.plan.session.phase();
                self.deadline = now + self.timeout(self.phase);
            }
            Err(e) => self.handshake_failed(&tls_reason(e)),
        }
    }

    /// The hello is done: is this connection good enough for the
    /// server's `TLS_Srv:` requirement? (sendmail's `tls_server`.)
    pub(super) fn check_tls(&mut self) {
        let Some(requirement) = &self.plan.tls_requirement else {
            return self.plan.session.tls_checked(None);
        };
        match tls_policy::check(requirement, self.achieved.as_ref()) {
            Ok(()) => self.plan.session.tls_checked(None),
            Err(refusal) => {
                log::notice(
                    log::Level::Refusal,
                    &format!(
                        "{}: ruleset=tls_server, arg1={}, relay={}, reject={} {} {}",
                        self.plan.queue_id,
                        refusal.verify,
                        self.plan.relay,
                        refusal.code,
                        refusal.enhanced,
                        refusal.text
                    ),
                );
                self.plan.session.tls_checked(Some((
                    refusal.code,
                    refusal.enhanced,
                    &refusal.text,
                )));
            }
        }
    }

    /// sendmail's LogLevel-14 verify trace and LogLevel-9 summary.
    pub(super) fn tls_established(&self, info: &TlsInfo, trace: Vec<String>) {
        for line in trace {
            self.tls_log(Priority::Info, log::Level::Diagnostic, line);
        }
        self.tls_log(
            Priority::Info,
            log::Level::Deferred,
            format!(
                "STARTTLS=client, relay={}, version={}, verify={}, cipher={}, bits={}/{}",
                self.plan.host,
                info.version,
                info.verify.as_str(),
                info.cipher,
                info.cipher_bits,
                info.alg_bits
            ),
        );
    }

    /// The handshake failed or timed out: logged, then either the retry in
    /// clear text (`TLSFallbacktoClear`) or every recipient deferred.
    pub(super) fn handshake_failed(&mut self, reason: &str) {
        self.tls_log(
            Priority::Warning,
            log::Level::Query,
            format!(
                "STARTTLS=client, error: connect failed={reason}, relay={}",
                self.plan.host
            ),
        );
        if let Some(plan) = self.plan.in_clear() {
            log::info(
                log::Level::Query,
                &format!(
                    "{}: {}: STARTTLS failed, trying again without it (TLSFallbacktoClear)",
                    self.plan.queue_id, self.plan.host
                ),
            );
            // This session never reports: its recipients are the retry's.
            self.retry = Some(plan);
            self.results = None;
            return self.close();
        }
        // No QUIT: the connection is in no state to carry one.
        self.plan.session.tls_failed();
        while let Some(output) = self.plan.session.poll_output() {
            if let ClientOutput::Done(outcome) = output {
                self.finish(outcome);
            }
        }
        self.close();
    }

    /// A `STARTTLS=client` line (no queue id, as sendmail logs them).
    pub(super) fn tls_log(&self, priority: Priority, level: log::Level, text: String) {
        #[cfg(test)]
        if let Some(addr) = self.plan.addr.tcp() {
            crate::delivery::tests::record_tls_line(addr, level, &text);
        }
        log::log(priority, level, &text);
    }
}

/// The reason in `connect failed=<reason>`.
pub(super) fn tls_reason(e: TlsError) -> String {
    match e {
        TlsError::Handshake(reason) => reason,
        TlsError::Io(e) => describe(&e),
        e => e.to_string(),
    }
}

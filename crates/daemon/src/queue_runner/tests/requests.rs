//! What the queue runner answers and runs for honest fronts: local users
//! from the password database, ETRN, reports owed from an earlier run,
//! postmaster notices, VRFY and EXPN under PrivacyOptions.

use super::*;

#[test]
fn local_users_are_answered_from_the_password_database() {
    let mut h = start();
    let mut front = good_front(&mut h);
    for (name, known) in [
        ("root", true),
        ("postmaster", true),
        ("no-such-user-here", false),
    ] {
        front
            .send(&FrontToQueue::LocalUser { name: name.into() }, &[])
            .unwrap();
        assert_eq!(
            front.recv().unwrap().0,
            QueueToFront::LocalUser { known },
            "{name}"
        );
    }
}

#[test]
fn a_front_cannot_queue_for_an_unknown_local_user() {
    // The bounce of such a message would carry the attacker's text to
    // any address: refused at commit, as at RCPT.
    let mut h = start();
    let mut front = good_front(&mut h);
    let (queue_id, pipe) = open(&mut front);
    drop(pipe);
    commit(&mut front, &queue_id, "no-such-user-here@mx.test");
    assert_eq!(
        front.recv().unwrap().0,
        QueueToFront::Refused {
            code: 550,
            enhanced: "5.1.1".into(),
            text: "<no-such-user-here@mx.test>... User unknown".into()
        }
    );
    assert!(h.committed().is_empty());
    assert_eq!(h.incoming(), 0);
}

#[test]
fn etrn_is_refused_under_noetrn_and_bounded_otherwise() {
    let mut h = start_with("O PrivacyOptions=noetrn\n");
    let mut front = good_front(&mut h);
    front
        .send(
            &FrontToQueue::Etrn {
                argument: "example.org".into(),
            },
            &[],
        )
        .unwrap();
    assert_disconnected(front.stream().try_clone().unwrap());

    let mut h = start();
    let mut front = good_front(&mut h);
    for _ in 0..20 {
        front
            .send(
                &FrontToQueue::Etrn {
                    argument: "example.org".into(),
                },
                &[],
            )
            .unwrap();
        assert!(matches!(
            front.recv().unwrap().0,
            QueueToFront::EtrnStarted { .. }
        ));
    }
}

#[test]
fn etrn_for_a_queue_group_runs_the_queue_or_names_the_unknown_group() {
    let mut h = start();
    let mut front = good_front(&mut h);
    let mut ask = |argument: &str| {
        front
            .send(
                &FrontToQueue::Etrn {
                    argument: argument.into(),
                },
                &[],
            )
            .unwrap();
        front.recv().unwrap().0
    };
    assert!(matches!(ask("#mqueue"), QueueToFront::EtrnStarted { .. }));
    assert_eq!(
        ask("#nosuch"),
        QueueToFront::Refused {
            code: 459,
            enhanced: "4.5.4".into(),
            text: "Queue nosuch unknown".into()
        }
    );
    assert!(matches!(
        ask("@example.org"),
        QueueToFront::EtrnStarted { .. }
    ));
}

/// A crash after a report was committed but before the original stopped
/// owing it (or a control file from before reports existed): at the next
/// start the report is made and queued, and only then does the original
/// leave the queue. A report may come twice, never not at all.
#[test]
fn reports_owed_when_the_runner_stopped_are_sent_at_the_next_start() {
    use postern_queue::{
        ControlFile, DsnDue, QueueIdGenerator, RecipientEntry, RecipientState, Spool,
    };
    let mut original_id = None;
    let mut h = start_with_spool("", |dir| {
        let spool = Spool::open(dir).unwrap();
        let (id, mut data) = spool.create(&mut QueueIdGenerator::new(1)).unwrap();
        let text = b"Subject: lost?\r\n\r\nbody\r\n";
        data.write_all(text).unwrap();
        let mut control = ControlFile::new(id.clone(), 1_700_000_000, "s@example.org");
        control.size = text.len() as u64;
        control.client = "localhost [127.0.0.1]".into();
        control.protocol = "ESMTP".into();
        let mut r = RecipientEntry::new("u@b.test");
        r.state = RecipientState::Failed;
        r.status = Some("5.1.1".into());
        r.diagnostic = Some("550 5.1.1 <u@b.test>: unknown".into());
        r.remote_mta = Some("[192.0.2.9]".into());
        r.dsn = Some(DsnDue::Failed);
        control.recipients.push(r);
        spool.commit(&id, &data, &control).unwrap();
        original_id = Some(id);
    });
    let original_id = original_id.unwrap();
    let delivery = h.delivery.as_mut().unwrap();
    delivery
        .stream()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (job, fds) = loop {
        match delivery.recv().unwrap() {
            (QueueToDelivery::Deliver(job), fds) => break (job, fds),
            _ => continue,
        }
    };
    assert_eq!(job.sender, "");
    let to: Vec<&str> = job.recipients.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(to, ["s@example.org"]);
    let mut report = String::new();
    std::io::Read::read_to_string(
        &mut std::fs::File::from(fds.into_iter().next().unwrap()),
        &mut report,
    )
    .unwrap();
    assert!(report.contains("\r\nFinal-Recipient: RFC822; u@b.test\r\nX-Actual-Recipient: rfc822; u@b.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"), "{report}");
    assert!(
        report.contains("\r\nSubject: lost?\r\n\r\nbody\r\n"),
        "{report}"
    );
    // The report is in the queue; the original is gone. The report may
    // be handed to delivery before the original is removed, so wait for
    // the removal (no event tells the test of it).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut committed = h.committed();
    while committed.len() > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        committed = h.committed();
    }
    assert_eq!(committed.len(), 1, "{committed:?}");
    assert!(committed[0].contains("\nG dsn\n"), "{}", committed[0]);
    assert!(!committed[0].contains(original_id.as_str()));
}

/// A postmaster notice (a double bounce) that failed is logged and
/// dropped: no third report, and it leaves the queue.
#[test]
fn a_failed_postmaster_notice_is_dropped_not_bounced() {
    use postern_queue::{
        ControlFile, DsnDue, Generated, QueueIdGenerator, RecipientEntry, RecipientState, Spool,
    };
    let h = start_with_spool("", |dir| {
        let spool = Spool::open(dir).unwrap();
        let (id, mut data) = spool.create(&mut QueueIdGenerator::new(2)).unwrap();
        data.write_all(b"Subject: notice\r\n\r\nx\r\n").unwrap();
        let mut control = ControlFile::new(id.clone(), 1_700_000_000, "");
        control.generated = Some(Generated::Postmaster);
        let mut r = RecipientEntry::new("postmaster@mx.test");
        r.state = RecipientState::Failed;
        r.dsn = Some(DsnDue::Failed);
        control.recipients.push(r);
        spool.commit(&id, &data, &control).unwrap();
    });
    postern_testkit::poll_until(Duration::from_secs(10), || {
        h.committed().is_empty().then_some(())
    })
    .unwrap_or_else(|| panic!("still queued: {:?}", h.committed()));
}

/// VRFY and EXPN over the channel: the password database's answer, and
/// a front that asks what PrivacyOptions forbid is cut off, as for ETRN.
#[test]
fn vrfy_and_expn_are_answered_unless_privacyoptions_forbid_them() {
    let mut h = start();
    let mut front = good_front(&mut h);
    let ask = |front: &mut FrontChannel, argument: &str, expand: bool| {
        front
            .send(
                &FrontToQueue::Verify {
                    argument: argument.into(),
                    expand,
                },
                &[],
            )
            .unwrap();
        front.recv().unwrap().0
    };
    match ask(&mut front, "root", false) {
        QueueToFront::Verified {
            addresses,
            definitive: true,
        } => assert_eq!(
            addresses.iter().map(|a| &a.address[..]).collect::<Vec<_>>(),
            ["root@mx.test"]
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ask(&mut front, "no-such-user-here", true),
        QueueToFront::Refused {
            code: 550,
            enhanced: "5.1.1".into(),
            text: "no-such-user-here... User unknown".into(),
        }
    );
    for (privacy, expand) in [("novrfy", false), ("noexpn", true), ("goaway", true)] {
        let mut h = start_with(&format!("O PrivacyOptions={privacy}\n"));
        let mut front = good_front(&mut h);
        front
            .send(
                &FrontToQueue::Verify {
                    argument: "root".into(),
                    expand,
                },
                &[],
            )
            .unwrap();
        assert_disconnected(front.stream().try_clone().unwrap());
        assert_still_serving(&mut h);
    }
}

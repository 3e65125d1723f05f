use postern_queue::{
    BodyType, ControlFile, DeliverBy, DsnDue, Generated, QueueId, RecipientEntry, RecipientState,
    Ret,
};
use postern_smtp::params::{Notify, Orcpt};
use proptest::prelude::*;

fn qid() -> QueueId {
    "402A0000001230".parse().unwrap()
}

fn full() -> ControlFile {
    let mut cf = ControlFile::new(qid(), 1_704_189_600, "alice@example.org");
    cf.envid = Some("env 1%+2B".into());
    cf.ret = Some(Ret::Hdrs);
    cf.body = Some(BodyType::EightBitMime);
    cf.size = 12345;
    cf.helo = Some("helo.example".into());
    cf.client = "rdns.example [192.0.2.1]".into();
    cf.protocol = "ESMTPSA".into();
    cf.auth = Some("alice".into());
    cf.deliver_by = Some(DeliverBy {
        seconds: -30,
        return_on_expiry: false,
        trace: true,
    });
    cf.submitter_uid = Some(1000);
    cf.held = true;
    cf.attempts = 2;
    cf.next_attempt = 1_704_193_200;
    let mut a = RecipientEntry::new("bob@example.net");
    a.notify = Some("SUCCESS,FAILURE".parse().unwrap());
    a.orcpt = Some("rfc822;bob@example.net".parse().unwrap());
    a.state = RecipientState::Deferred;
    a.attempts = 2;
    a.next_attempt = 1_704_193_200;
    a.last_reply = Some("451 4.3.0 Try\tagain\r\nlater".into());
    let mut b = RecipientEntry::new("carol@example.net");
    b.state = RecipientState::Sent;
    b.last_reply = Some("250 2.0.0 OK".into());
    cf.recipients = vec![a, b];
    cf
}

#[test]
fn writes_readable_text() {
    let text = full().to_text();
    let expected = "V1\n\
I 402A0000001230\n\
T 1704189600\n\
S alice@example.org\n\
E env 1%25+2B\n\
R HDRS\n\
B 8BITMIME\n\
Z 12345\n\
H helo.example\n\
C rdns.example [192.0.2.1]\n\
P ESMTPSA\n\
A alice\n\
Y -30;NT\n\
U 1000\n\
Q held\n\
N 2\n\
K 1704193200\n\
r bob@example.net\tstate=deferred\tattempts=2\tnext=1704193200\tnotify=SUCCESS,FAILURE\torcpt=rfc822;bob@example.net\treply=451 4.3.0 Try%09again%0D%0Alater\n\
r carol@example.net\tstate=sent\tattempts=0\tnext=0\treply=250 2.0.0 OK\n";
    assert_eq!(text, expected);
    assert_eq!(ControlFile::parse(&text).unwrap(), full());
}

/// A mail filter's quarantine is a hold with the filter's reason.
#[test]
fn a_quarantine_keeps_its_reason() {
    let mut cf = ControlFile::new(qid(), 10, "a@b.example");
    cf.recipients.push(RecipientEntry::new("c@d.example"));
    cf.held = true;
    cf.quarantine = Some("virus: Eicar-Test-Signature".into());
    let text = cf.to_text();
    assert!(text.contains("\nQ virus: Eicar-Test-Signature\n"), "{text}");
    assert_eq!(ControlFile::parse(&text).unwrap(), cf);
    assert!(ControlFile::parse(&text.replace("Q virus: Eicar-Test-Signature", "Q ")).is_err());
}

#[test]
fn reports_owed_and_sent_are_recorded() {
    let mut cf = ControlFile::new(qid(), 10, "");
    cf.warned = true;
    cf.generated = Some(Generated::Dsn);
    let mut r = RecipientEntry::new("a@b.example");
    r.state = RecipientState::Failed;
    r.status = Some("5.1.1".into());
    r.remote_mta = Some("[127.0.0.1]".into());
    r.diagnostic = Some("550 5.1.1 <a@b.example>: User unknown".into());
    r.command = Some("RCPT To:<a@b.example>".into());
    r.last_attempt = Some(12);
    r.dsn = Some(DsnDue::Failed);
    cf.recipients.push(r);
    let text = cf.to_text();
    assert!(text.contains("\nW warned\nG dsn\n"), "{text}");
    assert!(
        text.contains(
            "\tstatus=5.1.1\tmta=[127.0.0.1]\tdiag=550 5.1.1 <a@b.example>: User unknown\tcmd=RCPT To:<a@b.example>\tlast=12\tdsn=failed\n"
        ),
        "{text}"
    );
    let back = ControlFile::parse(&text).unwrap();
    assert_eq!(back, cf);
    assert!(back.is_finished() && back.reports_owed() && !back.is_settled());
    for bad in ["dsn=maybe", "last=x"] {
        let t = text.replace("dsn=failed", bad);
        assert!(ControlFile::parse(&t).is_err(), "{bad}");
    }
    assert!(ControlFile::parse(&text.replace("G dsn", "G other")).is_err());
}

#[test]
fn files_from_before_reports_read_as_nothing_owed() {
    let old = "V1\nI 402A0000001230\nT 5\nS a@b\nZ 1\nC x\nP ESMTP\nN 1\nK 0\n\
               r c@d\tstate=failed\tattempts=1\tnext=0\treply=550 5.1.1 no\n";
    let cf = ControlFile::parse(old).unwrap();
    assert!(!cf.warned && cf.generated.is_none());
    assert_eq!(cf.recipients[0].dsn, None);
    assert!(cf.is_settled());
}

#[test]
fn minimal_round_trip_and_null_sender() {
    let cf = ControlFile::new(qid(), 0, "");
    let text = cf.to_text();
    assert!(text.contains("\nS \n"));
    assert_eq!(ControlFile::parse(&text).unwrap(), cf);
    assert!(cf.is_finished());
    // Only V1, I, T, S are required.
    let parsed = ControlFile::parse("V1\nI 402A0000001230\nT 5\nS \n").unwrap();
    assert_eq!(parsed.created, 5);
    assert_eq!(parsed.sender, "");
}

#[test]
fn pending_and_finished() {
    let mut cf = full();
    let pending: Vec<_> = cf
        .pending_recipients()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(pending, ["bob@example.net"]);
    assert!(!cf.is_finished());
    cf.recipients[0].state = RecipientState::Failed;
    assert!(cf.is_finished());
    cf.recipients[1].state = RecipientState::Pending;
    assert!(!cf.is_finished());
}

fn err_line(text: &str) -> (usize, String) {
    let e = ControlFile::parse(text).unwrap_err();
    (e.line, e.message)
}

#[test]
fn strict_errors_name_the_line() {
    let base = "V1\nI 402A0000001230\nT 5\nS a@b\n";
    let (line, msg) = err_line(&format!("{base}X what\n"));
    assert_eq!(line, 5);
    assert!(msg.contains("unknown key"), "{msg}");

    let (line, msg) = err_line("V1\nT 5\nS a@b\n");
    assert_eq!(line, 0);
    assert!(msg.contains("missing required key I"), "{msg}");
    assert!(err_line("V1\nI 402A0000001230\nS a@b\n")
        .1
        .contains("key T"));
    assert!(err_line("V1\nI 402A0000001230\nT 1\n").1.contains("key S"));

    let (line, msg) = err_line("V1\nI 402A0000001230\nT 12x\nS a@b\n");
    assert_eq!(line, 3);
    assert!(msg.contains("bad number"), "{msg}");
    for bad in ["Z -1", "Z +1", "Z ", "N 99999999999", "U -5", "K 1e3"] {
        assert_eq!(err_line(&format!("{base}{bad}\n")).0, 5, "{bad}");
    }

    assert_eq!(err_line("V2\nI 402A0000001230\n").0, 1);
    assert_eq!(err_line("").0, 0);
    assert_eq!(err_line(&base[..base.len() - 1]).0, 0); // no final newline
    assert_eq!(err_line(&format!("{base}T 6\n")).0, 5); // duplicate
    assert_eq!(err_line(&format!("{base}\n")).0, 5); // empty line
    assert_eq!(err_line(&format!("{base}S\n")).0, 5); // no space
    assert_eq!(err_line(&format!("{base}SS x\n")).0, 5);
    assert_eq!(err_line("V1\nI ../etc/passwd\nT 5\nS a\n").0, 2);
    assert_eq!(err_line(&format!("{base}R SOME\n")).0, 5);
    assert_eq!(err_line(&format!("{base}B 9BIT\n")).0, 5);
    assert_eq!(err_line(&format!("{base}Y 30\n")).0, 5);
    assert_eq!(err_line(&format!("{base}Y 30;X\n")).0, 5);
    assert_eq!(err_line(&format!("{base}E a%2\n")).0, 5); // short escape
    assert_eq!(err_line(&format!("{base}E a%41\n")).0, 5); // needless escape
    assert_eq!(err_line(&format!("{base}E a%0a\n")).0, 5); // lowercase hex
    assert_eq!(err_line(&format!("{base}E a\tb\n")).0, 5); // raw tab
    assert_eq!(err_line(&format!("{base}E a\r\n")).0, 5); // raw CR
}

#[test]
fn strict_recipient_errors() {
    let base = "V1\nI 402A0000001230\nT 5\nS a@b\n";
    let ok = "r x@y\tstate=pending\tattempts=0\tnext=0";
    assert!(ControlFile::parse(&format!("{base}{ok}\n")).is_ok());
    for bad in [
        "r x@y\tstate=pending\tattempts=0",
        "r x@y\tstate=lost\tattempts=0\tnext=0",
        "r x@y\tstate=pending\tattempts=-1\tnext=0",
        "r x@y\tstate=pending\tattempts=0\tnext=0\tcolour=red",
        "r x@y\tstate=pending\tattempts=0\tnext=0\tnotify",
        "r x@y\tstate=pending\tattempts=0\tnext=0\tstate=sent",
        "r x@y\tstate=pending\tattempts=0\tnext=0\treply=a\treply=b",
    ] {
        let (line, _) = err_line(&format!("{base}{ok}\n{bad}\n"));
        assert_eq!(line, 6, "{bad:?}");
    }
}

fn opt<T: std::fmt::Debug>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Option<T>> {
    proptest::option::of(s)
}

fn any_text() -> impl Strategy<Value = String> {
    // Arbitrary Unicode plus a bias towards the characters the encoding
    // must protect.
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(
            prop_oneof![
                Just('%'),
                Just('\n'),
                Just('\r'),
                Just('\t'),
                Just(' '),
                Just('='),
                Just('\0'),
                Just('\u{7f}'),
                Just('\u{85}'),
                any::<char>()
            ],
            0..20
        )
        .prop_map(|v| v.into_iter().collect()),
    ]
}

/// A NOTIFY value: NEVER, or any set of the three conditions.
fn notify() -> impl Strategy<Value = Notify> {
    prop_oneof![
        Just(Notify {
            never: true,
            ..Notify::default()
        }),
        (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(success, failure, delay)| {
            Notify {
                never: false,
                success: success || !(failure || delay),
                failure,
                delay,
            }
        }),
    ]
}

/// An ORCPT value: a type and an address without control characters.
fn orcpt() -> impl Strategy<Value = Orcpt> {
    ("[a-z0-9-]{1,10}", "[ -~]{1,40}").prop_map(|(addr_type, address)| Orcpt { addr_type, address })
}

fn recipient() -> impl Strategy<Value = RecipientEntry> {
    (
        any_text(),
        opt(notify()),
        opt(orcpt()),
        0..4u8,
        any::<u32>(),
        any::<u64>(),
        opt(any_text()),
        (
            opt(any_text()),
            opt(any_text()),
            opt(any_text()),
            opt(any_text()),
        ),
        opt(any::<u64>()),
        opt(0..3u8),
    )
        .prop_map(
            |(
                address,
                notify,
                orcpt,
                st,
                attempts,
                next_attempt,
                last_reply,
                (status, remote_mta, diagnostic, command),
                last_attempt,
                dsn,
            )| RecipientEntry {
                address,
                notify,
                orcpt,
                state: [
                    RecipientState::Pending,
                    RecipientState::Sent,
                    RecipientState::Deferred,
                    RecipientState::Failed,
                ][st as usize],
                attempts,
                next_attempt,
                last_reply,
                status,
                remote_mta,
                diagnostic,
                command,
                last_attempt,
                dsn: dsn.map(|d| [DsnDue::Failed, DsnDue::Delivered, DsnDue::Relayed][d as usize]),
                alias: None,
                target: None,
            },
        )
}

proptest! {
    #[test]
    fn round_trip(
        id in "[0-9A-Za-z]{14}",
        created in any::<u64>(),
        sender in any_text(),
        strings in (opt(any_text()), opt(any_text()), any_text(), any_text(), opt(any_text())),
        enums in (proptest::option::of(any::<bool>()), proptest::option::of(any::<bool>())),
        nums in (any::<u64>(), any::<u32>(), any::<u64>(), proptest::option::of(any::<u32>())),
        by in proptest::option::of((any::<i64>(), any::<bool>(), any::<bool>())),
        recipients in proptest::collection::vec(recipient(), 0..5),
    ) {
        let (envid, helo, client, protocol, auth) = strings;
        let (size, attempts, next_attempt, submitter_uid) = nums;
        let cf = ControlFile {
            id: id.parse().unwrap(),
            created,
            sender,
            envid,
            ret: enums.0.map(|f| if f { Ret::Full } else { Ret::Hdrs }),
            body: enums.1.map(|e| if e { BodyType::EightBitMime } else { BodyType::SevenBit }),
            size,
            helo,
            client,
            protocol,
            auth,
            deliver_by: by.map(|(seconds, return_on_expiry, trace)| DeliverBy {
                seconds,
                return_on_expiry,
                trace,
            }),
            submitter_uid,
            held: attempts % 2 == 1,
            quarantine: None,
            through_mta: attempts % 3 == 0,
            warned: next_attempt % 2 == 1,
            generated: [None, Some(Generated::Dsn), Some(Generated::Postmaster)]
                [(size % 3) as usize],
            attempts,
            next_attempt,
            recipients,
        };
        let text = cf.to_text();
        // One line per record: values can never add lines.
        // V1 I T S Z C P N K always, plus the optional ones, plus r lines.
        let optional = [cf.envid.is_some(), cf.ret.is_some(), cf.body.is_some(),
            cf.helo.is_some(), cf.auth.is_some(), cf.deliver_by.is_some(),
            cf.submitter_uid.is_some(), cf.held, cf.warned, cf.generated.is_some(),
            cf.through_mta];
        let expected = 9 + optional.iter().filter(|b| **b).count() + cf.recipients.len();
        prop_assert_eq!(text.split('\n').count() - 1, expected);
        prop_assert!(!text.contains('\r'));
        let back = ControlFile::parse(&text).unwrap();
        prop_assert_eq!(&back, &cf);
        prop_assert_eq!(back.to_text(), text);
    }

    #[test]
    fn parser_never_panics(text in any::<String>()) {
        let _ = ControlFile::parse(&text);
        let _ = ControlFile::parse(&format!("V1\nI 402A0000001230\nT 5\nS a\n{text}\n"));
    }
}

#[test]
fn aliases_and_file_and_program_targets_round_trip() {
    use postern_queue::{LocalTarget, TargetKind};
    let mut cf = ControlFile::new(qid(), 1, "alice@example.org");
    let mut a = RecipientEntry::new("bob@mx.test");
    a.alias = Some("staff@mx.test".into());
    let mut p = RecipientEntry::new("|/usr/bin/prog -a");
    p.alias = Some("staff@mx.test".into());
    p.target = Some(LocalTarget {
        kind: TargetKind::Program,
        uid: 1001,
        gid: 100,
    });
    cf.recipients = vec![a, p];
    let text = cf.to_text();
    assert!(
        text.contains("r bob@mx.test\tstate=pending\tattempts=0\tnext=0\talias=staff@mx.test\n")
    );
    assert!(text.contains(
        "r |/usr/bin/prog -a\tstate=pending\tattempts=0\tnext=0\talias=staff@mx.test\tkind=program\tctl=1001:100\n"
    ));
    assert_eq!(ControlFile::parse(&text).unwrap(), cf);
    for bad in [
        "\tkind=program",
        "\tctl=1:1",
        "\tkind=socket\tctl=1:1",
        "\tkind=file\tctl=x",
    ] {
        let t = text.replacen("\talias=staff@mx.test\n", &format!("{bad}\n"), 1);
        assert!(ControlFile::parse(&t).is_err(), "{bad}");
    }
}

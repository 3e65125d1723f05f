use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use postern_queue::{
    ControlFile, Pending, QueueError, QueueId, QueueIdGenerator, RecipientEntry, RecipientState,
    Spool, SyncMethod,
};
use tempfile::TempDir;

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn control(id: &QueueId) -> ControlFile {
    let mut cf = ControlFile::new(id.clone(), 1_704_189_600, "alice@example.org");
    cf.client = "rdns.example [192.0.2.1]".into();
    cf.protocol = "ESMTP".into();
    cf.recipients.push(RecipientEntry::new("bob@example.net"));
    cf
}

/// Receives and commits one message with `body`.
fn queue_one(spool: &Spool, gen: &mut QueueIdGenerator, body: &[u8]) -> QueueId {
    let (id, mut f) = spool.create(gen).unwrap();
    f.write_all(body).unwrap();
    let mut cf = control(&id);
    cf.size = body.len() as u64;
    spool.commit(&id, &f, &cf).unwrap();
    id
}

#[test]
fn open_creates_private_directories() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("mqueue");
    let spool = Spool::open(&root).unwrap();
    assert_eq!(spool.root(), root);
    for d in ["", "incoming", "queue"] {
        assert!(root.join(d).is_dir());
        assert_eq!(mode(&root.join(d)), 0o700, "{d}");
    }
    // Opening again is fine.
    Spool::open(&root).unwrap();
    // A file where a directory should be is refused.
    let bad = tmp.path().join("bad");
    fs::create_dir(&bad).unwrap();
    fs::write(bad.join("queue"), b"").unwrap();
    assert!(Spool::open(&bad).is_err());
    // So is a symlinked subdirectory.
    let sym = tmp.path().join("sym");
    fs::create_dir(&sym).unwrap();
    std::os::unix::fs::symlink(tmp.path(), sym.join("incoming")).unwrap();
    assert!(Spool::open(&sym).is_err());
}

#[test]
fn create_write_commit_list_load_read() {
    let tmp = TempDir::new().unwrap();
    let spool = Spool::open(tmp.path()).unwrap();
    let mut gen = QueueIdGenerator::new(4242);
    let (id, mut f) = spool.create(&mut gen).unwrap();
    let incoming = tmp.path().join(format!("incoming/df{id}"));
    assert_eq!(mode(&incoming), 0o600);
    f.write_all(b"Subject: hi\r\n\r\nbody\r\n").unwrap();
    // Opened read+write: the caller can read back what it wrote.
    f.seek(SeekFrom::Start(0)).unwrap();
    let mut back = String::new();
    f.read_to_string(&mut back).unwrap();
    assert_eq!(back, "Subject: hi\r\n\r\nbody\r\n");
    assert!(spool.list().unwrap().is_empty(), "not committed yet");

    let cf = control(&id);
    spool.commit(&id, &f, &cf).unwrap();
    assert!(!incoming.exists());
    let qf = tmp.path().join(format!("queue/qf{id}"));
    let df = tmp.path().join(format!("queue/df{id}"));
    assert_eq!(mode(&qf), 0o600);
    assert_eq!(mode(&df), 0o600);
    assert!(!tmp.path().join(format!("queue/tf{id}")).exists());
    assert!(fs::read_to_string(&qf).unwrap().starts_with("V1\nI "));

    assert_eq!(spool.list().unwrap(), vec![id.clone()]);
    assert_eq!(spool.load(&id).unwrap(), cf);
    assert_eq!(spool.data_size(&id).unwrap(), 21);
    let mut data = String::new();
    spool
        .open_data(&id)
        .unwrap()
        .read_to_string(&mut data)
        .unwrap();
    assert_eq!(data, "Subject: hi\r\n\r\nbody\r\n");
    assert!(spool.open_data(&id).unwrap().write_all(b"x").is_err());
}

#[test]
fn commit_refuses_a_control_file_for_another_id() {
    let tmp = TempDir::new().unwrap();
    let spool = Spool::open(tmp.path()).unwrap();
    let mut gen = QueueIdGenerator::new(1);
    let (id, f) = spool.create(&mut gen).unwrap();
    let other: QueueId = "00000000000000".parse().unwrap();
    assert!(spool.commit(&id, &f, &control(&other)).is_err());
    assert!(spool.list().unwrap().is_empty());
}

#[test]
fn create_skips_ids_already_in_the_spool() {
    let tmp = TempDir::new().unwrap();
    let spool = Spool::open(tmp.path()).unwrap();
    // Same pid, same generator state: the second generator would repeat the
    // first one's ids.
    let first = queue_one(&spool, &mut QueueIdGenerator::new(5), b"a");
    let (second, _f) = spool.create(&mut QueueIdGenerator::new(5)).unwrap();
    assert_ne!(first, second);
}

#[test]
fn ids_in_list_are_sorted() {
    let tmp = TempDir::new().unwrap();
    let spool = Spool::open(tmp.path()).unwrap();
    let mut gen = QueueIdGenerator::new(77);
    let mut ids: Vec<_> = (0..5).map(|_| queue_one(&spool, &mut gen, b"x")).collect();
    ids.sort();
    assert_eq!(spool.list().unwrap(), ids);
}

#[test]
fn abort_removes_incoming() {
    let tmp = TempDir::new().unwrap();
    let spool = Spool::open(tmp.path()).unwrap();
    let mut gen = QueueIdGenerator::new(1);
    let (id, _f) = spool.create(&mut gen).unwrap();
    spool.abort(&id).unwrap();
    assert_eq!(
        fs::read_dir(tmp.path().join("incoming")).unwrap().count(),
        0
    );
    spool.abort(&id).unwrap(); // idempotent
}

#[test]
fn update_and_remove() {
    let tmp = TempDir::new().unwrap();
    let spool = Spool::open(tmp.path()).unwrap();
    let mut gen = QueueIdGenerator::new(1);
    let id = queue_one(&spool, &mut gen, b"data");
    let mut cf = spool.load(&id).unwrap();
    cf.recipients[0].state = RecipientState::Deferred;
    cf.recipients[0].last_reply = Some("451 4.3.0 later".into());
    cf.attempts = 1;
    spool.update(&id, &cf).unwrap();
    assert_eq!(spool.load(&id).unwrap(), cf);
    assert_eq!(mode(&tmp.path().join(format!("queue/qf{id}"))), 0o600);
    assert!(!tmp.path().join(format!("queue/tf{id}")).exists());

    spool.remove(&id).unwrap();
    assert!(spool.list().unwrap().is_empty());
    assert_eq!(fs::read_dir(tmp.path().join("queue")).unwrap().count(), 0);
    spool.remove(&id).unwrap(); // idempotent
                                // An update must not resurrect a removed message.
    let e = spool.update(&id, &cf).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    assert!(matches!(spool.load(&id), Err(QueueError::Io(_))));
}

#[test]
fn load_reports_mismatched_and_unparsable_files() {
    let tmp = TempDir::new().unwrap();
    let spool = Spool::open(tmp.path()).unwrap();
    let mut gen = QueueIdGenerator::new(1);
    let id = queue_one(&spool, &mut gen, b"x");
    let qf = tmp.path().join(format!("queue/qf{id}"));
    let text = fs::read_to_string(&qf).unwrap();
    fs::write(&qf, text.replace(id.as_str(), "00000000000000")).unwrap();
    let e = spool.load(&id).unwrap_err();
    assert!(matches!(e, QueueError::Corrupt { .. }), "{e}");
    fs::write(&qf, "V1\nI 402A\n").unwrap();
    let e = spool.load(&id).unwrap_err();
    assert!(matches!(e, QueueError::Parse(ref p) if p.line == 2), "{e}");
    assert!(e.to_string().contains("line 2"), "{e}");
}

#[test]
fn recover_after_crashes() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path();
    let spool = Spool::open(root).unwrap();
    let mut gen = QueueIdGenerator::new(9);
    let t0 = UNIX_EPOCH + Duration::from_secs(1_704_189_600);

    // (e) a committed message that must survive untouched.
    let good = queue_one(&spool, &mut gen, b"keep me");
    let good_qf = fs::read(root.join(format!("queue/qf{good}"))).unwrap();

    // (a) a crash while receiving: data in incoming/ only.
    let (a, mut fa) = spool.create(&mut gen).unwrap();
    fa.write_all(b"partial").unwrap();
    drop(fa);
    // (b) a crash between the df rename and the qf rename.
    let b = gen.next(t0);
    fs::write(root.join(format!("queue/df{b}")), b"no qf").unwrap();
    // (c) a crash while writing a control file (new message or update).
    let c = gen.next(t0);
    fs::write(root.join(format!("queue/tf{c}")), b"V1\nI ").unwrap();
    fs::write(root.join(format!("queue/tf{good}")), b"V1\n").unwrap();
    // (d) a corrupt qf, with its data.
    let d = gen.next(t0);
    fs::write(root.join(format!("queue/qf{d}")), b"V1\nI garbage\n").unwrap();
    fs::write(root.join(format!("queue/df{d}")), b"precious").unwrap();
    // A qf whose data file vanished, and a file we do not know.
    let lost = gen.next(t0);
    let mut lost_cf = control(&lost);
    lost_cf.size = 1;
    fs::write(root.join(format!("queue/qf{lost}")), lost_cf.to_text()).unwrap();
    fs::write(root.join("queue/README"), b"?").unwrap();
    // (f) the qf rename persisted but the df rename did not.
    let (f, mut ff) = spool.create(&mut gen).unwrap();
    ff.write_all(b"unacknowledged").unwrap();
    fs::write(root.join(format!("queue/qf{f}")), control(&f).to_text()).unwrap();

    let rec = Spool::open(root).unwrap().recover().unwrap();
    assert_eq!(rec.committed, vec![good.clone()]);
    let mut removed = vec![
        root.join(format!("incoming/df{a}")),
        root.join(format!("queue/df{b}")),
        root.join(format!("queue/tf{c}")),
        root.join(format!("queue/tf{good}")),
        root.join(format!("incoming/df{f}")),
        root.join(format!("queue/qf{f}")),
    ];
    removed.sort();
    assert_eq!(rec.removed, removed);
    let corrupt = root.join("corrupt");
    let mut moved = vec![
        corrupt.join(format!("qf{d}")),
        corrupt.join(format!("df{d}")),
        corrupt.join(format!("qf{lost}")),
        corrupt.join("README"),
    ];
    moved.sort();
    assert_eq!(rec.corrupt, moved);
    assert_eq!(
        fs::read(corrupt.join(format!("df{d}"))).unwrap(),
        b"precious"
    );
    assert_eq!(mode(&corrupt), 0o700);

    // Only the good message is left, byte for byte.
    let mut left: Vec<_> = fs::read_dir(root.join("queue"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, vec![format!("df{good}"), format!("qf{good}")]);
    assert_eq!(
        fs::read(root.join(format!("queue/qf{good}"))).unwrap(),
        good_qf
    );
    assert_eq!(fs::read_dir(root.join("incoming")).unwrap().count(), 0);
    let mut data = Vec::new();
    spool
        .open_data(&good)
        .unwrap()
        .read_to_end(&mut data)
        .unwrap();
    assert_eq!(data, b"keep me");

    // A second corrupt file of the same name does not overwrite the first.
    fs::write(root.join(format!("queue/qf{d}")), b"junk").unwrap();
    let rec2 = spool.recover().unwrap();
    assert_eq!(rec2.corrupt, vec![corrupt.join(format!("qf{d}.1"))]);
    assert!(rec2.removed.is_empty());
    assert_eq!(rec2.committed, vec![good]);
}

/// Receives `n` messages, not committed yet.
fn receive(spool: &Spool, gen: &mut QueueIdGenerator, n: usize) -> Vec<(fs::File, ControlFile)> {
    (0..n)
        .map(|i| {
            let (id, mut f) = spool.create(gen).unwrap();
            let body = format!("Subject: {i}\r\n\r\nbody {i}\r\n");
            f.write_all(body.as_bytes()).unwrap();
            let mut cf = control(&id);
            cf.size = body.len() as u64;
            (f, cf)
        })
        .collect()
}

#[test]
fn a_batch_commits_every_message_with_either_sync_method() {
    for method in [SyncMethod::Fsync, SyncMethod::Syncfs] {
        let tmp = TempDir::new().unwrap();
        let spool = Spool::open(tmp.path()).unwrap().with_sync(method);
        let mut gen = QueueIdGenerator::new(77);
        let received = receive(&spool, &mut gen, 5);
        let batch: Vec<Pending> = received
            .iter()
            .map(|(data, control)| Pending { data, control })
            .collect();
        let results = spool.commit_batch(&batch);
        assert!(results.iter().all(Result::is_ok), "{method:?}: {results:?}");
        let mut ids: Vec<QueueId> = received.iter().map(|(_, c)| c.id.clone()).collect();
        ids.sort();
        assert_eq!(spool.list().unwrap(), ids, "{method:?}");
        for (i, (_, control)) in received.iter().enumerate() {
            assert_eq!(spool.load(&control.id).unwrap(), *control);
            let mut data = String::new();
            spool
                .open_data(&control.id)
                .unwrap()
                .read_to_string(&mut data)
                .unwrap();
            assert_eq!(data, format!("Subject: {i}\r\n\r\nbody {i}\r\n"));
        }
        // Nothing left behind: no tf, nothing in incoming/.
        assert_eq!(
            fs::read_dir(tmp.path().join("incoming")).unwrap().count(),
            0
        );
        assert_eq!(
            fs::read_dir(tmp.path().join("queue")).unwrap().count(),
            10,
            "a qf and a df each"
        );
        // Removed without a barrier of its own, then made durable.
        spool.remove_unsynced(&ids[0]).unwrap();
        spool.sync_names().unwrap();
        assert_eq!(spool.list().unwrap(), ids[1..]);
    }
}

#[test]
fn a_failed_message_of_a_batch_leaves_nothing_and_the_others_commit() {
    let tmp = TempDir::new().unwrap();
    let spool = Spool::open(tmp.path())
        .unwrap()
        .with_sync(SyncMethod::Syncfs);
    let mut gen = QueueIdGenerator::new(78);
    let received = receive(&spool, &mut gen, 3);
    // The middle one's data is gone (its rename will fail).
    let lost = received[1].1.id.clone();
    fs::remove_file(tmp.path().join(format!("incoming/df{lost}"))).unwrap();
    let batch: Vec<Pending> = received
        .iter()
        .map(|(data, control)| Pending { data, control })
        .collect();
    let results = spool.commit_batch(&batch);
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(results[1].is_err());
    let mut committed = vec![received[0].1.id.clone(), received[2].1.id.clone()];
    committed.sort();
    assert_eq!(spool.list().unwrap(), committed);
    let queue: Vec<String> = fs::read_dir(tmp.path().join("queue"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(lost.as_str()))
        .collect();
    assert!(queue.is_empty(), "{queue:?}");
    assert_eq!(
        spool.recover().unwrap().removed,
        Vec::<std::path::PathBuf>::new()
    );
}

#[test]
fn a_removed_control_file_is_reused_whole_for_the_next_message() {
    use std::os::unix::fs::MetadataExt;
    let tmp = TempDir::new().unwrap();
    let spool = Spool::open(tmp.path()).unwrap();
    let mut gen = QueueIdGenerator::new(79);
    // A long control file, removed: its inode is kept in free/.
    let (id, mut f) = spool.create(&mut gen).unwrap();
    f.write_all(b"x\r\n").unwrap();
    let mut long = control(&id);
    for i in 0..50 {
        long.recipients
            .push(RecipientEntry::new(format!("someone{i}@example.net")));
    }
    spool.commit(&id, &f, &long).unwrap();
    let inode = fs::metadata(tmp.path().join(format!("queue/qf{id}")))
        .unwrap()
        .ino();
    spool.remove(&id).unwrap();
    assert_eq!(fs::read_dir(tmp.path().join("free")).unwrap().count(), 1);

    // The next message's control file is that inode, with nothing of the
    // old one left in it.
    let next = queue_one(&spool, &mut gen, b"y\r\n");
    let qf = tmp.path().join(format!("queue/qf{next}"));
    assert_eq!(fs::metadata(&qf).unwrap().ino(), inode);
    assert!(!fs::read_to_string(&qf).unwrap().contains("someone"));
    assert_eq!(spool.load(&next).unwrap().recipients.len(), 1);
    assert_eq!(fs::read_dir(tmp.path().join("free")).unwrap().count(), 0);

    // Recovery empties free/ (files an earlier process kept).
    spool.remove(&next).unwrap();
    assert_eq!(fs::read_dir(tmp.path().join("free")).unwrap().count(), 1);
    let again = Spool::open(tmp.path()).unwrap();
    again.recover().unwrap();
    assert_eq!(fs::read_dir(tmp.path().join("free")).unwrap().count(), 0);
}

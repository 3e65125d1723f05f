use std::path::Path;

use postern_config::Aliases;

use super::*;

/// A directory nobody else may write (not under /tmp, which
/// sendmail's defaults do not trust for include files).
fn safe_dir() -> tempfile::TempDir {
    postern_testkit::safe_tempdir()
}

fn table(text: &str) -> Aliases {
    Aliases::parse_str(text, Path::new("/nonexistent/aliases")).unwrap()
}

fn members(e: Expansion) -> (Vec<String>, Vec<(String, String)>) {
    match e {
        Expansion::Members { members, failed } => (
            members.into_iter().map(|m| m.address).collect(),
            failed.into_iter().map(|(a, r, _)| (a, r)).collect(),
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn nesting_users_remote_files_programs_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let s = crate::settings::for_tests(dir.path(), "");
    let t = table(
        "postmaster: staff\nstaff: Root, \\root, ops, bob@example.com, /var/log/archive, \"|/bin/cat -u\"\nops: root, root@mx.test\n",
    );
    let e = expand(&t, &s, "postmaster@mx.test", false);
    let Expansion::Members {
        members: got,
        failed,
    } = e
    else {
        panic!()
    };
    assert!(failed.is_empty());
    let shown: Vec<&str> = got.iter().map(|m| m.address.as_str()).collect();
    assert_eq!(
        shown,
        [
            "root@mx.test",
            "bob@example.com",
            "/var/log/archive",
            "|/bin/cat -u"
        ]
    );
    let file = got[2].target.unwrap();
    assert_eq!(file.kind, TargetKind::File);
    // A root-owned (here: missing) aliases file gives DefaultUser, never root.
    assert_ne!(file.uid, 0);
    assert_eq!(got[3].target.unwrap().kind, TargetKind::Program);
    assert!(got.iter().all(|m| m.owner.is_none()));
    // Not an alias: itself, or unknown.
    assert_eq!(expand(&t, &s, "root@mx.test", false), Expansion::Itself);
    assert_eq!(expand(&t, &s, "bob@example.com", false), Expansion::Itself);
    assert_eq!(
        expand(&t, &s, "nosuchuser@mx.test", false),
        Expansion::Failed("550 5.1.1 <nosuchuser@mx.test>... User unknown".into())
    );
    // restrictexpand: the first level only.
    let (shallow, _) = members(expand(&t, &s, "staff@mx.test", true));
    assert_eq!(
        shallow,
        [
            "Root@mx.test",
            "ops@mx.test",
            "bob@example.com",
            "/var/log/archive",
            "\"|/bin/cat -u\""
        ]
    );
}

#[test]
fn loops_are_broken_with_sendmails_reply() {
    let dir = tempfile::tempdir().unwrap();
    let s = crate::settings::for_tests(dir.path(), "");
    let t = table("a: b\nb: a\nself: self\n");
    for name in ["a", "self"] {
        assert_eq!(
            expand(&t, &s, &format!("{name}@mx.test"), false),
            Expansion::Failed(
                "554 5.4.6 aliasing/forwarding loop broken (11 aliases deep; 10 max)".into()
            )
        );
    }
}

#[test]
fn owners_and_unknown_members() {
    let dir = tempfile::tempdir().unwrap();
    let s = crate::settings::for_tests(dir.path(), "");
    let t = table("list: root, ghost\nowner-list: root\nlist-request: root\n");
    let Expansion::Members {
        members: got,
        failed,
    } = expand(&t, &s, "list@mx.test", false)
    else {
        panic!()
    };
    assert_eq!(got[0].address, "root@mx.test");
    assert_eq!(got[0].owner.as_deref(), Some("owner-list@mx.test"));
    assert_eq!(
        failed,
        [(
            "ghost@mx.test".to_string(),
            "550 5.1.1 <ghost@mx.test>... User unknown".to_string(),
            Some("owner-list@mx.test".to_string())
        )]
    );
    // The owner's own address has no owner.
    let Expansion::Members { members: got, .. } = expand(&t, &s, "owner-list@mx.test", false)
    else {
        panic!()
    };
    assert_eq!(got[0].owner, None);
}

#[test]
fn includes_are_read_only_when_safe() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let s = crate::settings::for_tests(dir.path(), "");
    let safe = safe_dir();
    let list = safe.path().join("members");
    std::fs::write(
        &list,
        "# members\nroot, carol@example.org\n\"|/bin/true\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&list, std::fs::Permissions::from_mode(0o644)).unwrap();
    let t = table(&format!("team: :include:{}\n", list.display()));
    let (got, failed) = members(expand(&t, &s, "team@mx.test", false));
    assert_eq!(got, ["root@mx.test", "carol@example.org", "|/bin/true"]);
    assert!(failed.is_empty());
    std::fs::set_permissions(&list, std::fs::Permissions::from_mode(0o664)).unwrap();
    let (got, failed) = members(expand(&t, &s, "team@mx.test", false));
    assert!(got.is_empty());
    assert_eq!(
        failed[0].1,
        format!(
            "550 5.7.1 Cannot open {}: Group writable file",
            list.display()
        )
    );
    // Under /tmp (world-writable, sticky bit not trusted).
    let in_tmp = dir.path().join("members");
    std::fs::write(&in_tmp, "root\n").unwrap();
    let t = table(&format!("team: :include:{}\n", in_tmp.display()));
    let (_, failed) = members(expand(&t, &s, "team@mx.test", false));
    assert!(
        failed[0].1.ends_with(": World writable directory"),
        "{failed:?}"
    );
    let t = table("team: :include:/nonexistent/list\n");
    let (_, failed) = members(expand(&t, &s, "team@mx.test", false));
    assert_eq!(
        failed[0].1,
        "550 5.7.1 Cannot open /nonexistent/list: No such file or directory"
    );
}

use super::*;

fn parse(text: &str) -> Result<Aliases, String> {
    Aliases::parse_str(text, Path::new("/etc/mail/aliases")).map_err(|e| e.to_string())
}

fn targets(text: &str, name: &str) -> Vec<AliasTarget> {
    parse(text).unwrap().lookup(name).unwrap().targets.clone()
}

fn addr(a: &str) -> AliasTarget {
    AliasTarget::Address(a.into())
}

#[test]
fn every_syntax_form() {
    let text = "\
# the required ones
postmaster: root
MAILER-DAEMON: postmaster

staff: alice, bob@example.com,
\tcarol, <dave@example.net>
  , Erin Example <erin@example.org>
\"john doe\": jd
list: :include:/etc/mail/list.members
archive: /var/mail/archive/list
notify: |/usr/bin/notify root
quoted: \"|/usr/bin/prog -a x,y\", \"/var/log/mail copy\"
keep: \\alice, bob
owner-list: alice
list-request: alice
joined: a,\\
 b
";
    let t = parse(text).unwrap();
    assert_eq!(t.len(), 12);
    assert!(t.missing_required().is_empty());
    assert_eq!(
        targets(text, "STAFF"),
        [
            addr("alice"),
            addr("bob@example.com"),
            addr("carol"),
            addr("dave@example.net"),
            addr("erin@example.org")
        ]
    );
    assert_eq!(t.lookup("staff").unwrap().line, 5);
    assert_eq!(targets(text, "john doe"), [addr("jd")]);
    assert_eq!(
        targets(text, "list"),
        [AliasTarget::Include("/etc/mail/list.members".into())]
    );
    assert_eq!(
        targets(text, "archive"),
        [AliasTarget::File("/var/mail/archive/list".into())]
    );
    assert_eq!(
        targets(text, "notify"),
        [AliasTarget::Program("/usr/bin/notify root".into())]
    );
    assert_eq!(
        targets(text, "quoted"),
        [
            AliasTarget::Program("/usr/bin/prog -a x,y".into()),
            AliasTarget::File("/var/log/mail copy".into())
        ]
    );
    assert_eq!(targets(text, "keep"), [addr("\\alice"), addr("bob")]);
    assert_eq!(targets(text, "joined"), [addr("a"), addr("b")]);
    assert_eq!(targets(text, "owner-list"), [addr("alice")]);
    assert_eq!(
        AliasTarget::Program("/bin/x a".into()).to_string(),
        "\"|/bin/x a\""
    );
}

#[test]
fn statistics_are_sendmails() {
    // Names lower-cased count with the right-hand side as written.
    let t = parse("postmaster: root\nMAILER-DAEMON: postmaster\n").unwrap();
    assert_eq!(
        t.stats(),
        AliasStats {
            aliases: 2,
            longest: 10,
            total: 10 + 4 + 13 + 10
        }
    );
}

#[test]
fn every_error_names_file_and_line() {
    let text = "\
ok: root

 stray continuation
bad name!x@: root
remote@example.com: root
empty:
badaddr: alice, bob@@x
inc: :include:relative/path
ok: again
\\root: x
prog: \"|\"
no colon here
";
    let e = parse(text).unwrap_err();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines,
        [
            "/etc/mail/aliases:3: Non-continuation line starts with space",
            "/etc/mail/aliases:4: bad name!x@... illegal alias name",
            "/etc/mail/aliases:5: remote@example.com... cannot alias non-local names",
            "/etc/mail/aliases:6: empty... missing value for alias",
            "/etc/mail/aliases:7: bob@@x... bad address (invalid domain)",
            "/etc/mail/aliases:8: :include:relative/path... bad address (:include: needs an absolute path)",
            "/etc/mail/aliases:9: ok... duplicate alias name (first at line 1)",
            "/etc/mail/aliases:10: \\root... illegal alias name",
            "/etc/mail/aliases:11: \"|\"... bad address (empty program)",
            "/etc/mail/aliases:12: missing colon",
        ]
    );
}

#[test]
fn missing_file_is_empty_and_lacks_the_required_aliases() {
    let t = Aliases::load(Path::new("/nonexistent/aliases")).unwrap();
    assert!(t.is_empty());
    assert_eq!(t.missing_required(), ["postmaster", "MAILER-DAEMON"]);
    let t = parse("Postmaster: root\n").unwrap();
    assert_eq!(t.missing_required(), ["MAILER-DAEMON"]);
}

#[test]
fn include_files() {
    let path = Path::new("/etc/mail/list.members");
    let t = parse_include("# members\nalice, bob\n\ncarol@example.com\n", path).unwrap();
    assert_eq!(t, [addr("alice"), addr("bob"), addr("carol@example.com")]);
    let e = parse_include("alice\nbad@@x\n", path)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e.trim_end(),
        "/etc/mail/list.members:2: bad@@x... bad address (invalid domain)"
    );
}

/// Found by fuzzing (fuzz/fuzz_targets/table_aliases.rs): a quote left
/// open kept the commas after it from separating, so `|prog "x, bob`
/// was one program; a file whose path has a comma was written back
/// unquoted, as two targets; and the local user `</x>` was written back
/// as the file `/x`.
#[test]
fn an_open_quote_is_an_error_and_targets_are_written_back_whole() {
    let e = parse("list: |prog \"x, bob\n").unwrap_err();
    assert_eq!(e, "/etc/mail/aliases:1: |prog \"x, bob... Unbalanced '\"'");
    let file = &targets("log: \"/var/log/a,b\", bob\n", "log")[0];
    assert_eq!(file, &AliasTarget::File("/var/log/a,b".into()));
    assert_eq!(file.to_string(), "\"/var/log/a,b\"");
    let line = format!("again: {file}");
    assert_eq!(targets(&line, "again"), std::slice::from_ref(file));
    let user = &targets("odd: </x>\n", "odd")[0];
    assert_eq!(user, &addr("/x"));
    assert_eq!(
        targets(&format!("again: {user}"), "again"),
        std::slice::from_ref(user)
    );
}

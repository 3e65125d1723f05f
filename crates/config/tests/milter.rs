//! Mail filters in both syntaxes: the cookbook's INPUT_MAIL_FILTER and
//! MAIL_FILTER, the .cf's X lines and InputMailFilters, the macro lists.

use std::path::Path;
use std::time::Duration;

use postern_config::{Config, FailureMode, FilterSocket};
use postern_milter::macros::Stage;

fn parse(text: &str) -> Config {
    match Config::parse_str(text, Path::new("/etc/mail/postern.cf")) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

fn names(c: &Config) -> Vec<&str> {
    c.input_filters().iter().map(|f| f.name.as_str()).collect()
}

#[test]
fn the_cookbooks_lines_define_filters_in_order() {
    let c = parse(
        "INPUT_MAIL_FILTER(`opendkim', `S=inet:8891@127.0.0.1, F=T, T=C:10s;S:10s;R:10s;E:5m')dnl\n\
         MAIL_FILTER(`spare', `S=unix:/run/spare.sock')\n\
         INPUT_MAIL_FILTER(`rspamd', `S=unix:/run/rspamd/milter.sock, F=')\n",
    );
    assert_eq!(names(&c), ["opendkim", "rspamd"]);
    assert_eq!(c.mail_filters.len(), 3);
    let dkim = &c.input_filters()[0];
    assert_eq!(dkim.on_failure, FailureMode::TempFail);
    assert_eq!(dkim.timeouts.read, Duration::from_secs(10));
    assert_eq!(
        c.input_filters()[1].socket,
        FilterSocket::Unix("/run/rspamd/milter.sock".into())
    );
}

#[test]
fn input_mail_filters_sets_the_order_in_either_syntax() {
    let c = parse(
        "INPUT_MAIL_FILTER(`a', `S=inet:1@127.0.0.1')\n\
         INPUT_MAIL_FILTER(`b', `S=inet:2@127.0.0.1')\n\
         define(`confINPUT_MAIL_FILTERS', `b, a')\n",
    );
    assert_eq!(names(&c), ["b", "a"]);
    let c = parse(
        "O InputMailFilters=clamav,opendkim\n\
         Xopendkim, S=inet:8891@127.0.0.1, F=T\n\
         Xclamav, S=unix:/run/clamav/clamav-milter.ctl, F=4, T=S:4m;R:4m\n",
    );
    assert_eq!(names(&c), ["clamav", "opendkim"]);
    assert_eq!(c.input_filters()[0].on_failure, FailureMode::Shutdown);
    // Defined, but the list leaves it out: not used.
    let c = parse("O InputMailFilters=\nXa, S=inet:1@127.0.0.1\n");
    assert!(c.input_filters().is_empty());
}

#[test]
fn mistakes_name_their_line() {
    let err = |text: &str| {
        Config::parse_str(text, Path::new("/etc/mail/postern.cf"))
            .unwrap_err()
            .to_string()
    };
    let e = err("O LogLevel=9\nINPUT_MAIL_FILTER(`dkim', `S=inet:8891@mail.example.com')\n");
    assert!(
        e.contains("postern.cf:2") && e.contains("not an IP address"),
        "{e}"
    );
    let e = err("Xa, S=inet:1@127.0.0.1\nXa, S=inet:2@127.0.0.1\n");
    assert!(
        e.contains("postern.cf:2") && e.contains("defined twice"),
        "{e}"
    );
    let e = err("O InputMailFilters=nosuch\n");
    assert!(e.contains("no mail filter named \"nosuch\""), "{e}");
    let e = err("INPUT_MAIL_FILTER(`lonely')\n");
    assert!(e.contains("takes a filter name and its equates"), "{e}");
}

#[test]
fn macros_default_to_sendmails_and_can_be_changed() {
    let c = parse("");
    assert_eq!(
        c.milter_macros[&Stage::Connect],
        ["j", "_", "{daemon_name}", "{if_name}", "{if_addr}"]
    );
    assert_eq!(c.milter_macros[&Stage::Eom], ["{msg_id}"]);
    assert!(c.milter_macros[&Stage::Data].is_empty());
    for stage in Stage::ALL {
        let want: Vec<&str> = stage.default_names().to_vec();
        assert_eq!(c.milter_macros[&stage], want, "{stage:?}");
    }
    let c = parse(
        "define(`confMILTER_MACROS_EOM', `{msg_id}, i')\nO Milter.macros.data=i {mail_addr}\n",
    );
    assert_eq!(c.milter_macros[&Stage::Eom], ["{msg_id}", "i"]);
    assert_eq!(c.milter_macros[&Stage::Data], ["i", "{mail_addr}"]);
}

#[test]
fn effective_lines_give_the_same_filters_back() {
    let c = parse(
        "INPUT_MAIL_FILTER(`opendkim', `S=inet:8891@127.0.0.1, F=T, T=C:10s')\n\
         MAIL_FILTER(`spare', `S=unix:/run/spare.sock')\n\
         INPUT_MAIL_FILTER(`v6', `S=inet6:11332@::1, F=R')\n",
    );
    let lines = c.effective_lines();
    assert!(
        lines.contains(&"O InputMailFilters=opendkim,v6".to_string()),
        "{lines:?}"
    );
    assert!(lines
        .contains(&"Xopendkim, S=inet:8891@127.0.0.1, F=T, T=C:10s;S:10s;R:10s;E:5m".to_string()));
    let again = parse(&lines.join("\n"));
    assert_eq!(again.mail_filters, c.mail_filters);
    assert_eq!(names(&again), names(&c));
    assert_eq!(again.effective_lines(), lines);
}

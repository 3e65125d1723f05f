//! PrivacyOptions: union over every occurrence in either syntax.

use std::path::Path;

use postern_config::Config;
use postern_smtp::PrivacyFlags;

fn privacy(text: &str) -> PrivacyFlags {
    match Config::parse_str(text, Path::new("/etc/mail/postern.cf")) {
        Ok(c) => c.privacy,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn default_is_authwarnings() {
    assert_eq!(privacy(""), PrivacyFlags::AUTH_WARNINGS);
    assert_eq!(privacy("O LogLevel=9\n"), PrivacyFlags::M4_DEFAULT);
}

#[test]
fn empty_cf_value_is_public() {
    assert_eq!(privacy("O PrivacyOptions=\n"), PrivacyFlags::PUBLIC);
    assert_eq!(privacy("O PrivacyOptions=public\n"), PrivacyFlags::PUBLIC);
    assert_eq!(
        privacy("define(`confPRIVACY_FLAGS', `')\n"),
        PrivacyFlags::PUBLIC
    );
}

#[test]
fn goaway_expands() {
    let f = privacy("O PrivacyOptions=goaway\n");
    assert_eq!(f, PrivacyFlags::GOAWAY);
    assert!(f.contains(PrivacyFlags::NEED_MAIL_HELO | PrivacyFlags::NO_VERB));
    assert!(!f.contains(PrivacyFlags::NO_ETRN));
}

#[test]
fn occurrences_accumulate_across_lines_and_syntaxes() {
    let f = privacy(
        "O PrivacyOptions=goaway\n\
         define(`confPRIVACY_FLAGS', `noetrn')dnl\n\
         O privacyoptions = RestrictQRun  NoBodyReturn , \n",
    );
    assert_eq!(
        f,
        PrivacyFlags::GOAWAY
            | PrivacyFlags::NO_ETRN
            | PrivacyFlags::RESTRICT_QRUN
            | PrivacyFlags::NO_BODY_RETURN
    );
    // An empty occurrence adds nothing but does not remove earlier flags.
    assert_eq!(
        privacy("O PrivacyOptions=noexpn\nO PrivacyOptions=\n"),
        PrivacyFlags::NO_EXPN
    );
}

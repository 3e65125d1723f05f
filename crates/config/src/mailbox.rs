//! `LocalMailbox` (Postern's own; m4 `confLOCAL_MAILBOX`): the kind of
//! mailbox local mail is written into, by an agent running as the
//! mailbox's owner.

/// Where and how a local user's mail is stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LocalMailbox {
    /// `<MailboxDirectory>/<user>/Maildir/` (the default).
    #[default]
    Maildir,
    /// `<MailboxDirectory>/<user>`, an mbox file as sendmail's mail.local
    /// writes it (with `MailboxDirectory=/var/mail`, sendmail's place).
    Mbox,
    /// `~user/Maildir/`, as Postfix's `home_mailbox = Maildir/`.
    HomeMaildir,
}

impl LocalMailbox {
    /// Parses the option's value: `maildir`, `mbox` or `~/Maildir`.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim() {
            v if v.eq_ignore_ascii_case("maildir") => Ok(Self::Maildir),
            v if v.eq_ignore_ascii_case("mbox") => Ok(Self::Mbox),
            "~/Maildir" | "~/Maildir/" => Ok(Self::HomeMaildir),
            other => Err(format!(
                "\"{other}\" is not a mailbox kind (maildir, mbox or ~/Maildir)"
            )),
        }
    }

    /// The option's value as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Maildir => "maildir",
            Self::Mbox => "mbox",
            Self::HomeMaildir => "~/Maildir",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LocalMailbox;

    #[test]
    fn values() {
        assert_eq!(LocalMailbox::parse("mbox"), Ok(LocalMailbox::Mbox));
        assert_eq!(LocalMailbox::parse("Maildir"), Ok(LocalMailbox::Maildir));
        assert_eq!(
            LocalMailbox::parse("~/Maildir/"),
            Ok(LocalMailbox::HomeMaildir)
        );
        assert!(LocalMailbox::parse("mh")
            .unwrap_err()
            .contains("maildir, mbox or ~/Maildir"));
        for kind in [
            LocalMailbox::Maildir,
            LocalMailbox::Mbox,
            LocalMailbox::HomeMaildir,
        ] {
            assert_eq!(LocalMailbox::parse(kind.as_str()), Ok(kind));
        }
    }
}

//! Everything a process needs to know from the configuration, read once by
//! master (before any fork and before anything binds) and inherited by
//! every child.

use std::path::Path;

use postern_config::{Config, ConfigErrors, LocalHostNames, Mailertable};

/// The configuration and its side tables.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The configuration file, validated.
    pub config: Config,
    /// `$j`.
    pub hostname: String,
    /// The domains delivered here (`local-host-names`, plus `$j`).
    pub local_names: LocalHostNames,
    /// Routes by domain.
    pub mailertable: Mailertable,
}

impl Settings {
    /// Reads the configuration file and the tables next to it.
    pub fn load(path: &Path) -> Result<Settings, ConfigErrors> {
        let config = Config::load(path)?;
        let hostname = config.hostname();
        let mut local_names = LocalHostNames::load(&config.table_path("local-host-names"))?;
        local_names.insert(&hostname);
        local_names.insert("localhost");
        let mailertable = Mailertable::load(&config.table_path("mailertable"))?;
        Ok(Settings {
            config,
            hostname,
            local_names,
            mailertable,
        })
    }

    /// True when mail for `domain` is delivered on this host.
    pub fn is_local_domain(&self, domain: &str) -> bool {
        self.local_names.contains(domain)
    }
}

/// Settings for in-process tests: spool and mailboxes under `dir`, host
/// `mx.test`, local domain `mx.test`, plus any extra configuration lines.
#[cfg(test)]
pub fn for_tests(dir: &Path, extra: &str) -> Settings {
    let text = format!(
        "O QueueDirectory={}\nO MailboxDirectory={}\nDj mx.test\n{extra}",
        dir.join("spool").display(),
        dir.join("mail").display()
    );
    let config = Config::parse_str(&text, &dir.join("postern.cf")).expect("test configuration");
    Settings {
        hostname: "mx.test".into(),
        local_names: LocalHostNames::from_names(["mx.test", "localhost"]),
        mailertable: Mailertable::default(),
        config,
    }
}

//! Everything a process needs to know from the configuration, read once by
//! master (before any fork and before anything binds) and inherited by
//! every child.

use std::path::Path;

use postern_config::{AccessMap, Config, ConfigError, ConfigErrors, LocalHostNames, Mailertable};
use postern_tls::{ClientTls, Keys, ServerTls};

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
    /// The access map (TLS requirements per server, connection limits per
    /// client, RELAY for clients and recipients).
    pub access: AccessMap,
    /// `relay-domains`: recipient domains and clients that may relay.
    pub relay_domains: postern_config::RelayDomains,
    /// The TLS contexts, built from the certificate files before any fork
    /// (fronts run where those files cannot be read). Their keys are the
    /// key holder's: no private key is read here.
    pub tls: TlsContexts,
}

/// The server and client TLS contexts.
#[derive(Clone, Debug, Default)]
pub struct TlsContexts {
    /// STARTTLS for inbound mail; `None` when no server certificate is set.
    pub server: Option<ServerTls>,
    /// STARTTLS for outbound mail.
    pub client: Option<ClientTls>,
}

/// Which TLS contexts a process loads: only the delivery client needs the
/// client's (and its key), only fronts the server's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsSides {
    /// Both (master, which checks every file at start and on SIGHUP).
    Both,
    /// The server's only (the front factory).
    ServerOnly,
}

impl TlsContexts {
    /// Builds the contexts; an unusable certificate, key, CA or CRL file
    /// stops the start with a message naming it.
    fn load(config: &Config, sides: TlsSides, keys: Keys) -> Result<TlsContexts, ConfigErrors> {
        let fail = |side: &str, e: postern_tls::TlsError| {
            ConfigErrors(vec![ConfigError::new(
                &config.source,
                0,
                format!("STARTTLS={side}: {e}"),
            )])
        };
        let server = ServerTls::from_files(&config.tls, keys).map_err(|e| fail("server", e));
        let client = match sides {
            TlsSides::Both => ClientTls::from_files(&config.tls, keys)
                .map(Some)
                .map_err(|e| fail("client", e)),
            TlsSides::ServerOnly => Ok(None),
        };
        match (server, client) {
            (Ok(server), Ok(client)) => Ok(TlsContexts { server, client }),
            (server, client) => Err(ConfigErrors(
                [server.err(), client.err()]
                    .into_iter()
                    .flatten()
                    .flat_map(|e| e.0)
                    .collect(),
            )),
        }
    }
}

impl Settings {
    /// Reads the configuration file and the tables next to it.
    pub fn load(path: &Path) -> Result<Settings, ConfigErrors> {
        Self::load_with(path, TlsSides::Both)
    }

    /// Reads them as [`Settings::load`] does, building only the TLS
    /// contexts `sides` names. Once the file itself is valid, every table
    /// and every TLS file is read, and all their errors are returned
    /// together (`posternd --check-config` shows them all at once).
    pub fn load_with(path: &Path, sides: TlsSides) -> Result<Settings, ConfigErrors> {
        let config = Config::load(path)?;
        let hostname = config.hostname();
        let mut errors = Vec::new();
        let local_names = keep(
            LocalHostNames::load(&config.table_path("local-host-names")),
            &mut errors,
        );
        let mailertable = keep(
            Mailertable::load(&config.table_path("mailertable")),
            &mut errors,
        );
        let access = keep(AccessMap::load(&config.table_path("access")), &mut errors);
        let relay_domains = keep(
            postern_config::RelayDomains::load(&config.table_path("relay-domains")),
            &mut errors,
        );
        // Checked here so that a broken aliases file stops a start as a
        // broken table does; the queue runner keeps its own copy current.
        let aliases = keep(
            postern_config::Aliases::load(&config.alias_path()),
            &mut errors,
        );
        let tls = keep(
            TlsContexts::load(&config, sides, Keys::AskHolder),
            &mut errors,
        );
        let (
            Some(mut local_names),
            Some(mailertable),
            Some(access),
            Some(tls),
            Some(_),
            Some(relay_domains),
        ) = (
            local_names,
            mailertable,
            access,
            tls,
            aliases,
            relay_domains,
        )
        else {
            return Err(ConfigErrors(errors));
        };
        local_names.insert(&hostname);
        local_names.insert("localhost");
        Ok(Settings {
            tls,
            config,
            hostname,
            local_names,
            mailertable,
            access,
            relay_domains,
        })
    }

    /// The `M=` letters of the listener named `daemon` (`MTA`, `MSA`);
    /// listeners sharing a name share their letters (the configuration
    /// checks it).
    pub fn listener_modifiers(&self, daemon: &str) -> &str {
        self.config
            .daemons
            .iter()
            .find(|d| d.name.as_deref().unwrap_or("MTA") == daemon)
            .map_or("", |d| d.modifiers.as_str())
    }

    /// The listener named `daemon` takes mail only after AUTH (`M=a`).
    pub fn listener_requires_auth(&self, daemon: &str) -> bool {
        self.listener_modifiers(daemon).contains('a')
    }

    /// Where a local submission goes for the mail filters to see it: the
    /// listener named MTA (else the first that asks no AUTH), at its
    /// address or, bound to all, loopback. `None` without such a listener.
    pub fn mta_listener(&self) -> Option<std::net::SocketAddr> {
        use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
        let open = |d: &&postern_config::DaemonPort| !d.modifiers.contains('a');
        let daemons = &self.config.daemons;
        let d = daemons
            .iter()
            .filter(open)
            .find(|d| d.name.as_deref().unwrap_or("MTA") == "MTA")
            .or_else(|| daemons.iter().find(open))?;
        let ip = match d.addr {
            Some(ip) if !ip.is_unspecified() => ip,
            _ if d.family == postern_config::Family::Inet6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
            _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        Some(std::net::SocketAddr::new(ip, d.port))
    }

    /// True when mail for `domain` is delivered on this host.
    pub fn is_local_domain(&self, domain: &str) -> bool {
        self.local_names.contains(domain)
    }
}

/// The value, or `None` with its errors added to `errors`.
fn keep<T>(loaded: Result<T, ConfigErrors>, errors: &mut Vec<ConfigError>) -> Option<T> {
    loaded.map_err(|e| errors.extend(e.0)).ok()
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
        access: AccessMap::default(),
        relay_domains: postern_config::RelayDomains::default(),
        tls: TlsContexts::load(&config, TlsSides::Both, Keys::Load).expect("test TLS files"),
        config,
    }
}

#[cfg(test)]
mod tests {
    use super::for_tests;

    #[test]
    fn local_submissions_go_to_the_mta_listener_or_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let addr = |extra: &str| for_tests(dir.path(), extra).mta_listener();
        // The defaults: MTA on all addresses, port 25.
        assert_eq!(addr(""), Some("127.0.0.1:25".parse().unwrap()));
        assert_eq!(
            addr("O DaemonPortOptions=Port=2525, Addr=192.0.2.1, Name=MTA\n"),
            Some("192.0.2.1:2525".parse().unwrap())
        );
        assert_eq!(
            addr("O DaemonPortOptions=Port=2525, Family=inet6, Name=MX\n"),
            Some("[::1]:2525".parse().unwrap())
        );
        // A listener that asks for AUTH takes no relayed submission.
        assert_eq!(addr("O DaemonPortOptions=Port=587, Name=MSA, M=Ea\n"), None);
    }
}

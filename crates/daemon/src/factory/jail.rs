//! The fronts' jail, as the front factory prepares it once and every front
//! enters it after fork: FrontUser, the factory's chroot, no new
//! privileges, not dumpable, resource limits and the seccomp allow-list
//! (`privsep/syscalls.rs`: the factory's layer, installed on the factory
//! itself, and the front's, installed by each front on top of it), with
//! nothing open but what the session needs.
//! `posternd --check-front-jail` enters the very same jail to prove it.

use std::os::fd::{AsFd, OwnedFd, RawFd};

use nix::sys::resource::Resource;
use nix::unistd::Pid;

use crate::front::filters::{self, FilterDirs, Opened};
use crate::log;
use crate::privsep::{self, Dropped, Identity, Jail, SyscallFilter};
use crate::settings::Settings;

/// Descriptors a front may have open at once: standard I/O, the client,
/// the queue channel, the key holder's socket, syslog, the message pipe,
/// and room to spare.
const FRONT_MAX_FILES: u64 = 16;
/// Address space a front may map: its image and libraries, OpenSSL, a
/// session's buffers. A front growing past this is broken or attacked.
const FRONT_MAX_ADDRESS_SPACE: u64 = 512 << 20;
/// What a front may write to a regular file: nothing, unless its standard
/// error (`--log-stderr`) is one.
const FRONT_MAX_FILE_SIZE_LOGGING: u64 = 64 << 20;

/// Everything a front needs to enter its jail, prepared by the factory.
pub struct FrontJail {
    /// FrontUser (the invoking user without root).
    pub front_user: Identity,
    /// The outer layer of the fronts' seccomp policy, for the factory.
    factory_filter: SyscallFilter,
    /// The inner layer, for each front.
    filter: SyscallFilter,
    limits: Vec<(Resource, u64)>,
    /// /dev/null, for a front's standard I/O (unless it logs to stderr).
    null: Option<OwnedFd>,
    /// The directories of the mail filters' unix sockets.
    filter_dirs: FilterDirs,
    /// The configuration, for the filters a front connects to.
    config: postern_config::Config,
}

impl FrontJail {
    /// Resolves FrontUser and compiles the filter, then confines the
    /// calling process (the factory) itself: chrooted into the jail
    /// directory, only CAP_SETUID and CAP_SETGID left.
    pub fn prepare(settings: &Settings, log_stderr: bool) -> Result<FrontJail, String> {
        let front_user = if privsep::privileged() {
            let front = privsep::lookup(&settings.config.front_user).map_err(|e| e.to_string())?;
            // master checked this at start and on SIGHUP; a factory never
            // forks fronts under a uid another role has.
            for other in [&settings.config.run_as_user, &settings.config.queue_owner] {
                let other = privsep::lookup(other).map_err(|e| e.to_string())?;
                if other.uid == front.uid || front.uid.is_root() {
                    return Err(format!(
                        "FrontUser {} shares its uid with {} (or is root)",
                        front.name, other.name
                    ));
                }
            }
            front
        } else {
            privsep::current_identity()
        };
        // FrontUser's own groups reach a filter's socket (as Postfix's
        // `postfix` in group `opendkim`); nothing else is opened by them.
        let front_user = if settings.config.input_filters().is_empty() || !privsep::privileged() {
            front_user
        } else {
            privsep::with_supplementary_groups(front_user).map_err(|e| e.to_string())?
        };
        // Opened before the chroot hides them.
        let filter_dirs = FilterDirs::open(&settings.config)?;
        let factory_filter = privsep::factory_filter()?;
        let filter = privsep::front_filter()?;
        let jail = if privsep::privileged() {
            Some(privsep::open_jail(&crate::master::jail_dir())?)
        } else {
            None
        };
        // Opened before the chroot hides it.
        let null = if log_stderr {
            None
        } else {
            Some(
                std::fs::File::options()
                    .read(true)
                    .write(true)
                    .open("/dev/null")
                    .map_err(|e| format!("/dev/null: {e}"))?
                    .into(),
            )
        };
        privsep::confine_front_factory(jail.as_ref().map(|fd| fd.as_fd()))
            .map_err(|e| e.to_string())?;
        let file_size = if log_stderr {
            FRONT_MAX_FILE_SIZE_LOGGING
        } else {
            0
        };
        let limits = vec![
            (Resource::RLIMIT_NPROC, 0),
            (
                Resource::RLIMIT_NOFILE,
                FRONT_MAX_FILES + FilterDirs::descriptors_needed(&settings.config),
            ),
            (Resource::RLIMIT_AS, FRONT_MAX_ADDRESS_SPACE),
            (Resource::RLIMIT_FSIZE, file_size),
            (Resource::RLIMIT_CORE, 0),
        ];
        Ok(FrontJail {
            front_user,
            factory_filter,
            filter,
            limits,
            null,
            filter_dirs,
            config: settings.config.clone(),
        })
    }

    /// Confines the calling process (the factory, once everything it will
    /// use is open) to the outer layer of the fronts' seccomp policy: what
    /// a front may do, plus forking, reaping and jailing fronts. A front
    /// is held to its policy only when forked from a process so confined.
    pub fn confine_calls(&self) -> Result<(), String> {
        self.factory_filter
            .install()
            .map_err(|e| format!("seccomp: {e}"))
    }

    /// In a child just forked by `factory` (confined by
    /// [`FrontJail::confine_calls`]): closes every descriptor but
    /// `keep` (and standard I/O and syslog), then drops to FrontUser in
    /// the jail, connected to the mail filters on the way (the last moment
    /// a socket can be made). Only `Dropped` code runs afterwards.
    pub fn enter(
        &self,
        factory: Pid,
        keep: &[RawFd],
    ) -> Result<(Dropped, Vec<Opened>), privsep::PrivsepError> {
        privsep::reset_signal_handlers();
        privsep::ignore_file_size_signal();
        if let Ok(name) = std::ffi::CString::new("posternd-front") {
            let _ = nix::sys::prctl::set_name(&name);
        }
        if let Some(null) = &self.null {
            privsep::redirect_stdio(null.as_fd())?;
        }
        let mut keep = keep.to_vec();
        keep.extend(log::syslog_fd());
        keep.extend(self.filter_dirs.raw_fds());
        privsep::close_fds_except(&keep);
        log::forked_keeping_socket();
        let opened = std::cell::RefCell::new(Vec::new());
        let connect = || {
            *opened.borrow_mut() = filters::connect_all(&self.config, &self.filter_dirs);
        };
        let jail = Jail {
            root: None,
            limits: &self.limits,
            parent: Some(factory),
            before_filter: Some(&connect),
            syscalls: Some(&self.filter),
            // `prepare` emptied the factory's, which a fork inherits.
            bounding_set_empty: true,
        };
        let dropped = privsep::drop_privileges("front", &self.front_user, &jail)?;
        Ok((dropped, opened.into_inner()))
    }
}

//! Reaching the filters. A front cannot make sockets (its seccomp filter
//! refuses `socket` and `connect`) nor see a path (it lives in an empty
//! chroot), so the sockets are made at the last moment they can be: in
//! the forked front, as FrontUser (with its supplementary groups: put it
//! in the filter's group, as Postfix's `postfix` is put in `opendkim`),
//! after its limits are set and before the seccomp filter is installed.
//! A unix socket is reached through its directory, which the factory
//! opened before its own chroot.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use postern_config::{Config, FilterSocket, MailFilter};
use postern_milter::filter::Transport;

/// A connection to one filter.
pub enum FilterStream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Read for FilterStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            FilterStream::Tcp(s) => s.read(buf),
            FilterStream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for FilterStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            FilterStream::Tcp(s) => s.write(buf),
            FilterStream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            FilterStream::Tcp(s) => s.flush(),
            FilterStream::Unix(s) => s.flush(),
        }
    }
}

impl Transport for FilterStream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            FilterStream::Tcp(s) => s.set_read_timeout(t),
            FilterStream::Unix(s) => s.set_read_timeout(t),
        }
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            FilterStream::Tcp(s) => s.set_write_timeout(t),
            FilterStream::Unix(s) => s.set_write_timeout(t),
        }
    }
}

/// The directories of the unix-socket filters, opened by the factory.
pub struct FilterDirs {
    dirs: Vec<(String, OwnedFd)>,
}

impl FilterDirs {
    /// Opens the directory of every input filter's unix socket.
    pub fn open(config: &Config) -> Result<FilterDirs, String> {
        let mut dirs = Vec::new();
        for f in config.input_filters() {
            let FilterSocket::Unix(path) = &f.socket else {
                continue;
            };
            let dir = path.parent().unwrap_or(Path::new("/"));
            let fd = nix::fcntl::open(
                dir,
                nix::fcntl::OFlag::O_PATH
                    | nix::fcntl::OFlag::O_DIRECTORY
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| format!("mail filter {}: {}: {e}", f.name, dir.display()))?;
            dirs.push((f.name.clone(), fd));
        }
        Ok(FilterDirs { dirs })
    }

    /// The descriptors a forked front keeps until it has connected.
    pub fn raw_fds(&self) -> Vec<RawFd> {
        self.dirs.iter().map(|(_, fd)| fd.as_raw_fd()).collect()
    }

    fn dir_of(&self, name: &str) -> Option<BorrowedFd<'_>> {
        self.dirs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, fd)| fd.as_fd())
    }

    /// How many descriptors the filters need in a front.
    pub fn descriptors_needed(config: &Config) -> u64 {
        2 * config.input_filters().len() as u64
    }
}

/// One filter and its connection, or why there is none.
pub struct Opened {
    pub def: MailFilter,
    pub stream: Result<FilterStream, String>,
}

/// Connects to every input filter, each within its `T=C`; then closes
/// the directories (the front must keep no way out of its chroot).
pub fn connect_all(config: &Config, dirs: &FilterDirs) -> Vec<Opened> {
    let opened = config
        .input_filters()
        .into_iter()
        .map(|def| {
            let stream = connect(def, dirs);
            Opened {
                def: def.clone(),
                stream,
            }
        })
        .collect();
    for fd in dirs.raw_fds() {
        // This forked copy of the factory's table never drops it: the
        // front ends with _exit.
        let _ = nix::unistd::close(fd);
    }
    opened
}

fn connect(def: &MailFilter, dirs: &FilterDirs) -> Result<FilterStream, String> {
    match &def.socket {
        FilterSocket::Inet(addr) => TcpStream::connect_timeout(addr, def.timeouts.connect)
            .map(FilterStream::Tcp)
            .map_err(|e| e.to_string()),
        FilterSocket::Unix(path) => {
            let dir = dirs.dir_of(&def.name).ok_or("no directory")?;
            let name = path.file_name().ok_or("no socket name")?;
            nix::unistd::fchdir(dir).map_err(|e| e.to_string())?;
            let stream = UnixStream::connect(name);
            let _ = nix::unistd::chdir("/");
            stream.map(FilterStream::Unix).map_err(|e| e.to_string())
        }
    }
}

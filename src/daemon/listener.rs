//! The local socket: directory and file modes, stale-socket probing, "already running"
//! detection, and peer credentials of each connection.
//! Must not: parse requests or know about sessions.

use std::io;
use std::path::{Path, PathBuf};

use interprocess::local_socket::tokio::{Listener, Stream, prelude::*};
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};

/// A bound listener and whether we created its file (then we remove it on exit).
pub struct Bound {
    pub listener: Listener,
    pub path: PathBuf,
    pub owns_path: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(
        "another sso-agent is already running on {0}; stop it first or set SSO_AGENT_SOCKET to another path"
    )]
    AlreadyRunning(PathBuf),
    #[error(
        "{0} is already served by another process (another sso-agent, or a program that took the name first); stop it or set SSO_AGENT_SOCKET to another pipe name"
    )]
    NameTaken(PathBuf),
    #[error("{path}: {problem}")]
    Unsafe { path: PathBuf, problem: String },
    #[error("socket directory: {0}")]
    Dir(#[from] crate::safe_fs::dir::DirError),
    #[error("cannot bind {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BindError + '_ {
    move |source| BindError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A listening socket handed over by systemd socket activation (`LISTEN_FDS`/`LISTEN_PID`),
/// taken before any thread starts because the crate clears those variables.
#[cfg(unix)]
pub type Activated = std::os::unix::net::UnixListener;

#[cfg(unix)]
pub fn take_activated() -> io::Result<Option<Activated>> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Ok(None);
    }
    if fds.len() > 1 {
        tracing::warn!(
            count = fds.len(),
            "several sockets were passed; using the first"
        );
    }
    fds.take_unix_listener(0)
}

/// Wraps an activated socket. The peer-uid check and limits apply as for our own socket;
/// the file belongs to the service manager, so we never remove it.
#[cfg(unix)]
pub fn adopt(activated: Activated) -> Result<Bound, BindError> {
    let path = activated
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("(socket from the service manager)"));
    let fd = std::os::fd::OwnedFd::from(activated);
    let listener = interprocess::os::unix::uds_local_socket::tokio::Listener::try_from(fd)
        .map_err(io_err(&path))?;
    tracing::info!(socket = %path.display(), "using the socket passed by the service manager");
    Ok(Bound {
        listener: listener.into(),
        path,
        owns_path: false,
    })
}

/// The effective uid of this process.
#[cfg(unix)]
pub fn current_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Windows has no socket activation: nothing is ever handed over.
#[cfg(windows)]
pub type Activated = std::convert::Infallible;

#[cfg(windows)]
pub fn take_activated() -> io::Result<Option<Activated>> {
    Ok(None)
}

#[cfg(windows)]
pub fn adopt(activated: Activated) -> Result<Bound, BindError> {
    match activated {}
}

/// Prepares the socket directory (0700, ours), replaces a stale socket file, refuses when a
/// live daemon answers, and binds with mode 0600. On Windows: a named pipe whose descriptor
/// admits only our user, created as the pipe's first instance, so a name that another
/// process already serves (a second daemon, a squatter) is refused; no directory or stale
/// file exists for a pipe.
pub async fn bind(path: &Path) -> Result<Bound, BindError> {
    #[cfg(unix)]
    {
        prepare_dir(path)?;
        if path_exists(path) {
            // The type first: a link is refused before anything connects through it.
            check_stale_candidate(path)?;
            if Stream::connect(fs_name(path)?).await.is_ok() {
                return Err(BindError::AlreadyRunning(path.to_path_buf()));
            }
            remove_stale(path)?;
        }
    }
    #[cfg(windows)]
    if pipe_taken(path).await? {
        return Err(BindError::NameTaken(path.to_path_buf()));
    }
    let listener = ListenerOptions::new()
        .name(fs_name(path)?)
        .reclaim_name(false);
    #[cfg(unix)]
    let listener = {
        use interprocess::os::unix::local_socket::ListenerOptionsExt;
        listener.mode(0o600)
    };
    #[cfg(windows)]
    let listener = {
        use interprocess::os::windows::local_socket::ListenerOptionsExt;
        listener.security_descriptor(crate::platform::pipe_security().map_err(io_err(path))?)
    };
    let listener = listener.create_tokio().map_err(|e| create_error(path, e))?;
    #[cfg(unix)]
    check_socket_mode(path)?;
    Ok(Bound {
        listener,
        path: path.to_path_buf(),
        owns_path: true,
    })
}

fn fs_name(path: &Path) -> Result<interprocess::local_socket::Name<'_>, BindError> {
    path.to_fs_name::<GenericFilePath>().map_err(io_err(path))
}

/// Whether a pipe of this name exists: it accepts a connection, or refuses us (5, another
/// user's descriptor). The first-instance flag alone settles this on Windows, but Wine
/// ignores it and would let a second server serve the same name side by side.
#[cfg(windows)]
async fn pipe_taken(path: &Path) -> Result<bool, BindError> {
    Ok(match Stream::connect(fs_name(path)?).await {
        Ok(_) => true,
        Err(e) => e.raw_os_error() == Some(5),
    })
}

/// The first-instance flag makes creating a pipe that exists fail with access denied (5);
/// a busy name can also answer pipe busy (231).
fn create_error(path: &Path, source: io::Error) -> BindError {
    if cfg!(windows) && matches!(source.raw_os_error(), Some(5 | 231)) {
        return BindError::NameTaken(path.to_path_buf());
    }
    BindError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(unix)]
fn path_exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// What may stand at the socket path before we bind: only a socket (a live daemon's, or a
/// stale one we replace). A link, a FIFO or a file is refused, never followed or removed.
#[cfg(unix)]
fn check_stale_candidate(path: &Path) -> Result<(), BindError> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::symlink_metadata(path).map_err(io_err(path))?;
    if meta.file_type().is_symlink() {
        return Err(BindError::Unsafe {
            path: path.to_path_buf(),
            problem:
                "is a symbolic link; sso-agent does not follow links at its socket path (remove it)"
                    .into(),
        });
    }
    if !meta.file_type().is_socket() {
        return Err(BindError::Unsafe {
            path: path.to_path_buf(),
            problem: "exists and is not a socket; refusing to replace it".into(),
        });
    }
    Ok(())
}

#[cfg(unix)]
fn remove_stale(path: &Path) -> Result<(), BindError> {
    tracing::info!(path = %path.display(), "removing a stale socket left by a daemon that is gone");
    std::fs::remove_file(path).map_err(io_err(path))
}

/// The socket's directory: created 0700, or an existing one that is ours, private and not a
/// link (safe_fs::dir); never tightened, since a mode we did not set is the user's.
#[cfg(unix)]
fn prepare_dir(path: &Path) -> Result<(), BindError> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    crate::safe_fs::dir::ensure(
        dir,
        crate::safe_fs::dir::Privacy::Private,
        "Set SSO_AGENT_SOCKET to a path in a directory only you can use (for example under $XDG_RUNTIME_DIR), or fix this one",
    )?;
    Ok(())
}

#[cfg(unix)]
fn check_socket_mode(path: &Path) -> Result<(), BindError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(path).map_err(io_err(path))?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(io_err(path))?;
    }
    Ok(())
}

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub user: Option<crate::platform::UserId>,
    pub pid: Option<i64>,
}

pub fn peer(conn: &Stream) -> Peer {
    let user = crate::platform::peer_user(conn)
        .inspect_err(|e| tracing::warn!(error = %e, "could not read the peer's credentials"))
        .ok();
    Peer {
        user,
        pid: crate::platform::peer_pid(conn),
    }
}

/// Whether a peer may use the daemon: it must run as the daemon's user (an unknown peer is
/// refused).
pub fn peer_allowed(peer: &Peer) -> bool {
    match (&peer.user, crate::platform::current_user()) {
        (Some(them), Ok(me)) => *them == me,
        _ => false,
    }
}

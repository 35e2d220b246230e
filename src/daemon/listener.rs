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

#[cfg(unix)]
fn remove_stale(path: &Path) -> Result<(), BindError> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::symlink_metadata(path).map_err(io_err(path))?;
    if !meta.file_type().is_socket() {
        return Err(BindError::Unsafe {
            path: path.to_path_buf(),
            problem: "exists and is not a socket; refusing to replace it".into(),
        });
    }
    tracing::info!(path = %path.display(), "removing a stale socket left by a daemon that is gone");
    std::fs::remove_file(path).map_err(io_err(path))
}

/// The socket's directory must be ours and private (0700): created so, tightened if ours
/// and too open, refused if someone else owns it.
#[cfg(unix)]
fn prepare_dir(path: &Path) -> Result<(), BindError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err(dir))?;
    }
    let meta = std::fs::metadata(dir).map_err(io_err(dir))?;
    if meta.uid() != current_uid() {
        return Err(BindError::Unsafe {
            path: dir.to_path_buf(),
            problem: format!(
                "the socket directory is owned by uid {}, not by us (uid {}); choose another SSO_AGENT_SOCKET",
                meta.uid(),
                current_uid()
            ),
        });
    }
    if meta.mode() & 0o077 != 0 {
        tracing::warn!(dir = %dir.display(), mode = format!("{:o}", meta.mode() & 0o777), "socket directory was accessible to others; setting it to 0700");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err(dir))?;
    }
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
    pub uid: Option<u32>,
    pub pid: Option<i64>,
    /// The client process's user SID (Windows).
    #[cfg(windows)]
    pub user: Option<crate::platform::UserId>,
}

pub fn peer(conn: &Stream) -> Peer {
    #[cfg(windows)]
    let user = crate::platform::client_user(conn)
        .inspect_err(|e| tracing::warn!(error = %e, "could not read the client's user"))
        .ok();
    match conn.peer_creds() {
        Ok(c) => Peer {
            #[cfg(unix)]
            uid: c.euid(),
            #[cfg(not(unix))]
            uid: None,
            pid: c.pid().map(i64::from),
            #[cfg(windows)]
            user,
        },
        Err(e) => {
            tracing::warn!(error = %e, "could not read the peer's credentials");
            Peer {
                uid: None,
                pid: None,
                #[cfg(windows)]
                user,
            }
        }
    }
}

/// Whether a peer may use the daemon: its uid (Unix) or user SID (Windows) must equal ours;
/// an unknown one is refused. On Windows the pipe's descriptor already keeps other users
/// out; this is the second lock.
pub fn peer_allowed(peer: &Peer) -> bool {
    #[cfg(unix)]
    {
        peer.uid == Some(current_uid())
    }
    #[cfg(windows)]
    {
        peer.user.is_some() && peer.user == crate::platform::current_user().ok()
    }
}

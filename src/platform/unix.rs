//! Unix: users are uids; the peer of a Unix socket is read from the kernel (SO_PEERCRED on
//! Linux, LOCAL_PEERCRED / getpeereid on macOS) through the local-socket crate.

use std::fmt;
use std::io;

use interprocess::local_socket::traits::StreamCommon;

/// A user, as the kernel names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserId(pub u32);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "uid {}", self.0)
    }
}

/// The effective uid of this process.
pub fn current_user() -> io::Result<UserId> {
    Ok(UserId(rustix::process::geteuid().as_raw()))
}

/// The effective uid of the process at the other end of a connected local socket: for an
/// accepted connection, the client; for a client's connection, the process that created the
/// listening socket (the server), as the kernel recorded it at `listen`/`connect`.
pub fn peer_user(stream: &impl StreamCommon) -> io::Result<UserId> {
    let creds = stream.peer_creds()?;
    creds
        .euid()
        .map(UserId)
        .ok_or_else(|| io::Error::other("the kernel did not report the peer's uid"))
}

/// The peer's process id, where the kernel reports one (for log lines).
pub fn peer_pid(stream: &impl StreamCommon) -> Option<i64> {
    stream
        .peer_creds()
        .ok()
        .and_then(|c| c.pid())
        .map(i64::from)
}

//! Who runs a process, per platform: the user id this process runs as and the user at the
//! other end of a connected local socket (either side). The one place that answers "is this
//! the same user?" for the daemon (each client) and for every client (its daemon).
//! Must not: decide what to do about a stranger (the daemon answers FORBIDDEN, a client
//! refuses to talk); it only says who is there.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

//! What differs between operating systems about *who* is on the other end of the local
//! socket: the user a process runs as, and the user behind each end of a connection.
//! Must not: hold policy (callers decide what a mismatch means) or anything beyond the
//! platform's own calls.

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

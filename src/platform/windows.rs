//! Windows: users are SIDs (placeholder until the Windows build lands; see issue 20).

use std::fmt;
use std::io;

use interprocess::local_socket::traits::StreamCommon;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserId(pub String);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn current_user() -> io::Result<UserId> {
    Err(io::Error::other("not built for Windows yet"))
}

pub fn peer_user(_stream: &impl StreamCommon) -> io::Result<UserId> {
    Err(io::Error::other("not built for Windows yet"))
}

pub fn peer_pid(stream: &impl StreamCommon) -> Option<i64> {
    stream
        .peer_creds()
        .ok()
        .and_then(|c| c.pid())
        .map(i64::from)
}

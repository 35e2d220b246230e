//! Windows: users are SIDs, the local socket is a named pipe. The current user's SID (process
//! token), the user behind each end of a pipe (the peer's process id from
//! `GetNamedPipeClientProcessId` / `GetNamedPipeServerProcessId`, then that process's
//! token), and the pipe's security descriptor (the current user only).
//! Must not: decide what a mismatch means (the daemon answers FORBIDDEN, the client refuses;
//! that is theirs), or hold any logic that is not a Windows call.
//!
//! The calls come from `windows-sys`; each `unsafe` block is one call on values this module
//! owns, with the reason it is sound beside it.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::fmt;
use std::io;
use std::os::windows::io::{AsHandle, AsRawHandle, BorrowedHandle, FromRawHandle, OwnedHandle};
use std::sync::OnceLock;

use interprocess::os::windows::security_descriptor::SecurityDescriptor;
use widestring::{U16CStr, U16CString};
use windows_sys::Win32::Foundation::{HANDLE, LocalFree};
use windows_sys::Win32::Security::Authorization::ConvertSidToStringSidW;
use windows_sys::Win32::Security::{GetTokenInformation, TOKEN_QUERY, TOKEN_USER, TokenUser};
use windows_sys::Win32::System::Pipes::{GetNamedPipeClientProcessId, GetNamedPipeServerProcessId};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, OpenProcess, OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION,
};

/// Who a process runs as: its user SID in string form (`S-1-5-21-…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserId(String);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The user this process runs as (read once: a process's token user never changes).
pub fn current_user() -> io::Result<UserId> {
    static ME: OnceLock<UserId> = OnceLock::new();
    if let Some(me) = ME.get() {
        return Ok(me.clone());
    }
    // SAFETY: GetCurrentProcess returns a pseudo-handle that needs no closing.
    let me = token_user(unsafe { GetCurrentProcess() })?;
    Ok(ME.get_or_init(|| me).clone())
}

/// Client side: the user running the server end of a connected pipe.
pub fn server_user(stream: &impl AsPipe) -> io::Result<UserId> {
    let mut pid = 0u32;
    // SAFETY: the handle is a live pipe handle borrowed for the call; `pid` is ours.
    if unsafe { GetNamedPipeServerProcessId(raw(stream.pipe()), &mut pid) } == 0 {
        return Err(io::Error::last_os_error());
    }
    process_user(pid)
}

/// Daemon side: the user running the client end of an accepted pipe.
pub fn client_user(stream: &impl AsPipe) -> io::Result<UserId> {
    let mut pid = 0u32;
    // SAFETY: as in `server_user`.
    if unsafe { GetNamedPipeClientProcessId(raw(stream.pipe()), &mut pid) } == 0 {
        return Err(io::Error::last_os_error());
    }
    process_user(pid)
}

/// The user at the other end of a connected pipe, from either side: `interprocess` asks
/// `GetNamedPipeClientProcessId` on a server's stream and `GetNamedPipeServerProcessId` on a
/// client's. The shape of `platform::unix::peer_user` on main, so either caller works.
pub fn peer_user(
    stream: &impl interprocess::local_socket::traits::StreamCommon,
) -> io::Result<UserId> {
    let pid = stream
        .peer_creds()?
        .pid()
        .ok_or_else(|| io::Error::other("the pipe did not name its peer's process"))?;
    process_user(pid)
}

/// The peer's process id, for log lines.
pub fn peer_pid(stream: &impl interprocess::local_socket::traits::StreamCommon) -> Option<i64> {
    stream
        .peer_creds()
        .ok()
        .and_then(|c| c.pid())
        .map(i64::from)
}

/// A pipe's security descriptor: a protected DACL with one entry, full access for the
/// current user, so no other user (Everyone, Anonymous, other accounts) can open it.
pub fn pipe_security() -> io::Result<SecurityDescriptor> {
    let sddl = format!("D:P(A;;GA;;;{})", current_user()?);
    let sddl =
        U16CString::from_str(&sddl).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    SecurityDescriptor::deserialize(&sddl)
}

/// Both kinds of local-socket stream of `interprocess` (a named pipe on Windows).
pub trait AsPipe {
    fn pipe(&self) -> BorrowedHandle<'_>;
}

impl AsPipe for interprocess::local_socket::Stream {
    fn pipe(&self) -> BorrowedHandle<'_> {
        let interprocess::local_socket::Stream::NamedPipe(p) = self;
        p.as_handle()
    }
}

impl AsPipe for interprocess::local_socket::tokio::Stream {
    fn pipe(&self) -> BorrowedHandle<'_> {
        let interprocess::local_socket::tokio::Stream::NamedPipe(p) = self;
        p.as_handle()
    }
}

fn raw(h: BorrowedHandle<'_>) -> HANDLE {
    h.as_raw_handle()
}

/// The user of process `pid`, from its token.
fn process_user(pid: u32) -> io::Result<UserId> {
    // SAFETY: plain call; a null result is an error, else we own the handle.
    let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if process.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh handle we own; OwnedHandle closes it.
    let process = unsafe { OwnedHandle::from_raw_handle(process) };
    token_user(process.as_raw_handle())
}

/// The user SID of a process (given by a handle with query rights), as a string.
fn token_user(process: HANDLE) -> io::Result<UserId> {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: `process` is valid for the call; `token` is ours to fill.
    if unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: filled by a successful call; OwnedHandle closes it.
    let token = unsafe { OwnedHandle::from_raw_handle(token) };
    let mut len = 0u32;
    // SAFETY: a size query (null buffer, length 0); it fails with the size needed.
    unsafe {
        GetTokenInformation(
            token.as_raw_handle(),
            TokenUser,
            std::ptr::null_mut(),
            0,
            &mut len,
        )
    };
    if len == 0 {
        return Err(io::Error::last_os_error());
    }
    // u64s: TOKEN_USER holds a pointer, so the buffer must be pointer-aligned.
    let mut buf = vec![0u64; (len as usize).div_ceil(8)];
    // SAFETY: `buf` has at least `len` writable bytes.
    if unsafe {
        GetTokenInformation(
            token.as_raw_handle(),
            TokenUser,
            buf.as_mut_ptr().cast::<c_void>(),
            len,
            &mut len,
        )
    } == 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call wrote a TOKEN_USER at the start of `buf` (aligned, see above), whose
    // SID points into `buf`, which outlives its use here.
    let sid = unsafe { (*buf.as_ptr().cast::<TOKEN_USER>()).User.Sid };
    let mut text: *mut u16 = std::ptr::null_mut();
    // SAFETY: `sid` is valid (above); `text` is ours to fill.
    if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success `text` is a NUL-terminated string the system allocated with
    // LocalAlloc, valid until freed below.
    let s = unsafe { U16CStr::from_ptr_str(text) }.to_string_lossy();
    // SAFETY: freed exactly once, and not read after.
    unsafe { LocalFree(text.cast::<c_void>()) };
    Ok(UserId(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    use interprocess::local_socket::traits::{ListenerExt as _, Stream as _};
    use interprocess::local_socket::{GenericNamespaced, ListenerOptions, ToNsName};
    use interprocess::os::windows::local_socket::ListenerOptionsExt;

    #[test]
    fn the_current_user_is_a_sid() {
        let me = current_user().unwrap();
        assert!(me.to_string().starts_with("S-1-"), "{me}");
        assert_eq!(current_user().unwrap(), me);
    }

    /// Both ends of a real pipe name the same user (Wine runs everything as one user, so only
    /// this path can be exercised there); the pipe carries our descriptor.
    #[test]
    fn both_ends_of_a_pipe_run_as_us() {
        let name = format!("sso-agent-test-{}", std::process::id());
        let listener = ListenerOptions::new()
            .name(name.as_str().to_ns_name::<GenericNamespaced>().unwrap())
            .security_descriptor(pipe_security().unwrap())
            .create_sync()
            .unwrap();
        let client = std::thread::spawn(move || {
            let s = interprocess::local_socket::Stream::connect(
                name.as_str().to_ns_name::<GenericNamespaced>().unwrap(),
            )
            .unwrap();
            let user = server_user(&s).unwrap();
            assert_eq!(peer_user(&s).unwrap(), user);
            user
        });
        let served = listener.incoming().next().unwrap().unwrap();
        let me = current_user().unwrap();
        assert_eq!(client_user(&served).unwrap(), me);
        assert_eq!(peer_user(&served).unwrap(), me);
        assert!(peer_pid(&served).is_some());
        assert_eq!(client.join().unwrap(), me);
    }
}

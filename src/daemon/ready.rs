//! Tells the service manager how the daemon is doing: systemd's `NOTIFY_SOCKET` protocol via
//! the `sd-notify` crate (READY=1 once serving, STOPPING=1 when draining). A no-op without a
//! notify socket and on other platforms. Also the process set-up done once at start: hardening
//! and the open-file limit.

pub fn ready() {
    #[cfg(target_os = "linux")]
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "could not notify systemd of readiness");
    }
}

pub fn stopping() {
    #[cfg(target_os = "linux")]
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Stopping]) {
        tracing::warn!(error = %e, "could not notify systemd of stopping");
    }
}

/// No core dumps: a crash must not write tokens to disk (RLIMIT_CORE 0), and the process is
/// not dumpable (no core, no ptrace or /proc/PID/mem access by other processes of the user).
pub fn harden_process() {
    #[cfg(unix)]
    if let Err(e) = rustix::process::setrlimit(
        rustix::process::Resource::Core,
        rustix::process::Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    ) {
        tracing::warn!(error = %e, "could not disable core dumps");
    }
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        tracing::warn!(error = %e, "could not mark the process non-dumpable");
    }
    #[cfg(unix)]
    raise_open_files();
}

/// Open files wanted: every connection slot (`MAX_CONNECTIONS`) plus the keyring, config
/// watch, upstream and log descriptors, with room to spare.
#[cfg(unix)]
const WANT_OPEN_FILES: u64 = 8192;

/// Raises the soft limit of open files towards the hard one (service managers often start
/// us at 1024, macOS at 256), so a flood up to the connection cap cannot run the daemon out
/// of descriptors. The hard limit is never touched.
#[cfg(unix)]
fn raise_open_files() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    let hard = now.maximum.unwrap_or(u64::MAX);
    let want = WANT_OPEN_FILES.min(hard);
    if now.current.is_some_and(|soft| soft >= want) {
        return;
    }
    match setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(want),
            maximum: now.maximum,
        },
    ) {
        Ok(()) => tracing::debug!(from = ?now.current, to = want, "raised the open-file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
}

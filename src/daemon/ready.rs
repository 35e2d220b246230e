//! Tells the service manager how the daemon is doing: systemd's `NOTIFY_SOCKET` protocol via
//! the `sd-notify` crate (READY=1 once serving, STOPPING=1 when draining). A no-op without a
//! notify socket and on other platforms. Also the process hardening done once at start.

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
}

//! Tells the service manager how the daemon is doing: systemd's `NOTIFY_SOCKET` protocol via
//! the `sd-notify` crate (READY=1 once serving, STOPPING=1 when draining). A no-op without a
//! notify socket and on other platforms.

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

//! Installing sso-agent as a per-user service: the systemd user units (Linux) or the
//! launchd LaunchAgent (macOS), rendered with the real binary path.
//! Must not: start the daemon itself or touch sessions; it only writes files and runs the
//! service manager's commands (or, with --dry-run, prints them).

mod launchd;
mod plan;
mod systemd;

use std::path::{Path, PathBuf};

pub use plan::{FileAction, Plan};

/// Where things are, for rendering.
#[derive(Debug, Clone)]
pub struct Context {
    pub binary: PathBuf,
    pub home: PathBuf,
    pub socket: PathBuf,
    pub uid: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    NoServiceManager(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
}

/// The install plan for this platform.
pub fn install_plan(ctx: &Context) -> Plan {
    if cfg!(target_os = "macos") {
        launchd::install(ctx)
    } else {
        systemd::install(ctx)
    }
}

/// The uninstall plan for this platform.
pub fn uninstall_plan(ctx: &Context) -> Plan {
    if cfg!(target_os = "macos") {
        launchd::uninstall(ctx)
    } else {
        systemd::uninstall(ctx)
    }
}

/// Checks that the platform's service manager can be used, with what to do instead if not.
pub fn check_manager(ctx: &Context, runtime_dir: Option<&Path>) -> Result<(), ServiceError> {
    if cfg!(target_os = "macos") {
        launchd::check(ctx)
    } else {
        systemd::check(runtime_dir)
    }
}

/// The rendered systemd units and plist, for tests and `--dry-run`.
pub fn render_systemd_service(binary: &Path) -> String {
    systemd::render_service(binary)
}

pub fn render_systemd_socket() -> String {
    systemd::SOCKET_UNIT.to_string()
}

pub fn render_launchd_plist(ctx: &Context) -> String {
    launchd::render(ctx)
}

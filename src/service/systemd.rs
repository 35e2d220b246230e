//! systemd user units: the shipped files (embedded) rendered with the real binary path.

use std::path::{Path, PathBuf};

use super::plan::{FileAction, Plan};
use super::{Context, ServiceError};

pub const SERVICE_UNIT: &str = include_str!("../../systemd/sso-agent.service");
pub const SOCKET_UNIT: &str = include_str!("../../systemd/sso-agent.socket");

fn unit_dir(ctx: &Context) -> PathBuf {
    ctx.home.join(".config/systemd/user")
}

/// The service unit with `ExecStart` pointing at `binary`.
pub fn render_service(binary: &Path) -> String {
    SERVICE_UNIT
        .lines()
        .map(|l| {
            if l.starts_with("ExecStart=") {
                format!("ExecStart={} run", systemd_quote(binary))
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Paths with spaces or specifiers must be quoted/escaped for systemd.
fn systemd_quote(p: &Path) -> String {
    let s = p.display().to_string().replace('%', "%%");
    if s.contains(char::is_whitespace) {
        format!("\"{s}\"")
    } else {
        s
    }
}

fn systemctl(args: &[&str]) -> Vec<String> {
    std::iter::once("systemctl")
        .chain(std::iter::once("--user"))
        .chain(args.iter().copied())
        .map(String::from)
        .collect()
}

pub fn install(ctx: &Context) -> Plan {
    let dir = unit_dir(ctx);
    Plan {
        files: vec![
            FileAction::Write {
                path: dir.join("sso-agent.service"),
                contents: render_service(&ctx.binary),
            },
            FileAction::Write {
                path: dir.join("sso-agent.socket"),
                contents: SOCKET_UNIT.to_string(),
            },
        ],
        commands: vec![
            (systemctl(&["daemon-reload"]), false),
            (systemctl(&["enable", "--now", "sso-agent.socket"]), false),
            // An upgrade: a running daemon picks up the new binary; nothing happens otherwise.
            (systemctl(&["try-restart", "sso-agent.service"]), true),
        ],
        next_steps: vec![
            "The daemon starts on the first connection. Check it with `sso-agent status`.".into(),
            "Logs: journalctl --user -u sso-agent".into(),
        ],
    }
}

pub fn uninstall(ctx: &Context) -> Plan {
    let dir = unit_dir(ctx);
    Plan {
        files: vec![
            FileAction::Remove { path: dir.join("sso-agent.service") },
            FileAction::Remove { path: dir.join("sso-agent.socket") },
        ],
        commands: vec![
            (systemctl(&["disable", "--now", "sso-agent.socket", "sso-agent.service"]), true),
            (systemctl(&["daemon-reload"]), false),
        ],
        next_steps: vec!["sso-agent is no longer a service; tokens stay in the keyring until `sso-agent logout`.".into()],
    }
}

/// A systemd user instance exposes its private socket under $XDG_RUNTIME_DIR/systemd.
pub fn check(runtime_dir: Option<&Path>) -> Result<(), ServiceError> {
    let running = runtime_dir.is_some_and(|d| d.join("systemd/private").exists());
    if running {
        Ok(())
    } else {
        Err(ServiceError::NoServiceManager(
            "no systemd user instance is running for this user (no $XDG_RUNTIME_DIR/systemd/private); run the daemon with `sso-agent run` instead (e.g. from your shell profile), or see `sso-agent install --dry-run` for the files".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_start_is_rendered_and_quoted() {
        let s = render_service(Path::new("/opt/bin/sso-agent"));
        assert!(s.contains("\nExecStart=/opt/bin/sso-agent run\n"));
        assert!(!s.contains("%h/.cargo/bin"));
        let s = render_service(Path::new("/my apps/100%/sso-agent"));
        assert!(s.contains("ExecStart=\"/my apps/100%%/sso-agent\" run"));
    }

    #[test]
    fn units_have_the_promised_settings() {
        for needle in [
            "Type=notify",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "PrivateTmp=yes",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
            "Restart=on-failure",
        ] {
            assert!(SERVICE_UNIT.contains(needle), "{needle}");
        }
        for needle in [
            "ListenStream=%t/sso-agent/agent.sock",
            "SocketMode=0600",
            "DirectoryMode=0700",
        ] {
            assert!(SOCKET_UNIT.contains(needle), "{needle}");
        }
    }

    #[test]
    fn missing_user_instance_says_what_to_do() {
        let e = check(None).unwrap_err().to_string();
        assert!(e.contains("sso-agent run"), "{e}");
    }
}

//! The launchd LaunchAgent (macOS): the shipped plist template rendered with real paths.
//! Built and unit-tested on every platform; only run on macOS.

use std::path::PathBuf;

use super::plan::{FileAction, Plan};
use super::{Context, ServiceError};

pub const PLIST_TEMPLATE: &str = include_str!("../../launchd/sso-agent.plist");
pub const LABEL: &str = "io.github.sso-agent";

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn render(ctx: &Context) -> String {
    PLIST_TEMPLATE
        .replace("@BINARY@", &xml_escape(&ctx.binary.display().to_string()))
        .replace("@HOME@", &xml_escape(&ctx.home.display().to_string()))
        .replace("@SOCKET@", &xml_escape(&ctx.socket.display().to_string()))
}

fn plist_path(ctx: &Context) -> PathBuf {
    ctx.home.join(format!("Library/LaunchAgents/{LABEL}.plist"))
}

pub fn install(ctx: &Context) -> Plan {
    let path = plist_path(ctx);
    let domain = format!("gui/{}", ctx.uid);
    Plan {
        files: vec![FileAction::Write {
            path: path.clone(),
            contents: render(ctx),
        }],
        commands: vec![
            // Idempotent: unload a previous version first (fails harmlessly when absent).
            (
                vec![
                    "launchctl".into(),
                    "bootout".into(),
                    format!("{domain}/{LABEL}"),
                ],
                true,
            ),
            (
                vec![
                    "launchctl".into(),
                    "bootstrap".into(),
                    domain,
                    path.display().to_string(),
                ],
                false,
            ),
        ],
        next_steps: vec![
            "Check it with `sso-agent status`.".into(),
            format!("Logs: {}/Library/Logs/sso-agent.log", ctx.home.display()),
        ],
    }
}

pub fn uninstall(ctx: &Context) -> Plan {
    Plan {
        files: vec![FileAction::Remove {
            path: plist_path(ctx),
        }],
        commands: vec![(
            vec![
                "launchctl".into(),
                "bootout".into(),
                format!("gui/{}/{LABEL}", ctx.uid),
            ],
            true,
        )],
        next_steps: vec![],
    }
}

pub fn check(_ctx: &Context) -> Result<(), ServiceError> {
    if std::path::Path::new("/bin/launchctl").exists() {
        Ok(())
    } else {
        Err(ServiceError::NoServiceManager(
            "launchctl is not available; run the daemon with `sso-agent run` instead".into(),
        ))
    }
}

/// launchd paths are Unix paths (Windows would join them with `\\`).
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn plist_is_rendered_with_real_paths() {
        let ctx = Context {
            binary: "/usr/local/bin/sso-agent".into(),
            home: "/Users/a&b".into(),
            socket: "/tmp/x/agent.sock".into(),
            uid: 501,
        };
        let p = render(&ctx);
        assert!(p.contains("<string>/usr/local/bin/sso-agent</string>"));
        assert!(p.contains("/Users/a&amp;b/Library/Logs/sso-agent.log"));
        assert!(p.contains("<string>/tmp/x/agent.sock</string>"));
        assert!(!p.contains('@'));
        let plan = install(&ctx);
        assert!(plan.describe().contains(
            "launchctl bootstrap gui/501 /Users/a&b/Library/LaunchAgents/io.github.sso-agent.plist"
        ));
    }
}

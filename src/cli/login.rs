//! `sso-agent login [SESSION] [--device-code] [--no-browser]`: asks the daemon to run the
//! login, prints what the user must open or type, and waits with a live countdown.
//! Ctrl-C only stops this waiting; the daemon keeps the login open for others.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::Args;

use crate::api::{LoginFlow, LoginStarted, LoginState, LoginStatus, paths};
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::env::Env;

use super::client::Client;
use super::exit::{Exit, Failure};
use super::status::relative;

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The sso-session (optional when only one is configured or AWS_PROFILE names one)
    #[arg(add = clap_complete::ArgValueCandidates::new(super::completions::session_names))]
    session: Option<String>,
    /// Or the AWS config profile whose session it is (with sso_session, or a legacy one)
    #[arg(long, value_name = "NAME", conflicts_with = "session", add = clap_complete::ArgValueCandidates::new(super::completions::profile_names))]
    profile: Option<String>,
    /// Use the device-code flow (type a code on any device)
    #[arg(long)]
    device_code: bool,
    /// Do not open a browser; only print the URL
    #[arg(long)]
    no_browser: bool,
}

impl LoginArgs {
    /// The default login of one session (what `exec` runs on a terminal).
    pub fn for_session(session: String) -> Self {
        Self {
            session: Some(session),
            profile: None,
            device_code: false,
            no_browser: false,
        }
    }
}

/// Long-poll slice: the daemon answers at once when the login ends, else after this.
const POLL: Duration = Duration::from_secs(1);

/// Which flow to ask for, and why (said to the user). PKCE needs a browser on this machine
/// (its redirect goes to 127.0.0.1 here), so without one the device code is the right flow.
pub fn choose_flow(device_code: bool, env: &Env, in_container: bool) -> (LoginFlow, &'static str) {
    if device_code {
        return (LoginFlow::DeviceCode, "--device-code was given");
    }
    if env.get("SSH_CONNECTION").is_some()
        || env.get("SSH_CLIENT").is_some()
        || env.get("SSH_TTY").is_some()
    {
        return (
            LoginFlow::DeviceCode,
            "this is an SSH session, so a browser here cannot complete a loopback sign-in; approve the code on any device",
        );
    }
    let display = env.get("DISPLAY").is_some() || env.get("WAYLAND_DISPLAY").is_some();
    // A container only has a usable browser when a display is forwarded into it.
    if in_container && !display {
        return (
            LoginFlow::DeviceCode,
            "this is a container without a display, so no browser can be opened here",
        );
    }
    let desktop = cfg!(any(target_os = "macos", windows)) || display;
    if !desktop {
        return (
            LoginFlow::DeviceCode,
            "there is no graphical display (DISPLAY and WAYLAND_DISPLAY are unset)",
        );
    }
    (
        LoginFlow::AuthorizationCode,
        "a browser can be opened on this machine (use --device-code to approve elsewhere)",
    )
}

fn in_container() -> bool {
    std::path::Path::new("/.dockerenv").exists()
        || std::path::Path::new("/run/.containerenv").exists()
}

pub async fn login(args: LoginArgs, settings: &Settings, env: &Env) -> Result<(), Failure> {
    let (flow, why) = choose_flow(args.device_code, env, in_container());
    let session = super::target::session_or_profile(args.session, args.profile, settings, env)?;
    let client = Client::new(&settings.socket);
    let body = serde_json::json!({ "flow": flow.as_str() })
        .to_string()
        .into_bytes();
    let started: LoginStarted = client.post(&paths::login(&session), Some(body)).await?;
    print_instructions(&session, &started, why);
    if !args.no_browser {
        open_browser(&started);
    }

    let tty = std::io::stderr().is_terminal();
    let path = format!("{}?wait={}", paths::login(&session), POLL.as_secs());
    let mut last_line = 0u64;
    loop {
        let status: LoginStatus = client.get(&path).await?;
        if status.login_id.as_deref() != Some(&started.login_id)
            && status.state != LoginState::Pending
        {
            // Our login was replaced (e.g. cancelled by logout and restarted).
            return Err(Failure::new(
                Exit::Error,
                format!("the login was superseded: {}", status.message),
            ));
        }
        match status.state {
            LoginState::Pending => {
                let left = relative(started.expires_at, SystemClock.now());
                let elapsed = (started.expires_at - SystemClock.now()).whole_seconds();
                if tty {
                    eprint!("\r\x1b[2KWaiting for approval… code expires {left}");
                    let _ = std::io::stderr().flush();
                } else if last_line == 0 || elapsed.unsigned_abs() / 60 != last_line / 60 {
                    eprintln!("Waiting for approval… code expires {left}");
                }
                last_line = elapsed.unsigned_abs();
            }
            LoginState::Succeeded => {
                if tty {
                    eprintln!();
                }
                eprintln!("Logged in to {session}.");
                return Ok(());
            }
            LoginState::Denied | LoginState::Expired | LoginState::Failed => {
                if tty {
                    eprintln!();
                }
                return Err(Failure::new(
                    Exit::Error,
                    format!("login to {session} did not complete: {}", status.message),
                ));
            }
        }
    }
}

/// Opens the page in the user's browser (this command runs in the user's session; the
/// daemon may have no display). The URL is printed either way.
fn open_browser(s: &LoginStarted) {
    let url = s
        .authorize_url
        .as_deref()
        .or(s.verification_uri_complete.as_deref())
        .or(s.verification_uri.as_deref());
    if let Some(url) = url
        && let Err(e) = webbrowser::open(url)
    {
        eprintln!("Could not open a browser ({e}); open the URL above yourself.");
    }
}

fn print_instructions(session: &str, s: &LoginStarted, why: &str) {
    let mut out = std::io::stdout().lock();
    let joined = if s.joined {
        " (joining a login already in progress)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "Logging in to {session} with the {} flow{joined}: {why}.",
        s.flow.as_str().replace('_', " ")
    );
    if let Some(uri) = &s.verification_uri {
        let _ = writeln!(out, "Open {uri}");
        if let Some(code) = &s.user_code {
            let _ = writeln!(out, "and enter the code: {code}");
        }
        if let Some(complete) = &s.verification_uri_complete {
            let _ = writeln!(out, "(or open {complete} directly)");
        }
    }
    if let Some(url) = &s.authorize_url {
        let _ = writeln!(out, "Open {url}");
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_choice_table() {
        let desktop = Env::from_pairs([("DISPLAY", ":0")]);
        for (device, env, container, flow) in [
            (false, desktop.clone(), false, LoginFlow::AuthorizationCode),
            (true, desktop.clone(), false, LoginFlow::DeviceCode),
            (
                false,
                desktop
                    .clone()
                    .with("SSH_CONNECTION", "10.0.0.1 2 10.0.0.2 22"),
                false,
                LoginFlow::DeviceCode,
            ),
            (false, desktop.clone(), true, LoginFlow::AuthorizationCode),
            (false, Env::default(), true, LoginFlow::DeviceCode),
            (
                false,
                Env::from_pairs([("WAYLAND_DISPLAY", "wayland-0")]),
                false,
                LoginFlow::AuthorizationCode,
            ),
        ] {
            assert_eq!(
                choose_flow(device, &env, container).0,
                flow,
                "{env:?} container={container}"
            );
        }
        if cfg!(target_os = "linux") {
            let (flow, why) = choose_flow(false, &Env::default(), false);
            assert_eq!(flow, LoginFlow::DeviceCode);
            assert!(why.contains("DISPLAY"));
        }
    }
}

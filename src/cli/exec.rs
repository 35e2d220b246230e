//! `sso-agent exec [--profile NAME] [--] CMD [ARGS...]`: runs CMD with the profile's role
//! credentials served live by the daemon's container-credentials endpoint (SPEC "exec").
//! Holds its socket connection to the daemon while CMD runs (the token dies with it), forwards
//! SIGINT/SIGTERM/SIGHUP, and exits with CMD's status (128 + N for signal N).
//! Must not: print the token, or start CMD before the daemon granted one (exit 2/3/4 first).

use std::ffi::OsString;
use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Args;

use crate::api::{ExecGrant, ExecRequest, paths};
use crate::config::{self, Settings};
use crate::env::Env;

use super::client::Client;
use super::exit::{Exit, Failure};

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The profile (with sso_session, sso_account_id, sso_role_name); default AWS_PROFILE
    #[arg(long)]
    profile: Option<String>,
    /// The command and its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<OsString>,
}

/// Removed from the child's environment: anything that would make an SDK pick other
/// credentials (or another profile) before the container provider.
pub const REMOVED: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

/// The child's environment changes: (name, Some(value)) sets, (name, None) removes.
pub fn child_env(grant: &ExecGrant) -> Vec<(&'static str, Option<String>)> {
    let mut out: Vec<(&'static str, Option<String>)> = REMOVED.iter().map(|k| (*k, None)).collect();
    out.push((
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        Some(grant.uri.clone()),
    ));
    out.push((
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        Some(grant.token.expose().to_string()),
    ));
    if let Some(region) = &grant.region {
        out.push(("AWS_REGION", Some(region.clone())));
        out.push(("AWS_DEFAULT_REGION", Some(region.clone())));
    }
    out.push(("SSO_AGENT_PROFILE", Some(grant.profile.clone())));
    out
}

/// The exit code for a child's end: its code, or 128 + N for signal N (as shells report).
#[cfg(unix)]
pub fn exit_code_of(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => (c & 0xff) as u8,
        (None, Some(sig)) => (128 + sig).clamp(0, 255) as u8,
        (None, None) => 1,
    }
}

#[cfg(not(unix))]
pub fn exit_code_of(status: std::process::ExitStatus) -> u8 {
    status.code().map_or(1, |c| (c & 0xff) as u8)
}

pub fn exec(args: ExecArgs, settings: &Settings, env: &Env) -> Result<ExitCode, Failure> {
    let profile = super::profile_or_env(args.profile, env)?;
    let rt = super::client_rt()?;
    rt.block_on(async {
        let (grant, held) = register(&profile, settings, env).await?;
        let code = run_child(&args.command, &grant).await?;
        drop(held);
        Ok(ExitCode::from(code))
    })
}

/// Asks the daemon for a token; on a terminal, a needed login runs first (the same as
/// `sso-agent login`), then it asks again.
async fn register(
    profile: &str,
    settings: &Settings,
    env: &Env,
) -> Result<(ExecGrant, super::client::Held), Failure> {
    let client = Client::new(&settings.socket);
    let body = serde_json::to_vec(&ExecRequest {
        profile: profile.to_string(),
    })
    .map_err(|e| Failure::new(Exit::Error, format!("cannot encode the request: {e}")))?;
    let mut logged_in = false;
    loop {
        match client
            .post_held::<ExecGrant>(paths::EXEC, body.clone())
            .await
        {
            Ok(x) => return Ok(x),
            Err(f) if f.exit == Exit::LoginRequired && !logged_in && interactive() => {
                let session = session_of(profile, settings)?;
                eprintln!("sso-agent: {}", f.message);
                super::login::login(super::login::LoginArgs::for_session(session), settings, env)
                    .await?;
                logged_in = true;
            }
            Err(f) => return Err(f),
        }
    }
}

fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

fn session_of(profile: &str, settings: &Settings) -> Result<String, Failure> {
    let aws = config::load_aws_config(&settings.aws_config_file)
        .map_err(|e| Failure::new(Exit::Usage, e.to_string()))?;
    aws.profile_credentials(profile)
        .map(|t| t.session)
        .map_err(|e| Failure::new(Exit::Usage, e.to_string()))
}

async fn run_child(command: &[OsString], grant: &ExecGrant) -> Result<u8, Failure> {
    let (program, rest) = command
        .split_first()
        .ok_or_else(|| Failure::new(Exit::Usage, "name the command to run after --"))?;
    let mut cmd = std::process::Command::new(program);
    cmd.args(rest);
    for (k, v) in child_env(grant) {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    #[cfg(unix)]
    let signals = Forward::new()?;
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            // As shells report them: 127 not found, 126 found but not runnable.
            let (code, what) = if e.kind() == std::io::ErrorKind::NotFound {
                (127, "not found")
            } else {
                (126, "cannot be run")
            };
            eprintln!("sso-agent: {}: {what} ({e})", program.to_string_lossy());
            return Ok(code);
        }
    };
    let pid = child.id();
    let wait = tokio::task::spawn_blocking(move || child.wait());
    #[cfg(unix)]
    let status = signals.forward_until(pid, wait).await;
    #[cfg(not(unix))]
    let status = {
        let _ = pid;
        wait.await
    };
    let status = status
        .map_err(|e| Failure::new(Exit::Error, format!("lost the child: {e}")))?
        .map_err(|e| Failure::new(Exit::Error, format!("cannot wait for the child: {e}")))?;
    Ok(exit_code_of(status))
}

/// SIGINT, SIGTERM and SIGHUP, caught here (so exec outlives them) and passed to the child.
#[cfg(unix)]
struct Forward {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Forward {
    fn new() -> Result<Self, Failure> {
        use tokio::signal::unix::{SignalKind, signal};
        let watch = |k: SignalKind| {
            signal(k).map_err(|e| Failure::new(Exit::Error, format!("cannot watch signals: {e}")))
        };
        Ok(Self {
            int: watch(SignalKind::interrupt())?,
            term: watch(SignalKind::terminate())?,
            hup: watch(SignalKind::hangup())?,
        })
    }

    async fn forward_until<T>(
        mut self,
        pid: u32,
        wait: tokio::task::JoinHandle<T>,
    ) -> Result<T, tokio::task::JoinError> {
        use rustix::process::{Pid, Signal, kill_process};
        tokio::pin!(wait);
        loop {
            let sig = tokio::select! {
                done = &mut wait => return done,
                _ = self.int.recv() => Signal::INT,
                _ = self.term.recv() => Signal::TERM,
                _ = self.hup.recv() => Signal::HUP,
            };
            if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
                // The child may have just exited: then there is no one to tell.
                let _ = kill_process(pid, sig);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn the_child_env_sets_and_removes_exactly_what_spec_says() {
        let grant = ExecGrant {
            profile: "dev".into(),
            session: "corp".into(),
            uri: "http://127.0.0.1:4000/v1/role-credentials".into(),
            token: Secret::new("tok"),
            region: Some("eu-west-1".into()),
        };
        let env = child_env(&grant);
        let set: Vec<_> = env
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| *k)
            .collect();
        assert_eq!(
            set,
            [
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                "AWS_REGION",
                "AWS_DEFAULT_REGION",
                "SSO_AGENT_PROFILE"
            ]
        );
        assert_eq!(env.iter().filter(|(_, v)| v.is_none()).count(), 9);
        let no_region = ExecGrant {
            region: None,
            ..grant
        };
        assert!(
            !child_env(&no_region)
                .iter()
                .any(|(k, _)| *k == "AWS_REGION")
        );
    }
}

//! `sso-agent logout [SESSION | --all]`.

use clap::Args;

use crate::api::{LogoutData, StatusData, paths};
use crate::config::Settings;
use crate::env::Env;

use super::client::Client;
use super::exit::Failure;

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The sso-session (optional when only one is configured or AWS_PROFILE names one)
    #[arg(conflicts_with = "all", add = clap_complete::ArgValueCandidates::new(super::completions::session_names))]
    session: Option<String>,
    /// Or the AWS config profile whose session it is (with sso_session, or a legacy one)
    #[arg(long, value_name = "NAME", conflicts_with_all = ["session", "all"], add = clap_complete::ArgValueCandidates::new(super::completions::profile_names))]
    profile: Option<String>,
    /// Log out of every session
    #[arg(long)]
    all: bool,
}

pub async fn logout(args: LogoutArgs, settings: &Settings, env: &Env) -> Result<(), Failure> {
    let client = Client::new(&settings.socket);
    let names = if args.all {
        let status: StatusData = client.get(paths::STATUS).await?;
        status.sessions.into_iter().map(|s| s.name).collect()
    } else {
        vec![super::target::session_or_profile(
            args.session,
            args.profile,
            settings,
            env,
        )?]
    };
    for name in names {
        let out: LogoutData = client.post(&paths::logout(&name), None).await?;
        if out.forgotten {
            eprintln!("Logged out of {name}: its tokens are forgotten.");
        } else {
            eprintln!("{name} had no tokens to forget.");
        }
        if let Some(upstream) = out.upstream_logout {
            eprintln!("{name}: {upstream}.");
        }
    }
    Ok(())
}

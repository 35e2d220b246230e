//! `sso-agent token [SESSION] [--json] [--min-validity SECS] [--wait SECS]`.

use std::io::Write;

use clap::Args;

use crate::api::{TokenData, paths};
use crate::config::Settings;
use crate::env::Env;

use super::client::Client;
use super::exit::{Exit, Failure};

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The sso-session (optional when only one is configured or AWS_PROFILE names one)
    #[arg(add = clap_complete::ArgValueCandidates::new(super::completions::session_names))]
    session: Option<String>,
    /// Or the AWS config profile whose session it is (with sso_session, or a legacy one)
    #[arg(long, value_name = "NAME", conflicts_with = "session", add = clap_complete::ArgValueCandidates::new(super::completions::profile_names))]
    profile: Option<String>,
    /// Print the whole record as JSON instead of the bare token
    #[arg(long)]
    json: bool,
    /// Refresh first unless the token stays valid this many seconds
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    min_validity: u64,
    /// Wait up to this many seconds for a login that someone completes
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    wait: u64,
}

/// Blocking, with no runtime: see `Client::get_blocking`.
pub fn token(args: TokenArgs, settings: &Settings, env: &Env) -> Result<(), Failure> {
    let session = super::target::session_or_profile(args.session, args.profile, settings, env)?;
    let path = format!(
        "{}?minValidity={}&wait={}",
        paths::token(&session),
        args.min_validity,
        args.wait
    );
    let data: TokenData = Client::new(&settings.socket).get_blocking(&path)?;
    let out = if args.json {
        serde_json::to_string_pretty(&data)
            .map_err(|e| Failure::new(Exit::Error, format!("cannot encode the answer: {e}")))?
    } else {
        data.access_token.expose().to_string()
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{out}")
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::new(Exit::Error, format!("cannot write the token: {e}")))
}

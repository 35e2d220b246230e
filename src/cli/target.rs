//! Which session a command is about, when given as `--profile NAME`: the profile's
//! `sso_session`, or the session derived for a legacy profile (`sso_start_url` and
//! `sso_region` in the profile itself).
//! Must not: talk to the daemon; the session name is all it hands on.

use crate::config::{self, Settings};
use crate::env::Env;

use super::exit::{Exit, Failure};

/// SESSION if given, else the session of `--profile`, else the usual default
/// (`super::resolve_session`).
pub fn session_or_profile(
    session: Option<String>,
    profile: Option<String>,
    settings: &Settings,
    env: &Env,
) -> Result<String, Failure> {
    let Some(profile) = profile else {
        return super::resolve_session(session, settings, env);
    };
    let aws = config::load_aws_config(&settings.aws_config_file)
        .map_err(|e| Failure::new(Exit::Usage, e.to_string()))?;
    aws.profile_session(&profile)
        .map(|s| s.name.clone())
        .map_err(|e| Failure::new(Exit::Usage, e.to_string()))
}

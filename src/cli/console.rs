//! `sso-agent console [--profile NAME] [--destination URL | --service NAME] [--print]`: the
//! profile's role credentials (from the daemon, as `credentials` gets them) exchanged for a
//! console sign-in URL (signin.rs), opened in the browser or printed.
//! The exchange runs here, not in the daemon: it is one stateless call on credentials this
//! user already receives, and the URL must reach this user's browser anyway.
//! Must not: print or log the URL or the sign-in token except on stdout with `--print`.

use std::io::Write;

use clap::Args;

use crate::api::{CredentialsData, paths};
use crate::config::{self, Settings};
use crate::env::Env;
use crate::signin::{self, RoleCredentials, SigninError};

use super::client::Client;
use super::exit::{Exit, Failure};

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// The profile whose role to sign in as (default AWS_PROFILE)
    #[arg(long, value_name = "NAME", add = clap_complete::ArgValueCandidates::new(super::completions::profile_names))]
    profile: Option<String>,
    /// The console page to land on, an https:// URL
    #[arg(long, value_name = "URL", conflicts_with = "service")]
    destination: Option<String>,
    /// The console service to land on, e.g. s3, ec2, cloudwatch
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    /// Print the sign-in URL instead of opening a browser (it is a credential: keep it private)
    #[arg(long)]
    print: bool,
}

fn failure(e: SigninError) -> Failure {
    let exit = match e {
        SigninError::Endpoint(_) | SigninError::Destination(_) => Exit::Usage,
        _ => Exit::Error,
    };
    Failure::new(exit, e.to_string())
}

pub async fn console(args: ConsoleArgs, settings: &Settings, env: &Env) -> Result<(), Failure> {
    let profile = super::profile_or_env(args.profile, env)?;
    let aws = config::load_aws_config(&settings.aws_config_file)
        .map_err(|e| Failure::new(Exit::Usage, e.to_string()))?;
    let target = aws
        .profile_credentials(&profile)
        .map_err(|e| Failure::new(Exit::Usage, e.to_string()))?;
    // The partition follows the profile's region, else its SSO region.
    let region = aws
        .profiles
        .get(&profile)
        .and_then(|p| p.region.clone())
        .or_else(|| aws.sessions.get(&target.session).map(|s| s.region.clone()));
    let endpoint = signin::federation_endpoint(region.as_deref(), env).map_err(failure)?;
    let destination = signin::destination(
        region.as_deref(),
        args.service.as_deref(),
        args.destination.as_deref(),
    )
    .map_err(failure)?;

    let creds: CredentialsData = Client::new(&settings.socket)
        .get(&paths::credentials(&profile))
        .await?;
    let http = signin::http_client().map_err(failure)?;
    let token = signin::signin_token(
        &http,
        &endpoint,
        &RoleCredentials {
            access_key_id: &creds.access_key_id,
            secret_access_key: &creds.secret_access_key,
            session_token: &creds.session_token,
        },
    )
    .await
    .map_err(failure)?;
    let url = signin::login_url(&endpoint, &destination, &token);
    if args.print {
        let mut out = std::io::stdout().lock();
        return writeln!(out, "{}", url.expose())
            .and_then(|()| out.flush())
            .map_err(|e| Failure::new(Exit::Error, format!("cannot write the URL: {e}")));
    }
    webbrowser::open(url.expose()).map_err(|e| {
        Failure::new(
            Exit::Error,
            format!(
                "could not open a browser ({e}); run again with --print and open the URL yourself"
            ),
        )
    })?;
    eprintln!(
        "Opened the AWS console as {} in account {} ({profile}).",
        target.role_name, target.account_id
    );
    Ok(())
}

//! `sso-agent credentials --profile NAME [--format process|env]`: role credentials for an
//! SSO profile, as `credential_process` JSON (WIRE.md §8.1) or shell exports.
//! Prints secrets by design: this is what the caller asked for, on stdout only.

use std::io::Write;

use clap::{Args, ValueEnum};

use crate::api::{CredentialsData, paths};
use crate::clock::rfc3339;
use crate::config::Settings;
use crate::env::Env;

use super::client::Client;
use super::exit::{Exit, Failure};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// credential_process JSON (Version 1)
    Process,
    /// `export AWS_…=…` lines for `eval "$(sso-agent credentials --profile P --format env)"`
    Env,
}

#[derive(Debug, Args)]
pub struct CredentialsArgs {
    /// The profile (with sso_session, sso_account_id, sso_role_name); default AWS_PROFILE
    #[arg(long, add = clap_complete::ArgValueCandidates::new(super::completions::profile_names))]
    profile: Option<String>,
    #[arg(long, value_enum, default_value = "process")]
    format: Format,
    /// Wait up to SECS for a login that someone completes (as `token --wait`)
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    wait: u64,
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

pub fn render(c: &CredentialsData, format: Format) -> String {
    match format {
        Format::Process => serde_json::json!({
            "Version": 1,
            "AccessKeyId": c.access_key_id,
            "SecretAccessKey": c.secret_access_key.expose(),
            "SessionToken": c.session_token.expose(),
            "Expiration": rfc3339(c.expiration),
            "AccountId": c.account_id,
        })
        .to_string(),
        Format::Env => format!(
            "export AWS_ACCESS_KEY_ID={}\nexport AWS_SECRET_ACCESS_KEY={}\nexport AWS_SESSION_TOKEN={}\nexport AWS_CREDENTIAL_EXPIRATION={}",
            shell_quote(&c.access_key_id),
            shell_quote(c.secret_access_key.expose()),
            shell_quote(c.session_token.expose()),
            shell_quote(&rfc3339(c.expiration)),
        ),
    }
}

pub async fn credentials(
    args: CredentialsArgs,
    settings: &Settings,
    env: &Env,
) -> Result<(), Failure> {
    let profile = super::profile_or_env(args.profile, env)?;
    let data: CredentialsData = Client::new(&settings.socket)
        .get(&if args.wait > 0 {
            format!("{}?wait={}", paths::credentials(&profile), args.wait)
        } else {
            paths::credentials(&profile)
        })
        .await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", render(&data, args.format))
        .and_then(|()| out.flush())
        .map_err(|e| Failure::new(Exit::Error, format!("cannot write the credentials: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use time::macros::datetime;

    #[test]
    fn credential_process_shape() {
        let c = CredentialsData {
            profile: "dev".into(),
            session: "corp".into(),
            account_id: "111122223333".into(),
            role_name: "Admin".into(),
            access_key_id: "ASIA".into(),
            secret_access_key: Secret::new("s'k"),
            session_token: Secret::new("st"),
            expiration: datetime!(2026-11-23 1:05:18.9 UTC),
        };
        let v: serde_json::Value = serde_json::from_str(&render(&c, Format::Process)).unwrap();
        assert_eq!(v["Version"], 1, "a JSON number, not a string");
        assert_eq!(v["Expiration"], "2026-11-23T01:05:18Z");
        assert_eq!(v["SecretAccessKey"], "s'k");
        let e = render(&c, Format::Env);
        assert!(e.contains("export AWS_SECRET_ACCESS_KEY='s'\\''k'"), "{e}");
    }
}

//! `sso-agent profiles [SESSION] [--write] [--prune] [--name-template T] [--region R]
//! [--json]`: AWS config profiles for every account and role of a session, printed, or kept
//! in the session's marked block of the AWS config file (config::profiles_block).
//! Must not: talk to the portal itself, or write anything outside the block.

use clap::Args;

use crate::api::AccountsData;
use crate::config::Settings;
use crate::config::profiles_block::{
    self, Assignment, DEFAULT_TEMPLATE, GeneratedProfile, Summary,
};
use crate::config::profiles_file::{self, WriteError};
use crate::env::Env;

use super::exit::{Exit, Failure};

#[derive(Debug, Args)]
pub struct ProfilesArgs {
    /// The sso-session (default: the only one, or AWS_PROFILE's)
    session: Option<String>,
    /// Keep the profiles in a marked block of the AWS config file instead of printing them
    #[arg(long)]
    write: bool,
    /// With --write: remove block entries whose account or role is gone (kept by default)
    #[arg(long, requires = "write")]
    prune: bool,
    /// Profile names; placeholders {account_name}, {account_id}, {role_name}, {session}
    #[arg(long, value_name = "T", default_value = DEFAULT_TEMPLATE)]
    name_template: String,
    /// Add `region = R` to every profile
    #[arg(long, value_name = "R")]
    region: Option<String>,
    /// JSON: the profiles, or with --write the summary
    #[arg(long)]
    json: bool,
    /// Ask the portal again instead of the daemon's brief cache
    #[arg(long)]
    refresh: bool,
}

fn usage(e: impl std::fmt::Display) -> Failure {
    Failure::new(Exit::Usage, e.to_string())
}

fn region_ok(r: &str) -> bool {
    !r.is_empty() && r.len() <= 64 && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Every (account, role) of the list, in its order.
pub fn assignments(data: &AccountsData) -> Vec<Assignment> {
    data.accounts
        .iter()
        .flat_map(|a| {
            a.roles.iter().map(|r| Assignment {
                account_id: a.account_id.clone(),
                account_name: a.account_name.clone(),
                role_name: r.clone(),
            })
        })
        .collect()
}

pub async fn profiles(args: ProfilesArgs, settings: &Settings, env: &Env) -> Result<(), Failure> {
    profiles_block::check_template(&args.name_template).map_err(usage)?;
    if let Some(r) = args.region.as_deref().filter(|r| !region_ok(r)) {
        return Err(usage(format!(
            "--region {r:?} is not a region; e.g. --region us-east-1"
        )));
    }
    let session = super::resolve_session(args.session, settings, env)?;
    let data = super::accounts::fetch(settings, &session, args.refresh).await?;
    let generated = profiles_block::generate(
        &session,
        &args.name_template,
        args.region.as_deref(),
        &assignments(&data),
    )
    .map_err(|e| Failure::new(Exit::Error, e.to_string()))?;
    if !args.write {
        if args.json {
            println!("{}", encode(&profiles_json(&generated))?);
        } else {
            print!("{}", profiles_block::render(&generated));
        }
        return Ok(());
    }
    let path = &settings.aws_config_file;
    let summary = profiles_file::write_profiles(path, &session, &generated, args.prune).map_err(
        |e| match e {
            WriteError::Block(b) => Failure::new(Exit::Error, b.to_string()),
            other => Failure::new(Exit::Error, format!("cannot write the profiles: {other}")),
        },
    )?;
    for name in &summary.skipped {
        eprintln!(
            "sso-agent: warning: profile {name} already exists outside the sso-agent block in {}; not written",
            path.display()
        );
    }
    if args.json {
        println!("{}", encode(&summary)?);
    } else {
        print!("{}", render_summary(&summary));
    }
    Ok(())
}

fn profiles_json(generated: &[GeneratedProfile]) -> serde_json::Value {
    serde_json::Value::Array(
        generated
            .iter()
            .map(|p| {
                let mut o = serde_json::Map::new();
                o.insert("name".into(), p.name.clone().into());
                for (k, v) in &p.keys {
                    o.insert(k.clone(), v.clone().into());
                }
                serde_json::Value::Object(o)
            })
            .collect(),
    )
}

fn encode<T: serde::Serialize>(v: &T) -> Result<String, Failure> {
    serde_json::to_string_pretty(v)
        .map_err(|e| Failure::new(Exit::Error, format!("cannot encode the answer: {e}")))
}

/// The short summary of a write: counts, then the stale names (what `--prune` would remove).
pub fn render_summary(s: &Summary) -> String {
    let what = if s.changed {
        format!(
            "wrote the profiles of sso-session {} to {}",
            s.session, s.file
        )
    } else {
        format!(
            "the profiles of sso-session {} in {} are up to date (file not rewritten)",
            s.session, s.file
        )
    };
    let mut out = format!(
        "{what}: {} added, {} updated, {} removed, {} kept, {} stale, {} skipped\n",
        s.added.len(),
        s.updated.len(),
        s.removed.len(),
        s.kept.len(),
        s.stale.len(),
        s.skipped.len()
    );
    if !s.stale.is_empty() {
        out.push_str(&format!(
            "stale (no longer assigned or renamed; kept, --prune removes them): {}\n",
            s.stale.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_and_names_stale_entries() {
        let s = Summary {
            session: "corp".into(),
            file: "/h/.aws/config".into(),
            changed: true,
            added: vec!["a".into(), "b".into()],
            stale: vec!["old.Admin".into()],
            ..Summary::default()
        };
        let t = render_summary(&s);
        assert!(t.starts_with("wrote the profiles of sso-session corp to /h/.aws/config: 2 added, 0 updated, 0 removed, 0 kept, 1 stale, 0 skipped\n"), "{t}");
        assert!(t.contains("--prune removes them): old.Admin"), "{t}");
        let same = Summary {
            changed: false,
            ..Summary::default()
        };
        assert!(render_summary(&same).contains("up to date"));
    }
}

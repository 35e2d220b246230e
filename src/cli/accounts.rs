//! `sso-agent accounts [SESSION] [--json] [--refresh]`: every account the session can use
//! and its roles, from the daemon (which lists them from the portal, every page).
//! Must not: talk to the portal itself or print a token.

use std::fmt::Write as _;

use clap::Args;

use crate::api::{AccountsData, paths};
use crate::config::Settings;
use crate::env::Env;

use super::client::Client;
use super::exit::{Exit, Failure};

#[derive(Debug, Args)]
pub struct AccountsArgs {
    /// The sso-session (default: the only one, or AWS_PROFILE's)
    session: Option<String>,
    /// Print the list as JSON (the `data` of GET /v1/sessions/{name}/accounts)
    #[arg(long)]
    json: bool,
    /// Ask the portal again instead of the daemon's brief cache
    #[arg(long)]
    refresh: bool,
}

/// The account list of `session` from the daemon.
pub async fn fetch(
    settings: &Settings,
    session: &str,
    refresh: bool,
) -> Result<AccountsData, Failure> {
    Client::new(&settings.socket)
        .get(&paths::accounts(session, refresh))
        .await
}

pub async fn accounts(args: AccountsArgs, settings: &Settings, env: &Env) -> Result<(), Failure> {
    let session = super::resolve_session(args.session, settings, env)?;
    let data = fetch(settings, &session, args.refresh).await?;
    if args.json {
        let out = serde_json::to_string_pretty(&data)
            .map_err(|e| Failure::new(Exit::Error, format!("cannot encode the list: {e}")))?;
        println!("{out}");
    } else {
        print!("{}", render(&data));
    }
    Ok(())
}

/// A table: account id, name, email, roles (comma-separated).
pub fn render(data: &AccountsData) -> String {
    let mut out = String::new();
    if data.accounts.is_empty() {
        let _ = writeln!(
            out,
            "session {} has no accounts assigned in IAM Identity Center",
            data.session
        );
        return out;
    }
    let rows: Vec<[String; 4]> = data
        .accounts
        .iter()
        .map(|a| {
            [
                a.account_id.clone(),
                a.account_name.clone().unwrap_or_default(),
                a.email_address.clone().unwrap_or_default(),
                a.roles.join(", "),
            ]
        })
        .collect();
    let header = ["ACCOUNT ID", "NAME", "EMAIL", "ROLES"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let w = [width(0), width(1), width(2)];
    let mut line = |cells: [&str; 4]| {
        let _ = writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2]
        );
    };
    line(header);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3]]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::AccountEntry;
    use time::macros::datetime;

    #[test]
    fn table_lists_every_account_with_its_roles() {
        let data = AccountsData {
            session: "corp".into(),
            fetched_at: datetime!(2026-03-01 12:00 UTC),
            accounts: vec![
                AccountEntry {
                    account_id: "111122223333".into(),
                    account_name: Some("Prod".into()),
                    email_address: Some("prod@example.com".into()),
                    roles: vec!["Admin".into(), "ReadOnly".into()],
                },
                AccountEntry {
                    account_id: "444455556666".into(),
                    account_name: None,
                    email_address: None,
                    roles: vec![],
                },
            ],
        };
        let t = render(&data);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ACCOUNT ID    NAME"), "{t}");
        assert!(
            lines[1].contains("Prod") && lines[1].ends_with("Admin, ReadOnly"),
            "{t}"
        );
        assert!(lines[2].starts_with("444455556666"), "{t}");
        let empty = AccountsData {
            accounts: vec![],
            ..data
        };
        assert!(render(&empty).contains("no accounts"));
    }
}

//! `sso-agent status [--json]`: the daemon and every session. Exit 3 without a daemon, 4 when
//! a session needs a login, else 0.

use std::fmt::Write as _;

use clap::Args;
use time::OffsetDateTime;

use crate::api::{SessionState, SessionStatus, StatusData, paths};
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::config::Settings;

use super::client::Client;
use super::exit::{Exit, Failure};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the status as JSON (the `data` of GET /v1/status)
    #[arg(long)]
    json: bool,
}

pub async fn status(args: StatusArgs, settings: &Settings) -> Result<(), Failure> {
    let data: StatusData = Client::new(&settings.socket).get(paths::STATUS).await?;
    if args.json {
        let out = serde_json::to_string_pretty(&data)
            .map_err(|e| Failure::new(Exit::Error, format!("cannot encode the status: {e}")))?;
        println!("{out}");
    } else {
        print!("{}", render(&data, SystemClock.now()));
    }
    let needs_login = data.sessions.iter().any(|s| {
        matches!(
            s.state,
            SessionState::LoginRequired | SessionState::LoginPending
        )
    });
    if needs_login {
        // Exit 4 is the answer here; the table already says which session.
        return Err(Failure::new(
            Exit::LoginRequired,
            "a session needs a login; run `sso-agent login SESSION`",
        ));
    }
    Ok(())
}

/// "in 7h 59m" / "3m ago", to the minute (seconds under a minute).
pub fn relative(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let d = at - now;
    let secs = d.whole_seconds().unsigned_abs();
    let rounded = if secs >= 60 { secs - secs % 60 } else { secs };
    let text = humantime::format_duration(std::time::Duration::from_secs(rounded)).to_string();
    if d.is_negative() {
        format!("{text} ago")
    } else {
        format!("in {text}")
    }
}

fn when(at: Option<OffsetDateTime>, now: OffsetDateTime) -> String {
    at.map_or_else(
        || "-".to_string(),
        |t| format!("{} ({})", relative(t, now), rfc3339(t)),
    )
}

pub fn render(data: &StatusData, now: OffsetDateTime) -> String {
    use crate::outside_text::escape;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "sso-agent {} (pid {}), up since {}, socket {}",
        data.version,
        data.pid,
        rfc3339(data.started_at),
        data.socket
    );
    let store = if data.store.available {
        format!("{} (ok)", data.store.backend)
    } else {
        format!(
            "{} UNAVAILABLE: {}; tokens are kept in memory only",
            data.store.backend,
            escape(data.store.detail.as_deref().unwrap_or("unknown reason"))
        )
    };
    let _ = writeln!(out, "store:  {store}");
    let _ = writeln!(out, "config: {}", data.config_file);
    if data.config_problems.is_empty() {
        // a daemon from before per-file problems
        if let Some(e) = &data.config_error {
            let _ = writeln!(out, "config problem: {}", escape(e));
        }
    }
    for p in &data.config_problems {
        let _ = writeln!(out, "config problem: {}", escape(&p.problem));
    }
    if data.sessions.is_empty() {
        let _ = writeln!(
            out,
            "no sso-session is configured; add one to {}",
            data.config_file
        );
    }
    for s in &data.sessions {
        render_session(&mut out, s, now);
    }
    for p in &data.profiles {
        let _ = writeln!(out);
        if p.up_to_date {
            let _ = writeln!(
                out,
                "profiles of {}: up to date with its accounts (as of {})",
                p.session,
                relative(p.checked_at, now)
            );
        } else {
            let _ = writeln!(
                out,
                "profiles of {}: OUT OF DATE ({} new, {} gone, as of {}); run `sso-agent profiles {} --write`{}",
                p.session,
                p.missing.len(),
                p.gone.len(),
                relative(p.checked_at, now),
                p.session,
                if p.gone.is_empty() {
                    ""
                } else {
                    " (--prune drops the gone ones)"
                }
            );
        }
    }
    for w in &data.profile_warnings {
        // outside text: the profile name and path come from the user's config file
        let _ = writeln!(
            out,
            "\nwarning: {}: {}",
            escape(&w.location),
            escape(&w.message)
        );
    }
    out
}

fn render_session(out: &mut String, s: &SessionStatus, now: OffsetDateTime) {
    // Outside text (names from the config file, upstream messages) is escaped field by
    // field, so none of it can start a line of its own.
    use crate::outside_text::escape;
    let _ = writeln!(
        out,
        "\n[{}] {}  ({} {}{})",
        escape(&s.name),
        s.state.as_str(),
        escape(&s.region),
        escape(&s.start_url),
        if s.legacy { ", legacy profiles" } else { "" }
    );
    let _ = writeln!(
        out,
        "  access token expires  {}",
        when(s.access_token_expires_at, now)
    );
    let _ = writeln!(
        out,
        "  refreshable           {}",
        if s.refreshable { "yes" } else { "no" }
    );
    if s.next_refresh_at.is_some() {
        let _ = writeln!(
            out,
            "  next refresh          {}",
            when(s.next_refresh_at, now)
        );
    }
    if s.last_refresh_at.is_some() {
        let _ = writeln!(
            out,
            "  last refresh          {}",
            when(s.last_refresh_at, now)
        );
    }
    if s.registration_expires_at.is_some() {
        let _ = writeln!(
            out,
            "  client registration   expires {}",
            when(s.registration_expires_at, now)
        );
    }
    if let Some(by) = s.login_needed_by {
        let _ = writeln!(out, "  next login needed     {}", when(Some(by), now));
    }
    if let Some(e) = &s.last_error {
        let _ = writeln!(out, "  last error            {}", escape(e));
    }
    match s.state {
        SessionState::LoginRequired => {
            let _ = writeln!(out, "  -> run `sso-agent login {}`", escape(&s.name));
        }
        SessionState::LoginPending => {
            let _ = writeln!(out, "  -> a login is waiting for approval");
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn relative_times_read_naturally() {
        let now = datetime!(2026-01-01 0:00 UTC);
        assert_eq!(
            relative(datetime!(2026-01-01 7:59:40 UTC), now),
            "in 7h 59m"
        );
        assert_eq!(relative(datetime!(2025-12-31 23:57:00 UTC), now), "3m ago");
        assert_eq!(relative(datetime!(2026-01-01 0:00:30 UTC), now), "in 30s");
    }
}

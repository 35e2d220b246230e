//! Pure decisions about time: when to refresh, how long to back off, whether a registration
//! may start a login. Table-tested; callers log the inputs and the decision.
//! Must not: read the clock, sleep, or do I/O. Every input is an argument.

use std::time::Duration;

use time::OffsetDateTime;

/// Share of the refresh lead added as jitter (always earlier, never later).
const JITTER_SHARE: f64 = 0.1;
/// First retry delay after a transient failure, and the cap of the exponential back-off.
pub const BACKOFF_BASE: Duration = Duration::from_secs(5);
pub const BACKOFF_CAP: Duration = Duration::from_secs(300);

fn dur(d: time::Duration) -> Duration {
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

/// How long before expiry a token of `lifetime` is refreshed: `max(margin, lifetime/6)`,
/// capped at half the lifetime so short-lived tokens never refresh in a loop (SPEC).
pub fn refresh_lead(lifetime: Duration, margin: Duration) -> Duration {
    margin.max(lifetime / 6).min(lifetime / 2)
}

/// When to refresh a token issued at `issued_at` that expires at `expires_at`.
/// `jitter` in [0, 1) moves the moment earlier by up to 10% of the lead, so many daemons
/// (or sessions) started together do not refresh in lockstep.
pub fn refresh_at(
    issued_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    margin: Duration,
    jitter: f64,
) -> OffsetDateTime {
    let lifetime = dur(expires_at - issued_at);
    let lead = refresh_lead(lifetime, margin);
    let jitter = lead.mul_f64(JITTER_SHARE * jitter.clamp(0.0, 1.0));
    expires_at - lead - jitter
}

/// The widest window before expiry in which an SDK reading the exported token cache refuses a
/// token it cannot refresh itself (the file has no refresh token): the JavaScript SDK v3 treats
/// a cached token with under 5 minutes left as expired (`EXPIRE_WINDOW_MS`) and fails; botocore,
/// the AWS CLI and aws-config use it until it expires (measured: docs/INTEROP.md).
pub const SDK_REFUSAL_WINDOW: Duration = Duration::from_secs(5 * 60);
/// Kept beyond that window: an SDK may use what it read a little later, and clocks differ.
pub const SDK_WINDOW_SLACK: Duration = Duration::from_secs(30);

/// When to refresh a token that is exported to the SDK cache, given `normal` (`refresh_at`):
/// never later than `normal`, and at least `SDK_REFUSAL_WINDOW + SDK_WINDOW_SLACK` before
/// expiry, so while refreshes work no SDK is handed a token it refuses. A token whose whole
/// lifetime is under that plus one slack (6 min) cannot be kept out of the window without
/// refreshing more often than every 30 s; it keeps `normal`.
pub fn exported_refresh_at(
    issued_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    normal: OffsetDateTime,
) -> OffsetDateTime {
    let keep = SDK_REFUSAL_WINDOW + SDK_WINDOW_SLACK;
    if dur(expires_at - issued_at) < keep + SDK_WINDOW_SLACK {
        return normal;
    }
    // Checked, like reregister_at: dates come from upstream and the keyring.
    time::Duration::try_from(keep)
        .ok()
        .and_then(|k| expires_at.checked_sub(k))
        .map_or(normal, |latest| normal.min(latest))
}

/// Delay before retry number `failures` (1-based) after transient failures: exponential from
/// 5 s, capped at 5 min, with "equal jitter" (half fixed, half random) so it stays bounded
/// below and above.
pub fn backoff(failures: u32, jitter: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    let full = BACKOFF_BASE.saturating_mul(1u32 << exp).min(BACKOFF_CAP);
    full / 2 + (full / 2).mul_f64(jitter.clamp(0.0, 1.0))
}

/// Whether a stored registration may start a new login now: its secret must outlive the
/// re-registration margin, or, for clients whose whole lifetime is shorter than the margin,
/// half its lifetime (so a short-lived secret does not cause a registration per login).
pub fn registration_usable(
    issued_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
    margin: Duration,
) -> bool {
    let lifetime = dur(expires_at - issued_at);
    let needed = margin.min(lifetime / 2);
    expires_at > now && dur(expires_at - now) > needed
}

/// When to register a fresh client ahead of this one's lapse: `margin` before it expires,
/// but never sooner than `margin` after it was issued, so a secret whose whole lifetime is
/// shorter than the margin causes at most one registration per margin (no loop).
pub fn reregister_at(
    issued_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    margin: Duration,
) -> OffsetDateTime {
    let earliest = OffsetDateTime::new_utc(time::Date::MIN, time::Time::MIDNIGHT);
    let latest = OffsetDateTime::new_utc(time::Date::MAX, time::Time::MAX);
    // Saturating: dates come from upstream (clientIdIssuedAt) and the keyring, and may sit
    // at the calendar's ends, where plain `+`/`-` panic.
    let margin = time::Duration::try_from(margin).ok();
    let before = margin
        .and_then(|m| expires_at.checked_sub(m))
        .unwrap_or(earliest);
    let after = margin
        .and_then(|m| issued_at.checked_add(m))
        .unwrap_or(latest);
    before.max(after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const M: Duration = Duration::from_secs(60);
    const H: Duration = Duration::from_secs(3600);

    #[test]
    fn refresh_lead_table() {
        for (lifetime, margin, lead) in [
            (8 * H, 10 * M, 80 * M),  // lifetime/6 wins
            (H, 10 * M, 10 * M),      // margin and lifetime/6 equal
            (30 * M, 10 * M, 10 * M), // margin wins
            (10 * M, 10 * M, 5 * M),  // capped at half the lifetime
            (Duration::from_secs(60), 10 * M, Duration::from_secs(30)),
            (Duration::ZERO, 10 * M, Duration::ZERO),
        ] {
            assert_eq!(
                refresh_lead(lifetime, margin),
                lead,
                "lifetime {lifetime:?}"
            );
        }
    }

    #[test]
    fn refresh_at_is_before_expiry_and_jitter_only_moves_earlier() {
        let issued = datetime!(2026-01-01 0:00 UTC);
        let expires = datetime!(2026-01-01 1:00 UTC);
        assert_eq!(
            refresh_at(issued, expires, 10 * M, 0.0),
            datetime!(2026-01-01 0:50 UTC)
        );
        let jittered = refresh_at(issued, expires, 10 * M, 0.999);
        assert!(jittered < datetime!(2026-01-01 0:50 UTC));
        assert!(jittered >= datetime!(2026-01-01 0:49 UTC));
        // expired-at-issue (clock skew) still yields a moment, never a panic
        assert!(refresh_at(expires, issued, 10 * M, 0.5) <= issued);
    }

    #[test]
    fn exported_tokens_are_refreshed_before_any_sdk_refuses_them() {
        let t0 = datetime!(2026-01-01 0:00 UTC);
        let at = |lifetime: Duration, margin: Duration| {
            let expires = t0 + lifetime;
            let normal = refresh_at(t0, expires, margin, 0.0);
            (exported_refresh_at(t0, expires, normal) - t0).whole_seconds()
        };
        let s = |d: Duration| d.as_secs() as i64;
        let sec = Duration::from_secs(1);
        for (lifetime, margin, refresh_after, why) in [
            (
                8 * H,
                10 * M,
                8 * H - 80 * M,
                "the normal lead is wider: unchanged",
            ),
            (H, 10 * M, 50 * M, "10 min lead: unchanged"),
            (H, Duration::ZERO, 50 * M, "lifetime/6 lead: unchanged"),
            (
                10 * M,
                10 * M,
                270 * sec,
                "lead capped at 5 min would end in the window",
            ),
            (
                8 * M,
                2 * M,
                150 * sec,
                "normal lead 2 min: moved to 5.5 min before expiry",
            ),
            (
                6 * M,
                2 * M,
                30 * sec,
                "the shortest lifetime kept out of the window",
            ),
            (6 * M - sec, 2 * M, 239 * sec, "too short: normal"),
            (2 * M, 10 * M, M, "too short: normal (half the lifetime)"),
        ] {
            assert_eq!(at(lifetime, margin), s(refresh_after), "{why}");
        }
        // Jitter (earlier) survives: the exported moment is never later than the normal one.
        let expires = t0 + H;
        let early = refresh_at(t0, expires, 10 * M, 0.9);
        assert_eq!(exported_refresh_at(t0, expires, early), early);
        // Expired at issue (clock skew): a moment, never a panic.
        let normal = refresh_at(expires, t0, 10 * M, 0.0);
        assert_eq!(exported_refresh_at(expires, t0, normal), normal);
        // At the calendar's start: no panic.
        let start = datetime!(-9999-01-01 0:00 UTC);
        assert_eq!(exported_refresh_at(start, start + 7 * M, start), start);
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        assert_eq!(backoff(1, 0.0), Duration::from_millis(2500));
        assert_eq!(backoff(1, 1.0), BACKOFF_BASE);
        assert_eq!(backoff(2, 1.0), 2 * BACKOFF_BASE);
        assert_eq!(backoff(3, 0.0), 2 * BACKOFF_BASE);
        assert_eq!(backoff(30, 1.0), BACKOFF_CAP);
        assert_eq!(backoff(u32::MAX, 0.0), BACKOFF_CAP / 2);
    }

    #[test]
    fn reregister_at_table() {
        let t0 = datetime!(2026-01-01 0:00 UTC);
        let day = 24 * H;
        // 90-day secret, 7-day margin: 83 days in
        assert_eq!(reregister_at(t0, t0 + 90 * day, 7 * day), t0 + 83 * day);
        // 10-minute secret, 2-minute margin: 8 minutes in
        assert_eq!(reregister_at(t0, t0 + 10 * M, 2 * M), t0 + 8 * M);
        // 10-minute secret, 20-minute margin: once per margin, after the lapse
        assert_eq!(reregister_at(t0, t0 + 10 * M, 20 * M), t0 + 20 * M);
        // Found by the oidc_response fuzz target: a registration issued at the calendar's
        // end (clientIdIssuedAt 253402300799) panicked; it saturates instead.
        let end = OffsetDateTime::from_unix_timestamp(253_402_300_799).unwrap();
        assert!(reregister_at(end, end, 7 * day) >= end);
        let start = datetime!(-9999-01-01 0:00 UTC);
        assert_eq!(reregister_at(start, start, 7 * day), start + 7 * day);
        assert!(reregister_at(start, end, Duration::MAX) >= end);
    }

    #[test]
    fn registration_usable_table() {
        let issued = datetime!(2026-01-01 0:00 UTC);
        let day = 24 * H;
        let ninety = issued + 90 * day;
        for (now, expires, margin, usable) in [
            (issued, ninety, 7 * day, true),
            (issued + 82 * day, ninety, 7 * day, true),
            (issued + 84 * day, ninety, 7 * day, false), // inside the margin
            (issued + 91 * day, ninety, 7 * day, false), // lapsed
            // lifetime 10 min, margin 7 d: usable for the first half only
            (issued, issued + 10 * M, 7 * day, true),
            (issued + 6 * M, issued + 10 * M, 7 * day, false),
        ] {
            assert_eq!(
                registration_usable(issued, expires, now, margin),
                usable,
                "now {now}"
            );
        }
    }
}

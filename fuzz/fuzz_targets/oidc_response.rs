//! Answers from sso-oidc: the error mapping of a non-2xx answer (`x-amzn-ErrorType`, then the
//! body's names, then the OAuth `error`), and the three success models with what the session
//! code computes from them (expiry and poll dates, the registration's policy decisions).
//! Input: two bytes of status, the error-type header up to the first newline, then the body.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;

#[path = "common/answer.rs"]
mod answer;
use answer::split;
use sso_agent::oidc::{
    DeviceAuthorization, MAX_SECONDS, OidcError, RegisterClientResponse, TokenResponse,
};
use sso_agent::secret::Secret;
use sso_agent::session::policy;
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);
const REREGISTRATION_MARGIN: Duration = Duration::from_secs(7 * 86400);

/// `now + seconds` as the session task and login do with `expiresIn` and `interval`.
fn after(seconds: i64) -> OffsetDateTime {
    assert!(seconds <= MAX_SECONDS, "{seconds} s passed the decoder");
    NOW + Duration::from_secs(seconds.max(0).unsigned_abs())
}

fuzz_target!(|data: &[u8]| {
    let Some((status, headers, body)) = split(data) else {
        return;
    };
    let e = OidcError::from_response(status, &headers, body);
    let _ = (e.to_string(), e.is_transient(), e.ends_refresh_chain());

    let x = || Secret::new("x");
    if let Ok(t) = serde_json::from_slice::<TokenResponse>(body) {
        let _ = after(t.expires_in);
        // Debug never depends on a secret's value.
        let mut blank = t.clone();
        blank.access_token = x();
        blank.refresh_token = blank.refresh_token.map(|_| x());
        blank.id_token = blank.id_token.map(|_| x());
        assert_eq!(format!("{t:?}"), format!("{blank:?}"));
    }
    if let Ok(d) = serde_json::from_slice::<DeviceAuthorization>(body) {
        let _ = after(d.expires_in);
        if let Some(i) = d.interval {
            let _ = after(i);
        }
        let mut blank = d.clone();
        blank.device_code = x();
        assert_eq!(format!("{d:?}"), format!("{blank:?}"));
    }
    if let Ok(r) = serde_json::from_slice::<RegisterClientResponse>(body) {
        // As the registry stores it (session/registry.rs), then as the policy reads it.
        let issued = OffsetDateTime::from_unix_timestamp(r.client_id_issued_at).unwrap_or(NOW);
        if let Ok(expires) = OffsetDateTime::from_unix_timestamp(r.client_secret_expires_at) {
            let _ = policy::registration_usable(issued, expires, NOW, REREGISTRATION_MARGIN);
            let _ = policy::reregister_at(issued, expires, REREGISTRATION_MARGIN);
        }
        let mut blank = r.clone();
        blank.client_secret = x();
        assert_eq!(format!("{r:?}"), format!("{blank:?}"));
    }
});

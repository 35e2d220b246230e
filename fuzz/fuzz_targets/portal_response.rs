//! Answers from the SSO portal: the error mapping of a non-2xx answer (by name, else by
//! status) and GetRoleCredentials' body (every member required, expiration in epoch ms).
//! Input: two bytes of status, the error-type header up to the first newline, then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common/answer.rs"]
mod answer;
use answer::split;
use sso_agent::portal::{PortalError, decode_role_credentials};
use sso_agent::secret::Secret;

fuzz_target!(|data: &[u8]| {
    let Some((status, headers, body)) = split(data) else {
        return;
    };
    let e = PortalError::from_response(status, &headers, body);
    let _ = e.to_string();

    if let Ok(c) = decode_role_credentials(body) {
        // Debug never depends on a secret's value.
        let mut blank = c.clone();
        blank.secret_access_key = Secret::new("x");
        blank.session_token = Secret::new("x");
        assert_eq!(format!("{c:?}"), format!("{blank:?}"));
        let _ = sso_agent::clock::rfc3339(c.expiration);
    }
});

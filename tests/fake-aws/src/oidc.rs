//! The modeled SSO OIDC operations (WIRE.md §1.3, §3, §4.4): RegisterClient,
//! StartDeviceAuthorization and CreateToken with its three grants, validated strictly and
//! answered in the service's exact shapes (explicit nulls, seconds, error header + body).
//! Must not: touch the network or the clock directly (state owns both).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::state::{
    Client, DeviceStatus, GRANT_AUTH_CODE, GRANT_DEVICE, GRANT_REFRESH, Issued, SLOW_DOWN_STEP,
    State,
};
use crate::wire::{Incoming, Members, OidcError, OidcErrorKind, Resp, json_ok};

use OidcErrorKind::*;

fn answer(result: Result<Value, OidcError>) -> Resp {
    match result {
        Ok(v) => json_ok(&v),
        Err(e) => e.response(),
    }
}

/// `POST /client/register`
pub(crate) fn register_client(st: &mut State, req: &Incoming<'_>) -> Resp {
    answer(register(st, req))
}

fn register(st: &mut State, req: &Incoming<'_>) -> Result<Value, OidcError> {
    let m = Members::parse(
        req,
        &[
            "clientName",
            "clientType",
            "scopes",
            "redirectUris",
            "grantTypes",
            "issuerUrl",
            "entitledApplicationArn",
        ],
    )?;
    m.required_str("clientName")?;
    let client_type = m.required_str("clientType")?;
    let scopes = m.optional_list("scopes")?.unwrap_or_default();
    let grant_types = m.optional_list("grantTypes")?;
    let redirect_uris = m.optional_list("redirectUris")?.unwrap_or_default();
    let issuer = m.optional_str("issuerUrl")?;
    let arn = m.optional_str("entitledApplicationArn")?;

    if client_type != "public" {
        return Err(OidcError::new(
            InvalidClientMetadata,
            format!("Invalid client type {client_type:?}; only \"public\" is supported"),
        ));
    }
    if let Some(bad) = scopes
        .iter()
        .find(|s| s.is_empty() || s.contains(char::is_whitespace))
    {
        return Err(OidcError::new(
            InvalidScope,
            format!("Invalid scope {bad:?}"),
        ));
    }
    let supported = [GRANT_DEVICE, GRANT_REFRESH, GRANT_AUTH_CODE];
    if let Some(bad) = grant_types
        .iter()
        .flatten()
        .find(|g| !supported.contains(&g.as_str()))
    {
        return Err(OidcError::new(
            UnsupportedGrantType,
            format!("Unsupported grant type {bad:?}"),
        ));
    }
    if let Some(bad) = redirect_uris.iter().find(|u| !acceptable_redirect_uri(u)) {
        return Err(OidcError::new(
            InvalidRedirectUri,
            format!("Invalid redirect URI {bad:?}"),
        ));
    }
    let wants_auth_code = grant_types.iter().flatten().any(|g| g == GRANT_AUTH_CODE);
    if wants_auth_code && redirect_uris.is_empty() {
        return Err(OidcError::new(
            InvalidRedirectUri,
            "The authorization_code grant requires redirectUris",
        ));
    }
    if let Some(issuer) = issuer
        && !is_web_url(&issuer)
    {
        return Err(OidcError::invalid_request(format!(
            "Invalid issuerUrl {issuer:?}"
        )));
    }
    if let Some(arn) = arn
        && !arn.starts_with("arn:")
    {
        return Err(OidcError::invalid_request(format!(
            "Invalid entitledApplicationArn {arn:?}"
        )));
    }

    let client_id = format!("fake-client-{}", crate::wire::random_alnum(22));
    let secret = st.issue_secret("fake-cs-");
    let now = st.clock.now();
    let secret_expires = now + st.cfg.client_secret_ttl;
    let body = json!({
        "clientId": client_id,
        "clientSecret": secret,
        "clientIdIssuedAt": st.clock.epoch_secs(now),
        "clientSecretExpiresAt": st.clock.epoch_secs(secret_expires),
        "authorizationEndpoint": null,
        "tokenEndpoint": null,
    });
    st.clients.insert(
        client_id,
        Client {
            secret,
            secret_expires,
            scopes,
            grant_types,
            redirect_uris,
        },
    );
    Ok(body)
}

fn is_web_url(s: &str) -> bool {
    url::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.has_host())
}

/// Registered redirect URIs: https anywhere, http only to a loopback IP literal; no fragment.
fn acceptable_redirect_uri(s: &str) -> bool {
    let Ok(u) = url::Url::parse(s) else {
        return false;
    };
    if u.fragment().is_some() {
        return false;
    }
    match u.scheme() {
        "https" => u.has_host(),
        "http" => crate::authorize::is_loopback_ip(&u),
        _ => false,
    }
}

/// `POST /device_authorization`
pub(crate) fn start_device_authorization(st: &mut State, req: &Incoming<'_>, base: &str) -> Resp {
    answer(start_device(st, req, base))
}

fn start_device(st: &mut State, req: &Incoming<'_>, base: &str) -> Result<Value, OidcError> {
    let m = Members::parse(req, &["clientId", "clientSecret", "startUrl"])?;
    let client_id = m.required_str("clientId")?;
    let secret = m.required_str("clientSecret")?;
    let start_url = m.required_str("startUrl")?;
    let client = st.authenticate(&client_id, &secret)?;
    if !client.allows_grant(GRANT_DEVICE) {
        return Err(OidcError::new(
            UnauthorizedClient,
            "The client is not registered for the device_code grant",
        ));
    }
    if !is_web_url(&start_url) {
        return Err(OidcError::invalid_request(format!(
            "Invalid startUrl {start_url:?}"
        )));
    }
    let (device_code, user_code) = st.new_device(&client_id);
    Ok(json!({
        "deviceCode": device_code,
        "userCode": user_code,
        "verificationUri": format!("{base}/device"),
        "verificationUriComplete": format!("{base}/device?user_code={user_code}"),
        "expiresIn": st.cfg.device_code_ttl.as_secs(),
        "interval": st.cfg.device_interval_secs,
    }))
}

const TOKEN_MEMBERS: &[&str] = &[
    "clientId",
    "clientSecret",
    "grantType",
    "deviceCode",
    "code",
    "refreshToken",
    "scope",
    "redirectUri",
    "codeVerifier",
];

/// `POST /token`
pub(crate) fn create_token(st: &mut State, req: &Incoming<'_>) -> Resp {
    answer(token(st, req))
}

fn token(st: &mut State, req: &Incoming<'_>) -> Result<Value, OidcError> {
    let m = Members::parse(req, TOKEN_MEMBERS)?;
    let client_id = m.required_str("clientId")?;
    let secret = m.required_str("clientSecret")?;
    let grant = m.required_str("grantType")?;
    // Model doc: `scope` has no effect; it is still type-checked.
    m.optional_list("scope")?;
    for name in [
        "deviceCode",
        "code",
        "refreshToken",
        "redirectUri",
        "codeVerifier",
    ] {
        m.optional_str(name)?;
    }
    let client = st.authenticate(&client_id, &secret)?;
    let own: &[&str] = match grant.as_str() {
        GRANT_DEVICE => &["deviceCode"],
        GRANT_REFRESH => &["refreshToken"],
        GRANT_AUTH_CODE => &["code", "redirectUri", "codeVerifier"],
        other => {
            return Err(OidcError::new(
                UnsupportedGrantType,
                format!("Unsupported grant type {other:?}"),
            ));
        }
    };
    if !client.allows_grant(&grant) {
        return Err(OidcError::new(
            UnauthorizedClient,
            format!("The client is not registered for the {grant} grant"),
        ));
    }
    // Members of another grant mean the caller mixed up its flows: refuse rather than ignore.
    let grant_members = [
        "deviceCode",
        "code",
        "refreshToken",
        "redirectUri",
        "codeVerifier",
    ];
    if let Some(stray) = grant_members.iter().find(|n| !own.contains(n) && m.has(n)) {
        return Err(OidcError::invalid_request(format!(
            "{stray} is not valid for grant {grant}"
        )));
    }
    let issued = match grant.as_str() {
        GRANT_DEVICE => device_grant(st, &client_id, &m.required_str("deviceCode")?)?,
        GRANT_REFRESH => st.refresh(&client_id, &m.required_str("refreshToken")?)?,
        _ => code_grant(
            st,
            &client_id,
            &m.required_str("code")?,
            &m.required_str("redirectUri")?,
            &m.required_str("codeVerifier")?,
        )?,
    };
    Ok(json!({
        "accessToken": issued.access_token,
        "tokenType": "Bearer",
        "expiresIn": st.cfg.access_token_ttl.as_secs(),
        "refreshToken": issued.refresh_token,
        "idToken": null,
    }))
}

fn device_grant(st: &mut State, client_id: &str, device_code: &str) -> Result<Issued, OidcError> {
    let now = st.clock.now();
    let enforce = st.cfg.enforce_poll_interval;
    let Some(d) = st.devices.get_mut(device_code) else {
        return Err(OidcError::new(InvalidGrant, "Invalid device code provided"));
    };
    if d.client_id != client_id {
        return Err(OidcError::new(
            InvalidGrant,
            "Device code was issued to another client",
        ));
    }
    if d.status == DeviceStatus::Consumed {
        return Err(OidcError::new(
            InvalidGrant,
            "Device code has already been used",
        ));
    }
    if now >= d.expires {
        return Err(OidcError::new(ExpiredToken, "Device code has expired"));
    }
    let previous = d.last_poll.replace(now);
    match d.status {
        DeviceStatus::Denied => Err(OidcError::new(AccessDenied, "Access denied by the user")),
        DeviceStatus::Pending => {
            let min_gap = std::time::Duration::from_secs(d.interval);
            // A quarter of the interval (at most 250 ms) absorbs timer jitter on the client.
            let slack = (min_gap / 4).min(std::time::Duration::from_millis(250));
            let too_fast = previous.is_some_and(|p| now.duration_since(p) + slack < min_gap);
            if enforce && too_fast {
                d.interval += SLOW_DOWN_STEP;
                return Err(OidcError::new(SlowDown, "Client is polling too fast"));
            }
            Err(OidcError::new(
                AuthorizationPending,
                "Authorization is still pending",
            ))
        }
        DeviceStatus::Approved | DeviceStatus::Consumed => {
            d.status = DeviceStatus::Consumed;
            let scopes = st
                .clients
                .get(client_id)
                .map(|c| c.scopes.clone())
                .unwrap_or_default();
            Ok(st.issue_for_new_chain(client_id, scopes))
        }
    }
}

fn code_grant(
    st: &mut State,
    client_id: &str,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<Issued, OidcError> {
    let now = st.clock.now();
    let invalid = |d: &str| OidcError::new(InvalidGrant, d);
    let Some(c) = st.codes.get_mut(code) else {
        return Err(invalid("Invalid authorization code provided"));
    };
    if c.used {
        return Err(invalid("Authorization code has already been used"));
    }
    if c.client_id != client_id {
        return Err(invalid("Authorization code was issued to another client"));
    }
    // Any exchange attempt burns the code, so a wrong verifier cannot be retried.
    c.used = true;
    if now >= c.expires {
        return Err(invalid("Authorization code has expired"));
    }
    if c.redirect_uri != redirect_uri {
        return Err(invalid(
            "redirectUri does not match the one sent to /authorize",
        ));
    }
    if !valid_verifier(verifier) || pkce_challenge(verifier) != c.challenge {
        return Err(invalid(
            "PKCE code verifier does not match the code challenge",
        ));
    }
    let scopes = c.scopes.clone();
    Ok(st.issue_for_new_chain(client_id, scopes))
}

/// RFC 7636 §4.1: 43–128 characters of `A-Z a-z 0-9 - . _ ~`.
fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// S256: base64url(SHA-256(verifier)) without padding.
pub(crate) fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifier_alphabet_and_length() {
        assert!(valid_verifier(&"a".repeat(43)));
        assert!(!valid_verifier(&"a".repeat(42)));
        assert!(!valid_verifier(&"a".repeat(129)));
        assert!(!valid_verifier(&format!("{}+", "a".repeat(50))));
    }

    #[test]
    fn redirect_uris_must_be_https_or_loopback_http() {
        assert!(acceptable_redirect_uri("http://127.0.0.1/oauth/callback"));
        assert!(acceptable_redirect_uri("http://[::1]:8080/cb"));
        assert!(acceptable_redirect_uri("https://example.com/cb"));
        assert!(!acceptable_redirect_uri("http://example.com/cb"));
        assert!(!acceptable_redirect_uri("http://localhost/cb"));
        assert!(!acceptable_redirect_uri("http://127.0.0.1/cb#frag"));
        assert!(!acceptable_redirect_uri("not a url"));
    }
}

//! Request and response members of RegisterClient, StartDeviceAuthorization and CreateToken.

use serde::{Deserialize, Serialize};

use crate::secret::{Secret, serialize_exposed, serialize_exposed_opt};

pub const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";

/// Largest lifetime or interval taken from an answer, in seconds (a year; no token, device
/// code or poll interval comes near it). Larger values are cut to it, so `now + seconds`
/// cannot leave the calendar's range (it panicked on `"expiresIn": 1e15`).
pub const MAX_SECONDS: i64 = 366 * 86400;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterClientRequest {
    pub client_name: String,
    pub client_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entitled_application_arn: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterClientResponse {
    pub client_id: String,
    pub client_secret: Secret,
    #[serde(default, deserialize_with = "null_as_zero")]
    pub client_id_issued_at: i64,
    /// Epoch seconds.
    #[serde(default, deserialize_with = "null_as_zero")]
    pub client_secret_expires_at: i64,
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartDeviceAuthorizationRequest {
    pub client_id: String,
    #[serde(serialize_with = "serialize_exposed")]
    pub client_secret: Secret,
    pub start_url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceAuthorization {
    pub device_code: Secret,
    pub user_code: String,
    pub verification_uri: String,
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    /// Seconds, at most `MAX_SECONDS`.
    #[serde(default, deserialize_with = "seconds")]
    pub expires_in: i64,
    /// Seconds, at most `MAX_SECONDS`; absent or 0 means the RFC 8628 default of 5.
    #[serde(default, deserialize_with = "seconds_opt")]
    pub interval: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateTokenRequest {
    pub client_id: String,
    #[serde(serialize_with = "serialize_exposed")]
    pub client_secret: Secret,
    pub grant_type: String,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_exposed_opt"
    )]
    pub device_code: Option<Secret>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_exposed_opt"
    )]
    pub code: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_exposed_opt"
    )]
    pub code_verifier: Option<Secret>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_exposed_opt"
    )]
    pub refresh_token: Option<Secret>,
    /// The model's `scope` (singular key, list value); AWS ignores it and botocore never
    /// sends it, so neither do we.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Vec<String>>,
}

impl CreateTokenRequest {
    fn base(client_id: &str, client_secret: &Secret, grant: &str) -> Self {
        Self {
            client_id: client_id.to_string(),
            client_secret: client_secret.clone(),
            grant_type: grant.to_string(),
            device_code: None,
            code: None,
            redirect_uri: None,
            code_verifier: None,
            refresh_token: None,
            scope: None,
        }
    }

    pub fn device_code(client_id: &str, client_secret: &Secret, device_code: &Secret) -> Self {
        Self {
            device_code: Some(device_code.clone()),
            ..Self::base(client_id, client_secret, GRANT_DEVICE_CODE)
        }
    }

    pub fn refresh_token(client_id: &str, client_secret: &Secret, refresh_token: &Secret) -> Self {
        Self {
            refresh_token: Some(refresh_token.clone()),
            ..Self::base(client_id, client_secret, GRANT_REFRESH_TOKEN)
        }
    }

    pub fn authorization_code(
        client_id: &str,
        client_secret: &Secret,
        code: &Secret,
        redirect_uri: &str,
        code_verifier: &Secret,
    ) -> Self {
        Self {
            code: Some(code.clone()),
            redirect_uri: Some(redirect_uri.to_string()),
            code_verifier: Some(code_verifier.clone()),
            ..Self::base(client_id, client_secret, GRANT_AUTHORIZATION_CODE)
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    pub access_token: Secret,
    #[serde(default)]
    pub token_type: Option<String>,
    /// Seconds from now, at most `MAX_SECONDS`.
    #[serde(default, deserialize_with = "seconds")]
    pub expires_in: i64,
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    #[serde(default)]
    pub id_token: Option<Secret>,
}

/// Smithy's default for an absent or null number is 0.
fn null_as_zero<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(Option::<i64>::deserialize(d)?.unwrap_or(0))
}

/// A duration in seconds: null is 0, larger than `MAX_SECONDS` is `MAX_SECONDS`.
fn seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    null_as_zero(d).map(|s| s.min(MAX_SECONDS))
}

fn seconds_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(Option::<i64>::deserialize(d)?.map(|s| s.min(MAX_SECONDS)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_match_the_wire() {
        let s = Secret::new("csec");
        let v = serde_json::to_value(CreateTokenRequest::device_code(
            "cid",
            &s,
            &Secret::new("dc"),
        ))
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"grantType": GRANT_DEVICE_CODE, "clientId": "cid", "clientSecret": "csec", "deviceCode": "dc"})
        );
        let v = serde_json::to_value(CreateTokenRequest::refresh_token(
            "cid",
            &s,
            &Secret::new("rt"),
        ))
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"grantType": "refresh_token", "clientId": "cid", "clientSecret": "csec", "refreshToken": "rt"})
        );
        let v = serde_json::to_value(CreateTokenRequest::authorization_code(
            "cid",
            &s,
            &Secret::new("c"),
            "http://127.0.0.1:5/oauth/callback",
            &Secret::new("v"),
        ))
        .unwrap();
        assert_eq!(v["redirectUri"], "http://127.0.0.1:5/oauth/callback");
        assert_eq!(v["codeVerifier"], "v");
        let v = serde_json::to_value(RegisterClientRequest {
            client_name: "n".into(),
            client_type: "public".into(),
            scopes: Some(vec!["sso:account:access".into()]),
            redirect_uris: None,
            grant_types: None,
            issuer_url: None,
            entitled_application_arn: None,
        })
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"clientName": "n", "clientType": "public", "scopes": ["sso:account:access"]})
        );
    }

    #[test]
    fn responses_tolerate_explicit_nulls() {
        let r: RegisterClientResponse = serde_json::from_str(r#"{"authorizationEndpoint":null,"clientId":"c","clientIdIssuedAt":1767552707,"clientSecret":"eyJ","clientSecretExpiresAt":1775328707,"tokenEndpoint":null}"#).unwrap();
        assert_eq!(
            r.client_secret_expires_at - r.client_id_issued_at,
            7_776_000
        );
        let t: TokenResponse = serde_json::from_str(r#"{"accessToken":"a","tokenType":"Bearer","expiresIn":28800,"refreshToken":null,"idToken":null}"#).unwrap();
        assert!(t.refresh_token.is_none());
        let d: DeviceAuthorization = serde_json::from_str(r#"{"deviceCode":"d","userCode":"U","verificationUri":"v","verificationUriComplete":null,"expiresIn":600,"interval":null}"#).unwrap();
        assert_eq!((d.expires_in, d.interval), (600, None));
        assert!(!format!("{t:?}{d:?}{r:?}").contains("eyJ"));
    }

    /// Found by the oidc_response fuzz target: `now + expiresIn` panicked past year 9999.
    #[test]
    fn huge_durations_are_cut_to_a_year() {
        let t: TokenResponse =
            serde_json::from_str(r#"{"accessToken":"a","expiresIn":9223372036854775807}"#).unwrap();
        assert_eq!(t.expires_in, MAX_SECONDS);
        let d: DeviceAuthorization = serde_json::from_str(r#"{"deviceCode":"d","userCode":"U","verificationUri":"v","expiresIn":1000000000000000,"interval":1000000000000000}"#).unwrap();
        assert_eq!((d.expires_in, d.interval), (MAX_SECONDS, Some(MAX_SECONDS)));
        let now = time::macros::datetime!(9000-01-01 0:00 UTC);
        let _ = now + std::time::Duration::from_secs(t.expires_in.unsigned_abs());
        let d: DeviceAuthorization = serde_json::from_str(
            r#"{"deviceCode":"d","userCode":"U","verificationUri":"v","expiresIn":-5,"interval":null}"#,
        )
        .unwrap();
        assert_eq!((d.expires_in, d.interval), (-5, None));
    }
}

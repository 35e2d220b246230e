//! What the daemon persists, and under which keys: one item per session (tokens plus the
//! client registration its refresh chain is bound to) and one per reusable registration.
//! One item per session keeps a rotated refresh token and its client in a single atomic write.
//! Must not: talk to a backend (that is `SecretStore`) or decide anything about expiry.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::clock::serde_rfc3339;
use crate::secret::{Secret, serialize_exposed, serialize_exposed_opt};

/// Format version of the records below; bump on incompatible change.
pub const RECORD_VERSION: u32 = 1;

/// A registered OIDC client (RegisterClient's answer plus what it was registered for).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientRecord {
    pub client_id: String,
    #[serde(serialize_with = "serialize_exposed")]
    pub client_secret: Secret,
    #[serde(with = "serde_rfc3339")]
    pub client_id_issued_at: OffsetDateTime,
    #[serde(with = "serde_rfc3339")]
    pub client_secret_expires_at: OffsetDateTime,
    pub region: String,
    pub scopes: Vec<String>,
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub issuer_url: Option<String>,
    /// The OIDC endpoint it was registered at: a client is only valid there.
    pub endpoint: String,
}

/// A session's tokens, bound to the client that issued them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    pub version: u32,
    pub session: String,
    pub start_url: String,
    pub region: String,
    #[serde(serialize_with = "serialize_exposed")]
    pub access_token: Secret,
    #[serde(with = "serde_rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When the access token was issued (its lifetime drives the refresh schedule).
    #[serde(with = "serde_rfc3339")]
    pub issued_at: OffsetDateTime,
    #[serde(default, serialize_with = "serialize_exposed_opt")]
    pub refresh_token: Option<Secret>,
    #[serde(default, with = "serde_rfc3339::option")]
    pub last_refresh_at: Option<OffsetDateTime>,
    pub client: ClientRecord,
}

impl TokenRecord {
    pub fn to_secret(&self) -> Result<Secret, serde_json::Error> {
        serde_json::to_string(self).map(Secret::new)
    }

    /// Decodes a stored record; a record of another version or shape is an error the caller
    /// treats as "nothing stored" (and logs), never a panic.
    pub fn from_secret(s: &Secret) -> Result<Self, RecordError> {
        let rec: Self = serde_json::from_str(s.expose()).map_err(|e| RecordError(e.to_string()))?;
        if rec.version != RECORD_VERSION {
            return Err(RecordError(format!(
                "unsupported record version {}",
                rec.version
            )));
        }
        Ok(rec)
    }
}

impl ClientRecord {
    pub fn to_secret(&self) -> Result<Secret, serde_json::Error> {
        serde_json::to_string(self).map(Secret::new)
    }

    pub fn from_secret(s: &Secret) -> Result<Self, RecordError> {
        serde_json::from_str(s.expose()).map_err(|e| RecordError(e.to_string()))
    }
}

/// A stored value that does not decode. The message comes from serde and names the field,
/// not its value (serde_json does not echo string contents in its errors).
#[derive(Debug, thiserror::Error)]
#[error("stored record does not decode: {0}")]
pub struct RecordError(pub String);

/// Key of a session's token record. The start URL, region and OIDC endpoint are part of it,
/// so a session that is re-pointed elsewhere starts clean and never replays tokens (or its
/// client secret) to another issuer, and its old chain stays intact for when it comes back.
pub fn token_key(session: &str, start_url: &str, region: &str, endpoint: &str) -> String {
    format!(
        "token/{session}/{}",
        short_hash(&[start_url, region, endpoint])
    )
}

/// The key records had before the endpoint was part of it; read once to adopt such a record
/// (only when its client was registered at the same endpoint), never written.
pub fn legacy_token_key(session: &str, start_url: &str, region: &str) -> String {
    format!("token/{session}/{}", short_hash(&[start_url, region]))
}

/// Key of a reusable registration: one per (endpoint, region, scopes, grant types, issuer).
pub fn registration_key(
    endpoint: &str,
    region: &str,
    scopes: &[String],
    grant_types: &[String],
    issuer_url: Option<&str>,
) -> String {
    let scopes = scopes.join(",");
    let grants = grant_types.join(",");
    let hash = short_hash(&[endpoint, region, &scopes, &grants, issuer_url.unwrap_or("")]);
    format!("registration/{region}/{hash}")
}

fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let digest = h.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn client() -> ClientRecord {
        ClientRecord {
            client_id: "cid".into(),
            client_secret: Secret::new("fake-cs-1"),
            client_id_issued_at: datetime!(2026-01-01 0:00 UTC),
            client_secret_expires_at: datetime!(2026-04-01 0:00 UTC),
            region: "eu-west-1".into(),
            scopes: vec!["sso:account:access".into()],
            grant_types: vec!["refresh_token".into()],
            issuer_url: None,
            endpoint: "https://oidc.eu-west-1.amazonaws.com/".into(),
        }
    }

    #[test]
    fn token_record_round_trips_and_debug_is_redacted() {
        let rec = TokenRecord {
            version: RECORD_VERSION,
            session: "corp".into(),
            start_url: "https://d-1.awsapps.com/start".into(),
            region: "eu-west-1".into(),
            access_token: Secret::new("fake-at-1"),
            expires_at: datetime!(2026-01-01 8:00 UTC),
            issued_at: datetime!(2026-01-01 0:00 UTC),
            refresh_token: Some(Secret::new("fake-rt-1")),
            last_refresh_at: None,
            client: client(),
        };
        let s = rec.to_secret().unwrap();
        assert!(s.expose().contains("fake-rt-1"));
        let back = TokenRecord::from_secret(&s).unwrap();
        assert_eq!(back, rec);
        let dbg = format!("{rec:?}");
        for secret in ["fake-at-1", "fake-rt-1", "fake-cs-1"] {
            assert!(!dbg.contains(secret), "{secret} leaked into Debug");
        }
    }

    #[test]
    fn garbage_and_other_versions_are_errors() {
        assert!(TokenRecord::from_secret(&Secret::new("not json")).is_err());
        assert!(TokenRecord::from_secret(&Secret::new(r#"{"version": 99}"#)).is_err());
        assert!(ClientRecord::from_secret(&Secret::new("{}")).is_err());
    }

    #[test]
    fn keys_separate_what_must_not_be_shared() {
        let e = "https://oidc.eu-west-1.amazonaws.com/";
        let a = token_key("corp", "https://a/start", "eu-west-1", e);
        assert_ne!(a, token_key("corp", "https://b/start", "eu-west-1", e));
        assert_ne!(a, token_key("corp", "https://a/start", "us-east-1", e));
        assert_ne!(
            a,
            token_key(
                "corp",
                "https://a/start",
                "eu-west-1",
                "http://127.0.0.1:4566/"
            )
        );
        assert_ne!(a, legacy_token_key("corp", "https://a/start", "eu-west-1"));
        assert!(a.starts_with("token/corp/"));
        let s = vec!["sso:account:access".to_string()];
        let dev = vec!["refresh_token".to_string()];
        let auth = vec!["authorization_code".to_string()];
        assert_ne!(
            registration_key("e", "r", &s, &dev, None),
            registration_key("e", "r", &s, &auth, None)
        );
        assert_ne!(
            registration_key("e1", "r", &s, &dev, None),
            registration_key("e2", "r", &s, &dev, None)
        );
    }
}

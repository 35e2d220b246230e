//! `Secret`: the one type that holds tokens, refresh tokens and client secrets.
//! Redacted in `Debug`/`Display`, wiped on drop, and not `Serialize` unless a field opts in
//! with `#[serde(serialize_with = "crate::secret::serialize_exposed")]`.
//! Must not: offer any way to read the value other than `expose()` (grep it to audit reads).

use std::fmt;

use serde::{Deserialize, Deserializer, Serializer};
use zeroize::Zeroizing;

/// A secret string: redacted when printed, zeroized when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The only read access. Every call site is a place where a secret leaves this type.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

/// `serialize_with` for the few places a secret must be written: requests to AWS, the
/// keyring record, the token answer and the opt-in AWS CLI cache.
pub fn serialize_exposed<S: Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose())
}

/// `serialize_with` for an optional secret.
pub fn serialize_exposed_opt<S: Serializer>(
    secret: &Option<Secret>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(v) => s.serialize_some(v.expose()),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let s = Secret::new("fake-at-123");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            token: Secret,
        }
        let h = Holder { token: s.clone() };
        assert!(!format!("{h:?}").contains("fake-at-123"));
        assert_eq!(s.expose(), "fake-at-123");
    }

    #[test]
    fn serializes_only_when_opted_in() {
        #[derive(serde::Serialize)]
        struct Out {
            #[serde(serialize_with = "serialize_exposed")]
            t: Secret,
        }
        let json = serde_json::to_string(&Out {
            t: Secret::new("v"),
        })
        .unwrap_or_default();
        assert_eq!(json, r#"{"t":"v"}"#);
        let back: Secret = serde_json::from_str("\"w\"").unwrap_or_else(|_| Secret::new(""));
        assert_eq!(back.expose(), "w");
    }
}

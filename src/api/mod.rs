//! The local API's vocabulary: the JSON envelope, error codes and the data of every route.
//! Shared by the daemon and the CLI so they cannot disagree about a field.
//! Must not: do I/O, hold policy, or serialize a secret except the token answer.

mod types;

pub use types::*;

use serde::{Deserialize, Serialize};

/// Every answer on the socket: `{"success": true, "data": …}` or
/// `{"success": false, "error": {"code": …, "message": …}}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
}

impl<T> Envelope<T> {
    pub fn ok(data: T) -> Self {
        Self {
            success: true,
            data: Some(data),
            error: None,
        }
    }

    pub fn err(error: ApiError) -> Self {
        Self {
            success: false,
            data: None,
            error: Some(error),
        }
    }

    /// The data of a successful answer, or its error (a malformed envelope is `INTERNAL`).
    pub fn into_result(self) -> Result<T, ApiError> {
        match (self.success, self.data, self.error) {
            (true, Some(data), _) => Ok(data),
            (false, _, Some(err)) => Err(err),
            _ => Err(ApiError::new(
                ErrorCode::Internal,
                "the daemon sent a malformed answer",
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// The error codes of SPEC.md with their HTTP statuses. Unknown codes from a newer daemon
/// deserialize as `Internal` rather than failing the whole answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    ValidationError,
    LoginRequired,
    Forbidden,
    NotFound,
    LoginPending,
    PayloadTooLarge,
    UpstreamError,
    StoreUnavailable,
    Timeout,
    #[serde(other)]
    Internal,
}

impl ErrorCode {
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::ValidationError => 400,
            ErrorCode::LoginRequired => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::LoginPending => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::Internal => 500,
            ErrorCode::UpstreamError => 502,
            ErrorCode::StoreUnavailable => 503,
            ErrorCode::Timeout => 504,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ValidationError => "VALIDATION_ERROR",
            ErrorCode::LoginRequired => "LOGIN_REQUIRED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::LoginPending => "LOGIN_PENDING",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::UpstreamError => "UPSTREAM_ERROR",
            ErrorCode::StoreUnavailable => "STORE_UNAVAILABLE",
            ErrorCode::Timeout => "TIMEOUT",
        }
    }
}

/// Route paths, built in one place for client and server.
pub mod paths {
    pub const STATUS: &str = "/v1/status";

    fn enc(name: &str) -> String {
        percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string()
    }

    pub fn token(session: &str) -> String {
        format!("/v1/sessions/{}/token", enc(session))
    }

    pub fn login(session: &str) -> String {
        format!("/v1/sessions/{}/login", enc(session))
    }

    pub fn credentials(profile: &str) -> String {
        format!("/v1/profiles/{}/credentials", enc(profile))
    }

    /// `POST`: registers an `exec` and holds the connection while it runs (docs/CONTRACT-NOTES.md).
    pub const EXEC: &str = "/v1/exec";

    pub fn logout(session: &str) -> String {
        format!("/v1/sessions/{}/logout", enc(session))
    }

    /// `refresh`: ask the portal again instead of the daemon's brief cache.
    pub fn accounts(session: &str, refresh: bool) -> String {
        let query = if refresh { "?refresh=true" } else { "" };
        format!("/v1/sessions/{}/accounts{query}", enc(session))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_shapes_match_the_spec() {
        let ok = serde_json::to_value(Envelope::ok(serde_json::json!({"a": 1}))).unwrap();
        assert_eq!(ok, serde_json::json!({"success": true, "data": {"a": 1}}));
        let err = serde_json::to_value(Envelope::<()>::err(ApiError::new(
            ErrorCode::LoginRequired,
            "run sso-agent login",
        )))
        .unwrap();
        assert_eq!(
            err,
            serde_json::json!({"success": false, "error": {"code": "LOGIN_REQUIRED", "message": "run sso-agent login"}})
        );
    }

    #[test]
    fn codes_map_to_statuses_and_names() {
        for (code, status, name) in [
            (ErrorCode::ValidationError, 400, "VALIDATION_ERROR"),
            (ErrorCode::LoginRequired, 401, "LOGIN_REQUIRED"),
            (ErrorCode::Forbidden, 403, "FORBIDDEN"),
            (ErrorCode::NotFound, 404, "NOT_FOUND"),
            (ErrorCode::LoginPending, 409, "LOGIN_PENDING"),
            (ErrorCode::PayloadTooLarge, 413, "PAYLOAD_TOO_LARGE"),
            (ErrorCode::Internal, 500, "INTERNAL"),
            (ErrorCode::UpstreamError, 502, "UPSTREAM_ERROR"),
            (ErrorCode::StoreUnavailable, 503, "STORE_UNAVAILABLE"),
            (ErrorCode::Timeout, 504, "TIMEOUT"),
        ] {
            assert_eq!(code.http_status(), status);
            assert_eq!(code.as_str(), name);
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::json!(name));
        }
        let unknown: ErrorCode = serde_json::from_str("\"SOMETHING_NEW\"").unwrap();
        assert_eq!(unknown, ErrorCode::Internal);
    }

    #[test]
    fn session_names_are_escaped_in_paths() {
        assert_eq!(paths::token("corp"), "/v1/sessions/corp/token");
        assert_eq!(paths::login("a b/c"), "/v1/sessions/a%20b%2Fc/login");
    }
}

//! OIDC errors: the exception name from `x-amzn-ErrorType` (cut at `:`, after the last `#`),
//! else the body's `__type`/`code`/`Code`, else the OAuth `error` value mapped through the
//! model's table (WIRE.md §2.2–2.3). Never classified by HTTP status alone. The body is read
//! by `upstream::ErrorBody`, shared with the portal.

use http::HeaderMap;

use crate::upstream::{ErrorBody, UpstreamError};

#[derive(Debug, Clone, thiserror::Error)]
pub enum OidcError {
    #[error("authorization pending")]
    AuthorizationPending { message: String },
    #[error("polling too fast (SlowDownException)")]
    SlowDown { message: String },
    #[error("ExpiredTokenException: {message}")]
    ExpiredToken { message: String },
    #[error("AccessDeniedException: {message}")]
    AccessDenied { message: String },
    #[error("InvalidGrantException: {message}")]
    InvalidGrant { message: String },
    #[error("InvalidClientException: {message}")]
    InvalidClient { message: String },
    #[error("UnauthorizedClientException: {message}")]
    UnauthorizedClient { message: String },
    #[error("UnsupportedGrantTypeException: {message}")]
    UnsupportedGrantType { message: String },
    #[error("InvalidScopeException: {message}")]
    InvalidScope { message: String },
    #[error("InvalidRequestException: {message}")]
    InvalidRequest { message: String },
    #[error("InvalidClientMetadataException: {message}")]
    InvalidClientMetadata { message: String },
    #[error("InvalidRedirectUriException: {message}")]
    InvalidRedirectUri { message: String },
    #[error("InternalServerException: {message}")]
    InternalServer { message: String },
    #[error("{name} (HTTP {status}): {message}")]
    Other {
        name: String,
        status: u16,
        message: String,
    },
    #[error("HTTP {status}: {message}")]
    Http { status: u16, message: String },
    #[error("the request timed out")]
    Timeout,
    #[error("cannot reach the service: {0}")]
    Connect(String),
    #[error("the answer is not understood: {0}")]
    Malformed(String),
}

impl OidcError {
    /// Worth retrying with back-off: server faults, throttling, network trouble, garbage.
    pub fn is_transient(&self) -> bool {
        match self {
            OidcError::InternalServer { .. }
            | OidcError::SlowDown { .. }
            | OidcError::Timeout
            | OidcError::Connect(_)
            | OidcError::Malformed(_) => true,
            OidcError::Http { status, .. } | OidcError::Other { status, .. } => {
                *status >= 500 || *status == 429
            }
            _ => false,
        }
    }

    /// The refresh token (or the client it is bound to) will never work again: invalid_grant
    /// (revoked/expired/rotated-out refresh token), invalid_client (client secret expired or
    /// client deleted), unauthorized_client / unsupported_grant_type (the client may not
    /// refresh), expired_token. A new login is the only way on.
    pub fn ends_refresh_chain(&self) -> bool {
        matches!(
            self,
            OidcError::InvalidGrant { .. }
                | OidcError::InvalidClient { .. }
                | OidcError::UnauthorizedClient { .. }
                | OidcError::UnsupportedGrantType { .. }
                | OidcError::ExpiredToken { .. }
                | OidcError::AccessDenied { .. }
        )
    }

    /// Builds the typed error of a non-2xx answer.
    pub fn from_response(status: u16, headers: &HeaderMap, body: &[u8]) -> OidcError {
        let ErrorBody {
            name,
            oauth_error,
            message,
        } = ErrorBody::parse(headers, body);
        let name = name.or_else(|| {
            oauth_error
                .as_deref()
                .and_then(oauth_name)
                .map(str::to_string)
        });
        let Some(name) = name else {
            return OidcError::Http {
                status,
                message: if message.is_empty() {
                    http::StatusCode::from_u16(status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("error")
                        .to_string()
                } else {
                    message
                },
            };
        };
        match name.as_str() {
            "AuthorizationPendingException" => OidcError::AuthorizationPending { message },
            "SlowDownException" => OidcError::SlowDown { message },
            "ExpiredTokenException" => OidcError::ExpiredToken { message },
            "AccessDeniedException" => OidcError::AccessDenied { message },
            "InvalidGrantException" => OidcError::InvalidGrant { message },
            "InvalidClientException" => OidcError::InvalidClient { message },
            "UnauthorizedClientException" => OidcError::UnauthorizedClient { message },
            "UnsupportedGrantTypeException" => OidcError::UnsupportedGrantType { message },
            "InvalidScopeException" => OidcError::InvalidScope { message },
            "InvalidRequestException" => OidcError::InvalidRequest { message },
            "InvalidClientMetadataException" => OidcError::InvalidClientMetadata { message },
            "InvalidRedirectUriException" => OidcError::InvalidRedirectUri { message },
            "InternalServerException" => OidcError::InternalServer { message },
            _ => OidcError::Other {
                name,
                status,
                message,
            },
        }
    }
}

/// An exchange that produced no answer: timeouts stay timeouts (transient), a redirect is an
/// HTTP error naming its target, an oversize answer is not understood.
impl From<UpstreamError> for OidcError {
    fn from(e: UpstreamError) -> Self {
        match e {
            UpstreamError::Timeout => OidcError::Timeout,
            UpstreamError::Transport(m) | UpstreamError::Client(m) => OidcError::Connect(m),
            UpstreamError::TooLarge { .. } => OidcError::Malformed(e.to_string()),
            UpstreamError::Redirected { status, .. } => OidcError::Http {
                status,
                message: e.to_string(),
            },
        }
    }
}

/// The exception an OAuth `error` value stands for (the sso-oidc model's table, WIRE.md
/// §2.2), used when the answer names no exception.
fn oauth_name(oauth: &str) -> Option<&'static str> {
    Some(match oauth {
        "authorization_pending" => "AuthorizationPendingException",
        "slow_down" => "SlowDownException",
        "expired_token" => "ExpiredTokenException",
        "access_denied" => "AccessDeniedException",
        "invalid_grant" => "InvalidGrantException",
        "invalid_client" => "InvalidClientException",
        "unauthorized_client" => "UnauthorizedClientException",
        "unsupported_grant_type" => "UnsupportedGrantTypeException",
        "invalid_scope" => "InvalidScopeException",
        "invalid_request" => "InvalidRequestException",
        "invalid_client_metadata" => "InvalidClientMetadataException",
        "invalid_redirect_uri" => "InvalidRedirectUriException",
        "server_error" => "InternalServerException",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, header: Option<&str>, body: &str) -> OidcError {
        let mut h = HeaderMap::new();
        if let Some(v) = header {
            h.insert("x-amzn-ErrorType", v.parse().unwrap());
        }
        OidcError::from_response(status, &h, body.as_bytes())
    }

    #[test]
    fn wire_table_rows() {
        // A: the real shape
        let e = err(
            400,
            Some(
                "AuthorizationPendingException:http://internal.amazon.com/coral/com.amazonaws.sso.oidc/",
            ),
            r#"{"error":"authorization_pending","error_description":"Authorization is still pending"}"#,
        );
        assert!(
            matches!(e, OidcError::AuthorizationPending { ref message } if message == "Authorization is still pending")
        );
        // B: no header → OAuth error value
        assert!(matches!(
            err(400, None, r#"{"error":"authorization_pending"}"#),
            OidcError::AuthorizationPending { .. }
        ));
        // C, D: __type / code
        assert!(matches!(
            err(
                400,
                None,
                r#"{"__type":"SlowDownException","error":"slow_down"}"#
            ),
            OidcError::SlowDown { .. }
        ));
        assert!(
            matches!(err(400, None, r#"{"code":"ExpiredTokenException","message":"m1"}"#), OidcError::ExpiredToken { ref message } if message == "m1")
        );
        // E: header wins over body
        assert!(matches!(
            err(
                400,
                Some("SlowDownException"),
                r#"{"__type":"AccessDeniedException","code":"InvalidGrantException"}"#
            ),
            OidcError::SlowDown { .. }
        ));
        // F: namespaced header
        assert!(matches!(
            err(
                400,
                Some("com.amazonaws.ssooidc#InvalidGrantException"),
                r#"{"error":"invalid_grant"}"#
            ),
            OidcError::InvalidGrant { .. }
        ));
        // G: 401 invalid client
        let e = err(
            401,
            Some("InvalidClientException:http://x/"),
            r#"{"error":"invalid_client","error_description":"Client credentials are invalid"}"#,
        );
        assert!(e.ends_refresh_chain() && !e.is_transient());
        // I: capital Message
        assert!(
            matches!(err(400, Some("InvalidRequestException"), r#"{"Message":"cap M"}"#), OidcError::InvalidRequest { ref message } if message == "cap M")
        );
        // J: unknown name
        assert!(
            matches!(err(400, Some("WeirdNewException"), r#"{"error":"weird"}"#), OidcError::Other { ref name, status: 400, .. } if name == "WeirdNewException")
        );
        // K: server error is transient
        assert!(
            err(
                500,
                Some("InternalServerException:http://x/"),
                r#"{"error":"server_error","error_description":"boom"}"#
            )
            .is_transient()
        );
        // L, M: empty 500, HTML 503
        assert!(
            matches!(err(500, None, ""), OidcError::Http { status: 500, ref message } if message == "Internal Server Error")
        );
        assert!(matches!(
            err(503, None, "<html>x</html>"),
            OidcError::Http { status: 503, .. }
        ));
        assert!(err(503, None, "<html>x</html>").is_transient());
        // N: non-JSON 400 becomes the message, not transient
        let e = err(400, None, "not json at all");
        assert!(
            matches!(e, OidcError::Http { status: 400, ref message } if message == "not json at all")
        );
        assert!(!e.is_transient());
        // O: 429 is transient
        assert!(err(429, None, r#"{"message":"rate"}"#).is_transient());
    }
}

//! The AWS SSO portal (`sso`, restJson1): role credentials for an access token, the account
//! and role listings (accounts.rs), and Logout (WIRE.md §7). Bearer header `x-amz-sso_bearer_token`; `expiration` in epoch milliseconds.
//! HTTP goes through `upstream` (client, caps, redirect refusal, error-body parse).
//! Must not: cache (session/ does) or log a secret.

mod accounts;

use serde::Deserialize;
use time::OffsetDateTime;
use url::Url;

use futures_core::future::BoxFuture;

use crate::secret::Secret;
use crate::upstream::{self, ErrorBody, UpstreamError, join};

pub use accounts::{AccountInfo, AccountPage, MAX_RESULT, RolePage};

#[derive(Debug, Clone)]
pub struct RoleCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Secret,
    pub expiration: OffsetDateTime,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum PortalError {
    #[error("UnauthorizedException: {message}")]
    Unauthorized { message: String },
    #[error("ForbiddenException: {message}")]
    Forbidden { message: String },
    #[error("ResourceNotFoundException: {message}")]
    ResourceNotFound { message: String },
    #[error("TooManyRequestsException: {message}")]
    TooManyRequests { message: String },
    #[error("InvalidRequestException: {message}")]
    InvalidRequest { message: String },
    #[error("{name} (HTTP {status}): {message}")]
    Other {
        name: String,
        status: u16,
        message: String,
    },
    #[error("HTTP {status}: {message}")]
    Http { status: u16, message: String },
    #[error("cannot reach the portal: {0}")]
    Transport(String),
    #[error("the portal's answer is not understood: {0}")]
    Malformed(String),
}

impl PortalError {
    /// Builds the typed error of a non-2xx answer: by exception name, else by status.
    pub fn from_response(status: u16, headers: &http::HeaderMap, body: &[u8]) -> PortalError {
        let ErrorBody { name, message, .. } = ErrorBody::parse(headers, body);
        match name.as_deref() {
            Some("UnauthorizedException") => PortalError::Unauthorized { message },
            Some("ForbiddenException") => PortalError::Forbidden { message },
            Some("ResourceNotFoundException") => PortalError::ResourceNotFound { message },
            Some("TooManyRequestsException") => PortalError::TooManyRequests { message },
            Some("InvalidRequestException") => PortalError::InvalidRequest { message },
            Some(other) => PortalError::Other {
                name: other.to_string(),
                status,
                message,
            },
            // No name: the status is all there is (an HTML 403 from a proxy, an empty 500).
            None if status == 401 => PortalError::Unauthorized { message },
            None if status == 403 => PortalError::Forbidden { message },
            None => PortalError::Http { status, message },
        }
    }
}

/// An exchange that produced no answer: a redirect is an HTTP error naming its target, an
/// oversize answer is not understood, the rest could not reach the portal.
impl From<UpstreamError> for PortalError {
    fn from(e: UpstreamError) -> Self {
        match e {
            UpstreamError::TooLarge { .. } => PortalError::Malformed(e.to_string()),
            UpstreamError::Redirected { status, .. } => PortalError::Http {
                status,
                message: e.to_string(),
            },
            UpstreamError::Timeout | UpstreamError::Transport(_) | UpstreamError::Client(_) => {
                PortalError::Transport(e.to_string())
            }
        }
    }
}

pub trait Portal: Send + Sync + 'static {
    fn get_role_credentials(
        &self,
        token: &Secret,
        account_id: &str,
        role_name: &str,
    ) -> BoxFuture<'_, Result<RoleCredentials, PortalError>>;
    fn logout(&self, token: &Secret) -> BoxFuture<'_, Result<(), PortalError>>;
    /// One page of ListAccounts (`next_token` from the previous page).
    fn list_accounts(
        &self,
        token: &Secret,
        next_token: Option<&str>,
    ) -> BoxFuture<'_, Result<AccountPage, PortalError>>;
    /// One page of ListAccountRoles for `account_id`.
    fn list_account_roles(
        &self,
        token: &Secret,
        account_id: &str,
        next_token: Option<&str>,
    ) -> BoxFuture<'_, Result<RolePage, PortalError>>;
}

pub struct HttpPortal {
    http: reqwest::Client,
    endpoint: Url,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetRoleCredentialsResponse {
    role_credentials: Option<RoleCredentialsWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleCredentialsWire {
    access_key_id: Option<String>,
    secret_access_key: Option<Secret>,
    session_token: Option<Secret>,
    /// Epoch milliseconds.
    #[serde(default)]
    expiration: Option<i64>,
}

/// Decodes a GetRoleCredentials answer; every member is required, `expiration` in epoch ms.
pub fn decode_role_credentials(body: &[u8]) -> Result<RoleCredentials, PortalError> {
    let wire: GetRoleCredentialsResponse =
        serde_json::from_slice(body).map_err(|e| PortalError::Malformed(e.to_string()))?;
    let missing = |k: &str| PortalError::Malformed(format!("roleCredentials.{k} is missing"));
    let c = wire.role_credentials.ok_or_else(|| missing("*"))?;
    let ms = c.expiration.ok_or_else(|| missing("expiration"))?;
    Ok(RoleCredentials {
        access_key_id: c.access_key_id.ok_or_else(|| missing("accessKeyId"))?,
        secret_access_key: c
            .secret_access_key
            .ok_or_else(|| missing("secretAccessKey"))?,
        session_token: c.session_token.ok_or_else(|| missing("sessionToken"))?,
        expiration: OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
            .map_err(|_| missing("expiration (valid)"))?,
    })
}

impl HttpPortal {
    pub fn new(http: reqwest::Client, endpoint: Url) -> Self {
        Self { http, endpoint }
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        token: &Secret,
    ) -> Result<bytes::Bytes, PortalError> {
        let answer = upstream::send(req.header("x-amz-sso_bearer_token", token.expose())).await?;
        if answer.is_success() {
            Ok(answer.body)
        } else {
            Err(PortalError::from_response(
                answer.status,
                &answer.headers,
                &answer.body,
            ))
        }
    }
}

impl Portal for HttpPortal {
    fn get_role_credentials(
        &self,
        token: &Secret,
        account_id: &str,
        role_name: &str,
    ) -> BoxFuture<'_, Result<RoleCredentials, PortalError>> {
        let mut url = join(&self.endpoint, "federation/credentials");
        url.query_pairs_mut()
            .append_pair("role_name", role_name)
            .append_pair("account_id", account_id);
        let token = token.clone();
        Box::pin(async move {
            let body = self.send(self.http.get(url), &token).await?;
            decode_role_credentials(&body)
        })
    }

    fn logout(&self, token: &Secret) -> BoxFuture<'_, Result<(), PortalError>> {
        let url = join(&self.endpoint, "logout");
        let token = token.clone();
        Box::pin(async move {
            self.send(
                self.http
                    .post(url)
                    .header(http::header::CONTENT_LENGTH, "0"),
                &token,
            )
            .await
            .map(|_| ())
        })
    }

    fn list_accounts(
        &self,
        token: &Secret,
        next_token: Option<&str>,
    ) -> BoxFuture<'_, Result<AccountPage, PortalError>> {
        self.list_accounts_page(token, next_token)
    }

    fn list_account_roles(
        &self,
        token: &Secret,
        account_id: &str,
        next_token: Option<&str>,
    ) -> BoxFuture<'_, Result<RolePage, PortalError>> {
        self.list_account_roles_page(token, account_id, next_token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_by_name_then_status() {
        let mut hm = http::HeaderMap::new();
        hm.insert(
            "x-amzn-ErrorType",
            "UnauthorizedException:http://internal.amazon.com/coral/x/"
                .parse()
                .unwrap(),
        );
        assert!(
            matches!(PortalError::from_response(401, &hm, br#"{"message":"Session token not found or invalid"}"#), PortalError::Unauthorized { ref message } if message.contains("Session token"))
        );
        let empty = http::HeaderMap::new();
        assert!(matches!(
            PortalError::from_response(403, &empty, b"<html>"),
            PortalError::Forbidden { .. }
        ));
        assert!(matches!(
            PortalError::from_response(
                400,
                &empty,
                br#"{"__type":"TooManyRequestsException","message":"slow"}"#
            ),
            PortalError::TooManyRequests { .. }
        ));
        assert!(matches!(
            PortalError::from_response(503, &empty, b""),
            PortalError::Http { status: 503, .. }
        ));
    }

    /// The portal reads error bodies as sso-oidc does (one parse, `upstream::ErrorBody`): a
    /// short plain-text body, as a proxy sends, is the message instead of being dropped.
    #[test]
    fn a_plain_text_error_body_is_the_message() {
        let empty = http::HeaderMap::new();
        assert!(matches!(
            PortalError::from_response(502, &empty, b"upstream connect error"),
            PortalError::Http { status: 502, ref message } if message == "upstream connect error"
        ));
        assert!(matches!(
            PortalError::from_response(403, &empty, b"<html>denied</html>"),
            PortalError::Forbidden { ref message } if message.is_empty()
        ));
    }

    #[test]
    fn credentials_decode_from_epoch_milliseconds() {
        let w: GetRoleCredentialsResponse = serde_json::from_str(r#"{"roleCredentials":{"accessKeyId":"ASIA","secretAccessKey":"s","sessionToken":"t","expiration":1234567890000}}"#).unwrap();
        let c = w.role_credentials.unwrap();
        assert_eq!(c.expiration, Some(1_234_567_890_000));
        assert!(!format!("{:?}", c.secret_access_key).contains('s'));
    }
}

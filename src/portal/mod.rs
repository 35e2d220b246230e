//! The AWS SSO portal (`sso`, restJson1): role credentials for an access token, the account
//! and role listings (accounts.rs), and Logout (WIRE.md §7). Bearer header `x-amz-sso_bearer_token`; `expiration` in epoch milliseconds.
//! Must not: cache (session/ does) or log a secret.

mod accounts;

use serde::Deserialize;
use time::OffsetDateTime;
use url::Url;

use crate::clock::BoxFuture;
use crate::oidc::{OidcError, error_name, http_client_helpers as h};
use crate::secret::Secret;

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
        let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let message = json
            .as_ref()
            .and_then(|v| {
                ["message", "Message"]
                    .iter()
                    .find_map(|k| v.get(*k).and_then(|m| m.as_str()))
            })
            .unwrap_or("")
            .to_string();
        match error_name(headers, json.as_ref()).as_deref() {
            Some("UnauthorizedException") => PortalError::Unauthorized { message },
            Some("ForbiddenException") => PortalError::Forbidden { message },
            Some("ResourceNotFoundException") => PortalError::ResourceNotFound { message },
            Some("TooManyRequestsException") => PortalError::TooManyRequests { message },
            Some("InvalidRequestException") => PortalError::InvalidRequest { message },
            Some(name) => PortalError::Other {
                name: name.to_string(),
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
    ) -> Result<Vec<u8>, PortalError> {
        let resp = req
            .header("x-amz-sso_bearer_token", token.expose())
            .send()
            .await
            .map_err(|e| PortalError::Transport(crate::error_text::with_causes(&e)))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if let Some(message) = h::refused_redirect(status, &headers) {
            return Err(PortalError::Http { status, message });
        }
        let body = h::read_capped(resp).await.map_err(|e| match e {
            OidcError::Malformed(m) => PortalError::Malformed(m),
            // A body cut off by the timeout or the connection.
            other => PortalError::Transport(other.to_string()),
        })?;
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(PortalError::from_response(status, &headers, &body))
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
        let mut url = h::join(&self.endpoint, "federation/credentials");
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
        let url = h::join(&self.endpoint, "logout");
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

    #[test]
    fn credentials_decode_from_epoch_milliseconds() {
        let w: GetRoleCredentialsResponse = serde_json::from_str(r#"{"roleCredentials":{"accessKeyId":"ASIA","secretAccessKey":"s","sessionToken":"t","expiration":1234567890000}}"#).unwrap();
        let c = w.role_credentials.unwrap();
        assert_eq!(c.expiration, Some(1_234_567_890_000));
        assert!(!format!("{:?}", c.secret_access_key).contains('s'));
    }
}

//! HTTP for the OIDC operations: JSON POSTs to `{endpoint}/{operation path}` (a path prefix in
//! an endpoint override is kept) through `upstream` (bounded in time and size, redirects
//! refused), answers decoded into the model, failures into `OidcError`.
//! Must not: decide what an error means for a session (session/), or log a body.

use futures_core::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::upstream::{self, join};

use super::error::OidcError;
use super::model::*;

pub trait Oidc: Send + Sync + 'static {
    fn register_client(
        &self,
        req: RegisterClientRequest,
    ) -> BoxFuture<'_, Result<RegisterClientResponse, OidcError>>;
    fn start_device_authorization(
        &self,
        req: StartDeviceAuthorizationRequest,
    ) -> BoxFuture<'_, Result<DeviceAuthorization, OidcError>>;
    fn create_token(
        &self,
        req: CreateTokenRequest,
    ) -> BoxFuture<'_, Result<TokenResponse, OidcError>>;
    /// The un-modeled `/authorize` URL (WIRE.md §4.3), on the same endpoint as the API calls.
    fn authorize_url(
        &self,
        client_id: &str,
        redirect_uri: &str,
        state: &str,
        scopes: &[String],
        code_challenge: &str,
    ) -> Url;
}

pub struct HttpOidc {
    http: reqwest::Client,
    endpoint: Url,
}

impl HttpOidc {
    pub fn new(http: reqwest::Client, endpoint: Url) -> Self {
        Self { http, endpoint }
    }

    async fn post<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        op: &'static str,
        path: &str,
        req: &Req,
    ) -> Result<Resp, OidcError> {
        let url = join(&self.endpoint, path);
        let body = serde_json::to_vec(req).map_err(|e| OidcError::Malformed(e.to_string()))?;
        tracing::debug!(op, %url, "calling sso-oidc");
        let answer = upstream::send(
            self.http
                .post(url)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body),
        )
        .await
        .inspect_err(|e| tracing::debug!(op, error = %e, "sso-oidc call failed"))?;
        if !answer.is_success() {
            let e = OidcError::from_response(answer.status, &answer.headers, &answer.body);
            tracing::debug!(op, status = answer.status, error = %e, "sso-oidc error");
            return Err(e);
        }
        serde_json::from_slice(&answer.body).map_err(|e| OidcError::Malformed(format!("{op}: {e}")))
    }
}

impl Oidc for HttpOidc {
    fn register_client(
        &self,
        req: RegisterClientRequest,
    ) -> BoxFuture<'_, Result<RegisterClientResponse, OidcError>> {
        Box::pin(async move { self.post("RegisterClient", "client/register", &req).await })
    }

    fn start_device_authorization(
        &self,
        req: StartDeviceAuthorizationRequest,
    ) -> BoxFuture<'_, Result<DeviceAuthorization, OidcError>> {
        Box::pin(async move {
            self.post("StartDeviceAuthorization", "device_authorization", &req)
                .await
        })
    }

    fn create_token(
        &self,
        req: CreateTokenRequest,
    ) -> BoxFuture<'_, Result<TokenResponse, OidcError>> {
        Box::pin(async move { self.post("CreateToken", "token", &req).await })
    }

    fn authorize_url(
        &self,
        client_id: &str,
        redirect_uri: &str,
        state: &str,
        scopes: &[String],
        code_challenge: &str,
    ) -> Url {
        let mut url = join(&self.endpoint, "authorize");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state)
            .append_pair("code_challenge_method", "S256")
            .append_pair("scopes", &scopes.join(" "))
            .append_pair("code_challenge", code_challenge);
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorize_url_shape() {
        let http = upstream::client().unwrap();
        let o = HttpOidc::new(
            http,
            Url::parse("https://oidc.us-east-1.amazonaws.com").unwrap(),
        );
        let u = o.authorize_url(
            "cid",
            "http://127.0.0.1:5/oauth/callback",
            "st",
            &["sso:account:access".into()],
            "ch",
        );
        assert_eq!(
            u.as_str(),
            "https://oidc.us-east-1.amazonaws.com/authorize?response_type=code&client_id=cid&redirect_uri=http%3A%2F%2F127.0.0.1%3A5%2Foauth%2Fcallback&state=st&code_challenge_method=S256&scopes=sso%3Aaccount%3Aaccess&code_challenge=ch"
        );
    }
}

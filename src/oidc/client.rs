//! HTTP for the OIDC operations: JSON POSTs to `{endpoint}/{operation path}` (a path prefix in
//! an endpoint override is kept), bounded in time and size, typed errors.

use std::sync::Once;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::clock::BoxFuture;

use super::error::OidcError;
use super::model::*;

/// Largest answer read from upstream (real answers are a few KiB).
pub const MAX_RESPONSE: usize = 1024 * 1024;
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

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

/// One HTTPS client for every upstream call: rustls with ring, bounded connect and request
/// time, redirects refused (an upstream redirect is an error, never followed with secrets).
pub fn http_client() -> Result<reqwest::Client, OidcError> {
    static PROVIDER: Once = Once::new();
    PROVIDER.call_once(|| {
        // Err means another provider is already installed, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("sso-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| OidcError::Connect(e.to_string()))
}

/// `endpoint` + `path`, keeping any path prefix of the endpoint.
pub fn join(endpoint: &Url, path: &str) -> Url {
    let mut url = endpoint.clone();
    let base = url.path().trim_end_matches('/').to_string();
    url.set_path(&format!("{base}/{}", path.trim_start_matches('/')));
    url
}

fn transport(e: reqwest::Error) -> OidcError {
    if e.is_timeout() {
        OidcError::Timeout
    } else {
        // reqwest names the URL and its causes the transport fault; no secrets (they
        // travel in bodies and headers).
        OidcError::Connect(crate::error_text::with_causes(&e))
    }
}

/// The error text of a redirect answer, if `status` is one. AWS APIs never redirect, and
/// following one would resend credentials wherever it points (http_client refuses them), so
/// it is named, with the target's query left out.
pub fn refused_redirect(status: u16, headers: &http::HeaderMap) -> Option<String> {
    if !(300..400).contains(&status) {
        return None;
    }
    let to = headers
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map_or("nowhere", |l| l.split('?').next().unwrap_or(l));
    Some(format!(
        "redirected to {to}; upstream redirects are not followed"
    ))
}

/// Reads a body up to `MAX_RESPONSE`.
pub async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, OidcError> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport)? {
        if out.len() + chunk.len() > MAX_RESPONSE {
            return Err(OidcError::Malformed(format!(
                "answer larger than {MAX_RESPONSE} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
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
        let resp = self
            .http
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if let Some(message) = refused_redirect(status, &headers) {
            tracing::debug!(op, status, %message, "sso-oidc redirected");
            return Err(OidcError::Http { status, message });
        }
        let bytes = read_capped(resp).await?;
        if !(200..300).contains(&status) {
            let e = OidcError::from_response(status, &headers, &bytes);
            tracing::debug!(op, status, error = %e, "sso-oidc error");
            return Err(e);
        }
        serde_json::from_slice(&bytes).map_err(|e| OidcError::Malformed(format!("{op}: {e}")))
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
    fn paths_keep_the_endpoint_prefix() {
        let e = Url::parse("http://127.0.0.1:9/prefix").unwrap();
        assert_eq!(
            join(&e, "token").as_str(),
            "http://127.0.0.1:9/prefix/token"
        );
        let e = Url::parse("https://oidc.us-east-1.amazonaws.com").unwrap();
        assert_eq!(
            join(&e, "client/register").as_str(),
            "https://oidc.us-east-1.amazonaws.com/client/register"
        );
    }

    #[test]
    fn redirects_are_named_without_their_query() {
        let mut h = http::HeaderMap::new();
        assert_eq!(refused_redirect(200, &h), None);
        assert_eq!(refused_redirect(400, &h), None);
        h.insert(
            http::header::LOCATION,
            "https://elsewhere.example/x?code=abc".parse().unwrap(),
        );
        let m = refused_redirect(307, &h).unwrap();
        assert!(m.contains("https://elsewhere.example/x;"), "{m}");
        assert!(!m.contains("abc"), "{m}");
        let m = refused_redirect(302, &http::HeaderMap::new()).unwrap();
        assert!(m.contains("nowhere"), "{m}");
    }

    #[test]
    fn authorize_url_shape() {
        let http = http_client().unwrap();
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

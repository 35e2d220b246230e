//! Interactive logins, run as a child task of a session: the device authorization grant as
//! RFC 8628 and AWS apply it (WIRE.md §3). Reports progress to the session task by events.
//! Must not: touch the session's tokens or the store (the session task persists the result).

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::api::{LoginFlow, LoginStarted};
use crate::clock::Clock;
use crate::oidc::{
    CreateTokenRequest, GRANT_DEVICE_CODE, GRANT_REFRESH_TOKEN, Oidc, OidcError,
    StartDeviceAuthorizationRequest, TokenResponse,
};
use crate::store::records::ClientRecord;

use super::registry::{RegistrationError, RegistrationSpec, Registrations};

/// RFC 8628 §3.5: the interval when the server gives none, and the slow_down increment.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// Consecutive transient poll failures tolerated before the login is reported failed.
const MAX_TRANSIENT_POLL_FAILURES: u32 = 5;

#[derive(Debug)]
pub(super) enum LoginEvent {
    Started(LoginStarted),
    Finished(LoginOutcome),
}

#[derive(Debug)]
pub(super) enum LoginOutcome {
    Succeeded {
        token: Box<TokenResponse>,
        client: ClientRecord,
        issued_at: OffsetDateTime,
    },
    Denied(String),
    Expired(String),
    Failed(String),
}

pub(super) struct LoginCtx {
    pub login_id: String,
    pub oidc: Arc<dyn Oidc>,
    pub clock: Arc<dyn Clock>,
    pub registrations: Arc<Registrations>,
    pub spec_endpoint: String,
    pub region: String,
    pub scopes: Vec<String>,
    pub start_url: String,
    /// The live margins (read when a registration is picked, never copied).
    pub margins: tokio::sync::watch::Receiver<super::Margins>,
    pub events: mpsc::Sender<(String, LoginEvent)>,
}

impl LoginCtx {
    /// A registration for `spec` that may start a login now (registered if needed).
    async fn client_for(&self, spec: &RegistrationSpec) -> Result<ClientRecord, RegistrationError> {
        let margin = self.margins.borrow().reregistration;
        self.registrations
            .get_or_register(self.oidc.as_ref(), spec, self.clock.now(), margin)
            .await
    }

    async fn send(&self, ev: LoginEvent) {
        // The session task may be gone (session removed); then nobody needs the event.
        let _ = self.events.send((self.login_id.clone(), ev)).await;
    }
}

/// The registration spec of the device flow: device code and refresh grants, no redirect.
pub(super) fn device_spec(endpoint: &str, region: &str, scopes: &[String]) -> RegistrationSpec {
    RegistrationSpec {
        endpoint: endpoint.to_string(),
        region: region.to_string(),
        scopes: scopes.to_vec(),
        grant_types: vec![
            GRANT_DEVICE_CODE.to_string(),
            GRANT_REFRESH_TOKEN.to_string(),
        ],
        redirect_uris: None,
        issuer_url: None,
    }
}

/// Runs a device-code login to its end and reports `Started` then `Finished`.
pub(super) async fn device_login(ctx: LoginCtx) {
    let outcome = device_login_inner(&ctx).await;
    ctx.send(LoginEvent::Finished(outcome)).await;
}

async fn device_login_inner(ctx: &LoginCtx) -> LoginOutcome {
    let spec = device_spec(&ctx.spec_endpoint, &ctx.region, &ctx.scopes);
    // A stored registration the service no longer knows (revoked, or a service that was
    // reset) is dropped and replaced once, instead of failing every login from now on.
    let mut retried = false;
    let (client, auth) = loop {
        let client = match ctx.client_for(&spec).await {
            Ok(c) => c,
            Err(e) => return LoginOutcome::Failed(e.to_string()),
        };
        match ctx
            .oidc
            .start_device_authorization(StartDeviceAuthorizationRequest {
                client_id: client.client_id.clone(),
                client_secret: client.client_secret.clone(),
                start_url: ctx.start_url.clone(),
            })
            .await
        {
            Ok(a) => break (client, a),
            Err(OidcError::InvalidClient { .. }) if !retried => {
                retried = true;
                ctx.registrations.forget(&spec, &client.client_id).await;
            }
            Err(e) => {
                return LoginOutcome::Failed(format!("StartDeviceAuthorization failed: {e}"));
            }
        }
    };
    let started_at = ctx.clock.now();
    let expires_at = started_at + Duration::from_secs(auth.expires_in.max(0).unsigned_abs());
    let mut interval = match auth.interval {
        Some(i) if i > 0 => Duration::from_secs(i.unsigned_abs()),
        _ => DEFAULT_INTERVAL,
    };
    ctx.send(LoginEvent::Started(LoginStarted {
        login_id: ctx.login_id.clone(),
        flow: LoginFlow::DeviceCode,
        verification_uri: Some(auth.verification_uri.clone()),
        verification_uri_complete: auth.verification_uri_complete.clone(),
        user_code: Some(auth.user_code.clone()),
        authorize_url: None,
        expires_at,
        joined: false,
    }))
    .await;
    tracing::info!(login_id = %ctx.login_id, user_code = %auth.user_code, %expires_at, interval_s = interval.as_secs(), "device login started");

    let mut transient_failures = 0;
    // First poll at once (the client may be pre-authorized), then every interval (WIRE §3).
    loop {
        if ctx.clock.now() >= expires_at {
            return LoginOutcome::Expired(
                "the device code expired before it was approved; run `sso-agent login` again"
                    .into(),
            );
        }
        let req = CreateTokenRequest::device_code(
            &client.client_id,
            &client.client_secret,
            &auth.device_code,
        );
        let issued_at = ctx.clock.now();
        match ctx.oidc.create_token(req).await {
            Ok(token) => {
                return LoginOutcome::Succeeded {
                    token: Box::new(token),
                    client,
                    issued_at,
                };
            }
            Err(OidcError::AuthorizationPending { .. }) => transient_failures = 0,
            Err(OidcError::SlowDown { .. }) => {
                interval += SLOW_DOWN_STEP;
                tracing::debug!(
                    interval_s = interval.as_secs(),
                    "slow_down: polling less often"
                );
            }
            Err(e @ OidcError::AccessDenied { .. }) => {
                return LoginOutcome::Denied(format!("the login was denied ({e})"));
            }
            Err(e @ OidcError::ExpiredToken { .. }) => {
                return LoginOutcome::Expired(format!(
                    "the device code expired ({e}); run `sso-agent login` again"
                ));
            }
            Err(e) if e.is_transient() && transient_failures < MAX_TRANSIENT_POLL_FAILURES => {
                transient_failures += 1;
                tracing::warn!(error = %e, attempt = transient_failures, "device poll failed; retrying");
            }
            Err(e) => return LoginOutcome::Failed(format!("CreateToken failed: {e}")),
        }
        let next = (ctx.clock.now() + interval).min(expires_at);
        ctx.clock.sleep_until(next).await;
    }
}

/// How long an authorization-code login waits for the browser to come back (the AWS CLI's
/// limit, WIRE.md §4.4).
pub(super) const PKCE_LOGIN_LIFETIME: Duration = Duration::from_secs(600);
const CALLBACK_PATH: &str = "/oauth/callback";

/// The callback listener's bounds: any local user can connect to a loopback port, so a few
/// connections at a time, a short head timeout, and nothing outlives the login.
const CALLBACK_LIMITS: crate::bounded_server::Limits = crate::bounded_server::Limits {
    max_connections: 16,
    header_timeout: Duration::from_secs(5),
    max_head: 16 * 1024,
    write_stall: Duration::from_secs(5),
    accept_pause: Duration::from_millis(100),
    drain: Duration::ZERO,
};

/// The registration spec of the authorization-code flow (WIRE.md §4.2): its own client,
/// never shared with the device flow.
pub(super) fn pkce_spec(
    endpoint: &str,
    region: &str,
    scopes: &[String],
    start_url: &str,
) -> RegistrationSpec {
    RegistrationSpec {
        endpoint: endpoint.to_string(),
        region: region.to_string(),
        scopes: scopes.to_vec(),
        grant_types: vec![
            crate::oidc::GRANT_AUTHORIZATION_CODE.to_string(),
            GRANT_REFRESH_TOKEN.to_string(),
        ],
        redirect_uris: Some(vec![format!("http://127.0.0.1{CALLBACK_PATH}")]),
        issuer_url: Some(start_url.to_string()),
    }
}

/// Runs an authorization-code + PKCE login: listener on 127.0.0.1 first, then `Started`
/// (the caller opens the browser), then the callback, the state check and the exchange.
pub(super) async fn pkce_login(ctx: LoginCtx, entropy: Arc<dyn crate::entropy::Entropy>) {
    let outcome = pkce_login_inner(&ctx, entropy.as_ref()).await;
    ctx.send(LoginEvent::Finished(outcome)).await;
}

/// What the browser brought back to the callback.
enum Callback {
    Code(String),
    Error(String),
}

async fn pkce_login_inner(ctx: &LoginCtx, entropy: &dyn crate::entropy::Entropy) -> LoginOutcome {
    let spec = pkce_spec(&ctx.spec_endpoint, &ctx.region, &ctx.scopes, &ctx.start_url);
    let client = match ctx.client_for(&spec).await {
        Ok(c) => c,
        Err(e) => return LoginOutcome::Failed(e.to_string()),
    };
    // Bound before anything can open the browser, and only on loopback.
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", 0)).await {
        Ok(l) => l,
        Err(e) => {
            return LoginOutcome::Failed(format!(
                "cannot listen for the browser's callback on 127.0.0.1: {e}"
            ));
        }
    };
    let port = match listener.local_addr() {
        Ok(a) => a.port(),
        Err(e) => return LoginOutcome::Failed(format!("cannot read the callback port: {e}")),
    };
    let redirect_uri = format!("http://127.0.0.1:{port}{CALLBACK_PATH}");
    let verifier = crate::secret::Secret::new(entropy.token(64));
    let state = entropy.token(32);
    let challenge = crate::oidc::pkce::challenge_s256(verifier.expose());
    let authorize_url = ctx.oidc.authorize_url(
        &client.client_id,
        &redirect_uri,
        &state,
        &ctx.scopes,
        &challenge,
    );
    let expires_at = ctx.clock.now() + PKCE_LOGIN_LIFETIME;
    ctx.send(LoginEvent::Started(LoginStarted {
        login_id: ctx.login_id.clone(),
        flow: LoginFlow::AuthorizationCode,
        verification_uri: None,
        verification_uri_complete: None,
        user_code: None,
        authorize_url: Some(authorize_url.to_string()),
        expires_at,
        joined: false,
    }))
    .await;
    tracing::info!(login_id = %ctx.login_id, port, %expires_at, "authorization-code login started; waiting for the browser");

    let (tx, mut rx) = mpsc::channel::<Callback>(1);
    let deadline = ctx.clock.sleep_until(expires_at);
    tokio::pin!(deadline);
    // The callback server lives inside this future: when the login ends it is dropped, and
    // with it the listener and every connection (bounded like every listener we own).
    let mut server = Box::pin(crate::bounded_server::serve(
        listener,
        CALLBACK_LIMITS,
        |_conn: &tokio::net::TcpStream| {
            let (tx, state) = (tx.clone(), state.clone());
            hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let (tx, state) = (tx.clone(), state.clone());
                async move { Ok::<_, std::convert::Infallible>(callback_page(&req, &state, &tx)) }
            })
        },
        std::future::pending(),
    ));
    let result = tokio::select! {
        () = &mut deadline => Err(LoginOutcome::Expired("no answer from the browser in time; run `sso-agent login` again".into())),
        Some(cb) = rx.recv() => Ok(cb),
        () = &mut server => Err(LoginOutcome::Failed("the callback listener stopped".into())),
    };
    drop(server); // the listener and its connections close when the login ends
    let code = match result {
        Err(outcome) => return outcome,
        Ok(Callback::Error(e)) if e == "access_denied" => {
            return LoginOutcome::Denied("the login was denied in the browser".into());
        }
        Ok(Callback::Error(e)) => {
            return LoginOutcome::Failed(format!("the browser returned an error: {e}"));
        }
        Ok(Callback::Code(c)) => crate::secret::Secret::new(c),
    };
    let issued_at = ctx.clock.now();
    let req = CreateTokenRequest::authorization_code(
        &client.client_id,
        &client.client_secret,
        &code,
        &redirect_uri,
        &verifier,
    );
    match ctx.oidc.create_token(req).await {
        Ok(token) => LoginOutcome::Succeeded {
            token: Box::new(token),
            client,
            issued_at,
        },
        Err(e @ OidcError::ExpiredToken { .. }) => {
            LoginOutcome::Expired(format!("the authorization expired ({e})"))
        }
        Err(e @ OidcError::AccessDenied { .. }) => {
            LoginOutcome::Denied(format!("the login was denied ({e})"))
        }
        Err(e) => LoginOutcome::Failed(format!("exchanging the authorization code failed: {e}")),
    }
}

/// Answers one request to the callback listener: checks the path and `state`, passes a
/// valid answer on, and tells the person in the browser what happened.
fn callback_page(
    req: &http::Request<hyper::body::Incoming>,
    expected_state: &str,
    tx: &mpsc::Sender<Callback>,
) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    let page = |status: u16, title: &str, text: &str| {
        let body = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>sso-agent</title></head><body style=\"font-family:sans-serif;margin:3em\"><h1>{title}</h1><p>{text}</p></body></html>"
        );
        let mut r = http::Response::new(http_body_util::Full::new(bytes::Bytes::from(body)));
        *r.status_mut() =
            http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/html; charset=utf-8"),
        );
        r.headers_mut().insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
        r
    };
    if req.uri().path() != CALLBACK_PATH {
        return page(
            404,
            "Not found",
            "This address only receives the sign-in callback.",
        );
    }
    let q: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    if q.get("state").map(String::as_str) != Some(expected_state) {
        tracing::warn!("login callback with a wrong or missing state; ignored");
        return page(
            400,
            "Sign-in not accepted",
            "This answer does not belong to the pending sign-in (state mismatch). Start the login again from your terminal.",
        );
    }
    if let Some(err) = q.get("error") {
        let _ = tx.try_send(Callback::Error(err.clone()));
        return page(
            200,
            "Sign-in cancelled",
            "The sign-in was not completed. You can close this tab.",
        );
    }
    match q.get("code") {
        Some(code) if !code.is_empty() => {
            let _ = tx.try_send(Callback::Code(code.clone()));
            page(
                200,
                "Signed in",
                "sso-agent has your sign-in. You can close this tab and return to the terminal.",
            )
        }
        _ => page(
            400,
            "Sign-in not accepted",
            "The callback carried no authorization code.",
        ),
    }
}

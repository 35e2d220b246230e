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

use super::registry::{RegistrationSpec, Registrations};

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
    pub reregistration_margin: Duration,
    pub events: mpsc::Sender<(String, LoginEvent)>,
}

impl LoginCtx {
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
    let client = match ctx
        .registrations
        .get_or_register(
            ctx.oidc.as_ref(),
            &spec,
            ctx.clock.now(),
            ctx.reregistration_margin,
        )
        .await
    {
        Ok(c) => c,
        Err(e) => return LoginOutcome::Failed(e),
    };
    let auth = match ctx
        .oidc
        .start_device_authorization(StartDeviceAuthorizationRequest {
            client_id: client.client_id.clone(),
            client_secret: client.client_secret.clone(),
            start_url: ctx.start_url.clone(),
        })
        .await
    {
        Ok(a) => a,
        Err(e) => return LoginOutcome::Failed(format!("StartDeviceAuthorization failed: {e}")),
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

//! The container-credentials endpoint of `sso-agent exec` (SPEC "Role credentials for every
//! tool"): a loopback TCP listener opened on first use, one token per running exec (revoked
//! when that exec's socket connection closes), the request checks, and the answer from
//! memory. Also the `POST /v1/exec` route that grants a token and holds its connection.
//! Must not: fetch role credentials itself (the session does, single-flight per role; the
//! keep-fresh loop asks ahead), log or echo a token, or wait for a login.

mod check;
#[cfg(target_os = "linux")]
mod peer_uid;

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming};
use subtle::ConstantTimeEq;
use tokio::sync::{OnceCell, watch};

use crate::api::{Envelope, ErrorCode, ExecGrant, ExecRequest, SessionState};
use crate::bounded_server::Limits;
use crate::clock::{Clock, rfc3339};
use crate::entropy::Entropy;
use crate::portal::RoleCredentials;
use crate::secret::Secret;
use crate::session::keep_fresh::{self, KeepFresh, Lease};
use crate::session::{Manager, SessionError};

use super::routes::{self, AppState};
use check::Refusal;

/// The path of the credentials URL (`AWS_CONTAINER_CREDENTIALS_FULL_URI`).
pub const CREDENTIALS_PATH: &str = "/v1/role-credentials";
/// Characters of a token from the RFC 7636 unreserved set: 43 × log2(66) ≈ 260 bits.
pub const TOKEN_LEN: usize = 43;
/// An answer that would have to wait on the portal gives up after this (botocore waits 2 s,
/// the JS SDK 1 s): the kept copy normally answers at once.
pub const FETCH_BOUND: Duration = Duration::from_millis(900);

/// The endpoint's listener bounds (bounded_server): many SDK clients at once, small heads.
pub const LIMITS: Limits = Limits {
    max_connections: 256,
    header_timeout: Duration::from_secs(5),
    max_head: 16 * 1024,
    write_stall: Duration::from_secs(10),
    accept_pause: Duration::from_millis(100),
    drain: Duration::ZERO,
};

/// A live exec's token and what it may fetch.
struct Grant {
    id: u64,
    token: Secret,
    profile: String,
    session: String,
    account_id: String,
    role_name: String,
    lease: Lease,
}

/// Who is at the other end of an endpoint connection.
#[derive(Debug, Clone)]
enum Owner {
    /// The daemon's own uid (Linux, from the kernel's socket table).
    Same,
    Other(u32),
    Unknown(String),
    /// Not checked on this platform (token, Host and Origin checks still apply).
    #[cfg_attr(target_os = "linux", allow(dead_code))]
    Unchecked,
}

pub struct ExecEndpoint {
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn Entropy>,
    manager: Arc<Manager>,
    keep_fresh: KeepFresh,
    grants: Mutex<Vec<Arc<Grant>>>,
    next_id: AtomicU64,
    port: OnceCell<u16>,
    closing: watch::Sender<bool>,
}

impl ExecEndpoint {
    pub fn new(clock: Arc<dyn Clock>, entropy: Arc<dyn Entropy>, manager: Arc<Manager>) -> Self {
        Self {
            keep_fresh: KeepFresh::new(clock.clone()),
            clock,
            entropy,
            manager,
            grants: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            port: OnceCell::new(),
            closing: watch::channel(false).0,
        }
    }

    /// Stops the listener and ends every held exec connection (the daemon is stopping).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Live exec tokens.
    pub fn live(&self) -> usize {
        self.grants.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Roles kept fresh now.
    pub fn kept_fresh(&self) -> usize {
        self.keep_fresh.active()
    }

    /// The listener's port, binding it on first use.
    async fn port(self: &Arc<Self>) -> std::io::Result<u16> {
        self.port
            .get_or_try_init(|| async {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
                let port = listener.local_addr()?.port();
                tracing::info!(
                    port,
                    "container-credentials endpoint listening on 127.0.0.1"
                );
                let me = self.clone();
                let mut closing = self.closing.subscribe();
                tokio::spawn(crate::bounded_server::serve(
                    listener,
                    LIMITS,
                    move |conn: &tokio::net::TcpStream| {
                        let owner = owner_of(conn);
                        let me = me.clone();
                        hyper::service::service_fn(move |req| {
                            let me = me.clone();
                            let owner = owner.clone();
                            async move { Ok::<_, Infallible>(me.answer(&owner, port, req).await) }
                        })
                    },
                    async move {
                        let _ = closing.wait_for(|c| *c).await;
                    },
                ));
                Ok(port)
            })
            .await
            .copied()
    }

    /// Grants a token for `profile` after fetching its credentials once (so a login that is
    /// needed shows before the child starts). Errors are the socket API's answers; a profile
    /// that names no SSO role is the caller's mistake (VALIDATION_ERROR: `exec` exits 2).
    async fn grant(
        self: &Arc<Self>,
        state: &AppState,
        profile: String,
    ) -> Result<(ExecGrant, Revoke), routes::Resp> {
        let (target, region) = {
            let aws = state.aws.read().unwrap_or_else(|p| p.into_inner());
            let target = aws
                .profile_credentials(&profile)
                .map_err(|e| routes::error(ErrorCode::ValidationError, e.to_string()))?;
            let region = aws.profiles.get(&profile).and_then(|p| p.region.clone());
            (target, region)
        };
        let Some(session) = self.manager.get(&target.session) else {
            return Err(routes::error(
                ErrorCode::ValidationError,
                format!(
                    "profile `{profile}` names sso-session `{}`, which is not configured",
                    target.session
                ),
            ));
        };
        let first = session
            .role_credentials(&target.account_id, &target.role_name)
            .await
            .map_err(|e| routes::error(routes::error_code(&e), e.to_string()))?;
        let port = self.port().await.map_err(|e| {
            routes::error(
                ErrorCode::Internal,
                format!("cannot open the container-credentials endpoint on 127.0.0.1: {e}"),
            )
        })?;
        let fetch: keep_fresh::Fetch = {
            let manager = self.manager.clone();
            let (session, account, role) = (
                target.session.clone(),
                target.account_id.clone(),
                target.role_name.clone(),
            );
            Box::new(move |ahead| {
                let manager = manager.clone();
                let (session, account, role) = (session.clone(), account.clone(), role.clone());
                Box::pin(async move {
                    let Some(handle) = manager.get(&session) else {
                        return Err(SessionError::Internal(format!(
                            "sso-session `{session}` is no longer configured"
                        )));
                    };
                    handle
                        .role_credentials_valid_for(&account, &role, ahead)
                        .await
                })
            })
        };
        let lease = self.keep_fresh.lease(
            (
                target.session.clone(),
                target.account_id.clone(),
                target.role_name.clone(),
            ),
            first,
            fetch,
        );
        let token = Secret::new(self.entropy.token(TOKEN_LEN));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let grant = Arc::new(Grant {
            id,
            token: token.clone(),
            profile: profile.clone(),
            session: target.session.clone(),
            account_id: target.account_id,
            role_name: target.role_name,
            lease,
        });
        self.grants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(grant);
        tracing::info!(exec = id, profile = %profile, "exec started; token granted");
        Ok((
            ExecGrant {
                profile,
                session: target.session,
                uri: format!("http://127.0.0.1:{port}{CREDENTIALS_PATH}"),
                token,
                region,
            },
            Revoke {
                endpoint: self.clone(),
                id,
            },
        ))
    }

    /// The live grant whose token equals `presented`, compared in constant time against
    /// every live token (no early exit, so timing says nothing about which or how much).
    fn find(&self, presented: &[u8]) -> Option<Arc<Grant>> {
        let grants = self.grants.lock().unwrap_or_else(|p| p.into_inner());
        let mut found = None;
        for g in grants.iter() {
            if bool::from(g.token.expose().as_bytes().ct_eq(presented)) {
                found = Some(g.clone());
            }
        }
        found
    }

    async fn answer(
        &self,
        owner: &Owner,
        port: u16,
        req: Request<Incoming>,
    ) -> Response<Full<Bytes>> {
        match owner {
            Owner::Same | Owner::Unchecked => {}
            Owner::Other(uid) => {
                tracing::warn!(
                    uid,
                    "container-credentials endpoint: refusing a connection from another user"
                );
                return refusal(&Refusal::forbidden(
                    "this endpoint serves only the user who runs the daemon",
                ));
            }
            Owner::Unknown(why) => {
                tracing::warn!(error = %why, "container-credentials endpoint: cannot tell who connected; refusing");
                return refusal(&Refusal::forbidden(
                    "cannot tell which user connected; refused",
                ));
            }
        }
        let presented = match check::request(req.method(), req.headers(), port) {
            Ok(t) => t,
            Err(r) => return refusal(&r),
        };
        let Some(grant) = self.find(presented) else {
            return refusal(&Refusal::unauthorized(
                "the token is not valid (its exec has ended?); start the tool again under `sso-agent exec`",
            ));
        };
        if req.uri().path() != CREDENTIALS_PATH {
            return refusal(&Refusal {
                status: StatusCode::NOT_FOUND,
                code: "NotFound",
                message: format!("the credentials are at {CREDENTIALS_PATH}"),
            });
        }
        debug_assert_eq!(req.method(), Method::GET);
        match self.credentials(&grant).await {
            Ok(c) => credentials_answer(&c, &grant.account_id),
            Err(r) => refusal(&r),
        }
    }

    /// From memory: the kept copy while it has more than the SDKs' window left; else one
    /// bounded ask to the session. A session that needs a login answers at once.
    async fn credentials(&self, grant: &Grant) -> Result<RoleCredentials, Refusal> {
        let Some(session) = self.manager.get(&grant.session) else {
            return Err(Refusal::forbidden(format!(
                "sso-session `{}` is no longer configured",
                grant.session
            )));
        };
        if matches!(
            session.status().state,
            SessionState::LoginRequired | SessionState::LoginPending
        ) {
            return Err(login_required(&grant.session));
        }
        if let Some(c) = grant.lease.latest(self.clock.now(), keep_fresh::SERVE_MIN) {
            return Ok(c);
        }
        let fetched = tokio::time::timeout(
            FETCH_BOUND,
            session.role_credentials(&grant.account_id, &grant.role_name),
        )
        .await;
        match fetched {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(SessionError::LoginRequired(_) | SessionError::LoginPending(_))) => {
                Err(login_required(&grant.session))
            }
            Ok(Err(e)) => Err(Refusal {
                status: StatusCode::from_u16(routes::error_code(&e).http_status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                code: "CredentialsUnavailable",
                message: format!("profile {}: {e}", grant.profile),
            }),
            Err(_) => Err(Refusal {
                status: StatusCode::GATEWAY_TIMEOUT,
                code: "Timeout",
                message: "the portal did not answer in time; try again".into(),
            }),
        }
    }
}

fn login_required(session: &str) -> Refusal {
    Refusal {
        status: StatusCode::FORBIDDEN,
        code: "LoginRequired",
        message: format!("session `{session}` needs a login: run `sso-agent login {session}`"),
    }
}

#[cfg(target_os = "linux")]
fn owner_of(conn: &tokio::net::TcpStream) -> Owner {
    let addrs = conn.peer_addr().and_then(|p| Ok((p, conn.local_addr()?)));
    let owner = addrs.and_then(|(peer, local)| peer_uid::tcp_owner(peer, local));
    match owner {
        Ok(uid) if uid == rustix::process::geteuid().as_raw() => Owner::Same,
        Ok(uid) => Owner::Other(uid),
        Err(e) => Owner::Unknown(e.to_string()),
    }
}

#[cfg(not(target_os = "linux"))]
fn owner_of(_conn: &tokio::net::TcpStream) -> Owner {
    Owner::Unchecked
}

fn refusal(r: &Refusal) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "Code": r.code, "Message": r.message });
    super::routes::json_response(r.status, body.to_string().into_bytes())
}

/// The container-credentials JSON (WIRE.md §8.2): `Token`, and `Expiration` ending in `Z`.
fn credentials_answer(c: &RoleCredentials, account_id: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key.expose(),
        "Token": c.session_token.expose(),
        "Expiration": rfc3339(c.expiration),
        "AccountId": account_id,
    });
    super::routes::json_response(StatusCode::OK, body.to_string().into_bytes())
}

/// Revokes its exec's token when dropped: the held `POST /v1/exec` answer owns it, so the
/// token dies with that connection, however the exec ended.
pub struct Revoke {
    endpoint: Arc<ExecEndpoint>,
    id: u64,
}

impl Drop for Revoke {
    fn drop(&mut self) {
        let mut grants = self
            .endpoint
            .grants
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        grants.retain(|g| g.id != self.id);
        tracing::info!(exec = self.id, "exec ended; token revoked");
    }
}

/// The held answer of `POST /v1/exec`: the grant as one JSON line, then nothing until the
/// client closes (hyper then drops this body, and with it the token) or the daemon stops.
pub struct HeldBody {
    first: Option<Bytes>,
    closing: Pin<Box<dyn Future<Output = ()> + Send>>,
    _revoke: Revoke,
}

impl Body for HeldBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        self.closing.as_mut().poll(cx).map(|()| None)
    }
}

/// What the socket's connections answer with: a whole body, or a held exec.
pub type SocketBody = Either<Full<Bytes>, HeldBody>;

/// Whether a request is the exec route (served here, not by `routes`).
pub fn is_exec_route<B>(req: &Request<B>) -> bool {
    req.uri().path() == crate::api::paths::EXEC
}

/// `POST /v1/exec` body `{"profile": NAME}`: grants a token for the profile and holds the
/// connection open; the token lives exactly as long as this connection.
pub async fn route<B>(state: &AppState, req: Request<B>) -> Response<SocketBody>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let whole = |r: routes::Resp| r.map(Either::Left);
    if req.method() != Method::POST {
        let mut r = routes::error(
            ErrorCode::NotFound,
            format!(
                "no route for {} {}; allowed: POST",
                req.method(),
                req.uri().path()
            ),
        );
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        return whole(r);
    }
    let body = match routes::read_body(req).await {
        Ok(b) => b,
        Err(r) => return whole(*r),
    };
    let asked: ExecRequest = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            return whole(routes::error(
                ErrorCode::ValidationError,
                format!("the body is not an exec request ({e}); send {{\"profile\": \"NAME\"}}"),
            ));
        }
    };
    let (grant, revoke) = match state.exec.grant(state, asked.profile).await {
        Ok(g) => g,
        Err(r) => return whole(r),
    };
    let mut line = match serde_json::to_vec(&Envelope::ok(grant)) {
        Ok(l) => l,
        Err(e) => {
            return whole(routes::error(
                ErrorCode::Internal,
                format!("could not encode the grant: {e}"),
            ));
        }
    };
    line.push(b'\n');
    let mut closing = state.exec.closing.subscribe();
    let held = HeldBody {
        first: Some(Bytes::from(line)),
        closing: Box::pin(async move {
            let _ = closing.wait_for(|c| *c).await;
        }),
        _revoke: revoke,
    };
    let mut resp = Response::new(Either::Right(held));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp
}

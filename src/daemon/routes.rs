//! Translates HTTP requests on the socket into session calls and answers in the envelope.
//! Must not: hold policy (that is the session task's) or log request bodies.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;
use time::OffsetDateTime;

use crate::api::{
    self, ApiError, Envelope, ErrorCode, LoginRequest, LogoutData, ProfileWarning, StatusData,
    StoreStatus,
};
use crate::session::{Manager, SessionError, SessionHandle};
use crate::store::SecretStore;

/// Largest request body accepted (the only body is a tiny login request).
pub const MAX_BODY: usize = 16 * 1024;
/// Time allowed to receive a request body once the headers are in.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest `minValidity` (a year; no SSO token lives that long, so larger is a typo).
pub const MAX_MIN_VALIDITY: Duration = Duration::from_secs(366 * 86400);
/// Longest `wait` a caller may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(3600);

/// What the routes need; shared by all connections.
pub struct AppState {
    pub manager: Arc<Manager>,
    pub store: Arc<dyn SecretStore>,
    pub started_at: OffsetDateTime,
    pub socket: String,
    pub config_file: String,
    /// One slot per config file (daemon::reload owns them).
    pub config_problems: super::reload::ConfigProblems,
    /// The last good AWS config (profiles name role credentials).
    pub aws: RwLock<crate::config::AwsConfig>,
    /// `exec`'s container-credentials endpoint and its tokens.
    pub exec: Arc<super::exec_endpoint::ExecEndpoint>,
    /// (account, role) of each entry of every session's profiles block in the config file.
    pub profile_blocks: RwLock<ProfileBlocks>,
}

pub type ProfileBlocks =
    std::collections::BTreeMap<String, std::collections::BTreeSet<(String, String)>>;

pub type Resp = Response<Full<Bytes>>;

/// Maps a session error to its API code (the one outward mapping on the daemon side).
pub fn error_code(e: &SessionError) -> ErrorCode {
    match e {
        SessionError::LoginRequired(_) => ErrorCode::LoginRequired,
        SessionError::LoginPending(_) => ErrorCode::LoginPending,
        SessionError::Upstream(_) => ErrorCode::UpstreamError,
        SessionError::Store(_) => ErrorCode::StoreUnavailable,
        SessionError::Forbidden(_) => ErrorCode::Forbidden,
        SessionError::Internal(_) => ErrorCode::Internal,
    }
}

fn json<T: Serialize>(status: StatusCode, env: &Envelope<T>) -> Resp {
    let body = serde_json::to_vec(env).unwrap_or_else(|_| {
        br#"{"success":false,"error":{"code":"INTERNAL","message":"could not encode the answer"}}"#.to_vec()
    });
    json_response(status, body)
}

/// A JSON answer of the daemon's (the socket's and the exec endpoint's): never cached.
pub(crate) fn json_response(status: StatusCode, body: Vec<u8>) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
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

pub fn ok<T: Serialize>(data: T) -> Resp {
    json(StatusCode::OK, &Envelope::ok(data))
}

pub fn error(code: ErrorCode, message: impl Into<String>) -> Resp {
    let status =
        StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(status, &Envelope::<()>::err(ApiError::new(code, message)))
}

fn session_error(e: SessionError) -> Resp {
    error(error_code(&e), e.to_string())
}

/// Entry point for every request from an allowed peer.
pub async fn handle<B>(state: Arc<AppState>, req: Request<B>) -> Resp
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let resp = route(&state, req, &method, &path, &query).await;
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
    resp
}

/// A request's route with its path and query decoded: the pure first step of `route`, kept
/// apart so it can be fuzzed without a daemon behind it.
#[derive(Debug, PartialEq)]
pub enum Route {
    Status,
    Credentials {
        profile: String,
        wait: Duration,
    },
    Session {
        name: String,
        params: Params,
        action: Action,
    },
}

/// What a session route asks for; the method is already checked.
#[derive(Debug, PartialEq)]
pub enum Action {
    Token,
    StartLogin,
    LoginStatus,
    Logout,
    Accounts,
    /// A known action with a method it does not take (`Allow` lists what works).
    NotAllowed(&'static str),
    NotFound,
}

/// Decodes method, path and query into a `Route`, or the error answer. Reads no state.
pub fn parse_route(method: &Method, path: &str, query: &str) -> Result<Route, Box<Resp>> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match segments.as_slice() {
        ["", "v1", "status"] => match *method {
            Method::GET => Ok(Route::Status),
            _ => Err(Box::new(not_allowed(method, path, "GET"))),
        },
        ["", "v1", "profiles", name, "credentials"] => match *method {
            Method::GET => Ok(Route::Credentials {
                profile: decode_name(name, "profile")?,
                wait: Params::parse(query)
                    .map_err(|e| Box::new(error(ErrorCode::ValidationError, e)))?
                    .wait,
            }),
            _ => Err(Box::new(not_allowed(method, path, "GET"))),
        },
        ["", "v1", "sessions", name, action] => {
            let name = decode_name(name, "session")?;
            let params =
                Params::parse(query).map_err(|e| Box::new(error(ErrorCode::ValidationError, e)))?;
            let action = match (*action, method) {
                ("token", &Method::GET) => Action::Token,
                ("login", &Method::POST) => Action::StartLogin,
                ("login", &Method::GET) => Action::LoginStatus,
                ("logout", &Method::POST) => Action::Logout,
                ("accounts", &Method::GET) => Action::Accounts,
                ("token", _) => Action::NotAllowed("GET"),
                ("login", _) => Action::NotAllowed("GET, POST"),
                ("logout", _) => Action::NotAllowed("POST"),
                ("accounts", _) => Action::NotAllowed("GET"),
                _ => Action::NotFound,
            };
            Ok(Route::Session {
                name,
                params,
                action,
            })
        }
        _ => Err(Box::new(not_found(path))),
    }
}

/// A percent-encoded path segment naming a `what` (session, profile).
fn decode_name(raw: &str, what: &str) -> Result<String, Box<Resp>> {
    match percent_encoding::percent_decode_str(raw).decode_utf8() {
        Ok(n) => Ok(n.into_owned()),
        Err(_) => Err(Box::new(error(
            ErrorCode::ValidationError,
            format!("the {what} name is not valid UTF-8"),
        ))),
    }
}

/// Decodes a login request body; an empty (or all-whitespace) body means the device code flow.
pub fn parse_login(body: &[u8]) -> Result<LoginRequest, Box<Resp>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(LoginRequest {
            flow: api::LoginFlow::DeviceCode,
        });
    }
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            ErrorCode::ValidationError,
            format!(
                "the body is not a login request ({e}); send {{\"flow\": \"device_code\"}} or {{\"flow\": \"authorization_code\"}}"
            ),
        ))
    })
}

/// Reads (bounded in size and time) and decodes the body of a login request.
pub async fn read_login<B>(req: Request<B>) -> Result<LoginRequest, Box<Resp>>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let body = read_body(req).await?;
    parse_login(&body)
}

async fn route<B>(
    state: &AppState,
    req: Request<B>,
    method: &Method,
    path: &str,
    query: &str,
) -> Resp
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (name, params, action) = match parse_route(method, path, query) {
        Err(resp) => return *resp,
        Ok(Route::Status) => return ok(status(state)),
        Ok(Route::Credentials { profile, wait }) => {
            return credentials(state, profile, wait).await;
        }
        Ok(Route::Session {
            name,
            params,
            action,
        }) => (name, params, action),
    };
    let Some(session) = state.manager.get(&name) else {
        return unknown_session(state, &name);
    };
    match action {
        Action::Token => match session.token(params.min_validity, params.wait).await {
            Ok(t) => ok(t),
            Err(e) => session_error(e),
        },
        Action::StartLogin => {
            let login = match read_login(req).await {
                Ok(l) => l,
                Err(resp) => return *resp,
            };
            match session.start_login(login.flow).await {
                Ok(started) => {
                    if !started.joined {
                        // After the login, the account list is fetched again for `status`.
                        let session = session.clone();
                        tokio::spawn(async move {
                            crate::session::accounts::refresh_after_login(&session).await;
                        });
                    }
                    ok(started)
                }
                Err(e) => session_error(e),
            }
        }
        Action::LoginStatus => ok(session.login_status(params.wait).await),
        Action::Logout => logout(&session, &name).await,
        Action::Accounts => match session.accounts(params.refresh).await {
            Ok(a) => ok(a),
            Err(e) => session_error(e),
        },
        Action::NotAllowed(allow) => not_allowed(method, path, allow),
        Action::NotFound => not_found(path),
    }
}

async fn credentials(state: &AppState, name: String, wait: Duration) -> Resp {
    let target = state
        .aws
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .profile_credentials(&name);
    let target = match target {
        Ok(t) => t,
        Err(e) => return error(ErrorCode::NotFound, e.to_string()),
    };
    let Some(session) = state.manager.get(&target.session) else {
        return unknown_session(state, &target.session);
    };
    // With `wait`, a login someone completes meanwhile is waited for (as `token --wait`).
    if !wait.is_zero()
        && let Err(e) = session.token(Duration::from_secs(60), wait).await
    {
        return session_error(e);
    }
    match session
        .role_credentials(&target.account_id, &target.role_name)
        .await
    {
        Ok(c) => ok(crate::api::CredentialsData {
            profile: name,
            session: target.session,
            account_id: target.account_id,
            role_name: target.role_name,
            access_key_id: c.access_key_id,
            secret_access_key: c.secret_access_key,
            session_token: c.session_token,
            expiration: c.expiration,
        }),
        Err(e) => session_error(e),
    }
}

async fn logout(session: &SessionHandle, name: &str) -> Resp {
    match session.logout().await {
        Ok((forgotten, upstream_logout)) => ok(LogoutData {
            session: name.to_string(),
            forgotten,
            upstream_logout,
        }),
        Err(e) => session_error(e),
    }
}

fn status(state: &AppState) -> StatusData {
    let health = state.store.health();
    let problems = state.config_problems.list();
    StatusData {
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: std::process::id(),
        started_at: state.started_at,
        socket: state.socket.clone(),
        store: StoreStatus {
            backend: health.backend,
            available: health.available,
            detail: health.detail,
        },
        config_file: state.config_file.clone(),
        config_error: {
            let all: Vec<String> = problems.iter().map(|p| p.problem.clone()).collect();
            (!all.is_empty()).then(|| all.join("; "))
        },
        config_problems: problems,
        sessions: state.manager.statuses(),
        profile_warnings: profile_warnings(&state.aws.read().unwrap_or_else(|p| p.into_inner())),
        profiles: profiles_freshness(state),
    }
}

fn profile_warnings(aws: &crate::config::AwsConfig) -> Vec<ProfileWarning> {
    crate::config::shadowed_processes(aws)
        .into_iter()
        .map(|s| ProfileWarning {
            message: format!(
                "profile {} has sso_* keys and a credential_process calling sso-agent; SDKs use their SSO provider first and never run the process. Keep only `credential_process = sso-agent credentials --profile <an SSO profile>` in it",
                s.profile
            ),
            location: s.location.to_string(),
            profile: s.profile,
        })
        .collect()
}

/// For each session with a profiles block and a fetched account list: is the block current?
fn profiles_freshness(state: &AppState) -> Vec<crate::api::ProfilesFreshness> {
    let blocks = state
        .profile_blocks
        .read()
        .unwrap_or_else(|p| p.into_inner());
    let aws = state.aws.read().unwrap_or_else(|p| p.into_inner());
    blocks
        .iter()
        .filter_map(|(name, block)| {
            let list = state.manager.get(name)?.last_accounts()?;
            let configured = aws
                .profiles
                .values()
                .filter(|p| p.sso_session.as_deref() == Some(name))
                .filter_map(|p| Some((p.sso_account_id.clone()?, p.sso_role_name.clone()?)))
                .collect();
            Some(crate::session::accounts::freshness(
                &list,
                block,
                &configured,
            ))
        })
        .collect()
}

fn unknown_session(state: &AppState, name: &str) -> Resp {
    let names = state.manager.names();
    let known = if names.is_empty() {
        format!("no sso-session is configured in {}", state.config_file)
    } else {
        format!("configured sessions: {}", names.join(", "))
    };
    error(
        ErrorCode::NotFound,
        format!("no sso-session named `{name}`; {known}"),
    )
}

fn not_found(path: &str) -> Resp {
    error(
        ErrorCode::NotFound,
        format!(
            "no such route: {path}; see /v1/status and /v1/sessions/{{name}}/{{token|login|logout|accounts}}"
        ),
    )
}

/// Unknown methods on known routes get the envelope with 404 NOT_FOUND (SPEC's code table
/// has no 405) and an `Allow` header naming what works.
fn not_allowed(method: &Method, path: &str, allow: &'static str) -> Resp {
    let mut resp = error(
        ErrorCode::NotFound,
        format!("no route for {method} {path}; allowed: {allow}"),
    );
    resp.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    resp
}

pub(crate) async fn read_body<B>(req: Request<B>) -> Result<Bytes, Box<Resp>>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use crate::bounded_server::BodyError;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(Box::new(too_large()));
    }
    crate::bounded_server::read_body(req.into_body(), MAX_BODY, BODY_TIMEOUT)
        .await
        .map_err(|e| {
            Box::new(match e {
                BodyError::TooLarge(_) => too_large(),
                BodyError::TooSlow(_) => error(
                    ErrorCode::Timeout,
                    "the request body did not arrive in time",
                ),
                BodyError::Broken(why) => error(
                    ErrorCode::ValidationError,
                    format!("could not read the body: {why}"),
                ),
            })
        })
}

fn too_large() -> Resp {
    error(
        ErrorCode::PayloadTooLarge,
        format!("the request body is larger than {MAX_BODY} bytes"),
    )
}

/// Query parameters shared by the session routes.
#[derive(Debug, Default, PartialEq)]
pub struct Params {
    pub min_validity: Duration,
    pub wait: Duration,
    /// `accounts`: skip the daemon's brief cache.
    pub refresh: bool,
}

impl Params {
    pub fn parse(query: &str) -> Result<Self, String> {
        let mut p = Params::default();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            let secs = |what: &str| -> Result<Duration, String> {
                v.parse::<u64>()
                    .map(Duration::from_secs)
                    .map_err(|_| format!("{what} must be a whole number of seconds, not `{v}`"))
            };
            match k.as_ref() {
                "minValidity" => {
                    p.min_validity = secs("minValidity")?;
                    if p.min_validity > MAX_MIN_VALIDITY {
                        return Err(format!(
                            "minValidity may be at most {} seconds",
                            MAX_MIN_VALIDITY.as_secs()
                        ));
                    }
                }
                "wait" => {
                    p.wait = secs("wait")?;
                    if p.wait > MAX_WAIT {
                        return Err(format!(
                            "wait may be at most {} seconds",
                            MAX_WAIT.as_secs()
                        ));
                    }
                }
                "refresh" => {
                    p.refresh = match v.as_ref() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(format!("refresh must be true or false, not `{v}`")),
                    };
                }
                other => {
                    return Err(format!(
                        "unknown query parameter `{other}`; known: minValidity, wait, refresh"
                    ));
                }
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_parse_and_reject() {
        assert_eq!(Params::parse("").unwrap(), Params::default());
        let p = Params::parse("minValidity=600&wait=5").unwrap();
        assert_eq!(p.min_validity, Duration::from_secs(600));
        assert_eq!(p.wait, Duration::from_secs(5));
        assert!(Params::parse("minValidity=-1").is_err());
        assert!(Params::parse("minValidity=ten").is_err());
        assert!(Params::parse("wait=99999").is_err());
        assert!(Params::parse("bogus=1").is_err());
        assert!(Params::parse("refresh=true").unwrap().refresh);
        assert!(!Params::parse("refresh=false").unwrap().refresh);
        assert!(Params::parse("refresh=yes").is_err());
    }

    #[test]
    fn errors_carry_code_and_status() {
        let r = error(ErrorCode::LoginRequired, "x");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = not_allowed(&Method::DELETE, "/v1/status", "GET");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.headers().get(header::ALLOW).unwrap(), "GET");
    }
}

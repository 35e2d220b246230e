//! The daemon started in-process, as mini-redis's `tests/server.rs` does: `daemon::run` on a
//! temp socket with a scripted upstream, a memory store and a paused clock, driven over the
//! real socket by a hyper client. Status, the envelope, an unknown session, credentials
//! routed by profile, logout, refresh on demand and on schedule, and the drain on stop,
//! without building or spawning the binary (the integration tests do that).
//! Must not: sleep to wait for state (move the paused clock or wait on a notification).
// The client side is a tokio UnixStream; the daemon's code is the same on every platform.
#![cfg(unix)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_core::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::sync::{Notify, oneshot};
use url::Url;

use super::{Deps, bind, run};
use crate::clock::{Clock, TestClock};
use crate::config::{Flags, Settings, StoreKind};
use crate::entropy::SeededEntropy;
use crate::env::Env;
use crate::oidc::*;
use crate::portal::{AccountPage, Portal, PortalError, RoleCredentials, RolePage};
use crate::secret::Secret;
use crate::session::{OidcFactory, PortalFactory};
use crate::store::SecretStore;
use crate::store::memory::MemoryStore;
use crate::store::records::{ClientRecord, RECORD_VERSION, TokenRecord, token_key};

const T0: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);
const MIN: Duration = Duration::from_secs(60);
const START_URL: &str = "https://d-inproc.awsapps.com/start";
/// Failure guard for waits; the paused clock reaches it only if nothing else can happen.
const GUARD: Duration = Duration::from_secs(24 * 3600);

/// Scripted sso-oidc and portal: CreateToken rotates `at-N`/`rt-N`, GetRoleCredentials
/// answers for any role, and every call is counted (and notified).
struct Upstream {
    clock: Arc<TestClock>,
    create_token: AtomicUsize,
    roles: Mutex<Vec<(String, String, String)>>,
    logouts: AtomicUsize,
    called: Notify,
}

impl Upstream {
    fn calls(&self) -> usize {
        self.create_token.load(Ordering::SeqCst)
    }

    async fn wait_for_calls(&self, n: usize) {
        tokio::time::timeout(GUARD, async {
            loop {
                let notified = self.called.notified();
                if self.calls() >= n {
                    return;
                }
                notified.await;
            }
        })
        .await
        .expect("CreateToken calls arrive");
    }
}

impl Oidc for Upstream {
    fn register_client(
        &self,
        _req: RegisterClientRequest,
    ) -> BoxFuture<'_, Result<RegisterClientResponse, OidcError>> {
        let now = self.clock.now().unix_timestamp();
        Box::pin(async move {
            Ok(RegisterClientResponse {
                client_id: "cid-new".into(),
                client_secret: Secret::new("csec-new"),
                client_id_issued_at: now,
                client_secret_expires_at: now + 90 * 86400,
                authorization_endpoint: None,
                token_endpoint: None,
            })
        })
    }

    fn start_device_authorization(
        &self,
        _req: StartDeviceAuthorizationRequest,
    ) -> BoxFuture<'_, Result<DeviceAuthorization, OidcError>> {
        Box::pin(async { Err(OidcError::Malformed("no logins in these tests".into())) })
    }

    fn create_token(
        &self,
        req: CreateTokenRequest,
    ) -> BoxFuture<'_, Result<TokenResponse, OidcError>> {
        let n = self.create_token.fetch_add(1, Ordering::SeqCst) + 1;
        self.called.notify_waiters();
        Box::pin(async move {
            assert_eq!(req.grant_type, GRANT_REFRESH_TOKEN);
            Ok(TokenResponse {
                access_token: Secret::new(format!("at-{n}")),
                token_type: Some("Bearer".into()),
                expires_in: 3600,
                refresh_token: Some(Secret::new(format!("rt-{n}"))),
                id_token: None,
            })
        })
    }

    fn authorize_url(&self, _: &str, _: &str, _: &str, _: &[String], _: &str) -> Url {
        Url::parse("http://127.0.0.1/authorize").unwrap()
    }
}

impl Portal for Upstream {
    fn get_role_credentials(
        &self,
        token: &Secret,
        account_id: &str,
        role_name: &str,
    ) -> BoxFuture<'_, Result<RoleCredentials, PortalError>> {
        self.roles.lock().unwrap().push((
            token.expose().to_string(),
            account_id.to_string(),
            role_name.to_string(),
        ));
        let expiration = self.clock.now() + 60 * MIN;
        Box::pin(async move {
            Ok(RoleCredentials {
                access_key_id: "ASIAINPROC".into(),
                secret_access_key: Secret::new("sak"),
                session_token: Secret::new("st"),
                expiration,
            })
        })
    }

    fn logout(&self, _token: &Secret) -> BoxFuture<'_, Result<(), PortalError>> {
        self.logouts.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    }

    fn list_accounts(
        &self,
        _token: &Secret,
        _next_token: Option<&str>,
    ) -> BoxFuture<'_, Result<AccountPage, PortalError>> {
        Box::pin(async {
            Ok(AccountPage {
                accounts: Vec::new(),
                next_token: None,
            })
        })
    }

    fn list_account_roles(
        &self,
        _token: &Secret,
        _account_id: &str,
        _next_token: Option<&str>,
    ) -> BoxFuture<'_, Result<RolePage, PortalError>> {
        Box::pin(async {
            Ok(RolePage {
                roles: Vec::new(),
                next_token: None,
            })
        })
    }
}

struct Factory(Arc<Upstream>);

impl OidcFactory for Factory {
    fn for_endpoint(&self, _endpoint: &Url) -> Arc<dyn Oidc> {
        self.0.clone()
    }
}

impl PortalFactory for Factory {
    fn for_endpoint(&self, _endpoint: &Url) -> Arc<dyn Portal> {
        self.0.clone()
    }
}

/// A daemon running in this test's runtime.
struct Daemon {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    store: Arc<MemoryStore>,
    upstream: Arc<Upstream>,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// The record of a login `lifetime` long, made at T0, holding refresh token `rt-0`.
fn logged_in(lifetime: Duration) -> TokenRecord {
    TokenRecord {
        version: RECORD_VERSION,
        session: "corp".into(),
        start_url: START_URL.into(),
        region: "us-east-1".into(),
        access_token: Secret::new("at-0"),
        expires_at: T0 + lifetime,
        issued_at: T0,
        refresh_token: Some(Secret::new("rt-0")),
        last_refresh_at: None,
        client: ClientRecord {
            client_id: "cid".into(),
            client_secret: Secret::new("csec"),
            client_id_issued_at: T0,
            client_secret_expires_at: T0 + Duration::from_secs(90 * 86400),
            region: "us-east-1".into(),
            scopes: vec!["sso:account:access".into()],
            grant_types: vec![],
            issuer_url: None,
            endpoint: "https://oidc.us-east-1.amazonaws.com/".into(),
        },
    }
}

fn corp_key() -> String {
    token_key(
        "corp",
        START_URL,
        "us-east-1",
        "https://oidc.us-east-1.amazonaws.com/",
    )
}

/// Starts the daemon with session `corp` and profile `dev` on it, its store holding `record`.
async fn start(record: Option<TokenRecord>) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    let aws_config = home.join(".aws/config");
    std::fs::write(
        &aws_config,
        format!(
            "[sso-session corp]\nsso_start_url = {START_URL}\nsso_region = us-east-1\n\n\
             [profile dev]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Admin\n"
        ),
    )
    .unwrap();
    let socket = dir.path().join("run/agent.sock");
    let clock = Arc::new(TestClock::new(T0));
    let upstream = Arc::new(Upstream {
        clock: clock.clone(),
        create_token: AtomicUsize::new(0),
        roles: Mutex::new(Vec::new()),
        logouts: AtomicUsize::new(0),
        called: Notify::new(),
    });
    let store = Arc::new(MemoryStore::new());
    if let Some(r) = record {
        store
            .set(&corp_key(), r.to_secret().unwrap())
            .await
            .unwrap();
    }
    let factory = Arc::new(Factory(upstream.clone()));
    let deps = Deps {
        clock,
        entropy: Arc::new(SeededEntropy::new(7)),
        store: store.clone(),
        oidc: factory.clone(),
        portal: factory,
        env: Env::from_pairs([("HOME", home.display().to_string())]),
        flags: Flags::default(),
    };
    let settings = Settings {
        socket: socket.clone(),
        log: "info".into(),
        refresh_margin: 10 * MIN,
        reregistration_margin: Duration::from_secs(7 * 86400),
        store: StoreKind::Memory,
        export_aws_cli_cache: false,
        aws_config_file: aws_config,
        agent_config_file: None,
    };
    // Bound before it runs: requests wait in the backlog until it serves.
    let bound = bind(&socket).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(run(bound, deps, settings, async {
        let _ = stopped.await;
    }));
    Daemon {
        _dir: dir,
        socket,
        store,
        upstream,
        stop: Some(stop),
        done,
    }
}

/// An answer: status, the `Allow` header, the JSON body.
struct Answer {
    status: u16,
    allow: Option<String>,
    body: Value,
}

impl Daemon {
    async fn call(&self, method: &str, path: &str) -> Answer {
        let stream = tokio::net::UnixStream::connect(&self.socket).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = tokio::time::timeout(GUARD, sender.send_request(req))
            .await
            .expect("an answer")
            .unwrap();
        let status = resp.status().as_u16();
        let allow = resp
            .headers()
            .get(http::header::ALLOW)
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
        Answer {
            status,
            allow,
            body,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.call("GET", path).await
    }

    /// Stops it as a signal would, and waits for the drain to finish.
    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(GUARD, &mut self.done)
            .await
            .expect("the daemon stops")
            .unwrap()
            .expect("run ends without an error");
        assert!(!self.socket.exists(), "the socket file is removed");
    }
}

/// Asserts the error envelope with `code` and HTTP `status`; returns the message.
#[track_caller]
fn assert_error(a: &Answer, status: u16, code: &str) -> String {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.body["success"], false, "{}", a.body);
    assert_eq!(a.body["error"]["code"], code, "{}", a.body);
    a.body["error"]["message"].as_str().unwrap().to_string()
}

#[tokio::test(start_paused = true)]
async fn status_shows_the_configured_session_and_the_store() {
    let d = start(Some(logged_in(60 * MIN))).await;
    let a = d.get("/v1/status").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["success"], true);
    let data = &a.body["data"];
    assert_eq!(data["store"]["backend"], "memory");
    assert_eq!(data["socket"], d.socket.display().to_string());
    assert_eq!(data["startedAt"], "2026-03-01T12:00:00Z");
    assert!(data["configError"].is_null(), "{data}");
    let sessions = data["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{data}");
    assert_eq!(sessions[0]["name"], "corp");
    assert_eq!(sessions[0]["startUrl"], START_URL);
    assert_eq!(sessions[0]["state"], "valid");
    assert_eq!(sessions[0]["refreshable"], true);
    assert_eq!(sessions[0]["accessTokenExpiresAt"], "2026-03-01T13:00:00Z");
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn every_answer_is_the_envelope_also_for_unknown_routes_and_methods() {
    let d = start(None).await;
    let m = assert_error(&d.get("/v2/nothing").await, 404, "NOT_FOUND");
    assert!(m.contains("/v2/nothing"), "{m}");
    let a = d.call("DELETE", "/v1/status").await;
    assert_error(&a, 404, "NOT_FOUND");
    assert_eq!(a.allow.as_deref(), Some("GET"));
    let m = assert_error(
        &d.get("/v1/sessions/corp/token?minValidity=soon").await,
        400,
        "VALIDATION_ERROR",
    );
    assert!(m.contains("minValidity"), "{m}");
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_unknown_session_is_not_found_and_names_the_configured_ones() {
    let d = start(None).await;
    let m = assert_error(&d.get("/v1/sessions/nope/token").await, 404, "NOT_FOUND");
    assert!(m.contains("`nope`") && m.contains("corp"), "{m}");
    // Known, but never logged in.
    let m = assert_error(
        &d.get("/v1/sessions/corp/token").await,
        401,
        "LOGIN_REQUIRED",
    );
    assert!(m.contains("sso-agent login corp"), "{m}");
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_token_is_served_and_refreshed_on_demand_and_on_schedule() {
    let d = start(Some(logged_in(30 * MIN))).await;
    let a = d.get("/v1/sessions/corp/token").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["data"]["accessToken"], "at-0");
    assert_eq!(a.body["data"]["expiresAt"], "2026-03-01T12:30:00Z");
    assert_eq!(d.upstream.calls(), 0);
    // More validity than is left (30 min): one refresh, and its token (60 min).
    let a = d.get("/v1/sessions/corp/token?minValidity=3000").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["data"]["accessToken"], "at-1");
    assert_eq!(a.body["data"]["expiresAt"], "2026-03-01T13:00:00Z");
    assert_eq!(d.upstream.calls(), 1);
    // The rotated refresh token was saved.
    let saved =
        TokenRecord::from_secret(&d.store.get(&corp_key()).await.unwrap().unwrap()).unwrap();
    assert_eq!(saved.refresh_token.unwrap().expose(), "rt-1");
    // No caller: the paused clock reaches the refresh point and the task refreshes.
    tokio::time::advance(55 * MIN).await;
    d.upstream.wait_for_calls(2).await;
    let a = d.get("/v1/sessions/corp/token").await;
    assert_eq!(a.body["data"]["accessToken"], "at-2", "{}", a.body);
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn credentials_are_routed_by_profile_to_its_session_and_role() {
    let d = start(Some(logged_in(60 * MIN))).await;
    let a = d.get("/v1/profiles/dev/credentials").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let data = &a.body["data"];
    assert_eq!(data["profile"], "dev");
    assert_eq!(data["session"], "corp");
    assert_eq!(data["accountId"], "111122223333");
    assert_eq!(data["roleName"], "Admin");
    assert_eq!(data["accessKeyId"], "ASIAINPROC");
    assert_eq!(
        *d.upstream.roles.lock().unwrap(),
        vec![("at-0".into(), "111122223333".into(), "Admin".into())],
        "the portal got corp's token for the profile's role"
    );
    // Cached: a second ask does not call the portal.
    assert_eq!(d.get("/v1/profiles/dev/credentials").await.status, 200);
    assert_eq!(d.upstream.roles.lock().unwrap().len(), 1);
    let m = assert_error(
        &d.get("/v1/profiles/nope/credentials").await,
        404,
        "NOT_FOUND",
    );
    assert!(m.contains("`nope`"), "{m}");
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn logout_forgets_the_tokens_here_and_upstream() {
    let d = start(Some(logged_in(60 * MIN))).await;
    assert_eq!(d.get("/v1/sessions/corp/token").await.status, 200);
    let a = d.call("POST", "/v1/sessions/corp/logout").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["data"]["session"], "corp");
    assert_eq!(a.body["data"]["forgotten"], true);
    assert_eq!(a.body["data"]["upstreamLogout"], "ended upstream");
    assert_eq!(d.upstream.logouts.load(Ordering::SeqCst), 1);
    assert!(d.store.get(&corp_key()).await.unwrap().is_none());
    assert_error(
        &d.get("/v1/sessions/corp/token").await,
        401,
        "LOGIN_REQUIRED",
    );
    let a = d.get("/v1/status").await;
    assert_eq!(a.body["data"]["sessions"][0]["state"], "login_required");
    // Again: nothing left to forget, nothing to end upstream.
    let a = d.call("POST", "/v1/sessions/corp/logout").await;
    assert_eq!(a.body["data"]["forgotten"], false, "{}", a.body);
    assert_eq!(d.upstream.logouts.load(Ordering::SeqCst), 1);
    d.stop().await;
}

//! Session task tests with a paused clock and a scripted upstream: proactive and on-demand
//! refresh, single flight, back-off, the end of a refresh chain, and RFC 8628 polling.
//! Over 500 lines for a reason: it is the behaviour net of the whole session module, and a
//! third of it is the scripted OIDC upstream and portal it shares with `trust_tests.rs`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use time::macros::datetime;
use tokio::sync::Notify;
use url::Url;

use super::*;
use crate::api::{LoginFlow, LoginState, SessionState};
use crate::clock::TestClock;
use crate::entropy::SeededEntropy;
use crate::oidc::*;
use crate::secret::Secret;
use crate::store::memory::MemoryStore;
use crate::store::records::{ClientRecord, RECORD_VERSION, TokenRecord, token_key};
use futures_core::future::BoxFuture;

/// The store key of `c`'s token record.
fn key_of(c: &SessionConfig) -> String {
    token_key(&c.name, &c.start_url, &c.region, c.oidc_endpoint.as_str())
}

const T0: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);
const MIN: Duration = Duration::from_secs(60);

type TokenScript = Box<dyn FnMut(&CreateTokenRequest) -> Result<TokenResponse, OidcError> + Send>;

/// A scripted OIDC upstream: counts calls, records when they happened, and can hold
/// CreateToken until released (to make concurrent callers overlap).
struct Scripted {
    clock: Arc<TestClock>,
    create_token: Mutex<TokenScript>,
    calls: AtomicUsize,
    call_times: Mutex<Vec<OffsetDateTime>>,
    called: Notify,
    gate: Mutex<Option<Arc<Notify>>>,
    device: Mutex<VecDeque<DeviceAuthorization>>,
    registers: AtomicUsize,
}

impl Scripted {
    fn new(clock: Arc<TestClock>, script: TokenScript) -> Arc<Self> {
        Arc::new(Self {
            clock,
            create_token: Mutex::new(script),
            calls: AtomicUsize::new(0),
            call_times: Mutex::new(Vec::new()),
            called: Notify::new(),
            gate: Mutex::new(None),
            device: Mutex::new(VecDeque::new()),
            registers: AtomicUsize::new(0),
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn wait_for_calls(&self, n: usize) {
        tokio::time::timeout(Duration::from_secs(24 * 3600), async {
            loop {
                let notified = self.called.notified();
                if self.calls() >= n {
                    return;
                }
                notified.await;
            }
        })
        .await
        .expect("calls arrive");
    }
}

fn token(at: &str, rt: Option<&str>, expires_in: i64) -> TokenResponse {
    TokenResponse {
        access_token: Secret::new(at),
        token_type: Some("Bearer".into()),
        expires_in,
        refresh_token: rt.map(Secret::new),
        id_token: None,
    }
}

impl Oidc for Scripted {
    fn register_client(
        &self,
        _req: RegisterClientRequest,
    ) -> BoxFuture<'_, Result<RegisterClientResponse, OidcError>> {
        let now = self.clock.now().unix_timestamp();
        let n = self.registers.fetch_add(1, Ordering::SeqCst) + 1;
        self.called.notify_waiters();
        Box::pin(async move {
            Ok(RegisterClientResponse {
                client_id: format!("cid-{n}"),
                client_secret: Secret::new("csec"),
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
        let next = self.device.lock().unwrap().pop_front();
        Box::pin(async move { next.ok_or_else(|| OidcError::Malformed("no device script".into())) })
    }

    fn create_token(
        &self,
        req: CreateTokenRequest,
    ) -> BoxFuture<'_, Result<TokenResponse, OidcError>> {
        Box::pin(async move {
            self.call_times.lock().unwrap().push(self.clock.now());
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.called.notify_waiters();
            let gate = self.gate.lock().unwrap().clone();
            if let Some(g) = gate {
                g.notified().await;
            }
            (self.create_token.lock().unwrap())(&req)
        })
    }

    fn authorize_url(
        &self,
        client_id: &str,
        redirect_uri: &str,
        state: &str,
        scopes: &[String],
        challenge: &str,
    ) -> Url {
        let mut u = Url::parse("http://127.0.0.1/authorize").unwrap();
        u.query_pairs_mut()
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state)
            .append_pair("scopes", &scopes.join(" "))
            .append_pair("code_challenge", challenge);
        u
    }
}

struct Factory(Arc<Scripted>);

impl OidcFactory for Factory {
    fn for_endpoint(&self, _endpoint: &Url) -> Arc<dyn Oidc> {
        self.0.clone()
    }
}

/// A portal that rejects the first `reject` calls with 401, then hands out credentials.
#[derive(Default)]
struct PortalStub {
    reject: AtomicUsize,
    calls: AtomicUsize,
    tokens: Mutex<Vec<String>>,
    /// ListAccountRoles of this account answers ForbiddenException.
    forbid_roles_of: Mutex<Option<String>>,
    /// The next this many ListAccounts calls answer TooManyRequestsException.
    throttle: AtomicUsize,
}

impl crate::portal::Portal for PortalStub {
    fn get_role_credentials(
        &self,
        token: &Secret,
        _a: &str,
        _r: &str,
    ) -> BoxFuture<'_, Result<crate::portal::RoleCredentials, crate::portal::PortalError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.tokens.lock().unwrap().push(token.expose().to_string());
        let reject = self.reject.load(Ordering::SeqCst) > 0;
        if reject {
            self.reject.fetch_sub(1, Ordering::SeqCst);
        }
        Box::pin(async move {
            if reject {
                return Err(crate::portal::PortalError::Unauthorized {
                    message: "Session token not found or invalid".into(),
                });
            }
            Ok(crate::portal::RoleCredentials {
                access_key_id: "ASIA1".into(),
                secret_access_key: Secret::new("sak"),
                session_token: Secret::new("st"),
                expiration: T0 + 60 * MIN,
            })
        })
    }

    fn logout(&self, _t: &Secret) -> BoxFuture<'_, Result<(), crate::portal::PortalError>> {
        Box::pin(async { Ok(()) })
    }

    /// Accounts `1` and `2`, one per page (`next_token` is the next index).
    fn list_accounts(
        &self,
        _t: &Secret,
        next: Option<&str>,
    ) -> BoxFuture<'_, Result<crate::portal::AccountPage, crate::portal::PortalError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let i: usize = next.map_or(0, |n| n.parse().unwrap());
        let throttled = self
            .throttle
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        Box::pin(async move {
            if throttled {
                return Err(crate::portal::PortalError::TooManyRequests {
                    message: "slow down".into(),
                });
            }
            Ok(crate::portal::AccountPage {
                accounts: vec![crate::portal::AccountInfo {
                    account_id: (i + 1).to_string(),
                    account_name: Some(format!("acct-{}", i + 1)),
                    email_address: None,
                }],
                next_token: (i == 0).then(|| "1".to_string()),
            })
        })
    }

    /// Roles `A` and `B` of every account, one per page.
    fn list_account_roles(
        &self,
        _t: &Secret,
        account: &str,
        next: Option<&str>,
    ) -> BoxFuture<'_, Result<crate::portal::RolePage, crate::portal::PortalError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let last = next.is_some();
        let forbidden = self.forbid_roles_of.lock().unwrap().as_deref() == Some(account);
        Box::pin(async move {
            if forbidden {
                return Err(crate::portal::PortalError::Forbidden {
                    message: "No access".into(),
                });
            }
            Ok(crate::portal::RolePage {
                roles: vec![if last { "B" } else { "A" }.to_string()],
                next_token: (!last).then(|| "b".to_string()),
            })
        })
    }
}

struct SharedPortal(Arc<PortalStub>);

impl PortalFactory for SharedPortal {
    fn for_endpoint(&self, _e: &Url) -> Arc<dyn crate::portal::Portal> {
        self.0.clone()
    }
}

impl PortalFactory for PortalStub {
    fn for_endpoint(&self, _e: &Url) -> Arc<dyn crate::portal::Portal> {
        Arc::new(PortalStub::default())
    }
}

struct Harness {
    oidc: Arc<Scripted>,
    store: Arc<MemoryStore>,
    handle: Arc<SessionHandle>,
    manager: Manager,
}

fn config() -> SessionConfig {
    SessionConfig {
        name: "corp".into(),
        start_url: "https://d-1.awsapps.com/start".into(),
        region: "us-east-1".into(),
        scopes: vec!["sso:account:access".into()],
        legacy: false,
        oidc_endpoint: Url::parse("http://127.0.0.1:1").unwrap(),
        portal_endpoint: Url::parse("http://127.0.0.1:2").unwrap(),
    }
}

fn stored(lifetime: Duration, rt: Option<&str>) -> TokenRecord {
    TokenRecord {
        version: RECORD_VERSION,
        session: "corp".into(),
        start_url: "https://d-1.awsapps.com/start".into(),
        region: "us-east-1".into(),
        access_token: Secret::new("at-0"),
        expires_at: T0 + lifetime,
        issued_at: T0,
        refresh_token: rt.map(Secret::new),
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
            endpoint: "http://127.0.0.1:1/".into(),
        },
    }
}

async fn harness(record: Option<TokenRecord>, script: TokenScript) -> Harness {
    let clock = Arc::new(TestClock::new(T0));
    let oidc = Scripted::new(clock.clone(), script);
    let store = Arc::new(MemoryStore::new());
    if let Some(rec) = record {
        let c = config();
        store
            .set(&key_of(&c), rec.to_secret().unwrap())
            .await
            .unwrap();
    }
    let manager = Manager::new(Deps {
        clock,
        entropy: Arc::new(SeededEntropy::new(1)),
        store: store.clone(),
        oidc: Arc::new(Factory(oidc.clone())),
        portal: Arc::new(PortalStub::default()),
        aws_cli_cache: None,
        refresh_margin: 10 * MIN,
        reregistration_margin: Duration::from_secs(7 * 86400),
    });
    manager.apply(vec![config()]);
    let handle = manager.get("corp").unwrap();
    // Let the task load its record.
    let mut st = handle.status_watch();
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        st.wait_for(|s| s.access_token_expires_at.is_some()),
    )
    .await;
    Harness {
        oidc,
        store,
        handle,
        manager,
    }
}

/// The session's record as the store holds it now.
async fn saved_record(store: &MemoryStore) -> TokenRecord {
    let c = config();
    let saved = store.get(&key_of(&c)).await.unwrap().unwrap();
    TokenRecord::from_secret(&saved).unwrap()
}

fn rotating() -> TokenScript {
    let mut n = 0;
    Box::new(move |req| {
        assert_eq!(req.grant_type, GRANT_REFRESH_TOKEN);
        n += 1;
        Ok(token(&format!("at-{n}"), Some(&format!("rt-{n}")), 3600))
    })
}

#[tokio::test(start_paused = true)]
async fn refreshes_before_expiry_with_no_caller() {
    let h = harness(Some(stored(60 * MIN, Some("rt-0"))), rotating()).await;
    assert_eq!(h.handle.status().state, SessionState::Valid);
    tokio::time::advance(40 * MIN).await;
    tokio::task::yield_now().await;
    assert_eq!(h.oidc.calls(), 0, "nothing before the refresh point");
    tokio::time::advance(15 * MIN).await;
    h.oidc.wait_for_calls(1).await;
    let t = h
        .handle
        .token(Duration::ZERO, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(t.access_token.expose(), "at-1");
    // rotation persisted: the store holds the new refresh token
    let saved = saved_record(&h.store).await;
    assert_eq!(saved.refresh_token.unwrap().expose(), "rt-1");
    assert!(saved.last_refresh_at.is_some());
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_share_one_refresh() {
    let h = harness(Some(stored(60 * MIN, Some("rt-0"))), rotating()).await;
    let gate = Arc::new(Notify::new());
    *h.oidc.gate.lock().unwrap() = Some(gate.clone());
    let mut joins = Vec::new();
    for _ in 0..200 {
        let handle = h.handle.clone();
        joins.push(tokio::spawn(async move {
            handle.token(2 * 60 * MIN, Duration::ZERO).await
        }));
    }
    h.oidc.wait_for_calls(1).await;
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    gate.notify_waiters();
    for j in joins {
        assert_eq!(j.await.unwrap().unwrap().access_token.expose(), "at-1");
    }
    assert_eq!(h.oidc.calls(), 1, "exactly one CreateToken");
}

#[tokio::test(start_paused = true)]
async fn transient_failures_back_off_and_keep_serving() {
    let fails = Arc::new(AtomicUsize::new(2));
    let f = fails.clone();
    let script: TokenScript = Box::new(move |_| {
        if f.load(Ordering::SeqCst) > 0 {
            f.fetch_sub(1, Ordering::SeqCst);
            Err(OidcError::InternalServer {
                message: "boom".into(),
            })
        } else {
            Ok(token("at-ok", Some("rt-ok"), 3600))
        }
    });
    let h = harness(Some(stored(60 * MIN, Some("rt-0"))), script).await;
    tokio::time::advance(51 * MIN).await;
    h.oidc.wait_for_calls(1).await;
    // still served while failing
    let t = h
        .handle
        .token(Duration::ZERO, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(t.access_token.expose(), "at-0");
    assert!(h.handle.status().last_error.unwrap().contains("retrying"));
    tokio::time::advance(10 * MIN).await;
    h.oidc.wait_for_calls(3).await;
    let t = h
        .handle
        .token(Duration::ZERO, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(t.access_token.expose(), "at-ok");
    assert_eq!(h.handle.status().last_error, None);
}

#[tokio::test(start_paused = true)]
async fn invalid_grant_ends_the_chain_but_serves_until_expiry() {
    let script: TokenScript = Box::new(|_| {
        Err(OidcError::InvalidGrant {
            message: "Invalid refresh token provided".into(),
        })
    });
    let h = harness(Some(stored(60 * MIN, Some("rt-0"))), script).await;
    let t = h.handle.token(2 * 60 * MIN, Duration::ZERO).await.unwrap();
    assert_eq!(t.access_token.expose(), "at-0", "still valid, still served");
    assert_eq!(h.oidc.calls(), 1);
    let st = h.handle.status();
    assert_eq!(st.state, SessionState::Expiring);
    assert!(!st.refreshable);
    assert!(st.last_error.unwrap().contains("sso-agent login corp"));
    tokio::time::advance(61 * MIN).await;
    let err = h
        .handle
        .token(Duration::ZERO, Duration::ZERO)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SessionError::LoginRequired(s) if s == "corp"),
        "{err:?}"
    );
    assert_eq!(h.oidc.calls(), 1, "no retries after the chain ended");
}

#[tokio::test(start_paused = true)]
async fn device_flow_polls_per_rfc_8628() {
    let replies = Arc::new(Mutex::new(VecDeque::from(vec![
        Err(OidcError::AuthorizationPending {
            message: String::new(),
        }),
        Err(OidcError::AuthorizationPending {
            message: String::new(),
        }),
        Err(OidcError::SlowDown {
            message: String::new(),
        }),
        Err(OidcError::AuthorizationPending {
            message: String::new(),
        }),
        Ok(token("at-login", Some("rt-login"), 28800)),
    ])));
    let r = replies.clone();
    let script: TokenScript = Box::new(move |req| {
        assert_eq!(req.grant_type, GRANT_DEVICE_CODE);
        r.lock().unwrap().pop_front().unwrap()
    });
    let h = harness(None, script).await;
    h.oidc
        .device
        .lock()
        .unwrap()
        .push_back(DeviceAuthorization {
            device_code: Secret::new("dc"),
            user_code: "ABCD-EFGH".into(),
            verification_uri: "https://device.example/".into(),
            verification_uri_complete: Some("https://device.example/?user_code=ABCD-EFGH".into()),
            expires_in: 600,
            interval: Some(1),
        });
    let started = h.handle.start_login(LoginFlow::DeviceCode).await.unwrap();
    assert_eq!(started.user_code.as_deref(), Some("ABCD-EFGH"));
    // A second login request joins the pending one.
    let again = h.handle.start_login(LoginFlow::DeviceCode).await.unwrap();
    assert_eq!(again.login_id, started.login_id);
    assert!(again.joined);
    let st = h.handle.login_status(Duration::from_secs(600)).await;
    assert_eq!(st.state, LoginState::Succeeded, "{st:?}");
    let times = h.oidc.call_times.lock().unwrap().clone();
    let gaps: Vec<i64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).whole_seconds())
        .collect();
    assert_eq!(
        gaps,
        vec![1, 1, 6, 6],
        "first poll at once, then interval, +5 s after slow_down"
    );
    let t = h
        .handle
        .token(Duration::ZERO, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(t.access_token.expose(), "at-login");
}

#[tokio::test(start_paused = true)]
async fn device_flow_stops_at_expires_in() {
    let script: TokenScript = Box::new(|_| {
        Err(OidcError::AuthorizationPending {
            message: String::new(),
        })
    });
    let h = harness(None, script).await;
    h.oidc
        .device
        .lock()
        .unwrap()
        .push_back(DeviceAuthorization {
            device_code: Secret::new("dc"),
            user_code: "ABCD-EFGH".into(),
            verification_uri: "https://device.example/".into(),
            verification_uri_complete: None,
            expires_in: 10,
            interval: Some(3),
        });
    h.handle.start_login(LoginFlow::DeviceCode).await.unwrap();
    let st = h.handle.login_status(Duration::from_secs(60)).await;
    assert_eq!(st.state, LoginState::Expired);
    assert!(
        h.oidc.calls() <= 5,
        "polls stop at expiry: {}",
        h.oidc.calls()
    );
    assert_eq!(h.handle.status().state, SessionState::LoginRequired);
}

#[tokio::test(start_paused = true)]
async fn reregisters_before_the_login_client_lapses_once_per_margin() {
    let clock = Arc::new(TestClock::new(T0));
    let oidc = Scripted::new(clock.clone(), rotating());
    let store = Arc::new(MemoryStore::new());
    let c = config();
    // the session's tokens (30-day access token so refreshes stay out of the way) …
    let mut rec = stored(30 * 24 * 60 * MIN, Some("rt-0"));
    rec.client.client_secret_expires_at = T0 + 10 * MIN;
    store
        .set(&key_of(&c), rec.to_secret().unwrap())
        .await
        .unwrap();
    // … and its login client, whose secret lapses in 10 minutes
    let spec = login::device_spec(c.oidc_endpoint.as_str(), &c.region, &c.scopes);
    let short = ClientRecord {
        client_secret_expires_at: T0 + 10 * MIN,
        ..rec.client.clone()
    };
    let key = crate::store::records::registration_key(
        &spec.endpoint,
        &spec.region,
        &spec.scopes,
        &spec.grant_types,
        None,
    );
    store.set(&key, short.to_secret().unwrap()).await.unwrap();
    let manager = Manager::new(Deps {
        clock,
        entropy: Arc::new(SeededEntropy::new(1)),
        store: store.clone(),
        oidc: Arc::new(Factory(oidc.clone())),
        portal: Arc::new(PortalStub::default()),
        aws_cli_cache: None,
        refresh_margin: 10 * MIN,
        reregistration_margin: 2 * MIN,
    });
    manager.apply(vec![c.clone()]);
    let handle = manager.get("corp").unwrap();
    let mut st = handle.status_watch();
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        st.wait_for(|s| s.access_token_expires_at.is_some()),
    )
    .await;
    assert_eq!(
        handle.status().login_needed_by,
        Some(T0 + 10 * MIN),
        "the chain ends with its client"
    );

    tokio::time::advance(7 * MIN).await;
    tokio::task::yield_now().await;
    assert_eq!(
        oidc.registers.load(Ordering::SeqCst),
        0,
        "not before expiry - margin"
    );
    tokio::time::advance(2 * MIN).await;
    tokio::time::timeout(Duration::from_secs(60), async {
        while oidc.registers.load(Ordering::SeqCst) < 1 {
            let n = oidc.called.notified();
            n.await;
        }
    })
    .await
    .unwrap();
    // The fresh client is stored for later logins; the 90-day secret needs no more for now.
    tokio::time::advance(24 * 60 * MIN).await;
    tokio::task::yield_now().await;
    assert_eq!(
        oidc.registers.load(Ordering::SeqCst),
        1,
        "one registration, no loop"
    );
    let fresh = ClientRecord::from_secret(&store.get(&key).await.unwrap().unwrap()).unwrap();
    assert_eq!(fresh.client_id, "cid-1");
}

#[tokio::test(start_paused = true)]
async fn role_credentials_refresh_once_on_401_and_are_cached() {
    let clock = Arc::new(TestClock::new(T0));
    let oidc = Scripted::new(clock.clone(), rotating());
    let store = Arc::new(MemoryStore::new());
    let c = config();
    store
        .set(
            &key_of(&c),
            stored(60 * MIN, Some("rt-0")).to_secret().unwrap(),
        )
        .await
        .unwrap();
    let portal = Arc::new(PortalStub::default());
    portal.reject.store(1, Ordering::SeqCst);
    let manager = Manager::new(Deps {
        clock,
        entropy: Arc::new(SeededEntropy::new(1)),
        store,
        oidc: Arc::new(Factory(oidc.clone())),
        portal: Arc::new(SharedPortal(portal.clone())),
        aws_cli_cache: None,
        refresh_margin: 10 * MIN,
        reregistration_margin: Duration::from_secs(7 * 86400),
    });
    manager.apply(vec![c]);
    let h = manager.get("corp").unwrap();
    let creds = h.role_credentials("111122223333", "Admin").await.unwrap();
    assert_eq!(creds.access_key_id, "ASIA1");
    assert_eq!(oidc.calls(), 1, "one refresh after the 401");
    assert_eq!(
        *portal.tokens.lock().unwrap(),
        ["at-0", "at-1"],
        "retried with the refreshed token"
    );
    // cached: no portal call while more than 15 minutes remain
    tokio::time::advance(30 * MIN).await;
    h.role_credentials("111122223333", "Admin").await.unwrap();
    assert_eq!(portal.calls.load(Ordering::SeqCst), 2);
    // under 15 minutes left: fetched again
    tokio::time::advance(20 * MIN).await;
    h.role_credentials("111122223333", "Admin").await.unwrap();
    assert_eq!(portal.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn accounts_follow_every_page_and_are_cached_briefly() {
    let clock = Arc::new(TestClock::new(T0));
    let oidc = Scripted::new(clock.clone(), rotating());
    let store = Arc::new(MemoryStore::new());
    let c = config();
    store
        .set(
            &key_of(&c),
            stored(60 * MIN, Some("rt-0")).to_secret().unwrap(),
        )
        .await
        .unwrap();
    let portal = Arc::new(PortalStub::default());
    let manager = Manager::new(Deps {
        clock,
        entropy: Arc::new(SeededEntropy::new(1)),
        store,
        oidc: Arc::new(Factory(oidc.clone())),
        portal: Arc::new(SharedPortal(portal.clone())),
        aws_cli_cache: None,
        refresh_margin: 10 * MIN,
        reregistration_margin: Duration::from_secs(7 * 86400),
    });
    manager.apply(vec![c]);
    let h = manager.get("corp").unwrap();
    let list = h.accounts(false).await.unwrap();
    let got: Vec<(String, Vec<String>)> = list
        .accounts
        .iter()
        .map(|a| (a.account_id.clone(), a.roles.clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("1".to_string(), vec!["A".to_string(), "B".to_string()]),
            ("2".to_string(), vec!["A".to_string(), "B".to_string()]),
        ]
    );
    // 2 account pages + 2 accounts × 2 role pages
    assert_eq!(portal.calls.load(Ordering::SeqCst), 6);
    h.accounts(false).await.unwrap();
    assert_eq!(
        portal.calls.load(Ordering::SeqCst),
        6,
        "served from the cache"
    );
    h.accounts(true).await.unwrap();
    assert_eq!(
        portal.calls.load(Ordering::SeqCst),
        12,
        "refresh asks again"
    );
    tokio::time::advance(accounts::CACHE_FOR + Duration::from_secs(1)).await;
    h.accounts(false).await.unwrap();
    assert_eq!(
        portal.calls.load(Ordering::SeqCst),
        18,
        "expired: asks again"
    );
    // Throttled twice: retried after 1 s and 2 s (on the injected clock), then served.
    portal.throttle.store(2, Ordering::SeqCst);
    let before = portal.calls.load(Ordering::SeqCst);
    let started = tokio::time::Instant::now();
    assert_eq!(h.accounts(true).await.unwrap().accounts.len(), 2);
    assert_eq!(portal.calls.load(Ordering::SeqCst), before + 8);
    assert!(started.elapsed() >= Duration::from_secs(3));
    // Throttled past the attempts: an upstream error, not a hang.
    portal.throttle.store(4, Ordering::SeqCst);
    assert!(matches!(
        h.accounts(true).await,
        Err(SessionError::Upstream(UpstreamError::ListAccounts {
            cause: crate::portal::PortalError::TooManyRequests { .. },
            ..
        }))
    ));
    portal.throttle.store(0, Ordering::SeqCst);
    // An account whose roles the portal refuses (stale assignment) is listed without roles.
    *portal.forbid_roles_of.lock().unwrap() = Some("2".into());
    let list = h.accounts(true).await.unwrap();
    assert_eq!(list.accounts.len(), 2);
    assert_eq!(list.accounts[0].roles, ["A", "B"]);
    assert!(list.accounts[1].roles.is_empty());
    // No list without a login.
    h.logout().await.unwrap();
    assert!(matches!(
        h.accounts(false).await,
        Err(SessionError::LoginRequired(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn pkce_login_expires_without_a_callback_and_closes_its_listener() {
    let h = harness(
        None,
        Box::new(|_| {
            Err(OidcError::InvalidGrant {
                message: "PKCE verification failed".into(),
            })
        }),
    )
    .await;
    let started = h
        .handle
        .start_login(LoginFlow::AuthorizationCode)
        .await
        .unwrap();
    let url = Url::parse(started.authorize_url.as_deref().unwrap()).unwrap();
    let redirect: String = url
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1
        .into_owned();
    let port = Url::parse(&redirect).unwrap().port().unwrap();
    tokio::time::advance(11 * MIN).await;
    let st = h.handle.login_status(Duration::from_secs(60)).await;
    assert_eq!(st.state, LoginState::Expired, "{st:?}");
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "listener closed"
    );
}

#[tokio::test]
async fn pkce_verifier_rejected_is_a_failed_login() {
    let h = harness(
        None,
        Box::new(|req| {
            assert_eq!(req.grant_type, GRANT_AUTHORIZATION_CODE);
            assert!(
                req.code_verifier
                    .as_ref()
                    .is_some_and(|v| v.expose().len() == 64)
            );
            Err(OidcError::InvalidGrant {
                message: "PKCE verification failed".into(),
            })
        }),
    )
    .await;
    let started = h
        .handle
        .start_login(LoginFlow::AuthorizationCode)
        .await
        .unwrap();
    let url = Url::parse(started.authorize_url.as_deref().unwrap()).unwrap();
    let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    // Play the browser: come back with a code and the right state.
    let callback = format!("{}?code=c&state={}", q["redirect_uri"], q["state"]);
    let cb = Url::parse(&callback).unwrap();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", cb.port().unwrap()))
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let req = format!(
        "GET {}?{} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        cb.path(),
        cb.query().unwrap()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let st = h.handle.login_status(Duration::from_secs(30)).await;
    assert_eq!(st.state, LoginState::Failed, "{st:?}");
    assert!(st.message.contains("PKCE verification failed"));
    assert_eq!(h.handle.status().state, SessionState::LoginRequired);
}

#[tokio::test(start_paused = true)]
async fn valid_tokens_are_served_without_the_task_and_withdrawn_at_logout() {
    let h = harness(Some(stored(30 * MIN, Some("rt-0"))), rotating()).await;
    // A caller asking more than is left goes to the task, which refreshes once.
    let t = h.handle.token(45 * MIN, Duration::ZERO).await.unwrap();
    assert_eq!(t.access_token.expose(), "at-1");
    // The published token (at-1, 60 min) meets these asks with no further call.
    for _ in 0..10 {
        let t = h.handle.token(50 * MIN, Duration::ZERO).await.unwrap();
        assert_eq!(t.access_token.expose(), "at-1");
    }
    assert_eq!(h.oidc.calls(), 1);
    let (had, _) = h.handle.logout().await.unwrap();
    assert!(had);
    // Once logout has answered, no caller gets the old token from the published copy.
    let err = h.handle.token(Duration::ZERO, Duration::ZERO).await;
    assert!(
        matches!(err, Err(SessionError::LoginRequired(_))),
        "{:?}",
        err.map(|t| t.expires_at)
    );
}

/// A session restarted (its configuration changed) while a scheduled refresh is in flight
/// and no caller holds it: the old task saves the rotated tokens before the new one reads
/// the store, so the chain goes on with one CreateToken and the new refresh token (upstream
/// already retired the old one).
#[tokio::test(start_paused = true)]
async fn a_restarted_session_keeps_the_refresh_its_predecessor_had_in_flight() {
    let Harness {
        oidc,
        store,
        handle,
        manager,
    } = harness(Some(stored(30 * MIN, Some("rt-0"))), rotating()).await;
    drop(handle);
    let gate = Arc::new(Notify::new());
    *oidc.gate.lock().unwrap() = Some(gate.clone());
    tokio::time::advance(25 * MIN).await;
    oidc.wait_for_calls(1).await;
    let mut changed = config();
    changed.scopes.push("sso:account:list".into());
    manager.apply(vec![changed]);
    let new = manager.get("corp").unwrap();
    gate.notify_waiters();
    let t = new.token(Duration::ZERO, Duration::ZERO).await.unwrap();
    assert_eq!(
        t.access_token.expose(),
        "at-1",
        "the new task loaded the saved refresh"
    );
    let t = new.token(45 * MIN, Duration::ZERO).await.unwrap();
    assert_eq!(t.access_token.expose(), "at-1");
    assert_eq!(oidc.calls(), 1);
    manager.shutdown(Duration::from_secs(5)).await;
    let saved = saved_record(&store).await;
    assert_eq!(saved.refresh_token.unwrap().expose(), "rt-1");
}

/// New margins reach running sessions without a restart: the next refresh moves.
#[tokio::test(start_paused = true)]
async fn margins_change_live() {
    let h = harness(Some(stored(60 * MIN, Some("rt-0"))), rotating()).await;
    let before = h.handle.status().next_refresh_at.unwrap();
    let mut st = h.handle.status_watch();
    h.manager
        .set_margins(30 * MIN, Duration::from_secs(7 * 86400));
    let after = tokio::time::timeout(
        Duration::from_secs(5),
        st.wait_for(|s| s.next_refresh_at != Some(before)),
    )
    .await
    .expect("the schedule moved")
    .unwrap()
    .next_refresh_at
    .unwrap();
    assert!(
        after < before && after <= T0 + 30 * MIN,
        "{before} -> {after}"
    );
    assert_eq!(h.oidc.calls(), 0, "no restart, no refresh");
}

#[path = "trust_tests.rs"]
mod trust;

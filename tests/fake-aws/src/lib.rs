//! fake-aws: a strict, in-process fake of AWS SSO OIDC and the SSO portal on one loopback
//! port, for sso-agent's tests and offline demo. It follows `reference/WIRE.md` and the AWS
//! models exactly (shapes, units, explicit nulls, error header + body), records every request,
//! injects faults, and issues findable secrets (`fake-at-…`, `fake-rt-…`, …).
//! This file is the public handle (`FakeAws`) and its types; routes live in the modules.
//! Must not: be lenient where the real service is strict; panic on any input.

mod authorize;
mod control;
mod oidc;
mod portal;
mod server;
mod signin;
mod state;
mod stream;
mod wire;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::state::State;

/// What `GET /authorize` does with a valid request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthorizeMode {
    /// Redirect at once with `code` and `state` (the user approved).
    Approve,
    /// Redirect at once with `error=access_denied` and `state`.
    Deny,
    /// Show an HTML page with Approve / Deny links (offline demo in a browser).
    Page,
}

/// Lifetimes and behaviour of the fake; change at run time with `FakeAws::set_config`.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    /// Access token lifetime (`expiresIn`). Default 3600 s.
    pub access_token_ttl: Duration,
    /// Client secret lifetime (`clientSecretExpiresAt`). Default 90 days.
    pub client_secret_ttl: Duration,
    /// Device and user code lifetime (`expiresIn`). Default 600 s.
    pub device_code_ttl: Duration,
    /// Device flow polling `interval` in seconds. Default 1; 0 allows polling at any rate.
    pub device_interval_secs: u64,
    /// A refresh issues a new refresh token and retires the presented one. Default true.
    pub rotate_refresh_tokens: bool,
    /// Issue refresh tokens at all (still only for registrations with `sso:account:access`).
    pub issue_refresh_tokens: bool,
    /// Device codes approve themselves as soon as they are issued. Default false.
    pub auto_approve: bool,
    /// What `/authorize` does. Default `Approve`.
    pub authorize_mode: AuthorizeMode,
    /// Role credential lifetime (`expiration`). Default 3600 s.
    pub role_credentials_ttl: Duration,
    /// Role assignments: (account id, role names). Default `111122223333` with Admin, ReadOnly.
    pub accounts: Vec<(String, Vec<String>)>,
    /// The most items one ListAccounts / ListAccountRoles page holds, whatever `max_result`
    /// asks (the service may return fewer than asked, and callers must follow `nextToken`).
    /// Default 20; 1 makes every item its own page.
    pub page_size: usize,
    /// RFC 8628 §3.5: a pending device code polled sooner than its interval gets
    /// SlowDownException and 5 s more interval. Default true.
    pub enforce_poll_interval: bool,
    /// One line per request on stderr (operation, status, error name; never a secret).
    pub log_requests: bool,
}

impl Default for FakeConfig {
    fn default() -> FakeConfig {
        FakeConfig {
            access_token_ttl: Duration::from_secs(3600),
            client_secret_ttl: Duration::from_secs(90 * 24 * 3600),
            device_code_ttl: Duration::from_secs(600),
            device_interval_secs: 1,
            rotate_refresh_tokens: true,
            issue_refresh_tokens: true,
            auto_approve: false,
            authorize_mode: AuthorizeMode::Approve,
            role_credentials_ttl: Duration::from_secs(3600),
            accounts: vec![(
                "111122223333".to_owned(),
                vec!["Admin".to_owned(), "ReadOnly".to_owned()],
            )],
            page_size: 20,
            enforce_poll_interval: true,
            log_requests: false,
        }
    }
}

/// The operations the fake tells apart (for counts, faults and the request log).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    RegisterClient,
    StartDeviceAuthorization,
    CreateToken,
    Authorize,
    GetRoleCredentials,
    ListAccounts,
    ListAccountRoles,
    Logout,
    /// Anything else: the device page, consent decisions, unknown routes.
    Other,
}

impl Op {
    pub const ALL: [Op; 9] = [
        Op::RegisterClient,
        Op::StartDeviceAuthorization,
        Op::CreateToken,
        Op::Authorize,
        Op::GetRoleCredentials,
        Op::ListAccounts,
        Op::ListAccountRoles,
        Op::Logout,
        Op::Other,
    ];

    /// The AWS operation name (`"CreateToken"`), as the control API spells it.
    pub fn name(self) -> &'static str {
        match self {
            Op::RegisterClient => "RegisterClient",
            Op::StartDeviceAuthorization => "StartDeviceAuthorization",
            Op::CreateToken => "CreateToken",
            Op::Authorize => "Authorize",
            Op::GetRoleCredentials => "GetRoleCredentials",
            Op::ListAccounts => "ListAccounts",
            Op::ListAccountRoles => "ListAccountRoles",
            Op::Logout => "Logout",
            Op::Other => "Other",
        }
    }

    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Portal operations answer errors as `{"message"}`; OIDC ones as `{"error", …}`.
    pub fn is_portal(self) -> bool {
        matches!(
            self,
            Op::GetRoleCredentials | Op::ListAccounts | Op::ListAccountRoles | Op::Logout
        )
    }
}

/// A scripted misbehaviour for one call of an operation (see `FakeAws::push_fault`).
#[derive(Clone, Debug)]
pub enum Fault {
    /// A modeled-looking error: `x-amzn-ErrorType: <error_type>:<namespace>`; OIDC body
    /// `{"error", "error_description"}`, portal body `{"message": description}`.
    Error {
        status: u16,
        error_type: String,
        error: String,
        description: String,
    },
    /// Wait, then answer normally.
    Delay(Duration),
    /// Close the connection without any response.
    Reset,
    /// 200 with a body that is not JSON.
    Garbage,
    /// Never answer (until the client gives up or the fake stops).
    Hang,
    /// An HTML error page with this status and no AWS error header.
    Html(u16),
    /// A redirect with this status (301, 302, 303, 307, 308) to this `Location`. A client
    /// must not follow it: AWS never redirects API calls, and a follower would resend secrets.
    Redirect(u16, String),
    /// 200 `application/json` with a body of this many bytes (spaces, so never a JSON value),
    /// streamed in 64 KiB chunks with `Content-Length`, never held in memory.
    HugeBody(u64),
    /// 200 `application/json` headers at once, then one byte of body per this interval,
    /// forever (until the client leaves or the fake stops).
    Drip(Duration),
}

impl Fault {
    fn error(status: u16, error_type: &str, error: &str, description: &str) -> Fault {
        Fault::Error {
            status,
            error_type: error_type.to_owned(),
            error: error.to_owned(),
            description: description.to_owned(),
        }
    }

    pub fn slow_down() -> Fault {
        Fault::error(
            400,
            "SlowDownException",
            "slow_down",
            "Client is polling too fast",
        )
    }

    pub fn invalid_grant() -> Fault {
        Fault::error(
            400,
            "InvalidGrantException",
            "invalid_grant",
            "Invalid refresh token provided",
        )
    }

    pub fn internal() -> Fault {
        Fault::error(
            500,
            "InternalServerException",
            "server_error",
            "An internal error occurred",
        )
    }

    pub fn access_denied() -> Fault {
        Fault::error(
            400,
            "AccessDeniedException",
            "access_denied",
            "Access denied",
        )
    }

    pub fn expired_token() -> Fault {
        Fault::error(
            400,
            "ExpiredTokenException",
            "expired_token",
            "The token has expired",
        )
    }

    pub fn invalid_client() -> Fault {
        Fault::error(
            401,
            "InvalidClientException",
            "invalid_client",
            "Client credentials are invalid",
        )
    }

    /// Portal 401 (WIRE.md §9.3 row P).
    pub fn unauthorized() -> Fault {
        Fault::error(
            401,
            "UnauthorizedException",
            "unauthorized",
            "Session token not found or invalid",
        )
    }

    /// Portal 429 (WIRE.md §9.3 row R).
    pub fn too_many_requests() -> Fault {
        Fault::error(
            429,
            "TooManyRequestsException",
            "too_many_requests",
            "Rate exceeded",
        )
    }
}

/// One request as received (control-API requests under `/_fake/` are not recorded).
#[derive(Clone, Debug)]
pub struct Recorded {
    pub op: Op,
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Header names in lower case, values as (lossy) text, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// First value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn body_json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Shared by the handle and the server tasks.
pub(crate) struct Inner {
    state: Mutex<State>,
    changed: Notify,
    addr: SocketAddr,
}

impl Inner {
    /// The state, even after a panic elsewhere poisoned the lock (the fake must keep answering).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes every `wait_*` helper to re-check its condition.
    pub(crate) fn notify(&self) {
        self.changed.notify_waiters();
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A running fake. Clones share it; it stops when the last clone is dropped.
#[derive(Clone)]
pub struct FakeAws {
    inner: Arc<Inner>,
    /// Dropping the last sender stops the accept loop and every connection.
    _stop: Arc<watch::Sender<()>>,
}

impl std::fmt::Debug for FakeAws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAws")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl FakeAws {
    /// Binds `127.0.0.1:0` and serves on a spawned task.
    pub async fn start(cfg: FakeConfig) -> std::io::Result<FakeAws> {
        FakeAws::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), cfg).await
    }

    pub async fn start_on(addr: SocketAddr, cfg: FakeConfig) -> std::io::Result<FakeAws> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            state: Mutex::new(State::new(cfg)),
            changed: Notify::new(),
            addr,
        });
        let (stop, stopped) = watch::channel(());
        tokio::spawn(server::serve(listener, Arc::clone(&inner), stopped));
        Ok(FakeAws {
            inner,
            _stop: Arc::new(stop),
        })
    }

    /// `http://127.0.0.1:PORT`, no trailing slash: both endpoint overrides point here.
    pub fn url(&self) -> String {
        self.inner.url()
    }

    /// The user approves a device code; false if unknown, expired, denied or used.
    pub fn approve(&self, user_code: &str) -> bool {
        let done = self.inner.lock().approve(user_code);
        self.inner.notify();
        done
    }

    /// Every role credential issued so far lapses now (the sign-in federation then refuses
    /// them as expired; the daemon's cache is not told).
    pub fn expire_role_credentials(&self) {
        let mut st = self.inner.lock();
        let now = st.clock.now();
        for c in st.role_credentials.values_mut() {
            c.expires = now;
        }
    }

    /// The user denies a device code; false if unknown, expired or used.
    pub fn deny(&self, user_code: &str) -> bool {
        let done = self.inner.lock().deny(user_code);
        self.inner.notify();
        done
    }

    /// Unexpired user codes awaiting a decision, oldest first.
    pub fn pending_user_codes(&self) -> Vec<String> {
        self.inner.lock().pending_user_codes()
    }

    /// The newest pending user code, waiting up to `timeout` for one to appear.
    pub async fn wait_for_pending_user_code(&self, timeout: Duration) -> Option<String> {
        self.wait_until(timeout, |st| st.pending_user_codes().pop())
            .await
    }

    /// Requests received for `op`, faulted ones included.
    pub fn calls(&self, op: Op) -> usize {
        self.inner.lock().calls.get(&op).copied().unwrap_or(0)
    }

    /// Waits until `calls(op) >= n`; false on timeout. A request counts once the fake has
    /// decided its answer (state already changed); delayed or hanging ones on arrival.
    pub async fn wait_for_calls(&self, op: Op, n: usize, timeout: Duration) -> bool {
        let reached = |st: &State| (st.calls.get(&op).copied().unwrap_or(0) >= n).then_some(());
        self.wait_until(timeout, reached).await.is_some()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().requests.clone()
    }

    /// Queues `fault` for the next call of `op` (FIFO; one fault per call).
    pub fn push_fault(&self, op: Op, fault: Fault) {
        self.inner
            .lock()
            .faults
            .entry(op)
            .or_default()
            .push_back(fault);
    }

    /// Every secret value the fake has handed out, in order.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.inner.lock().issued_secrets.clone()
    }

    /// Every role credential access key id the fake has handed out, in order.
    pub fn issued_key_ids(&self) -> Vec<String> {
        self.inner.lock().issued_key_ids.clone()
    }

    /// How often a rotated-out refresh token was presented again.
    pub fn refresh_token_reuse_count(&self) -> usize {
        self.inner.lock().reuse_count
    }

    pub fn set_config(&self, f: impl FnOnce(&mut FakeConfig)) {
        f(&mut self.inner.lock().cfg);
        self.inner.notify();
    }

    pub fn config(&self) -> FakeConfig {
        self.inner.lock().cfg.clone()
    }

    /// Every current refresh token becomes invalid (later refreshes → InvalidGrantException,
    /// not counted as reuse). Access tokens stay valid.
    pub fn revoke_all_refresh_tokens(&self) {
        self.inner.lock().revoke_all_refresh_tokens();
        self.inner.notify();
    }

    /// Event-driven wait: re-checks `check` on every state change until it yields or time is up.
    async fn wait_until<T>(
        &self,
        timeout: Duration,
        check: impl Fn(&State) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            // Register before checking, so a change between check and await is not missed.
            notified.as_mut().enable();
            if let Some(v) = check(&self.inner.lock()) {
                return Some(v);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return check(&self.inner.lock());
            }
        }
    }
}

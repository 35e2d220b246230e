//! One task per sso-session: owns its tokens, login and refresh schedule; the sole caller of
//! CreateToken(refresh_token) for its session, so refreshes never interleave and a stale
//! refresh token never overwrites a rotated one.
//! Must not: touch the socket, format output, or read the clock or env directly.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::api::{
    LoginFlow, LoginStarted, LoginState, LoginStatus, SessionState, SessionStatus, TokenData,
};
use crate::clock::BoxFuture;
use crate::oidc::{CreateTokenRequest, Oidc, OidcError, TokenResponse};
use crate::portal::{Portal, PortalError, RoleCredentials};
use crate::secret::Secret;
use crate::store::records::{ClientRecord, RECORD_VERSION, TokenRecord, token_key};

use super::login::{self, LoginCtx, LoginEvent, LoginOutcome};
use super::registry::Registrations;
use super::{Deps, Margins, SessionConfig, SessionError, policy};

/// Role credentials are handed out with at least this much left (botocore re-runs
/// `credential_process` on every call below 15 minutes, WIRE.md §8.1).
const ROLE_CREDENTIALS_MARGIN: Duration = Duration::from_secs(15 * 60 + 60);

/// One slot per (account, role): the cached credentials behind an async lock, so concurrent
/// askers share one portal call.
type RoleSlot = Arc<tokio::sync::Mutex<Option<RoleCredentials>>>;

#[derive(Default)]
struct RoleSlots(std::sync::Mutex<std::collections::HashMap<(String, String), RoleSlot>>);

impl RoleSlots {
    fn slot(&self, account: &str, role: &str) -> RoleSlot {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((account.to_string(), role.to_string()))
            .or_default()
            .clone()
    }
}

/// Tokens that expire within this skew are treated as expired (clock drift, transit time).
const EXPIRY_SKEW: Duration = Duration::from_secs(5);

type Reply<T> = oneshot::Sender<Result<T, SessionError>>;

enum Command {
    Token {
        min_validity: Duration,
        /// Refresh even if the token is still valid (the portal rejected it).
        force: bool,
        reply: Reply<TokenData>,
    },
    Login {
        flow: LoginFlow,
        reply: Reply<LoginStarted>,
    },
    Logout {
        /// Whether there were tokens, and the access token to end upstream if still valid.
        reply: Reply<(bool, Option<Secret>)>,
    },
}

/// Cheap to clone; the way routes talk to a session. Dropping every handle stops the task.
#[derive(Clone)]
pub struct SessionHandle {
    portal: Arc<dyn Portal>,
    roles: Arc<RoleSlots>,
    clock: Arc<dyn crate::clock::Clock>,
    config: Arc<SessionConfig>,
    tx: mpsc::Sender<Command>,
    status: watch::Receiver<SessionStatus>,
    login: watch::Receiver<LoginStatus>,
    /// The token the task holds now (published after every change), so a caller whose
    /// `minValidity` it meets is answered without a round trip through the task.
    serving: watch::Receiver<Option<TokenData>>,
    control: Arc<TaskControl>,
}

struct AbortOnDrop(JoinHandle<()>);

/// Stops the task gracefully on request (`SessionHandle::stop`), or aborts it when the last
/// handle goes without one (tests, teardown).
struct TaskControl {
    stop: watch::Sender<bool>,
    /// Closed (sender dropped) when the task has ended; see `Finished`.
    finished: watch::Receiver<()>,
    task: JoinHandle<()>,
}

impl Drop for TaskControl {
    fn drop(&mut self) {
        if !*self.stop.borrow() {
            self.task.abort();
        }
    }
}

/// Resolves when a stopped task has ended, i.e. saved the result of its last refresh. A new
/// task for the same session waits for it before reading the store.
#[derive(Clone)]
pub struct Finished(watch::Receiver<()>);

impl Finished {
    pub async fn wait(mut self) {
        while self.0.changed().await.is_ok() {}
    }

    pub fn is_done(&self) -> bool {
        self.0.has_changed().is_err()
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl SessionHandle {
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Asks the task to stop: a refresh in flight is finished and saved first (a refresh
    /// token rotated upstream must not be lost), waiting callers get their answers, a pending
    /// login is dropped. Returns what resolves when the task has ended.
    pub fn stop(&self) -> Finished {
        let _ = self.control.stop.send(true);
        Finished(self.control.finished.clone())
    }

    pub fn status(&self) -> SessionStatus {
        self.status.borrow().clone()
    }

    /// Changes of the session's status (secret-free), e.g. to wait for a login.
    pub fn status_watch(&self) -> watch::Receiver<SessionStatus> {
        self.status.clone()
    }

    /// The published token if it meets `min_validity` (the task's own first check, read
    /// without asking it); anything else goes to the task.
    fn serving_now(&self, min_validity: Duration) -> Option<TokenData> {
        let serving = self.serving.borrow();
        let token = serving.as_ref()?;
        valid_for(token.expires_at, self.clock.now(), min_validity).then(|| token.clone())
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, SessionError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| {
                SessionError::Internal(format!(
                    "session `{}` was stopped (its configuration changed, or the daemon is stopping); ask again",
                    self.config.name
                ))
            })?;
        rx.await
            .map_err(|_| SessionError::Internal("the session task dropped the request".into()))?
    }

    /// A token valid for at least `min_validity`, refreshing first if needed. With `wait`,
    /// waits up to that long for a login that someone else completes.
    pub async fn token(
        &self,
        min_validity: Duration,
        wait: Duration,
    ) -> Result<TokenData, SessionError> {
        if let Some(token) = self.serving_now(min_validity) {
            return Ok(token);
        }
        let deadline = tokio::time::Instant::now() + wait;
        let mut status = self.status.clone();
        loop {
            status.mark_unchanged();
            match self
                .ask(|reply| Command::Token {
                    min_validity,
                    force: false,
                    reply,
                })
                .await
            {
                Err(SessionError::LoginRequired(_) | SessionError::LoginPending(_))
                    if tokio::time::Instant::now() < deadline =>
                {
                    // Wait for the session to change (a login completing), then ask again.
                    if tokio::time::timeout_at(deadline, status.changed())
                        .await
                        .is_err()
                    {
                        return self
                            .ask(|reply| Command::Token {
                                min_validity,
                                force: false,
                                reply,
                            })
                            .await;
                    }
                }
                other => return other,
            }
        }
    }

    pub async fn start_login(&self, flow: LoginFlow) -> Result<LoginStarted, SessionError> {
        self.ask(|reply| Command::Login { flow, reply }).await
    }

    /// The current (or last) login's state; with `wait`, waits up to that long for a pending
    /// login to end.
    pub async fn login_status(&self, wait: Duration) -> LoginStatus {
        let mut rx = self.login.clone();
        let pending = |s: &LoginStatus| s.state == LoginState::Pending;
        if pending(&rx.borrow_and_update()) && !wait.is_zero() {
            let _ = tokio::time::timeout(wait, rx.wait_for(|s| !pending(s))).await;
        }
        rx.borrow().clone()
    }

    /// A fresh token even if the current one is still valid (after the portal rejected it).
    pub async fn refreshed_token(&self) -> Result<TokenData, SessionError> {
        self.ask(|reply| Command::Token {
            min_validity: Duration::ZERO,
            force: true,
            reply,
        })
        .await
    }

    /// Forgets the tokens (memory, keyring, exported cache), then ends the session upstream
    /// (portal Logout, best effort). Returns whether there were tokens and how the upstream
    /// logout went, if it was tried.
    pub async fn logout(&self) -> Result<(bool, Option<String>), SessionError> {
        let (had, token) = self.ask(|reply| Command::Logout { reply }).await?;
        let Some(token) = token else {
            return Ok((had, None));
        };
        let upstream = match self.portal.logout(&token).await {
            Ok(()) => "ended upstream".to_string(),
            Err(e) => {
                tracing::warn!(session = %self.config.name, error = %e, "upstream logout failed");
                format!("upstream logout failed: {e}")
            }
        };
        Ok((had, Some(upstream)))
    }

    /// Role credentials for `account_id`/`role_name`, cached until 15 minutes before they
    /// expire; one portal call per (account, role) at a time. A portal 401 causes one token
    /// refresh and one retry.
    pub async fn role_credentials(
        &self,
        account_id: &str,
        role_name: &str,
    ) -> Result<RoleCredentials, SessionError> {
        let slot = self.roles.slot(account_id, role_name);
        let mut cached = slot.lock().await;
        let now = self.clock.now();
        if let Some(c) = cached
            .as_ref()
            .filter(|c| c.expiration > now + ROLE_CREDENTIALS_MARGIN)
        {
            return Ok(c.clone());
        }
        let token = self.token(Duration::from_secs(60), Duration::ZERO).await?;
        let mut result = self
            .portal
            .get_role_credentials(&token.access_token, account_id, role_name)
            .await;
        if matches!(result, Err(PortalError::Unauthorized { .. })) {
            tracing::info!(session = %self.config.name, "the portal rejected the access token; refreshing once");
            let token = self.refreshed_token().await?;
            result = self
                .portal
                .get_role_credentials(&token.access_token, account_id, role_name)
                .await;
        }
        let creds = result.map_err(|e| match e {
            PortalError::Unauthorized { .. } => SessionError::LoginRequired(self.config.name.clone()),
            PortalError::Forbidden { message } | PortalError::ResourceNotFound { message } => SessionError::Forbidden(format!(
                "no access to role {role_name} in account {account_id} for session {}: {message}; check sso_account_id and sso_role_name",
                self.config.name
            )),
            other => SessionError::Upstream(format!("GetRoleCredentials failed: {other}")),
        })?;
        *cached = Some(creds.clone());
        Ok(creds)
    }
}

pub(super) fn spawn(
    cfg: SessionConfig,
    deps: Deps,
    registrations: Arc<Registrations>,
    margins: watch::Receiver<Margins>,
    after: Vec<Finished>,
) -> SessionHandle {
    let (tx, rx) = mpsc::channel(1024);
    let initial = SessionStatus {
        name: cfg.name.clone(),
        start_url: cfg.start_url.clone(),
        region: cfg.region.clone(),
        legacy: cfg.legacy,
        state: SessionState::LoginRequired,
        access_token_expires_at: None,
        refreshable: false,
        registration_expires_at: None,
        last_refresh_at: None,
        next_refresh_at: None,
        login_needed_by: None,
        last_error: None,
    };
    let (status_tx, status_rx) = watch::channel(initial);
    let (serving_tx, serving_rx) = watch::channel(None);
    let (login_tx, login_rx) = watch::channel(LoginStatus {
        login_id: None,
        state: LoginState::Failed,
        message: "no login has been started".into(),
        expires_at: None,
    });
    let oidc = deps.oidc.for_endpoint(&cfg.oidc_endpoint);
    let portal = deps.portal.for_endpoint(&cfg.portal_endpoint);
    let clock = deps.clock.clone();
    let config = Arc::new(cfg);
    let task = Task {
        key: token_key(&config.name, &config.start_url, &config.region),
        cfg: config.clone(),
        deps,
        oidc,
        registrations,
        record: None,
        jitter: 0.0,
        last_error: None,
        failures: 0,
        retry_at: None,
        refreshing: false,
        generation: 0,
        expiry_reported: false,
        registration: None,
        registration_flow: LoginFlow::DeviceCode,
        reregister_retry_at: None,
        login: None,
        status_tx,
        login_tx,
        serving_tx,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let (finished_tx, finished_rx) = watch::channel(());
    let handle = tokio::spawn(async move {
        // Ends (and closes `finished`) when the task ends, even by abort or panic.
        let _finished = finished_tx;
        for previous in after {
            previous.wait().await;
        }
        task.run(rx, stop_rx, margins).await;
    });
    SessionHandle {
        portal,
        roles: Arc::new(RoleSlots::default()),
        clock,
        config,
        tx,
        status: status_rx,
        login: login_rx,
        serving: serving_rx,
        control: Arc::new(TaskControl {
            stop: stop_tx,
            finished: finished_rx,
            task: handle,
        }),
    }
}

struct PendingLogin {
    id: String,
    flow: LoginFlow,
    started: Option<LoginStarted>,
    /// Callers of `start_login` waiting for the verification details.
    waiters: Vec<Reply<LoginStarted>>,
    _task: AbortOnDrop,
}

struct Task {
    key: String,
    cfg: Arc<SessionConfig>,
    deps: Deps,
    oidc: Arc<dyn Oidc>,
    registrations: Arc<Registrations>,
    record: Option<TokenRecord>,
    /// Jitter fraction drawn once per token, so the schedule does not move on every loop.
    jitter: f64,
    last_error: Option<String>,
    failures: u32,
    retry_at: Option<OffsetDateTime>,
    refreshing: bool,
    /// Bumped whenever the record is replaced by something other than a refresh.
    generation: u64,
    /// The expiry of the current token was logged (once per token).
    expiry_reported: bool,
    /// The client new logins of this session use (device flow), kept fresh ahead of its lapse.
    registration: Option<ClientRecord>,
    /// The flow of the last login: its registration is the one kept fresh.
    registration_flow: LoginFlow,
    reregister_retry_at: Option<OffsetDateTime>,
    login: Option<PendingLogin>,
    status_tx: watch::Sender<SessionStatus>,
    login_tx: watch::Sender<LoginStatus>,
    serving_tx: watch::Sender<Option<TokenData>>,
}

/// A refresh's result, tagged with the generation of the record it started from, so a
/// result that arrives after a login or logout replaced that record is dropped.
type RefreshResult = (u64, Result<TokenResponse, OidcError>);
type RegisterResult = Result<ClientRecord, String>;

impl Task {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut stop: watch::Receiver<bool>,
        mut margins: watch::Receiver<Margins>,
    ) {
        self.load().await;
        self.publish();
        tracing::debug!(session = %self.cfg.name, state = self.state().as_str(), "session task ready");
        let (login_events_tx, mut login_events) = mpsc::channel::<(String, LoginEvent)>(16);
        let mut in_flight: Option<BoxFuture<'static, RefreshResult>> = None;
        let mut registering: Option<BoxFuture<'static, RegisterResult>> = None;
        let mut waiters: Vec<(Duration, Reply<TokenData>)> = Vec::new();
        loop {
            let refresh_wake = if in_flight.is_none() {
                self.next_wake()
            } else {
                None
            };
            let register_wake = if registering.is_none() {
                self.next_reregister_at()
            } else {
                None
            };
            let wake = match (refresh_wake, register_wake) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timer = match wake {
                Some(at) => self.deps.clock.sleep_until(at),
                None => Box::pin(std::future::pending()),
            };
            tokio::select! {
                cmd = commands.recv() => {
                    let Some(cmd) = cmd else {
                        self.finish(in_flight.take(), &mut waiters).await;
                        break;
                    };
                    match cmd {
                        Command::Token { min_validity, force, reply } => {
                            let answer = if force && self.refreshable() { Answer::AfterRefresh } else { self.answer(min_validity) };
                            match answer {
                                Answer::Now(result) => { let _ = reply.send(result); }
                                Answer::AfterRefresh => {
                                    waiters.push((min_validity, reply));
                                    if in_flight.is_none() {
                                        in_flight = self.start_refresh("on demand");
                                        if in_flight.is_none() {
                                            for (mv, w) in waiters.drain(..) { let _ = w.send(self.answer_final(mv)); }
                                        }
                                    }
                                }
                            }
                        }
                        Command::Login { flow, reply } => self.start_login(flow, reply, &login_events_tx),
                        Command::Logout { reply } => {
                            in_flight = None;
                            self.refreshing = false;
                            let result = self.logout().await;
                            // Withdraw the published token before anyone hears the logout is done.
                            self.publish();
                            for (_, w) in waiters.drain(..) {
                                let _ = w.send(Err(SessionError::LoginRequired(self.cfg.name.clone())));
                            }
                            let _ = reply.send(result);
                        }
                    }
                }
                out = async { match in_flight.as_mut() { Some(f) => f.await, None => std::future::pending().await } } => {
                    in_flight = None;
                    self.refreshing = false;
                    self.apply_refresh(out).await;
                    for (mv, w) in waiters.drain(..) { let _ = w.send(self.answer_final(mv)); }
                }
                out = async { match registering.as_mut() { Some(f) => f.await, None => std::future::pending().await } } => {
                    registering = None;
                    self.apply_reregistration(out);
                }
                Some((id, ev)) = login_events.recv() => self.on_login_event(id, ev).await,
                Ok(()) = margins.changed() => {
                    let m = *margins.borrow_and_update();
                    self.deps.refresh_margin = m.refresh;
                    self.deps.reregistration_margin = m.reregistration;
                    self.publish();
                    tracing::debug!(session = %self.cfg.name, "margins changed; schedule re-evaluated");
                }
                () = async { let _ = stop.wait_for(|stop| *stop).await; } => {
                    self.finish(in_flight.take(), &mut waiters).await;
                    break;
                }
                () = timer => {
                    if self.record.as_ref().is_some_and(|r| r.expires_at <= self.now()) && !self.refreshable() && !self.expiry_reported {
                        self.expiry_reported = true;
                        tracing::warn!(session = %self.cfg.name, "the access token expired and cannot be refreshed; run `sso-agent login {}`", self.cfg.name);
                    }
                    if in_flight.is_none() && self.wants_refresh() {
                        in_flight = self.start_refresh("scheduled");
                    }
                    if registering.is_none() && self.next_reregister_at().is_some_and(|t| t <= self.now()) {
                        registering = Some(self.start_reregistration());
                    }
                }
            }
            self.publish();
        }
    }

    /// The end of the task: a refresh in flight is awaited and saved (upstream may already
    /// have rotated the refresh token), and waiting callers get their answers.
    async fn finish(
        &mut self,
        in_flight: Option<BoxFuture<'static, RefreshResult>>,
        waiters: &mut Vec<(Duration, Reply<TokenData>)>,
    ) {
        if let Some(refresh) = in_flight {
            tracing::info!(session = %self.cfg.name, "stopping once the refresh in flight is saved");
            let out = refresh.await;
            self.refreshing = false;
            self.apply_refresh(out).await;
        }
        for (mv, w) in waiters.drain(..) {
            let _ = w.send(self.answer_final(mv));
        }
        self.publish();
        tracing::debug!(session = %self.cfg.name, "session task stopped");
    }

    fn registration_spec(&self) -> super::registry::RegistrationSpec {
        let endpoint = self.cfg.oidc_endpoint.as_str();
        match self.registration_flow {
            LoginFlow::DeviceCode => {
                login::device_spec(endpoint, &self.cfg.region, &self.cfg.scopes)
            }
            LoginFlow::AuthorizationCode => login::pkce_spec(
                endpoint,
                &self.cfg.region,
                &self.cfg.scopes,
                &self.cfg.start_url,
            ),
        }
    }

    /// When to register a fresh login client: only for sessions in use (tokens held), ahead
    /// of the current client's lapse (policy::reregister_at), or at the retry after a failure.
    fn next_reregister_at(&self) -> Option<OffsetDateTime> {
        self.record.as_ref()?;
        if let Some(t) = self.reregister_retry_at {
            return Some(t);
        }
        let reg = self.registration.as_ref()?;
        Some(policy::reregister_at(
            reg.client_id_issued_at,
            reg.client_secret_expires_at,
            self.deps.reregistration_margin,
        ))
    }

    fn start_reregistration(&self) -> BoxFuture<'static, RegisterResult> {
        let (registrations, oidc, spec) = (
            self.registrations.clone(),
            self.oidc.clone(),
            self.registration_spec(),
        );
        let (now, margin) = (self.now(), self.deps.reregistration_margin);
        tracing::info!(session = %self.cfg.name, "the login client's secret lapses soon; registering a fresh one");
        Box::pin(async move {
            registrations
                .get_or_register(oidc.as_ref(), &spec, now, margin)
                .await
        })
    }

    fn apply_reregistration(&mut self, out: RegisterResult) {
        match out {
            Ok(reg) => {
                tracing::info!(session = %self.cfg.name, client_expires_at = %reg.client_secret_expires_at, "later logins use the fresh client");
                self.registration = Some(reg);
                self.reregister_retry_at = None;
            }
            Err(e) => {
                let delay = policy::backoff(5, self.deps.entropy.fraction());
                tracing::warn!(session = %self.cfg.name, error = %e, retry_in_s = delay.as_secs(), "re-registration failed");
                self.reregister_retry_at = Some(self.now() + delay);
                self.last_error =
                    Some(format!("registering a fresh client failed ({e}); retrying"));
            }
        }
    }

    /// Recovers the session from the store (restart safety).
    async fn load(&mut self) {
        self.load_record().await;
        // The flow the stored chain came from picks which login client is kept fresh.
        if self.record.as_ref().is_some_and(|r| {
            r.client
                .grant_types
                .iter()
                .any(|g| g == crate::oidc::GRANT_AUTHORIZATION_CODE)
        }) {
            self.registration_flow = LoginFlow::AuthorizationCode;
        }
        self.registration = self.registrations.peek(&self.registration_spec()).await;
    }

    async fn load_record(&mut self) {
        match self.deps.store.get(&self.key).await {
            Ok(Some(s)) => match TokenRecord::from_secret(&s) {
                Ok(rec) => {
                    tracing::info!(session = %self.cfg.name, expires_at = %rec.expires_at, refreshable = rec.refresh_token.is_some(), "recovered tokens from the store");
                    self.set_record(rec);
                }
                Err(e) => {
                    tracing::warn!(session = %self.cfg.name, error = %e, "ignoring an unreadable stored record");
                    self.last_error = Some(format!("stored tokens were unreadable: {e}"));
                }
            },
            Ok(None) => tracing::debug!(session = %self.cfg.name, "nothing stored"),
            Err(e) => {
                tracing::warn!(session = %self.cfg.name, error = %e, "could not read the store");
                self.last_error = Some(format!("could not read the store: {e}"));
            }
        }
    }

    fn set_record(&mut self, rec: TokenRecord) {
        self.expiry_reported = false;
        self.jitter = self.deps.entropy.fraction();
        self.record = Some(rec);
    }

    fn now(&self) -> OffsetDateTime {
        self.deps.clock.now()
    }

    fn valid_token(&self, min_validity: Duration) -> Option<&TokenRecord> {
        let rec = self.record.as_ref()?;
        valid_for(rec.expires_at, self.now(), min_validity).then_some(rec)
    }

    /// Whether the refresh chain can go on: a refresh token and a client that has not lapsed.
    fn refreshable(&self) -> bool {
        self.record.as_ref().is_some_and(|r| {
            r.refresh_token.is_some() && r.client.client_secret_expires_at > self.now()
        })
    }

    fn token_data(&self, rec: &TokenRecord) -> TokenData {
        TokenData {
            session: self.cfg.name.clone(),
            access_token: rec.access_token.clone(),
            expires_at: rec.expires_at,
            region: self.cfg.region.clone(),
            start_url: self.cfg.start_url.clone(),
        }
    }

    fn login_error(&self) -> SessionError {
        if self.login.is_some() {
            SessionError::LoginPending(self.cfg.name.clone())
        } else {
            SessionError::LoginRequired(self.cfg.name.clone())
        }
    }

    fn answer(&self, min_validity: Duration) -> Answer {
        if let Some(rec) = self.valid_token(min_validity) {
            return Answer::Now(Ok(self.token_data(rec)));
        }
        if !self.refreshable() {
            return Answer::Now(self.answer_final(min_validity));
        }
        // In back-off after failures: serve the still-valid token rather than hammer upstream.
        if self.retry_at.is_some_and(|t| t > self.now()) {
            return Answer::Now(self.answer_final(min_validity));
        }
        Answer::AfterRefresh
    }

    /// The answer when no (further) refresh will happen for this caller: the token if it is
    /// still valid at all (SPEC: keep serving it while refreshes fail), else why not.
    fn answer_final(&self, min_validity: Duration) -> Result<TokenData, SessionError> {
        if let Some(rec) = self.valid_token(min_validity) {
            return Ok(self.token_data(rec));
        }
        if let Some(rec) = self.valid_token(Duration::ZERO) {
            tracing::debug!(session = %self.cfg.name, "serving a token with less validity than asked for; refresh is not possible now");
            return Ok(self.token_data(rec));
        }
        match (&self.last_error, self.refreshable()) {
            (Some(e), true) => Err(SessionError::Upstream(format!(
                "the token expired and refreshing it failed: {e}"
            ))),
            _ => Err(self.login_error()),
        }
    }

    fn wants_refresh(&self) -> bool {
        self.refreshable() && self.next_refresh_at().is_some_and(|t| t <= self.now())
    }

    fn next_refresh_at(&self) -> Option<OffsetDateTime> {
        if !self.refreshable() {
            return None;
        }
        if let Some(t) = self.retry_at {
            return Some(t);
        }
        let rec = self.record.as_ref()?;
        Some(policy::refresh_at(
            rec.issued_at,
            rec.expires_at,
            self.deps.refresh_margin,
            self.jitter,
        ))
    }

    /// The next moment something changes without a request: a refresh, or the token expiring.
    fn next_wake(&self) -> Option<OffsetDateTime> {
        let expiry = self
            .record
            .as_ref()
            .map(|r| r.expires_at)
            .filter(|t| *t > self.now());
        match (self.next_refresh_at(), expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn start_refresh(&mut self, why: &'static str) -> Option<BoxFuture<'static, RefreshResult>> {
        let rec = self.record.as_ref()?;
        let rt = rec.refresh_token.clone()?;
        tracing::info!(session = %self.cfg.name, why, expires_at = %rec.expires_at, failures = self.failures, "refreshing the access token");
        let oidc = self.oidc.clone();
        let req = CreateTokenRequest::refresh_token(
            &rec.client.client_id,
            &rec.client.client_secret,
            &rt,
        );
        self.refreshing = true;
        let generation = self.generation;
        Some(Box::pin(async move {
            (generation, oidc.create_token(req).await)
        }))
    }

    async fn apply_refresh(&mut self, (generation, out): RefreshResult) {
        if generation != self.generation {
            tracing::debug!(session = %self.cfg.name, "dropping the result of a refresh for replaced tokens");
            return;
        }
        let now = self.now();
        let Some(old) = self.record.clone() else {
            return;
        };
        match out {
            Ok(tok) => {
                let rotated = tok.refresh_token.is_some();
                let rec = TokenRecord {
                    access_token: tok.access_token,
                    expires_at: now + Duration::from_secs(tok.expires_in.max(0).unsigned_abs()),
                    issued_at: now,
                    // AWS may rotate; keep the old one when none is returned (Rust SDK rule, WIRE §5.1)
                    refresh_token: tok.refresh_token.or(old.refresh_token),
                    last_refresh_at: Some(now),
                    ..old
                };
                // Persist before the new refresh token can be used (it is used only by this
                // task, and only after this returns).
                self.persist(&rec).await;
                self.set_record(rec);
                self.failures = 0;
                self.retry_at = None;
                self.last_error = None;
                tracing::info!(session = %self.cfg.name, rotated, expires_at = %self.record.as_ref().map(|r| r.expires_at).unwrap_or(now), "refreshed");
            }
            Err(e) if e.ends_refresh_chain() => {
                tracing::warn!(session = %self.cfg.name, error = %e, "the refresh chain ended; a new login is needed");
                self.last_error = Some(format!(
                    "refresh rejected ({e}); run `sso-agent login {}`",
                    self.cfg.name
                ));
                let rec = TokenRecord {
                    refresh_token: None,
                    ..old
                };
                self.persist(&rec).await;
                self.record = Some(rec);
                self.failures = 0;
                self.retry_at = None;
            }
            Err(e) => {
                self.failures += 1;
                let delay = policy::backoff(self.failures, self.deps.entropy.fraction());
                self.retry_at = Some(now + delay);
                self.last_error = Some(format!("refresh failed ({e}); retrying"));
                tracing::warn!(session = %self.cfg.name, error = %e, failures = self.failures, retry_in_s = delay.as_secs(), "refresh failed; backing off");
            }
        }
    }

    async fn persist(&mut self, rec: &TokenRecord) {
        let result = match rec.to_secret() {
            Ok(s) => self
                .deps
                .store
                .set(&self.key, s)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            tracing::error!(session = %self.cfg.name, error = %e, "could not persist tokens; they live in memory only");
            self.last_error = Some(format!("could not save tokens to the store: {e}"));
        }
        if let Some(dir) = &self.deps.aws_cli_cache {
            match crate::store::aws_cache::write(
                dir,
                &self.cfg.name,
                self.cfg.legacy,
                &self.cfg.start_url,
                &self.cfg.region,
                &rec.access_token,
                rec.expires_at,
            ) {
                Ok(path) => {
                    tracing::debug!(session = %self.cfg.name, path = %path.display(), "exported the token for the AWS CLI")
                }
                Err(e) => {
                    tracing::warn!(session = %self.cfg.name, error = %e, "could not export the token for the AWS CLI")
                }
            }
        }
    }

    fn start_login(
        &mut self,
        flow: LoginFlow,
        reply: Reply<LoginStarted>,
        events: &mpsc::Sender<(String, LoginEvent)>,
    ) {
        if let Some(p) = self.login.as_mut() {
            // One login per session: join the pending one.
            match &p.started {
                Some(s) => {
                    let _ = reply.send(Ok(LoginStarted {
                        joined: true,
                        ..s.clone()
                    }));
                }
                None => p.waiters.push(reply),
            }
            return;
        }
        let id = self.deps.entropy.token(16);
        let ctx = LoginCtx {
            login_id: id.clone(),
            oidc: self.oidc.clone(),
            clock: self.deps.clock.clone(),
            registrations: self.registrations.clone(),
            spec_endpoint: self.cfg.oidc_endpoint.to_string(),
            region: self.cfg.region.clone(),
            scopes: self.cfg.scopes.clone(),
            start_url: self.cfg.start_url.clone(),
            reregistration_margin: self.deps.reregistration_margin,
            events: events.clone(),
        };
        tracing::info!(session = %self.cfg.name, login_id = %id, flow = flow.as_str(), "starting a login");
        let task = match flow {
            LoginFlow::DeviceCode => tokio::spawn(login::device_login(ctx)),
            LoginFlow::AuthorizationCode => {
                tokio::spawn(login::pkce_login(ctx, self.deps.entropy.clone()))
            }
        };
        self.login = Some(PendingLogin {
            id: id.clone(),
            flow,
            started: None,
            waiters: vec![reply],
            _task: AbortOnDrop(task),
        });
        self.login_tx.send_replace(LoginStatus {
            login_id: Some(id),
            state: LoginState::Pending,
            message: "starting".into(),
            expires_at: None,
        });
    }

    async fn on_login_event(&mut self, id: String, ev: LoginEvent) {
        let Some(p) = self.login.as_mut().filter(|p| p.id == id) else {
            return; // a login that was cancelled (logout) still reporting
        };
        match ev {
            LoginEvent::Started(started) => {
                for w in p.waiters.drain(..) {
                    let _ = w.send(Ok(started.clone()));
                }
                self.login_tx.send_replace(LoginStatus {
                    login_id: Some(id),
                    state: LoginState::Pending,
                    message: "waiting for the user to approve the login".into(),
                    expires_at: Some(started.expires_at),
                });
                p.started = Some(started);
            }
            LoginEvent::Finished(outcome) => {
                let p = self.login.take();
                let (state, message) = match outcome {
                    LoginOutcome::Succeeded {
                        token,
                        client,
                        issued_at,
                    } => {
                        let rec = TokenRecord {
                            version: RECORD_VERSION,
                            session: self.cfg.name.clone(),
                            start_url: self.cfg.start_url.clone(),
                            region: self.cfg.region.clone(),
                            access_token: token.access_token,
                            expires_at: issued_at
                                + Duration::from_secs(token.expires_in.max(0).unsigned_abs()),
                            issued_at,
                            refresh_token: token.refresh_token,
                            last_refresh_at: None,
                            client,
                        };
                        self.persist(&rec).await;
                        self.generation += 1;
                        self.registration = Some(rec.client.clone());
                        if let Some(p) = &p {
                            self.registration_flow = p.flow;
                        }
                        tracing::info!(session = %self.cfg.name, expires_at = %rec.expires_at, refreshable = rec.refresh_token.is_some(), "login succeeded");
                        self.set_record(rec);
                        self.failures = 0;
                        self.retry_at = None;
                        if self
                            .last_error
                            .as_deref()
                            .is_some_and(|e| !e.starts_with("could not save"))
                        {
                            self.last_error = None;
                        }
                        (LoginState::Succeeded, "logged in".to_string())
                    }
                    LoginOutcome::Denied(m) => (LoginState::Denied, m),
                    LoginOutcome::Expired(m) => (LoginState::Expired, m),
                    LoginOutcome::Failed(m) => (LoginState::Failed, m),
                };
                if state != LoginState::Succeeded {
                    tracing::warn!(session = %self.cfg.name, state = ?state, %message, "login ended without tokens");
                    self.last_error = Some(format!("login {}: {message}", login_state_word(state)));
                }
                if let Some(mut p) = p {
                    for w in p.waiters.drain(..) {
                        let _ = w.send(Err(SessionError::Upstream(message.clone())));
                    }
                }
                self.login_tx.send_replace(LoginStatus {
                    login_id: Some(id),
                    state,
                    message,
                    expires_at: None,
                });
            }
        }
    }

    async fn logout(&mut self) -> Result<(bool, Option<Secret>), SessionError> {
        if let Some(p) = self.login.take() {
            self.login_tx.send_replace(LoginStatus {
                login_id: Some(p.id),
                state: LoginState::Failed,
                message: "cancelled by logout".into(),
                expires_at: None,
            });
        }
        let upstream_token = self
            .valid_token(Duration::ZERO)
            .map(|r| r.access_token.clone());
        let had = self.record.take().is_some();
        self.generation += 1;
        if let Some(dir) = &self.deps.aws_cli_cache
            && let Err(e) = crate::store::aws_cache::remove(
                dir,
                &self.cfg.name,
                self.cfg.legacy.then_some(self.cfg.start_url.as_str()),
            )
        {
            tracing::warn!(session = %self.cfg.name, error = %e, "could not remove the exported AWS CLI token");
        }
        self.failures = 0;
        self.retry_at = None;
        self.last_error = None;
        self.deps.store.delete(&self.key).await.map_err(|e| {
            SessionError::Store(format!(
                "tokens were forgotten in memory, but the keyring entry could not be removed: {e}"
            ))
        })?;
        tracing::info!(session = %self.cfg.name, had_tokens = had, "logged out");
        Ok((had, upstream_token))
    }

    fn state(&self) -> SessionState {
        if self.login.is_some() {
            return SessionState::LoginPending;
        }
        if self.refreshing {
            return SessionState::Refreshing;
        }
        match self.valid_token(Duration::ZERO) {
            None => SessionState::LoginRequired,
            Some(_) if self.refreshable() => SessionState::Valid,
            Some(_) => SessionState::Expiring,
        }
    }

    fn publish(&self) {
        let rec = self.record.as_ref();
        let refreshable = self.refreshable();
        let registration_expires_at = rec.map(|r| r.client.client_secret_expires_at);
        let login_needed_by = match rec {
            Some(r) if refreshable => Some(r.client.client_secret_expires_at),
            Some(r) => Some(r.expires_at),
            None => None,
        };
        let status = SessionStatus {
            name: self.cfg.name.clone(),
            start_url: self.cfg.start_url.clone(),
            region: self.cfg.region.clone(),
            legacy: self.cfg.legacy,
            state: self.state(),
            access_token_expires_at: rec.map(|r| r.expires_at),
            refreshable,
            registration_expires_at,
            last_refresh_at: rec.and_then(|r| r.last_refresh_at),
            next_refresh_at: self.next_refresh_at(),
            login_needed_by,
            last_error: self.last_error.clone(),
        };
        // Built only when the held token changed: publish runs after every task event.
        self.serving_tx.send_if_modified(|s| {
            let changed = s.as_ref().map(|t| (&t.access_token, t.expires_at))
                != rec.map(|r| (&r.access_token, r.expires_at));
            if changed {
                *s = rec.map(|r| self.token_data(r));
            }
            changed
        });
        self.status_tx.send_if_modified(|s| {
            let changed = *s != status;
            if changed {
                *s = status;
            }
            changed
        });
    }
}

/// Whether a token expiring at `expires_at` stays valid `min_validity` (at least the skew)
/// past `now`. A huge `min_validity` must not overflow the date arithmetic: it is not met.
fn valid_for(expires_at: OffsetDateTime, now: OffsetDateTime, min_validity: Duration) -> bool {
    time::Duration::try_from(min_validity.max(EXPIRY_SKEW))
        .ok()
        .and_then(|d| now.checked_add(d))
        .is_some_and(|needed| expires_at > needed)
}

enum Answer {
    Now(Result<TokenData, SessionError>),
    AfterRefresh,
}

fn login_state_word(s: LoginState) -> &'static str {
    match s {
        LoginState::Pending => "pending",
        LoginState::Succeeded => "succeeded",
        LoginState::Denied => "denied",
        LoginState::Expired => "expired",
        LoginState::Failed => "failed",
    }
}

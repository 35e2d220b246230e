//! `SessionHandle`: how routes talk to a session. The commands it sends its task, the
//! published (secret-free) status and served token it reads without a round trip, and
//! `spawn`, which wires a task to its handle.
//! Must not: decide anything about tokens (the chain does), or call CreateToken (only the
//! task does).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::api::{
    LoginFlow, LoginStarted, LoginState, LoginStatus, SessionState, SessionStatus, TokenData,
};
use crate::clock::Clock;
use crate::portal::RoleCredentials;
use crate::secret::Secret;
use crate::store::records::TokenRecord;

use super::chain::{Ask, token_data, valid_for};
use super::registry::Registrations;
use super::roles::Roles;
use super::task::Task;
use super::{Deps, Margins, SessionConfig, SessionError};

pub(super) type Reply<T> = oneshot::Sender<Result<T, SessionError>>;

pub(super) enum Command {
    Token {
        ask: Ask,
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

/// What the task publishes for its handles: status, login status, the served token.
pub(super) struct Outputs {
    pub status: watch::Sender<SessionStatus>,
    pub login: watch::Sender<LoginStatus>,
    pub serving: watch::Sender<Option<TokenData>>,
}

impl Outputs {
    /// Publishes `status` and the token held now; each watch changes only when its value
    /// does (this runs after every task event).
    pub fn publish(&self, cfg: &SessionConfig, status: SessionStatus, held: Option<&TokenRecord>) {
        self.serving.send_if_modified(|s| {
            let changed = s.as_ref().map(|t| (&t.access_token, t.expires_at))
                != held.map(|r| (&r.access_token, r.expires_at));
            if changed {
                *s = held.map(|r| token_data(cfg, r));
            }
            changed
        });
        self.status.send_if_modified(|s| {
            let changed = *s != status;
            if changed {
                *s = status;
            }
            changed
        });
    }
}

/// Cheap to clone; the way routes talk to a session. Dropping every handle stops the task.
#[derive(Clone)]
pub struct SessionHandle {
    roles: Arc<Roles>,
    accounts: Arc<super::accounts::AccountsCache>,
    clock: Arc<dyn Clock>,
    config: Arc<SessionConfig>,
    tx: mpsc::Sender<Command>,
    status: watch::Receiver<SessionStatus>,
    login: watch::Receiver<LoginStatus>,
    /// The token the task holds now (published after every change), so a caller whose
    /// `minValidity` it meets is answered without a round trip through the task.
    serving: watch::Receiver<Option<TokenData>>,
    control: Arc<TaskControl>,
}

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
        self.tx.send(make(reply)).await.map_err(|_| {
            SessionError::Internal(format!(
                "session `{}` was stopped (its configuration changed, or the daemon is stopping); ask again",
                self.config.name
            ))
        })?;
        rx.await
            .map_err(|_| SessionError::Internal("the session task dropped the request".into()))?
    }

    fn ask_token(
        &self,
        min_validity: Duration,
        force: bool,
    ) -> impl Future<Output = Result<TokenData, SessionError>> + '_ {
        let ask = Ask {
            min_validity,
            force,
        };
        self.ask(move |reply| Command::Token { ask, reply })
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
            match self.ask_token(min_validity, false).await {
                Err(SessionError::LoginRequired(_) | SessionError::LoginPending(_))
                    if tokio::time::Instant::now() < deadline =>
                {
                    // Wait for the session to change (a login completing), then ask again.
                    if tokio::time::timeout_at(deadline, status.changed())
                        .await
                        .is_err()
                    {
                        return self.ask_token(min_validity, false).await;
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
        self.ask_token(Duration::ZERO, true).await
    }

    /// Forgets the tokens (memory, keyring, exported cache) and the role credentials, then
    /// ends the session upstream (portal Logout, best effort). Returns whether there were
    /// tokens and how the upstream logout went, if it was tried.
    pub async fn logout(&self) -> Result<(bool, Option<String>), SessionError> {
        let (had, token) = self.ask(|reply| Command::Logout { reply }).await?;
        let Some(token) = token else {
            return Ok((had, None));
        };
        let upstream = match self.roles.portal().logout(&token).await {
            Ok(()) => "ended upstream".to_string(),
            Err(e) => {
                tracing::warn!(session = %self.config.name, error = %e, "upstream logout failed");
                format!("upstream logout failed: {e}")
            }
        };
        Ok((had, Some(upstream)))
    }

    /// Role credentials for `account_id`/`role_name` (see `roles.rs`).
    pub async fn role_credentials(
        &self,
        account_id: &str,
        role_name: &str,
    ) -> Result<RoleCredentials, SessionError> {
        self.roles
            .get(self, account_id, role_name, Duration::ZERO)
            .await
    }

    /// `role_credentials` with more than `min_validity` left (at least the 15-minute margin):
    /// `exec`'s keep-fresh loop fetches ahead of the margin, so what the endpoint serves never
    /// falls inside it (session/keep_fresh.rs).
    pub async fn role_credentials_valid_for(
        &self,
        account_id: &str,
        role_name: &str,
        min_validity: Duration,
    ) -> Result<RoleCredentials, SessionError> {
        self.roles
            .get(self, account_id, role_name, min_validity)
            .await
    }

    /// Every account and role the session can use (cached briefly; `refresh` asks again).
    pub async fn accounts(&self, refresh: bool) -> Result<crate::api::AccountsData, SessionError> {
        let portal = self.roles.portal().clone();
        self.accounts
            .get(self, portal, self.clock.clone(), refresh)
            .await
    }

    /// The last account list, if one was fetched (never waits, never asks the portal).
    pub fn last_accounts(&self) -> Option<crate::api::AccountsData> {
        self.accounts.last()
    }
}

pub(super) fn spawn(
    cfg: SessionConfig,
    deps: Deps,
    registrations: Arc<Registrations>,
    margins: watch::Receiver<Margins>,
    after: Vec<Finished>,
) -> SessionHandle {
    let (tx, commands) = mpsc::channel(1024);
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
    let (stop_tx, stop_rx) = watch::channel(false);
    let (finished_tx, finished_rx) = watch::channel(());
    let config = Arc::new(cfg);
    let roles = Arc::new(Roles::new(
        deps.portal.for_endpoint(&config.portal_endpoint),
        deps.clock.clone(),
    ));
    let clock = deps.clock.clone();
    let outputs = Outputs {
        status: status_tx,
        login: login_tx,
        serving: serving_tx,
    };
    let task = Task::new(
        config.clone(),
        deps,
        registrations,
        roles.clone(),
        margins,
        outputs,
    );
    let handle = tokio::spawn(async move {
        // Ends (and closes `finished`) when the task ends, even by abort or panic.
        let _finished = finished_tx;
        for previous in after {
            previous.wait().await;
        }
        task.run(commands, stop_rx).await;
    });
    SessionHandle {
        roles,
        accounts: Arc::default(),
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

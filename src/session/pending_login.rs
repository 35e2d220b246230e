//! The session's one pending login: starting it (as a child task, `login.rs`), letting
//! later callers join it, finishing it (the record it yields, the login status) and
//! cancelling it (logout).
//! Must not: persist or adopt tokens (the session task does, persist first), or poll
//! upstream itself (`login.rs` does).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::api::{LoginFlow, LoginStarted, LoginState, LoginStatus};
use crate::entropy::Entropy;
use crate::store::records::{RECORD_VERSION, TokenRecord};

use super::handle::Reply;
use super::login::{self, LoginCtx, LoginEvent, LoginOutcome};
use super::problem::{Problem, UpstreamError};
use super::{SessionConfig, SessionError};

/// Events of the login child tasks, tagged with their login id.
pub(super) type LoginEvents = mpsc::Sender<(String, LoginEvent)>;

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(super) struct PendingLogin {
    pub id: String,
    pub flow: LoginFlow,
    started: Option<LoginStarted>,
    /// Callers of `start_login` waiting for the verification details.
    waiters: Vec<Reply<LoginStarted>>,
    /// Dropping the pending login (logout, a new task) ends the child task and its listener.
    _task: AbortOnDrop,
}

/// How a login ended, for the session task to apply (persist first, then use).
pub(super) struct Finished {
    pub flow: LoginFlow,
    /// The new record, when the login succeeded.
    pub record: Option<TokenRecord>,
    /// Why it failed, when it did.
    pub problem: Option<Problem>,
    pub status: LoginStatus,
}

impl PendingLogin {
    /// Starts a login of `flow` and returns it with its first status.
    pub fn start(
        ctx: LoginCtx,
        flow: LoginFlow,
        entropy: Arc<dyn Entropy>,
        reply: Reply<LoginStarted>,
    ) -> (Self, LoginStatus) {
        let id = ctx.login_id.clone();
        let task = match flow {
            LoginFlow::DeviceCode => tokio::spawn(login::device_login(ctx)),
            LoginFlow::AuthorizationCode => tokio::spawn(login::pkce_login(ctx, entropy)),
        };
        let status = LoginStatus {
            login_id: Some(id.clone()),
            state: LoginState::Pending,
            message: "starting".into(),
            expires_at: None,
        };
        let pending = Self {
            id,
            flow,
            started: None,
            waiters: vec![reply],
            _task: AbortOnDrop(task),
        };
        (pending, status)
    }

    /// One login per session: a second caller joins the pending one.
    pub fn join(&mut self, reply: Reply<LoginStarted>) {
        match &self.started {
            Some(s) => {
                let _ = reply.send(Ok(LoginStarted {
                    joined: true,
                    ..s.clone()
                }));
            }
            None => self.waiters.push(reply),
        }
    }

    /// The verification details are known: answer the callers waiting for them.
    pub fn started(&mut self, started: LoginStarted) -> LoginStatus {
        for w in self.waiters.drain(..) {
            let _ = w.send(Ok(started.clone()));
        }
        let status = LoginStatus {
            login_id: Some(self.id.clone()),
            state: LoginState::Pending,
            message: "waiting for the user to approve the login".into(),
            expires_at: Some(started.expires_at),
        };
        self.started = Some(started);
        status
    }

    /// The login ended with `outcome`.
    pub fn finish(mut self, outcome: LoginOutcome, cfg: &SessionConfig) -> Finished {
        let (record, state, message) = match outcome {
            LoginOutcome::Succeeded {
                token,
                client,
                issued_at,
            } => {
                let rec = TokenRecord {
                    version: RECORD_VERSION,
                    session: cfg.name.clone(),
                    start_url: cfg.start_url.clone(),
                    region: cfg.region.clone(),
                    access_token: token.access_token,
                    expires_at: issued_at
                        + Duration::from_secs(token.expires_in.max(0).unsigned_abs()),
                    issued_at,
                    refresh_token: token.refresh_token,
                    last_refresh_at: None,
                    client,
                };
                (Some(rec), LoginState::Succeeded, "logged in".to_string())
            }
            LoginOutcome::Denied(m) => (None, LoginState::Denied, m),
            LoginOutcome::Expired(m) => (None, LoginState::Expired, m),
            LoginOutcome::Failed(m) => (None, LoginState::Failed, m),
        };
        for w in self.waiters.drain(..) {
            let _ = w.send(Err(SessionError::Upstream(UpstreamError::LoginEnded {
                state,
                message: message.clone(),
            })));
        }
        let problem = (state != LoginState::Succeeded).then(|| Problem::Login {
            state,
            message: message.clone(),
        });
        Finished {
            flow: self.flow,
            record,
            problem,
            status: LoginStatus {
                login_id: Some(self.id.clone()),
                state,
                message,
                expires_at: None,
            },
        }
    }

    /// Logout cancels the login; its child task ends when this is dropped.
    pub fn cancel(self) -> LoginStatus {
        LoginStatus {
            login_id: Some(self.id.clone()),
            state: LoginState::Failed,
            message: "cancelled by logout".into(),
            expires_at: None,
        }
    }
}

/// A login context for the session `cfg`.
pub(super) struct Start {
    pub login_id: String,
    pub oidc: Arc<dyn crate::oidc::Oidc>,
    pub clock: Arc<dyn crate::clock::Clock>,
    pub registrations: Arc<super::registry::Registrations>,
    pub margins: tokio::sync::watch::Receiver<super::Margins>,
    pub events: LoginEvents,
}

impl Start {
    pub fn ctx(self, cfg: &SessionConfig) -> LoginCtx {
        LoginCtx {
            login_id: self.login_id,
            oidc: self.oidc,
            clock: self.clock,
            registrations: self.registrations,
            spec_endpoint: cfg.oidc_endpoint.to_string(),
            region: cfg.region.clone(),
            scopes: cfg.scopes.clone(),
            start_url: cfg.start_url.clone(),
            margins: self.margins,
            events: self.events,
        }
    }
}

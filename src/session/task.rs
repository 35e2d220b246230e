//! One task per sso-session: the `select!` loop and its effects. It owns the session's refresh
//! chain, login client upkeep and pending login; it is the sole caller of
//! CreateToken(refresh_token) for its session, so refreshes never interleave and a stale
//! refresh token never overwrites a rotated one. Every effect persists first, then uses.
//! Decisions are `chain.rs`'s; margins are read from their watch, never copied.
//! Must not: decide by itself (ask `chain`), touch the socket, format output, or read the
//! clock or env directly.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

use crate::api::{LoginFlow, LoginStarted, TokenData};
use crate::clock::{BoxFuture, Clock};
use crate::entropy::Entropy;
use crate::oidc::{Oidc, OidcError, TokenResponse};
use crate::secret::Secret;
use crate::store::records::TokenRecord;

use super::chain::{self, Ask, Chain, Landed, Outcome, TokenDecision};
use super::flight::Flight;
use super::handle::{Command, Outputs, Reply};
use super::login::LoginEvent;
use super::pending_login::{LoginEvents, PendingLogin, Start};
use super::problem::Problem;
use super::registry::Registrations;
use super::roles::Roles;
use super::saved::Saved;
use super::upkeep::{RegisterResult, Upkeep};
use super::{Deps, Margins, SessionConfig, SessionError};

/// A refresh's result, tagged with the generation of the record it started from, so a
/// result that arrives after a login or logout replaced that record is dropped.
type RefreshResult = (u64, Result<TokenResponse, OidcError>);
type Waiter = (Ask, Reply<TokenData>);
/// The single flights: the refresh (with its waiting callers) and the re-registration.
type Refreshes = Flight<RefreshResult, Waiter>;
type Registers = Flight<RegisterResult, ()>;

pub(super) struct Task {
    cfg: Arc<SessionConfig>,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn Entropy>,
    saved: Saved,
    oidc: Arc<dyn Oidc>,
    registrations: Arc<Registrations>,
    /// Shared with the handles: dropped here when the session loses its tokens.
    roles: Arc<Roles>,
    /// The live margins: the one source, read at each use.
    margins: watch::Receiver<Margins>,
    chain: Chain,
    /// The last problem of the chain, a login or the login client; cleared by success.
    problem: Option<Problem>,
    /// The last write to the store failed; shown until a write succeeds, whatever else
    /// happens (a successful refresh must not hide that its tokens live in memory only).
    store_problem: Option<Problem>,
    upkeep: Upkeep,
    login: Option<PendingLogin>,
    out: Outputs,
}

impl Task {
    pub fn new(
        cfg: Arc<SessionConfig>,
        deps: Deps,
        registrations: Arc<Registrations>,
        roles: Arc<Roles>,
        margins: watch::Receiver<Margins>,
        out: Outputs,
    ) -> Self {
        let exported = deps.aws_cli_cache.is_some();
        Self {
            oidc: deps.oidc.for_endpoint(&cfg.oidc_endpoint),
            saved: Saved::new(cfg.clone(), deps.store, deps.aws_cli_cache),
            cfg,
            clock: deps.clock,
            entropy: deps.entropy,
            registrations,
            roles,
            margins,
            chain: Chain {
                exported,
                ..Chain::default()
            },
            problem: None,
            store_problem: None,
            upkeep: Upkeep::default(),
            login: None,
            out,
        }
    }

    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut stop: watch::Receiver<bool>,
    ) {
        self.load().await;
        self.publish(false);
        tracing::debug!(session = %self.cfg.name, "session task ready");
        let (login_events, mut events) = mpsc::channel::<(String, LoginEvent)>(16);
        let (mut refresh, mut register) = (Refreshes::default(), Registers::default());
        let mut margins = self.margins.clone();
        loop {
            let rereg = self.reregister_at().filter(|_| !register.is_running());
            let wake = chain::next_wake(
                &self.chain,
                self.now(),
                self.margins(),
                refresh.is_running(),
                rereg,
            );
            let timer = match wake {
                Some(at) => self.clock.sleep_until(at),
                None => Box::pin(std::future::pending()),
            };
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd, &mut refresh, &login_events).await,
                    None => { self.finish(&mut refresh).await; break; }
                },
                out = refresh.landed() => {
                    self.apply_refresh(out).await;
                    self.answer_all(refresh.take_waiters());
                }
                out = register.landed() => self.apply_reregistration(out),
                Some((id, ev)) = events.recv() => self.on_login_event(id, ev).await,
                // The margins are read from the watch; a change only moves the schedule.
                Ok(()) = margins.changed() => tracing::debug!(session = %self.cfg.name, "margins changed; schedule re-evaluated"),
                () = async { let _ = stop.wait_for(|stop| *stop).await; } => {
                    self.finish(&mut refresh).await;
                    break;
                }
                () = timer => self.on_wake(&mut refresh, &mut register),
            }
            self.publish(refresh.is_running());
        }
    }

    async fn on_command(&mut self, cmd: Command, refresh: &mut Refreshes, events: &LoginEvents) {
        match cmd {
            Command::Token { ask, reply } => {
                let d = chain::decide(&self.chain, self.now(), ask, false);
                d.log(&self.cfg.name);
                if d.outcome != Outcome::Refresh {
                    let _ = reply.send(self.answer(&d));
                    return;
                }
                refresh.join((ask, reply));
                if !refresh.is_running() {
                    match self.start_refresh("on demand") {
                        Some(f) => refresh.start(f),
                        None => self.answer_all(refresh.take_waiters()),
                    }
                }
            }
            Command::Login { flow, reply } => match self.login.as_mut() {
                Some(pending) => pending.join(reply),
                None => self.start_login(flow, reply, events),
            },
            Command::Logout { reply } => {
                for (_, w) in refresh.cancel() {
                    let _ = w.send(Err(SessionError::LoginRequired(self.cfg.name.clone())));
                }
                let result = self.logout().await;
                let _ = reply.send(result);
            }
        }
    }

    /// The end of the task: a refresh in flight is awaited and saved (upstream may already
    /// have rotated the refresh token), and waiting callers get their answers.
    async fn finish(&mut self, refresh: &mut Refreshes) {
        if let Some(f) = refresh.take() {
            tracing::info!(session = %self.cfg.name, "stopping once the refresh in flight is saved");
            let out = f.await;
            self.apply_refresh(out).await;
        }
        self.answer_all(refresh.take_waiters());
        self.publish(false);
        tracing::debug!(session = %self.cfg.name, "session task stopped");
    }

    fn on_wake(&mut self, refresh: &mut Refreshes, register: &mut Registers) {
        let rereg = self.reregister_at().filter(|_| !register.is_running());
        let d = chain::on_wake(&self.chain, self.now(), self.margins(), rereg);
        d.log(&self.cfg.name);
        if d.login_lost {
            self.chain.expiry_reported = true;
            self.roles.clear();
            tracing::warn!(session = %self.cfg.name, "the access token expired and cannot be refreshed; run `sso-agent login {}`", self.cfg.name);
        }
        if d.refresh_due
            && !refresh.is_running()
            && let Some(f) = self.start_refresh("scheduled")
        {
            refresh.start(f);
        }
        if d.reregister_due {
            register.start(self.upkeep.start(
                &self.cfg,
                self.registrations.clone(),
                self.oidc.clone(),
                self.now(),
                self.margins(),
            ));
        }
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    fn margins(&self) -> Margins {
        *self.margins.borrow()
    }

    fn answer(&self, d: &TokenDecision) -> Result<TokenData, SessionError> {
        let pending = self.login.is_some();
        let problem = self.problem.as_ref();
        chain::answer(&self.cfg, &self.chain, self.now(), d, problem, pending)
    }

    /// Answers callers for whom no (further) refresh happens.
    fn answer_all(&self, waiters: Vec<Waiter>) {
        for (ask, w) in waiters {
            let d = chain::decide(&self.chain, self.now(), ask, true);
            d.log(&self.cfg.name);
            let _ = w.send(self.answer(&d));
        }
    }

    fn start_refresh(&self, why: &'static str) -> Option<BoxFuture<'static, RefreshResult>> {
        let req = self.chain.refresh_request()?;
        tracing::info!(session = %self.cfg.name, why, failures = self.chain.failures, "refreshing the access token");
        let (oidc, generation) = (self.oidc.clone(), self.chain.generation);
        Some(Box::pin(async move {
            (generation, oidc.create_token(req).await)
        }))
    }

    async fn apply_refresh(&mut self, (generation, out): RefreshResult) {
        let now = self.now();
        match chain::landed(&self.chain, now, generation, out, || {
            self.entropy.fraction()
        }) {
            Landed::Stale => {
                tracing::debug!(session = %self.cfg.name, "dropping the result of a refresh for replaced tokens")
            }
            Landed::Refreshed { record, rotated } => {
                // Persist before the new refresh token can be used (only this task uses it,
                // and only after this returns).
                self.persist(&record).await;
                tracing::info!(session = %self.cfg.name, rotated, expires_at = %record.expires_at, "refreshed");
                self.chain.adopt(record, self.entropy.fraction());
                self.problem = None;
            }
            Landed::Ended { record, cause } => {
                tracing::warn!(session = %self.cfg.name, error = %cause, "the refresh chain ended; a new login is needed");
                self.persist(&record).await;
                self.chain.end(record);
                self.roles.clear();
                self.problem = Some(Problem::ChainEnded {
                    session: self.cfg.name.clone(),
                    cause,
                });
            }
            Landed::BackOff {
                failures,
                retry_at,
                cause,
            } => {
                tracing::warn!(session = %self.cfg.name, error = %cause, failures, %retry_at, "refresh failed; backing off");
                self.chain.failures = failures;
                self.chain.retry_at = Some(retry_at);
                self.problem = Some(Problem::RefreshFailed(cause));
            }
        }
    }

    /// Recovers the session from the store (restart safety).
    async fn load(&mut self) {
        let loaded = self.saved.load().await;
        if let Some(rec) = loaded.record {
            self.chain.adopt(rec, self.entropy.fraction());
        }
        self.problem = loaded.problem;
        self.store_problem = loaded.store_problem;
        self.upkeep
            .recover(&self.chain, &self.cfg, &self.registrations)
            .await;
    }

    /// Persists `rec`; a failure is shown until a write succeeds.
    async fn persist(&mut self, rec: &TokenRecord) {
        self.store_problem = self.saved.write(rec).await.err();
    }

    fn reregister_at(&self) -> Option<OffsetDateTime> {
        self.upkeep.due_at(&self.chain, self.margins())
    }

    fn apply_reregistration(&mut self, out: RegisterResult) {
        let now = self.now();
        let entropy = self.entropy.clone();
        if let Some(p) = self
            .upkeep
            .landed(&self.cfg.name, out, now, || entropy.fraction())
        {
            self.problem = Some(p);
        }
    }

    fn start_login(&mut self, flow: LoginFlow, reply: Reply<LoginStarted>, events: &LoginEvents) {
        let start = Start {
            login_id: self.entropy.token(16),
            oidc: self.oidc.clone(),
            clock: self.clock.clone(),
            registrations: self.registrations.clone(),
            margins: self.margins.clone(),
            events: events.clone(),
        };
        tracing::info!(session = %self.cfg.name, login_id = %start.login_id, flow = flow.as_str(), "starting a login");
        let (pending, status) =
            PendingLogin::start(start.ctx(&self.cfg), flow, self.entropy.clone(), reply);
        self.login = Some(pending);
        self.out.login.send_replace(status);
    }

    async fn on_login_event(&mut self, id: String, ev: LoginEvent) {
        let Some(p) = self.login.as_mut().filter(|p| p.id == id) else {
            return; // a login that was cancelled (logout) still reporting
        };
        match ev {
            LoginEvent::Started(started) => {
                let status = p.started(started);
                self.out.login.send_replace(status);
            }
            LoginEvent::Finished(outcome) => {
                let Some(done) = self.login.take().map(|p| p.finish(outcome, &self.cfg)) else {
                    return;
                };
                if let Some(rec) = done.record {
                    self.persist(&rec).await;
                    self.chain.replaced();
                    self.upkeep.logged_in(rec.client.clone(), done.flow);
                    tracing::info!(session = %self.cfg.name, expires_at = %rec.expires_at, refreshable = rec.refresh_token.is_some(), "login succeeded");
                    self.chain.adopt(rec, self.entropy.fraction());
                    self.problem = None;
                }
                if let Some(problem) = done.problem {
                    tracing::warn!(session = %self.cfg.name, %problem, "login ended without tokens");
                    self.problem = Some(problem);
                }
                self.out.login.send_replace(done.status);
            }
        }
    }

    async fn logout(&mut self) -> Result<(bool, Option<Secret>), SessionError> {
        if let Some(p) = self.login.take() {
            self.out.login.send_replace(p.cancel());
        }
        let upstream_token = self
            .chain
            .valid(self.now(), Duration::ZERO)
            .map(|r| r.access_token.clone());
        let had = self.chain.forget().is_some();
        self.roles.clear();
        self.problem = None;
        // Withdraw the served token before the keyring is touched: a keyring that hangs must
        // not keep a token the user asked to forget in service.
        self.publish(false);
        self.saved.delete().await?;
        self.store_problem = None;
        tracing::info!(session = %self.cfg.name, had_tokens = had, "logged out");
        Ok((had, upstream_token))
    }

    fn publish(&self, refreshing: bool) {
        let now = self.now();
        let state = chain::state(&self.chain, now, self.login.is_some(), refreshing);
        // A failed save outranks everything else until a write succeeds.
        let problem = self.store_problem.as_ref().or(self.problem.as_ref());
        let last_error = problem.map(|p| p.to_string());
        let (cfg, margins) = (&self.cfg, self.margins());
        let status = chain::status(cfg, &self.chain, now, margins, state, last_error);
        self.out.publish(cfg, status, self.chain.record.as_ref());
    }
}

//! The refresh chain as plain data, and every decision about it as a pure function of
//! (chain, now, margins): what a caller gets (serve / refresh / refuse), when the task wakes,
//! what a refresh result does (new record, back-off, chain ended). This is where a refresh is
//! decided; `policy.rs` holds only the arithmetic. Each decision carries its named inputs and
//! is logged once, as one structured event.
//! Must not: read the clock, sleep, touch the store or upstream, or hold a channel.

use std::time::Duration;

use time::OffsetDateTime;

use crate::api::{SessionState, SessionStatus, TokenData};
use crate::oidc::{CreateTokenRequest, OidcError, TokenResponse};
use crate::store::records::{ClientRecord, TokenRecord};

use super::problem::{Problem, UpstreamError};
use super::{Margins, SessionConfig, SessionError, policy};

/// Tokens that expire within this skew are treated as expired (clock drift, transit time).
pub(super) const EXPIRY_SKEW: Duration = Duration::from_secs(5);

/// A session's refresh chain: its tokens and the schedule state around them.
#[derive(Debug, Default)]
pub(super) struct Chain {
    pub record: Option<TokenRecord>,
    /// Jitter fraction drawn once per token, so the schedule does not move on every loop.
    pub jitter: f64,
    pub failures: u32,
    pub retry_at: Option<OffsetDateTime>,
    /// Bumped whenever the record is replaced by something other than a refresh.
    pub generation: u64,
    /// The expiry of the current token was reported (once per token).
    pub expiry_reported: bool,
    /// The token is exported to the SDK cache: it must stay out of every SDK's refusal
    /// window (`policy::exported_refresh_at`).
    pub exported: bool,
}

/// Whether a token expiring at `expires_at` stays valid `min_validity` (at least the skew)
/// past `now`. A huge `min_validity` must not overflow the date arithmetic: it is not met.
pub(super) fn valid_for(
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
    min_validity: Duration,
) -> bool {
    time::Duration::try_from(min_validity.max(EXPIRY_SKEW))
        .ok()
        .and_then(|d| now.checked_add(d))
        .is_some_and(|needed| expires_at > needed)
}

impl Chain {
    /// The record if its access token is valid for `min_validity` more.
    pub fn valid(&self, now: OffsetDateTime, min_validity: Duration) -> Option<&TokenRecord> {
        let rec = self.record.as_ref()?;
        valid_for(rec.expires_at, now, min_validity).then_some(rec)
    }

    /// Whether the chain can go on: a refresh token and a client that has not lapsed.
    pub fn refreshable(&self, now: OffsetDateTime) -> bool {
        self.record
            .as_ref()
            .is_some_and(|r| r.refresh_token.is_some() && r.client.client_secret_expires_at > now)
    }

    fn in_backoff(&self, now: OffsetDateTime) -> bool {
        self.retry_at.is_some_and(|t| t > now)
    }

    /// A new record from a login or a refresh: the schedule starts over for it.
    pub fn adopt(&mut self, rec: TokenRecord, jitter: f64) {
        self.expiry_reported = false;
        self.jitter = jitter;
        self.record = Some(rec);
        self.failures = 0;
        self.retry_at = None;
    }

    /// The record was replaced by something other than a refresh of it (login, logout):
    /// a refresh still in flight for the old one must not land.
    pub fn replaced(&mut self) {
        self.generation += 1;
    }

    /// The CreateToken request that refreshes the held token, if it can be refreshed.
    pub fn refresh_request(&self) -> Option<CreateTokenRequest> {
        let rec = self.record.as_ref()?;
        let rt = rec.refresh_token.as_ref()?;
        let client = &rec.client;
        Some(CreateTokenRequest::refresh_token(
            &client.client_id,
            &client.client_secret,
            rt,
        ))
    }

    /// Upstream ended the chain: `rec` (no refresh token) is served until it expires.
    pub fn end(&mut self, rec: TokenRecord) {
        self.record = Some(rec);
        self.failures = 0;
        self.retry_at = None;
    }

    /// Logout: nothing held, nothing scheduled.
    pub fn forget(&mut self) -> Option<TokenRecord> {
        self.replaced();
        self.failures = 0;
        self.retry_at = None;
        self.record.take()
    }
}

/// What one caller asks for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ask {
    pub min_validity: Duration,
    /// Refresh even if the token is still valid (the portal rejected it).
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Serve the held token.
    Serve,
    /// Join (or start) a refresh, then answer.
    Refresh,
    /// No token to give: say why (`refusal`).
    Refuse,
}

/// What a caller gets, with the inputs that decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TokenDecision {
    pub valid_for_caller: bool,
    pub valid: bool,
    pub refreshable: bool,
    pub in_backoff: bool,
    pub forced: bool,
    /// No refresh will happen for this caller (its refresh just ended, or none can start).
    pub last_word: bool,
    pub outcome: Outcome,
}

impl TokenDecision {
    pub fn log(&self, session: &str) {
        tracing::debug!(
            session,
            valid_for_caller = self.valid_for_caller,
            valid = self.valid,
            refreshable = self.refreshable,
            in_backoff = self.in_backoff,
            forced = self.forced,
            last_word = self.last_word,
            outcome = ?self.outcome,
            "token decision"
        );
    }
}

/// What a caller gets now. `last_word`: no (further) refresh happens for this caller, so
/// a token still valid at all is served (SPEC: keep serving it while refreshes fail).
pub(super) fn decide(
    chain: &Chain,
    now: OffsetDateTime,
    ask: Ask,
    last_word: bool,
) -> TokenDecision {
    let valid_for_caller = chain.valid(now, ask.min_validity).is_some();
    let valid = chain.valid(now, Duration::ZERO).is_some();
    let refreshable = chain.refreshable(now);
    let in_backoff = chain.in_backoff(now);
    let forced = ask.force && !last_word;
    let outcome = if forced && refreshable {
        Outcome::Refresh
    } else if valid_for_caller {
        Outcome::Serve
    } else if !last_word && refreshable && !in_backoff {
        Outcome::Refresh
    } else if valid {
        Outcome::Serve
    } else {
        Outcome::Refuse
    };
    TokenDecision {
        valid_for_caller,
        valid,
        refreshable,
        in_backoff,
        forced,
        last_word,
        outcome,
    }
}

/// Why there is no token, once `decide` said `Refuse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The chain could go on but its last refresh failed: an upstream error.
    RefreshFailed,
    /// Only a login helps (or the one pending).
    LoginNeeded,
}

pub(super) fn refusal(chain: &Chain, now: OffsetDateTime, refresh_failed: bool) -> Refusal {
    if refresh_failed && chain.refreshable(now) {
        Refusal::RefreshFailed
    } else {
        Refusal::LoginNeeded
    }
}

/// The answer to a caller once `d` says serve or refuse. A failed refresh is an upstream
/// error carrying its problem; otherwise only a login (or the pending one) helps.
pub(super) fn answer(
    cfg: &SessionConfig,
    chain: &Chain,
    now: OffsetDateTime,
    d: &TokenDecision,
    problem: Option<&Problem>,
    login_pending: bool,
) -> Result<TokenData, SessionError> {
    if d.outcome == Outcome::Serve
        && let Some(rec) = chain.record.as_ref()
    {
        return Ok(token_data(cfg, rec));
    }
    match (refusal(chain, now, problem.is_some()), problem) {
        (Refusal::RefreshFailed, Some(p)) => Err(SessionError::Upstream(
            UpstreamError::TokenExpired(p.clone()),
        )),
        _ if login_pending => Err(SessionError::LoginPending(cfg.name.clone())),
        _ => Err(SessionError::LoginRequired(cfg.name.clone())),
    }
}

/// What a caller is handed for `rec`.
pub(super) fn token_data(cfg: &SessionConfig, rec: &TokenRecord) -> TokenData {
    TokenData {
        session: cfg.name.clone(),
        access_token: rec.access_token.clone(),
        expires_at: rec.expires_at,
        region: cfg.region.clone(),
        start_url: cfg.start_url.clone(),
    }
}

/// When the next proactive refresh is due (the back-off retry when in back-off).
pub(super) fn next_refresh_at(
    chain: &Chain,
    now: OffsetDateTime,
    margins: Margins,
) -> Option<OffsetDateTime> {
    if !chain.refreshable(now) {
        return None;
    }
    if let Some(t) = chain.retry_at {
        return Some(t);
    }
    let rec = chain.record.as_ref()?;
    let at = policy::refresh_at(rec.issued_at, rec.expires_at, margins.refresh, chain.jitter);
    Some(match chain.exported {
        true => policy::exported_refresh_at(rec.issued_at, rec.expires_at, at),
        false => at,
    })
}

/// When to register a fresh login client: only for sessions in use (tokens held), ahead of
/// the current client's lapse (policy::reregister_at), or at the retry after a failure.
pub(super) fn reregister_at(
    chain: &Chain,
    registration: Option<&ClientRecord>,
    retry_at: Option<OffsetDateTime>,
    margins: Margins,
) -> Option<OffsetDateTime> {
    chain.record.as_ref()?;
    if let Some(t) = retry_at {
        return Some(t);
    }
    let reg = registration?;
    Some(policy::reregister_at(
        reg.client_id_issued_at,
        reg.client_secret_expires_at,
        margins.reregistration,
    ))
}

/// The next moment something changes without a request: a refresh (unless one is running),
/// the token expiring, or a re-registration (unless one is running).
pub(super) fn next_wake(
    chain: &Chain,
    now: OffsetDateTime,
    margins: Margins,
    refreshing: bool,
    reregister: Option<OffsetDateTime>,
) -> Option<OffsetDateTime> {
    let refresh = if refreshing {
        None
    } else {
        let expiry = chain
            .record
            .as_ref()
            .map(|r| r.expires_at)
            .filter(|t| *t > now);
        earliest(next_refresh_at(chain, now, margins), expiry)
    };
    earliest(refresh, reregister)
}

fn earliest(a: Option<OffsetDateTime>, b: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What a timer wake does, with its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WakeDecision {
    pub refreshable: bool,
    pub refresh_due: bool,
    pub reregister_due: bool,
    /// The token expired with no way to refresh it, not yet reported: the login is lost.
    pub login_lost: bool,
}

impl WakeDecision {
    pub fn log(&self, session: &str) {
        tracing::debug!(
            session,
            refreshable = self.refreshable,
            refresh_due = self.refresh_due,
            reregister_due = self.reregister_due,
            login_lost = self.login_lost,
            "wake decision"
        );
    }
}

pub(super) fn on_wake(
    chain: &Chain,
    now: OffsetDateTime,
    margins: Margins,
    reregister: Option<OffsetDateTime>,
) -> WakeDecision {
    let refreshable = chain.refreshable(now);
    let expired = chain.record.as_ref().is_some_and(|r| r.expires_at <= now);
    WakeDecision {
        refreshable,
        refresh_due: refreshable && next_refresh_at(chain, now, margins).is_some_and(|t| t <= now),
        reregister_due: reregister.is_some_and(|t| t <= now),
        login_lost: expired && !refreshable && !chain.expiry_reported,
    }
}

/// What a refresh result does to the chain.
#[derive(Debug)]
pub(super) enum Landed {
    /// The record was replaced while the refresh ran (login, logout): drop the result.
    Stale,
    /// New tokens: persist, then adopt.
    Refreshed { record: TokenRecord, rotated: bool },
    /// Upstream ended the chain: keep the access token (served until it expires), drop the
    /// refresh token, persist that.
    Ended {
        record: TokenRecord,
        cause: OidcError,
    },
    /// A transient failure: retry at `retry_at`.
    BackOff {
        failures: u32,
        retry_at: OffsetDateTime,
        cause: OidcError,
    },
}

/// What a refresh started at `generation` means now. `jitter` (drawn only for a back-off)
/// in [0, 1) spreads retries.
pub(super) fn landed(
    chain: &Chain,
    now: OffsetDateTime,
    generation: u64,
    out: Result<TokenResponse, OidcError>,
    jitter: impl FnOnce() -> f64,
) -> Landed {
    let Some(old) = chain
        .record
        .clone()
        .filter(|_| generation == chain.generation)
    else {
        return Landed::Stale;
    };
    match out {
        Ok(tok) => Landed::Refreshed {
            rotated: tok.refresh_token.is_some(),
            record: TokenRecord {
                access_token: tok.access_token,
                expires_at: now + Duration::from_secs(tok.expires_in.max(0).unsigned_abs()),
                issued_at: now,
                // AWS may rotate; keep the old one when none is returned (WIRE §5.1)
                refresh_token: tok.refresh_token.or(old.refresh_token),
                last_refresh_at: Some(now),
                ..old
            },
        },
        Err(cause) if cause.ends_refresh_chain() => Landed::Ended {
            record: TokenRecord {
                refresh_token: None,
                ..old
            },
            cause,
        },
        Err(cause) => {
            let failures = chain.failures + 1;
            Landed::BackOff {
                failures,
                retry_at: now + policy::backoff(failures, jitter()),
                cause,
            }
        }
    }
}

/// The session's state word for `status`.
pub(super) fn state(
    chain: &Chain,
    now: OffsetDateTime,
    login_pending: bool,
    refreshing: bool,
) -> SessionState {
    if login_pending {
        return SessionState::LoginPending;
    }
    if refreshing {
        return SessionState::Refreshing;
    }
    match chain.valid(now, Duration::ZERO) {
        None => SessionState::LoginRequired,
        Some(_) if chain.refreshable(now) => SessionState::Valid,
        Some(_) => SessionState::Expiring,
    }
}

/// The session's secret-free status.
pub(super) fn status(
    cfg: &SessionConfig,
    chain: &Chain,
    now: OffsetDateTime,
    margins: Margins,
    state: SessionState,
    last_error: Option<String>,
) -> SessionStatus {
    let rec = chain.record.as_ref();
    let refreshable = chain.refreshable(now);
    let login_needed_by = match rec {
        Some(r) if refreshable => Some(r.client.client_secret_expires_at),
        Some(r) => Some(r.expires_at),
        None => None,
    };
    SessionStatus {
        name: cfg.name.clone(),
        start_url: cfg.start_url.clone(),
        region: cfg.region.clone(),
        legacy: cfg.legacy,
        state,
        access_token_expires_at: rec.map(|r| r.expires_at),
        refreshable,
        registration_expires_at: rec.map(|r| r.client.client_secret_expires_at),
        last_refresh_at: rec.and_then(|r| r.last_refresh_at),
        next_refresh_at: next_refresh_at(chain, now, margins),
        login_needed_by,
        last_error,
    }
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;

//! A session's account list: every page of ListAccounts, then every page of ListAccountRoles
//! per account, kept briefly so `accounts` and `profiles` run back to back ask the portal
//! once; `refresh` asks again. Concurrent askers share one listing.
//! Must not: call CreateToken itself (it asks the handle for a token), write files, or
//! serve a cached list once the session has no valid token.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::api::{AccountEntry, AccountsData};
use crate::clock::{BoxFuture, Clock};
use crate::portal::{Portal, PortalError};
use crate::secret::Secret;

use super::{SessionError, SessionHandle, UpstreamError};

/// How long a listing is served from memory. Assignments change rarely, but a user who just
/// got a new role should not wait long; `?refresh=true` skips the cache.
pub const CACHE_FOR: Duration = Duration::from_secs(60);
/// Portal calls for roles in flight at once: a few, so hundreds of accounts list in seconds
/// without drawing TooManyRequestsException.
const CONCURRENCY: usize = 4;
/// Attempts per page when the portal says TooManyRequestsException (back-off 1 s, 2 s, 4 s).
const THROTTLE_ATTEMPTS: u32 = 4;
/// More pages than this from one listing means a `nextToken` that never ends.
const MAX_PAGES: usize = 10_000;

/// The last listing and when it was fetched; the async lock makes concurrent askers wait
/// for one listing instead of each starting their own.
#[derive(Default)]
pub struct AccountsCache {
    current: tokio::sync::Mutex<Option<AccountsData>>,
    /// A copy of the last listing, read without waiting (for `status`), kept past the cache
    /// time: it says what the portal said when.
    last: std::sync::Mutex<Option<AccountsData>>,
}

impl AccountsCache {
    pub(super) async fn get(
        &self,
        handle: &SessionHandle,
        portal: Arc<dyn Portal>,
        clock: Arc<dyn Clock>,
        refresh: bool,
    ) -> Result<AccountsData, SessionError> {
        // A valid token first: no list is served once the login is gone.
        let token = handle
            .token(Duration::from_secs(60), Duration::ZERO)
            .await?;
        let mut cached = self.current.lock().await;
        let now = clock.now();
        if let Some(c) = cached
            .as_ref()
            .filter(|c| !refresh && fresh(c.fetched_at, now))
        {
            return Ok(c.clone());
        }
        let name = &handle.config().name;
        let mut result = list_all(&portal, &clock, &token.access_token).await;
        if matches!(result, Err(PortalError::Unauthorized { .. })) {
            tracing::info!(session = %name, "the portal rejected the access token; refreshing once");
            let token = handle.refreshed_token().await?;
            result = list_all(&portal, &clock, &token.access_token).await;
        }
        let accounts = result.map_err(|e| match e {
            PortalError::Unauthorized { .. } => SessionError::LoginRequired(name.clone()),
            cause => SessionError::Upstream(UpstreamError::ListAccounts {
                session: name.clone(),
                cause,
            }),
        })?;
        tracing::info!(session = %name, accounts = accounts.len(), roles = accounts.iter().map(|a| a.roles.len()).sum::<usize>(), "listed accounts and roles");
        let data = AccountsData {
            session: name.clone(),
            fetched_at: now,
            accounts,
        };
        *cached = Some(data.clone());
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(data.clone());
        Ok(data)
    }

    /// The last listing, if any, without waiting for one in flight.
    pub(super) fn last(&self) -> Option<AccountsData> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Waits (at most an hour) for the login just started to end; when it succeeded, lists the
/// accounts afresh, so `status` can tell whether the profiles block is out of date.
pub async fn refresh_after_login(handle: &SessionHandle) {
    let name = &handle.config().name;
    let outcome = handle.login_status(Duration::from_secs(3600)).await;
    if outcome.state != crate::api::LoginState::Succeeded {
        return;
    }
    match handle.accounts(true).await {
        Ok(list) => {
            tracing::debug!(session = %name, accounts = list.accounts.len(), "accounts listed again after the login")
        }
        Err(e) => {
            tracing::info!(session = %name, error = %e, "cannot list the accounts after the login")
        }
    }
}

/// Compares a session's account list with its block entries and every profile of the
/// session in the config (`configured`: (account id, role name) pairs).
pub fn freshness(
    list: &AccountsData,
    block: &std::collections::BTreeSet<(String, String)>,
    configured: &std::collections::BTreeSet<(String, String)>,
) -> crate::api::ProfilesFreshness {
    let assigned: std::collections::BTreeSet<(String, String)> = list
        .accounts
        .iter()
        .flat_map(|a| a.roles.iter().map(|r| (a.account_id.clone(), r.clone())))
        .collect();
    let show = |(a, r): &(String, String)| format!("{a}/{r}");
    let missing: Vec<String> = assigned.difference(configured).map(show).collect();
    let gone: Vec<String> = block.difference(&assigned).map(show).collect();
    crate::api::ProfilesFreshness {
        session: list.session.clone(),
        up_to_date: missing.is_empty() && gone.is_empty(),
        missing,
        gone,
        checked_at: list.fetched_at,
    }
}

/// Retries one page while the portal throttles, backing off on the injected clock.
async fn paged<'a, T, F>(clock: &Arc<dyn Clock>, mut call: F) -> Result<T, PortalError>
where
    F: FnMut() -> BoxFuture<'a, Result<T, PortalError>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Err(PortalError::TooManyRequests { .. }) if attempt + 1 < THROTTLE_ATTEMPTS => {
                let wait = Duration::from_secs(1 << attempt);
                clock.sleep_until(clock.now() + wait).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn endless(what: &str) -> PortalError {
    PortalError::Malformed(format!(
        "{what} returned more than {MAX_PAGES} pages (a nextToken that never ends)"
    ))
}

/// Every account (all pages), then every role of each (all pages), in the portal's order.
pub async fn list_all(
    portal: &Arc<dyn Portal>,
    clock: &Arc<dyn Clock>,
    token: &Secret,
) -> Result<Vec<AccountEntry>, PortalError> {
    let mut infos = Vec::new();
    let mut next: Option<String> = None;
    for page in 0.. {
        if page == MAX_PAGES {
            return Err(endless("ListAccounts"));
        }
        let got = paged(clock, || portal.list_accounts(token, next.as_deref())).await?;
        infos.extend(got.accounts);
        match got.next_token {
            Some(t) => next = Some(t),
            None => break,
        }
    }
    let limit = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, info) in infos.iter().enumerate() {
        let (portal, clock, token, limit) =
            (portal.clone(), clock.clone(), token.clone(), limit.clone());
        let account = info.account_id.clone();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let roles = match roles_of(&portal, &clock, &token, &account).await {
                // Reported for stale assignments (WIRE.md §7): the account, without roles.
                Err(PortalError::Forbidden { message }) => {
                    tracing::warn!(account = %account, %message, "the portal refused to list this account's roles; listing it without roles");
                    Ok(Vec::new())
                }
                other => other,
            };
            (i, roles)
        });
    }
    let mut roles: Vec<Vec<String>> = vec![Vec::new(); infos.len()];
    while let Some(joined) = tasks.join_next().await {
        let (i, r) =
            joined.map_err(|e| PortalError::Transport(format!("a listing task ended: {e}")))?;
        roles[i] = r?;
    }
    Ok(infos
        .into_iter()
        .zip(roles)
        .map(|(info, roles)| AccountEntry {
            account_id: info.account_id,
            account_name: info.account_name,
            email_address: info.email_address,
            roles,
        })
        .collect())
}

async fn roles_of(
    portal: &Arc<dyn Portal>,
    clock: &Arc<dyn Clock>,
    token: &Secret,
    account: &str,
) -> Result<Vec<String>, PortalError> {
    let mut roles = Vec::new();
    let mut next: Option<String> = None;
    for page in 0.. {
        if page == MAX_PAGES {
            return Err(endless("ListAccountRoles"));
        }
        let got = paged(clock, || {
            portal.list_account_roles(token, account, next.as_deref())
        })
        .await?;
        roles.extend(got.roles);
        match got.next_token {
            Some(t) => next = Some(t),
            None => break,
        }
    }
    Ok(roles)
}

/// Whether a listing fetched at `fetched_at` may still be served at `now` (pure, for tests).
pub fn fresh(fetched_at: OffsetDateTime, now: OffsetDateTime) -> bool {
    now >= fetched_at && now < fetched_at + CACHE_FOR
}

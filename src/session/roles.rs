//! Role credentials of one session, cached per (account, role) in memory only, one portal
//! call per role at a time, dropped all at once when the session loses its tokens (logout,
//! the end of the refresh chain, a lost login).
//! They run in the caller's task, never in the session task: a GetRoleCredentials call can
//! take seconds, and the session task must keep answering token asks, refreshing and
//! saving meanwhile; the portal call needs only a token, which it asks the task for like
//! any caller. The session task only calls `clear`.
//! Must not: call CreateToken or touch the store (tokens belong to the session task), or
//! keep credentials anywhere but memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::Clock;
use crate::portal::{Portal, PortalError, RoleCredentials};

use super::SessionError;
use super::handle::SessionHandle;
use super::problem::UpstreamError;

/// Role credentials are handed out with at least this much left (botocore re-runs
/// `credential_process` on every call below 15 minutes, WIRE.md §8.1).
pub(super) const ROLE_CREDENTIALS_MARGIN: Duration = Duration::from_secs(15 * 60 + 60);

/// One slot per (account, role): the cached credentials behind an async lock, so concurrent
/// askers share one portal call.
type RoleSlot = Arc<tokio::sync::Mutex<Option<RoleCredentials>>>;

/// The session's role credentials. `clear` drops them all and bumps the epoch, so a fetch
/// that was under way when they were dropped neither caches nor hands out what it got.
pub(super) struct Roles {
    portal: Arc<dyn Portal>,
    clock: Arc<dyn Clock>,
    slots: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    epoch: u64,
    by_role: HashMap<(String, String), RoleSlot>,
}

impl Roles {
    pub fn new(portal: Arc<dyn Portal>, clock: Arc<dyn Clock>) -> Self {
        Self {
            portal,
            clock,
            slots: Mutex::new(Slots::default()),
        }
    }

    pub fn portal(&self) -> &Arc<dyn Portal> {
        &self.portal
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn slot(&self, account: &str, role: &str) -> (u64, RoleSlot) {
        let mut slots = self.lock();
        let slot = slots
            .by_role
            .entry((account.to_string(), role.to_string()))
            .or_default()
            .clone();
        (slots.epoch, slot)
    }

    /// Drops every cached credential of the session (logout, chain ended, login lost).
    pub fn clear(&self) {
        let mut slots = self.lock();
        slots.epoch += 1;
        slots.by_role.clear();
    }

    /// Credentials for `account`/`role` with more than `min_validity` left (never less than
    /// the margin), cached until 15 minutes before they expire. A portal 401 causes one token
    /// refresh (through `session`) and one retry.
    pub async fn get(
        &self,
        session: &SessionHandle,
        account: &str,
        role: &str,
        min_validity: Duration,
    ) -> Result<RoleCredentials, SessionError> {
        let name = &session.config().name;
        let (epoch, slot) = self.slot(account, role);
        let mut cached = slot.lock().await;
        let now = self.clock.now();
        let min_validity = min_validity.max(ROLE_CREDENTIALS_MARGIN);
        if let Some(c) = cached
            .as_ref()
            .filter(|c| c.expiration > now + min_validity)
        {
            return Ok(c.clone());
        }
        let token = session
            .token(Duration::from_secs(60), Duration::ZERO)
            .await?;
        let mut result = self
            .portal
            .get_role_credentials(&token.access_token, account, role)
            .await;
        if matches!(result, Err(PortalError::Unauthorized { .. })) {
            tracing::info!(session = %name, "the portal rejected the access token; refreshing once");
            let token = session.refreshed_token().await?;
            result = self
                .portal
                .get_role_credentials(&token.access_token, account, role)
                .await;
        }
        let creds = result.map_err(|e| match e {
            PortalError::Unauthorized { .. } => SessionError::LoginRequired(name.clone()),
            PortalError::Forbidden { message } | PortalError::ResourceNotFound { message } => {
                SessionError::Forbidden(format!(
                    "no access to role {role} in account {account} for session {name}: {message}; check sso_account_id and sso_role_name"
                ))
            }
            other => SessionError::Upstream(UpstreamError::RoleCredentials(other)),
        })?;
        if self.lock().epoch != epoch {
            // The session lost its tokens while the portal answered.
            return Err(SessionError::LoginRequired(name.clone()));
        }
        let now = self.clock.now();
        if creds.expiration <= now {
            tracing::warn!(session = %name, expiration = %creds.expiration, %now, "role credentials arrived already expired; the local clock is probably wrong");
            return Err(SessionError::Upstream(UpstreamError::ClockSkew {
                account: account.to_string(),
                role: role.to_string(),
                expiration: creds.expiration,
                now,
            }));
        }
        *cached = Some(creds.clone());
        Ok(creds)
    }
}

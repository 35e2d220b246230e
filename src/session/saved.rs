//! Where one session's tokens rest: its store key (start URL, region and OIDC endpoint),
//! loading (adopting a record of the key of before, and never using a record whose client
//! came from another endpoint), writing (plus the opt-in AWS CLI cache export) and deleting.
//! Must not: decide anything about the chain, or hold the tokens (the task does).

use std::path::PathBuf;
use std::sync::Arc;

use crate::store::SecretStore;
use crate::store::records::{TokenRecord, legacy_token_key, token_key};

use super::problem::Problem;
use super::{SessionConfig, SessionError};

pub(super) struct Saved {
    cfg: Arc<SessionConfig>,
    key: String,
    /// The key records had before the endpoint was part of it (read and deleted only).
    legacy: String,
    store: Arc<dyn SecretStore>,
    aws_cli_cache: Option<PathBuf>,
}

/// What loading found.
#[derive(Default)]
pub(super) struct Loaded {
    pub record: Option<TokenRecord>,
    /// Why nothing usable was loaded, if something was wrong.
    pub problem: Option<Problem>,
    /// Moving an adopted record to its key failed.
    pub store_problem: Option<Problem>,
}

impl Saved {
    pub fn new(
        cfg: Arc<SessionConfig>,
        store: Arc<dyn SecretStore>,
        aws_cli_cache: Option<PathBuf>,
    ) -> Self {
        let endpoint = cfg.oidc_endpoint.as_str();
        Self {
            key: token_key(&cfg.name, &cfg.start_url, &cfg.region, endpoint),
            legacy: legacy_token_key(&cfg.name, &cfg.start_url, &cfg.region),
            cfg,
            store,
            aws_cli_cache,
        }
    }

    /// Recovers the session's record (restart safety).
    pub async fn load(&self) -> Loaded {
        let name = &self.cfg.name;
        let mut found = self.store.get(&self.key).await;
        let mut adopted = false;
        if matches!(found, Ok(None)) {
            found = self.store.get(&self.legacy).await;
            adopted = matches!(found, Ok(Some(_)));
        }
        let mut loaded = Loaded::default();
        match found.map(|s| s.map(|s| TokenRecord::from_secret(&s))) {
            Ok(Some(Ok(rec))) if rec.client.endpoint != self.cfg.oidc_endpoint.as_str() => {
                // Its refresh token and client secret belong to another endpoint: never
                // sent here, and left in the store for when the session points back.
                tracing::warn!(session = %name, record_endpoint = %rec.client.endpoint, endpoint = %self.cfg.oidc_endpoint, "ignoring stored tokens of another OIDC endpoint");
            }
            Ok(Some(Ok(rec))) => {
                tracing::info!(session = %name, expires_at = %rec.expires_at, refreshable = rec.refresh_token.is_some(), "recovered tokens from the store");
                if adopted {
                    // Stored before records were keyed by endpoint: move it to its key.
                    loaded.store_problem = self.write(&rec).await.err();
                }
                loaded.record = Some(rec);
            }
            Ok(Some(Err(e))) => {
                tracing::warn!(session = %name, error = %e, "ignoring an unreadable stored record");
                loaded.problem = Some(Problem::StoredUnreadable(e.to_string()));
            }
            Ok(None) => tracing::debug!(session = %name, "nothing stored"),
            Err(e) => {
                tracing::warn!(session = %name, error = %e, "could not read the store");
                loaded.problem = Some(Problem::StoreRead(e.to_string()));
            }
        }
        loaded
    }

    /// Writes `rec` (and exports its token for the AWS CLI, when opted in).
    pub async fn write(&self, rec: &TokenRecord) -> Result<(), Problem> {
        let c = &self.cfg;
        let result = match rec.to_secret() {
            Ok(s) => self
                .store
                .set(&self.key, s)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Some(dir) = &self.aws_cli_cache {
            let exported = crate::store::aws_cache::write(
                dir,
                &c.name,
                c.legacy,
                &c.start_url,
                &c.region,
                &rec.access_token,
                rec.expires_at,
            );
            match exported {
                Ok(path) => {
                    tracing::debug!(session = %c.name, path = %path.display(), "exported the token for the AWS CLI")
                }
                Err(e) => {
                    tracing::warn!(session = %c.name, error = %e, "could not export the token for the AWS CLI")
                }
            }
        }
        result.map_err(|e| {
            tracing::error!(session = %c.name, error = %e, "could not persist tokens; they live in memory only");
            Problem::StoreWrite(e)
        })
    }

    /// Forgets the session's record in the store and the exported cache.
    pub async fn delete(&self) -> Result<(), SessionError> {
        if let Some(dir) = &self.aws_cli_cache
            && let Err(e) = crate::store::aws_cache::remove(
                dir,
                &self.cfg.name,
                self.cfg.legacy.then_some(self.cfg.start_url.as_str()),
            )
        {
            tracing::warn!(session = %self.cfg.name, error = %e, "could not remove the exported AWS CLI token");
        }
        for key in [&self.key, &self.legacy] {
            self.store.delete(key).await.map_err(|e| {
                SessionError::Store(format!(
                    "tokens were forgotten in memory, but the keyring entry could not be removed: {e}"
                ))
            })?;
        }
        Ok(())
    }
}

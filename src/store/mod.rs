//! Where secrets rest: a small key/value trait with two backends, the OS keyring
//! (`keyring-core` with the platform's store) and memory. Values are whole JSON records
//! (see `records`), written in one call, so a reader never sees half an update.
//! Must not: interpret records, or put a secret in an error message.

pub mod aws_cache;
pub mod chunked;
pub mod keyring;
pub mod memory;
pub mod records;

use std::sync::Arc;

use serde::Serialize;

use crate::clock::BoxFuture;
use crate::config::StoreKind;
use crate::secret::Secret;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("keyring unavailable: {0}")]
    Unavailable(String),
    #[error("keyring error: {0}")]
    Backend(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreHealth {
    /// `keyring` or `memory`.
    pub backend: String,
    pub available: bool,
    /// Why the keyring cannot be used, when it cannot.
    pub detail: Option<String>,
}

pub trait SecretStore: Send + Sync + 'static {
    fn health(&self) -> StoreHealth;
    /// Missing is `Ok(None)`.
    fn get(&self, key: &str) -> BoxFuture<'_, Result<Option<Secret>, StoreError>>;
    fn set(&self, key: &str, value: Secret) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Missing is `Ok(())`.
    fn delete(&self, key: &str) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// Opens the configured backend. If the keyring cannot be used, the daemon still starts:
/// one clear warning, tokens kept in memory, and `health()` says why.
pub async fn open(kind: StoreKind) -> Arc<dyn SecretStore> {
    match kind {
        StoreKind::Memory => Arc::new(memory::MemoryStore::new()),
        StoreKind::Keyring => match keyring::KeyringStore::open().await {
            // Windows Credential Manager takes at most 2,560 bytes per secret.
            Ok(store) if cfg!(windows) => {
                Arc::new(chunked::ChunkedStore::new(Arc::new(store), 2560))
            }
            Ok(store) => Arc::new(store),
            Err(reason) => {
                tracing::warn!(%reason, "the OS keyring cannot be used; tokens are kept in memory only and will not survive a restart");
                Arc::new(memory::MemoryStore::unavailable_keyring(reason))
            }
        },
    }
}

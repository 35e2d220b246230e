//! Where secrets rest: a small key/value trait with two backends, the OS keyring
//! (`keyring-core` with the platform's store) and memory. Values are whole JSON records
//! (see `records`), written in one call, so a reader never sees half an update.
//! Must not: interpret records, or put a secret in an error message.

pub mod aws_cache;
pub mod chunked;
pub mod keyring;
pub mod memory;
pub mod records;

use std::future::Future;
use std::sync::Arc;

use serde::Serialize;

use crate::config::StoreKind;
use crate::secret::Secret;
use futures_core::future::BoxFuture;

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
    open_with(kind, || async {
        let store = keyring::KeyringStore::open().await?;
        // Windows Credential Manager takes at most 1,280 UTF-16 code units per secret.
        let store: Arc<dyn SecretStore> = if cfg!(windows) {
            Arc::new(chunked::ChunkedStore::new(
                Arc::new(store),
                chunked::CREDENTIAL_MANAGER_MAX_UNITS,
            ))
        } else {
            Arc::new(store)
        };
        Ok(store)
    })
    .await
}

/// `open` with the keyring opener injected, so the fallback is testable without touching
/// the process environment (the session bus address is process-global).
pub async fn open_with<F, Fut>(kind: StoreKind, open_keyring: F) -> Arc<dyn SecretStore>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Arc<dyn SecretStore>, StoreError>>,
{
    match kind {
        StoreKind::Memory => Arc::new(memory::MemoryStore::new()),
        StoreKind::Keyring => match open_keyring().await {
            Ok(store) => store,
            Err(e) => {
                let reason = match e {
                    StoreError::Unavailable(r) | StoreError::Backend(r) => r,
                };
                tracing::warn!(
                    %reason,
                    "the OS keyring cannot be used; tokens are kept in memory only and will not survive a restart"
                );
                Arc::new(memory::MemoryStore::unavailable_keyring(reason))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unusable_keyring_falls_back_to_memory_and_says_why() {
        let store = open_with(StoreKind::Keyring, || async {
            Err(StoreError::Unavailable(
                "no Secret Service on the D-Bus session bus (connection refused)".into(),
            ))
        })
        .await;
        assert_eq!(
            store.health(),
            StoreHealth {
                backend: "keyring".into(),
                available: false,
                detail: Some(
                    "no Secret Service on the D-Bus session bus (connection refused)".into()
                ),
            }
        );
        // Tokens still work, in memory.
        store.set("token/x", Secret::new("v")).await.unwrap();
        assert_eq!(store.get("token/x").await.unwrap().unwrap().expose(), "v");
        store.delete("token/x").await.unwrap();
        assert!(store.get("token/x").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn memory_never_touches_the_keyring() {
        let store = open_with(StoreKind::Memory, || async {
            panic!("the keyring must not be opened for store = memory")
        })
        .await;
        assert_eq!(store.health().backend, "memory");
        assert!(store.health().available);
    }

    #[tokio::test]
    async fn a_working_keyring_is_used_as_is() {
        let store = open_with(StoreKind::Keyring, || async {
            let s: Arc<dyn SecretStore> = Arc::new(memory::MemoryStore::new());
            Ok(s)
        })
        .await;
        assert_eq!(store.health().backend, "memory"); // the opener's store, not a fallback
        assert!(store.health().available);
    }
}

//! The OS keyring through `keyring-core`: Secret Service on Linux (pure-Rust zbus store),
//! Keychain on macOS, Credential Manager on Windows. Every call is a blocking IPC round trip,
//! so each runs in `spawn_blocking`, off the async workers.
//! Must not: be used from the `rt-tokio` zbus features (they panic inside a runtime).

use std::sync::Arc;

use keyring_core::{CredentialStore, Entry};

use crate::clock::BoxFuture;
use crate::secret::Secret;

use super::{SecretStore, StoreError, StoreHealth};

/// The keyring "service" attribute of every item.
pub const SERVICE: &str = "sso-agent";

pub struct KeyringStore {
    store: Arc<CredentialStore>,
}

fn platform_store() -> keyring_core::Result<Arc<CredentialStore>> {
    #[cfg(target_os = "macos")]
    {
        Ok(apple_native_keyring_store::keychain::Store::new()?)
    }
    #[cfg(windows)]
    {
        Ok(windows_native_keyring_store::Store::new()?)
    }
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        Ok(zbus_secret_service_keyring_store::Store::new()?)
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend(format!("keyring call failed: {e}")))?
}

impl KeyringStore {
    /// Connects to the platform store and proves it works with a read of a probe item
    /// (a locked or absent Secret Service fails here, not at the first token).
    pub async fn open() -> Result<Self, String> {
        let store = blocking(|| platform_store().map_err(backend))
            .await
            .map_err(|e| e.to_string())?;
        let probe = store.clone();
        blocking(move || {
            let entry = Entry::new_in_store(&probe, SERVICE, "probe").map_err(backend)?;
            match entry.get_password() {
                Ok(_) | Err(keyring_core::Error::NoEntry) => Ok(()),
                Err(e) => Err(backend(e)),
            }
        })
        .await
        .map_err(|e| e.to_string())?;
        Ok(Self { store })
    }

    fn entry(store: &Arc<CredentialStore>, key: &str) -> Result<Entry, StoreError> {
        Entry::new_in_store(store, SERVICE, key).map_err(backend)
    }
}

impl SecretStore for KeyringStore {
    fn health(&self) -> StoreHealth {
        StoreHealth {
            backend: "keyring".into(),
            available: true,
            detail: None,
        }
    }

    fn get(&self, key: &str) -> BoxFuture<'_, Result<Option<Secret>, StoreError>> {
        let (store, key) = (self.store.clone(), key.to_string());
        Box::pin(blocking(move || {
            match Self::entry(&store, &key)?.get_password() {
                Ok(v) => Ok(Some(Secret::new(v))),
                Err(keyring_core::Error::NoEntry) => Ok(None),
                Err(e) => Err(backend(e)),
            }
        }))
    }

    fn set(&self, key: &str, value: Secret) -> BoxFuture<'_, Result<(), StoreError>> {
        let (store, key) = (self.store.clone(), key.to_string());
        Box::pin(blocking(move || {
            Self::entry(&store, &key)?
                .set_password(value.expose())
                .map_err(backend)
        }))
    }

    fn delete(&self, key: &str) -> BoxFuture<'_, Result<(), StoreError>> {
        let (store, key) = (self.store.clone(), key.to_string());
        Box::pin(blocking(move || {
            match Self::entry(&store, &key)?.delete_credential() {
                Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
                Err(e) => Err(backend(e)),
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real Secret Service (scripts/test provides one; SSO_AGENT_TEST_REQUIRE_KEYRING=1
    /// makes its absence a failure rather than a skip).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[allow(clippy::disallowed_methods)]
    async fn real_keyring_round_trip() {
        let required = std::env::var("SSO_AGENT_TEST_REQUIRE_KEYRING").is_ok_and(|v| v == "1");
        let store = match KeyringStore::open().await {
            Ok(s) => s,
            Err(e) if !required => {
                eprintln!("NOTE: no usable keyring ({e}); skipped");
                return;
            }
            Err(e) => panic!("keyring required but unavailable: {e}"),
        };
        let key = format!(
            "test/{}",
            crate::entropy::Entropy::token(&crate::entropy::OsEntropy, 12)
        );
        assert!(store.get(&key).await.unwrap().is_none());
        store.set(&key, Secret::new("v1")).await.unwrap();
        store.set(&key, Secret::new("v2")).await.unwrap();
        assert_eq!(store.get(&key).await.unwrap().unwrap().expose(), "v2");
        store.delete(&key).await.unwrap();
        store.delete(&key).await.unwrap();
        assert!(store.get(&key).await.unwrap().is_none());
        // The Windows-size chunking, on the real keyring with a low limit.
        let chunked = crate::store::chunked::ChunkedStore::new(Arc::new(store), 256);
        let big = Secret::new("r".repeat(3000));
        chunked.set(&key, big.clone()).await.unwrap();
        assert_eq!(
            chunked.get(&key).await.unwrap().unwrap().expose(),
            big.expose()
        );
        chunked.delete(&key).await.unwrap();
        assert!(chunked.get(&key).await.unwrap().is_none());
    }
}

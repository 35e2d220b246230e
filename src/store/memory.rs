//! In-memory store: for tests, throwaway machines (`store = memory`), and the fallback when
//! the keyring cannot be used (then its health reports the keyring as unavailable).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::secret::Secret;
use futures_core::future::BoxFuture;

use super::{SecretStore, StoreError, StoreHealth};

pub struct MemoryStore {
    items: Mutex<HashMap<String, Secret>>,
    health: StoreHealth,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self {
            items: Mutex::new(HashMap::new()),
            health: StoreHealth {
                backend: "memory".into(),
                available: true,
                detail: None,
            },
        }
    }

    /// The fallback when the keyring failed to open: works like memory, reports why.
    pub fn unavailable_keyring(reason: String) -> Self {
        Self {
            items: Mutex::new(HashMap::new()),
            health: StoreHealth {
                backend: "keyring".into(),
                available: false,
                detail: Some(reason),
            },
        }
    }

    /// Number of items held (for tests of stores layered on this one).
    pub fn len(&self) -> usize {
        self.items().len()
    }

    pub fn is_empty(&self) -> bool {
        self.items().is_empty()
    }

    fn items(&self) -> std::sync::MutexGuard<'_, HashMap<String, Secret>> {
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SecretStore for MemoryStore {
    fn health(&self) -> StoreHealth {
        self.health.clone()
    }

    fn get(&self, key: &str) -> BoxFuture<'_, Result<Option<Secret>, StoreError>> {
        let v = self.items().get(key).cloned();
        Box::pin(async move { Ok(v) })
    }

    fn set(&self, key: &str, value: Secret) -> BoxFuture<'_, Result<(), StoreError>> {
        self.items().insert(key.to_string(), value);
        Box::pin(async { Ok(()) })
    }

    fn delete(&self, key: &str) -> BoxFuture<'_, Result<(), StoreError>> {
        self.items().remove(key);
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip() {
        let s = MemoryStore::new();
        assert!(s.get("k").await.unwrap().is_none());
        s.set("k", Secret::new("v1")).await.unwrap();
        s.set("k", Secret::new("v2")).await.unwrap();
        assert_eq!(s.get("k").await.unwrap().unwrap().expose(), "v2");
        s.delete("k").await.unwrap();
        s.delete("k").await.unwrap();
        assert!(s.get("k").await.unwrap().is_none());
        assert!(s.health().available);
        let f = MemoryStore::unavailable_keyring("no bus".into());
        assert_eq!(f.health().backend, "keyring");
        assert!(!f.health().available);
    }
}

//! The OS keyring through `keyring-core`: Secret Service on Linux (pure-Rust zbus store),
//! Keychain on macOS, Credential Manager on Windows. Every call is a blocking IPC round trip,
//! so each runs on a thread off the async workers, and every call is bounded: at most
//! `CALL_TIMEOUT` (then `Unavailable`, so a keyring that stops answering never holds a
//! session), at most `MAX_CALLS` at once (so a hung keyring cannot pile up threads). A
//! platform failure (the Secret Service restarted and our session is gone, the bus
//! reconnected) reopens the store and retries once. `health()` reports the last call.
//! Must not: be used from the `rt-tokio` zbus features (they panic inside a runtime).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keyring_core::{CredentialStore, Entry};

use crate::secret::Secret;
use futures_core::future::BoxFuture;

use super::{SecretStore, StoreError, StoreHealth};

/// The keyring "service" attribute of every item.
pub const SERVICE: &str = "sso-agent";

pub struct KeyringStore {
    /// Swapped for a fresh one when the platform store fails (reconnect).
    store: std::sync::Mutex<Arc<CredentialStore>>,
    calls: Arc<tokio::sync::Semaphore>,
    /// Why the last call failed, until a call succeeds.
    last_error: std::sync::Mutex<Option<String>>,
}

/// Longest one keyring call may take before it counts as unavailable.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Keyring calls in progress at once; a call stuck in a hung keyring keeps its slot.
pub const MAX_CALLS: usize = 4;

/// How long start-up waits for the probe. A locked desktop keyring answers the test write
/// with an unlock prompt; the user gets this long to answer before the daemon starts without it.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// The keyring "user" of a probe item: `probe/<pid>/<n>` (record keys are `token/…` and
/// `registration/…`). Unique, because daemons starting together (tests, a restart racing
/// its predecessor) would otherwise delete each other's probe between set and delete.
fn probe_key() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "probe/{}/{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
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

fn open_platform_store() -> Result<Arc<CredentialStore>, StoreError> {
    platform_store().map_err(|e| {
        StoreError::Unavailable(if cfg!(all(unix, not(target_os = "macos"))) {
            format!("no Secret Service on the D-Bus session bus ({e})")
        } else {
            format!("the OS keyring does not open ({e})")
        })
    })
}

/// Proves the store takes writes: a read alone succeeds on a locked Secret Service (nothing
/// matches, so nothing needs unlocking), and then every token write would fail. The probe
/// item holds no secret and is removed at once.
fn probe(store: &Arc<CredentialStore>) -> Result<(), StoreError> {
    let refused = |e: keyring_core::Error| {
        StoreError::Unavailable(format!(
            "the keyring refused a test write; it may be locked ({e})"
        ))
    };
    let entry = Entry::new_in_store(store, SERVICE, &probe_key()).map_err(refused)?;
    entry.set_password("ok").map_err(refused)?;
    entry.delete_credential().map_err(refused)
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Runs `f` on its own thread and waits at most `limit`. Not `spawn_blocking`: a call stuck
/// on an unanswered unlock prompt must not hold up the runtime's shutdown, and a detached
/// thread does not.
async fn bounded<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("keyring-open".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| StoreError::Unavailable(format!("cannot start a thread: {e}")))?;
    match tokio::time::timeout(limit, rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(StoreError::Unavailable(
            "the keyring check ended without an answer".into(),
        )),
        Err(_) => Err(StoreError::Unavailable(format!(
            "the keyring did not answer a test write within {}s; it may be locked and \
             waiting for an unlock prompt (restart the daemon once it is unlocked)",
            limit.as_secs()
        ))),
    }
}

impl KeyringStore {
    /// Connects to the platform store and proves it takes a write, so a missing, unreachable
    /// or locked keyring fails here (as `Unavailable`, with the reason) and not at the first
    /// token. Blocking work runs off the async workers.
    pub async fn open() -> Result<Self, StoreError> {
        let store = bounded(PROBE_TIMEOUT, || {
            let store = open_platform_store()?;
            probe(&store)?;
            Ok(store)
        })
        .await?;
        Ok(Self {
            store: std::sync::Mutex::new(store),
            calls: Arc::new(tokio::sync::Semaphore::new(MAX_CALLS)),
            last_error: std::sync::Mutex::new(None),
        })
    }

    fn current(&self) -> Arc<CredentialStore> {
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn note(&self, outcome: Option<String>) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = outcome;
    }

    /// One keyring operation, bounded in time and in calls at once; a platform failure
    /// reopens the store and tries once more.
    async fn call<T: Send + 'static>(
        &self,
        op: impl Fn(&Arc<CredentialStore>) -> keyring_core::Result<T> + Send + Sync + 'static,
    ) -> Result<T, StoreError> {
        let op = Arc::new(op);
        let first = self.attempt(op.clone(), self.current()).await;
        let result = match first {
            Err(Attempt::Platform(e)) => {
                tracing::info!(error = %e, "the keyring failed; reconnecting and trying once more");
                match bounded(CALL_TIMEOUT, open_platform_store).await {
                    Ok(fresh) => {
                        *self
                            .store
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh.clone();
                        self.attempt(op, fresh).await
                    }
                    Err(e) => Err(Attempt::Store(e)),
                }
            }
            other => other,
        };
        let result = result.map_err(|e| match e {
            Attempt::Platform(e) => backend(e),
            Attempt::Store(e) => e,
        });
        self.note(result.as_ref().err().map(ToString::to_string));
        result
    }

    async fn attempt<T: Send + 'static>(
        &self,
        op: Arc<KeyringOp<T>>,
        store: Arc<CredentialStore>,
    ) -> Result<T, Attempt> {
        let busy = || {
            Attempt::Store(StoreError::Unavailable(format!(
                "the keyring did not answer within {}s",
                CALL_TIMEOUT.as_secs()
            )))
        };
        // The slot is held by the thread, so a call stuck in the keyring keeps it.
        let permit = tokio::time::timeout(CALL_TIMEOUT, self.calls.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("keyring".into())
            .spawn(move || {
                let r = op(&store);
                drop(permit);
                let _ = tx.send(r);
            })
            .map_err(|e| {
                Attempt::Store(StoreError::Unavailable(format!(
                    "cannot start a thread: {e}"
                )))
            })?;
        match tokio::time::timeout(CALL_TIMEOUT, rx).await {
            Err(_) | Ok(Err(_)) => Err(busy()),
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(
                e @ (keyring_core::Error::PlatformFailure(_)
                | keyring_core::Error::NoStorageAccess(_)),
            ))) => Err(Attempt::Platform(e)),
            Ok(Ok(Err(e))) => Err(Attempt::Store(backend(e))),
        }
    }
}

/// One keyring operation, run (and maybe retried) on a keyring thread.
type KeyringOp<T> = dyn Fn(&Arc<CredentialStore>) -> keyring_core::Result<T> + Send + Sync;

/// How one attempt failed: the platform (worth a reconnect) or anything else.
enum Attempt {
    Platform(keyring_core::Error),
    Store(StoreError),
}

impl SecretStore for KeyringStore {
    fn health(&self) -> StoreHealth {
        let last = self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        StoreHealth {
            backend: "keyring".into(),
            available: last.is_none(),
            detail: last,
        }
    }

    fn get(&self, key: &str) -> BoxFuture<'_, Result<Option<Secret>, StoreError>> {
        let key = key.to_string();
        Box::pin(self.call(move |store| {
            match Entry::new_in_store(store, SERVICE, &key)?.get_password() {
                Ok(v) => Ok(Some(Secret::new(v))),
                Err(keyring_core::Error::NoEntry) => Ok(None),
                Err(e) => Err(e),
            }
        }))
    }

    fn set(&self, key: &str, value: Secret) -> BoxFuture<'_, Result<(), StoreError>> {
        let key = key.to_string();
        Box::pin(self.call(move |store| {
            Entry::new_in_store(store, SERVICE, &key)?.set_password(value.expose())
        }))
    }

    fn delete(&self, key: &str) -> BoxFuture<'_, Result<(), StoreError>> {
        let key = key.to_string();
        Box::pin(self.call(move |store| {
            match Entry::new_in_store(store, SERVICE, &key)?.delete_credential() {
                Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
                Err(e) => Err(e),
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
        // The probe left nothing behind.
        let probe = format!("probe/{}/0", std::process::id());
        assert!(store.get(&probe).await.unwrap().is_none());
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

    /// The real Windows Credential Manager (under Wine in CI): the backend refuses values
    /// over 1,280 UTF-16 code units, and the store the daemon opens still saves records of
    /// 1,280, 1,281 and many times that (it used to split at 2,560 bytes, so every record
    /// between 1,281 and 2,560 characters failed to save).
    #[cfg(windows)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn credential_manager_values_at_the_limit() {
        use crate::store::chunked::CREDENTIAL_MANAGER_MAX_UNITS as MAX;
        let raw = KeyringStore::open()
            .await
            .expect("the Credential Manager opens");
        let key = format!(
            "test/{}",
            crate::entropy::Entropy::token(&crate::entropy::OsEntropy, 12)
        );
        raw.set(&key, Secret::new("x".repeat(MAX))).await.unwrap();
        assert!(
            raw.set(&key, Secret::new("x".repeat(MAX + 1)))
                .await
                .is_err(),
            "the backend's limit moved; update CREDENTIAL_MANAGER_MAX_UNITS"
        );
        raw.delete(&key).await.unwrap();
        let store = crate::store::open(crate::config::StoreKind::Keyring).await;
        assert!(store.health().available, "{:?}", store.health());
        for value in [
            "r".repeat(MAX),
            "r".repeat(MAX + 1),
            "é😀r".repeat(2000), // 8,000 units, pairs across chunk edges
        ] {
            store.set(&key, Secret::new(value.clone())).await.unwrap();
            assert_eq!(store.get(&key).await.unwrap().unwrap().expose(), value);
        }
        store.delete(&key).await.unwrap();
        assert!(store.get(&key).await.unwrap().is_none());
        assert!(raw.get(&key).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_check_that_never_answers_times_out_as_unavailable() {
        // The thread blocks until the test lets go, so the timeout always wins.
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let r = bounded(Duration::from_millis(20), move || {
            let _ = wait.recv();
            Ok(())
        })
        .await;
        let Err(StoreError::Unavailable(why)) = r else {
            panic!("expected Unavailable, got {r:?}");
        };
        assert!(why.contains("did not answer"), "{why}");
        assert!(why.contains("unlock"), "{why}");
        drop(release);
    }

    #[tokio::test]
    async fn a_failing_check_passes_its_reason_through() {
        let r: Result<(), _> = bounded(PROBE_TIMEOUT, || {
            Err(StoreError::Unavailable("no Secret Service here".into()))
        })
        .await;
        assert_eq!(
            r.unwrap_err().to_string(),
            "keyring unavailable: no Secret Service here"
        );
    }
}

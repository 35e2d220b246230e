//! While an `exec` runs, its role's credentials are fetched again before fewer than `AHEAD`
//! remain, so the container-credentials endpoint answers from memory with credentials that
//! outlive botocore's 15-minute refresh window. One loop per (session, account, role), shared
//! by every exec of that role (a lease each); the last lease gone stops the loop.
//! Must not: call the portal itself (the fetch it is given does, single-flight per role in
//! the session's cache), serve requests, or read the clock other than through `Clock`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::portal::RoleCredentials;

use super::SessionError;

/// Fetch again when fewer than this remain: above the session cache's 16-minute margin, so a
/// fetch here always reaches the portal and what is served keeps more than botocore's 15.
pub const AHEAD: Duration = Duration::from_secs(20 * 60);
/// The endpoint serves the kept copy only with more than this left (else it asks the
/// session, which fetches).
pub const SERVE_MIN: Duration = Duration::from_secs(16 * 60);
/// After a failed fetch, the next try.
pub const RETRY: Duration = Duration::from_secs(30);
/// Shortest pause between two fetches (credentials shorter-lived than `AHEAD`, as in tests).
pub const MIN_PAUSE: Duration = Duration::from_secs(1);

/// (session, account id, role name).
pub type Key = (String, String, String);

/// What fetches a role's credentials with at least the given validity.
pub type Fetch = Box<
    dyn Fn(Duration) -> Pin<Box<dyn Future<Output = Result<RoleCredentials, SessionError>> + Send>>
        + Send
        + Sync,
>;

/// When to fetch next: `AHEAD` before expiry; for credentials that live shorter than that,
/// halfway to expiry (at least `MIN_PAUSE` away); after a failure, `RETRY` from now. Pure.
pub fn next_fetch(expiration: OffsetDateTime, now: OffsetDateTime, failed: bool) -> OffsetDateTime {
    if failed {
        return now + RETRY;
    }
    let ahead = expiration - AHEAD;
    if ahead > now {
        return ahead;
    }
    let half = crate::clock::until(now, expiration) / 2;
    now + half.max(MIN_PAUSE)
}

struct Entry {
    latest: watch::Receiver<Option<RoleCredentials>>,
    task: JoinHandle<()>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One exec's hold on its role's keep-fresh loop.
#[derive(Clone)]
pub struct Lease(Arc<Entry>);

impl Lease {
    /// The kept credentials if more than `min_left` remain at `now`.
    pub fn latest(&self, now: OffsetDateTime, min_left: Duration) -> Option<RoleCredentials> {
        self.0
            .latest
            .borrow()
            .as_ref()
            .filter(|c| c.expiration > now + min_left)
            .cloned()
    }
}

/// The keep-fresh loops of the daemon, by role.
pub struct KeepFresh {
    clock: Arc<dyn Clock>,
    entries: Mutex<HashMap<Key, Weak<Entry>>>,
}

impl KeepFresh {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// A lease on `key`'s loop, starting it (with `first`, just fetched) if none runs.
    pub fn lease(&self, key: Key, first: RoleCredentials, fetch: Fetch) -> Lease {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, e| e.strong_count() > 0);
        if let Some(e) = entries.get(&key).and_then(Weak::upgrade) {
            return Lease(e);
        }
        let (tx, latest) = watch::channel(Some(first));
        let task = tokio::spawn(run(self.clock.clone(), tx, fetch, key.clone()));
        let entry = Arc::new(Entry { latest, task });
        entries.insert(key, Arc::downgrade(&entry));
        Lease(entry)
    }

    /// How many roles are kept fresh now.
    pub fn active(&self) -> usize {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.values().filter(|e| e.strong_count() > 0).count()
    }
}

async fn run(
    clock: Arc<dyn Clock>,
    tx: watch::Sender<Option<RoleCredentials>>,
    fetch: Fetch,
    key: Key,
) {
    let mut failed = false;
    loop {
        let expiration = tx.borrow().as_ref().map(|c| c.expiration);
        let next = match expiration {
            Some(exp) => next_fetch(exp, clock.now(), failed),
            None => clock.now() + RETRY,
        };
        clock.sleep_until(next).await;
        match fetch(AHEAD).await {
            Ok(c) => {
                failed = false;
                tracing::debug!(session = %key.0, account = %key.1, role = %key.2, expiration = %crate::clock::rfc3339(c.expiration), "role credentials kept fresh");
                tx.send_replace(Some(c));
            }
            Err(e) => {
                failed = true;
                tracing::warn!(session = %key.0, account = %key.1, role = %key.2, error = %e, "could not fetch role credentials ahead of expiry; retrying");
                // A session that lost its login drops what it had (SPEC: role credentials
                // go with the login).
                if matches!(e, SessionError::LoginRequired(_)) {
                    tx.send_replace(None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn next_fetch_table() {
        let now = datetime!(2026-12-01 12:00 UTC);
        let min = |m: i64| time::Duration::minutes(m);
        // An hour left: 20 minutes before expiry.
        assert_eq!(next_fetch(now + min(60), now, false), now + min(40));
        // Inside the window: halfway to expiry.
        assert_eq!(next_fetch(now + min(10), now, false), now + min(5));
        // Nearly or already expired: never a busy loop.
        assert_eq!(
            next_fetch(now + time::Duration::milliseconds(200), now, false),
            now + MIN_PAUSE
        );
        assert_eq!(next_fetch(now - min(1), now, false), now + MIN_PAUSE);
        // After a failure: a fixed retry, whatever the expiry says.
        assert_eq!(next_fetch(now + min(60), now, true), now + RETRY);
    }

    fn creds(expiration: OffsetDateTime, n: usize) -> RoleCredentials {
        RoleCredentials {
            access_key_id: format!("ASIA{n}"),
            secret_access_key: crate::secret::Secret::new("sk"),
            session_token: crate::secret::Secret::new("st"),
            expiration,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fetches_ahead_of_the_window_and_stops_with_the_last_lease() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let start = datetime!(2026-12-01 12:00 UTC);
        let clock = Arc::new(crate::clock::TestClock::new(start));
        let calls = Arc::new(AtomicUsize::new(0));
        let fetch = |clock: Arc<crate::clock::TestClock>, calls: Arc<AtomicUsize>| -> Fetch {
            Box::new(move |ahead| {
                assert_eq!(ahead, AHEAD);
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                let exp = clock.now() + time::Duration::minutes(60);
                Box::pin(async move { Ok(creds(exp, n)) })
            })
        };
        let kf = KeepFresh::new(clock.clone());
        let key = ("corp".to_string(), "1".to_string(), "Admin".to_string());
        let first = creds(start + time::Duration::minutes(60), 0);
        let a = kf.lease(
            key.clone(),
            first.clone(),
            fetch(clock.clone(), calls.clone()),
        );
        // A second exec of the same role joins the same loop.
        let b = kf.lease(key.clone(), first, fetch(clock.clone(), calls.clone()));
        assert_eq!(kf.active(), 1);
        tokio::time::advance(Duration::from_secs(39 * 60)).await;
        tokio::task::yield_now().await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "nothing before 20 minutes are left"
        );
        tokio::time::advance(Duration::from_secs(2 * 60)).await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one fetch for both leases");
        let now = clock.now();
        let served = a.latest(now, SERVE_MIN).expect("fresh ones are kept");
        assert_eq!(served.access_key_id, "ASIA1");
        assert!(served.expiration > now + SERVE_MIN);
        drop((a, b));
        assert_eq!(kf.active(), 0, "the last lease stops the loop");
    }
}

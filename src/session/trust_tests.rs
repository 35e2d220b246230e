//! The issue-14 findings that live in the session, each a regression test: role
//! credentials dropped with the tokens, records bound to their OIDC endpoint, expired role
//! credentials refused, live margins for tasks started later, a failed save kept in
//! `lastError`, and logout withdrawing the token before the keyring is touched.

use super::*;

/// A memory store whose writes can be made to fail and whose deletes can be held, to play a
/// keyring that broke or stopped answering.
#[derive(Default)]
struct FlakyStore {
    inner: MemoryStore,
    fail_sets: std::sync::atomic::AtomicBool,
    hold_deletes: Mutex<Option<Arc<Notify>>>,
    deleting: Notify,
}

impl crate::store::SecretStore for FlakyStore {
    fn health(&self) -> crate::store::StoreHealth {
        self.inner.health()
    }

    fn get(&self, key: &str) -> BoxFuture<'_, Result<Option<Secret>, crate::store::StoreError>> {
        self.inner.get(key)
    }

    fn set(&self, key: &str, value: Secret) -> BoxFuture<'_, Result<(), crate::store::StoreError>> {
        if self.fail_sets.load(Ordering::SeqCst) {
            return Box::pin(async { Err(crate::store::StoreError::Backend("NoSession".into())) });
        }
        self.inner.set(key, value)
    }

    fn delete(&self, key: &str) -> BoxFuture<'_, Result<(), crate::store::StoreError>> {
        let hold = self.hold_deletes.lock().unwrap().clone();
        let key = key.to_string();
        Box::pin(async move {
            if let Some(h) = hold {
                let released = h.notified();
                self.deleting.notify_waiters();
                released.await;
            }
            self.inner.delete(&key).await
        })
    }
}

/// A manager over `store` and `portal` with the default margins, `record` stored for
/// `config()`, and the session started and loaded.
async fn started(
    record: Option<TokenRecord>,
    script: TokenScript,
    store: Arc<dyn crate::store::SecretStore>,
    portal: Arc<PortalStub>,
) -> (Arc<Scripted>, Manager, Arc<SessionHandle>) {
    let clock = Arc::new(TestClock::new(T0));
    let oidc = Scripted::new(clock.clone(), script);
    if let Some(rec) = record {
        store
            .set(&key_of(&config()), rec.to_secret().unwrap())
            .await
            .unwrap();
    }
    let manager = Manager::new(Deps {
        clock,
        entropy: Arc::new(SeededEntropy::new(1)),
        store,
        oidc: Arc::new(Factory(oidc.clone())),
        portal: Arc::new(SharedPortal(portal)),
        aws_cli_cache: None,
        refresh_margin: 10 * MIN,
        reregistration_margin: Duration::from_secs(7 * 86400),
    });
    manager.apply(vec![config()]);
    let handle = manager.get("corp").unwrap();
    wait_loaded(&handle).await;
    (oidc, manager, handle)
}

async fn wait_loaded(handle: &SessionHandle) {
    let mut st = handle.status_watch();
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        st.wait_for(|s| s.access_token_expires_at.is_some()),
    )
    .await;
}

/// Issue 14 #7: logout drops the session's role credentials; asking again needs a login.
#[tokio::test(start_paused = true)]
async fn logout_drops_cached_role_credentials() {
    let portal = Arc::new(PortalStub::default());
    let store = Arc::new(MemoryStore::new());
    let (_oidc, _m, h) = started(
        Some(stored(60 * MIN, Some("rt-0"))),
        rotating(),
        store,
        portal.clone(),
    )
    .await;
    h.role_credentials("111122223333", "Admin").await.unwrap();
    h.logout().await.unwrap();
    let err = h
        .role_credentials("111122223333", "Admin")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SessionError::LoginRequired(s) if s == "corp"),
        "{err:?}"
    );
    assert_eq!(
        portal.calls.load(Ordering::SeqCst),
        1,
        "nothing served from the cache"
    );
}

/// Issue 14 #7: when the refresh chain ends, cached role credentials go with it.
#[tokio::test(start_paused = true)]
async fn the_end_of_the_chain_drops_cached_role_credentials() {
    let portal = Arc::new(PortalStub::default());
    let script: TokenScript = Box::new(|_| {
        Err(OidcError::InvalidGrant {
            message: "Invalid refresh token provided".into(),
        })
    });
    let (_oidc, _m, h) = started(
        Some(stored(24 * 60 * MIN, Some("rt-0"))),
        script,
        Arc::new(MemoryStore::new()),
        portal.clone(),
    )
    .await;
    h.role_credentials("111122223333", "Admin").await.unwrap();
    // A caller asking for more than is left makes the task refresh: the chain ends.
    h.token(48 * 60 * MIN, Duration::ZERO).await.unwrap();
    assert!(!h.status().refreshable);
    h.role_credentials("111122223333", "Admin").await.unwrap();
    assert_eq!(
        portal.calls.load(Ordering::SeqCst),
        2,
        "fetched again, not served from the cache of the ended chain"
    );
}

/// Issue 14 #8: tokens of one OIDC endpoint are never sent to another, nor erased there;
/// back at their endpoint they work again.
#[tokio::test(start_paused = true)]
async fn tokens_of_another_endpoint_are_neither_used_nor_erased() {
    let h = harness(Some(stored(60 * MIN, Some("rt-0"))), rotating()).await;
    let mut moved = config();
    moved.oidc_endpoint = Url::parse("http://127.0.0.1:4566").unwrap();
    h.manager.apply(vec![moved.clone()]);
    let at_new = h.manager.get("corp").unwrap();
    let err = at_new
        .token(2 * 60 * MIN, Duration::ZERO)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SessionError::LoginRequired(s) if s == "corp"),
        "{err:?}"
    );
    assert_eq!(
        h.oidc.calls(),
        0,
        "no refresh token sent to the new endpoint"
    );
    at_new.logout().await.unwrap();
    assert_eq!(
        saved_record(&h.store).await.refresh_token.unwrap().expose(),
        "rt-0",
        "the old chain is kept"
    );
    h.manager.apply(vec![config()]);
    let back = h.manager.get("corp").unwrap();
    let t = back.token(Duration::ZERO, Duration::ZERO).await.unwrap();
    assert_eq!(
        t.access_token.expose(),
        "at-0",
        "back at the old endpoint it works"
    );
}

/// Issue 14 #8: a record stored under the key of before (no endpoint in it) is adopted at
/// its own endpoint only.
#[tokio::test(start_paused = true)]
async fn a_record_under_the_old_key_is_adopted_at_its_endpoint_only() {
    let c = config();
    let legacy = crate::store::records::legacy_token_key(&c.name, &c.start_url, &c.region);
    let store = Arc::new(MemoryStore::new());
    let mut rec = stored(60 * MIN, Some("rt-0"));
    rec.client.endpoint = "http://127.0.0.1:4566/".into();
    store.set(&legacy, rec.to_secret().unwrap()).await.unwrap();
    let (_oidc, _m, h) = started(None, rotating(), store.clone(), Arc::default()).await;
    let err = h.token(Duration::ZERO, Duration::ZERO).await.unwrap_err();
    assert!(
        matches!(&err, SessionError::LoginRequired(s) if s == "corp"),
        "{err:?}"
    );
    assert!(store.get(&legacy).await.unwrap().is_some(), "not erased");

    let store = Arc::new(MemoryStore::new());
    let rec = stored(60 * MIN, Some("rt-0"));
    store.set(&legacy, rec.to_secret().unwrap()).await.unwrap();
    let (_oidc, _m, h) = started(None, rotating(), store.clone(), Arc::default()).await;
    let t = h.token(Duration::ZERO, Duration::ZERO).await.unwrap();
    assert_eq!(t.access_token.expose(), "at-0");
    assert!(
        store.get(&key_of(&c)).await.unwrap().is_some(),
        "moved to its key"
    );
}

/// Issue 14 #12: role credentials that the local clock says are already expired are an
/// error naming the clock, not dead keys handed out.
#[tokio::test(start_paused = true)]
async fn role_credentials_expired_by_the_local_clock_are_a_clock_error() {
    let (_oidc, _m, h) = started(
        Some(stored(24 * 60 * MIN, Some("rt-0"))),
        rotating(),
        Arc::new(MemoryStore::new()),
        Arc::default(),
    )
    .await;
    // The stub's credentials expire at T0 + 60 min.
    tokio::time::advance(61 * MIN).await;
    let err = h
        .role_credentials("111122223333", "Admin")
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            SessionError::Upstream(UpstreamError::ClockSkew { expiration, .. })
                if *expiration == T0 + 60 * MIN
        ),
        "{err:?}"
    );
}

/// Issue 14 #15: a session task started after a live margin change uses the new margin.
#[tokio::test(start_paused = true)]
async fn a_session_started_after_a_margin_change_uses_the_live_margin() {
    let clock = Arc::new(TestClock::new(T0));
    let oidc = Scripted::new(clock.clone(), rotating());
    let store = Arc::new(MemoryStore::new());
    store
        .set(
            &key_of(&config()),
            stored(60 * MIN, Some("rt-0")).to_secret().unwrap(),
        )
        .await
        .unwrap();
    let manager = Manager::new(Deps {
        clock,
        entropy: Arc::new(SeededEntropy::new(1)),
        store,
        oidc: Arc::new(Factory(oidc.clone())),
        portal: Arc::new(PortalStub::default()),
        aws_cli_cache: None,
        refresh_margin: 10 * MIN,
        reregistration_margin: Duration::from_secs(7 * 86400),
    });
    manager.set_margins(30 * MIN, Duration::from_secs(7 * 86400));
    manager.apply(vec![config()]);
    let h = manager.get("corp").unwrap();
    wait_loaded(&h).await;
    let next = h.status().next_refresh_at.unwrap();
    assert!(next <= T0 + 30 * MIN, "30-minute margin: {next}");
}

/// Issue 14 #4: a failed save stays in `lastError` through a successful refresh, until a
/// write succeeds.
#[tokio::test(start_paused = true)]
async fn a_failed_save_stays_in_last_error_until_a_write_succeeds() {
    let store = Arc::new(FlakyStore::default());
    let (oidc, _m, h) = started(
        Some(stored(60 * MIN, Some("rt-0"))),
        rotating(),
        store.clone(),
        Arc::default(),
    )
    .await;
    store.fail_sets.store(true, Ordering::SeqCst);
    let t = h.token(2 * 60 * MIN, Duration::ZERO).await.unwrap();
    assert_eq!(t.access_token.expose(), "at-1", "the refresh itself worked");
    assert_eq!(oidc.calls(), 1);
    let shown = h.status().last_error.expect("the failed save is shown");
    assert!(shown.contains("could not save"), "{shown}");
    store.fail_sets.store(false, Ordering::SeqCst);
    h.token(2 * 60 * MIN, Duration::ZERO).await.unwrap();
    assert_eq!(oidc.calls(), 2);
    assert_eq!(
        h.status().last_error,
        None,
        "cleared by a write that worked"
    );
}

/// Issue 14 #5: logout stops serving the token before it touches the keyring, so a keyring
/// that hangs never keeps a token the user asked to forget in service.
#[tokio::test(start_paused = true)]
async fn logout_withdraws_the_token_before_touching_the_keyring() {
    let store = Arc::new(FlakyStore::default());
    let gate = Arc::new(Notify::new());
    *store.hold_deletes.lock().unwrap() = Some(gate.clone());
    let (_oidc, _m, h) = started(
        Some(stored(60 * MIN, Some("rt-0"))),
        rotating(),
        store.clone(),
        Arc::default(),
    )
    .await;
    let deleting = store.deleting.notified();
    let logout = tokio::spawn({
        let h = h.clone();
        async move { h.logout().await }
    });
    deleting.await;
    let asked = tokio::time::timeout(
        Duration::from_secs(1),
        h.token(Duration::ZERO, Duration::ZERO),
    )
    .await;
    assert!(
        !matches!(asked, Ok(Ok(_))),
        "the token is still served while the keyring hangs"
    );
    assert_eq!(h.status().state, SessionState::LoginRequired);
    // Let the keyring answer again (this delete and the ones after it).
    *store.hold_deletes.lock().unwrap() = None;
    gate.notify_waiters();
    let (had, _) = tokio::time::timeout(Duration::from_secs(60), logout)
        .await
        .expect("logout ends once the keyring answers")
        .unwrap()
        .unwrap();
    assert!(had);
}

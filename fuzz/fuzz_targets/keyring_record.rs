//! What the daemon reads back from the keyring: token and registration records (JSON, then
//! the policy decisions made from their dates), and the chunked store's head and chunks.
//! Input, three ways: a record; `key=value` lines planted in a store read through
//! `ChunkedStore`; a value written, read and deleted through `ChunkedStore`.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sso_agent::secret::Secret;
use sso_agent::session::policy;
use sso_agent::store::SecretStore;
use sso_agent::store::chunked::ChunkedStore;
use sso_agent::store::memory::MemoryStore;
use sso_agent::store::records::{ClientRecord, TokenRecord};
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);
const REFRESH_MARGIN: Duration = Duration::from_secs(600);
const REREGISTRATION_MARGIN: Duration = Duration::from_secs(7 * 86400);
/// Small, so short inputs are split into several chunks.
const LIMIT: usize = 128;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio runtime")
    })
}

fn client_decisions(c: &ClientRecord) {
    let (issued, expires) = (c.client_id_issued_at, c.client_secret_expires_at);
    let _ = policy::registration_usable(issued, expires, NOW, REREGISTRATION_MARGIN);
    let _ = policy::reregister_at(issued, expires, REREGISTRATION_MARGIN);
}

fn records(text: &str) {
    let secret = Secret::new(text);
    if let Ok(rec) = TokenRecord::from_secret(&secret) {
        let again = rec.to_secret().expect("a decoded record encodes");
        assert_eq!(TokenRecord::from_secret(&again).ok().as_ref(), Some(&rec));
        let _ = policy::refresh_at(rec.issued_at, rec.expires_at, REFRESH_MARGIN, 0.5);
        client_decisions(&rec.client);
    }
    if let Ok(rec) = ClientRecord::from_secret(&secret) {
        let again = rec.to_secret().expect("a decoded record encodes");
        assert_eq!(ClientRecord::from_secret(&again).ok().as_ref(), Some(&rec));
        client_decisions(&rec);
    }
}

async fn planted(text: &str) {
    let mem = Arc::new(MemoryStore::new());
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            mem.set(k, Secret::new(v)).await.expect("memory store");
        }
    }
    let store = ChunkedStore::new(mem, LIMIT);
    if let Ok(Some(v)) = store.get("k").await {
        records(v.expose());
    }
    let _ = store.delete("k").await;
}

async fn round_trip(text: &str) {
    let mem = Arc::new(MemoryStore::new());
    let store = ChunkedStore::new(mem.clone(), LIMIT);
    store.set("k", Secret::new(text)).await.expect("set");
    let back = store.get("k").await.expect("get").expect("a value");
    assert_eq!(back.expose(), text);
    store.delete("k").await.expect("delete");
    assert!(mem.is_empty(), "delete left items behind");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    records(text);
    runtime().block_on(async {
        planted(text).await;
        round_trip(text).await;
    });
});

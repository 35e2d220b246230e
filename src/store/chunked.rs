//! Size-limited keyrings (Windows Credential Manager: 2,560 bytes of UTF-16 per secret, i.e.
//! 1,280 UTF-16 code units): values longer than the limit, counted in UTF-16 code units as
//! the store counts them, are split into chunks under generation-tagged keys, and a small head item
//! naming the generation, count and SHA-256 is written last. A reader sees the old head (whose
//! chunks still exist) or the new one, never half a record; stale chunks are removed after the
//! switch. Used on Windows; tested everywhere with a low limit.
//! Must not: change values that fit (they are stored as they are).

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::secret::Secret;
use futures_core::future::BoxFuture;

use super::{SecretStore, StoreError, StoreHealth};

const HEAD_PREFIX: &str = "sso-agent-chunked:v1:";
/// Most chunks a value may span (at the 128-byte floor, 128 KiB; records are a few KiB). A
/// head naming more is not ours: removing its chunks one by one would hang the caller.
const MAX_CHUNKS: usize = 1024;
/// The Windows Credential Manager's limit: `windows-native-keyring-store` encodes a password
/// as UTF-16 and refuses more than `CRED_MAX_CREDENTIAL_BLOB_SIZE` (2,560) bytes of it.
pub const CREDENTIAL_MANAGER_MAX_UNITS: usize = 2560 / 2;

pub struct ChunkedStore {
    inner: Arc<dyn SecretStore>,
    limit: usize,
}

/// `gen:count:sha256hex` parsed from a head value.
struct Head {
    generation: String,
    count: usize,
    digest: String,
}

impl Head {
    fn parse(v: &str) -> Option<Head> {
        let rest = v.strip_prefix(HEAD_PREFIX)?;
        let mut parts = rest.split(':');
        let head = Head {
            generation: parts.next()?.to_string(),
            count: parts.next()?.parse().ok()?,
            digest: parts.next()?.to_string(),
        };
        (parts.next().is_none() && head.count <= MAX_CHUNKS).then_some(head)
    }
}

fn chunk_key(key: &str, generation: &str, i: usize) -> String {
    format!("{key}#{generation}/{i}")
}

/// The length the Credential Manager sees: UTF-16 code units.
fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Pieces of at most `limit` UTF-16 code units each, cut between characters (a surrogate
/// pair stays whole).
fn split_utf16(s: &str, limit: usize) -> Vec<&str> {
    let mut chunks = Vec::new();
    let (mut start, mut units) = (0, 0);
    for (i, c) in s.char_indices() {
        if units + c.len_utf16() > limit {
            chunks.push(&s[start..i]);
            (start, units) = (i, 0);
        }
        units += c.len_utf16();
    }
    if start < s.len() {
        chunks.push(&s[start..]);
    }
    chunks
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ChunkedStore {
    /// `limit`: the longest value the backend takes, in UTF-16 code units (a character
    /// outside the Basic Multilingual Plane counts two); at least 128.
    pub fn new(inner: Arc<dyn SecretStore>, limit: usize) -> Self {
        Self {
            inner,
            limit: limit.max(128),
        }
    }

    async fn read(&self, key: &str) -> Result<Option<Secret>, StoreError> {
        let Some(v) = self.inner.get(key).await? else {
            return Ok(None);
        };
        let Some(head) = Head::parse(v.expose()) else {
            return Ok(Some(v));
        };
        let mut whole = String::new();
        for i in 0..head.count {
            match self.inner.get(&chunk_key(key, &head.generation, i)).await? {
                Some(c) => whole.push_str(c.expose()),
                None => {
                    return Err(StoreError::Backend(format!(
                        "chunk {i} of {key} is missing"
                    )));
                }
            }
        }
        if sha256_hex(&whole) != head.digest {
            return Err(StoreError::Backend(format!(
                "the chunks of {key} do not match their digest"
            )));
        }
        Ok(Some(Secret::new(whole)))
    }

    async fn remove_chunks(&self, key: &str, head: Option<Head>) {
        if let Some(h) = head {
            for i in 0..h.count {
                if let Err(e) = self.inner.delete(&chunk_key(key, &h.generation, i)).await {
                    tracing::warn!(%key, error = %e, "could not remove a stale chunk");
                }
            }
        }
    }

    async fn write(&self, key: &str, value: Secret) -> Result<(), StoreError> {
        let old = self
            .inner
            .get(key)
            .await?
            .and_then(|v| Head::parse(v.expose()));
        let s = value.expose();
        if utf16_len(s) <= self.limit && !s.starts_with(HEAD_PREFIX) {
            self.inner.set(key, value.clone()).await?;
        } else {
            let generation = sha256_hex(&format!(
                "{key}{}{s}",
                old.as_ref().map_or("", |h| h.generation.as_str())
            ))[..12]
                .to_string();
            let chunks = split_utf16(s, self.limit);
            if chunks.len() > MAX_CHUNKS {
                return Err(StoreError::Backend(format!(
                    "{key}: the value needs {} chunks, more than {MAX_CHUNKS}",
                    chunks.len()
                )));
            }
            for (i, c) in chunks.iter().enumerate() {
                self.inner
                    .set(&chunk_key(key, &generation, i), Secret::new(*c))
                    .await?;
            }
            // The switch: one small write.
            let head = format!(
                "{HEAD_PREFIX}{generation}:{}:{}",
                chunks.len(),
                sha256_hex(s)
            );
            self.inner.set(key, Secret::new(head)).await?;
            if old.as_ref().is_some_and(|o| o.generation == generation) {
                return Ok(());
            }
        }
        self.remove_chunks(key, old).await;
        Ok(())
    }
}

impl SecretStore for ChunkedStore {
    fn health(&self) -> StoreHealth {
        self.inner.health()
    }

    fn get(&self, key: &str) -> BoxFuture<'_, Result<Option<Secret>, StoreError>> {
        let key = key.to_string();
        Box::pin(async move {
            // A concurrent writer may remove the chunks of the head just read; the next read
            // sees the new head.
            match self.read(&key).await {
                Err(_) => self.read(&key).await,
                ok => ok,
            }
        })
    }

    fn set(&self, key: &str, value: Secret) -> BoxFuture<'_, Result<(), StoreError>> {
        let key = key.to_string();
        Box::pin(async move { self.write(&key, value).await })
    }

    fn delete(&self, key: &str) -> BoxFuture<'_, Result<(), StoreError>> {
        let key = key.to_string();
        Box::pin(async move {
            let old = self
                .inner
                .get(&key)
                .await?
                .and_then(|v| Head::parse(v.expose()));
            self.inner.delete(&key).await?;
            self.remove_chunks(&key, old).await;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn large_values_round_trip_in_chunks_and_leave_nothing_behind() {
        let mem = Arc::new(MemoryStore::new());
        let store = ChunkedStore::new(mem.clone(), 128);
        let small = Secret::new("x".repeat(100));
        store.set("k", small.clone()).await.unwrap();
        assert_eq!(
            mem.get("k").await.unwrap().unwrap().expose(),
            small.expose(),
            "fits: stored as is"
        );
        let big = Secret::new(format!("{{\"v\":\"{}é\"}}", "y".repeat(1000)));
        store.set("k", big.clone()).await.unwrap();
        assert!(
            mem.get("k")
                .await
                .unwrap()
                .unwrap()
                .expose()
                .starts_with(HEAD_PREFIX)
        );
        assert_eq!(
            store.get("k").await.unwrap().unwrap().expose(),
            big.expose()
        );
        let bigger = Secret::new("z".repeat(3000));
        store.set("k", bigger.clone()).await.unwrap();
        assert_eq!(
            store.get("k").await.unwrap().unwrap().expose(),
            bigger.expose()
        );
        // Only the head and the new generation's chunks remain.
        assert_eq!(mem.len(), 1 + 3000usize.div_ceil(128));
        store.set("k", small.clone()).await.unwrap();
        assert_eq!(mem.len(), 1);
        store.delete("k").await.unwrap();
        assert_eq!(mem.len(), 0);
        assert!(store.get("k").await.unwrap().is_none());
    }

    /// The limit is counted as the Credential Manager counts: UTF-16 code units, not UTF-8
    /// bytes (by bytes, 1,280 'é' would be split although the store takes them whole).
    #[tokio::test]
    async fn the_limit_is_in_utf16_code_units() {
        let mem = Arc::new(MemoryStore::new());
        let store = ChunkedStore::new(mem.clone(), CREDENTIAL_MANAGER_MAX_UNITS);
        let raw = |v: Option<Secret>| v.unwrap().expose().to_string();
        for (value, fits) in [
            ("a".repeat(1280), true),
            ("a".repeat(1281), false),
            ("é".repeat(1280), true), // 2,560 bytes of UTF-8, 1,280 units
            ("😀".repeat(640), true), // 2 units each
            (format!("{}😀", "a".repeat(1279)), false),
        ] {
            store.set("k", Secret::new(value.clone())).await.unwrap();
            let stored = raw(mem.get("k").await.unwrap());
            assert_eq!(stored == value, fits, "{} units", utf16_len(&value));
            assert_eq!(raw(store.get("k").await.unwrap()), value);
        }
        // Every stored item is within the limit; pairs are never split.
        let mixed: String = "aé😀".repeat(2000);
        store.set("k", Secret::new(mixed.clone())).await.unwrap();
        assert_eq!(mem.len(), 1 + utf16_len(&mixed).div_ceil(1280));
        assert_eq!(raw(store.get("k").await.unwrap()), mixed);
        for piece in split_utf16(&mixed, 1280) {
            assert!(utf16_len(piece) <= 1280);
        }
        assert_eq!(split_utf16("😀😀😀", 3), ["😀", "😀", "😀"]);
        assert_eq!(split_utf16("", 3), Vec::<&str>::new());
    }

    #[tokio::test]
    async fn a_reader_sees_old_or_new_never_half() {
        let mem = Arc::new(MemoryStore::new());
        let store = ChunkedStore::new(mem.clone(), 128);
        let a = Secret::new("a".repeat(1000));
        let b = Secret::new("b".repeat(1000));
        store.set("k", a.clone()).await.unwrap();
        // A writer that stopped after writing the new chunks but before the head switch
        // (a crash): readers still get the old value whole.
        let generation = "deadbeef0000";
        for i in 0..8 {
            mem.set(&chunk_key("k", generation, i), Secret::new("b".repeat(125)))
                .await
                .unwrap();
        }
        assert_eq!(store.get("k").await.unwrap().unwrap().expose(), a.expose());
        store.set("k", b.clone()).await.unwrap();
        assert_eq!(store.get("k").await.unwrap().unwrap().expose(), b.expose());
        // Corruption is detected, not returned.
        let head = mem.get("k").await.unwrap().unwrap();
        let h = Head::parse(head.expose()).unwrap();
        mem.set(
            &chunk_key("k", &h.generation, 0),
            Secret::new("c".repeat(128)),
        )
        .await
        .unwrap();
        assert!(store.get("k").await.is_err());
    }

    /// Found by the keyring_record fuzz target: a head naming 123,456,789 chunks made
    /// `delete` (and any overwrite) try to remove each, for minutes.
    #[tokio::test]
    async fn a_head_with_a_huge_count_is_not_followed() {
        let mem = Arc::new(MemoryStore::new());
        let store = ChunkedStore::new(mem.clone(), 128);
        let forged = format!("{HEAD_PREFIX}g:123456789:00");
        mem.set("k", Secret::new(forged.clone())).await.unwrap();
        assert_eq!(
            store.get("k").await.unwrap().unwrap().expose(),
            forged,
            "not a head of ours: returned as stored"
        );
        store.delete("k").await.unwrap();
        assert!(mem.is_empty());
        let huge = Secret::new("x".repeat(128 * MAX_CHUNKS + 1));
        assert!(store.set("k", huge).await.is_err());
        assert!(mem.is_empty());
    }
}

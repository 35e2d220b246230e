//! The wall clock and timers, injected so tests can move time.
//! `SystemClock` is the only place that reads the system time; `TestClock` is a fixed start
//! plus tokio's (pausable) elapsed time, so one `tokio::time::advance` moves expiry
//! arithmetic and timers together.
//! Must not: be bypassed: `SystemTime::now` is a disallowed method elsewhere (clippy.toml).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use time::OffsetDateTime;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait Clock: Send + Sync + 'static {
    /// Wall-clock now, UTC.
    fn now(&self) -> OffsetDateTime;

    /// Sleep until the wall-clock instant `at`. Implementations re-check the wall clock
    /// after waking so a suspend/resume (or clock step) cannot make a deadline late by more
    /// than `max_slice`.
    fn sleep_until(&self, at: OffsetDateTime) -> BoxFuture<'static, ()>;
}

/// How long one timer slice may be: after a suspend, a deadline is re-evaluated at most
/// this long after the wall clock passed it.
const MAX_SLICE: Duration = Duration::from_secs(30);

/// Converts the time between `now` and `at` into a monotonic sleep, zero if `at` is past.
pub fn until(now: OffsetDateTime, at: OffsetDateTime) -> Duration {
    let d = at - now;
    if d.is_negative() {
        Duration::ZERO
    } else {
        d.try_into().unwrap_or(Duration::MAX)
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the seam itself
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn sleep_until(&self, at: OffsetDateTime) -> BoxFuture<'static, ()> {
        let clock = *self;
        Box::pin(async move {
            // Monotonic time stops during suspend; sleeping in slices and re-reading the
            // wall clock makes a laptop that wakes up re-evaluate its deadlines promptly.
            loop {
                let left = until(clock.now(), at);
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(MAX_SLICE)).await;
            }
        })
    }
}

/// Test clock: `start` plus the tokio-time elapsed since creation. With
/// `#[tokio::test(start_paused = true)]`, `tokio::time::advance` moves it.
#[derive(Debug, Clone)]
pub struct TestClock {
    start: OffsetDateTime,
    origin: tokio::time::Instant,
}

impl TestClock {
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            start,
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        self.start + self.origin.elapsed()
    }

    fn sleep_until(&self, at: OffsetDateTime) -> BoxFuture<'static, ()> {
        let left = until(self.now(), at);
        Box::pin(tokio::time::sleep(left))
    }
}

/// RFC 3339 with whole seconds and a literal `Z`, the form every AWS SDK reads.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Serde adapter: `OffsetDateTime` as `YYYY-MM-DDTHH:MM:SSZ`, parsed as any RFC 3339.
pub mod serde_rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let s = String::deserialize(d)?;
        OffsetDateTime::parse(&s, &Rfc3339).map_err(serde::de::Error::custom)
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(
            t: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_some(&crate::clock::rfc3339(*t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<OffsetDateTime>, D::Error> {
            let s = Option::<String>::deserialize(d)?;
            s.map(|s| OffsetDateTime::parse(&s, &Rfc3339).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn rfc3339_is_whole_seconds_with_z() {
        let t = datetime!(2026-11-23 8:06:25.123 +02:00);
        assert_eq!(rfc3339(t), "2026-11-23T06:06:25Z");
    }

    #[tokio::test(start_paused = true)]
    async fn test_clock_moves_with_tokio_time() {
        let c = TestClock::new(datetime!(2026-01-01 0:00 UTC));
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(c.now(), datetime!(2026-01-01 0:01:30 UTC));
        let deadline = c.now() + Duration::from_secs(60);
        let sleep = c.sleep_until(deadline);
        tokio::time::advance(Duration::from_secs(61)).await;
        sleep.await;
        assert!(c.now() >= deadline);
    }
}

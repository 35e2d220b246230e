//! The wall clock and timers, injected so tests can move time.
//! `SystemClock` is the only place that reads the system time; `TestClock` is a fixed start
//! plus tokio's (pausable) elapsed time, so one `tokio::time::advance` moves expiry
//! arithmetic and timers together.
//! Must not: be bypassed: `SystemTime::now` is a disallowed method elsewhere (clippy.toml).

use std::time::Duration;

use futures_core::future::BoxFuture;
use time::OffsetDateTime;

pub trait Clock: Send + Sync + 'static {
    /// Wall-clock now, UTC.
    fn now(&self) -> OffsetDateTime;

    /// Sleep until the wall-clock instant `at`. A suspend/resume or a clock step must not make
    /// the deadline late (on Linux not at all, elsewhere by at most `MAX_SLICE`).
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
            loop {
                let left = until(clock.now(), at);
                if left.is_zero() {
                    return;
                }
                // Linux: a wall-clock timer fires as soon as the wall clock passes `at`, also
                // right after a resume or a clock step. Elsewhere (or if it cannot be made),
                // monotonic time stops during suspend, so sleep in slices and re-read the wall
                // clock: a deadline is then late by at most one slice.
                #[cfg(target_os = "linux")]
                match wall_timer::wait_until(at).await {
                    Ok(()) => continue,
                    Err(e) => {
                        tracing::debug!(error = %e, "wall-clock timer unavailable; sleeping in slices")
                    }
                }
                tokio::time::sleep(left.min(MAX_SLICE)).await;
            }
        })
    }
}

#[cfg(target_os = "linux")]
mod wall_timer {
    //! A one-shot timer on CLOCK_REALTIME, absolute and cancelled when the clock is set. The
    //! kernel fires it when the wall clock passes the deadline, including at once after a
    //! resume from suspend; tokio's timers run on CLOCK_MONOTONIC, which stops while suspended.

    use std::io;

    use rustix::io::Errno;
    use rustix::time::{
        Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
        timerfd_settime,
    };
    use time::OffsetDateTime;
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    /// Returns when the wall clock reaches `at`, or when the clock was set (the caller
    /// re-reads it either way). `at` must lie after the epoch.
    pub async fn wait_until(at: OffsetDateTime) -> io::Result<()> {
        let nanos = at.unix_timestamp_nanos();
        let (secs, sub) = (
            nanos.div_euclid(1_000_000_000),
            nanos.rem_euclid(1_000_000_000),
        );
        let spec = Itimerspec {
            it_interval: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: Timespec {
                tv_sec: i64::try_from(secs).map_err(io::Error::other)?.max(1),
                tv_nsec: i64::try_from(sub).map_err(io::Error::other)?,
            },
        };
        let fd = timerfd_create(
            TimerfdClockId::Realtime,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        timerfd_settime(
            &fd,
            TimerfdTimerFlags::ABSTIME | TimerfdTimerFlags::CANCEL_ON_SET,
            &spec,
        )?;
        // SAFETY: an `OwnedFd` is a valid open descriptor, and the `AsyncFd` owns it until it
        // is dropped, so the descriptor stays open and the same for the registration's life
        // (tokio's only requirement; its safe constructors are deprecated since 1.54).
        #[allow(unsafe_code)]
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        loop {
            let mut ready = fd.readable().await?;
            let mut expirations = [0u8; 8];
            match rustix::io::read(ready.get_inner(), &mut expirations) {
                Ok(_) | Err(Errno::CANCELED) => return Ok(()),
                Err(Errno::AGAIN) => ready.clear_ready(),
                Err(e) => return Err(e.into()),
            }
        }
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

    /// The real clock's timer (on Linux a CLOCK_REALTIME timerfd) ends at the wall deadline,
    /// not before, and at once for a deadline already past.
    #[tokio::test]
    async fn system_clock_sleeps_until_the_wall_deadline() {
        let clock = SystemClock;
        let deadline = clock.now() + Duration::from_millis(50);
        tokio::time::timeout(Duration::from_secs(30), clock.sleep_until(deadline))
            .await
            .expect("the timer fired");
        assert!(clock.now() >= deadline);
        let past = clock.now() - Duration::from_secs(3600);
        tokio::time::timeout(Duration::from_secs(30), clock.sleep_until(past))
            .await
            .expect("a past deadline returns at once");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn wall_timer_fires_at_the_deadline() {
        let deadline = SystemClock.now() + Duration::from_millis(30);
        tokio::time::timeout(Duration::from_secs(30), wall_timer::wait_until(deadline))
            .await
            .expect("the timerfd fired")
            .expect("timerfd works here");
        assert!(SystemClock.now() >= deadline);
    }
}

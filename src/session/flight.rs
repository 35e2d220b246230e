//! Single flight: at most one future of a kind in flight, and the callers waiting for it.
//! The first caller starts it, later ones join, all are answered from its one result; the
//! timer starts flights through the same type, so a proactive and an on-demand refresh never
//! overlap. Whether a refresh is running is read from here (no flag beside it).
//! Must not: decide when to start (the chain does), or answer waiters (the task does).

use crate::clock::BoxFuture;

pub(super) struct Flight<T, W> {
    running: Option<BoxFuture<'static, T>>,
    waiters: Vec<W>,
}

impl<T, W> Default for Flight<T, W> {
    fn default() -> Self {
        Self {
            running: None,
            waiters: Vec::new(),
        }
    }
}

impl<T, W> Flight<T, W> {
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Starts `fut` unless one is running (then the running one stands).
    pub fn start(&mut self, fut: BoxFuture<'static, T>) {
        self.running.get_or_insert(fut);
    }

    /// A caller waits for the result of the flight.
    pub fn join(&mut self, waiter: W) {
        self.waiters.push(waiter);
    }

    /// Everyone waiting, to be answered now.
    pub fn take_waiters(&mut self) -> Vec<W> {
        std::mem::take(&mut self.waiters)
    }

    /// Drops the flight (its result is no longer wanted); returns the waiters to answer.
    pub fn cancel(&mut self) -> Vec<W> {
        self.running = None;
        self.take_waiters()
    }

    /// The running future, taken out (to finish it outside the loop).
    pub fn take(&mut self) -> Option<BoxFuture<'static, T>> {
        self.running.take()
    }

    /// Resolves with the flight's result when one is running; pending forever otherwise
    /// (for `select!`). The flight is over once this returns.
    pub async fn landed(&mut self) -> T {
        match self.running.as_mut() {
            Some(f) => {
                let out = f.await;
                self.running = None;
                out
            }
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_flight_many_waiters() {
        let mut f: Flight<u32, &str> = Flight::default();
        assert!(!f.is_running());
        f.start(Box::pin(async { 1 }));
        f.start(Box::pin(async { 2 }));
        f.join("a");
        f.join("b");
        assert!(f.is_running());
        assert_eq!(f.landed().await, 1, "the second start joined the first");
        assert!(!f.is_running());
        assert_eq!(f.take_waiters(), ["a", "b"]);
        assert!(f.take_waiters().is_empty());
    }

    #[test]
    fn cancel_drops_the_future_and_hands_back_the_waiters() {
        let mut f: Flight<u32, u8> = Flight::default();
        f.start(Box::pin(std::future::pending()));
        f.join(7);
        assert_eq!(f.cancel(), [7]);
        assert!(!f.is_running());
    }
}

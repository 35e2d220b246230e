//! Randomness, injected: PKCE verifiers, OAuth `state`, login ids and jitter.
//! Must not: be used for anything that needs to be reproducible in tests without a seed.

use rand::{Rng, SeedableRng};
use std::sync::Mutex;

pub trait Entropy: Send + Sync + 'static {
    /// A random string of `len` characters from the RFC 7636 unreserved set.
    fn token(&self, len: usize) -> String;
    /// A uniformly random fraction in [0, 1), for jitter.
    fn fraction(&self) -> f64;
}

const UNRESERVED: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";

/// Operating-system randomness.
#[derive(Debug, Default)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn token(&self, len: usize) -> String {
        let mut rng = rand::rng();
        (0..len)
            .map(|_| UNRESERVED[rng.random_range(0..UNRESERVED.len())] as char)
            .collect()
    }

    fn fraction(&self) -> f64 {
        rand::rng().random()
    }
}

/// Seeded randomness for tests.
#[derive(Debug)]
pub struct SeededEntropy(Mutex<rand::rngs::StdRng>);

impl SeededEntropy {
    pub fn new(seed: u64) -> Self {
        Self(Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)))
    }
}

impl Entropy for SeededEntropy {
    fn token(&self, len: usize) -> String {
        let mut rng = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (0..len)
            .map(|_| UNRESERVED[rng.random_range(0..UNRESERVED.len())] as char)
            .collect()
    }

    fn fraction(&self) -> f64 {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).random()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_use_the_unreserved_set() {
        let t = OsEntropy.token(64);
        assert_eq!(t.len(), 64);
        assert!(t.bytes().all(|b| UNRESERVED.contains(&b)));
        let f = OsEntropy.fraction();
        assert!((0.0..1.0).contains(&f));
        let a = SeededEntropy::new(7).token(16);
        assert_eq!(a, SeededEntropy::new(7).token(16));
    }
}

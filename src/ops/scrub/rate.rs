//! A token bucket over bytes read, shared by every archive of a batch: `--max-rate`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most `rate` bytes a second on average, with bursts of up to a second's worth.
#[derive(Debug)]
pub struct RateLimit {
    rate: f64,
    /// Tokens (bytes) in the bucket, negative while in debt, as of the instant.
    state: Mutex<(f64, Instant)>,
}

impl RateLimit {
    /// A limit of `rate` bytes a second (at least 1).
    pub fn new(rate: u64) -> RateLimit {
        let rate = rate.max(1) as f64;
        RateLimit { rate, state: Mutex::new((rate, Instant::now())) }
    }

    /// Takes `n` bytes' worth of tokens, sleeping while the bucket is in debt.
    pub fn take(&self, n: u64) {
        let wait = {
            let mut s = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let refilled = (s.0 + now.duration_since(s.1).as_secs_f64() * self.rate).min(self.rate);
            let left = refilled - n as f64;
            *s = (left, now);
            (left < 0.0).then(|| Duration::from_secs_f64(-left / self.rate))
        };
        if let Some(w) = wait {
            std::thread::sleep(w);
        }
    }
}

//! A token bucket: `rate` requests per second on average, bursts of up to
//! `burst` requests. Used for `--webhook.rate-limit` and for the web config
//! file's `rate_limit` (which applies to every request, as in exporter-toolkit).

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    /// Tokens available at the instant, which is when they were last counted.
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// A full bucket. `rate` must be positive and `burst` at least 1.
    pub fn new(rate: f64, burst: u32) -> TokenBucket {
        assert!(rate > 0.0 && burst >= 1, "rate {rate} and burst {burst} are validated by the caller");
        let burst = f64::from(burst);
        TokenBucket { rate, burst, state: Mutex::new((burst, Instant::now())) }
    }

    /// Takes one token, or says how long until one is available.
    pub fn try_take(&self) -> Result<(), Duration> {
        self.try_take_at(Instant::now())
    }

    fn try_take_at(&self, now: Instant) -> Result<(), Duration> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (tokens, last) = *state;
        let elapsed = now.saturating_duration_since(last).as_secs_f64();
        let tokens = (tokens + elapsed * self.rate).min(self.burst);
        if tokens >= 1.0 {
            *state = (tokens - 1.0, now);
            Ok(())
        } else {
            *state = (tokens, now);
            Err(Duration::from_secs_f64((1.0 - tokens) / self.rate))
        }
    }
}

/// The `Retry-After` value for a wait: whole seconds, at least 1.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let bucket = TokenBucket::new(2.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(bucket.try_take_at(start).is_ok());
        }
        let wait = bucket.try_take_at(start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(retry_after_seconds(wait), 1);
        // Half a second later one token is back, and only one.
        let later = start + Duration::from_millis(500);
        assert!(bucket.try_take_at(later).is_ok());
        assert!(bucket.try_take_at(later).is_err());
        // A long pause never stores more than the burst.
        let much_later = start + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(bucket.try_take_at(much_later).is_ok());
        }
        assert!(bucket.try_take_at(much_later).is_err());
    }

    #[test]
    fn slow_rates_ask_for_long_waits() {
        let bucket = TokenBucket::new(0.1, 1);
        let start = Instant::now();
        assert!(bucket.try_take_at(start).is_ok());
        assert_eq!(retry_after_seconds(bucket.try_take_at(start).unwrap_err()), 10);
    }
}

//! A token bucket driven by the caller's clock.

use std::time::{Duration, Instant};

/// Allows `burst` events at once and `per_period` events per `period` on average.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    /// Tokens scaled by `period` nanoseconds, so that refill needs no floating point.
    level: u128,
    capacity: u128,
    per_period: u128,
    period_nanos: u128,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(per_period: u32, period: Duration, burst: u32, now: Instant) -> Self {
        let period_nanos = period.as_nanos().max(1);
        let capacity = u128::from(burst.max(1)) * period_nanos;
        Self {
            level: capacity,
            capacity,
            per_period: u128::from(per_period),
            period_nanos,
            last: now,
        }
    }

    /// Whether a token is available, without taking it.
    pub(crate) fn has_token(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.level >= self.period_nanos
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        self.last = self.last.max(now);
        self.level = (self.level + elapsed * self.per_period).min(self.capacity);
    }

    /// Takes one token if there is one.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.level >= self.period_nanos {
            self.level -= self.period_nanos;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(2, Duration::from_secs(1), 3, t0);
        assert!(bucket.try_take(t0));
        assert!(bucket.try_take(t0));
        assert!(bucket.try_take(t0));
        assert!(!bucket.try_take(t0));
        assert!(!bucket.try_take(t0 + Duration::from_millis(499)));
        assert!(bucket.try_take(t0 + Duration::from_millis(500)));
        assert!(!bucket.try_take(t0 + Duration::from_millis(500)));
        // A long pause refills to the burst, not beyond.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(bucket.try_take(later));
        }
        assert!(!bucket.try_take(later));
    }

    #[test]
    fn clock_going_backwards_does_not_refill() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut bucket = TokenBucket::new(1, Duration::from_secs(1), 1, t0);
        assert!(bucket.try_take(t0));
        assert!(!bucket.try_take(t0 - Duration::from_secs(5)));
    }
}

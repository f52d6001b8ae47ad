//! Retry policies in the proposal's terms (attempts, initial delay, backoff factor),
//! mapped onto the Restate SDK's retry policy for `ctx.run`.

use std::time::Duration;

use restate_sdk::context::RunRetryPolicy;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryConfig {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    pub initial_delay: Duration,
    pub backoff_factor: f32,
}

impl RetryConfig {
    /// The carrier call: 3 attempts, 100 ms, doubling.
    pub const SHIPPING: RetryConfig = RetryConfig {
        max_attempts: 3,
        initial_delay: Duration::from_millis(100),
        backoff_factor: 2.0,
    };

    /// The delay before retry number `n` (1-based), as the policy schedules it.
    pub fn delay_before_retry(&self, n: u32) -> Duration {
        let factor = f64::from(self.backoff_factor).powi(n.saturating_sub(1) as i32);
        Duration::from_millis((self.initial_delay.as_millis() as f64 * factor).round() as u64)
    }

    /// The longest the whole retry loop waits in total.
    pub fn total_delay(&self) -> Duration {
        (1..self.max_attempts)
            .map(|n| self.delay_before_retry(n))
            .sum()
    }
}

impl From<RetryConfig> for RunRetryPolicy {
    fn from(c: RetryConfig) -> RunRetryPolicy {
        RunRetryPolicy::new()
            .initial_delay(c.initial_delay)
            .exponentiation_factor(c.backoff_factor)
            .max_attempts(c.max_attempts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipping_policy_matches_the_proposal() {
        let c = RetryConfig::SHIPPING;
        assert_eq!(c.max_attempts, 3);
        assert_eq!(c.delay_before_retry(1), Duration::from_millis(100));
        assert_eq!(c.delay_before_retry(2), Duration::from_millis(200));
        assert_eq!(c.total_delay(), Duration::from_millis(300));
    }

    #[test]
    fn maps_onto_the_sdk_policy() {
        let p: RunRetryPolicy = RetryConfig::SHIPPING.into();
        let debug = format!("{p:?}");
        assert!(debug.contains("max_attempts: Some(3)"), "{debug}");
        assert!(debug.contains("factor: 2.0"), "{debug}");
        assert!(debug.contains("initial_delay: 100ms"), "{debug}");
    }
}

//! Retry policies in plain terms (attempts, initial delay, backoff factor).
//! `durable::shipping` maps them onto the Restate SDK's retry policy for `ctx.run`.

use std::time::Duration;

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

    /// The pause after failed attempt `attempt` (1-based): the initial delay, growing by
    /// the factor with each attempt.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30) as i32;
        self.initial_delay
            .mul_f64(f64::from(self.backoff_factor).powi(exp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_by_the_factor() {
        let c = RetryConfig::SHIPPING;
        assert_eq!(c.delay_after(1), Duration::from_millis(100));
        assert_eq!(c.delay_after(2), Duration::from_millis(200));
        assert_eq!(c.delay_after(3), Duration::from_millis(400));
    }
}

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
    /// The carrier policy, as the SDK will run it: 3 attempts, 100 ms, doubling.
    fn maps_onto_the_sdk_policy() {
        let p: RunRetryPolicy = RetryConfig::SHIPPING.into();
        let debug = format!("{p:?}");
        assert!(debug.contains("max_attempts: Some(3)"), "{debug}");
        assert!(debug.contains("factor: 2.0"), "{debug}");
        assert!(debug.contains("initial_delay: 100ms"), "{debug}");
    }
}

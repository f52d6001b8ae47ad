//! Retry policies in the proposal's terms (attempts, initial delay, backoff factor).
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
}

//! Memory given back after a burst of live streams. Each open stream holds its
//! connection's buffers (hyper's, about 24 KB); when thousands close at once, glibc's
//! allocator keeps the freed pages for reuse unless asked to return them, and the web
//! role would stay at its high-water mark for good.

use std::sync::Arc;
use std::time::Duration;

use super::limits::Limits;

/// How often the stream count is looked at.
const LOOK_EVERY: Duration = Duration::from_secs(5);
/// How many streams must have closed since the peak for the memory to be handed back.
const BURST: usize = 64;

/// Hands freed memory back to the system after a burst of streams has closed; stops on
/// shutdown.
pub async fn give_back_after_bursts(limits: Arc<Limits>, shutdown: crate::shutdown::Shutdown) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(LOOK_EVERY) => {}
            () = shutdown.wait() => return,
        }
        let (peak, now) = limits.take_peak();
        if peak.saturating_sub(now) >= BURST {
            release_free_memory();
        }
    }
}

/// Returns the allocator's free pages to the system (glibc; elsewhere nothing to do).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

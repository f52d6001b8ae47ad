//! Log lines off the request path. The `tracing` layer formats a line on the thread
//! that logs it and appends it to a shared buffer; one writer thread writes the buffer
//! to stderr every 50 ms, or as soon as 64 KiB have gathered. A request thus never
//! waits for a system call to log (a write per line, under stderr's lock, made every
//! request wait for the others). No line is dropped: when 8 MiB wait unwritten, the
//! loggers wait for the writer.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Bytes gathered before the writer is woken early.
const BATCH: usize = 64 * 1024;
/// Bytes waiting before a logger waits for the writer.
const BACKLOG: usize = 8 * 1024 * 1024;
/// The longest a line waits to be written.
const EVERY: Duration = Duration::from_millis(50);

struct Shared {
    waiting: Mutex<Vec<u8>>,
    /// The writer waits on it; woken when a batch has gathered.
    gathered: Condvar,
    /// Loggers wait on it when the backlog is full; woken when the writer took it.
    taken: Condvar,
    /// Held while a batch is taken and written, so batches leave in order.
    out: Mutex<Box<dyn Write + Send>>,
}

impl Shared {
    fn waiting(&self) -> MutexGuard<'_, Vec<u8>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes whatever is waiting.
    fn write_out(&self) {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        self.write_to(&mut out, std::mem::take(&mut *self.waiting()));
    }

    fn write_to(&self, out: &mut Box<dyn Write + Send>, batch: Vec<u8>) {
        self.taken.notify_all();
        if !batch.is_empty() {
            let _ = out.write_all(&batch);
            let _ = out.flush();
        }
    }
}

/// The `MakeWriter` of the log layer.
#[derive(Clone)]
pub struct Lines {
    shared: Arc<Shared>,
}

impl Lines {
    /// Starts the writer thread (stderr).
    pub fn to_stderr() -> std::io::Result<Lines> {
        Lines::to(Box::new(std::io::stderr()))
    }

    fn to(out: Box<dyn Write + Send>) -> std::io::Result<Lines> {
        let shared = Arc::new(Shared {
            waiting: Mutex::new(Vec::with_capacity(BATCH)),
            gathered: Condvar::new(),
            taken: Condvar::new(),
            out: Mutex::new(out),
        });
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || {
                loop {
                    let waiting = writer.waiting();
                    let waiting = match writer.gathered.wait_timeout(waiting, EVERY) {
                        Ok((waiting, _)) => waiting,
                        Err(poisoned) => poisoned.into_inner().0,
                    };
                    drop(waiting);
                    writer.write_out();
                }
            })?;
        Ok(Lines { shared })
    }

    /// Writes every line logged so far (before the process ends).
    pub fn flush(&self) {
        self.shared.write_out();
    }

    /// On a panic, writes the lines waiting first (unless a write is under way, or the
    /// panic is the logger's own), so none is lost and the panic's message comes after
    /// them.
    pub fn flush_on_panic(&self) {
        let shared = self.shared.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Ok(mut out) = shared.out.try_lock()
                && let Ok(mut waiting) = shared.waiting.try_lock()
            {
                let batch = std::mem::take(&mut *waiting);
                drop(waiting);
                shared.write_to(&mut out, batch);
            }
            previous(info);
        }));
    }
}

/// One line being logged.
pub struct Line<'a> {
    shared: &'a Shared,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut waiting = self.shared.waiting();
        while waiting.len() >= BACKLOG {
            waiting = (self.shared.taken.wait(waiting)).unwrap_or_else(PoisonError::into_inner);
        }
        let before = waiting.len();
        waiting.extend_from_slice(buf);
        // Wake the writer once per batch, not per line: a wake-up is a system call.
        if before < BATCH && waiting.len() >= BATCH {
            self.shared.gathered.notify_one();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            shared: &self.shared,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` the test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_from_every_thread_is_written_whole_and_flush_waits_for_them() {
        let out = Captured::default();
        let logger = Lines::to(Box::new(out.clone())).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let logger = logger.clone();
                std::thread::spawn(move || {
                    for i in 0..500 {
                        let line = format!("thread {t} line {i}\n");
                        logger.make_writer().write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        logger.flush();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let mut seen: Vec<&str> = text.lines().collect();
        assert_eq!(seen.len(), 2000, "lines written: {}", seen.len());
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 2000, "each line once, none torn");
        for t in 0..4 {
            let mine: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with(&format!("thread {t} ")))
                .collect();
            let expected: Vec<String> = (0..500).map(|i| format!("thread {t} line {i}")).collect();
            assert_eq!(
                mine, expected,
                "thread {t}'s lines in the order it logged them"
            );
        }
    }
}

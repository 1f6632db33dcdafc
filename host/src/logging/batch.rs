//! Log lines gathered for a short while and written to their sink in one
//! call, so that a run of many short iterations does not pay a write (and
//! a wake-up of the process reading the pipe) for every line.
//!
//! Hand-written rather than `tracing-appender`'s non-blocking writer: that
//! one hands every line to its worker thread through a channel, which wakes
//! the worker for each line when lines come a few hundred microseconds
//! apart, the case this is for. Here a line is appended under a lock; the
//! flusher thread is woken once per batch, waits [`BATCH_WINDOW`] for more,
//! and writes them all.

use std::io::Write;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long the flusher gathers lines after the first one of a batch: the
/// most a line waits before it is written.
pub const BATCH_WINDOW: Duration = Duration::from_millis(100);

/// Pending bytes at which the writer of a line writes the batch itself,
/// without waiting for the flusher: a bound on the memory lines take.
pub const MAX_PENDING: usize = 256 << 10;

/// Lines waiting for their sink, in the order they were pushed.
pub struct LineBatch<W> {
    state: Mutex<Pending<W>>,
    wake: Condvar,
}

struct Pending<W> {
    bytes: Vec<u8>,
    sink: W,
}

impl<W: Write> LineBatch<W> {
    /// An empty batch writing to `sink`.
    pub const fn new(sink: W) -> Self {
        LineBatch { state: Mutex::new(Pending { bytes: Vec::new(), sink }), wake: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, Pending<W>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends whole lines. They are written within [`BATCH_WINDOW`] by
    /// [`LineBatch::run_flusher`], at once if [`MAX_PENDING`] bytes are
    /// waiting, or by [`LineBatch::flush`].
    pub fn push(&self, lines: &[u8]) -> std::io::Result<()> {
        let mut pending = self.lock();
        let first = pending.bytes.is_empty();
        pending.bytes.extend_from_slice(lines);
        if pending.bytes.len() >= MAX_PENDING {
            return pending.write_out();
        }
        if first {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Writes every pending line now (before the process prints something
    /// else to the same stream, or exits).
    pub fn flush(&self) -> std::io::Result<()> {
        self.lock().write_out()
    }

    /// The flusher's loop, for a thread of its own: waits for a first line,
    /// gathers for [`BATCH_WINDOW`], writes, and waits again. Never returns.
    pub fn run_flusher(&self) -> ! {
        loop {
            let mut pending = self.lock();
            while pending.bytes.is_empty() {
                pending = self.wake.wait(pending).unwrap_or_else(|e| e.into_inner());
            }
            drop(pending);
            std::thread::sleep(BATCH_WINDOW);
            // Nowhere to report a failed write of the log itself.
            let _ = self.flush();
        }
    }
}

impl<W: Write> Pending<W> {
    fn write_out(&mut self) -> std::io::Result<()> {
        if self.bytes.is_empty() {
            return Ok(());
        }
        let result = self.sink.write_all(&self.bytes).and_then(|()| self.sink.flush());
        self.bytes.clear();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A sink the test can read while the batch holds it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn lines_wait_for_a_flush_and_come_out_in_order() {
        let sink = Shared::default();
        let batch = LineBatch::new(sink.clone());
        batch.push(b"one\n").unwrap();
        batch.push(b"two\n").unwrap();
        assert_eq!(sink.text(), "", "no flusher runs and nothing is over the bound: the lines wait");
        batch.flush().unwrap();
        assert_eq!(sink.text(), "one\ntwo\n");
        batch.flush().unwrap();
        assert_eq!(sink.text(), "one\ntwo\n", "a second flush writes nothing again");
    }

    #[test]
    fn a_batch_over_the_bound_is_written_by_the_pushing_thread() {
        let sink = Shared::default();
        let batch = LineBatch::new(sink.clone());
        let line = vec![b'x'; 1000];
        let mut pushed = 0;
        while pushed + line.len() < MAX_PENDING {
            batch.push(&line).unwrap();
            pushed += line.len();
        }
        assert_eq!(sink.text(), "", "under the bound the lines wait");
        batch.push(&line).unwrap();
        assert_eq!(sink.text().len(), pushed + line.len(), "the line that reaches the bound writes every pending byte");
    }

    #[test]
    fn the_flusher_writes_a_line_without_a_flush() {
        let sink = Shared::default();
        let batch: &'static LineBatch<Shared> = Box::leak(Box::new(LineBatch::new(sink.clone())));
        std::thread::spawn(move || batch.run_flusher());
        batch.push(b"first\n").unwrap();
        batch.push(b"second\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sink.text().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(sink.text(), "first\nsecond\n", "both lines of the window are written together");
        batch.push(b"third\n").unwrap();
        while sink.text().len() == "first\nsecond\n".len() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(sink.text(), "first\nsecond\nthird\n", "the flusher waits for the next batch and writes it");
    }
}

//! When host work done for an iteration must stop: the iteration's
//! wall-clock deadline, or the run's shutdown flag (SIGTERM, SIGINT).
//! Long host-side loops on a guest's behalf (filtering a scan, writing an
//! emitted batch) check it between steps.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Why host work for an iteration stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Stop {
    /// The iteration ran past its timeout.
    #[error("the iteration ran past its timeout")]
    Timeout,
    /// The run was interrupted.
    #[error("the run was interrupted")]
    Interrupted,
}

/// An iteration's deadline and the run's shutdown flag.
#[derive(Clone, Debug)]
pub struct Deadline {
    at: Instant,
    interrupt: Arc<AtomicBool>,
}

impl Deadline {
    /// Work must stop at `at`, or once `interrupt` is set.
    pub fn new(at: Instant, interrupt: Arc<AtomicBool>) -> Self {
        Deadline { at, interrupt }
    }

    /// No deadline and no shutdown (tests, one-off host work).
    pub fn never() -> Self {
        Deadline { at: Instant::now() + std::time::Duration::from_secs(100 * 365 * 24 * 3600), interrupt: Arc::default() }
    }

    /// Whether work must stop now, and why.
    pub fn check(&self) -> Result<(), Stop> {
        if self.interrupt.load(Ordering::Relaxed) {
            Err(Stop::Interrupted)
        } else if Instant::now() >= self.at {
            Err(Stop::Timeout)
        } else {
            Ok(())
        }
    }
}

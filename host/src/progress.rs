//! How far a run is: counts of running, done and failed iterations, and a
//! heartbeat log line every so often, so that a long run visibly moves in
//! a log that is not a terminal (EMR step logs, CloudWatch).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The heartbeat's default period.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);

/// Counts of a run's iterations.
#[derive(Debug, Default)]
pub struct Progress {
    total: usize,
    running: AtomicUsize,
    succeeded: AtomicUsize,
    failed: AtomicUsize,
}

impl Progress {
    /// Progress of a run of `total` iterations (those to run now).
    pub fn new(total: usize) -> Arc<Progress> {
        Arc::new(Progress { total, ..Progress::default() })
    }

    /// An iteration started.
    pub fn started(&self) {
        self.running.fetch_add(1, Ordering::Relaxed);
    }

    /// An iteration ended.
    pub fn finished(&self, succeeded: bool) {
        self.running.fetch_sub(1, Ordering::Relaxed);
        let count = if succeeded { &self.succeeded } else { &self.failed };
        count.fetch_add(1, Ordering::Relaxed);
    }

    /// Logs one heartbeat line.
    pub fn log(&self, started: Instant) {
        let (running, succeeded, failed) = (
            self.running.load(Ordering::Relaxed),
            self.succeeded.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        );
        let done = succeeded + failed;
        tracing::info!(
            done,
            succeeded,
            failed,
            running,
            remaining = self.total.saturating_sub(done),
            elapsed_s = started.elapsed().as_secs(),
            "progress: {done}/{} done ({failed} failed), {running} running",
            self.total
        );
    }

    /// Logs a heartbeat every `period` until the returned task is aborted.
    pub fn heartbeat(self: &Arc<Self>, period: Duration) -> tokio::task::JoinHandle<()> {
        let progress = self.clone();
        let started = Instant::now();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                ticks.tick().await;
                progress.log(started);
            }
        })
    }
}

/// The heartbeat period: `CORRAL_HEARTBEAT` (e.g. `10s`) or 30 s.
pub fn heartbeat_period() -> Duration {
    std::env::var("CORRAL_HEARTBEAT")
        .ok()
        .and_then(|text| humantime::parse_duration(&text).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_HEARTBEAT)
}

//! How far a run is: counts of running, done and failed iterations, shown
//! as a progress bar with an ETA when stderr is a terminal, and otherwise
//! as a heartbeat log line every so often, so that a long run visibly
//! moves in a log that is not a terminal (EMR step logs, CloudWatch).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The heartbeat's default period.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);

/// Counts of a run's iterations.
#[derive(Debug)]
pub struct Progress {
    total: usize,
    running: AtomicUsize,
    succeeded: AtomicUsize,
    failed: AtomicUsize,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Progress of a run of `total` iterations (those to run now), drawn as
    /// a bar on stderr if `bar`.
    pub fn new(total: usize, bar: bool) -> Arc<Progress> {
        let bar = bar.then(|| {
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg} ETA {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> ");
            let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr()).with_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            crate::logging::set_progress_bar(Some(bar.clone()));
            bar
        });
        let progress = Progress {
            total,
            running: AtomicUsize::new(0),
            succeeded: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            bar,
        };
        progress.draw();
        Arc::new(progress)
    }

    /// An iteration started.
    pub fn started(&self) {
        self.running.fetch_add(1, Ordering::Relaxed);
        self.draw();
    }

    /// An iteration ended.
    pub fn finished(&self, succeeded: bool) {
        self.running.fetch_sub(1, Ordering::Relaxed);
        let count = if succeeded { &self.succeeded } else { &self.failed };
        count.fetch_add(1, Ordering::Relaxed);
        self.draw();
    }

    /// Whether a bar is drawn (then no heartbeat is logged).
    pub fn has_bar(&self) -> bool {
        self.bar.is_some()
    }

    /// Removes the bar, before the summary is printed.
    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            crate::logging::set_progress_bar(None);
        }
    }

    fn draw(&self) {
        let Some(bar) = &self.bar else { return };
        let (running, succeeded, failed) = (
            self.running.load(Ordering::Relaxed),
            self.succeeded.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        );
        bar.set_position((succeeded + failed) as u64);
        bar.set_message(format!("{succeeded} ok, {failed} failed, {running} running"));
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

    /// Logs a heartbeat every `period` until the returned task is aborted;
    /// nothing while a bar is drawn, which shows the same.
    pub fn heartbeat(self: &Arc<Self>, period: Duration) -> tokio::task::JoinHandle<()> {
        let progress = self.clone();
        if progress.has_bar() {
            return tokio::spawn(std::future::pending());
        }
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

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
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

//! The iterations of a run: worker slots taking the next iteration in
//! order, and each iteration's attempts, commit and record.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use futures::FutureExt as _;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::sync::watch;
use tracing::Instrument as _;

use super::now_rfc3339;
use crate::config_table::ConfigTable;
use crate::inputs::Inputs;
use crate::manifest::{ErrorKind, IterationError, IterationRecord, Status, record_path};
use crate::output::{OutputSink, ParquetFormat, SUCCESS_FILE, remove_local_staging};
use crate::progress::Progress;
use crate::sandbox::Sandbox;
use crate::storage::request_stats::RequestStats;

/// The wait before an iteration's second attempt, doubled for each one
/// after (at most 16x).
const RETRY_BACKOFF: std::time::Duration = std::time::Duration::from_millis(500);

/// What every iteration of the run shares, owned so that the workers'
/// tasks can hold it.
pub(super) struct SharedTask {
    pub(super) sandbox: Arc<Sandbox>,
    pub(super) config: Arc<ConfigTable>,
    pub(super) params_json: Arc<str>,
    pub(super) job_name: String,
    pub(super) store: Arc<dyn ObjectStore>,
    pub(super) root: ObjectPath,
    pub(super) max_output: u64,
    pub(super) max_output_rows: u64,
    pub(super) run_started: Instant,
    /// What every iteration's output is computed from.
    pub(super) inputs: Arc<Inputs>,
    /// Attempts an iteration gets at most (`limits.attempts`).
    pub(super) attempts: u32,
    /// How the iterations' directories are named.
    pub(super) layout: crate::job::Layout,
    pub(super) stats: Arc<RequestStats>,
    /// The output directory, when it is on the local disk.
    pub(super) local_root: Option<PathBuf>,
    /// Whether the local output directory existed when the run began (so
    /// that an iteration's directory may hold a killed run's staging files).
    pub(super) earlier_outputs: bool,
    /// Iterations with a failure record from an earlier run.
    pub(super) stale_failures: Arc<HashSet<i64>>,
    /// The outputs' Parquet settings.
    pub(super) format: Arc<ParquetFormat>,
    /// The guest text the run's records keep in memory.
    pub(super) retained: super::retained::RetainedText,
}

impl SharedTask {
    /// Runs `iteration` on the worker `slot`, again after a failure that
    /// was not its own code's (storage, a host fault) up to
    /// `limits.attempts` times with a backoff; commits its output or
    /// persists its failure, and returns its record.
    pub(super) async fn run(&self, iteration: i64, slot: usize) -> IterationRecord {
        let mut attempt = 1;
        let mut record = loop {
            let record = self.attempt(iteration, slot, attempt).await;
            let error = match &record.error {
                Some(error) if error.kind.is_transient() && attempt < self.attempts && !self.sandbox.is_interrupted() => error,
                _ => break record,
            };
            let backoff = RETRY_BACKOFF.saturating_mul(1 << (attempt - 1).min(4));
            tracing::warn!(
                iteration,
                attempt,
                kind = %error.kind,
                "iteration {iteration} failed as {} on attempt {attempt} of {}; retrying in {} ms: {}",
                error.kind,
                self.attempts,
                backoff.as_millis(),
                error.message.lines().next().unwrap_or_default()
            );
            tokio::time::sleep(backoff).await;
            attempt += 1;
        };
        if record.status == Status::Succeeded {
            if self.stale_failures.contains(&iteration) {
                self.remove_failure_record(iteration).await;
            }
        } else {
            self.persist_failure(&record).await;
        }
        // The manifest's copy keeps little guest text once the run has kept
        // much; the record persisted above keeps it whole.
        self.retained.keep(&mut record);
        match &record.error {
            None => tracing::info!(
                iteration = record.iteration,
                wall_ms = record.wall_ms,
                rows_in = record.rows_in,
                rows_out = record.rows_out,
                storage_retries = record.storage_retries,
                attempts = record.attempts,
                "iteration succeeded"
            ),
            Some(error) => tracing::warn!(
                iteration = record.iteration,
                wall_ms = record.wall_ms,
                kind = %error.kind,
                attempts = record.attempts,
                "iteration failed: {}",
                error.message.lines().next().unwrap_or_default()
            ),
        }
        record
    }

    /// Attempt `attempt` at `iteration`: runs it and commits its output;
    /// its record (a failure is not persisted here).
    async fn attempt(&self, iteration: i64, slot: usize, attempt: u32) -> IterationRecord {
        let started_at = now_rfc3339();
        let started = Instant::now();
        let offset_ms = started.duration_since(self.run_started).as_millis() as u64;
        let sink = match &self.local_root {
            Some(root) => {
                let dir = root.join(self.layout.dir(iteration));
                if self.earlier_outputs {
                    // A killed run may have left staging files of this iteration.
                    remove_local_staging(&dir, "");
                }
                OutputSink::local(dir, self.max_output, self.max_output_rows).with_format(self.format.clone())
            }
            None => {
                let dir = self.root.clone().join(self.layout.dir(iteration));
                OutputSink::new(self.store.clone(), dir, self.max_output, self.max_output_rows).with_format(self.format.clone())
            }
        };
        // A panic in our host code while it serves the guest is caught, so
        // that it fails this iteration only.
        let outcome = std::panic::AssertUnwindSafe(self.sandbox.run(
            iteration,
            &self.params_json,
            &self.job_name,
            self.config.clone(),
            sink,
        ))
        .catch_unwind()
        .await;
        let mut record = IterationRecord::new(iteration, &self.inputs);
        record.started = started_at;
        record.offset_ms = offset_ms;
        record.worker = slot;
        record.attempts = attempt;
        let mut finished = None;
        match outcome {
            Ok(outcome) => {
                record.rows_in = outcome.rows_in;
                record.fuel_used = outcome.fuel_used;
                record.peak_memory_bytes = outcome.peak_memory_bytes;
                match outcome.result {
                    Ok(output) => {
                        record.status = Status::Succeeded;
                        record.rows_out = output.committed().rows;
                        record.bytes_out = output.committed().bytes;
                        record.output = output.committed().path.clone();
                        finished = Some(output);
                    }
                    Err(error) => {
                        record.rows_out = 0;
                        if error.kind == ErrorKind::Interrupted {
                            record.status = Status::Interrupted;
                        }
                        record.error = Some(error);
                    }
                }
            }
            Err(panic) => {
                let message = crate::guest_input::panic_message(panic.as_ref());
                let message = crate::guest_input::text::block(message, crate::guest_input::GuestLimits::default().max_error_bytes);
                record.error = Some(IterationError {
                    kind: ErrorKind::HostPanic,
                    message: format!("corral's host code panicked serving this iteration (a bug of ours; please report it): {message}"),
                    stderr_tail: None,
                });
            }
        }
        record.wall_ms = started.elapsed().as_millis() as u64;
        let requests = self.stats.of_iteration(iteration);
        (record.storage_requests, record.storage_retries) = (requests.requests, requests.retries);
        // A success is committed by its `_SUCCESS`, which holds the record
        // (with the attempts so far: a retry writes it only on success);
        // a failure's record goes to `_records/` once it is final.
        if let Some(output) = finished {
            if let Err(e) = output.seal(serde_json::to_vec_pretty(&record).expect("records serialise")).await {
                record.status = Status::Failed;
                record.output = None;
                record.error = Some(IterationError {
                    kind: ErrorKind::Storage,
                    message: format!("writing {SUCCESS_FILE} failed, so the output is not committed: {e}"),
                    stderr_tail: None,
                });
            }
        }
        record
    }

    /// Removes the failure record an earlier run left for this iteration,
    /// which has now succeeded.
    async fn remove_failure_record(&self, iteration: i64) {
        match self.store.delete(&record_path(&self.root, iteration)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(iteration, "cannot remove an earlier run's failure record: {e}"),
        }
    }

    /// Writes a failed iteration's record under `_records/`, so that a run
    /// killed later still shows what finished.
    async fn persist_failure(&self, record: &IterationRecord) {
        let path = record_path(&self.root, record.iteration);
        let body = serde_json::to_vec_pretty(record).expect("records serialise");
        if let Err(e) = self.store.put(&path, PutPayload::from(body)).await {
            tracing::error!(iteration = record.iteration, "cannot persist the iteration's record: {e}");
        }
    }
}

/// Runs `to_run` on `concurrency` worker slots: one long-lived task per
/// slot, each taking the next iteration in order until none is left, or a
/// signal comes. No task is spawned and no cross-thread wake-up happens per
/// iteration, which short iterations would pay for (see BENCHMARKS.md,
/// iterations per second); the tasks yield inside the guest, so the
/// runtime shares the cores between them fairly. Returns the records and
/// how many iterations were admitted (the rest never started).
pub(super) async fn run_workers(
    shared: Arc<SharedTask>,
    to_run: Arc<[i64]>,
    concurrency: usize,
    progress: &Arc<Progress>,
    signal_rx: &watch::Receiver<Option<i32>>,
) -> (Vec<IterationRecord>, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|slot| {
            let (shared, to_run, next, progress, signal_rx) =
                (shared.clone(), to_run.clone(), next.clone(), progress.clone(), signal_rx.clone());
            tokio::spawn(async move {
                let mut records = Vec::new();
                // A signal stops the admissions; an iteration taken just
                // before it is interrupted by the sandbox.
                while signal_rx.borrow().is_none() {
                    let Some(&iteration) = to_run.get(next.fetch_add(1, Ordering::Relaxed)) else { break };
                    progress.started();
                    let record = shared.run(iteration, slot).instrument(tracing::info_span!("iteration", iteration)).await;
                    progress.finished(record.status == Status::Succeeded);
                    records.push(record);
                }
                records
            })
        })
        .collect();
    let mut records = Vec::new();
    for worker in workers {
        records.extend(worker.await.expect("iterations catch their own panics"));
    }
    (records, next.load(Ordering::Relaxed).min(to_run.len()))
}

//! `corral run`: load the config once, compile the transform once, run every
//! iteration on a bounded pool, persist each record as it finishes, and
//! write the manifest. This module holds the run from start to end and its
//! errors; [`prepare`] gets it ready (stores, module, config), `pool` runs
//! the iterations, `job_info` writes what the manifest says of the job.

mod job_info;
mod pool;
mod prepare;
mod retained;

pub(crate) use self::prepare::{compile_on_thread, read_module};
use self::job_info::{job_info, not_started, write_manifest};
use self::pool::SharedTask;
use self::prepare::{Prepared, prepare};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

use tokio::sync::watch;

use crate::config_table::ConfigError;
use crate::inputs::Inputs;
use crate::job::{Job, JobError};
use crate::location::LocationError;
use crate::manifest::{ErrorKind, IterationRecord, MANIFEST_FILE, Manifest, RECORDS_DIR, Summary};
use crate::module_cache::ModuleCache;
use crate::output::{ParquetFormat, remove_local_staging};
use crate::progress::{Progress, heartbeat_period};
use crate::sandbox::ModuleError;
use crate::storage::{Storage, StorageError};

/// Why a run could not be carried out (as opposed to iterations failing).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The job is invalid.
    #[error(transparent)]
    Job(#[from] JobError),
    /// A location cannot be reached.
    #[error(transparent)]
    Location(#[from] LocationError),
    /// The transform module is unusable.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// The config table cannot be loaded.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A store cannot be used: no bucket, no credentials, unreachable.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// `--resume` could not read what the earlier run left.
    #[error("cannot read the earlier run under {location} to resume it: {source}")]
    Resume {
        /// The output directory.
        location: String,
        /// The storage error.
        source: object_store::Error,
    },
    /// The failure records an earlier run left could not be listed.
    #[error("cannot list the earlier failure records under {location}: {source}")]
    EarlierRecords {
        /// The output directory.
        location: String,
        /// The storage error.
        source: object_store::Error,
    },
    /// The manifest could not be written.
    #[error("cannot write the manifest {location}: {source}")]
    Manifest {
        /// Where it was to go.
        location: String,
        /// The storage error.
        source: object_store::Error,
    },
}

impl RunError {
    /// The process exit code: 2 for bad input, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Job(_)
            | RunError::Location(_)
            | RunError::Module(_)
            | RunError::Config(_)
            | RunError::Storage(_) => 2,
            RunError::Manifest { .. } | RunError::Resume { .. } | RunError::EarlierRecords { .. } => 1,
        }
    }
}

/// How to run, beyond the job itself.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The compiled-module cache (`None`: compile every time).
    pub cache: Option<ModuleCache>,
    /// Draw a progress bar on stderr (a terminal) instead of heartbeats.
    pub progress_bar: bool,
}

/// A finished run.
#[derive(Debug)]
pub struct RunReport {
    /// The manifest as written.
    pub manifest: Manifest,
    /// Where it was written.
    pub manifest_location: String,
    /// The signal that interrupted the run, if one did.
    pub interrupted_by: Option<i32>,
}

impl RunReport {
    /// 0 if every iteration succeeded, 128 + the signal if interrupted, else 1.
    pub fn exit_code(&self) -> i32 {
        let failed = || self.manifest.iterations.iter().filter_map(|r| r.error.as_ref()).filter(|e| e.kind != ErrorKind::Interrupted);
        match self.interrupted_by {
            Some(signal) => 128 + signal,
            None if self.manifest.summary.succeeded == self.manifest.summary.total => 0,
            // Every failure was storage's or the host's, after the retries
            // within the run: worth running again (a launcher retries on it).
            None if failed().all(|e| e.kind.is_transient()) => EXIT_TRANSIENT,
            None => 1,
        }
    }
}

/// The exit code of a run whose every failed iteration failed by no fault
/// of its own code (storage, a host fault): `EX_TEMPFAIL`, "try again".
pub const EXIT_TRANSIENT: i32 = 75;

/// SIGINT's number.
const SIGINT: i32 = 2;
/// SIGTERM's number.
const SIGTERM: i32 = 15;

/// Catches SIGTERM and SIGINT from now on, instead of dying of them: the
/// first one's number is sent on the returned channel; a second one exits
/// the process at once (128 + its number), manifest or not. The task keeps
/// the channel open until it is aborted.
fn watch_signals() -> (tokio::task::JoinHandle<()>, watch::Receiver<Option<i32>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (sender, receiver) = watch::channel(None);
    // Registered here, before the task first runs, so that no signal falls
    // between the two.
    let (term, int) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
    let watcher = tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (term, int) else { return std::future::pending().await };
        let signal = tokio::select! {
            _ = term.recv() => SIGTERM,
            _ = int.recv() => SIGINT,
        };
        tracing::warn!(signal, "interrupted: stopping the run and writing the manifest (a second signal exits at once)");
        let _ = sender.send(Some(signal));
        let again = tokio::select! {
            _ = term.recv() => SIGTERM,
            _ = int.recv() => SIGINT,
        };
        tracing::error!(signal = again, "interrupted again: exiting without waiting for the manifest");
        crate::logging::flush();
        std::process::exit(128 + again);
    });
    (watcher, receiver)
}

/// Runs `work` to its end, unless a signal comes first: then `Err` with
/// the signal's number, `work` dropped.
async fn until_signal<T>(signals: &mut watch::Receiver<Option<i32>>, work: impl Future<Output = T>) -> Result<T, i32> {
    let signalled = async {
        match signals.wait_for(Option::is_some).await {
            Ok(signal) => signal.unwrap_or(SIGTERM),
            Err(_closed) => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        signal = signalled => Err(signal),
        done = work => Ok(done),
    }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Runs `job` to the end.
pub async fn run(job: &Job, options: &RunOptions) -> Result<RunReport, RunError> {
    let started_at = now_rfc3339();
    let started = Instant::now();
    // From here on SIGTERM and SIGINT are caught. One that comes before
    // the first iteration (while the module compiles, the config loads)
    // ends the run at once with a manifest of iterations not started; one
    // that comes later stops admissions and interrupts what runs.
    let (watcher, mut signal_rx) = watch_signals();
    let storage = Storage::new(job.storage.clone());
    let module_sha256 = OnceLock::new();
    let prepared = match until_signal(&mut signal_rx, prepare(job, options, &storage, &module_sha256)).await {
        Ok(Ok(prepared)) => prepared,
        Ok(Err(error)) => {
            watcher.abort();
            return Err(error);
        }
        Err(signal) => {
            watcher.abort();
            let module_sha256 = module_sha256.get().map_or("", String::as_str);
            return interrupted_before_start(job, &storage, module_sha256, started_at, started, signal).await;
        }
    };
    let Prepared { sandbox, config, output_store } = prepared;
    let config = Arc::new(config);
    let sandbox = Arc::new(sandbox);

    let params_json: Arc<str> = serde_json::Value::Object(job.params.clone()).to_string().into();
    let inputs = Arc::new(Inputs::of(job, sandbox.module_sha256(), config.identity()));
    let output_root = job.output.prefix();
    let local_root = job.output.as_local().map(PathBuf::from);
    // Only a directory that exists can hold a killed run's staging files.
    let earlier_outputs = local_root.as_ref().is_some_and(|root| root.exists());
    if let Some(root) = &local_root {
        // Staging files a killed run left: the manifest's and the records'
        // here, each iteration's before it runs.
        remove_local_staging(root, MANIFEST_FILE);
        remove_local_staging(&root.join(RECORDS_DIR), "");
    }
    let mut finished: HashMap<i64, IterationRecord> = if job.resume {
        let earlier = crate::resume::committed_earlier(output_store.as_ref(), &output_root, job.layout, &job.iterations, &inputs)
            .await
            .map_err(|source| RunError::Resume { location: job.output.to_string(), source })?;
        for (iteration, why) in &earlier.stale {
            tracing::info!(iteration, reason = %why, "iteration {iteration} runs again: {why}");
        }
        earlier.carried
    } else {
        HashMap::new()
    };
    let stale_failures = Arc::new(
        crate::resume::failure_records(output_store.as_ref(), &output_root)
            .await
            .map_err(|source| RunError::EarlierRecords { location: job.output.to_string(), source })?,
    );
    let to_run: Vec<i64> = job.iterations.iter().copied().filter(|n| !finished.contains_key(n)).collect();
    if job.resume {
        tracing::info!(
            carried_over = finished.len(),
            to_run = to_run.len(),
            "resuming: {} iterations already committed from the same module, params, config and settings",
            finished.len()
        );
    }
    // Every iteration has the same memory cap, so "start one only when its
    // cap fits the node's budget" is a bound on how many run at once.
    let concurrency = job.limits.concurrency();
    if concurrency < job.limits.max_workers {
        tracing::warn!(
            max_workers = job.limits.max_workers,
            running = concurrency,
            "only {concurrency} iterations' memory caps fit the memory budget at once; running that many"
        );
    }
    tracing::info!(iterations = to_run.len(), workers = concurrency, "running");
    // On SIGTERM or SIGINT: admit nothing more (the workers look at the
    // channel), interrupt what runs.
    let interrupter = {
        let (sandbox, mut signal_rx) = (sandbox.clone(), signal_rx.clone());
        tokio::spawn(async move {
            if signal_rx.wait_for(Option::is_some).await.is_ok() {
                sandbox.interrupt();
            }
        })
    };
    let progress = Progress::new(to_run.len(), options.progress_bar);
    let heartbeat = progress.heartbeat(heartbeat_period());
    let to_run: Arc<[i64]> = to_run.into();
    let shared = Arc::new(SharedTask {
        sandbox: sandbox.clone(),
        config: config.clone(),
        params_json,
        job_name: job.name.clone(),
        store: output_store.clone(),
        root: output_root.clone(),
        max_output: job.limits.max_output_bytes,
        max_output_rows: job.limits.max_output_rows,
        run_started: started,
        inputs: inputs.clone(),
        attempts: job.limits.attempts,
        layout: job.layout,
        stats: storage.stats().clone(),
        local_root,
        earlier_outputs,
        stale_failures,
        format: Arc::new(ParquetFormat::for_memory_cap(job.limits.memory_bytes)),
        retained: retained::RetainedText::new(retained::RETAINED_GUEST_TEXT),
    });
    let (records, admitted) = pool::run_workers(shared.clone(), to_run.clone(), concurrency, &progress, &signal_rx).await;
    finished.extend(records.into_iter().map(|record| (record.iteration, record)));
    watcher.abort();
    interrupter.abort();
    heartbeat.abort();
    progress.clear();
    let interrupted_by = *signal_rx.borrow();
    // Iterations never started are listed too, as interrupted.
    for &iteration in &to_run[admitted..] {
        finished.insert(iteration, not_started(iteration, &inputs, started));
    }
    let mut records: Vec<IterationRecord> = job
        .iterations
        .iter()
        .map(|n| finished.remove(n).expect("every iteration is run, carried over or listed as not started"))
        .collect();
    if job.resume && interrupted_by.is_none() {
        // Another attempt of this shard may have run at once.
        match crate::resume::reconcile(output_store.as_ref(), &output_root, job.layout, &mut records, &inputs).await {
            Ok(adopted) => {
                for iteration in adopted {
                    tracing::info!(iteration, "iteration {iteration} was committed by another attempt; it counts as done");
                }
            }
            Err(e) => tracing::warn!("cannot check for another attempt's commits under {}: {e}", job.output),
        }
    }

    let wall_ms = started.elapsed().as_millis() as u64;
    let manifest = Manifest {
        job: job_info(job, &storage, started_at, &inputs, config.num_rows() as u64),
        summary: Summary::of(&records, job.iterations.len(), wall_ms),
        iterations: records,
    };
    let manifest_location = write_manifest(job, output_store.as_ref(), &manifest).await?;
    // The table is freed on a thread of its own, which the run does not
    // wait for: a table of many small groups or an index of many keys
    // (an entry, and for text a string, a key) is slow to free.
    drop(shared);
    let _ = std::thread::Builder::new().name("corral-free".into()).spawn(move || drop(config));
    Ok(RunReport { manifest, manifest_location, interrupted_by })
}

/// How long an interrupted run that has not started waits to learn what an
/// earlier run committed (for `--resume`) before it lists every iteration
/// as not started.
const RESUME_LOOKUP_ON_SIGNAL: std::time::Duration = std::time::Duration::from_secs(2);

/// The end of a run a signal interrupted before any iteration started:
/// a manifest listing every iteration as not started (those an earlier run
/// committed from the same module, params and settings, under `--resume`,
/// carried over: the config is not read yet, so it is checked by the next
/// `--resume`), and the signal's exit code.
async fn interrupted_before_start(
    job: &Job,
    storage: &Storage,
    module_sha256: &str,
    started_at: String,
    started: Instant,
    signal: i32,
) -> Result<RunReport, RunError> {
    tracing::warn!(signal, "interrupted before any iteration started; no iteration runs");
    let output_store = storage.store(&job.output)?;
    // The config is not read yet: its identity is unknown (empty).
    let inputs = Inputs::of(job, module_sha256, "");
    let mut carried = HashMap::new();
    if job.resume && !module_sha256.is_empty() {
        let root = job.output.prefix();
        let earlier = crate::resume::committed_earlier(output_store.as_ref(), &root, job.layout, &job.iterations, &inputs);
        if let Ok(Ok(earlier)) = tokio::time::timeout(RESUME_LOOKUP_ON_SIGNAL, earlier).await {
            carried = earlier.carried;
        }
    }
    let records: Vec<IterationRecord> = job
        .iterations
        .iter()
        .map(|&n| carried.remove(&n).unwrap_or_else(|| not_started(n, &inputs, started)))
        .collect();
    let wall_ms = started.elapsed().as_millis() as u64;
    let manifest = Manifest {
        job: job_info(job, storage, started_at, &inputs, 0),
        summary: Summary::of(&records, job.iterations.len(), wall_ms),
        iterations: records,
    };
    let manifest_location = write_manifest(job, output_store.as_ref(), &manifest).await?;
    Ok(RunReport { manifest, manifest_location, interrupted_by: Some(signal) })
}


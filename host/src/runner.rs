//! `corral run`: load the config once, compile the transform once, run every
//! iteration on a bounded pool, persist each record as it finishes, and
//! write the manifest.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

use futures::FutureExt as _;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::config_table::{ConfigError, ConfigTable};
use crate::inputs::Inputs;
use crate::job::{Job, JobError, Limits};
use crate::location::{Location, LocationError};
use crate::manifest::{
    ErrorKind, IterationError, IterationRecord, JobInfo, MANIFEST_FILE, Manifest, RECORDS_DIR, Status, Summary,
    record_path,
};
use crate::module_cache::ModuleCache;
use crate::output::{OutputSink, ParquetFormat, SUCCESS_FILE, remove_local_staging};
use crate::progress::{Progress, heartbeat_period};
use crate::sandbox::{ModuleBytes, ModuleError, Sandbox};
use crate::storage::request_stats::RequestStats;
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

/// The wait before an iteration's second attempt, doubled for each one
/// after (at most 16x).
const RETRY_BACKOFF: std::time::Duration = std::time::Duration::from_millis(500);

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

/// What a run needs before its first iteration: checked stores, the
/// compiled transform, the loaded config.
struct Prepared {
    sandbox: Sandbox,
    config: ConfigTable,
    output_store: Arc<dyn ObjectStore>,
}

/// Checks the stores, reads the module (its sha256 set in `module_sha256`
/// as soon as it is read), and compiles it while the config loads. A module
/// error is returned as soon as it is known, before a config error.
async fn prepare(job: &Job, options: &RunOptions, storage: &Storage, module_sha256: &OnceLock<String>) -> Result<Prepared, RunError> {
    // Every bucket is checked (credentials, endpoint, existence) before
    // anything is read or written, so that a typo fails in seconds.
    let mut checked = Vec::new();
    for location in [&job.output, &job.config.location, &job.module] {
        if let Location::S3(url) = location {
            if !checked.contains(&url.host_str()) {
                checked.push(url.host_str());
                storage.preflight(location).await?;
            }
        }
    }
    let config_store = storage.store(&job.config.location)?;
    let module_store = storage.store(&job.module)?;
    let output_store = storage.store(&job.output)?;

    // The config and the module are read and checked before anything is
    // written, compiling while the config parses.
    let module = ModuleBytes::new(read_module(&job.module, module_store.as_ref(), &job.limits).await?);
    let _ = module_sha256.set(module.sha256.clone());
    let compile = compile_on_thread(module, job.module.clone(), job.limits, job.deterministic, options.cache.clone());
    let load_started = Instant::now();
    let load = async {
        let config = ConfigTable::load(&job.config, config_store).await?;
        tracing::info!(
            rows = config.num_rows(),
            arrow_bytes = config.memory_bytes(),
            elapsed_ms = load_started.elapsed().as_millis() as u64,
            config = %job.config.location,
            "config table loaded"
        );
        Ok::<_, ConfigError>(config)
    };
    tokio::pin!(compile, load);
    let mut loaded = None;
    let sandbox = loop {
        tokio::select! {
            compiled = &mut compile => break compiled?,
            config = &mut load, if loaded.is_none() => loaded = Some(config),
        }
    };
    let config = match loaded {
        Some(config) => config?,
        None => load.await?,
    };
    Ok(Prepared { sandbox, config, output_store })
}

/// Compiles the module on a thread of its own (see [`Sandbox::from_bytes`]),
/// started now; the future resolves when it is done. Dropping the future
/// leaves the thread to finish on its own: nothing waits for it, not even
/// the runtime's shutdown.
pub(crate) fn compile_on_thread(
    module: ModuleBytes,
    location: Location,
    limits: Limits,
    deterministic: bool,
    cache: Option<ModuleCache>,
) -> impl Future<Output = Result<Sandbox, ModuleError>> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name("corral-module".into()).spawn(move || {
        let _ = sender.send(Sandbox::from_bytes(module, &location, limits, deterministic, cache.as_ref()));
    });
    async move {
        spawned.map_err(|e| ModuleError::Engine(format!("cannot start a thread to compile on: {e}")))?;
        receiver.await.unwrap_or_else(|_| Err(ModuleError::Engine("setting it up panicked".into())))
    }
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
    // One long-lived task per worker slot, each taking the next iteration
    // in order until none is left: no task spawned and no cross-thread
    // wake-up per iteration, which short iterations would pay for (see
    // BENCHMARKS.md, iterations per second). The tasks yield inside the
    // guest, so the runtime shares the cores between them fairly.
    let to_run: Arc<[i64]> = to_run.into();
    let next = Arc::new(AtomicUsize::new(0));
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
    });
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
    for worker in workers {
        for record in worker.await.expect("iterations catch their own panics") {
            finished.insert(record.iteration, record);
        }
    }
    watcher.abort();
    interrupter.abort();
    heartbeat.abort();
    progress.clear();
    let interrupted_by = *signal_rx.borrow();
    // Iterations never started are listed too, as interrupted.
    let admitted = next.load(Ordering::Relaxed).min(to_run.len());
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

/// The record of an iteration a signal kept from starting.
fn not_started(iteration: i64, inputs: &Inputs, run_started: Instant) -> IterationRecord {
    let mut record = IterationRecord::new(iteration, inputs);
    record.status = Status::Interrupted;
    record.error = Some(IterationError {
        kind: ErrorKind::Interrupted,
        message: "not started: the run was interrupted".into(),
        stderr_tail: None,
    });
    record.offset_ms = run_started.elapsed().as_millis() as u64;
    record
}

/// The manifest's `job`, as the run ends.
fn job_info(job: &Job, storage: &Storage, started_at: String, inputs: &Inputs, config_rows: u64) -> JobInfo {
    JobInfo {
        name: job.name.clone(),
        started: started_at,
        finished: now_rfc3339(),
        host_version: env!("CARGO_PKG_VERSION").to_owned(),
        module_sha256: inputs.module_sha256.clone(),
        module: job.module.to_string(),
        config: job.config.location.to_string(),
        config_rows,
        config_identity: inputs.config_identity.clone(),
        settings: inputs.settings.clone(),
        params: job.params.clone(),
        limits: serde_json::to_value(job.limits).expect("limits serialise"),
        concurrency: job.limits.concurrency(),
        deterministic: job.deterministic,
        peak_rss_bytes: crate::manifest::peak_rss_bytes(),
        storage: serde_json::to_value(&job.storage).expect("storage settings serialise"),
        storage_requests: storage.stats().total().requests,
        storage_retries: storage.stats().total().retries,
        resumed: job.resume,
        shard: job.shard,
        layout: job.layout,
        share: crate::share::Share::current().clone(),
        threads: crate::share::threads(),
    }
}

/// Writes the manifest where the job's goes; returns its location.
async fn write_manifest(job: &Job, store: &dyn ObjectStore, manifest: &Manifest) -> Result<String, RunError> {
    let manifest_name = job.manifest_name();
    let path = manifest_name.split('/').fold(job.output.prefix(), |path, part| path.join(part));
    let body = serde_json::to_vec_pretty(manifest).expect("the manifest serialises");
    let manifest_location = format!("{}/{manifest_name}", job.output);
    store
        .put(&path, PutPayload::from(body))
        .await
        .map_err(|source| RunError::Manifest { location: manifest_location.clone(), source })?;
    Ok(manifest_location)
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

/// Reads the module, refusing one over `limits.guest.max_module_bytes`
/// before reading it whole.
pub(crate) async fn read_module(location: &Location, store: &dyn ObjectStore, limits: &Limits) -> Result<bytes::Bytes, ModuleError> {
    let read_error = |source| ModuleError::Read { location: location.clone(), source };
    let get = store.get(&location.prefix()).await.map_err(read_error)?;
    crate::sandbox::check_size(get.meta.size, location, limits)?;
    get.bytes().await.map_err(read_error)
}

/// What every iteration of the run shares, owned so that the workers'
/// tasks can hold it.
struct SharedTask {
    sandbox: Arc<Sandbox>,
    config: Arc<ConfigTable>,
    params_json: Arc<str>,
    job_name: String,
    store: Arc<dyn ObjectStore>,
    root: ObjectPath,
    max_output: u64,
    max_output_rows: u64,
    run_started: Instant,
    /// What every iteration's output is computed from.
    inputs: Arc<Inputs>,
    /// Attempts an iteration gets at most (`limits.attempts`).
    attempts: u32,
    /// How the iterations' directories are named.
    layout: crate::job::Layout,
    stats: Arc<RequestStats>,
    /// The output directory, when it is on the local disk.
    local_root: Option<PathBuf>,
    /// Whether the local output directory existed when the run began (so
    /// that an iteration's directory may hold a killed run's staging files).
    earlier_outputs: bool,
    /// Iterations with a failure record from an earlier run.
    stale_failures: Arc<HashSet<i64>>,
    /// The outputs' Parquet settings.
    format: Arc<ParquetFormat>,
}

impl SharedTask {
    /// Runs `iteration` on the worker `slot`, again after a failure that
    /// was not its own code's (storage, a host fault) up to
    /// `limits.attempts` times with a backoff; commits its output or
    /// persists its failure, and returns its record.
    async fn run(&self, iteration: i64, slot: usize) -> IterationRecord {
        let mut attempt = 1;
        let record = loop {
            let record = self.attempt(iteration, slot, attempt).await;
            let transient = record.error.as_ref().is_some_and(|e| e.kind.is_transient());
            if !transient || attempt >= self.attempts || self.sandbox.is_interrupted() {
                break record;
            }
            let backoff = RETRY_BACKOFF.saturating_mul(1 << (attempt - 1).min(4));
            tracing::warn!(
                iteration,
                attempt,
                kind = %record.error.as_ref().map_or(ErrorKind::Storage, |e| e.kind),
                "iteration {iteration} failed as {} on attempt {attempt} of {}; retrying in {} ms: {}",
                record.error.as_ref().map_or(ErrorKind::Storage, |e| e.kind),
                self.attempts,
                backoff.as_millis(),
                record.error.as_ref().map_or("", |e| e.message.lines().next().unwrap_or_default())
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

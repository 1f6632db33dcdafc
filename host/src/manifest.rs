//! What a run leaves behind besides outputs: one record per iteration
//! (written as each finishes) and the manifest with the job and a summary.

use serde::{Deserialize, Serialize};

/// How an iteration ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Output committed.
    Succeeded,
    /// Failed; see the error.
    Failed,
    /// Stopped by a signal before it finished.
    Interrupted,
}

/// The failure classes of an iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The transform returned an error.
    GuestError,
    /// The guest trapped: panic, abort, unreachable, stack overflow.
    Trap,
    /// The guest used up its fuel.
    FuelExhausted,
    /// The guest tried to grow memory past its cap.
    MemoryLimit,
    /// The iteration ran past its wall-clock timeout.
    Timeout,
    /// The guest emitted malformed, inconsistent or oversized output.
    InvalidOutput,
    /// Reading or writing storage failed.
    Storage,
    /// The run was interrupted.
    Interrupted,
    /// A bug in corral's host code, caught and isolated to this iteration.
    HostPanic,
}

impl ErrorKind {
    /// Whether a failure of this kind was not the transform's own doing
    /// (storage, a fault of corral's host) and may pass on another
    /// attempt. The others are the guest's, deterministic: another attempt
    /// fails the same way.
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorKind::Storage | ErrorKind::HostPanic)
    }

    /// The name used in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::GuestError => "guest_error",
            ErrorKind::Trap => "trap",
            ErrorKind::FuelExhausted => "fuel_exhausted",
            ErrorKind::MemoryLimit => "memory_limit",
            ErrorKind::Timeout => "timeout",
            ErrorKind::InvalidOutput => "invalid_output",
            ErrorKind::Storage => "storage",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::HostPanic => "host_panic",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an iteration failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IterationError {
    /// The class of failure.
    pub kind: ErrorKind,
    /// What happened, for the model author (with the wasm backtrace for traps).
    pub message: String,
    /// The end of the guest's stderr (e.g. its panic message).
    pub stderr_tail: Option<String>,
}

/// One iteration's outcome and figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IterationRecord {
    /// The iteration id.
    pub iteration: i64,
    /// How it ended.
    pub status: Status,
    /// Why it failed, if it did.
    pub error: Option<IterationError>,
    /// When it started (RFC 3339).
    pub started: String,
    /// Wall time, milliseconds.
    pub wall_ms: u64,
    /// Start offset from the run's start, milliseconds (for timelines).
    pub offset_ms: u64,
    /// The worker slot it ran on.
    pub worker: usize,
    /// Config rows handed to the guest.
    pub rows_in: u64,
    /// Rows emitted.
    pub rows_out: u64,
    /// Bytes of Parquet written.
    pub bytes_out: u64,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Peak linear memory of the guest, bytes.
    pub peak_memory_bytes: u64,
    /// Attempts made (1 unless retried).
    pub attempts: u32,
    /// The committed output file, if any.
    pub output: Option<String>,
    /// What the output was computed from (module, params, config,
    /// settings), so that a resume can tell.
    #[serde(flatten)]
    pub inputs: crate::inputs::Inputs,
    /// Requests made to the object store for this iteration's output.
    #[serde(default)]
    pub storage_requests: u64,
    /// Of those, attempts that failed (throttled, 5xx, reset, timed out)
    /// and were retried.
    #[serde(default)]
    pub storage_retries: u64,
    /// Carried over from an earlier run by `--resume`, not run again.
    #[serde(default)]
    pub carried_over: bool,
}

impl IterationRecord {
    /// A record of `iteration` with nothing done yet: failed, no figures.
    pub fn new(iteration: i64, inputs: &crate::inputs::Inputs) -> IterationRecord {
        IterationRecord {
            iteration,
            status: Status::Failed,
            error: None,
            started: String::new(),
            wall_ms: 0,
            offset_ms: 0,
            worker: 0,
            rows_in: 0,
            rows_out: 0,
            bytes_out: 0,
            fuel_used: 0,
            peak_memory_bytes: 0,
            attempts: 0,
            output: None,
            inputs: inputs.clone(),
            storage_requests: 0,
            storage_retries: 0,
            carried_over: false,
        }
    }
}

/// The sha256 of params as they are handed to the transform (their JSON,
/// keys sorted), in hex.
pub fn params_sha256(params: &serde_json::Map<String, serde_json::Value>) -> String {
    use sha2::Digest as _;
    let json = serde_json::Value::Object(params.clone()).to_string();
    hex::encode(sha2::Sha256::digest(json.as_bytes()))
}

/// Totals of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Iterations in the job.
    pub total: usize,
    /// Succeeded.
    pub succeeded: usize,
    /// Failed.
    pub failed: usize,
    /// Interrupted (or never started because of an interruption).
    pub interrupted: usize,
    /// Succeeded in an earlier run and carried over by `--resume`.
    #[serde(default)]
    pub carried_over: usize,
    /// Wall time of the run, milliseconds.
    pub wall_ms: u64,
}

impl Summary {
    /// Totals over `records`, for a job of `total` iterations.
    pub fn of(records: &[IterationRecord], total: usize, wall_ms: u64) -> Summary {
        let count = |s: Status| records.iter().filter(|r| r.status == s).count();
        let done = records.len();
        Summary {
            total,
            succeeded: count(Status::Succeeded),
            failed: count(Status::Failed),
            interrupted: count(Status::Interrupted) + total.saturating_sub(done),
            carried_over: records.iter().filter(|r| r.carried_over).count(),
            wall_ms,
        }
    }
}

/// The job as it ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobInfo {
    /// The job's name.
    pub name: String,
    /// Start (RFC 3339).
    pub started: String,
    /// End (RFC 3339).
    pub finished: String,
    /// corral's version.
    pub host_version: String,
    /// The transform module's sha256.
    pub module_sha256: String,
    /// The transform module's location.
    pub module: String,
    /// The config table's location.
    pub config: String,
    /// Rows in the config table.
    pub config_rows: u64,
    /// The config file as it was read (see [`crate::inputs::config_identity`]).
    #[serde(default)]
    pub config_identity: String,
    /// The job settings an output depends on (see [`crate::inputs::Inputs`]).
    #[serde(default)]
    pub settings: std::collections::BTreeMap<String, serde_json::Value>,
    /// The params handed to the transform.
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The limits.
    pub limits: serde_json::Value,
    /// Iterations that ran at once (max_workers, lowered to fit the memory budget).
    pub concurrency: usize,
    /// Whether random numbers and clocks were fixed per iteration.
    pub deterministic: bool,
    /// The host process's peak resident memory, bytes (Linux; 0 elsewhere).
    pub peak_rss_bytes: u64,
    /// The storage settings (never credentials).
    #[serde(default)]
    pub storage: serde_json::Value,
    /// Requests made to object stores in this run.
    #[serde(default)]
    pub storage_requests: u64,
    /// Of those, attempts that failed and were retried.
    #[serde(default)]
    pub storage_retries: u64,
    /// Whether this run resumed an earlier one (`--resume`).
    #[serde(default)]
    pub resumed: bool,
    /// The shard this process ran (`--shard K/N`), if it was one.
    #[serde(default)]
    pub shard: Option<crate::shard::Shard>,
    /// How the iterations' directories are named (`iter`, `hive`).
    #[serde(default)]
    pub layout: crate::job::Layout,
    /// What of the machine the process found it may use (CPUs, memory
    /// limits), which sized its defaults.
    #[serde(default)]
    pub share: crate::share::Share,
    /// Threads the run's host work used (the runtime's workers, the
    /// config's parsing): [`crate::job::Limits::threads`].
    #[serde(default)]
    pub threads: usize,
}

/// The peak resident set size of this process (`VmHWM`), bytes.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// `_manifest.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The job.
    pub job: JobInfo,
    /// Totals.
    pub summary: Summary,
    /// Every iteration's record, in the job's order.
    pub iterations: Vec<IterationRecord>,
}

/// Name of the manifest under the output directory.
pub const MANIFEST_FILE: &str = "_manifest.json";
/// Directory of the failed iterations' records under the output directory
/// (a success's record is the content of its `_SUCCESS`).
pub const RECORDS_DIR: &str = "_records";

/// The record file of iteration `n` under the output directory `root`.
pub fn record_path(root: &object_store::path::Path, iteration: i64) -> object_store::path::Path {
    root.clone().join(RECORDS_DIR).join(format!("iter_{iteration}.json"))
}



/// A manifest's job for the renderers' tests: every text field `text`
/// (the name `name`, the params `{"x": text}`), every figure plain.
#[cfg(test)]
pub(crate) fn test_job(name: &str, text: &str) -> JobInfo {
    serde_json::from_value(serde_json::json!({
        "name": name, "started": text, "finished": "", "host_version": text,
        "module_sha256": text, "module": text, "config": text, "config_rows": 3,
        "params": {"x": text}, "limits": {}, "concurrency": 2, "deterministic": false,
        "peak_rss_bytes": 0, "storage": {}, "storage_requests": 0, "storage_retries": 0,
        "resumed": false, "shard": null
    }))
    .expect("a job's fields")
}

/// A manifest for the renderers' tests: iteration 1 succeeded (40 ms, slot
/// 0), iteration 2 failed with `error` (10 ms, slot 1), its job
/// [`test_job`]`(name, text)`.
#[cfg(test)]
pub(crate) fn test_manifest(name: &str, text: &str, error: IterationError) -> Manifest {
    let inputs = crate::inputs::Inputs { module_sha256: "abc".into(), params_sha256: "def".into(), ..Default::default() };
    let mut good = IterationRecord::new(1, &inputs);
    good.status = Status::Succeeded;
    good.wall_ms = 40;
    let mut bad = IterationRecord::new(2, &inputs);
    bad.worker = 1;
    bad.wall_ms = 10;
    bad.error = Some(error);
    let records = vec![good, bad];
    Manifest { summary: Summary::of(&records, 2, 50), job: test_job(name, text), iterations: records }
}

//! What the manifest says of the job as it ran, the records of iterations
//! that never started, and writing the manifest.

use std::time::Instant;

use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::{RunError, now_rfc3339};
use crate::inputs::Inputs;
use crate::job::Job;
use crate::manifest::{ErrorKind, IterationError, IterationRecord, JobInfo, Manifest, Status};
use crate::storage::Storage;

/// The record of an iteration a signal kept from starting.
pub(super) fn not_started(iteration: i64, inputs: &Inputs, run_started: Instant) -> IterationRecord {
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
pub(super) fn job_info(job: &Job, storage: &Storage, started_at: String, inputs: &Inputs, config_rows: u64) -> JobInfo {
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
pub(super) async fn write_manifest(job: &Job, store: &dyn ObjectStore, manifest: &Manifest) -> Result<String, RunError> {
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


//! `corral manifest merge OUT`: one `_manifest.json` from the manifests the
//! shards of a run (`corral run --shard K/N`) wrote under `_shards/`, with
//! the iterations back in the job's order and the shards' timelines and
//! worker slots laid side by side.

use std::time::SystemTime;

use futures::TryStreamExt as _;
use object_store::{ObjectStoreExt as _, PutPayload};

use crate::location::{Location, LocationError};
use crate::manifest::{MANIFEST_FILE, Manifest, Summary};
use crate::shard::SHARDS_DIR;
use crate::storage::{Storage, StorageError};

/// Why shards cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// The output directory is not a valid location.
    #[error("invalid output directory: {0}")]
    Location(#[from] LocationError),
    /// Its store cannot be used.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// No shard has written a manifest.
    #[error("no shard manifests under {location}/{SHARDS_DIR}: run `corral run JOB --shard K/N --out {location}` for each shard first")]
    NoShards {
        /// The output directory.
        location: String,
    },
    /// Some shards have not finished.
    #[error("shards {missing} of {count} have no manifest under {location}/{SHARDS_DIR}: they have not finished; run them (with --resume) and merge again")]
    Missing {
        /// The missing shard numbers, comma-separated.
        missing: String,
        /// How many shards there are.
        count: usize,
        /// The output directory.
        location: String,
    },
    /// The shard manifests do not belong to one run.
    #[error("the shard manifests under {location} are not of one run: {message}")]
    Inconsistent {
        /// The output directory.
        location: String,
        /// What differs.
        message: String,
    },
    /// A shard manifest is not a corral manifest.
    #[error("{location} is not a corral shard manifest: {message}")]
    Malformed {
        /// The file.
        location: String,
        /// The parser's complaint.
        message: String,
    },
    /// Reading or writing failed.
    #[error("cannot {action} {location}: {source}")]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// The object.
        location: String,
        /// The storage error.
        source: object_store::Error,
    },
}

impl MergeError {
    /// 2 for what the user must fix (missing or mismatched shards), 1 for
    /// storage failures.
    pub fn exit_code(&self) -> i32 {
        match self {
            MergeError::Io { .. } => 1,
            _ => 2,
        }
    }
}

/// Merges the shard manifests under `out` into `out/_manifest.json`;
/// returns it and where it was written.
pub async fn merge(out: &Location, storage: &Storage) -> Result<(Manifest, String), MergeError> {
    storage.preflight(out).await?;
    let store = storage.store(out)?;
    let root = out.prefix();
    let name = out.to_string();
    let metas: Vec<_> = store.list(Some(&root.clone().join(SHARDS_DIR))).try_collect().await.map_err(|source| {
        MergeError::Io { action: "list", location: format!("{name}/{SHARDS_DIR}"), source }
    })?;
    let mut shards = Vec::new();
    for meta in metas.iter().filter(|m| m.location.as_ref().ends_with(".json")) {
        let location = format!("{name}/{SHARDS_DIR}/{}", meta.location.filename().unwrap_or_default());
        let read = async { store.get(&meta.location).await?.bytes().await };
        let bytes = read.await.map_err(|source| MergeError::Io { action: "read", location: location.clone(), source })?;
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| MergeError::Malformed { location: location.clone(), message: e.to_string() })?;
        if manifest.job.shard.is_none() {
            return Err(MergeError::Malformed { location, message: "it names no shard".into() });
        }
        shards.push(manifest);
    }
    if shards.is_empty() {
        return Err(MergeError::NoShards { location: name });
    }
    let merged = combine(shards, &name)?;
    let body = serde_json::to_vec_pretty(&merged).expect("the manifest serialises");
    let location = format!("{name}/{MANIFEST_FILE}");
    store
        .put(&root.join(MANIFEST_FILE), PutPayload::from(body))
        .await
        .map_err(|source| MergeError::Io { action: "write", location: location.clone(), source })?;
    Ok((merged, location))
}

/// Combines the manifests of every shard of one run.
fn combine(mut shards: Vec<Manifest>, name: &str) -> Result<Manifest, MergeError> {
    let inconsistent = |message: String| MergeError::Inconsistent { location: name.to_owned(), message };
    shards.sort_by_key(|m| m.job.shard.map(|s| s.index));
    let count = shards[0].job.shard.expect("checked").count;
    if let Some(other) = shards.iter().find(|m| m.job.shard.expect("checked").count != count) {
        return Err(inconsistent(format!("shards of {count} and of {}", other.job.shard.expect("checked").count)));
    }
    let first = &shards[0].job;
    for m in &shards[1..] {
        if m.job.module_sha256 != first.module_sha256 {
            return Err(inconsistent(format!("modules {} and {}", first.module_sha256, m.job.module_sha256)));
        }
        if m.job.params != first.params || m.job.name != first.name {
            return Err(inconsistent("different job names or params".into()));
        }
        if m.job.config_identity != first.config_identity || m.job.settings != first.settings {
            return Err(inconsistent(format!(
                "configs or settings that differ (config {} and {}); rerun the stale shards with --resume",
                first.config_identity, m.job.config_identity
            )));
        }
    }
    let present: Vec<usize> = shards.iter().map(|m| m.job.shard.expect("checked").index).collect();
    let missing: Vec<String> = (0..count).filter(|k| !present.contains(k)).map(|k| k.to_string()).collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing { missing: missing.join(", "), count, location: name.to_owned() });
    }

    // The run spans from the first shard's start to the last one's end.
    let time = |text: &str| humantime::parse_rfc3339(text).unwrap_or(SystemTime::UNIX_EPOCH);
    let started = shards.iter().map(|m| m.job.started.clone()).min_by_key(|t| time(t)).expect("one shard at least");
    let finished = shards.iter().map(|m| m.job.finished.clone()).max_by_key(|t| time(t)).expect("one shard at least");
    let since = |t: &str| time(t).duration_since(time(&started)).unwrap_or_default().as_millis() as u64;

    // Back in the job's order: position i was in shard i mod N.
    let total: usize = shards.iter().map(|m| m.iterations.len()).sum();
    for (k, m) in shards.iter().enumerate() {
        if m.iterations.len() != (total + count - 1 - k) / count {
            return Err(inconsistent(format!("shard {k} has {} iterations of {total}; were they run with the same iteration list?", m.iterations.len())));
        }
    }
    let mut worker_base = 0;
    let mut queues = Vec::with_capacity(count);
    for m in &mut shards {
        let shift = since(&m.job.started);
        for r in &mut m.iterations {
            r.offset_ms += shift;
            r.worker += worker_base;
        }
        worker_base += m.job.concurrency;
        queues.push(std::mem::take(&mut m.iterations).into_iter());
    }
    let iterations: Vec<_> = (0..total).map(|i| queues[i % count].next().expect("lengths checked")).collect();

    let mut job = shards[0].job.clone();
    job.started = started.clone();
    job.finished = finished.clone();
    job.shard = None;
    job.concurrency = worker_base;
    // The workers of every shard, as `concurrency` counts their slots.
    let max_workers: u64 = shards.iter().filter_map(|m| m.job.limits["max_workers"].as_u64()).sum();
    if let Some(limits) = job.limits.as_object_mut() {
        limits.insert("max_workers".into(), max_workers.into());
    }
    job.resumed = shards.iter().any(|m| m.job.resumed);
    job.peak_rss_bytes = shards.iter().map(|m| m.job.peak_rss_bytes).max().unwrap_or(0);
    job.storage_requests = shards.iter().map(|m| m.job.storage_requests).sum();
    job.storage_retries = shards.iter().map(|m| m.job.storage_retries).sum();
    let summary = Summary::of(&iterations, total, since(&finished));
    Ok(Manifest { job, summary, iterations })
}

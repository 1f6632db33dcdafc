//! `--resume`: the iterations an earlier run under the same output already
//! committed with the same module and params, read from their records, so
//! that they are carried over instead of run again.

use std::collections::{HashMap, HashSet};

use futures::{StreamExt as _, TryStreamExt as _};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _};

use crate::manifest::{IterationRecord, Status, iteration_dir, record_path};
use crate::output::SUCCESS_FILE;

/// Records read at once.
const CONCURRENT_READS: usize = 16;

/// The records of those of `iterations` that succeeded earlier under `root`
/// with this module and these params, and whose output is still there
/// (`_SUCCESS` and, if it had one, the data file), marked carried over.
pub async fn committed_earlier(
    store: &dyn ObjectStore,
    root: &ObjectPath,
    iterations: &[i64],
    module_sha256: &str,
    params_sha256: &str,
) -> Result<HashMap<i64, IterationRecord>, object_store::Error> {
    // One listing tells which iterations have a record and a `_SUCCESS`.
    let present: HashSet<String> =
        store.list(Some(root)).map_ok(|meta| meta.location.to_string()).try_collect().await?;
    let candidates: Vec<i64> = iterations
        .iter()
        .copied()
        .filter(|&n| {
            present.contains(record_path(root, n).as_ref())
                && present.contains(root.clone().join(iteration_dir(n)).join(SUCCESS_FILE).as_ref())
        })
        .collect();
    let records: Vec<Option<IterationRecord>> = futures::stream::iter(candidates)
        .map(|n| async move {
            let bytes = store.get(&record_path(root, n)).await?.bytes().await?;
            // A record that does not parse (written by a killed process, or
            // by another version) is not trusted: the iteration runs again.
            Ok::<_, object_store::Error>(serde_json::from_slice::<IterationRecord>(&bytes).ok())
        })
        .buffer_unordered(CONCURRENT_READS)
        .try_collect()
        .await?;
    Ok(records
        .into_iter()
        .flatten()
        .filter(|r| {
            r.status == Status::Succeeded
                && r.module_sha256 == module_sha256
                && r.params_sha256 == params_sha256
                && r.output.as_ref().is_none_or(|path| present.contains(path))
        })
        .map(|mut r| {
            r.carried_over = true;
            (r.iteration, r)
        })
        .collect())
}

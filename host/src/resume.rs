//! What an earlier run under the same output left: for `--resume`, the
//! iterations it committed with the same module and params (their records
//! are in their `_SUCCESS`), carried over instead of run again; and the
//! failure records under `_records/` that a success now replaces.

use std::collections::{HashMap, HashSet};

use futures::{StreamExt as _, TryStreamExt as _};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _};

use crate::manifest::{IterationRecord, RECORDS_DIR, Status, iteration_dir};
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
    // One listing tells which iterations have a `_SUCCESS`.
    let present: HashSet<String> =
        store.list(Some(root)).map_ok(|meta| meta.location.to_string()).try_collect().await?;
    let success = |n: i64| root.clone().join(iteration_dir(n)).join(SUCCESS_FILE);
    let candidates: Vec<i64> = iterations.iter().copied().filter(|&n| present.contains(success(n).as_ref())).collect();
    let records: Vec<Option<IterationRecord>> = futures::stream::iter(candidates)
        .map(|n| async move {
            let bytes = store.get(&success(n)).await?.bytes().await?;
            // A `_SUCCESS` that does not hold a record (written by another
            // tool, or by another version) is not trusted: the iteration
            // runs again.
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

/// The iterations that have a failure record under `root`'s `_records/`,
/// from an earlier run (one listing).
pub async fn failure_records(store: &dyn ObjectStore, root: &ObjectPath) -> Result<HashSet<i64>, object_store::Error> {
    let dir = root.clone().join(RECORDS_DIR);
    let names: Vec<ObjectPath> = match store.list(Some(&dir)).map_ok(|meta| meta.location).try_collect().await {
        Ok(names) => names,
        Err(object_store::Error::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e),
    };
    Ok(names
        .iter()
        .filter_map(|path| path.filename()?.strip_prefix("iter_")?.strip_suffix(".json")?.parse().ok())
        .collect())
}

//! What an earlier run under the same output left: for `--resume`, the
//! iterations it committed from the same inputs (module, params, config,
//! settings: their records are in their `_SUCCESS`), carried over instead
//! of run again, and why each other committed one runs again; and the
//! failure records under `_records/` that a success now replaces.

use std::collections::{HashMap, HashSet};

use futures::{StreamExt as _, TryStreamExt as _};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _};

use crate::inputs::{Inputs, Rerun};
use crate::job::Layout;
use crate::manifest::{IterationRecord, RECORDS_DIR, Status};
use crate::output::SUCCESS_FILE;

/// Records read at once.
const CONCURRENT_READS: usize = 16;

/// What an earlier run committed, for `--resume`.
#[derive(Debug, Default)]
pub struct Earlier {
    /// The records of the iterations to carry over, marked so.
    pub carried: HashMap<i64, IterationRecord>,
    /// The iterations whose output is there but was computed from other
    /// inputs, with the first input that differs, in the job's order.
    pub stale: Vec<(i64, Rerun)>,
}

/// Those of `iterations` that succeeded earlier under `root` from
/// `inputs`, and whose output is still there (`_SUCCESS` and, if it had
/// one, the data file); and the committed ones whose inputs differ.
pub async fn committed_earlier(
    store: &dyn ObjectStore,
    root: &ObjectPath,
    layout: Layout,
    iterations: &[i64],
    inputs: &Inputs,
) -> Result<Earlier, object_store::Error> {
    // One listing tells which iterations have a `_SUCCESS`.
    let present: HashSet<String> =
        store.list(Some(root)).map_ok(|meta| meta.location.to_string()).try_collect().await?;
    let success = |n: i64| root.clone().join(layout.dir(n)).join(SUCCESS_FILE);
    let candidates: Vec<i64> = iterations.iter().copied().filter(|&n| present.contains(success(n).as_ref())).collect();
    let records: Vec<Option<IterationRecord>> = futures::stream::iter(candidates)
        .map(|n| async move {
            // One gone since the listing (another attempt's rerun replacing
            // it) is not committed.
            let bytes = match store.get(&success(n)).await {
                Ok(got) => got.bytes().await?,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(e),
            };
            // A `_SUCCESS` that does not hold a record (written by another
            // tool, or by another version) is not trusted: the iteration
            // runs again.
            Ok::<_, object_store::Error>(serde_json::from_slice::<IterationRecord>(&bytes).ok())
        })
        .buffer_unordered(CONCURRENT_READS)
        .try_collect()
        .await?;
    let mut earlier = Earlier::default();
    for mut record in records.into_iter().flatten() {
        if record.status != Status::Succeeded || !output_present(&record, &present) {
            continue;
        }
        match inputs.differs(&record.inputs) {
            Some(why) => earlier.stale.push((record.iteration, why)),
            None => {
                record.carried_over = true;
                earlier.carried.insert(record.iteration, record);
            }
        }
    }
    let order: HashMap<i64, usize> = iterations.iter().enumerate().map(|(at, &n)| (n, at)).collect();
    earlier.stale.sort_by_key(|(n, _)| order.get(n).copied());
    Ok(earlier)
}

/// Whether the data file a record names (if any) is in the listing
/// `present`: a store's key, or a local file's absolute path, which the
/// local store lists without its leading `/`.
fn output_present(record: &IterationRecord, present: &HashSet<String>) -> bool {
    record.output.as_ref().is_none_or(|path| present.contains(path.trim_start_matches('/')))
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

/// After a `--resume` run, for attempts of one shard that ran at once
/// (Spark's speculation, a stalled executor whose task was rescheduled):
/// an iteration another attempt committed from the same inputs is done,
/// whatever this attempt made of it. Each of `records` that did not
/// succeed takes that commit's record (marked carried over, as
/// [`committed_earlier`] finds it), and a failure record under `_records/`
/// beside such a commit is removed, so that no stale failure is left
/// beside a success. Returns the iterations adopted.
pub async fn reconcile(
    store: &dyn ObjectStore,
    root: &ObjectPath,
    layout: Layout,
    records: &mut [IterationRecord],
    inputs: &Inputs,
) -> Result<Vec<i64>, object_store::Error> {
    let failures = failure_records(store, root).await?;
    let unfinished = records.iter().filter(|r| r.status != Status::Succeeded).map(|r| r.iteration);
    let candidates: Vec<i64> = unfinished.chain(failures.iter().copied()).collect::<HashSet<_>>().into_iter().collect();
    let committed = committed_earlier(store, root, layout, &candidates, inputs).await?.carried;
    for &n in failures.iter().filter(|n| committed.contains_key(n)) {
        match store.delete(&crate::manifest::record_path(root, n)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let mut adopted = Vec::new();
    for record in records.iter_mut().filter(|r| r.status != Status::Succeeded) {
        if let Some(theirs) = committed.get(&record.iteration) {
            adopted.push(record.iteration);
            *record = theirs.clone();
        }
    }
    Ok(adopted)
}

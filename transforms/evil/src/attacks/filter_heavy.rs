//! `filter-heavy`: a scan of 256 comparisons that no row passes (255 times
//! `name >= "name_"`, true of every row, then `id < -1`), drained: the
//! host's filter work, not the guest's, is what the iteration's timeout
//! must stop.

use corral_guest::bindings::corral::transform::types::{ComparisonOp, Literal, ScanRequest};
use corral_guest::{Context, Result, emit};

use crate::common::{comparison, raw_open_scan, small_batch};

/// Comparisons in the filter: the most a scan may have.
const COMPARISONS: usize = 256;

/// Drains the scan, emits an empty batch and succeeds (if the host lets it
/// finish).
pub fn run(_: &Context) -> Result<()> {
    // A string comparison is the dearest of the host's kernels, and every
    // row passes this one, so that no mask is all false before the last.
    let always = comparison("name", ComparisonOp::Ge, Literal::Text("name_".to_owned()));
    let mut filter = vec![always; COMPARISONS - 1];
    filter.push(comparison("id", ComparisonOp::Lt, Literal::Int(-1)));
    let request = ScanRequest { columns: Some(vec!["id".to_owned()]), filter, batch_rows: None };
    let scan = raw_open_scan(&request)?;
    let mut bytes = 0usize;
    while let Some(batch) = scan.next() {
        bytes += batch.len();
    }
    corral_guest::info!("filter-heavy drained its scan ({bytes} bytes)");
    emit(&small_batch(0))
}

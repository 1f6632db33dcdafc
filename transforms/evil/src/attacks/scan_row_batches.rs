//! `scan-row-batches`: opens all but one of the scans the host allows over
//! every column, each asking for batches of one row, takes one batch of each and
//! keeps them all open; then does the good path. A host that sliced a
//! whole source batch into one-row batches on the first `next` held a
//! batch (with arrays of its own) for every row of it, in every scan.

use corral_guest::bindings::corral::transform::types::ScanRequest;
use corral_guest::{Context, Result, bail};

use crate::common::{passthrough, raw_open_scan};

/// Scans held open: one under the host's limit of 16, leaving one for the
/// good path.
const SCANS: usize = 15;

/// One-row batches from [`SCANS`] scans, then the iteration's rows.
pub fn run(ctx: &Context) -> Result<()> {
    hold_scans(ScanRequest { columns: None, filter: Vec::new(), batch_rows: Some(1) }, || passthrough(ctx))
}

/// Opens [`SCANS`] scans of `request`, takes a batch of each and, with
/// them all open, runs `then`.
pub fn hold_scans(request: ScanRequest, then: impl FnOnce() -> Result<()>) -> Result<()> {
    let mut held = Vec::new();
    for _ in 0..SCANS {
        let scan = raw_open_scan(&request)?;
        if scan.next().is_none() {
            bail!("a scan of the whole config gave no batch");
        }
        held.push(scan);
    }
    then()
}

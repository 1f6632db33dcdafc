//! `scan-copy-hoard`: opens all but one of the scans the host allows, with a filter
//! that drops one row (so the host filters each source batch into a copy)
//! and batches of one row, takes one batch of each and keeps them all open.
//! The copies the host holds for the open scans count against the
//! iteration's memory: past its cap the iteration fails as `memory_limit`.

use corral_guest::bindings::corral::transform::types::{ComparisonOp, Literal, ScanRequest};
use corral_guest::{Context, Result};

use super::scan_row_batches::hold_scans;
use crate::common::{comparison, passthrough};

/// One-row batches of `id != 0` from 15 scans, then the iteration's rows.
pub fn run(ctx: &Context) -> Result<()> {
    let request = ScanRequest {
        columns: None,
        filter: vec![comparison("id", ComparisonOp::Ne, Literal::Int(0))],
        batch_rows: Some(1),
    };
    hold_scans(request, || passthrough(ctx))
}

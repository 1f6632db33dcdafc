//! `scan-many-comparisons`: a filter of 1,000,000 comparisons.

use corral_guest::bindings::corral::transform::types::{ComparisonOp, Literal, ScanRequest};
use corral_guest::{Context, Result};

use crate::common::{accepted, comparison, raw_open_scan};

/// Returns the host's refusal of the scan (or reads what it gives, and fails).
pub fn run(ctx: &Context) -> Result<()> {
    let filter = vec![comparison("some_column", ComparisonOp::Eq, Literal::Int(ctx.iteration())); 1_000_000];
    let request = ScanRequest { columns: Some(vec!["id".to_owned()]), filter, batch_rows: None };
    let scan = raw_open_scan(&request)?;
    accepted("a filter of 1,000,000 comparisons", scan)
}

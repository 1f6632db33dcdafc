//! `scan-huge-literal`: a comparison with a text literal of 10 MB.

use corral_guest::bindings::corral::transform::types::{ComparisonOp, Literal, ScanRequest};
use corral_guest::{Context, Result};

use crate::common::{accepted, comparison, raw_open_scan};

/// Returns the host's refusal of the scan (or reads what it gives, and fails).
pub fn run(_: &Context) -> Result<()> {
    let literal = Literal::Text("n".repeat(10_000_000));
    let request = ScanRequest {
        columns: Some(vec!["id".to_owned()]),
        filter: vec![comparison("name", ComparisonOp::Eq, literal)],
        batch_rows: None,
    };
    let scan = raw_open_scan(&request)?;
    accepted("a text literal of 10 MB", scan)
}

//! `scan-dup-columns`: a projection naming `id` 1,000,000 times.

use corral_guest::bindings::corral::transform::types::ScanRequest;
use corral_guest::{Context, Result};

use crate::common::{accepted, raw_open_scan};

/// Returns the host's refusal of the scan (or reads what it gives, and fails).
pub fn run(_: &Context) -> Result<()> {
    let request = ScanRequest { columns: Some(vec!["id".to_owned(); 1_000_000]), filter: Vec::new(), batch_rows: None };
    let scan = raw_open_scan(&request)?;
    accepted("a projection of 1,000,000 columns", scan)
}

//! `scan-long-name`: a projection naming a column of 1 MiB (no such column:
//! a host that echoes it in its error would echo a megabyte).

use corral_guest::bindings::corral::transform::types::ScanRequest;
use corral_guest::{Context, Result};

use crate::common::{accepted, raw_open_scan};

/// Returns the host's refusal of the scan (or reads what it gives, and fails).
pub fn run(_: &Context) -> Result<()> {
    let request = ScanRequest { columns: Some(vec!["c".repeat(1 << 20)]), filter: Vec::new(), batch_rows: None };
    let scan = raw_open_scan(&request)?;
    accepted("a column name of 1 MiB", scan)
}

//! `scan-hoard`: opens scans in a loop and keeps every one, until the host
//! refuses one; returns that refusal.

use corral_guest::bindings::corral::transform::types::ScanRequest;
use corral_guest::{Context, Result, bail};

use crate::common::raw_open_scan;

/// Scans opened before giving up on the host ever refusing.
const MOST: usize = 1_000_000;

/// Returns the error of the first `open-scan` that fails.
pub fn run(_: &Context) -> Result<()> {
    let request = ScanRequest { columns: Some(vec!["id".to_owned()]), filter: Vec::new(), batch_rows: Some(1) };
    let mut hoard = Vec::new();
    while hoard.len() < MOST {
        match raw_open_scan(&request) {
            Ok(scan) => hoard.push(scan),
            Err(refused) => return Err(refused.context(format!("after {} open scans", hoard.len()))),
        }
    }
    bail!("the host let {MOST} scans be open at once")
}

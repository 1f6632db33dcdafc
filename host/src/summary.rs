//! The summary printed at the end of a run: totals, then a table of the
//! iterations with failed ones first.

use std::fmt::Write as _;

use crate::manifest::{Manifest, Status};

/// Rows of the table when every iteration succeeded (failures are all shown).
const MAX_ROWS: usize = 50;

/// Renders the end-of-run summary as plain text.
pub fn render(manifest: &Manifest, manifest_location: &str) -> String {
    let s = &manifest.summary;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {}/{} succeeded, {} failed, {} interrupted in {:.2}s",
        manifest.job.name,
        s.succeeded,
        s.total,
        s.failed,
        s.interrupted,
        s.wall_ms as f64 / 1000.0
    );
    if manifest.job.resumed {
        let _ = writeln!(out, "resumed: {} carried over from the earlier run, {} run now", s.carried_over, s.total - s.carried_over);
    }
    if manifest.job.storage_retries > 0 {
        let _ = writeln!(
            out,
            "storage: {} requests, {} retried (throttling, server errors, resets)",
            manifest.job.storage_requests, manifest.job.storage_retries
        );
    }
    let mut rows: Vec<_> = manifest.iterations.iter().collect();
    rows.sort_by_key(|r| (r.status == Status::Succeeded, r.iteration));
    let _ = writeln!(
        out,
        "{:>10}  {:<11} {:>9} {:>10} {:>10} {:>14} {:>10}  {}",
        "iteration", "status", "wall", "rows in", "rows out", "fuel", "peak mem", "error"
    );
    // Every failure, but not thousands of successes.
    let failures = rows.iter().filter(|r| r.status != Status::Succeeded).count();
    let shown = rows.len().min(failures.max(MAX_ROWS));
    let hidden = rows.len() - shown;
    for r in rows.into_iter().take(shown) {
        let status = match r.status {
            Status::Succeeded if r.carried_over => "carried",
            Status::Succeeded => "succeeded",
            Status::Failed => "FAILED",
            Status::Interrupted => "interrupted",
        };
        let error = r.error.as_ref().map(|e| {
            let first = e.message.lines().next().unwrap_or_default();
            let first: String = first.chars().take(100).collect();
            format!("{}: {first}", e.kind)
        });
        let _ = writeln!(
            out,
            "{:>10}  {:<11} {:>8.2}s {:>10} {:>10} {:>14} {:>10}  {}",
            r.iteration,
            status,
            r.wall_ms as f64 / 1000.0,
            r.rows_in,
            r.rows_out,
            r.fuel_used,
            bytesize::ByteSize(r.peak_memory_bytes).display().iec_short().to_string(),
            error.unwrap_or_default()
        );
    }
    if hidden > 0 {
        let _ = writeln!(out, "{:>10}  … and {hidden} more succeeded (all are in the manifest)", "");
    }
    let _ = writeln!(out, "manifest: {manifest_location}");
    out
}

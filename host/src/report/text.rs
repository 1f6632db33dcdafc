//! The text report: the job, the totals, how busy each worker slot was,
//! the slowest iterations and every failure in full.

use std::fmt::Write as _;

use crate::manifest::{IterationRecord, Manifest, Status};

/// Iterations listed as the slowest.
const SLOWEST: usize = 5;

/// Renders `manifest` (read from `location`) for the terminal.
pub fn render(manifest: &Manifest, location: &str) -> String {
    let job = &manifest.job;
    let s = &manifest.summary;
    let mut out = String::new();
    let _ = writeln!(out, "run {} ({location})", job.name);
    let _ = writeln!(out, "  started   {}  finished {}", job.started, job.finished);
    let _ = writeln!(out, "  module    {} (sha256 {})", job.module, job.module_sha256);
    let _ = writeln!(out, "  config    {} ({} rows)", job.config, job.config_rows);
    let _ = writeln!(
        out,
        "  result    {}/{} succeeded, {} failed, {} interrupted in {:.2}s on {} worker slots; host peak RSS {}",
        s.succeeded,
        s.total,
        s.failed,
        s.interrupted,
        s.wall_ms as f64 / 1000.0,
        job.concurrency,
        bytes(job.peak_rss_bytes)
    );
    if s.carried_over > 0 {
        let _ = writeln!(out, "  resumed   {} carried over from an earlier run", s.carried_over);
    }

    let ran: Vec<&IterationRecord> = manifest.iterations.iter().filter(|r| !r.carried_over).collect();
    let _ = writeln!(out, "\nworker slots (busy time / run time):");
    for (slot, busy_ms, count) in slot_use(&ran, job.concurrency) {
        let share = if s.wall_ms == 0 { 0.0 } else { busy_ms as f64 / s.wall_ms as f64 };
        let bar = "#".repeat((share * 40.0).round().clamp(0.0, 40.0) as usize);
        let _ = writeln!(out, "  {slot:>3}  {bar:<40}  {:>5.1}%  {count} iterations", share * 100.0);
    }

    let mut slowest = ran.clone();
    slowest.sort_by_key(|r| std::cmp::Reverse(r.wall_ms));
    let _ = writeln!(out, "\nslowest iterations:");
    for r in slowest.iter().take(SLOWEST) {
        let _ = writeln!(
            out,
            "  {:>8}  {:>8.2}s  {:>10} rows in  {:>10} rows out  fuel {:>14}  peak memory {}",
            r.iteration,
            r.wall_ms as f64 / 1000.0,
            r.rows_in,
            r.rows_out,
            r.fuel_used,
            bytes(r.peak_memory_bytes)
        );
    }

    let failures: Vec<&IterationRecord> = manifest.iterations.iter().filter(|r| r.status != Status::Succeeded).collect();
    if failures.is_empty() {
        let _ = writeln!(out, "\nno failures");
    } else {
        let _ = writeln!(out, "\nfailures ({}):", failures.len());
        for r in failures {
            let (kind, message, stderr) = match &r.error {
                Some(e) => (e.kind.to_string(), e.message.as_str(), e.stderr_tail.as_deref()),
                None => ("unknown".to_owned(), "", None),
            };
            let _ = writeln!(out, "  iteration {} — {kind}", r.iteration);
            for line in message.lines() {
                let _ = writeln!(out, "    {line}");
            }
            if let Some(stderr) = stderr.filter(|t| !t.trim().is_empty()) {
                let _ = writeln!(out, "    stderr (tail):");
                for line in stderr.lines() {
                    let _ = writeln!(out, "      | {line}");
                }
            }
        }
    }
    out
}

/// Per worker slot: busy milliseconds and iterations run.
pub fn slot_use(records: &[&IterationRecord], slots: usize) -> Vec<(usize, u64, usize)> {
    let slots = slots.max(records.iter().map(|r| r.worker + 1).max().unwrap_or(0));
    (0..slots)
        .map(|slot| {
            let on: Vec<_> = records.iter().filter(|r| r.worker == slot && r.wall_ms > 0).collect();
            (slot, on.iter().map(|r| r.wall_ms).sum(), on.len())
        })
        .collect()
}

pub(crate) fn bytes(n: u64) -> String {
    bytesize::ByteSize(n).display().iec_short().to_string()
}

//! The text report: the job, the totals, how busy each worker slot was,
//! the slowest iterations and every failure in full.
//!
//! A manifest may have been written by anything, and a guest's message and
//! stderr are in it: every string of it is printed inert ([`text::line`],
//! line by line), so no control character or bidi override reaches the
//! terminal raw and no guest line can pass for a line of the report.

use std::fmt::Write as _;

use crate::guest_input::text;
use crate::manifest::{IterationRecord, Manifest, Status};

/// Iterations listed as the slowest.
const SLOWEST: usize = 5;

/// Renders `manifest` (read from `location`) for the terminal.
pub fn render(manifest: &Manifest, location: &str) -> String {
    let job = &manifest.job;
    let s = &manifest.summary;
    let mut out = String::new();
    let _ = writeln!(out, "run {} ({location})", inert(&job.name));
    let _ = writeln!(out, "  started   {}  finished {}", inert(&job.started), inert(&job.finished));
    let _ = writeln!(out, "  module    {} (sha256 {})", inert(&job.module), inert(&job.module_sha256));
    let _ = writeln!(out, "  config    {} ({} rows)", inert(&job.config), job.config_rows);
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
                let _ = writeln!(out, "    {}", inert(line));
            }
            if let Some(stderr) = stderr.filter(|t| !t.trim().is_empty()) {
                let _ = writeln!(out, "    stderr (tail):");
                for line in stderr.lines() {
                    let _ = writeln!(out, "      | {}", inert(line));
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

/// One line of a manifest string, inert and not cut (what the manifest
/// holds is already bounded when it is written).
fn inert(line: &str) -> String {
    text::line(line, usize::MAX)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::guest_input::text::is_raw_control;
    use crate::manifest::{ErrorKind, IterationError};

    pub(crate) const FORGED: &str = "2026-12-04T00:00:00Z INFO iteration{iteration=3}: iteration succeeded";

    /// A manifest whose strings hold `\r`, an OSC 52, a bidi override and a
    /// forged log line.
    pub(crate) fn hostile() -> Manifest {
        let evil = format!("bad\rworse \x1b]52;c;aGk=\x07 \u{202e}gnp.exe\n{FORGED}\u{2028}{FORGED}\r\n\t{FORGED}\x1b[2J\u{9b}");
        let error = IterationError { kind: ErrorKind::Trap, message: evil.clone(), stderr_tail: Some(evil.clone()) };
        crate::manifest::test_manifest(&evil, &evil, error)
    }

    #[test]
    fn a_hostile_manifest_prints_inert() {
        let out = render(&hostile(), "out/_manifest.json");
        assert!(!out.chars().any(|c| is_raw_control(c, false) && c != '\n'), "{out:?}");
        assert!(out.lines().all(|l| !l.starts_with(FORGED) && !l.starts_with("2026-")), "{out}");
        // The message and the stderr tail are shown, line by line, escaped.
        assert!(out.contains("\n    bad\\rworse \\u{1b}]52;c;aGk=\\u{7} \\u{202e}gnp.exe\n"), "{out}");
        assert!(out.contains(&format!("\n    {FORGED}\\u{{2028}}{FORGED}\n    \\t{FORGED}\\u{{1b}}[2J\\u{{9b}}\n")), "{out}");
        assert!(out.contains(&format!("\n      | {FORGED}\\u{{2028}}")), "{out}");
        assert!(out.starts_with("run bad\\rworse \\u{1b}]52;c;aGk=\\u{7} \\u{202e}gnp.exe\\n2026-"), "{out}");
    }

    #[test]
    fn plain_text_is_unchanged() {
        let mut m = hostile();
        let e = m.iterations[1].error.as_mut().unwrap();
        e.message = "panicked at src/lib.rs:3:5:\nindex out of bounds".into();
        e.stderr_tail = Some("thread 'main' panicked\nnote: run with `RUST_BACKTRACE=1`".into());
        m.job.name = "nightly — ünï".into();
        let out = render(&m, "m");
        assert!(out.starts_with("run nightly — ünï (m)\n"), "{out}");
        assert!(out.contains("    panicked at src/lib.rs:3:5:\n    index out of bounds\n"), "{out}");
        assert!(out.contains("      | thread 'main' panicked\n      | note: run with `RUST_BACKTRACE=1`\n"), "{out}");
    }
}

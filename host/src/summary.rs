//! The summary printed at the end of a run: totals, then a table of the
//! iterations with failed ones first.
//!
//! The strings of the manifest (a guest's error message above all, but a
//! manifest read back from storage may have been written by anything) are
//! printed inert ([`text::line`]): no control character or bidi override
//! reaches the terminal raw, and no message can start a line of its own.

use std::fmt::Write as _;

use crate::guest_input::text;
use crate::manifest::{Manifest, Status};

/// Rows of the table when every iteration succeeded (failures are all shown).
const MAX_ROWS: usize = 50;
/// Chars of an error message's first line shown in the table.
const ERROR_CHARS: usize = 100;

/// Renders the end-of-run summary as plain text.
pub fn render(manifest: &Manifest, manifest_location: &str) -> String {
    let s = &manifest.summary;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {}/{} succeeded, {} failed, {} interrupted in {:.2}s",
        text::line(&manifest.job.name, usize::MAX),
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
        let error = r.error.as_ref().map(|e| format!("{}: {}", e.kind, first_line(&e.message)));
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

/// The first line of `message`, its first [`ERROR_CHARS`] chars, inert.
fn first_line(message: &str) -> String {
    let first = message.split('\n').next().unwrap_or_default();
    let first = first.strip_suffix('\r').unwrap_or(first);
    let end = first.char_indices().nth(ERROR_CHARS).map_or(first.len(), |(at, _)| at);
    // An escaped char takes at most 8 bytes: the cap never cuts.
    text::line(&first[..end], ERROR_CHARS * 8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest_input::text::is_raw_control;
    use crate::manifest::{ErrorKind, IterationError};

    const FORGED: &str = "2026-12-04T00:00:00Z INFO iteration{iteration=3}: iteration succeeded";

    fn manifest(name: &str, message: &str) -> Manifest {
        let error = IterationError { kind: ErrorKind::GuestError, message: message.into(), stderr_tail: None };
        crate::manifest::test_manifest(name, "", error)
    }

    #[test]
    fn a_hostile_message_is_inert() {
        let message = format!("bad\r{FORGED} \x1b]52;c;aGk=\x07 \u{202e}gnp.exe\u{2028}{FORGED}\n{FORGED}");
        let out = render(&manifest("job\x1b[2J\r", &message), "out/_manifest.json");
        assert!(!out.chars().any(|c| is_raw_control(c, false) && c != '\n'), "{out:?}");
        assert!(out.lines().all(|l| !l.starts_with(FORGED)), "{out}");
        assert!(out.starts_with("job\\u{1b}[2J\\r: "), "{out}");
        let row = out.lines().find(|l| l.trim_start().starts_with('2')).unwrap();
        assert!(row.ends_with(&format!("guest_error: {}", text::line(&message.chars().take(100).collect::<String>(), 1000))), "{row}");
        // Only the first line is shown, and only its first 100 chars.
        assert_eq!(out.matches("iteration{iteration=3}").count(), 1, "{out}");
    }

    #[test]
    fn the_error_column_shows_the_first_line_cut_to_100_chars() {
        let message = format!("{}\r\nsecond line", "é".repeat(150));
        let out = render(&manifest("job", &message), "m");
        let row = out.lines().find(|l| l.trim_start().starts_with('2')).unwrap();
        assert!(row.ends_with(&format!("guest_error: {}", "é".repeat(100))), "{row}");
        assert!(!out.contains("second line"));
        let out = render(&manifest("job", "short\r\nsecond"), "m");
        assert!(out.contains("guest_error: short\n"), "{out}");
    }
}

//! How much guest text (failure messages and stderr tails) a run keeps in
//! memory for its manifest: every failed iteration's record holds up to
//! about 24 KiB of it until the run ends, so a guest failing every
//! iteration of a long run on purpose would make the host hold that much
//! per iteration. Past a run-wide budget, a record keeps the head of its
//! message and points to its full record under `_records/`.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::manifest::{IterationRecord, record_path};

/// Guest text a run keeps whole in its records: about 2,700 failures with
/// the longest message and stderr tail, far more of ordinary ones.
pub(super) const RETAINED_GUEST_TEXT: u64 = 64 << 20;

/// What a record keeps of its message once the budget is spent.
pub(super) const SHORT_MESSAGE: usize = 512;

/// The run's budget of guest text kept in its records.
#[derive(Debug)]
pub(super) struct RetainedText {
    budget: u64,
    used: AtomicU64,
}

impl RetainedText {
    /// A budget of `budget` bytes.
    pub(super) fn new(budget: u64) -> Self {
        RetainedText { budget, used: AtomicU64::new(0) }
    }

    /// Counts the guest text of `record` against the budget; once it is
    /// spent, cuts the record's message to its first [`SHORT_MESSAGE`]
    /// bytes and drops its stderr tail, each with a note naming the
    /// record's file under `_records/`, which keeps the whole.
    pub(super) fn keep(&self, record: &mut IterationRecord) {
        let Some(error) = &mut record.error else { return };
        let size = (error.message.len() + error.stderr_tail.as_ref().map_or(0, String::len)) as u64;
        let used = self.used.fetch_add(size, Ordering::Relaxed).saturating_add(size);
        if used <= self.budget {
            return;
        }
        let full_record = record_path(&object_store::path::Path::default(), record.iteration);
        let note = format!(
            "[the run's records keep little text past {} MiB of guest text: the whole is in {full_record} of the output]",
            self.budget >> 20
        );
        if error.message.len() > SHORT_MESSAGE {
            error.message.truncate(error.message.floor_char_boundary(SHORT_MESSAGE));
            error.message.push_str(" ... ");
            error.message.push_str(&note);
        }
        if error.stderr_tail.is_some() {
            error.stderr_tail = Some(note);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::Inputs;
    use crate::manifest::{ErrorKind, IterationError, Status};

    fn failed(message: String, stderr: Option<String>) -> IterationRecord {
        let mut record = IterationRecord::new(7, &Inputs::default());
        record.status = Status::Failed;
        record.error = Some(IterationError { kind: ErrorKind::GuestError, message, stderr_tail: stderr });
        record
    }

    #[test]
    fn records_keep_their_text_until_the_budget_then_a_head_and_where_the_rest_is() {
        let retained = RetainedText::new(100 << 10);
        let long = "é".repeat(8 << 10); // 16 KiB of two-byte chars
        let mut kept = 0;
        for _ in 0..20 {
            let mut record = failed(long.clone(), Some("x".repeat(8 << 10)));
            retained.keep(&mut record);
            let error = record.error.unwrap();
            if error.message == long {
                kept += 1;
                assert_eq!(error.stderr_tail.as_deref().map(str::len), Some(8 << 10));
            } else {
                assert!(error.message.len() < SHORT_MESSAGE + 200, "{}", error.message.len());
                assert!(error.message.starts_with(&long[..SHORT_MESSAGE]), "the head is kept, cut at a char boundary");
                assert!(error.message.ends_with("the whole is in _records/iter_7.json of the output]"), "{}", error.message);
                assert!(error.stderr_tail.unwrap().contains("_records/iter_7.json"));
            }
        }
        // 24 KiB each: four fit in 100 KiB, the fifth is over.
        assert_eq!(kept, 4);
        // Successes and short messages are left alone.
        let mut short = failed("short".into(), None);
        retained.keep(&mut short);
        assert_eq!(short.error.unwrap().message, "short");
        let mut ok = IterationRecord::new(1, &Inputs::default());
        retained.keep(&mut ok);
        assert!(ok.error.is_none());
    }
}

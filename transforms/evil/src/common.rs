//! What attacks share: the good path (copy the iteration's rows), a small
//! batch, and the host's raw calls, which go around the SDK's checks.

use std::sync::Arc;

use corral_guest::arrow_array::{Int64Array, RecordBatch};
use corral_guest::arrow_schema::{DataType, Field, Schema};
use corral_guest::bindings::corral::transform::host;
use corral_guest::bindings::corral::transform::types as wit;
use corral_guest::{Context, Result, anyhow, col, emit, scan};

/// The good path: the iteration's rows (`some_column == N`), three
/// columns, as they are.
pub fn passthrough(ctx: &Context) -> Result<()> {
    let batches = scan().select(["id", "some_column", "value"]).filter(col("some_column").eq(ctx.iteration())).open()?;
    copy_rows(batches)
}

/// Emits every batch of an open scan (an empty batch of its schema if it
/// has none), as the good path does.
pub fn copy_rows(batches: corral_guest::Batches) -> Result<()> {
    let schema = batches.schema();
    let mut emitted = false;
    for batch in batches {
        emit(&batch?)?;
        emitted = true;
    }
    if !emitted {
        emit(&RecordBatch::new_empty(schema))?;
    }
    Ok(())
}

/// One Int64 column `x` of `rows` rows, 0, 1, 2, ...
pub fn small_batch(rows: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(0..rows as i64))]).expect("valid batch")
}

/// Hands `bytes` to the host's `emit` as they are: no encoding, no
/// splitting.
pub fn raw_emit(bytes: &[u8]) -> Result<()> {
    host::emit(bytes).map_err(|e| anyhow!("the host refused the output: {e}"))
}

/// Opens a scan with the raw binding; the host's refusal is the error, as
/// it is (the tests look for its words).
pub fn raw_open_scan(request: &wit::ScanRequest) -> Result<host::Scan> {
    host::open_scan(request).map_err(corral_guest::Error::msg)
}

/// The host accepted a request it should have refused: read what it
/// gives (the damage to the host is what the tests measure), then fail
/// with a message saying so, which the tests will not mistake for a
/// refusal.
pub fn accepted(what: &str, scan: host::Scan) -> Result<()> {
    let (mut batches, mut bytes) = (0u64, 0u64);
    while let Some(batch) = scan.next() {
        batches += 1;
        bytes += batch.len() as u64;
    }
    corral_guest::bail!("the host accepted {what} (it gave {batches} batches, {bytes} bytes)")
}

/// `column op value` for the raw binding.
pub fn comparison(column: &str, op: wit::ComparisonOp, value: wit::Literal) -> wit::Comparison {
    wit::Comparison { column: column.to_owned(), op, value }
}

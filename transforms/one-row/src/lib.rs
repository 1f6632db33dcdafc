//! Emits one small batch and reads nothing: a row `(iteration, label)`
//! for its iteration. The benchmark's per-iteration overhead case runs it,
//! so that what it measures is the sandbox and the output, not a scan.

use std::sync::Arc;

use corral_guest::arrow_array::{Int64Array, RecordBatch, StringArray};
use corral_guest::arrow_schema::{DataType, Field, Schema};
use corral_guest::{Context, Result, emit};

/// Emits the iteration's one row.
pub fn run(ctx: &Context) -> Result<()> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("iteration", DataType::Int64, false),
        Field::new("label", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![ctx.iteration()])),
            Arc::new(StringArray::from(vec![format!("iteration {}", ctx.iteration())])),
        ],
    )?;
    emit(&batch)
}

corral_guest::export!(run);

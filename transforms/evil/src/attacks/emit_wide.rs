//! `emit-wide`: an honest batch of 100 Int64 columns by 10,000 rows (8 MB),
//! through the SDK: it succeeds.

use std::sync::Arc;

use corral_guest::arrow_array::{ArrayRef, Int64Array, RecordBatch};
use corral_guest::arrow_schema::{DataType, Field, Schema};
use corral_guest::{Context, Result, emit};

/// Columns of the batch.
pub const COLUMNS: usize = 100;
/// Rows of the batch.
pub const ROWS: i64 = 10_000;

/// Emits columns `c0..c99`, `c{j}` of row `i` being `i * 100 + j`.
pub fn run(_: &Context) -> Result<()> {
    let fields: Vec<Field> = (0..COLUMNS).map(|j| Field::new(format!("c{j}"), DataType::Int64, false)).collect();
    let columns: Vec<ArrayRef> = (0..COLUMNS as i64)
        .map(|j| Arc::new(Int64Array::from_iter_values((0..ROWS).map(|i| i * COLUMNS as i64 + j))) as ArrayRef)
        .collect();
    emit(&RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

//! `emit-huge-honest`: one honest batch of 200 MB (two Int64 columns of
//! 12,500,000 rows) through the SDK's `emit`, which splits it under the
//! host's per-call limit: it succeeds.

use std::sync::Arc;

use corral_guest::arrow_array::{Int64Array, RecordBatch};
use corral_guest::arrow_schema::{DataType, Field, Schema};
use corral_guest::{Context, Result, emit};

/// Rows of the batch: 2 x 8 bytes each, 200 MB.
pub const ROWS: i64 = 12_500_000;

/// Emits `id` 0.. and `twice` = 2 * id in one call of the SDK.
pub fn run(_: &Context) -> Result<()> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("twice", DataType::Int64, false),
    ]));
    let id = Int64Array::from_iter_values(0..ROWS);
    let twice = Int64Array::from_iter_values((0..ROWS).map(|i| 2 * i));
    emit(&RecordBatch::try_new(schema, vec![Arc::new(id), Arc::new(twice)])?)
}

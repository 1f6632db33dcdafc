//! `emit-union`: a batch with a Union column, which Arrow IPC carries and
//! Parquet cannot store (the host's writer must refuse it, not panic).

use std::sync::Arc;

use arrow_ipc::writer::IpcWriteOptions;
use corral_guest::arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, UnionArray};
use corral_guest::arrow_buffer::ScalarBuffer;
use corral_guest::arrow_schema::{DataType, Field, Schema, UnionFields, UnionMode};
use corral_guest::{Context, Result};

use crate::common::raw_emit;
use crate::ipc;

/// The name of the union column (the host's error names it).
pub const FIELD: &str = "evil_union";

/// Emits `id: Int64, evil_union: Union(Int32, Utf8)` of 4 rows.
pub fn run(_: &Context) -> Result<()> {
    let fields = UnionFields::try_new(
        vec![0, 1],
        vec![Field::new("i", DataType::Int32, true), Field::new("s", DataType::Utf8, true)],
    )?;
    let children: Vec<ArrayRef> =
        vec![Arc::new(Int32Array::from(vec![1, 2, 3, 4])), Arc::new(StringArray::from(vec!["a", "b", "c", "d"]))];
    let union = UnionArray::try_new(fields.clone(), ScalarBuffer::from(vec![0i8, 1, 0, 1]), None, children)?;
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new(FIELD, DataType::Union(fields, UnionMode::Sparse), false),
    ]);
    let batch = RecordBatch::try_new(Arc::new(schema.clone()), vec![Arc::new(Int64Array::from(vec![1, 2, 3, 4])), Arc::new(union)])?;
    raw_emit(&ipc::stream(&schema, &[batch], IpcWriteOptions::default())?)
}

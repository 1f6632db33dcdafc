//! `emit-dictionary-bomb`: a `Dictionary<Int32, Utf8>` column of 1,000,000
//! keys that all point at one 1 MB value: 5 MB of IPC, a terabyte of
//! strings once decoded row by row.

use std::sync::Arc;

use arrow_ipc::writer::IpcWriteOptions;
use corral_guest::arrow_array::{Array, DictionaryArray, Int32Array, RecordBatch, StringArray, types::Int32Type};
use corral_guest::arrow_schema::{Field, Schema};
use corral_guest::{Context, Result};

use crate::common::raw_emit;
use crate::ipc;

/// Emits the bomb as one stream.
pub fn run(_: &Context) -> Result<()> {
    let values = StringArray::from(vec!["d".repeat(1_000_000)]);
    let keys = Int32Array::from(vec![0; 1_000_000]);
    let dictionary = DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values))?;
    let schema = Schema::new(vec![Field::new("bomb", dictionary.data_type().clone(), false)]);
    let batch = RecordBatch::try_new(Arc::new(schema.clone()), vec![Arc::new(dictionary)])?;
    raw_emit(&ipc::stream(&schema, &[batch], IpcWriteOptions::default())?)
}

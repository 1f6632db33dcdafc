//! `emit-delta-dictionary`: one stream of a dictionary, then 10,000 delta
//! dictionary batches (arrow concatenates the dictionary at each one:
//! quadratic work and memory for the reader), then a record batch.

use std::sync::Arc;

use arrow_ipc::writer::{DictionaryHandling, IpcWriteOptions};
use corral_guest::arrow_array::builder::StringDictionaryBuilder;
use corral_guest::arrow_array::{RecordBatch, types::Int32Type};
use corral_guest::arrow_schema::{DataType, Field, Schema};
use corral_guest::{Context, Result, ensure};

use crate::common::raw_emit;
use crate::ipc::{self, END_OF_STREAM};

/// Delta dictionary batches in the stream.
const DELTAS: usize = 10_000;

/// Emits the stream.
pub fn run(_: &Context) -> Result<()> {
    let schema = Schema::new(vec![Field::new(
        "name",
        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
        false,
    )]);
    // Arrow's writer sends the second batch's new value as a delta.
    let mut builder = StringDictionaryBuilder::<Int32Type>::new();
    builder.append("first")?;
    let first = RecordBatch::try_new(Arc::new(schema.clone()), vec![Arc::new(builder.finish_preserve_values())])?;
    builder.append("first")?;
    builder.append("delta")?;
    let second = RecordBatch::try_new(Arc::new(schema.clone()), vec![Arc::new(builder.finish_preserve_values())])?;
    let options = IpcWriteOptions::default().with_dictionary_handling(DictionaryHandling::Delta);
    let written = ipc::stream(&schema, &[first, second], options)?;
    // schema, dictionary, batch, delta dictionary, batch.
    let messages = ipc::messages(&written)?;
    ensure!(messages.len() == 5, "arrow wrote {} messages, not 5", messages.len());
    let part = |i: usize| &written[messages[i].whole.clone()];
    let mut stream = Vec::with_capacity(written.len() + DELTAS * part(3).len());
    stream.extend_from_slice(part(0));
    stream.extend_from_slice(part(1));
    for _ in 0..DELTAS {
        stream.extend_from_slice(part(3));
    }
    stream.extend_from_slice(part(4));
    stream.extend_from_slice(&END_OF_STREAM);
    raw_emit(&stream)
}

//! `ipc-truncated-body`: a real stream cut in the middle of its record
//! batch's body (no end marker).

use std::sync::Arc;

use arrow_ipc::writer::IpcWriteOptions;
use corral_guest::arrow_array::{Int64Array, RecordBatch};
use corral_guest::arrow_schema::{DataType, Field, Schema};
use corral_guest::{Context, Result, ensure};

use crate::common::raw_emit;
use crate::ipc;

/// Emits the stream up to half of the batch's body.
pub fn run(_: &Context) -> Result<()> {
    let schema = Schema::new(vec![Field::new("id", DataType::Int64, false)]);
    let batch = RecordBatch::try_new(Arc::new(schema.clone()), vec![Arc::new(Int64Array::from_iter_values(0..1234))])?;
    let stream = ipc::stream(&schema, &[batch], IpcWriteOptions::default())?;
    let messages = ipc::messages(&stream)?;
    ensure!(messages.len() == 2, "arrow wrote {} messages, not 2", messages.len());
    let body = &messages[1].body;
    raw_emit(&stream[..body.start + body.len() / 2])
}

//! `emit-metadata-bomb`: a batch of no columns and one row whose schema
//! metadata holds 4 MB, emitted 1000 times (4 GB of metadata if the host
//! kept each).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_ipc::writer::IpcWriteOptions;
use corral_guest::arrow_array::{RecordBatch, RecordBatchOptions};
use corral_guest::arrow_schema::Schema;
use corral_guest::{Context, Result};

use crate::common::raw_emit;
use crate::ipc;

/// Emits the same 4 MB stream 1000 times, until the host refuses one.
pub fn run(_: &Context) -> Result<()> {
    let metadata = HashMap::from([("bomb".to_owned(), "m".repeat(4_000_000))]);
    let schema = Schema::new_with_metadata(Vec::<corral_guest::arrow_schema::Field>::new(), metadata);
    let batch = RecordBatch::try_new_with_options(
        Arc::new(schema.clone()),
        Vec::new(),
        &RecordBatchOptions::new().with_row_count(Some(1)),
    )?;
    let bytes = ipc::stream(&schema, &[batch], IpcWriteOptions::default())?;
    for _ in 0..1000 {
        raw_emit(&bytes)?;
    }
    Ok(())
}

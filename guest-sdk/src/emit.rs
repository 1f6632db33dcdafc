//! Writing output: each emitted batch is appended to the iteration's output.

use anyhow::{Result, anyhow};
use arrow_array::RecordBatch;

use crate::{ipc, sys};

/// Appends `batch` to this iteration's output. Every batch of an iteration
/// must have the same schema. Emit as you go: the host streams batches to
/// storage, so nothing needs to be held in the guest.
pub fn emit(batch: &RecordBatch) -> Result<()> {
    let bytes = ipc::encode(batch)?;
    sys::emit(bytes).map_err(|e| anyhow!("the host refused the output batch: {e}"))
}

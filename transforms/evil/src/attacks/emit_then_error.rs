//! `emit-then-error`: emits a batch, then fails (nothing may be committed).

use corral_guest::{Context, Result, bail, emit};

use crate::common::small_batch;

/// Emits one row, then returns an error.
pub fn run(_: &Context) -> Result<()> {
    emit(&small_batch(1))?;
    bail!("failed after emitting")
}

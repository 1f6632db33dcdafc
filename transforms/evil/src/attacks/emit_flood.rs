//! `emit-flood`: emits 8 MiB batches forever (stopped by the output caps).

use corral_guest::{Context, Result, emit};

use crate::common::small_batch;

/// Never returns Ok: emits until the host refuses.
pub fn run(_: &Context) -> Result<()> {
    let big = small_batch(1 << 20);
    loop {
        emit(&big)?;
    }
}

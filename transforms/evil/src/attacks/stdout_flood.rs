//! `stdout-flood`: writes 100 MiB to stdout, then succeeds.

use corral_guest::{Context, Result, emit};

use crate::common::small_batch;

/// 100 Ki lines of 1 KiB, then one row.
pub fn run(_: &Context) -> Result<()> {
    let line = "x".repeat(1023);
    for _ in 0..100 * 1024 {
        println!("{line}");
    }
    emit(&small_batch(1))?;
    Ok(())
}

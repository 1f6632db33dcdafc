//! `scan-huge-batch-rows`: asks for batches of `u32::MAX` rows (the host
//! clamps it), then copies its rows as the good path does: it succeeds.

use corral_guest::{Context, Result, col, scan};

use crate::common::copy_rows;

/// The good path with `batch-rows = u32::MAX`.
pub fn run(ctx: &Context) -> Result<()> {
    let batches = scan()
        .select(["id", "some_column", "value"])
        .filter(col("some_column").eq(ctx.iteration()))
        .batch_rows(u32::MAX)
        .open()?;
    copy_rows(batches)
}

//! `plant`: fills 4 MiB of heap with words tagged with the iteration, for a
//! later `snoop` (in a reused sandbox slot) to look for.

use corral_guest::{Context, Result, emit};

use crate::common::small_batch;

/// The high half of the words `plant` writes; the low half is the iteration.
pub const PLANT_TAG: u64 = 0x5ec2_e7a5 << 32;

/// Writes the tagged words, frees them, emits one row.
pub fn run(ctx: &Context) -> Result<()> {
    let words = vec![PLANT_TAG | ctx.iteration() as u64 & 0xffff_ffff; (4 << 20) / 8];
    std::hint::black_box(&words);
    drop(words);
    emit(&small_batch(1))?;
    Ok(())
}

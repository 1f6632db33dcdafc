//! `snoop`: grows linear memory (without touching it) to cover where a
//! `plant` wrote, then counts the tagged words anywhere in it, before and
//! after planting 1 MiB of its own (which shows the count works).

use std::sync::Arc;

use corral_guest::arrow_array::{Int64Array, RecordBatch};
use corral_guest::arrow_schema::{DataType, Field, Schema};
use corral_guest::{Context, Result, emit};

use super::plant::PLANT_TAG;

/// The 64 KiB pages of memory `snoop` reads: more than `plant` touches.
#[cfg(target_arch = "wasm32")]
const SNOOP_PAGES: usize = 256;

/// Emits one row: `before` (words found of others) and `after`.
pub fn run(ctx: &Context) -> Result<()> {
    #[cfg(target_arch = "wasm32")]
    {
        let pages = core::arch::wasm32::memory_size(0);
        if pages < SNOOP_PAGES {
            core::arch::wasm32::memory_grow(0, SNOOP_PAGES - pages);
        }
    }
    let before = count_planted_words();
    let words = vec![PLANT_TAG | ctx.iteration() as u64 & 0xffff_ffff; (1 << 20) / 8];
    std::hint::black_box(&words);
    let after = count_planted_words();
    drop(words);
    let schema = Arc::new(Schema::new(vec![
        Field::new("before", DataType::Int64, false),
        Field::new("after", DataType::Int64, false),
    ]));
    emit(&RecordBatch::try_new(
        schema,
        vec![Arc::new(Int64Array::from(vec![before as i64])), Arc::new(Int64Array::from(vec![after as i64]))],
    )?)?;
    Ok(())
}

/// Words of the whole linear memory whose high half is [`PLANT_TAG`]'s.
fn count_planted_words() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        let bytes = core::arch::wasm32::memory_size(0) * 65536;
        (8..bytes)
            .step_by(8)
            // SAFETY: every address below the memory's size is readable in
            // Wasm; this guest reads all of its memory on purpose.
            .filter(|&address| unsafe { std::ptr::with_exposed_provenance::<u64>(address).read_volatile() } >> 32 == PLANT_TAG >> 32)
            .count()
    }
    #[cfg(not(target_arch = "wasm32"))]
    unreachable!("the evil transform runs in Wasm only")
}

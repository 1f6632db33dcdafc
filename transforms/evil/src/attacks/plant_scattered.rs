//! `plant_scattered`: writes a word tagged with the iteration at the start
//! of every other 4 KiB page of 8 MiB of heap, so that the pages it dirties
//! lie in about a thousand separate runs (wasmtime's reset used to find only
//! the first 32 runs in a scan), for a later `snoop` to look for.

use corral_guest::{Context, Result, emit};

use super::plant::PLANT_TAG;
use crate::common::small_batch;

/// The bytes of heap the pages are spread over.
const SPAN: usize = 8 << 20;
/// A host page: the tagged words are this far apart, times two.
const HOST_PAGE: usize = 4096;

/// Writes the tagged words into uninitialised heap (so that the pages in
/// between stay untouched), frees it, emits one row.
pub fn run(ctx: &Context) -> Result<()> {
    let layout = std::alloc::Layout::from_size_align(SPAN, HOST_PAGE).expect("a valid layout");
    // SAFETY: the layout is not zero-sized; the block is written only
    // within its bounds, at aligned words, and freed with the same layout.
    unsafe {
        let block = std::alloc::alloc(layout);
        assert!(!block.is_null(), "8 MiB of heap");
        for offset in (0..SPAN).step_by(2 * HOST_PAGE) {
            block.add(offset).cast::<u64>().write_volatile(PLANT_TAG | ctx.iteration() as u64 & 0xffff_ffff);
        }
        std::alloc::dealloc(block, layout);
    }
    emit(&small_batch(1))?;
    Ok(())
}

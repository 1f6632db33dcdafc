//! `memory-bomb`: allocates until the memory cap stops it.

use corral_guest::{Context, Result};

/// Never returns: allocates 16 MiB at a time, and keeps it.
pub fn run(_: &Context) -> Result<()> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 16 << 20]);
        std::hint::black_box(&hoard);
    }
}

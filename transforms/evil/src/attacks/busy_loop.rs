//! `loop`: computes forever (stopped by fuel or the timeout).

use corral_guest::{Context, Result};

/// Never returns.
pub fn run(_: &Context) -> Result<()> {
    let mut x: u64 = 1;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

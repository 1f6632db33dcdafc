//! `stack-overflow`: recurses until the stack limit traps.

use corral_guest::{Context, Result};

/// Never returns: unbounded recursion with a frame the optimiser keeps.
pub fn run(_: &Context) -> Result<()> {
    fn recurse(n: u64) -> u64 {
        let pad = std::hint::black_box([n; 64]);
        if n == u64::MAX { 0 } else { recurse(n + 1) + pad[3] }
    }
    let _ = recurse(0);
    unreachable!()
}

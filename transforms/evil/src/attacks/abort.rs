//! `abort`: `std::process::abort` (a trap).

use corral_guest::{Context, Result};

/// Aborts.
pub fn run(_: &Context) -> Result<()> {
    std::process::abort()
}

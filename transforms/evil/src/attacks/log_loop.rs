//! `log-loop`: logs forever (each line a host call).

use corral_guest::{Context, Result, info};

/// Never returns.
pub fn run(_: &Context) -> Result<()> {
    loop {
        info!("spinning");
    }
}

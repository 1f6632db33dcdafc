//! `sleep`: sleeps for an hour in a WASI call (stopped by the timeout or a
//! signal, though the guest computes nothing).

use corral_guest::{Context, Result, bail};

/// Sleeps an hour, then fails (it should have been stopped long before).
pub fn run(_: &Context) -> Result<()> {
    std::thread::sleep(std::time::Duration::from_secs(3600));
    bail!("slept an hour: nothing stopped this iteration")
}

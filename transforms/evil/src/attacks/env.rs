//! `env`: looks at the environment and arguments; fails itself if any.

use corral_guest::{Context, Result, bail, emit};

use crate::common::small_batch;

/// Succeeds (one row) only if the environment and arguments are empty.
pub fn run(_: &Context) -> Result<()> {
    let vars: Vec<_> = std::env::vars().collect();
    let args: Vec<_> = std::env::args().collect();
    if !vars.is_empty() || !args.is_empty() {
        bail!("environment is visible: {vars:?} {args:?}");
    }
    emit(&small_batch(1))?;
    Ok(())
}

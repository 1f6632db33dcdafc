//! `error`: the transform returns an error.

use corral_guest::{Context, Result, bail};

/// Fails with a guest error naming the iteration.
pub fn run(ctx: &Context) -> Result<()> {
    bail!("model diverged at iteration {}", ctx.iteration())
}

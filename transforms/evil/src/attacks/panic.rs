//! `panic`: the transform panics (a trap, with the message on stderr).

use corral_guest::{Context, Result};

/// Panics.
pub fn run(ctx: &Context) -> Result<()> {
    panic!("evil transform panics at iteration {}", ctx.iteration())
}

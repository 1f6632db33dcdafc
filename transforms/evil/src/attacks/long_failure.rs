//! `long-failure`: writes 10 KiB to stderr and fails with a 20 KB message,
//! so that its record holds as much guest text as the host keeps (16 KiB of
//! message, 8 KiB of stderr tail). Run on every iteration of a long run, it
//! shows that a run keeps only so much of such text in memory.

use corral_guest::{Context, Result, bail};

/// Fails with the most text a record keeps.
pub fn run(ctx: &Context) -> Result<()> {
    eprintln!("{}", "s".repeat(10 << 10));
    bail!("long failure of iteration {}: {}", ctx.iteration(), "m".repeat(20_000))
}

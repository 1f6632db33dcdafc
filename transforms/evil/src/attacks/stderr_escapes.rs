//! `stderr-escapes`: writes the escapes of `error-escapes` to stderr (kept
//! in the record's stderr tail), then fails.

use std::io::Write as _;

use corral_guest::{Context, Result, bail};

use super::error_escapes::ESCAPES;

/// Writes [`ESCAPES`] to stderr, with and without a line feed, then fails.
pub fn run(_: &Context) -> Result<()> {
    let mut stderr = std::io::stderr();
    writeln!(stderr, "stderr escapes: {ESCAPES}")?;
    write!(stderr, "{ESCAPES}")?;
    stderr.flush()?;
    bail!("wrote escapes to stderr")
}

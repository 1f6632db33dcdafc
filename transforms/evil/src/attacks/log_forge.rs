//! `log-forge`: log lines that try to pass for the host's own (a line feed
//! then a forged "iteration succeeded", a carriage return and an erase-line
//! escape), then the good path: it succeeds.

use corral_guest::{Context, Level, Result, log};

use crate::common::passthrough;

/// The forged host line.
pub const FORGED: &str = "2026-12-04T00:00:00.000000Z  INFO iteration{iteration=3}: iteration succeeded";

/// Logs the two forgeries, then copies the iteration's rows.
pub fn run(ctx: &Context) -> Result<()> {
    log(Level::Info, &format!("ok\n{FORGED}"));
    log(Level::Info, &format!("working\r\x1b[2K{FORGED}"));
    passthrough(ctx)
}

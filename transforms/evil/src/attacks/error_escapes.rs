//! `error-escapes`: returns an error holding terminal escapes and controls
//! (a carriage return, an OSC 52 clipboard write, a bidi override, a colour).

use corral_guest::{Context, Result, bail};

/// The hostile text: every part must be shown escaped, never raw.
pub const ESCAPES: &str = "cr[\r] osc52[\x1b]52;c;aGk=\x07] bidi[\u{202e}] red[\x1b[31m] end";

/// Fails with [`ESCAPES`] in its message.
pub fn run(_: &Context) -> Result<()> {
    bail!("escapes: {ESCAPES}")
}

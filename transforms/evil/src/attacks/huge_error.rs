//! `huge-error` and `error-over-call-limit`: return an error whose message
//! is 32 MB (under the host's per-call limit of 64 MiB: it is read, then
//! cut) or 100 MB (over it: the host refuses to read it).

use corral_guest::{Context, Result, bail};

/// Fails with "huge error: " and `size` `e`s.
fn fail_with(size: usize) -> Result<()> {
    let mut message = String::with_capacity(size + 16);
    message.push_str("huge error: ");
    message.extend(std::iter::repeat_n('e', size));
    bail!(message)
}

/// Fails with a 32 MB message.
pub fn run(_: &Context) -> Result<()> {
    fail_with(32_000_000)
}

/// Fails with a 100 MB message.
pub fn over_call_limit(_: &Context) -> Result<()> {
    fail_with(100_000_000)
}

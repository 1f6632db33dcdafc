//! `huge-error` and `error-over-call-limit`: return an error whose message
//! is 32 MB (under the host's per-call limit of 64 MiB: it is read, then
//! cut) or 80 MB (over it: the host refuses to read it).

use corral_guest::{Context, Result, bail};

/// Fails with "huge error: " and `size` `e`s, built in 1 MiB blocks (little
/// fuel) in one allocation (the SDK formats it once more: twice the size
/// must fit the guest's memory cap).
fn fail_with(size: usize) -> Result<()> {
    let block = "e".repeat(1 << 20);
    let mut message = String::with_capacity(size + 16);
    message.push_str("huge error: ");
    while message.len() + block.len() <= size {
        message.push_str(&block);
    }
    bail!(message)
}

/// Fails with a 32 MB message.
pub fn run(_: &Context) -> Result<()> {
    fail_with(32_000_000)
}

/// Fails with an 80 MB message.
pub fn over_call_limit(_: &Context) -> Result<()> {
    fail_with(80_000_000)
}

//! `emit-raw-oversize`: 200 MiB of bytes straight to the raw `emit`: over
//! the host's per-call limit, refused before it is read as IPC.

use corral_guest::{Context, Result};

use crate::common::raw_emit;

/// Emits 200 MiB of zeros in one call.
pub fn run(_: &Context) -> Result<()> {
    raw_emit(&vec![0u8; 200 << 20])
}

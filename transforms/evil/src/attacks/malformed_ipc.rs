//! `malformed-ipc`: hands the host bytes that are not IPC at all.

use corral_guest::{Context, Result};

use crate::common::raw_emit;

/// Emits a few ASCII bytes through the raw binding.
pub fn run(_: &Context) -> Result<()> {
    raw_emit(b"definitely not arrow ipc")
}

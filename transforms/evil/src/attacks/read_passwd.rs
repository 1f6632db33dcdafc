//! `read-passwd`: tries to read the host's files; fails itself if it can.

use corral_guest::{Context, Result, bail, emit};

use crate::common::small_batch;

/// Succeeds (one row) only if no file can be read.
pub fn run(_: &Context) -> Result<()> {
    let passwd = std::fs::read_to_string("/etc/passwd");
    let dot = std::fs::read_dir(".");
    if passwd.is_ok() || dot.is_ok() {
        bail!("file access is open: passwd {:?}, . {:?}", passwd.is_ok(), dot.is_ok());
    }
    emit(&small_batch(1))?;
    Ok(())
}

//! `network`: tries to connect and to resolve a name; fails itself if it can.

use corral_guest::{Context, Result, bail, emit};

use crate::common::small_batch;

/// Succeeds (one row) only if there is no network.
pub fn run(_: &Context) -> Result<()> {
    let connect = std::net::TcpStream::connect("127.0.0.1:9");
    let lookup = std::net::ToSocketAddrs::to_socket_addrs("localhost:80");
    if connect.is_ok() || lookup.is_ok() {
        bail!("network is open: connect {:?}, lookup {:?}", connect.is_ok(), lookup.is_ok());
    }
    emit(&small_batch(1))?;
    Ok(())
}

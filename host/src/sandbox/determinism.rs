//! Deterministic WASI for an iteration: random bytes derived from the
//! iteration id, a wall clock fixed at 2000-01-01 and a monotonic clock that
//! advances one microsecond per reading. Same input, same output.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime_wasi::{Deterministic, HostMonotonicClock, HostWallClock, WasiCtxBuilder};

/// 2000-01-01T00:00:00Z, seconds since the Unix epoch.
const FIXED_WALL_SECS: u64 = 946_684_800;
/// Bytes of the random cycle.
const RANDOM_BYTES: usize = 64 * 1024;

struct FixedWall;

impl HostWallClock for FixedWall {
    fn resolution(&self) -> Duration {
        Duration::from_micros(1)
    }
    fn now(&self) -> Duration {
        Duration::from_secs(FIXED_WALL_SECS)
    }
}

#[derive(Default)]
struct SteppingMonotonic(AtomicU64);

impl HostMonotonicClock for SteppingMonotonic {
    fn resolution(&self) -> u64 {
        1_000
    }
    fn now(&self) -> u64 {
        self.0.fetch_add(1_000, Ordering::Relaxed)
    }
}

/// A cycle of pseudo-random bytes from `seed` and `iteration` (sha256 in
/// counter mode).
fn random_bytes(seed: &str, iteration: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(RANDOM_BYTES);
    let mut counter = 0u64;
    while out.len() < RANDOM_BYTES {
        let mut hasher = Sha256::new();
        hasher.update(seed.as_bytes());
        hasher.update(iteration.to_le_bytes());
        hasher.update(counter.to_le_bytes());
        out.extend_from_slice(&hasher.finalize());
        counter += 1;
    }
    out
}

/// Makes `wasi`'s random numbers and clocks a function of `iteration` only.
pub fn fix(wasi: &mut WasiCtxBuilder, iteration: i64) {
    wasi.secure_random(Deterministic::new(random_bytes("secure", iteration)))
        .insecure_random(Deterministic::new(random_bytes("insecure", iteration)))
        .insecure_random_seed(u128::from_le_bytes(random_bytes("seed", iteration)[..16].try_into().expect("16 bytes")))
        .wall_clock(FixedWall)
        .monotonic_clock(SteppingMonotonic::default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_depend_on_the_iteration_only() {
        assert_eq!(random_bytes("secure", 3), random_bytes("secure", 3));
        assert_ne!(random_bytes("secure", 3), random_bytes("secure", 4));
        assert_ne!(random_bytes("secure", 3), random_bytes("insecure", 3));
    }
}

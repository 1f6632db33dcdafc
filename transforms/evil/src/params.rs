//! The evil transform's params: which iterations misbehave, and the knobs
//! every iteration obeys first (`delay_ms`, `spin`).

use std::collections::HashMap;

use corral_guest::{Context, info};
use serde::Deserialize;

/// The job's `[params]`.
#[derive(Deserialize)]
pub struct Params {
    /// `{"N" = "behaviour"}`: iteration N runs that attack (see `ATTACKS`).
    #[serde(default)]
    pub evil: HashMap<String, String>,
    /// Every iteration first sleeps this long (for tests that need a run
    /// to be in flight when they act on it).
    #[serde(default)]
    pub delay_ms: u64,
    /// `{"N" = units}`: iteration N first computes for this many units of
    /// 100,000 steps of a random-number generator (CPU work, for the
    /// fairness benchmark), then goes on as usual.
    #[serde(default)]
    pub spin: HashMap<String, u64>,
}

impl Params {
    /// Sleeps `delay_ms`, then spins this iteration's units of `spin`.
    pub fn apply(&self, ctx: &Context) {
        if self.delay_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(self.delay_ms));
        }
        if let Some(&units) = self.spin.get(&ctx.iteration().to_string()) {
            let mut x: u64 = 1;
            for _ in 0..units * 100_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407));
            }
            info!("spun {units} units ({x:x})");
        }
    }
}

//! `--shard K/N`: a deterministic split of a job's iterations into N
//! shards (the iteration at position i goes to shard i mod N), each run by
//! its own process, with its own manifest under `_shards/`.

use std::fmt;

/// One shard of N, 0-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: usize,
    /// How many shards there are.
    pub count: usize,
}

/// Directory of the shards' manifests under the output directory.
pub const SHARDS_DIR: &str = "_shards";

impl Shard {
    /// Parses `K/N` with `0 <= K < N`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("`{text}` is not K/N with 0 <= K < N, e.g. 0/4 for the first of four shards");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// This shard's iterations out of the job's, in the job's order.
    pub fn pick(&self, iterations: &[i64]) -> Vec<i64> {
        iterations.iter().copied().skip(self.index).step_by(self.count).collect()
    }

    /// The file name of this shard's manifest under [`SHARDS_DIR`].
    pub fn manifest_name(&self) -> String {
        format!("shard-{}-of-{}.json", self.index, self.count)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_iterations_in_order() {
        let iterations: Vec<i64> = (10..21).collect();
        let mut all: Vec<i64> = Vec::new();
        for k in 0..4 {
            let shard = Shard::parse(&format!("{k}/4")).unwrap();
            let picked = shard.pick(&iterations);
            assert!(picked.windows(2).all(|w| w[0] < w[1]), "in the job's order");
            assert!(picked.len() == 2 || picked.len() == 3, "balanced: {picked:?}");
            all.extend(picked);
        }
        all.sort();
        assert_eq!(all, iterations, "every iteration in exactly one shard");
    }

    #[test]
    fn bad_shards_are_refused() {
        for text in ["4/4", "1", "a/2", "0/0", "-1/3"] {
            assert!(Shard::parse(text).is_err(), "{text}");
        }
    }
}

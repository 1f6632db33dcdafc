//! A mixed run: 300 iterations on 2 workers, a third of them hostile across
//! every class of attack on the host boundary, old and new. Every hostile
//! iteration gets its own failure kind and leaves nothing partial; every
//! good iteration's output is right; the host's memory and the run's wall
//! time stay within stated bounds.

use corral_tests::{files_under, guests, read_parquet};

use crate::support::{Fixture, corral, record};

/// The hostile behaviours of the evil transform and the kind each must be
/// recorded as (`succeeded` for those the host must serve correctly), from
/// `transforms/evil/mix.toml`, which corral-bench's mixed case reads too.
fn mix() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../transforms/evil/mix.toml");
    let text = std::fs::read_to_string(path).unwrap();
    #[derive(serde::Deserialize)]
    struct Mix {
        behaviours: Vec<(String, String)>,
    }
    toml::from_str::<Mix>(&text).unwrap().behaviours
}

/// Iterations of the run, and every how many one is hostile.
const ITERATIONS: i64 = 300;
const EVERY: i64 = 3;

/// The bounds this run is held to: the host's peak RSS (two iterations
/// at a time, each capped at 256 MiB of linear memory, plus the host's own)
/// and the run's wall time (about 100 hostile iterations, a few of them
/// sleeping to their 2 s timeout, on 2 workers).
const MAX_PEAK_RSS: u64 = 1536 << 20;
/// See [`MAX_PEAK_RSS`].
const MAX_WALL_MS: u64 = 120_000;

/// The behaviour of iteration `n` and its kind, if it is hostile.
fn hostile(mix: &[(String, String)], n: i64) -> Option<(&str, &str)> {
    (n % EVERY == 1).then(|| {
        let (behaviour, kind) = &mix[(n / EVERY) as usize % mix.len()];
        (behaviour.as_str(), kind.as_str())
    })
}

#[test]
fn three_hundred_iterations_a_third_hostile_leave_the_good_ones_right_and_the_host_bounded() {
    let mix = mix();
    let fx = Fixture::new(20_000);
    let iterations: Vec<i64> = (0..ITERATIONS).collect();
    let entries: Vec<String> =
        (0..ITERATIONS).filter_map(|n| hostile(&mix, n).map(|(b, _)| format!("\"{n}\" = \"{b}\""))).collect();
    let params = format!("evil = {{ {} }}", entries.join(", "));
    let job = fx.job(guests::EVIL, &iterations, &params, "partition_by = \"some_column\"");
    let out = corral(&[
        &"run", &job, &"--max-workers", &"2", &"--fuel", &"2000000000", &"--memory", &"256MiB", &"--timeout", &"2s",
        &"--max-output", &"16MiB", &"--log-format", &"json",
    ]);
    assert_eq!(out.code, 1, "stderr:\n{}", &out.stderr[out.stderr.len().saturating_sub(4000)..]);
    let manifest = fx.manifest();
    let mut good = 0;
    for n in 0..ITERATIONS {
        let r = record(&manifest, n);
        match hostile(&mix, n) {
            None => {
                assert_eq!(r["status"], "succeeded", "iteration {n}: {r}");
                // The good path copies its rows: id, some_column, value.
                let ids: Vec<i64> = read_parquet(&fx.part(n))
                    .iter()
                    .flat_map(|b| b.column(0).as_any().downcast_ref::<arrow_array::Int64Array>().unwrap().values().to_vec())
                    .collect();
                let expected: Vec<i64> = fx.rows.iter().filter(|row| row.some_column == n).map(|row| row.id).collect();
                assert_eq!(ids, expected, "iteration {n}'s rows");
                good += 1;
            }
            Some((behaviour, "succeeded")) => assert_eq!(r["status"], "succeeded", "iteration {n} ({behaviour}): {r}"),
            Some((behaviour, kind)) => {
                assert_eq!(r["error"]["kind"], kind, "iteration {n} ({behaviour}): {}", r["error"]);
                assert_eq!(files_under(&fx.out().join(format!("iter_{n}"))), Vec::<String>::new(), "nothing partial of {n}");
                assert!(r["error"]["message"].as_str().unwrap().len() < 20 << 10, "iteration {n}'s message is bounded");
            }
        }
    }
    assert_eq!(good, 200);
    let text = serde_json::to_string(&manifest).unwrap();
    assert!(!text.contains("host_panic"), "no host panic in the run");
    let rss = manifest["job"]["peak_rss_bytes"].as_u64().unwrap();
    assert!(rss < MAX_PEAK_RSS, "host peak RSS {} MiB", rss >> 20);
    let wall = manifest["summary"]["wall_ms"].as_u64().unwrap();
    assert!(wall < MAX_WALL_MS, "wall time {wall} ms");
}

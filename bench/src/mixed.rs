//! The mixed run: 300 iterations of the evil transform on 2 workers, a
//! third of them hostile (the behaviours of `transforms/evil/mix.toml`, in
//! turn, as `host/tests/e2e/mixed_run.rs` runs them), against the same 300
//! iterations all good, alternating in one run: wall time and the host's
//! memory, with every iteration's outcome checked.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, ensure};

use crate::cases::{Bench, settle_disk};
use crate::measure::{TimedRun, manifest, median, mib, secs, time_process};

/// Iterations of the run, 0..ITERATIONS.
pub const ITERATIONS: i64 = 300;

/// Iteration n is hostile when `n % EVERY == 1`.
const EVERY: i64 = 3;

/// Rows of the run's config (the peers' generator).
pub const ROWS: usize = 20_000;

/// The limits `mix.toml`'s header says to run with (as the e2e test does),
/// in pairs.
const FLAGS: [[&str; 2]; 4] = [["--fuel", "2000000000"], ["--memory", "256MiB"], ["--timeout", "2s"], ["--max-output", "16MiB"]];

/// The bounds `host/tests/e2e/mixed_run.rs` asserts, on a debug build: the
/// host's peak RSS (`job.peak_rss_bytes`) and the run's wall
/// (`summary.wall_ms`).
const TEST_MAX_PEAK_RSS: u64 = 1536 << 20;
/// See [`TEST_MAX_PEAK_RSS`].
const TEST_MAX_WALL_MS: u64 = 120_000;

/// `transforms/evil/mix.toml`, read at run time.
pub fn mix_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../transforms/evil/mix.toml")
}

/// The `[behaviour, expected kind]` pairs of `mix.toml` (`succeeded` for
/// the behaviours the host must serve). Warns if its header no longer
/// names [`FLAGS`].
pub fn read_mix(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let list = table.get("behaviours").and_then(toml::Value::as_array).with_context(|| format!("no `behaviours` array in {}", path.display()))?;
    let mut mix = Vec::new();
    for entry in list {
        let pair: Option<Vec<&str>> = entry.as_array().map(|a| a.iter().filter_map(toml::Value::as_str).collect());
        match pair.as_deref() {
            Some([behaviour, kind]) => mix.push(((*behaviour).to_owned(), (*kind).to_owned())),
            _ => anyhow::bail!("{}: `{entry}` is not a [behaviour, kind] pair of strings", path.display()),
        }
    }
    ensure!(!mix.is_empty(), "{} lists no behaviours", path.display());
    for [flag, value] in FLAGS {
        if !text.contains(&format!("{flag} {value}")) {
            eprintln!("warning: {} no longer says `{flag} {value}`; the mixed case runs with it still", path.display());
        }
    }
    Ok(mix)
}

/// The behaviour of iteration `n` and its expected kind, if it is hostile.
fn hostile(mix: &[(String, String)], n: i64) -> Option<(&str, &str)> {
    (n % EVERY == 1).then(|| {
        let (behaviour, kind) = &mix[(n / EVERY) as usize % mix.len()];
        (behaviour.as_str(), kind.as_str())
    })
}

/// What one run of the job measured.
#[derive(Clone, Debug)]
struct Measured {
    /// The whole process (spawn to exit) and its max RSS.
    process: TimedRun,
    /// `summary.wall_ms`: what the e2e test bounds.
    run_wall_ms: u64,
    /// `job.peak_rss_bytes` (`VmHWM`): what the e2e test bounds.
    peak_rss: u64,
    /// Iterations' wall times summed by outcome (`good`, or the hostile
    /// ones' expected kind): (iterations, milliseconds).
    by_outcome: BTreeMap<String, (usize, u64)>,
}

/// Medians over runs of [`Measured`]'s figures.
struct Medians {
    wall: f64,
    run_wall_ms: u64,
    peak_rss: u64,
    max_rss: u64,
}

fn medians(runs: &[Measured]) -> Medians {
    let walls: Vec<f64> = runs.iter().map(|r| r.process.wall.as_secs_f64()).collect();
    Medians {
        wall: median(&walls),
        run_wall_ms: median(&runs.iter().map(|r| r.run_wall_ms).collect::<Vec<_>>()),
        peak_rss: median(&runs.iter().map(|r| r.peak_rss).collect::<Vec<_>>()),
        max_rss: median(&runs.iter().map(|r| r.process.max_rss).collect::<Vec<_>>()),
    }
}

/// `n` with commas between thousands.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Rows of `config` (CSV with a header) a key of `some_column`.
fn rows_by_key(config: &Path) -> anyhow::Result<HashMap<i64, u64>> {
    let text = std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    let mut lines = text.lines();
    let header = lines.next().context("an empty config")?;
    let column = header.split(',').position(|c| c == "some_column").context("no some_column in the config")?;
    let mut counts = HashMap::new();
    for line in lines {
        let key: i64 = line.split(',').nth(column).and_then(|k| k.parse().ok()).with_context(|| format!("a row without a key: {line}"))?;
        *counts.entry(key).or_insert(0) += 1;
    }
    Ok(counts)
}

impl Bench {
    /// The mixed case over `config` (the peers' generator at [`ROWS`]
    /// rows): `runs` pairs of the mixed job and the all-good one,
    /// alternating, each checked iteration by iteration. Returns the
    /// section's lines, `measured` (when and where) under its heading.
    pub fn mixed(&self, config: &Path, current: &str, measured: &str) -> anyhow::Result<Vec<String>> {
        let mix_file = mix_path();
        let mix = read_mix(&mix_file)?;
        let expected_rows = rows_by_key(config)?;
        let entries: Vec<String> = (0..ITERATIONS).filter_map(|n| hostile(&mix, n).map(|(b, _)| format!("\"{n}\" = \"{b}\""))).collect();
        let hostile_count = entries.len();
        let mixed_job = self.job("mixed_hostile", &self.evil_wasm, config, &format!("evil = {{ {} }}\n", entries.join(", ")))?;
        let good_job = self.job("mixed_good", &self.evil_wasm, config, "evil = {}\n")?;
        let range = format!("0..{ITERATIONS}");
        let mut args = vec!["--iterations", &range, "--max-workers", "2"];
        args.extend(FLAGS.iter().flatten());
        let report = self.work.join("mixed_time.txt");

        // Every output directory is new (`out_mixed_*`, removed with the
        // per-iteration cases' after every case: deleting files just before
        // a timed run slows its creates on this ext4).
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();
        let dir = |what: &str| self.work.join(format!("out_mixed_{what}_{stamp}"));
        // One untimed iteration fills the compiled-module cache.
        let warm = self.corral(&good_job, &["--iterations", "0", "--out", &dir("warm").display().to_string()]);
        time_process(&warm, &report, &[0], "corral mixed (warm-up)")?;

        let (mut mixed, mut good) = (Vec::new(), Vec::new());
        for run in 0..self.runs {
            for (job, hostile_on, runs) in [(&mixed_job, true, &mut mixed), (&good_job, false, &mut good)] {
                let name = if hostile_on { "mixed" } else { "all good" };
                let out = dir(&format!("{}_{run}", if hostile_on { "hostile" } else { "good" }));
                let out_arg = out.display().to_string();
                let mut run_args = args.clone();
                run_args.extend(["--out", &out_arg]);
                settle_disk()?;
                // corral exits 1 when an iteration failed, as the hostile ones do.
                let codes: &[i32] = if hostile_on { &[1] } else { &[0] };
                let process = time_process(&self.corral(job, &run_args), &report, codes, &format!("corral {name}, run {}/{}", run + 1, self.runs))?;
                let m = manifest(&out)?;
                let by_outcome = check(&m, &mix, hostile_on, &expected_rows).with_context(|| format!("the {name} run {}", run + 1))?;
                runs.push(Measured {
                    process,
                    run_wall_ms: m["summary"]["wall_ms"].as_u64().context("summary.wall_ms")?,
                    peak_rss: m["job"]["peak_rss_bytes"].as_u64().context("job.peak_rss_bytes")?,
                    by_outcome,
                });
            }
        }

        let (m, g) = (medians(&mixed), medians(&good));
        let each = |runs: &[Measured]| runs.iter().map(|r| format!("{:.2}", r.process.wall.as_secs_f64())).collect::<Vec<_>>().join(", ");
        // The median mixed run by wall, for where its time goes.
        let mut sorted: Vec<&Measured> = mixed.iter().collect();
        sorted.sort_by(|a, b| a.process.wall.cmp(&b.process.wall));
        let middle = sorted[sorted.len() / 2];
        let outcomes: Vec<String> = middle
            .by_outcome
            .iter()
            .map(|(outcome, (n, ms))| format!("{outcome} {n} × {:.0} ms ({:.1} s)", *ms as f64 / *n as f64, *ms as f64 / 1000.0))
            .collect();
        let good_count = ITERATIONS as usize - hostile_count;
        let example: Vec<&str> = entries.iter().take(3).map(String::as_str).collect();
        let ratio = |a: f64, b: f64| a / b.max(f64::MIN_POSITIVE);
        let gib_share = 100.0 * m.peak_rss as f64 / TEST_MAX_PEAK_RSS as f64;
        let wall_share = 100.0 * m.run_wall_ms as f64 / TEST_MAX_WALL_MS as f64;
        let worst_rss = mixed.iter().map(|r| r.peak_rss).max().unwrap_or(0);
        let worst_wall = mixed.iter().map(|r| r.run_wall_ms).max().unwrap_or(0);
        let flags: Vec<String> = FLAGS.iter().map(|[f, v]| format!("{f} {v}")).collect();
        Ok(vec![
            format!("## A mixed run: {ITERATIONS} iterations, a third hostile, 2 workers"),
            String::new(),
            measured.to_owned(),
            String::new(),
            format!(
                "corral at {current}. The evil transform (`transforms/evil`) over a {}-row config from the peers' generator (`gen_config.py`, `some_column` in 0..63), `partition_by = \"some_column\"`, iterations 0..{} on 2 workers, with `{}`. Iteration n is hostile when n % {EVERY} == 1: it runs behaviour (n / {EVERY}) mod {} of `transforms/evil/mix.toml` (params `evil = {{ {}, ... }}`), so {hostile_count} hostile iterations go through its {} behaviours in turn. The baseline is the same job with none hostile (`evil = {{}}`), its runs alternating with the mixed job's ({} of each, each after a `sync` and into a new output directory); medians. In every run every hostile iteration got the kind `mix.toml` expects of it (or succeeded, for the behaviours the host must serve), every good one succeeded with its key's rows (`rows_out`), and none was a host panic: the bench fails otherwise.",
                thousands(ROWS),
                ITERATIONS - 1,
                flags.join(" "),
                mix.len(),
                example.join(", "),
                mix.len(),
                self.runs
            ),
            String::new(),
            "| job | wall (whole process) | run's wall (`summary.wall_ms`) | host peak RSS (`job.peak_rss_bytes`) | max RSS of the process (`/usr/bin/time`) |".to_owned(),
            "|---|---|---|---|---|".to_owned(),
            format!(
                "| all good ({ITERATIONS} good) | {:.2} s | {:.2} s | {} | {} |",
                g.wall,
                g.run_wall_ms as f64 / 1000.0,
                mib(g.peak_rss),
                mib(g.max_rss)
            ),
            format!(
                "| mixed ({good_count} good, {hostile_count} hostile) | {:.2} s | {:.2} s | {} | {} |",
                m.wall,
                m.run_wall_ms as f64 / 1000.0,
                mib(m.peak_rss),
                mib(m.max_rss)
            ),
            format!(
                "| **mixed ÷ all good** | **{:.2}x** | {:.2}x | **{:.2}x** | {:.2}x |",
                ratio(m.wall, g.wall),
                ratio(m.run_wall_ms as f64, g.run_wall_ms as f64),
                ratio(m.peak_rss as f64, g.peak_rss as f64),
                ratio(m.max_rss as f64, g.max_rss as f64)
            ),
            String::new(),
            format!("Each run's wall: mixed {} s; all good {} s.", each(&mixed), each(&good)),
            String::new(),
            format!(
                "Where the mixed run's time goes (its median run: iterations' wall times summed by outcome, the hostile ones by the kind they get; 2 at a time): {}.",
                outcomes.join("; ")
            ),
            String::new(),
            format!(
                "**The bounds.** `host/tests/e2e/mixed_run.rs` runs the same {ITERATIONS} iterations with the same limits (over its own generator's {} rows, keys 0..63 too) on a debug build of the host (with optimised dependencies, as the tests build) and asserts the host's peak RSS (`job.peak_rss_bytes`) under **1.5 GiB** (two iterations at a time, each capped at 256 MiB of linear memory, plus the host's own) and the run's wall (`summary.wall_ms`) under **120 s** (the hostile iterations, some sleeping to their 2 s timeout, on 2 workers). The release build here: peak RSS **{}** ({gib_share:.0}% of the bound; the highest of the runs {}), the run's wall **{}** ({wall_share:.0}% of the bound; the longest {}).",
                thousands(ROWS),
                mib(m.peak_rss),
                mib(worst_rss),
                secs(std::time::Duration::from_millis(m.run_wall_ms)),
                secs(std::time::Duration::from_millis(worst_wall))
            ),
        ])
    }
}

/// Checks one run's manifest: every iteration 0..ITERATIONS recorded; a
/// hostile one got its expected kind (or succeeded, if that is what is
/// expected of it); a good one succeeded with its key's rows; no host
/// panic anywhere. Returns the iterations' wall times by outcome.
fn check(manifest: &serde_json::Value, mix: &[(String, String)], hostile_on: bool, rows: &HashMap<i64, u64>) -> anyhow::Result<BTreeMap<String, (usize, u64)>> {
    let records: HashMap<i64, &serde_json::Value> = manifest["iterations"]
        .as_array()
        .context("no iterations in the manifest")?
        .iter()
        .filter_map(|r| Some((r["iteration"].as_i64()?, r)))
        .collect();
    let mut wrong = Vec::new();
    let mut by_outcome: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    for n in 0..ITERATIONS {
        let Some(r) = records.get(&n) else {
            wrong.push(format!("iteration {n}: no record"));
            continue;
        };
        let (status, kind) = (r["status"].as_str().unwrap_or("?"), r["error"]["kind"].as_str().unwrap_or("-"));
        let expected = if hostile_on { hostile(mix, n) } else { None };
        let outcome = match expected {
            None => {
                let want = rows.get(&n).copied().unwrap_or(0);
                let got = r["rows_out"].as_u64().unwrap_or(u64::MAX);
                if status != "succeeded" {
                    wrong.push(format!("iteration {n} (good): {status}, {kind}: {}", r["error"]["message"]));
                } else if got != want {
                    wrong.push(format!("iteration {n} (good): {got} rows out, its key has {want}"));
                }
                "good".to_owned()
            }
            Some((behaviour, "succeeded")) => {
                if status != "succeeded" {
                    wrong.push(format!("iteration {n} ({behaviour}): {status}, {kind}, expected to succeed"));
                }
                "served (succeeded)".to_owned()
            }
            Some((behaviour, want)) => {
                if status != "failed" || kind != want {
                    wrong.push(format!("iteration {n} ({behaviour}): {status}, {kind}, expected {want}"));
                }
                want.to_owned()
            }
        };
        let entry = by_outcome.entry(outcome).or_default();
        entry.0 += 1;
        entry.1 += r["wall_ms"].as_u64().unwrap_or(0);
    }
    if serde_json::to_string(manifest)?.contains("host_panic") {
        wrong.push("a host panic in the manifest".to_owned());
    }
    ensure!(wrong.is_empty(), "{} iterations not as expected:\n{}", wrong.len(), wrong.iter().take(20).cloned().collect::<Vec<_>>().join("\n"));
    Ok(by_outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_toml_parses_and_the_hostile_iterations_cycle_through_it() {
        let mix = read_mix(&mix_path()).unwrap();
        assert!(mix.len() > 10, "{mix:?}");
        assert_eq!(hostile(&mix, 0), None);
        assert_eq!(hostile(&mix, 1), Some((mix[0].0.as_str(), mix[0].1.as_str())));
        assert_eq!(hostile(&mix, 4), Some((mix[1].0.as_str(), mix[1].1.as_str())));
        let n = 3 * mix.len() as i64 + 1;
        assert_eq!(hostile(&mix, n), Some((mix[0].0.as_str(), mix[0].1.as_str())), "wraps at the list's end");
        assert_eq!((0..ITERATIONS).filter(|&n| hostile(&mix, n).is_some()).count(), 100);
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(20_000), "20,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn a_manifest_is_checked_iteration_by_iteration() {
        let mix = vec![("error".to_owned(), "guest_error".to_owned()), ("emit-wide".to_owned(), "succeeded".to_owned())];
        let rows: HashMap<i64, u64> = [(0, 5)].into();
        let record = |n: i64| match hostile(&mix, n) {
            Some((_, "guest_error")) => serde_json::json!({"iteration": n, "status": "failed", "error": {"kind": "guest_error", "message": "m"}, "wall_ms": 2}),
            _ => serde_json::json!({"iteration": n, "status": "succeeded", "error": null, "rows_out": if n == 0 { 5 } else { 0 }, "wall_ms": 1}),
        };
        let manifest = serde_json::json!({"iterations": (0..ITERATIONS).map(record).collect::<Vec<_>>()});
        let by = check(&manifest, &mix, true, &rows).unwrap();
        assert_eq!(by["good"], (200, 200));
        assert_eq!(by["guest_error"], (50, 100));
        assert_eq!(by["served (succeeded)"], (50, 50));
        // The same records as an all-good run: the hostile ones are wrong.
        assert!(check(&manifest, &mix, false, &rows).is_err());
        let mut wrong = manifest.clone();
        wrong["iterations"][0]["rows_out"] = 4.into();
        assert!(check(&wrong, &mix, true, &rows).unwrap_err().to_string().contains("iteration 0 (good): 4 rows out"));
    }
}

//! The A/B of a host change: a baseline `corral` binary (the commit before
//! the change: `--baseline-corral`, or built by `--baseline-commit`)
//! measured beside the current one in the same run, their runs alternating
//! (before, after, before, after, ...), on the seed job at the large config
//! and on the per-iteration case.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, ensure};

use crate::cases::{Bench, OVERHEAD_CONFIG_ROWS, PerIteration, settle_disk};
use crate::measure::{manifest, median, mib, secs, time_command};

/// The binary the current one is measured against.
pub struct Baseline {
    /// The baseline `corral` binary.
    pub corral: PathBuf,
    /// What it is, for the section's heading (a short commit or a path).
    pub label: String,
}

/// Makes a git worktree of `rev` under `work` (kept for later runs: it is
/// `work/baseline-SHORT`), builds its `corral` in release with
/// `CARGO_TARGET_DIR` set to `target` (this workspace's: the dependencies
/// built for the current corral are reused, only corral itself compiles)
/// and copies `target/release/corral` to `work/corral-SHORT`. Call it
/// before the current corral is built: the baseline's build overwrites
/// `target/release/corral`, and the current build puts it back.
///
/// The baseline's corral crate is built with `codegen-units = 16` set
/// explicitly for it alone: the same code as release's default, but a
/// profile that differs, so its artifacts get their own hash. Without it,
/// cargo hashes a path crate by its place in the workspace (`host`), the
/// same in both checkouts, and the baseline's artifacts would overwrite the
/// current ones under the same names (and could pass for fresh).
pub fn build_baseline(rev: &str, work: &Path, target: &Path) -> anyhow::Result<Baseline> {
    let hash = git(None, &["rev-parse", "--verify", &format!("{rev}^{{commit}}")])?;
    let short = git(None, &["rev-parse", "--short", &hash])?;
    let tree = work.join(format!("baseline-{short}"));
    if tree.join("Cargo.toml").exists() {
        let head = git(Some(&tree), &["rev-parse", "HEAD"])?;
        ensure!(
            head == hash,
            "{} is at {head}, not {rev} ({hash}); remove it with `git worktree remove --force {}`",
            tree.display(),
            tree.display()
        );
    } else {
        // A worktree directory deleted by hand stays registered until pruned.
        git(None, &["worktree", "prune"])?;
        let tree_arg = tree.to_str().context("the work dir's path is not UTF-8")?;
        git(None, &["worktree", "add", "--detach", tree_arg, &hash])?;
    }
    eprintln!("building the baseline corral at {short} (release, in {}, target {})", tree.display(), target.display());
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&tree)
        .env("CARGO_TARGET_DIR", target)
        .args(["build", "--release", "-p", "corral", "--config", "profile.release.package.corral.codegen-units=16"])
        .status()
        .context("running cargo for the baseline")?;
    ensure!(status.success(), "building the baseline corral at {short} failed");
    let binary = work.join(format!("corral-{short}"));
    std::fs::copy(target.join("release/corral"), &binary).with_context(|| format!("copying the baseline to {}", binary.display()))?;
    Ok(Baseline { corral: binary, label: short })
}

/// `git ARGS` (in `dir`, else the current directory), its trimmed stdout.
fn git(dir: Option<&Path>, args: &[&str]) -> anyhow::Result<String> {
    let mut command = Command::new("git");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = command.args(args).output().context("running git")?;
    ensure!(output.status.success(), "git {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// What the current tree is: `HEAD abc1234`, with `and the working tree's
/// changes` if it has any (tracked or not).
pub fn current_label() -> String {
    let head = git(None, &["rev-parse", "--short", "HEAD"]).unwrap_or_else(|_| "?".to_owned());
    let dirty = git(None, &["status", "--porcelain"]).is_ok_and(|s| !s.is_empty());
    if dirty { format!("HEAD {head} with the working tree's changes") } else { format!("HEAD {head}") }
}

/// One case's runs: before (the baseline) and after (the current binary),
/// in the order they ran, alternating.
struct Runs {
    before: Vec<Duration>,
    after: Vec<Duration>,
}

impl Runs {
    /// The medians' ratio, after over before.
    fn ratio(&self) -> f64 {
        median(&self.after).as_secs_f64() / median(&self.before).as_secs_f64()
    }

    /// Each pair's ratio (after over before, the runs seconds apart).
    fn pairs(&self) -> String {
        let ratios: Vec<String> = self.before.iter().zip(&self.after).map(|(b, a)| format!("{:.2}", a.as_secs_f64() / b.as_secs_f64())).collect();
        ratios.join(", ")
    }

    /// Every run's wall time, before / after.
    fn each(&self) -> String {
        let list = |walls: &[Duration]| walls.iter().map(|w| format!("{:.2}", w.as_secs_f64())).collect::<Vec<_>>().join(", ");
        format!("{} / {} s", list(&self.before), list(&self.after))
    }
}

impl Bench {
    /// The A/B: `baseline` against the current binary on (a) the seed job
    /// over `config` (`rows` its label: the seed-job case's corral command,
    /// 64 iterations on 2 workers) and (b) 10,000 iterations of the one-row
    /// transform, `in_flight` at a time, written to the local disk (the
    /// per-iteration case). Each binary warms its compiled-module cache
    /// first (the cache is keyed by the engine, so each has its own entry);
    /// then `runs` pairs, before then after. Returns the section's lines,
    /// `measured` (when and where) under its heading.
    pub fn ab(&self, baseline: &Baseline, after_label: &str, measured: &str, config: &Path, rows: &str, in_flight: usize) -> anyhow::Result<Vec<String>> {
        let binaries = [&baseline.corral, &self.corral];
        let which = ["before", "after"];

        eprintln!("A/B: seed job, {rows} rows");
        let job = self.job(&format!("seed_{rows}"), &self.seed_wasm, config, "")?;
        let out = self.work.join(format!("out_seed_{rows}"));
        for (binary, which) in binaries.iter().zip(which) {
            time_command(|| self.corral_binary(binary, &job, &["--iterations", "0"]), 1, &format!("corral {which} (warm-up)"))?;
        }
        let mut seed = Runs { before: Vec::new(), after: Vec::new() };
        let mut rss: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
        for run in 0..self.runs {
            for (i, (binary, which)) in binaries.iter().zip(which).enumerate() {
                settle_disk()?;
                let wall = time_command(|| self.corral_binary(binary, &job, &[]), 1, &format!("corral {which} {rows}, pair {}/{}", run + 1, self.runs))?[0];
                let m = manifest(&out)?;
                ensure!(m["summary"]["succeeded"] == 64, "the {which} seed run did not succeed: {}", m["summary"]);
                rss[i].push(m["job"]["peak_rss_bytes"].as_u64().unwrap_or(0));
                if i == 0 { seed.before.push(wall) } else { seed.after.push(wall) }
            }
        }

        eprintln!("A/B: 10,000 one-row iterations, {in_flight} in flight, on the disk");
        let count = 10_000;
        let config = self.one_row_per_key_config(OVERHEAD_CONFIG_ROWS)?;
        // No partition_by for a key of one row a key, as the overhead case.
        let job = self.job_partitioned(PerIteration::Emit.name(), &self.one_row_wasm, &config, None, "")?;
        let (range, workers) = (format!("0..{count}"), in_flight.to_string());
        let stamp = SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();
        // Every output directory is new (as in the overhead case) and named
        // `out_overhead_*`, so that the clean-up after every case removes it.
        let dir = |what: &str| self.work.join(format!("out_overhead_ab_{what}_{stamp}")).display().to_string();
        for (binary, which) in binaries.iter().zip(which) {
            let out = dir(&format!("warm_{which}"));
            time_command(|| self.corral_binary(binary, &job, &["--iterations", "0", "--out", &out]), 1, &format!("corral {which} one-row (warm-up)"))?;
        }
        let mut emit = Runs { before: Vec::new(), after: Vec::new() };
        for run in 0..self.runs {
            for (i, (binary, which)) in binaries.iter().zip(which).enumerate() {
                let out = dir(&format!("{which}_{run}"));
                settle_disk()?;
                let wall = time_command(
                    || self.corral_binary(binary, &job, &["--iterations", &range, "--max-workers", &workers, "--out", &out]),
                    1,
                    &format!("corral {which} {count} one-row iterations, pair {}/{}", run + 1, self.runs),
                )?[0];
                let m = manifest(Path::new(&out))?;
                ensure!(m["summary"]["succeeded"] == count, "the {which} one-row run did not succeed: {}", m["summary"]);
                if i == 0 { emit.before.push(wall) } else { emit.after.push(wall) }
            }
        }

        let (rss_before, rss_after) = (median(&rss[0]), median(&rss[1]));
        let rate = |walls: &[Duration]| count as f64 / median(walls).as_secs_f64();
        let before = &baseline.label;
        Ok(vec![
            format!("## A/B of the host: before ({before}) and after ({after_label})"),
            String::new(),
            measured.to_owned(),
            String::new(),
            format!(
                "Before: `corral` built in release from {before}; after: from {after_label}. Both run the same transforms (built from the current tree), alternately (before, after, before, after, ...: {} pairs, each run seconds from its pair's other), each run after a `sync`; medians of each binary's runs. Each binary warmed its compiled-module cache with one untimed run first.",
                self.runs
            ),
            String::new(),
            "| case | before | after | after ÷ before | each run, before / after | pairs' ratios |".to_owned(),
            "|---|---|---|---|---|---|".to_owned(),
            format!(
                "| seed job, {rows} rows, iterations 0..63, 2 workers, `partition_by = \"some_column\"` (wall, whole process) | {} | {} | **{:.2}x** | {} | {} |",
                secs(median(&seed.before)),
                secs(median(&seed.after)),
                seed.ratio(),
                seed.each(),
                seed.pairs()
            ),
            format!(
                "| the same: host peak RSS (`job.peak_rss_bytes`) | {} | {} | {:.2}x | | |",
                mib(rss_before),
                mib(rss_after),
                rss_after as f64 / rss_before.max(1) as f64
            ),
            format!(
                "| 10,000 iterations of `transforms/one-row`, {in_flight} in flight on 2 cores, output on the disk (wall, whole process) | {} | {} | **{:.2}x** | {} | {} |",
                secs(median(&emit.before)),
                secs(median(&emit.after)),
                emit.ratio(),
                emit.each(),
                emit.pairs()
            ),
            format!(
                "| the same: iterations/s | {:.0} | {:.0} | {:.2}x | | |",
                rate(&emit.before),
                rate(&emit.after),
                rate(&emit.after) / rate(&emit.before)
            ),
            String::new(),
            "The disk's floor moves severalfold within minutes on this machine (see above), so the pairs' ratios, runs seconds apart, say more than runs minutes apart; a ratio within the spread of the pairs' ratios is noise.".to_owned(),
        ])
    }
}

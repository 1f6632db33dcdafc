//! The A/B of a host change: a baseline `corral` binary (the commit before
//! the change: `--baseline-corral`, or built by `--baseline-commit`)
//! measured beside the current one in the same run, their runs alternating
//! (before, after, before, after, ...), on the seed job at the large config
//! and on the per-iteration case (its output on the disk, then on
//! tmpfs); each run's wall and CPU time (user + sys).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, ensure};

use crate::cases::{Bench, OVERHEAD_CONFIG_ROWS, PerIteration, settle_disk};
use crate::measure::{TimedRun, manifest, median, mib, secs, time_command, time_process};

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
#[derive(Default)]
struct Runs {
    before: Vec<TimedRun>,
    after: Vec<TimedRun>,
}

/// A figure of a run the table shows: its wall or its CPU time.
type Figure = fn(&TimedRun) -> Duration;

/// The run's wall, spawn to exit.
fn wall(run: &TimedRun) -> Duration {
    run.wall
}

/// The run's CPU time, user + sys.
fn cpu(run: &TimedRun) -> Duration {
    run.cpu
}

impl Runs {
    /// Records a run of the binary `i` (0 before, 1 after).
    fn push(&mut self, i: usize, run: TimedRun) {
        if i == 0 { self.before.push(run) } else { self.after.push(run) }
    }

    /// `figure` of every run, before and after.
    fn figures(&self, figure: Figure) -> (Vec<Duration>, Vec<Duration>) {
        (self.before.iter().map(figure).collect(), self.after.iter().map(figure).collect())
    }

    /// The medians of `figure`, before and after.
    fn medians(&self, figure: Figure) -> (Duration, Duration) {
        let (before, after) = self.figures(figure);
        (median(&before), median(&after))
    }

    /// The medians' ratio of `figure`, after over before.
    fn ratio(&self, figure: Figure) -> f64 {
        let (before, after) = self.medians(figure);
        after.as_secs_f64() / before.as_secs_f64()
    }

    /// Each pair's ratio of `figure` (after over before, the runs seconds
    /// apart).
    fn pairs(&self, figure: Figure) -> String {
        let (before, after) = self.figures(figure);
        let ratios: Vec<String> = before.iter().zip(&after).map(|(b, a)| format!("{:.2}", a.as_secs_f64() / b.as_secs_f64())).collect();
        ratios.join(", ")
    }

    /// Every run's `figure`, before / after.
    fn each(&self, figure: Figure) -> String {
        let (before, after) = self.figures(figure);
        let list = |times: &[Duration]| times.iter().map(|t| format!("{:.2}", t.as_secs_f64())).collect::<Vec<_>>().join(", ");
        format!("{} / {} s", list(&before), list(&after))
    }

    /// The table's row of `figure`: `label`, the medians, their ratio (in
    /// bold if it is a figure to judge the change by), each run and the
    /// pairs' ratios.
    fn row(&self, label: &str, figure: Figure, judge: bool) -> String {
        let (before, after) = self.medians(figure);
        let ratio = format!("{:.2}x", self.ratio(figure));
        let ratio = if judge { format!("**{ratio}**") } else { ratio };
        format!("| {label} | {} | {} | {ratio} | {} | {} |", secs(before), secs(after), self.each(figure), self.pairs(figure))
    }

    /// The table's row of the iterations per second of `count` iterations
    /// (by the medians' walls).
    fn rate_row(&self, count: usize) -> String {
        let (before, after) = self.medians(wall);
        let (before, after) = (count as f64 / before.as_secs_f64(), count as f64 / after.as_secs_f64());
        format!("| the same: iterations/s | {before:.0} | {after:.0} | {:.2}x | | |", after / before)
    }
}

/// The one-row case, as both binaries run it.
struct OneRow<'a> {
    /// Its job file.
    job: &'a Path,
    /// Iterations of a run, 0..count.
    count: usize,
    /// Iterations in flight (`--max-workers`).
    in_flight: usize,
    /// When the A/B started, in its output directories' names.
    stamp: u128,
}

impl Bench {
    /// `runs` pairs of the one-row case (`binaries` before then after),
    /// each run after a `sync` into a new directory under `root`, timed
    /// under GNU time (its report in `root`); each run's manifest checked.
    /// With `remove`, each run's directory is removed after it (on tmpfs,
    /// where 10,000 iterations' files take memory); else it is left for the
    /// clean-up after the case (deleting files just before a timed run
    /// slows its creates on this ext4).
    fn one_row_pairs(&self, binaries: [&Path; 2], case: &OneRow<'_>, root: &Path, remove: bool, on: &str) -> anyhow::Result<Runs> {
        let (range, workers) = (format!("0..{}", case.count), case.in_flight.to_string());
        let report = root.join("ab_time.txt");
        let mut runs = Runs::default();
        for run in 0..self.runs {
            for (i, (binary, which)) in binaries.into_iter().zip(["before", "after"]).enumerate() {
                // Named `out_overhead_*`, so that the clean-up after every
                // case removes those left on the disk.
                let out = root.join(format!("out_overhead_ab_{which}_{run}_{}", case.stamp));
                let dir = out.display().to_string();
                settle_disk()?;
                let timed = time_process(
                    &self.corral_binary(binary, case.job, &["--iterations", &range, "--max-workers", &workers, "--out", &dir]),
                    &report,
                    &[0],
                    &format!("corral {which} {} one-row iterations on {on}, pair {}/{}", case.count, run + 1, self.runs),
                )?;
                let m = manifest(&out)?;
                ensure!(m["summary"]["succeeded"] == case.count, "the {which} one-row run on {on} did not succeed: {}", m["summary"]);
                if remove {
                    std::fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
                }
                runs.push(i, timed);
            }
        }
        Ok(runs)
    }

    /// The A/B: `baseline` against the current binary on (a) the seed job
    /// over `config` (`rows` its label: the seed-job case's corral command,
    /// 64 iterations on 2 workers) and (b) 10,000 iterations of the one-row
    /// transform, `in_flight` at a time (the per-iteration case), written
    /// to the local disk and then, if there is a `/dev/shm`, to tmpfs.
    /// Each binary warms its compiled-module cache first (the cache is
    /// keyed by the engine, so each has its own entry); then `runs` pairs,
    /// before then after, each run's wall and CPU time (user + sys) taken.
    /// Returns the section's lines, `measured` (when and where) under its
    /// heading.
    pub fn ab(&self, baseline: &Baseline, after_label: &str, measured: &str, config: &Path, rows: &str, in_flight: usize) -> anyhow::Result<Vec<String>> {
        let binaries = [baseline.corral.as_path(), self.corral.as_path()];
        let which = ["before", "after"];
        let report = self.work.join("ab_time.txt");

        eprintln!("A/B: seed job, {rows} rows");
        let job = self.job(&format!("seed_{rows}"), &self.seed_wasm, config, "")?;
        let out = self.work.join(format!("out_seed_{rows}"));
        for (binary, which) in binaries.iter().zip(which) {
            time_command(|| self.corral_binary(binary, &job, &["--iterations", "0"]), 1, &format!("corral {which} (warm-up)"))?;
        }
        let mut seed = Runs::default();
        let mut rss: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
        for run in 0..self.runs {
            for (i, (binary, which)) in binaries.iter().zip(which).enumerate() {
                settle_disk()?;
                let timed = time_process(&self.corral_binary(binary, &job, &[]), &report, &[0], &format!("corral {which} {rows}, pair {}/{}", run + 1, self.runs))?;
                let m = manifest(&out)?;
                ensure!(m["summary"]["succeeded"] == 64, "the {which} seed run did not succeed: {}", m["summary"]);
                rss[i].push(m["job"]["peak_rss_bytes"].as_u64().unwrap_or(0));
                seed.push(i, timed);
            }
        }

        let count = 10_000;
        let config = self.one_row_per_key_config(OVERHEAD_CONFIG_ROWS)?;
        // No partition_by for a key of one row a key, as the overhead case.
        let job = self.job_partitioned(PerIteration::Emit.name(), &self.one_row_wasm, &config, None, "")?;
        let stamp = SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();
        let case = OneRow { job: &job, count, in_flight, stamp };
        for (binary, which) in binaries.iter().zip(which) {
            let out = self.work.join(format!("out_overhead_ab_warm_{which}_{stamp}")).display().to_string();
            time_command(|| self.corral_binary(binary, &job, &["--iterations", "0", "--out", &out]), 1, &format!("corral {which} one-row (warm-up)"))?;
        }
        eprintln!("A/B: {count} one-row iterations, {in_flight} in flight, on the disk");
        // Every output directory on the disk is new (as in the overhead case).
        let emit = self.one_row_pairs(binaries, &case, &self.work, false, "the disk")?;
        let shm = Path::new("/dev/shm");
        let on_tmpfs = if shm.is_dir() {
            eprintln!("A/B: {count} one-row iterations, {in_flight} in flight, on tmpfs");
            let root = shm.join(format!("corral-bench-ab-{}-{stamp}", std::process::id()));
            std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
            let measured = self.one_row_pairs(binaries, &case, &root, true, "tmpfs");
            std::fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
            Some(measured?)
        } else {
            eprintln!("A/B: no /dev/shm, the one-row case runs on the disk only");
            None
        };

        let (rss_before, rss_after) = (median(&rss[0]), median(&rss[1]));
        let before = &baseline.label;
        let tmpfs_note = if on_tmpfs.is_some() {
            "then with its output on tmpfs (`/dev/shm`), each run into a new directory removed after it"
        } else {
            "not on tmpfs (there was no `/dev/shm`)"
        };
        let mut lines = vec![
            format!("## A/B of the host: before ({before}) and after ({after_label})"),
            String::new(),
            measured.to_owned(),
            String::new(),
            format!(
                "Before: `corral` built in release from {before}; after: from {after_label}. Both run the same transforms (built from the current tree), alternately (before, after, before, after, ...: {} pairs, each run seconds from its pair's other), each run after a `sync`; medians of each binary's runs. Each binary warmed its compiled-module cache with one untimed run first. Every run is timed twice: its wall (the whole process, spawn to exit) and its CPU time (user + sys, as `/usr/bin/time` reports the process's `%U` + `%S`, to 10 ms). The one-row case runs with its output on the disk (ext4), each run into a new directory, and {tmpfs_note}.",
                self.runs
            ),
            String::new(),
            "| case | before | after | after ÷ before | each run, before / after | pairs' ratios |".to_owned(),
            "|---|---|---|---|---|---|".to_owned(),
            seed.row(&format!("seed job, {rows} rows, iterations 0..63, 2 workers, `partition_by = \"some_column\"`, output on the disk (wall, whole process)"), wall, false),
            seed.row("the same: CPU time (user+sys)", cpu, true),
            format!(
                "| the same: host peak RSS (`job.peak_rss_bytes`) | {} | {} | {:.2}x | | |",
                mib(rss_before),
                mib(rss_after),
                rss_after as f64 / rss_before.max(1) as f64
            ),
            emit.row(&format!("{count} iterations of `transforms/one-row`, {in_flight} in flight on 2 cores, output on the disk (wall, whole process)"), wall, false),
            emit.row("the same: CPU time (user+sys)", cpu, true),
            emit.rate_row(count),
        ];
        if let Some(shm) = &on_tmpfs {
            lines.extend([
                shm.row(&format!("{count} iterations of `transforms/one-row`, {in_flight} in flight on 2 cores, output on tmpfs (`/dev/shm`) (wall, whole process)"), wall, true),
                shm.row("the same: CPU time (user+sys)", cpu, true),
                shm.rate_row(count),
            ]);
        }
        let judge = if on_tmpfs.is_some() {
            "**Judge a host change by the CPU time rows and the tmpfs rows** (their ratios in bold): CPU time counts what the process itself did, whatever the disk did meanwhile, and on tmpfs the output costs no disk, so neither carries the disk's noise. The walls on the disk are there for context (what a run on this disk takes)."
        } else {
            "**Judge a host change by the CPU time rows** (their ratios in bold): CPU time counts what the process itself did, whatever the disk did meanwhile. The walls on the disk are there for context (what a run on this disk takes)."
        };
        lines.extend([
            String::new(),
            format!("{judge} The disk's floor moves severalfold within minutes on this machine (see above), so of the walls on the disk the pairs' ratios, runs seconds apart, say more than runs minutes apart; for every figure, a ratio within the spread of its pairs' ratios is noise."),
        ]);
        Ok(lines)
    }
}

//! Timing whole processes and in-process work, medians, and reading what a
//! corral run recorded.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, ensure};

/// Runs `command` to completion `runs` times; returns each wall time.
pub fn time_command(mut make: impl FnMut() -> Command, runs: usize, what: &str) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(runs);
    for run in 0..runs {
        let mut command = make();
        let started = Instant::now();
        let output = command.output().with_context(|| format!("starting {what}"))?;
        let elapsed = started.elapsed();
        ensure!(
            output.status.success(),
            "{what} failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!("  {what} run {}/{runs}: {:.2}s", run + 1, elapsed.as_secs_f64());
        times.push(elapsed);
    }
    Ok(times)
}

/// What one run of a process measured by [`time_with_rss`] gave.
#[derive(Clone, Copy, Debug)]
pub struct TimedRun {
    /// From spawn to exit.
    pub wall: Duration,
    /// Its maximum resident set size, bytes, as `/usr/bin/time` reports it
    /// (`%M`: the kernel's `ru_maxrss` of the child).
    pub max_rss: u64,
}

/// Where [`time_with_rss`] finds GNU time.
pub const GNU_TIME: &str = "/usr/bin/time";

/// Runs `command` once under `/usr/bin/time -f %M`, its report written to
/// `report` (a scratch file); fails unless it exits with one of `codes`.
pub fn time_with_rss(command: &Command, report: &Path, codes: &[i32], what: &str) -> anyhow::Result<TimedRun> {
    let mut timed = Command::new(GNU_TIME);
    timed.arg("-f").arg("%M").arg("-o").arg(report).arg(command.get_program()).args(command.get_args());
    let started = Instant::now();
    let output = timed.output().with_context(|| format!("starting {what} under {GNU_TIME}"))?;
    let wall = started.elapsed();
    let code = output.status.code();
    ensure!(
        code.is_some_and(|c| codes.contains(&c)),
        "{what} exited with {} (expected {codes:?}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // GNU time writes "Command exited with non-zero status N" first when
    // the child fails; the figure is the last line.
    let text = std::fs::read_to_string(report).with_context(|| format!("reading {}", report.display()))?;
    let kib: u64 = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| format!("no max RSS in {GNU_TIME}'s report: {text:?}"))?;
    eprintln!("  {what}: {:.2}s, exit {}, max RSS {} MiB", wall.as_secs_f64(), code.unwrap_or(-1), kib / 1024);
    Ok(TimedRun { wall, max_rss: kib * 1024 })
}

/// The median of `values` (times or rates, never NaN).
pub fn median<T: Copy + PartialOrd>(values: &[T]) -> T {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).expect("times and rates are never NaN"));
    sorted[sorted.len() / 2]
}

/// Seconds with two decimals.
pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// A size in MiB.
pub fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The manifest a corral run wrote under `out`.
pub fn manifest(out: &Path) -> anyhow::Result<serde_json::Value> {
    let path = out.join("_manifest.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// From `spawned` to the first iteration's commit, as its record says.
pub fn time_to_first_output(manifest: &serde_json::Value, spawned: SystemTime) -> anyhow::Result<Duration> {
    let mut first: Option<SystemTime> = None;
    for record in manifest["iterations"].as_array().context("iterations")? {
        let started = humantime_parse(record["started"].as_str().context("started")?)?;
        let done = started + Duration::from_millis(record["wall_ms"].as_u64().context("wall_ms")?);
        first = Some(first.map_or(done, |f| f.min(done)));
    }
    Ok(first.context("no iterations")?.duration_since(spawned).unwrap_or_default())
}

fn humantime_parse(text: &str) -> anyhow::Result<SystemTime> {
    humantime::parse_rfc3339(text).with_context(|| format!("`{text}` is not RFC 3339"))
}

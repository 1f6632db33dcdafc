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

/// What one run of a process measured by [`time_process`] gave.
#[derive(Clone, Copy, Debug)]
pub struct TimedRun {
    /// From spawn to exit.
    pub wall: Duration,
    /// Its CPU time, user + sys, as `/usr/bin/time` reports it (`%U` +
    /// `%S`: the kernel's `ru_utime` + `ru_stime` of the child, to 10 ms).
    pub cpu: Duration,
    /// Its maximum resident set size, bytes, as `/usr/bin/time` reports it
    /// (`%M`: the kernel's `ru_maxrss` of the child).
    pub max_rss: u64,
}

/// Where [`time_process`] finds GNU time.
pub const GNU_TIME: &str = "/usr/bin/time";

/// The report [`time_process`] asks GNU time for: user and sys seconds,
/// max RSS in KiB.
const GNU_TIME_FORMAT: &str = "%U %S %M";

/// Runs `command` once under `/usr/bin/time -f '%U %S %M'`, its report
/// written to `report` (a scratch file, overwritten); fails unless it exits
/// with one of `codes`. The wall is timed here, spawn to exit.
pub fn time_process(command: &Command, report: &Path, codes: &[i32], what: &str) -> anyhow::Result<TimedRun> {
    let mut timed = Command::new(GNU_TIME);
    timed.arg("-f").arg(GNU_TIME_FORMAT).arg("-o").arg(report).arg(command.get_program()).args(command.get_args());
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
    let text = std::fs::read_to_string(report).with_context(|| format!("reading {}", report.display()))?;
    let (cpu, max_rss) = parse_time_report(&text).with_context(|| format!("no `{GNU_TIME_FORMAT}` in {GNU_TIME}'s report: {text:?}"))?;
    eprintln!(
        "  {what}: {:.2}s, CPU {:.2}s, exit {}, max RSS {} MiB",
        wall.as_secs_f64(),
        cpu.as_secs_f64(),
        code.unwrap_or(-1),
        max_rss >> 20
    );
    Ok(TimedRun { wall, cpu, max_rss })
}

/// The CPU time (user + sys) and max RSS (bytes) of GNU time's report in
/// [`GNU_TIME_FORMAT`]. GNU time writes "Command exited with non-zero
/// status N" first when the child fails; the figures are the last line.
fn parse_time_report(text: &str) -> Option<(Duration, u64)> {
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let [user, sys, kib] = line.split_whitespace().collect::<Vec<_>>()[..] else {
        return None;
    };
    let seconds = user.parse::<f64>().ok()? + sys.parse::<f64>().ok()?;
    Some((Duration::try_from_secs_f64(seconds).ok()?, kib.parse::<u64>().ok()? * 1024))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnu_time_reports_are_read_from_their_last_line() {
        assert_eq!(parse_time_report("1.25 0.50 2048\n"), Some((Duration::from_millis(1750), 2048 * 1024)));
        assert_eq!(parse_time_report("Command exited with non-zero status 1\n0.01 0.02 100\n"), Some((Duration::from_millis(30), 100 * 1024)));
        assert_eq!(parse_time_report("2048\n"), None);
        assert_eq!(parse_time_report(""), None);
    }
}

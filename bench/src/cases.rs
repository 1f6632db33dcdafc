//! The benchmark cases. Each measures corral and its baseline in the same
//! run and returns the lines of its section of BENCHMARKS.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, ensure};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use corral::config_table::ConfigTable;
use corral::job::{Job, Overrides};
use corral::output::OutputSink;
use corral::sandbox::Sandbox;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;

use crate::measure::{manifest, median, mib, secs, time_command, time_to_first_output};
use crate::native::PipelineHost;

/// Paths and settings shared by the cases.
pub struct Bench {
    /// The release `corral` binary.
    pub corral: PathBuf,
    /// The seed-model component.
    pub seed_wasm: PathBuf,
    /// The evil component (CPU work on demand).
    pub evil_wasm: PathBuf,
    /// The one-row component (emits a row, reads nothing).
    pub one_row_wasm: PathBuf,
    /// The Python transforms, when the Python part runs.
    pub python: Option<crate::python::PythonGuests>,
    /// The peers' scripts.
    pub peers: PathBuf,
    /// Scratch space.
    pub work: PathBuf,
    /// Runs per figure (medians).
    pub runs: usize,
    /// Runs of the PySpark job (0: skip it).
    pub spark_runs: usize,
}

/// Rows (one a key) of the per-iteration cases' config.
pub const OVERHEAD_CONFIG_ROWS: usize = 10_000;

/// What each iteration of a per-iteration overhead case does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PerIteration {
    /// The one-row transform: emits one small batch and reads nothing (the
    /// issue's case: the sandbox and the output, nothing else).
    Emit,
    /// The seed model: scans its one row of the config and emits it scored.
    ScanAndEmit,
    /// `one-row-py`, the Python twin of [`PerIteration::Emit`].
    EmitPython,
}

impl PerIteration {
    /// The job's name, and its output directories' prefix after `out_`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            PerIteration::Emit => "overhead_emit",
            PerIteration::ScanAndEmit => "overhead",
            PerIteration::EmitPython => "overhead_emit_py",
        }
    }
}

/// The 64 iterations 0..63 as the peers take them.
fn all_keys() -> String {
    (0..64).map(|n: i64| n.to_string()).collect::<Vec<_>>().join(",")
}

impl Bench {
    /// A job file for `module` over `config` (CSV), with `extra` TOML.
    pub(crate) fn job(&self, name: &str, module: &Path, config: &Path, extra: &str) -> anyhow::Result<PathBuf> {
        self.job_partitioned(name, module, config, Some("some_column"), extra)
    }

    /// [`Bench::job`] with the config partitioned by `partition_by`, if any.
    pub(crate) fn job_partitioned(&self, name: &str, module: &Path, config: &Path, partition_by: Option<&str>, extra: &str) -> anyhow::Result<PathBuf> {
        let path = self.work.join(format!("{name}.toml"));
        let partition = partition_by.map(|key| format!("partition_by = \"{key}\"\n")).unwrap_or_default();
        let text = format!(
            "name = \"{name}\"\niterations = \"0..64\"\n\n[config]\npath = \"{}\"\n{partition}\n[transform]\nmodule = \"{}\"\n\n[params]\nparam1 = 1.5\nparam2 = 2.0\n{extra}\n[output]\ndir = \"{}\"\n\n[limits]\nmax_workers = 2\nmemory = \"512 MiB\"\n",
            config.display(),
            module.display(),
            self.work.join(format!("out_{name}")).display()
        );
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// `corral -q run JOB ARGS` with the current binary.
    pub(crate) fn corral(&self, job: &Path, args: &[&str]) -> Command {
        self.corral_binary(&self.corral, job, args)
    }

    /// [`Bench::corral`] with another `corral` binary (the A/B's baseline).
    pub(crate) fn corral_binary(&self, binary: &Path, job: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(binary);
        command.arg("-q").arg("run").arg(job).args(args);
        command
    }

    fn python(&self, script: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Command {
        let mut command = Command::new("python3");
        command.arg(self.peers.join(script));
        for arg in args {
            command.arg(arg);
        }
        command
    }

    /// The seed job over `config`: corral, DuckDB and PySpark, 64
    /// iterations on 2 workers; outputs checked against DuckDB's.
    pub fn seed_job(&self, config: &Path, rows: &str) -> anyhow::Result<(Vec<String>, Duration, u64)> {
        let job = self.job(&format!("seed_{rows}"), &self.seed_wasm, config, "")?;
        let out_corral = self.work.join(format!("out_seed_{rows}"));
        let out_duck = self.work.join(format!("out_duck_{rows}"));
        let out_spark = self.work.join(format!("out_spark_{rows}"));
        // One untimed run fills corral's compiled-module cache.
        time_command(|| self.corral(&job, &["--iterations", "0"]), 1, "corral (warm-up)")?;
        let corral = time_command(|| self.corral(&job, &[]), self.runs, &format!("corral {rows}"))?;
        let peak_rss = manifest(&out_corral)?["job"]["peak_rss_bytes"].as_u64().unwrap_or(0);
        let keys = all_keys();
        let duck = time_command(|| self.python("duckdb_job.py", &[&config, &out_duck, &keys, &"2"]), self.runs, &format!("duckdb {rows}"))?;
        compare_outputs(&out_corral, &out_duck, "part-0.parquet")?;
        let spark = if self.spark_runs > 0 {
            Some(time_command(|| self.python("pyspark_seed_job.py", &[&config, &out_spark, &keys, &"2"]), self.spark_runs, &format!("pyspark {rows}"))?)
        } else {
            None
        };
        let (c, d) = (median(&corral), median(&duck));
        let mut lines = vec![
            "| engine | wall time (median) | runs | corral's ratio |".to_owned(),
            "|---|---|---|---|".to_owned(),
            format!("| corral (Wasm sandbox per iteration) | {} | {} | 1.00 |", secs(c), corral.len()),
            format!("| DuckDB {} (`duckdb_job.py`, 2 threads) | {} | {} | corral / DuckDB = **{:.2}x** |", duckdb_version(), secs(d), duck.len(), c.as_secs_f64() / d.as_secs_f64()),
        ];
        if let Some(spark) = &spark {
            let s = median(spark);
            lines.push(format!(
                "| PySpark 3.5 (`pyspark_seed_job.py`, local[2], FAIR) | {} | {} | PySpark / corral = **{:.1}x faster** |",
                secs(s),
                spark.len(),
                s.as_secs_f64() / c.as_secs_f64()
            ));
        }
        lines.push(String::new());
        lines.push("Every one of the 64 outputs holds the same rows as DuckDB's (id, key and name equal, score within 1e-9).".to_owned());
        Ok((lines, c, peak_rss))
    }

    /// corral alone on the seed job over `config` (CSV or Parquet): the
    /// median wall time and the last run's peak RSS.
    pub fn corral_seed(&self, config: &Path, label: &str) -> anyhow::Result<(Duration, u64)> {
        let job = self.job(&format!("seed_{label}"), &self.seed_wasm, config, "")?;
        let walls = time_command(|| self.corral(&job, &[]), self.runs, &format!("corral {label}"))?;
        let manifest = manifest(&self.work.join(format!("out_seed_{label}")))?;
        ensure!(manifest["summary"]["succeeded"] == 64, "the {label} run did not succeed: {}", manifest["summary"]);
        Ok((median(&walls), manifest["job"]["peak_rss_bytes"].as_u64().unwrap_or(0)))
    }

    /// The CSV `config` as Parquet (written by DuckDB once, row groups of
    /// 122,880 rows, Snappy).
    pub fn as_parquet(&self, config: &Path) -> anyhow::Result<PathBuf> {
        let path = config.with_extension("parquet");
        if !path.exists() {
            let partial = config.with_extension("parquet.partial");
            let script = format!(
                "import duckdb; duckdb.sql(\"COPY (SELECT * FROM read_csv_auto('{}', header=true)) TO '{}' (FORMAT parquet, COMPRESSION snappy)\")",
                config.display(),
                partial.display()
            );
            let status = Command::new("python3").arg("-c").arg(script).status()?;
            ensure!(status.success(), "converting {} to Parquet failed", config.display());
            std::fs::rename(&partial, &path)?;
        }
        Ok(path)
    }

    /// The sandbox's own cost: the seed-model step compiled natively and
    /// run through the same host pipeline, against its Wasm build.
    pub fn sandbox_cost(&self, config_csv: &Path) -> anyhow::Result<(Vec<String>, u64)> {
        let job_path = self.job("sandbox_cost", &self.seed_wasm, config_csv, "")?;
        let job = Job::load(&job_path, &Overrides::default())?;
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
        let config = Arc::new(runtime.block_on(ConfigTable::load(&job.config, store.clone()))?);
        let arrow_bytes = config.memory_bytes() as u64;
        let bytes = std::fs::read(&self.seed_wasm)?;
        let sandbox = Arc::new(Sandbox::new(&bytes, &job.module, job.limits, false, None)?);
        let params = serde_json::Value::Object(job.params.clone()).to_string();
        let out = self.work.join("out_sandbox_cost");
        let mut wasm_times = Vec::new();
        let mut native_times = Vec::new();
        for _ in 0..self.runs {
            wasm_times.push(runtime.block_on(run_all(2, |n| {
                let (sandbox, config, params) = (sandbox.clone(), config.clone(), params.clone());
                let sink = sink(&out.join("wasm"), n);
                async move {
                    let outcome = sandbox.run(n, &params, "bench", config, sink).await;
                    let finished = outcome.result.map_err(|e| anyhow::anyhow!("{}", e.message))?;
                    finished.seal(Vec::new()).await?;
                    Ok(())
                }
            }))?);
            native_times.push(runtime.block_on(run_all(2, |n| {
                let (config, params) = (config.clone(), params.clone());
                let sink = sink(&out.join("native"), n);
                let handle = tokio::runtime::Handle::current();
                async move {
                    let host = tokio::task::spawn_blocking(move || {
                        let host = PipelineHost::new(config, sink, handle);
                        let (host, result) = corral_guest::run_native(host, corral_guest::Context::new(n, params, "bench"), seed_model::run);
                        result.map(|()| host)
                    })
                    .await??;
                    host.into_sink().finish().await?.seal(Vec::new()).await?;
                    Ok(())
                }
            }))?);
        }
        compare_outputs(&out.join("wasm"), &out.join("native"), "part-00000.parquet")?;
        let (w, n) = (median(&wasm_times), median(&native_times));
        eprintln!("  sandbox cost: wasm {w:?}, native {n:?}");
        let lines = vec![
            "| seed-model step, 64 iterations, 2 at a time, config held in memory | wall time (median) |".to_owned(),
            "|---|---|".to_owned(),
            format!("| native (rlib, same scans, IPC and Parquet sink) | {} |", secs(n)),
            format!("| Wasm component in a fresh sandbox per iteration | {} |", secs(w)),
            format!("| **Wasm / native** | **{:.2}x** |", w.as_secs_f64() / n.as_secs_f64()),
        ];
        Ok((lines, arrow_bytes))
    }

    /// Per-iteration overhead: `count` iterations that each read one row
    /// and emit one small batch, `in_flight` at a time, written to the local
    /// disk. Each run writes a new output directory, as a user's run does
    /// (writing just after deleting tens of thousands of files makes ext4
    /// hunt for inodes it may reuse); [`remove_overhead_outputs`] removes
    /// them once everything is measured.
    pub fn overhead(&self, count: usize, in_flight: usize) -> anyhow::Result<Overhead> {
        self.overhead_under(&self.work, PerIteration::ScanAndEmit, count, in_flight, false)
    }

    /// [`Bench::overhead`] with the outputs under `root`; with `floor`, each
    /// run of corral is paired with a run of [`file_floor`] just before it
    /// in the same place, so that the ratio compares runs seconds apart
    /// (the floor of this machine's disk moves severalfold in minutes).
    pub fn overhead_under(&self, root: &Path, work: PerIteration, count: usize, in_flight: usize, floor: bool) -> anyhow::Result<Overhead> {
        let config = self.one_row_per_key_config(OVERHEAD_CONFIG_ROWS)?;
        let module = match work {
            PerIteration::Emit => &self.one_row_wasm,
            PerIteration::ScanAndEmit => &self.seed_wasm,
            PerIteration::EmitPython => &self.python.as_ref().context("the Python transforms are not built")?.one_row,
        };
        // No partition_by for a key of one row a key, as corral advises: the
        // first scan indexes the rows' positions.
        let job = self.job_partitioned(work.name(), module, &config, None, "")?;
        let range = format!("0..{count}");
        let workers = in_flight.to_string();
        let stamp = SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();
        let (mut walls, mut firsts, mut floors, mut shares, mut fuel) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), 0);
        for run in 0..self.runs {
            let floor_rate = if floor {
                let out = root.join(format!("out_overhead_floor_{stamp}_{run}"));
                std::fs::create_dir_all(&out)?;
                settle_disk()?;
                Some(file_floor(&out, count)?)
            } else {
                None
            };
            let out = root.join(format!("out_{}_{count}_{in_flight}_{stamp}_{run}", work.name()));
            let dir = out.display().to_string();
            settle_disk()?;
            let spawned = SystemTime::now();
            let what = format!("corral {count} iterations, {in_flight} in flight");
            let wall = time_command(
                || self.corral(&job, &["--iterations", &range, "--max-workers", &workers, "--out", &dir]),
                1,
                &what,
            )?;
            let manifest = manifest(&out)?;
            firsts.push(time_to_first_output(&manifest, spawned)?);
            fuel = manifest["iterations"][0]["fuel_used"].as_u64().context("an iteration's fuel")?;
            walls.push(wall[0]);
            if let Some(floor_rate) = floor_rate {
                floors.push(floor_rate);
                shares.push(count as f64 / wall[0].as_secs_f64() / floor_rate);
            }
        }
        let wall = median(&walls);
        let floor = (!floors.is_empty()).then(|| (median(&floors), median(&shares)));
        Ok(Overhead { rate: count as f64 / wall.as_secs_f64(), wall, first: median(&firsts), floor, fuel })
    }

    /// A config of `rows` rows, one per key (written once); the
    /// per-iteration cases read [`OVERHEAD_CONFIG_ROWS`] of them.
    pub fn one_row_per_key_config(&self, rows: usize) -> anyhow::Result<PathBuf> {
        let config = self.work.join(format!("config_{rows}_one_row_per_key.csv"));
        if !config.exists() {
            let mut text = String::from("id,some_column,value,weight,name\n");
            for i in 0..rows {
                text.push_str(&format!("{i},{i},{}.5,0.25,name_{i}\n", i % 100));
            }
            std::fs::write(&config, text)?;
        }
        Ok(config)
    }

    /// The seed job over a config of `rows` rows and one row a key, with
    /// `partition_by` declared on that key and without: for each, the
    /// median wall time and the last run's peak RSS.
    pub fn selective_partition(&self, rows: usize) -> anyhow::Result<[(Duration, u64); 2]> {
        let config = self.one_row_per_key_config(rows)?;
        let mut measured = Vec::new();
        for (label, partition_by) in [("selective_partitioned", Some("some_column")), ("selective_unpartitioned", None)] {
            let job = self.job_partitioned(label, &self.seed_wasm, &config, partition_by, "")?;
            let walls = time_command(|| self.corral(&job, &[]), self.runs, &format!("corral {label}"))?;
            let manifest = manifest(&self.work.join(format!("out_{label}")))?;
            ensure!(manifest["summary"]["succeeded"] == 64, "the {label} run did not succeed: {}", manifest["summary"]);
            measured.push((median(&walls), manifest["job"]["peak_rss_bytes"].as_u64().unwrap_or(0)));
        }
        Ok([measured[0], measured[1]])
    }

    /// The peers on [`Bench::overhead`]'s work: DuckDB's job over the same
    /// one-row-per-key config for `count` iterations (median of the runs)
    /// and, unless Spark runs are off, PySpark's for `spark_count`
    /// iterations (one run: it makes a Spark job per iteration), each
    /// writing its outputs to the same disk as corral. Whole processes.
    pub fn overhead_peers(&self, count: usize, spark_count: usize) -> anyhow::Result<(Duration, Option<Duration>)> {
        let config = self.one_row_per_key_config(OVERHEAD_CONFIG_ROWS)?;
        let stamp = SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();
        let keys = |count: usize| (0..count).map(|n| n.to_string()).collect::<Vec<_>>().join(",");
        let (duck_keys, spark_keys) = (keys(count), keys(spark_count));
        let mut duck = Vec::new();
        for run in 0..self.runs {
            let out = self.work.join(format!("out_overhead_duck_{stamp}_{run}"));
            settle_disk()?;
            duck.extend(time_command(|| self.python("duckdb_job.py", &[&config, &out, &duck_keys, &"2"]), 1, &format!("duckdb {count} iterations"))?);
            ensure!(std::fs::read_dir(&out)?.count() == count, "duckdb wrote fewer than {count} outputs");
        }
        let spark = if self.spark_runs > 0 {
            let out = self.work.join(format!("out_overhead_spark_{stamp}"));
            settle_disk()?;
            let wall = time_command(|| self.python("pyspark_seed_job.py", &[&config, &out, &spark_keys, &"8"]), 1, &format!("pyspark {spark_count} iterations"))?;
            Some(wall[0])
        } else {
            None
        };
        Ok((median(&duck), spark))
    }

    /// Removes the output directories of [`Bench::overhead`] (and of the
    /// A/B's per-iteration case and the mixed run, `out_mixed_*`); returns
    /// how many there were.
    pub fn remove_overhead_outputs(&self) -> anyhow::Result<usize> {
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.work)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("out_overhead_") || name.starts_with("out_mixed_") {
                std::fs::remove_dir_all(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Fairness: 2 iterations of ~`long_ms` of work and 200 of ~`short_ms`
    /// on 2 cores with 8 in flight.
    pub fn fairness(&self, config_csv: &Path) -> anyhow::Result<Vec<String>> {
        // A unit of work (100,000 generator steps) in the sandbox, calibrated
        // as the fairness run uses the cores: both busy (2 iterations side by
        // side), so that the ideal below is the work spread over the cores as
        // they run when loaded, and corral's scheduling is what the ratio
        // shows. The machine's speed drifts from minute to minute, so each
        // fairness run is measured against the calibrations just before and
        // just after it.
        const UNITS: u64 = 10_000;
        let calibrate = self.job("calibrate", &self.evil_wasm, config_csv, &format!("spin = {{ \"0\" = {UNITS}, \"1\" = {UNITS} }}\n"))?;
        let calibrated = || -> anyhow::Result<f64> {
            time_command(|| self.corral(&calibrate, &["--iterations", "0,1", "--max-workers", "2", "--fuel", "100000000000000"]), 1, "calibration")?;
            let record = manifest(&self.work.join("out_calibrate"))?;
            let walls: Vec<f64> = (0..2).map(|i| record["iterations"][i]["wall_ms"].as_f64().unwrap_or(0.0)).collect();
            let unit_ms = walls.iter().sum::<f64>() / 2.0 / UNITS as f64;
            ensure!(unit_ms > 0.0, "calibration took no time ({walls:?})");
            Ok(unit_ms)
        };
        let mut before = calibrated()?;
        let long_units = (10_000.0 / before).round() as u64;
        let short_units = (10.0 / before).round().max(1.0) as u64;
        let mut spin: Vec<String> = vec![format!("\"0\" = {long_units}"), format!("\"1\" = {long_units}")];
        spin.extend((2..202).map(|n| format!("\"{n}\" = {short_units}")));
        let job = self.job("fairness", &self.evil_wasm, config_csv, &format!("spin = {{ {} }}\n", spin.join(", ")))?;
        let units = (2 * long_units + 200 * short_units) as f64;
        // Per run: (wall, ideal, last short end, first long end, unit).
        let mut runs = Vec::new();
        for _ in 0..self.runs {
            let wall = time_command(
                || self.corral(&job, &["--iterations", "0..202", "--max-workers", "8", "--fuel", "100000000000000"]),
                1,
                "fairness",
            )?[0];
            let after = calibrated()?;
            let unit_ms = (before + after) / 2.0;
            before = after;
            let m = manifest(&self.work.join("out_fairness"))?;
            let mut ends: BTreeMap<i64, u64> = BTreeMap::new();
            for r in m["iterations"].as_array().context("iterations")? {
                let n = r["iteration"].as_i64().context("iteration")?;
                ensure!(r["status"] == "succeeded", "iteration {n} of the fairness run failed: {r}");
                ends.insert(n, r["offset_ms"].as_u64().unwrap_or(0) + r["wall_ms"].as_u64().unwrap_or(0));
            }
            let first_long_end = ends[&0].min(ends[&1]);
            let last_short_end = (2..202).map(|n| ends[&n]).max().unwrap_or(0);
            let ideal = unit_ms * units / 2.0 / 1000.0;
            runs.push((wall.as_secs_f64(), ideal, last_short_end, first_long_end, unit_ms));
        }
        runs.sort_by(|a, b| (a.0 / a.1).total_cmp(&(b.0 / b.1)));
        let (wall, ideal, last_short_end, first_long_end, unit_ms) = runs[runs.len() / 2];
        let ratios: Vec<String> = runs.iter().map(|r| format!("{:.2}", r.0 / r.1)).collect();
        let all_short_first = runs.iter().all(|r| r.2 < r.3);
        Ok(vec![
            "| figure (the median run by wall / (work / cores)) | value |".to_owned(),
            "|---|---|".to_owned(),
            format!("| one unit of guest work (both cores busy; mean of the calibrations before and after the run) | {unit_ms:.4} ms |"),
            format!("| long iterations | 2 × {long_units} units ≈ {:.1} s each |", long_units as f64 * unit_ms / 1000.0),
            format!("| short iterations | 200 × {short_units} units ≈ {:.1} ms each |", short_units as f64 * unit_ms),
            format!("| last short iteration done | {:.2} s after the run started |", last_short_end as f64 / 1000.0),
            format!("| first long iteration done | {:.2} s after the run started |", first_long_end as f64 / 1000.0),
            format!("| every short one before the long ones, in every run | **{}** |", if all_short_first { "yes" } else { "no" }),
            format!("| total wall (whole process) | {wall:.2} s |"),
            format!("| work / cores | {ideal:.2} s |"),
            format!("| **wall / (work / cores)** | **{:.2}** (runs: {}) |", wall / ideal, ratios.join(", ")),
        ])
    }
}

fn duckdb_version() -> String {
    Command::new("python3")
        .args(["-c", "import duckdb; print(duckdb.__version__)"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// What corral's per-iteration overhead case measured.
#[derive(Clone, Copy, Debug)]
pub struct Overhead {
    /// Iterations per second (whole process, median run).
    pub rate: f64,
    /// The median run's wall time.
    pub wall: Duration,
    /// Time to the first committed output (median).
    pub first: Duration,
    /// The file system's floor (iterations/s, median) and corral's share
    /// of it (the median of each run's rate over its paired floor run).
    pub floor: Option<(f64, f64)>,
    /// Fuel (Wasm instructions, about) one iteration's guest used.
    pub fuel: u64,
}

/// The file system's own floor for [`Bench::overhead`]: `count`
/// iterations' directories and files under `out` (a staged, renamed
/// Parquet part of the same size and a staged, renamed `_SUCCESS` holding a
/// record), written by a bare loop on 2 threads with no compute.
/// Iterations/s.
fn file_floor(out: &Path, count: usize) -> anyhow::Result<f64> {
    let part = vec![7u8; 1_100];
    let record = vec![b' '; 700];
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..2)
            .map(|thread| {
                let (part, record) = (&part, &record);
                scope.spawn(move || -> std::io::Result<()> {
                    for n in (thread..count).step_by(2) {
                        let dir = out.join(format!("iter_{n}"));
                        std::fs::create_dir(&dir)?;
                        for (name, body) in [("part-00000.parquet", part), ("_SUCCESS", record)] {
                            let staged = dir.join(format!("{name}#1"));
                            std::fs::write(&staged, body)?;
                            std::fs::rename(&staged, dir.join(name))?;
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        threads.into_iter().try_for_each(|t| t.join().expect("the writer does not panic"))
    })?;
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Writes dirty pages back (`sync`) so that a timed run does not share the
/// disk with the writeback of the cases before it.
pub(crate) fn settle_disk() -> anyhow::Result<()> {
    ensure!(Command::new("sync").status()?.success(), "sync failed");
    Ok(())
}

fn sink(root: &Path, n: i64) -> OutputSink {
    OutputSink::local(root.join(format!("iter_{n}")), u64::MAX, u64::MAX)
}

/// Runs `iteration(n)` for n in 0..64, `at_once` at a time; returns the wall time.
async fn run_all<F, Fut>(at_once: usize, iteration: F) -> anyhow::Result<Duration>
where
    F: Fn(i64) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let started = Instant::now();
    let permits = Arc::new(tokio::sync::Semaphore::new(at_once));
    let mut tasks = Vec::new();
    for n in 0..64 {
        let permit = permits.clone().acquire_owned().await?;
        let future = iteration(n);
        tasks.push(tokio::spawn(async move {
            let result = future.await;
            drop(permit);
            result
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(started.elapsed())
}

/// The rows of a seed output directory's iteration files, by id.
fn seed_rows(path: &Path) -> anyhow::Result<Vec<(i64, i64, f64, String)>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?.build()?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch?;
        let column = |name: &str| batch.column_by_name(name).with_context(|| format!("no column {name} in {}", path.display()));
        let (id, key, score, name) = (column("id")?, column("some_column")?, column("score")?, column("name")?);
        let (id, key) = (id.as_primitive::<Int64Type>(), key.as_primitive::<Int64Type>());
        let score = score.as_primitive::<Float64Type>();
        let name = arrow_cast_string(name.as_ref())?;
        for i in 0..batch.num_rows() {
            rows.push((id.value(i), key.value(i), score.value(i), name[i].clone()));
        }
    }
    rows.sort_by_key(|r| r.0);
    Ok(rows)
}

fn arrow_cast_string(array: &dyn arrow_array::Array) -> anyhow::Result<Vec<String>> {
    if let Some(a) = array.as_string_opt::<i32>() {
        return Ok(a.iter().map(|v| v.unwrap_or_default().to_owned()).collect());
    }
    if let Some(a) = array.as_string_view_opt() {
        return Ok(a.iter().map(|v| v.unwrap_or_default().to_owned()).collect());
    }
    anyhow::bail!("name is not a string column")
}

/// Checks that every `iter_n` under `ours` has the same rows as under `theirs`.
pub(crate) fn compare_outputs(ours: &Path, theirs: &Path, their_file: &str) -> anyhow::Result<()> {
    for n in 0..64 {
        let a = seed_rows(&ours.join(format!("iter_{n}/part-00000.parquet")))?;
        let b = seed_rows(&theirs.join(format!("iter_{n}/{their_file}")))?;
        ensure!(a.len() == b.len(), "iteration {n}: {} rows against {}", a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            let close = (x.2 - y.2).abs() <= 1e-9 * x.2.abs().max(1.0);
            ensure!(x.0 == y.0 && x.1 == y.1 && x.3 == y.3 && close, "iteration {n}: {x:?} against {y:?}");
        }
    }
    Ok(())
}

/// Memory lines: peak RSS against the config's Arrow size and the caps.
pub fn memory_line(rows: &str, peak_rss: u64, arrow_bytes: u64, caps: u64) -> String {
    let bound = arrow_bytes as f64 * 1.5 + caps as f64;
    format!(
        "| {rows} | {} | {} | {} | {:.2}x the Arrow size | {} |",
        mib(arrow_bytes),
        mib(peak_rss),
        mib(caps),
        peak_rss as f64 / arrow_bytes as f64,
        if (peak_rss as f64) <= bound { "yes" } else { "**no**" }
    )
}

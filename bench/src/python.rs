//! The Python rows: `seed-model-py` on the seed job against PySpark and
//! against the same transform run natively under CPython by the SDK's fake
//! host; `one-row-py`'s iterations per second and time to first output
//! beside the Rust `one-row`'s; the host memory each running Python
//! iteration adds.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};

use crate::cases::{Bench, PerIteration, compare_outputs};
use crate::measure::{manifest, median, mib, secs};

/// The componentize-py the README and `.ci/run` install.
const COMPONENTIZE_PY: &str = "0.25.1";

/// Iterations of the one-row cases.
const ONE_ROW_ITERATIONS: usize = 10_000;

/// Iterations of the memory case, at each concurrency.
const MEMORY_ITERATIONS: usize = 400;

/// The Python transforms, built by componentize-py for this run.
#[derive(Debug, Clone)]
pub struct PythonGuests {
    /// `transforms/seed-model-py`.
    pub seed: PathBuf,
    /// `transforms/one-row-py`.
    pub one_row: PathBuf,
    /// The CPython version componentize-py bundles (its `--version`).
    pub componentize_py: String,
}

/// Builds `seed-model-py` and `one-row-py` into `work/python/` with
/// componentize-py, both at once, as `tests/build.rs` does.
pub fn build(root: &Path, work: &Path) -> anyhow::Result<PythonGuests> {
    let out = work.join("python");
    std::fs::create_dir_all(&out)?;
    let version = Command::new("componentize-py").arg("--version").output().with_context(|| {
        format!("running componentize-py (python3 -m pip install componentize-py=={COMPONENTIZE_PY})")
    })?;
    let componentize_py = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let start = |name: &str| -> anyhow::Result<(PathBuf, Child)> {
        let module = out.join(format!("{}.wasm", name.replace('-', "_")));
        let child = Command::new("componentize-py")
            .current_dir(&out)
            .arg("-d")
            .arg(root.join("wit"))
            .args(["-w", "transform", "componentize", "app", "-p"])
            .arg(root.join("transforms").join(name))
            .arg("-p")
            .arg(root.join("guest-sdk/python"))
            .arg("-o")
            .arg(&module)
            .env_remove("VIRTUAL_ENV")
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("starting componentize-py")?;
        Ok((module, child))
    };
    let builds = [start("seed-model-py")?, start("one-row-py")?];
    let mut modules = Vec::new();
    for (module, mut child) in builds {
        ensure!(child.wait()?.success(), "componentize-py failed to build {}", module.display());
        modules.push(module);
    }
    let [seed, one_row] = <[PathBuf; 2]>::try_from(modules).expect("two builds");
    Ok(PythonGuests { seed, one_row, componentize_py })
}

/// One corral run of the Python seed job: its wall and what its
/// iterations took, added up.
struct SeedRun {
    wall: Duration,
    iterations_ms: u64,
    peak_rss: u64,
}

/// What the native run of the same transform took.
#[derive(Clone, Copy)]
struct NativeRun {
    wall: Duration,
    iterations: f64,
    host: f64,
}

impl Bench {
    /// The Python section's lines: `config` is the seed job's config (10M
    /// rows), `label` its row count as the other sections write it.
    pub fn python_section(&self, root: &Path, config: &Path, label: &str) -> anyhow::Result<Vec<String>> {
        let guests = self.python.as_ref().context("the Python transforms are not built")?;
        let name = format!("seed_py_{label}");
        let job = self.job(&name, &guests.seed, config, "")?;
        let out = self.work.join(format!("out_{name}"));
        eprintln!("python: seed-model-py, {label} rows (a first run compiles the component into the cache)");
        let compile_started = Instant::now();
        crate::measure::time_command(|| self.corral(&job, &["--iterations", "0"]), 1, "corral seed-model-py (warm-up)")?;
        let warm_up = compile_started.elapsed();
        let mut corral_runs = Vec::new();
        for run in 0..self.runs {
            let started = Instant::now();
            let output = self.corral(&job, &[]).output().context("starting corral")?;
            let wall = started.elapsed();
            ensure!(output.status.success(), "corral seed-model-py failed:\n{}", String::from_utf8_lossy(&output.stderr));
            let manifest = manifest(&out)?;
            ensure!(manifest["summary"]["succeeded"] == 64, "seed-model-py did not succeed: {}", manifest["summary"]);
            let iterations_ms = manifest["iterations"].as_array().context("iterations")?.iter().map(|r| r["wall_ms"].as_u64().unwrap_or(0)).sum();
            let peak_rss = manifest["job"]["peak_rss_bytes"].as_u64().unwrap_or(0);
            eprintln!("  corral seed-model-py run {}/{}: {:.2}s, iterations {iterations_ms} ms", run + 1, self.runs, wall.as_secs_f64());
            corral_runs.push(SeedRun { wall, iterations_ms, peak_rss });
        }
        // Its outputs against DuckDB's, as the Rust seed job's are.
        let out_duck = self.work.join(format!("out_duck_{label}"));
        let keys = (0..64).map(|n: i64| n.to_string()).collect::<Vec<_>>().join(",");
        let duck = Command::new("python3").arg(self.peers.join("duckdb_job.py")).arg(config).arg(&out_duck).arg(&keys).arg("2").status()?;
        ensure!(duck.success(), "duckdb_job.py failed");
        compare_outputs(&out, &out_duck, "part-0.parquet")?;
        let rows_out: Vec<u64> = {
            let manifest = manifest(&out)?;
            let mut by_iteration: Vec<(i64, u64)> = manifest["iterations"]
                .as_array()
                .context("iterations")?
                .iter()
                .map(|r| (r["iteration"].as_i64().unwrap_or(-1), r["rows_out"].as_u64().unwrap_or(0)))
                .collect();
            by_iteration.sort();
            by_iteration.into_iter().map(|(_, rows)| rows).collect()
        };

        eprintln!("python: the same transform natively under CPython (MemoryHost)");
        let mut native_runs = Vec::new();
        for run in 0..self.runs {
            let started = Instant::now();
            let output = Command::new("python3")
                .arg(root.join("bench/python/native_seed.py"))
                .arg(root.join("guest-sdk/python"))
                .arg(root.join("transforms/seed-model-py"))
                .arg(config)
                .arg("64")
                .output()
                .context("running native_seed.py")?;
            let wall = started.elapsed();
            ensure!(output.status.success(), "native_seed.py failed:\n{}", String::from_utf8_lossy(&output.stderr));
            let report: serde_json::Value = serde_json::from_slice(&output.stdout)?;
            let iterations = report["iterations"].as_array().context("iterations")?;
            let native_rows: Vec<u64> = iterations.iter().map(|r| r["rows"].as_u64().unwrap_or(u64::MAX)).collect();
            ensure!(native_rows == rows_out, "the native run's rows per iteration differ from corral's: {native_rows:?} against {rows_out:?}");
            let sum = |key: &str| iterations.iter().map(|r| r[key].as_f64().unwrap_or(0.0)).sum::<f64>();
            let measured = NativeRun { wall, iterations: sum("seconds"), host: sum("host_seconds") };
            eprintln!("  native run {}/{}: {:.2}s, iterations {:.2}s of which the fake host {:.2}s", run + 1, self.runs, wall.as_secs_f64(), measured.iterations, measured.host);
            native_runs.push(measured);
        }

        let spark = if self.spark_runs > 0 {
            let out_spark = self.work.join(format!("out_spark_{label}"));
            Some(median(&crate::measure::time_command(
                || {
                    let mut command = Command::new("python3");
                    command.arg(self.peers.join("pyspark_seed_job.py")).arg(config).arg(&out_spark).arg(&keys).arg("2");
                    command
                },
                self.spark_runs,
                &format!("pyspark {label}"),
            )?))
        } else {
            None
        };

        eprintln!("python: one-row-py, {ONE_ROW_ITERATIONS} iterations");
        let python_one_row = self.overhead_under(&self.work, PerIteration::EmitPython, ONE_ROW_ITERATIONS, 8, false)?;
        let rust_one_row = self.overhead_under(&self.work, PerIteration::Emit, ONE_ROW_ITERATIONS, 8, false)?;

        eprintln!("python: host memory per running iteration");
        let memory = self.python_memory(&guests.one_row)?;

        // Medians, each figure of its own runs.
        let corral_wall = median(&corral_runs.iter().map(|r| r.wall).collect::<Vec<_>>());
        let corral_iterations = Duration::from_millis(median(&corral_runs.iter().map(|r| r.iterations_ms).collect::<Vec<_>>()));
        let peak_rss = median(&corral_runs.iter().map(|r| r.peak_rss).collect::<Vec<_>>());
        let native_wall = median(&native_runs.iter().map(|r| r.wall).collect::<Vec<_>>());
        let native_iterations = median(&native_runs.iter().map(|r| r.iterations).collect::<Vec<_>>());
        let native_own = median(&native_runs.iter().map(|r| r.iterations - r.host).collect::<Vec<_>>());
        let native_host = median(&native_runs.iter().map(|r| r.host).collect::<Vec<_>>());
        let per_core = corral_iterations.as_secs_f64();

        let mut md = vec![
            format!(
                "Python transforms built by componentize-py {} (CPython 3.14 inside the component, about 18 MB); the native baseline runs under the machine's {}.",
                guests.componentize_py,
                python_version()
            ),
            String::new(),
            format!("### seed-model-py on the seed job: {label} rows, iterations 0..63, 2 workers"),
            String::new(),
            "`transforms/seed-model-py` (the seed step in Python with the SDK `corral_guest`: the Arrow IPC codec in pure Python inside the sandbox) on the same config and job as the Rust seed job above. Every one of its 64 outputs holds the same rows as DuckDB's job (id, key and name equal, score within 1e-9), checked in this run.".to_owned(),
            String::new(),
            "| engine | wall time (median) | runs | corral's ratio |".to_owned(),
            "|---|---|---|---|".to_owned(),
            format!("| corral, `seed-model-py` (a Wasm sandbox per iteration) | {} | {} | 1.00 |", secs(corral_wall), corral_runs.len()),
        ];
        if let Some(spark) = spark {
            md.push(format!(
                "| PySpark 3.5 (`pyspark_seed_job.py`, local[2], FAIR) | {} | {} | PySpark / corral = **{:.1}x faster** |",
                secs(spark),
                self.spark_runs,
                spark.as_secs_f64() / corral_wall.as_secs_f64()
            ));
        }
        md.extend([
            String::new(),
            format!("Host peak RSS of the corral run: {} (the 10M-row table as Arrow is about 428 MiB).", mib(peak_rss)),
            String::new(),
            "**Against the same transform run natively under CPython**, by the SDK's fake host (`corral_guest.testing.MemoryHost`, `bench/python/native_seed.py`): the same `app.py` and SDK over the same config (read by pyarrow, untimed, into IPC batches of 65,536 rows that the SDK decodes, as corral's host hands them over), the 64 iterations one after another on one core; its rows per iteration are checked equal to corral's. CPython runs one iteration at a time (the GIL), so the comparison is of the iterations' time added up (each ran on one core), not of the wall: corral's iterations' `wall_ms` summed (instantiating the sandbox, the host's filter and Parquet writing included) against the native iterations' time. The fake host's own work (filtering the table in Python, encoding and decoding IPC) is the native host's inside corral, so it is shown apart and the ratio is taken against the transform's own time, which favours native.".to_owned(),
            String::new(),
            "| | time (median) | corral ÷ this |".to_owned(),
            "|---|---|---|".to_owned(),
            format!("| corral: the 64 iterations' wall added up (2 workers) | {} | 1.00 |", secs(corral_iterations)),
            format!("| native CPython: the 64 iterations, the transform's own time | {:.2} s | **{:.2}x** |", native_own, per_core / native_own),
            format!("| native CPython: the 64 iterations with the fake host's work ({:.2} s of it) | {:.2} s | {:.2}x |", native_host, native_iterations, per_core / native_iterations),
            format!(
                "| whole processes: corral's run (load, compile from cache, 64 iterations on 2 workers) against the native script (pyarrow load, 64 iterations on one core) | {} against {} | {:.2}x |",
                secs(corral_wall),
                secs(native_wall),
                corral_wall.as_secs_f64() / native_wall.as_secs_f64()
            ),
            String::new(),
            format!(
                "The first run of a new component compiles it (about 40 MB into corral's cache): that run took {} for iteration 0 alone, against a run from the cache in the table above.",
                secs(warm_up)
            ),
            String::new(),
            format!("### One-row Python iterations: {ONE_ROW_ITERATIONS} iterations, 8 in flight on 2 cores"),
            String::new(),
            "`transforms/one-row-py` emits a row naming its iteration and reads nothing, as the Rust `transforms/one-row` does; both measured here, one after the other, output on the local disk (ext4), each run into a new directory; medians.".to_owned(),
            String::new(),
            "| transform | iterations/s (whole process) | time to first output | guest work (fuel) an iteration |".to_owned(),
            "|---|---|---|---|".to_owned(),
            format!(
                "| `one-row-py` (Python) | **{:.0}** | {:.0} ms | {} |",
                python_one_row.rate,
                python_one_row.first.as_secs_f64() * 1000.0,
                python_one_row.fuel
            ),
            format!("| `one-row` (Rust) | {:.0} | {:.0} ms | {} |", rust_one_row.rate, rust_one_row.first.as_secs_f64() * 1000.0, rust_one_row.fuel),
            format!("| Python ÷ Rust | {:.2}x the rate | | {:.1}x |", python_one_row.rate / rust_one_row.rate, python_one_row.fuel as f64 / rust_one_row.fuel.max(1) as f64),
            String::new(),
            "### Memory per running Python iteration".to_owned(),
            String::new(),
        ]);
        md.extend(memory);
        Ok(md)
    }

    /// The host's peak RSS for `one-row-py` at 1 and at 8 iterations in
    /// flight, and the linear memory an iteration peaked at: its lines.
    fn python_memory(&self, one_row: &Path) -> anyhow::Result<Vec<String>> {
        let config = self.one_row_per_key_config(crate::cases::OVERHEAD_CONFIG_ROWS)?;
        let job = self.job_partitioned("python_memory", one_row, &config, None, "")?;
        let range = format!("0..{MEMORY_ITERATIONS}");
        let mut measured = Vec::new();
        for workers in [1usize, 8] {
            let mut rss = Vec::new();
            let mut linear = 0;
            for run in 0..self.runs {
                let out = self.work.join(format!("out_python_memory_{workers}_{run}"));
                let _ = std::fs::remove_dir_all(&out);
                let dir = out.display().to_string();
                let w = workers.to_string();
                crate::measure::time_command(|| self.corral(&job, &["--iterations", &range, "--max-workers", &w, "--out", &dir]), 1, &format!("one-row-py, {workers} in flight"))?;
                let manifest = manifest(&out)?;
                rss.push(manifest["job"]["peak_rss_bytes"].as_u64().context("peak_rss_bytes")?);
                linear = manifest["iterations"].as_array().context("iterations")?.iter().filter_map(|r| r["peak_memory_bytes"].as_u64()).max().unwrap_or(0);
                std::fs::remove_dir_all(&out)?;
            }
            measured.push((workers, median(&rss), linear));
        }
        let (one, eight) = (measured[0], measured[1]);
        let per_iteration = eight.1.saturating_sub(one.1) / 7;
        Ok(vec![
            format!("`one-row-py`, {MEMORY_ITERATIONS} iterations, at 1 and at 8 in flight on 2 cores; the host's peak RSS (`job.peak_rss_bytes`, median of {} runs) and the largest linear memory an iteration reached (`peak_memory_bytes` of its record).", self.runs),
            String::new(),
            "| iterations in flight | host peak RSS | an iteration's linear memory at its peak |".to_owned(),
            "|---|---|---|".to_owned(),
            format!("| 1 | {} | {} |", mib(one.1), mib(one.2)),
            format!("| 8 | {} | {} |", mib(eight.1), mib(eight.2)),
            format!("| **each running Python iteration adds** ((8 − 1) ÷ 7) | **{}** | |", mib(per_iteration)),
        ])
    }
}

/// `python3 --version`.
fn python_version() -> String {
    Command::new("python3")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "python3".to_owned())
}

//! `corral-bench`: corral against its baselines (DuckDB and PySpark on the
//! seed job, the same transform native against Wasm), measured side by
//! side in one run, medians of several runs; writes the generated part of
//! BENCHMARKS.md. Run it with `cargo run --release -p corral-bench`.

mod cases;
mod measure;
mod native;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, ensure};
use clap::Parser;

use crate::cases::{Bench, OVERHEAD_CONFIG_ROWS, Overhead, PerIteration, memory_line};
use crate::measure::{mib, secs};

/// corral's benchmarks. Needs python3 with duckdb and pyspark, java 17, and
/// the peers' scripts (`../shared/peers`).
#[derive(Debug, Parser)]
struct Args {
    /// The peers' scripts: gen_config.py, duckdb_job.py, pyspark_seed_job.py.
    #[arg(long, default_value = "../shared/peers")]
    peers: PathBuf,
    /// Scratch space (configs, outputs).
    #[arg(long, default_value = "target/bench")]
    work: PathBuf,
    /// Rows of the large config.
    #[arg(long, default_value_t = 10_000_000)]
    rows: usize,
    /// Runs per figure (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Rows of the config for the largest corral-only run (0 skips it).
    #[arg(long, default_value_t = 50_000_000)]
    scale_rows: usize,
    /// Runs of the PySpark job (0 skips it).
    #[arg(long, default_value_t = 3)]
    spark_runs: usize,
    /// The file to write; the part between its `bench:begin` and
    /// `bench:end` markers is replaced.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
}

/// Iterations of the PySpark job in the per-iteration overhead (a Spark job
/// each: 10,000 would take most of an hour).
const SPARK_OVERHEAD_ITERATIONS: usize = 1_000;

/// Rows (and keys) of the config with one row a key declared as
/// `partition_by`.
const SELECTIVE_ROWS: usize = 1_000_000;

/// Iterations in flight for the per-iteration overhead: 4 per core.
const OVERHEAD_IN_FLIGHT: usize = 8;

const BEGIN: &str = "<!-- bench:begin (written by `cargo run --release -p corral-bench`) -->";
const END: &str = "<!-- bench:end -->";

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.runs >= 1, "--runs must be at least 1");
    std::fs::create_dir_all(&args.work)?;
    let work = std::path::absolute(&args.work)?;
    let peers = std::path::absolute(&args.peers)?;
    ensure!(peers.join("gen_config.py").exists(), "no peers' scripts in {} (--peers)", peers.display());
    check_peers_installed(args.spark_runs > 0)?;

    eprintln!("building corral and the transforms (release)");
    cargo(&["build", "--release", "-p", "corral"])?;
    cargo(&["build", "--release", "--target", "wasm32-wasip2", "-p", "seed-model", "-p", "evil", "-p", "one-row"])?;
    let target = std::path::absolute("target")?;
    let bench = Bench {
        corral: target.join("release/corral"),
        seed_wasm: target.join("wasm32-wasip2/release/seed_model.wasm"),
        evil_wasm: target.join("wasm32-wasip2/release/evil.wasm"),
        one_row_wasm: target.join("wasm32-wasip2/release/one_row.wasm"),
        peers: peers.clone(),
        work: work.clone(),
        runs: args.runs,
        spark_runs: args.spark_runs,
    };

    // Leftovers of an interrupted earlier invocation, removed long before
    // the overhead case writes its own.
    bench.remove_overhead_outputs()?;
    let small = generate(&peers, &work, 1_000_000)?;
    let large = generate(&peers, &work, args.rows)?;
    let large_label = format!("{}M", args.rows / 1_000_000);

    eprintln!("seed job, {large_label} rows");
    let (seed_lines, large_wall, large_rss) = bench.seed_job(&large, &large_label)?;
    let (small_wall, small_rss) = if args.rows == 1_000_000 {
        (large_wall, large_rss)
    } else {
        eprintln!("seed job, 1M rows");
        let (_, wall, rss) = bench.seed_job(&small, "1M")?;
        (wall, rss)
    };
    eprintln!("seed job, {large_label} rows, config as Parquet");
    let parquet = bench.as_parquet(&large)?;
    let (parquet_wall, _) = bench.corral_seed(&parquet, &format!("{large_label}_parquet"))?;
    let scale = if args.scale_rows > 0 {
        let label = format!("{}M", args.scale_rows / 1_000_000);
        eprintln!("seed job, {label} rows (corral only)");
        let config = generate(&peers, &work, args.scale_rows)?;
        let (wall, rss) = bench.corral_seed(&config, &label)?;
        Some((label, wall, rss, arrow_bytes(&config)?))
    } else {
        None
    };
    eprintln!("partition_by on a key of one row a key");
    let selective = bench.selective_partition(SELECTIVE_ROWS)?;
    eprintln!("the sandbox's own cost");
    let (cost_lines, large_arrow) = bench.sandbox_cost(&large)?;
    let small_arrow = arrow_bytes(&small)?;
    eprintln!("per-iteration overhead");
    // The case first: a transform that emits one small batch. Its
    // runs, and the 10,000-iteration runs of the scanning one, are paired
    // with runs of the floor.
    let emit = bench.overhead_under(&work, PerIteration::Emit, 10_000, OVERHEAD_IN_FLIGHT, true)?;
    let mut overhead = Vec::new();
    for count in [10, 100, 1_000, 10_000] {
        overhead.push((count, bench.overhead_under(&work, PerIteration::ScanAndEmit, count, OVERHEAD_IN_FLIGHT, count == 10_000)?));
    }
    let at_cores = bench.overhead(10_000, 2)?;
    eprintln!("per-iteration overhead of the peers");
    let (duck_overhead, spark_overhead) = bench.overhead_peers(10_000, SPARK_OVERHEAD_ITERATIONS)?;
    // The same on tmpfs, where the disk costs next to nothing.
    let shm = Path::new("/dev/shm");
    let on_tmpfs = if shm.is_dir() {
        let root = shm.join(format!("corral-bench-{}", std::process::id()));
        std::fs::create_dir_all(&root)?;
        let measured = [PerIteration::Emit, PerIteration::ScanAndEmit]
            .map(|work| bench.overhead_under(&root, work, 10_000, OVERHEAD_IN_FLIGHT, true));
        std::fs::remove_dir_all(&root)?;
        let [emit, scan] = measured;
        Some((emit?, scan?))
    } else {
        None
    };
    eprintln!("fairness");
    let fairness = bench.fairness(&bench.one_row_per_key_config(OVERHEAD_CONFIG_ROWS)?)?;
    bench.remove_overhead_outputs()?;

    let caps = 2 * 512 * 1024 * 1024;
    let floored = overhead.last().expect("four counts").1;
    let Overhead { rate, wall, first, fuel, .. } = floored;
    let mut md = vec![
        BEGIN.to_owned(),
        String::new(),
        format!("Measured {} on {}; {}.", today(), machine(), versions()),
        format!("Medians of {} runs per figure (PySpark: {}), whole processes timed from spawn to exit.", args.runs, args.spark_runs),
        String::new(),
        format!("## Seed job: {large_label} rows, iterations 0..63, 2 workers"),
        String::new(),
        "The config generated by `gen_config.py` (CSV); corral with `partition_by = \"some_column\"`; the peers' own jobs.".to_owned(),
        String::new(),
    ];
    md.extend(seed_lines);
    md.extend([
        String::new(),
        format!(
            "The same job with the config as Parquet (converted by DuckDB: Snappy, row groups of 122,880 rows; corral decodes the row groups on both cores): corral **{}** against {} from CSV ({:.2}x).",
            secs(parquet_wall),
            secs(large_wall),
            parquet_wall.as_secs_f64() / large_wall.as_secs_f64()
        ),
    ]);
    md.extend([String::new(), "## The sandbox's own cost".to_owned(), String::new()]);
    md.extend(cost_lines);
    md.extend([
        String::new(),
        "## Overhead per iteration".to_owned(),
        String::new(),
        format!("The issue's case: 10,000 iterations of a transform that emits one small batch (`transforms/one-row`: a row of two columns naming its iteration; it reads nothing), {OVERHEAD_IN_FLIGHT} in flight on 2 cores, each written to the local disk (ext4) as a directory holding the Parquet part and `_SUCCESS` (with the record); each run into a new output directory. Baseline, the file system's own floor: the same 10,000 directories, each with a staged and renamed Parquet part and `_SUCCESS` of about the same sizes, written by a bare loop on 2 threads with no compute. Each run of corral is paired with a run of the floor just before it in the same place, because this machine's floor moves severalfold within minutes (see above); the share is the median of the pairs' ratios."),
        String::new(),
    ]);
    md.extend(floor_table(&emit, on_tmpfs.as_ref().map(|(emit, _)| emit)));
    md.extend([
        String::new(),
        format!(
            "Time to first output: **{:.0} ms**. Guest work of one iteration: {} units of fuel (about one a Wasm instruction; the same for every iteration and every run).",
            emit.first.as_secs_f64() * 1000.0,
            emit.fuel
        ),
        String::new(),
        "### Scanning a row, then emitting".to_owned(),
        String::new(),
        "The seed-model transform over a 10,000-row config with one row per key (no `partition_by`, as corral advises for a key of one row a key: the first scan indexes the rows' positions): each iteration scans one row and emits one small batch, written to the local disk (ext4) as a directory holding the Parquet part and `_SUCCESS` (with the record); each run into a new output directory.".to_owned(),
        String::new(),
        "| iterations in flight on 2 cores | 10,000 iterations (whole process) | iterations/s |".to_owned(),
        "|---|---|---|".to_owned(),
        format!("| {OVERHEAD_IN_FLIGHT} (more than the cores, as fair sharing intends) | {} | **{rate:.0}** |", secs(wall)),
        format!("| 2 (one per core) | {} | {:.0} |", secs(at_cores.wall), at_cores.rate),
    ]);
    if let Some(shm) = &on_tmpfs {
        md.push(format!("| {OVERHEAD_IN_FLIGHT}, output on tmpfs (`/dev/shm`) instead of the disk | {} | {:.0} |", secs(shm.1.wall), shm.1.rate));
    }
    md.extend([
        String::new(),
        "Against the floor, paired run by run as above:".to_owned(),
        String::new(),
    ]);
    md.extend(floor_table(&floored, on_tmpfs.as_ref().map(|(_, scan)| scan)));
    md.extend([
        String::new(),
        format!("Guest work of one such iteration: **{fuel}** units of fuel (about one a Wasm instruction; the same for every iteration and every run)."),
        String::new(),
        format!("Time to first output (process start to the first iteration committed, {OVERHEAD_IN_FLIGHT} in flight): **{:.0} ms**", first.as_secs_f64() * 1000.0),
        String::new(),
        "The peers on the same work (the same config, one output per iteration on the same disk, whole processes):".to_owned(),
        String::new(),
        "| engine | iterations | wall time | iterations/s | corral's ratio |".to_owned(),
        "|---|---|---|---|---|".to_owned(),
        format!("| corral, {OVERHEAD_IN_FLIGHT} in flight | 10,000 | {} | {rate:.0} | 1.00 |", secs(wall)),
        format!(
            "| DuckDB (`duckdb_job.py`, 2 threads) | 10,000 | {} | {:.0} | corral **{:.1}x faster** |",
            secs(duck_overhead),
            10_000.0 / duck_overhead.as_secs_f64(),
            duck_overhead.as_secs_f64() / wall.as_secs_f64()
        ),
    ]);
    if let Some(spark) = spark_overhead {
        let corral_1000 = overhead.iter().find(|(count, _)| *count == SPARK_OVERHEAD_ITERATIONS).map(|(_, measured)| measured.wall);
        if let Some(corral_1000) = corral_1000 {
            md.push(format!(
                "| PySpark 3.5 (`pyspark_seed_job.py`, 8 threads, FAIR) | {SPARK_OVERHEAD_ITERATIONS} (corral: {}) | {} | {:.0} | corral **{:.0}x faster** |",
                secs(corral_1000),
                secs(spark),
                SPARK_OVERHEAD_ITERATIONS as f64 / spark.as_secs_f64(),
                spark.as_secs_f64() / corral_1000.as_secs_f64()
            ));
        }
    }
    md.extend([
        String::new(),
        "## Memory".to_owned(),
        String::new(),
        "| config rows | config as Arrow | corral's peak RSS | running caps (2 × 512 MiB) | peak / Arrow | within 1.5 × Arrow + caps |".to_owned(),
        "|---|---|---|---|---|---|".to_owned(),
        memory_line("1M", small_rss, small_arrow, caps),
        memory_line(&large_label, large_rss, large_arrow, caps),
    ]);
    if let Some((label, _, rss, arrow)) = &scale {
        md.push(memory_line(label, *rss, *arrow, caps));
    }
    let [(partitioned_wall, partitioned_rss), (unpartitioned_wall, unpartitioned_rss)] = selective;
    md.extend([
        String::new(),
        format!("## `partition_by` on a key of one row a key: {}M rows, iterations 0..63, 2 workers", SELECTIVE_ROWS / 1_000_000),
        String::new(),
        "The seed job over a config whose `some_column` is unique (an id), with `partition_by = \"some_column\"` declared and without (the baseline: the first scan indexes the rows' positions). corral indexes positions for the declared key too once it has too many keys to partition.".to_owned(),
        String::new(),
        "| job | wall time (load and 64 iterations) | peak RSS | against no partition_by |".to_owned(),
        "|---|---|---|---|".to_owned(),
        format!("| no `partition_by` | {} | {} | 1.00x / 1.00x |", secs(unpartitioned_wall), mib(unpartitioned_rss)),
        format!(
            "| `partition_by = \"some_column\"` | {} | {} | **{:.2}x** time, **{:.2}x** memory |",
            secs(partitioned_wall),
            mib(partitioned_rss),
            partitioned_wall.as_secs_f64() / unpartitioned_wall.as_secs_f64(),
            partitioned_rss as f64 / unpartitioned_rss.max(1) as f64
        ),
    ]);
    md.extend([
        String::new(),
        "## Fairness: 2 long iterations and 200 short ones, 8 in flight on 2 cores".to_owned(),
        String::new(),
    ]);
    md.extend(fairness);
    md.extend([
        String::new(),
        "## How the cost grows".to_owned(),
        String::new(),
        "| workload | wall time (median) |".to_owned(),
        "|---|---|".to_owned(),
        format!("| seed job, 1M rows, 64 iterations | {} |", secs(small_wall)),
        format!("| seed job, {large_label} rows, 64 iterations | {} |", secs(large_wall)),
        format!("| seed job, {large_label} rows as Parquet, 64 iterations | {} |", secs(parquet_wall)),
    ]);
    if let Some((label, wall, _, _)) = &scale {
        md.push(format!("| seed job, {label} rows, 64 iterations (corral only) | {} |", secs(*wall)));
    }
    for (count, measured) in &overhead {
        md.push(format!("| {count} seed-model iterations of one row, {OVERHEAD_IN_FLIGHT} in flight | {} |", secs(measured.wall)));
    }
    md.extend([String::new(), END.to_owned()]);
    write_section(&args.out, &md.join("\n"))?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

/// The table of an overhead case against the file system's floor: its
/// runs on the disk and, if measured, on tmpfs.
fn floor_table(disk: &Overhead, tmpfs: Option<&Overhead>) -> Vec<String> {
    let mut lines = vec![
        "| output on | floor, iterations/s | corral, iterations/s (same runs) | corral's share of the floor |".to_owned(),
        "|---|---|---|---|".to_owned(),
    ];
    for (label, measured) in [("the disk (ext4)", Some(disk)), ("tmpfs (`/dev/shm`)", tmpfs)] {
        if let Some(Overhead { rate, floor: Some((floor, share)), .. }) = measured {
            lines.push(format!("| {label} | {floor:.0} | **{rate:.0}** | {:.0}% |", 100.0 * share));
        }
    }
    lines
}

fn cargo(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())).args(args).status()?;
    ensure!(status.success(), "cargo {} failed", args.join(" "));
    Ok(())
}

/// Fails at once, naming what to install, if python3 cannot import the
/// peers' packages (duckdb; pyspark and java when Spark runs), rather than
/// minutes into the run when the first peer is called.
fn check_peers_installed(spark: bool) -> anyhow::Result<()> {
    let modules = if spark { "import duckdb, pyspark" } else { "import duckdb" };
    let imported = Command::new("python3").args(["-c", modules]).output().context("running python3")?;
    ensure!(
        imported.status.success(),
        "the peers' Python packages are missing ({}): pip install duckdb==2.0.0 pyspark==3.5.3 (see the README's Benchmarks)",
        String::from_utf8_lossy(&imported.stderr).lines().last().unwrap_or("python3 failed").trim()
    );
    if spark {
        let java = Command::new("java").arg("-version").output();
        ensure!(java.is_ok_and(|o| o.status.success()), "PySpark needs java 17 on the PATH (or pass --spark-runs 0)");
    }
    Ok(())
}

/// The config of `rows` rows, generated by the peers' generator once.
fn generate(peers: &Path, work: &Path, rows: usize) -> anyhow::Result<PathBuf> {
    let path = work.join(format!("config_{rows}.csv"));
    if !path.exists() {
        eprintln!("generating {} ({rows} rows)", path.display());
        let partial = path.with_extension("csv.partial");
        let status = Command::new("python3").arg(peers.join("gen_config.py")).arg(&partial).arg(rows.to_string()).status()?;
        ensure!(status.success(), "gen_config.py failed");
        std::fs::rename(&partial, &path)?;
    }
    Ok(path)
}

/// The config's size once loaded as Arrow by corral.
fn arrow_bytes(csv: &Path) -> anyhow::Result<u64> {
    let spec = corral::job::Job::validate(
        toml::from_str(&format!("iterations = [0]\n[config]\npath = \"{}\"\n[transform]\nmodule = \"m.wasm\"\n[output]\ndir = \"o\"\n", csv.display()))?,
        Path::new("/"),
        None,
        &Default::default(),
    )?
    .config;
    let store: std::sync::Arc<dyn object_store::ObjectStore> = std::sync::Arc::new(object_store::local::LocalFileSystem::new());
    let runtime = tokio::runtime::Runtime::new()?;
    let table = runtime.block_on(corral::config_table::ConfigTable::load(&spec, store))?;
    Ok(table.memory_bytes() as u64)
}

fn today() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()[..10].to_owned()
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).unwrap_or("?").trim().to_owned();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo.lines().find(|l| l.starts_with("MemTotal")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0);
    format!("{cores} cores ({model}), {:.0} GiB", mem_kib as f64 / 1024.0 / 1024.0)
}

fn versions() -> String {
    let out = |cmd: &str, args: &[&str]| {
        Command::new(cmd).args(args).output().ok().map(|o| {
            let text = if o.stdout.is_empty() { o.stderr } else { o.stdout };
            String::from_utf8_lossy(&text).lines().next().unwrap_or_default().trim().to_owned()
        })
    };
    let python = |module: &str| out("python3", &["-c", &format!("import {module}; print({module}.__version__)")]).unwrap_or_default();
    format!(
        "{}, wasmtime 48.0.8, arrow/parquet 60.1, DuckDB {}, PySpark {}, {}",
        out("rustc", &["--version"]).unwrap_or_default(),
        python("duckdb"),
        python("pyspark"),
        out("java", &["-version"]).unwrap_or_default()
    )
}

/// Replaces the marked section of `path` with `section` (appends it if unmarked).
fn write_section(path: &Path, section: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|_| "# corral benchmarks\n".to_owned());
    let text = match (text.find(BEGIN), text.find(END)) {
        (Some(a), Some(b)) if a < b => format!("{}{section}{}", &text[..a], &text[b + END.len()..]),
        _ => format!("{}\n{section}\n", text.trim_end()),
    };
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

//! `corral-bench`: corral against its baselines (DuckDB and PySpark on the
//! seed job, the same transform native against Wasm), measured side by
//! side in one run, medians of several runs; writes the generated part of
//! BENCHMARKS.md. Run it with `cargo run --release -p corral-bench`.

mod ab;
mod cases;
mod measure;
mod mixed;
mod native;
mod python;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use clap::{Parser, ValueEnum};

use crate::ab::Baseline;
use crate::cases::{Bench, OVERHEAD_CONFIG_ROWS, Overhead, PerIteration, memory_line};
use crate::measure::{mib, secs};

/// corral's benchmarks. Needs python3 with duckdb and pyspark, java 17, and
/// the peers' scripts (`../shared/peers`); the A/B and the mixed run alone
/// (`--only ab,mixed`) need only python3 and the peers' generator, and
/// `/usr/bin/time` for the mixed run; the Python part (`--only python`)
/// needs componentize-py, pyarrow, duckdb and pyspark.
#[derive(Debug, Parser)]
struct Args {
    /// The peers' scripts: gen_config.py, duckdb_job.py, pyspark_seed_job.py.
    #[arg(long, default_value = "../shared/peers")]
    peers: PathBuf,
    /// Scratch space (configs, outputs, the baseline's worktree and binary).
    #[arg(long, default_value = "target/bench")]
    work: PathBuf,
    /// Rows of the large config (the A/B's seed job runs on it too).
    #[arg(long, default_value_t = 10_000_000)]
    rows: usize,
    /// Runs per figure (the median is reported; the A/B's pairs, the mixed
    /// run's pairs of mixed and all-good runs).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Rows of the config for the largest corral-only run (0 skips it: its
    /// generation, about 8 minutes once, and its runs).
    #[arg(long, default_value_t = 50_000_000)]
    scale_rows: usize,
    /// Runs of the PySpark job (0 skips PySpark and the java check; 1 runs
    /// each PySpark figure once).
    #[arg(long, default_value_t = 3)]
    spark_runs: usize,
    /// A corral binary built from the commit before the change under test:
    /// measured beside the current one, runs alternating, on the seed job
    /// at --rows and on 10,000 one-row iterations (the A/B section).
    #[arg(long, value_name = "PATH", conflicts_with = "baseline_commit")]
    baseline_corral: Option<PathBuf>,
    /// Build the A/B's baseline from REV (e.g. e8d67a6): a git worktree of
    /// it under --work, its corral built in release with CARGO_TARGET_DIR
    /// set to this workspace's target dir (the dependencies are reused),
    /// copied to --work as corral-SHORT, all before the current corral is
    /// built.
    #[arg(long, value_name = "REV")]
    baseline_commit: Option<String>,
    /// Run only these parts, comma-separated (default: all of them; `ab`
    /// only with a baseline). Only the sections of the parts run are
    /// rewritten in --out; the others are left as they are.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "PARTS")]
    only: Vec<Part>,
    /// The file to write; the part between its `bench:begin` and
    /// `bench:end` markers is replaced, and the A/B's and the mixed run's
    /// own marked sections after it.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
}

/// A part of the benchmark, with its own marked section of the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Part {
    /// Everything between bench:begin and bench:end: the seed job against
    /// DuckDB and PySpark, the sandbox's cost, the per-iteration overhead,
    /// memory, partition_by, fairness.
    Main,
    /// The A/B of the host against --baseline-corral or --baseline-commit.
    Ab,
    /// 300 iterations of the evil transform, a third hostile, against the
    /// same all good.
    Mixed,
    /// Python transforms: seed-model-py against PySpark and against
    /// itself under CPython, one-row-py, memory per Python iteration
    /// (needs componentize-py and pyarrow).
    Python,
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
const AB_BEGIN: &str = "<!-- bench:ab:begin (written by `cargo run --release -p corral-bench -- --baseline-commit REV`) -->";
const AB_END: &str = "<!-- bench:ab:end -->";
const MIXED_BEGIN: &str = "<!-- bench:mixed:begin (written by `cargo run --release -p corral-bench`) -->";
const MIXED_END: &str = "<!-- bench:mixed:end -->";
const PYTHON_BEGIN: &str = "<!-- bench:python:begin (written by `cargo run --release -p corral-bench -- --only python`) -->";
const PYTHON_END: &str = "<!-- bench:python:end -->";

/// How long ext4 (without a journal, as here) scans recently deleted
/// inodes on every create after many deletions: the A/B's per-iteration
/// runs wait this long after the clean-up of an earlier invocation's
/// outputs (see BENCHMARKS.md).
const RECENTLY_DELETED: Duration = Duration::from_secs(65);

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.runs >= 1, "--runs must be at least 1");
    let has_baseline = args.baseline_corral.is_some() || args.baseline_commit.is_some();
    let parts: Vec<Part> = if args.only.is_empty() {
        [Part::Main, Part::Ab, Part::Mixed, Part::Python].into_iter().filter(|p| *p != Part::Ab || has_baseline).collect()
    } else {
        args.only.clone()
    };
    let runs = |part: Part| parts.contains(&part);
    ensure!(!runs(Part::Ab) || has_baseline, "--only ab needs --baseline-corral PATH or --baseline-commit REV");
    std::fs::create_dir_all(&args.work)?;
    let work = std::path::absolute(&args.work)?;
    let peers = std::path::absolute(&args.peers)?;
    ensure!(peers.join("gen_config.py").exists(), "no peers' scripts in {} (--peers)", peers.display());
    if runs(Part::Main) || runs(Part::Python) {
        check_peers_installed(args.spark_runs > 0)?;
    } else {
        // The configs are still generated by the peers' script.
        let python = Command::new("python3").args(["-c", "pass"]).status();
        ensure!(python.is_ok_and(|s| s.success()), "python3 is needed for the peers' generator (gen_config.py)");
    }
    if runs(Part::Mixed) {
        ensure!(Path::new(measure::GNU_TIME).exists(), "the mixed run measures max RSS with {} (GNU time: apt-get install time)", measure::GNU_TIME);
        mixed::read_mix(&mixed::mix_path())?;
    }
    let target = std::path::absolute("target")?;

    // The baseline first: its build overwrites target/release/corral,
    // which the current build below puts back.
    let baseline = match (&args.baseline_corral, &args.baseline_commit) {
        (Some(path), _) => {
            let corral = std::path::absolute(path)?;
            ensure!(corral.is_file(), "no corral binary at {} (--baseline-corral)", corral.display());
            Some(Baseline { label: format!("`{}`", path.display()), corral })
        }
        (None, Some(rev)) => Some(ab::build_baseline(rev, &work, &target)?),
        (None, None) => None,
    };
    eprintln!("building corral and the transforms (release)");
    cargo(&["build", "--release", "-p", "corral"])?;
    cargo(&["build", "--release", "--target", "wasm32-wasip2", "-p", "seed-model", "-p", "evil", "-p", "one-row"])?;
    // A copy, so that a build by someone else during the run cannot swap
    // the binary between the cases.
    let current = work.join("corral-current");
    std::fs::copy(target.join("release/corral"), &current).context("copying the current corral")?;
    if let Some(baseline) = &baseline
        && std::fs::read(&baseline.corral)? == std::fs::read(&current)?
    {
        eprintln!("warning: the baseline {} is the same binary as the current corral", baseline.corral.display());
    }
    let python = if runs(Part::Python) {
        eprintln!("building the Python transforms (componentize-py)");
        Some(python::build(&std::path::absolute(".")?, &work)?)
    } else {
        None
    };
    let bench = Bench {
        corral: current,
        seed_wasm: target.join("wasm32-wasip2/release/seed_model.wasm"),
        evil_wasm: target.join("wasm32-wasip2/release/evil.wasm"),
        one_row_wasm: target.join("wasm32-wasip2/release/one_row.wasm"),
        python,
        peers: peers.clone(),
        work: work.clone(),
        runs: args.runs,
        spark_runs: args.spark_runs,
    };
    let current_label = ab::current_label();

    // Leftovers of an interrupted earlier invocation, removed long before
    // the per-iteration cases write their own.
    let removed = bench.remove_overhead_outputs()?;
    let removed_at = Instant::now();
    let header = |what: &str| format!("Measured {} on {}; {}. {what}", today(), machine(), rustc_version());

    if runs(Part::Mixed) {
        eprintln!("mixed run: {} iterations, a third hostile", mixed::ITERATIONS);
        let config = generate(&peers, &work, mixed::ROWS)?;
        let mut md = vec![MIXED_BEGIN.to_owned(), String::new()];
        md.extend(bench.mixed(&config, &current_label, &header(&format!("Medians of {} runs of each job.", args.runs)))?);
        md.extend([String::new(), MIXED_END.to_owned()]);
        write_section(&args.out, MIXED_BEGIN, MIXED_END, &md.join("\n"), &[AB_END, END])?;
        eprintln!("wrote the mixed run's section of {}", args.out.display());
    }
    if let Some(baseline) = baseline.as_ref().filter(|_| runs(Part::Ab)) {
        let large = generate(&peers, &work, args.rows)?;
        if removed > 0 {
            let waited = removed_at.elapsed();
            if waited < RECENTLY_DELETED {
                eprintln!("waiting {:.0} s after removing {removed} earlier outputs (ext4 scans recently deleted inodes)", (RECENTLY_DELETED - waited).as_secs_f64());
                cases::settle_disk()?;
                std::thread::sleep(RECENTLY_DELETED - waited);
            }
        }
        let mut md = vec![AB_BEGIN.to_owned(), String::new()];
        let measured = header(&format!("Medians of {} runs of each binary.", args.runs));
        md.extend(bench.ab(baseline, &current_label, &measured, &large, &format!("{}M", args.rows / 1_000_000), OVERHEAD_IN_FLIGHT)?);
        md.extend([String::new(), AB_END.to_owned()]);
        write_section(&args.out, AB_BEGIN, AB_END, &md.join("\n"), &[END])?;
        eprintln!("wrote the A/B's section of {}", args.out.display());
    }
    if runs(Part::Python) {
        let large = generate(&peers, &work, args.rows)?;
        let mut md = vec![PYTHON_BEGIN.to_owned(), String::new(), "## Python transforms".to_owned(), String::new()];
        md.push(header(&format!("Medians of {} runs per figure (PySpark: {}).", args.runs, args.spark_runs)));
        md.push(String::new());
        md.extend(bench.python_section(&std::path::absolute(".")?, &large, &format!("{}M", args.rows / 1_000_000))?);
        md.extend([String::new(), PYTHON_END.to_owned()]);
        write_section(&args.out, PYTHON_BEGIN, PYTHON_END, &md.join("\n"), &[MIXED_END, AB_END, END])?;
        eprintln!("wrote the Python section of {}", args.out.display());
    }
    if runs(Part::Main) {
        let mut md = vec![BEGIN.to_owned(), String::new()];
        md.extend(main_section(&args, &bench)?);
        md.extend([String::new(), END.to_owned()]);
        write_section(&args.out, BEGIN, END, &md.join("\n"), &[])?;
        eprintln!("wrote the main section of {}", args.out.display());
    }
    bench.remove_overhead_outputs()?;
    Ok(())
}

/// The cases between bench:begin and bench:end; their lines.
fn main_section(args: &Args, bench: &Bench) -> anyhow::Result<Vec<String>> {
    let (peers, work) = (&bench.peers, &bench.work);
    let small = generate(peers, work, 1_000_000)?;
    let large = generate(peers, work, args.rows)?;
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
        let config = generate(peers, work, args.scale_rows)?;
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
    let emit = bench.overhead_under(work, PerIteration::Emit, 10_000, OVERHEAD_IN_FLIGHT, true)?;
    let mut overhead = Vec::new();
    for count in [10, 100, 1_000, 10_000] {
        overhead.push((count, bench.overhead_under(work, PerIteration::ScanAndEmit, count, OVERHEAD_IN_FLIGHT, count == 10_000)?));
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

    let caps = 2 * 512 * 1024 * 1024;
    let floored = overhead.last().expect("four counts").1;
    let Overhead { rate, wall, first, fuel, .. } = floored;
    let mut md = vec![
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
    Ok(md)
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

/// rustc's version line and the engine's.
fn rustc_version() -> String {
    let rustc = Command::new("rustc").arg("--version").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    format!("{}, wasmtime 48.0.8, release build", rustc.unwrap_or_default())
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

/// Replaces the section of `path` marked by `begin` and `end` with
/// `section` (which carries the markers); if it is not there, inserts it
/// just after the first of the markers `after` found, else appends it.
/// The rest of the file is left as it is.
fn write_section(path: &Path, begin: &str, end: &str, section: &str, after: &[&str]) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|_| "# corral benchmarks\n".to_owned());
    let text = match (text.find(begin), text.find(end)) {
        (Some(a), Some(b)) if a < b => format!("{}{section}{}", &text[..a], &text[b + end.len()..]),
        _ => match after.iter().find_map(|marker| text.find(marker).map(|at| at + marker.len())) {
            Some(at) => format!("{}\n\n{section}{}", &text[..at], &text[at..]),
            None => format!("{}\n\n{section}\n", text.trim_end()),
        },
    };
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_replaced_or_inserted_after_their_anchor_and_the_rest_is_kept() {
        let dir = std::env::temp_dir().join(format!("corral-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("B.md");
        std::fs::write(&path, format!("# title\n\nhand text\n{BEGIN}\nold main\n{END}\n\ntrailer\n")).unwrap();
        write_section(&path, MIXED_BEGIN, MIXED_END, &format!("{MIXED_BEGIN}\nmixed 1\n{MIXED_END}"), &[AB_END, END]).unwrap();
        write_section(&path, AB_BEGIN, AB_END, &format!("{AB_BEGIN}\nab 1\n{AB_END}"), &[END]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let at = |s: &str| text.find(s).unwrap_or_else(|| panic!("{s} in {text}"));
        assert!(at("old main") < at("ab 1") && at("ab 1") < at("mixed 1") && at("mixed 1") < at("trailer"), "{text}");
        write_section(&path, AB_BEGIN, AB_END, &format!("{AB_BEGIN}\nab 2\n{AB_END}"), &[END]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("ab 2") && !text.contains("ab 1"), "{text}");
        assert!(text.contains("old main") && text.contains("mixed 1") && text.contains("hand text\n") && text.ends_with("trailer\n"), "{text}");
        assert_eq!(text.matches(AB_BEGIN).count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_takes_a_list_of_parts() {
        let args = Args::try_parse_from(["corral-bench", "--only", "ab,mixed", "--baseline-commit", "e8d67a6"]).unwrap();
        assert_eq!(args.only, [Part::Ab, Part::Mixed]);
        assert!(Args::try_parse_from(["corral-bench", "--baseline-corral", "x", "--baseline-commit", "y"]).is_err());
    }
}

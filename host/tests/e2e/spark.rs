//! The Spark launcher (`launchers/spark/corral_spark.py`) with PySpark in
//! local mode: one task per shard runs the real `corral` binary, a killed
//! task is retried and resumes, and the driver merges one manifest.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use corral_tests::s3::S3Server;
use corral_tests::{files_under, guests, parquet_batches, read_json, seed_rows};

use crate::support::{Fixture, corral_env, record};

const LAUNCHER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../launchers/spark/corral_spark.py");

/// The launcher as a command: Spark in local mode with 2 threads and up to
/// 4 attempts per task, the test's environment plus `env`.
fn launcher(job: &Path, out: &str, shards: usize, env: &[(String, String)]) -> Command {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("corral-module-cache");
    let mut command = Command::new("python3");
    command
        .arg(LAUNCHER)
        .args(["--master", "local[2,4]", "--shards", &shards.to_string(), "--corral", env!("CARGO_BIN_EXE_corral")])
        .args(["--out", out])
        .arg(job)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("CORRAL_CACHE_DIR", cache)
        .env("PYSPARK_PYTHON", "python3")
        .env("NO_COLOR", "1");
    command
}

#[test]
fn spark_launcher_runs_shards_on_s3_and_merges_one_manifest() {
    const ITERATIONS: [i64; 9] = [2, 3, 4, 56, 22, 15, 6, 7, 9];
    let fx = Fixture::new(20_000);
    let job = fx.job(guests::SEED_MODEL, &ITERATIONS, "param1 = 1.5\nparam2 = 2.0", "partition_by = \"some_column\"");
    let server = S3Server::shared();
    let bucket = server.new_bucket("spark");
    bucket.put("in/config.csv", std::fs::read(fx.config()).unwrap());
    let config = bucket.url("in/config.csv");
    std::fs::write(&job, std::fs::read_to_string(&job).unwrap().replace("path = \"config.csv\"", &format!("path = \"{config}\""))).unwrap();

    let single = corral_env(&[&"run", &job, &"--out", &bucket.url("single")], &server.env());
    assert_eq!(single.code, 0, "{}", single.stderr);

    let spark = launcher(&job, &bucket.url("spark"), 4, &server.env()).output().unwrap();
    let stderr = String::from_utf8_lossy(&spark.stderr);
    assert_eq!(spark.status.code(), Some(0), "{stderr}");

    let manifest: serde_json::Value = serde_json::from_slice(&bucket.get("spark/_manifest.json").unwrap()).unwrap();
    let listed: Vec<i64> = manifest["iterations"].as_array().unwrap().iter().map(|r| r["iteration"].as_i64().unwrap()).collect();
    assert_eq!(listed, ITERATIONS, "one merged manifest, in the job's order");
    assert_eq!(manifest["summary"]["succeeded"], ITERATIONS.len());
    assert_eq!(manifest["job"]["shard"], serde_json::Value::Null);
    for n in ITERATIONS {
        let spark = bucket.get(&format!("spark/iter_{n}/part-00000.parquet")).unwrap();
        let single = bucket.get(&format!("single/iter_{n}/part-00000.parquet")).unwrap();
        assert_eq!(seed_rows(parquet_batches(spark)), seed_rows(parquet_batches(single)), "iteration {n}");
        assert_eq!(record(&manifest, n)["status"], "succeeded");
    }
    let shards: Vec<String> = bucket.keys("spark/_shards");
    assert_eq!(shards.len(), 4, "{shards:?}");
    // Each shard ran as many iterations at once as its task had CPUs
    // (spark.task.cpus = 1), not the machine's cores.
    for key in &shards {
        let shard: serde_json::Value = serde_json::from_slice(&bucket.get(key).unwrap()).unwrap();
        assert_eq!(shard["job"]["limits"]["max_workers"], 1, "{key}: {}", shard["job"]);
        assert_eq!(shard["job"]["threads"], 1, "{key}: {}", shard["job"]);
    }
}

/// The pids of running `corral` processes whose command line holds `needle`.
fn corral_pids(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.starts_with(env!("CARGO_BIN_EXE_corral")) && cmdline.contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn a_killed_shard_task_is_retried_by_spark_and_resumes() {
    let fx = Fixture::new(2_000);
    let iterations: Vec<i64> = (0..12).collect();
    let job = fx.job(guests::EVIL, &iterations, "delay_ms = 300", "");
    let out = fx.out().display().to_string();
    let mut spark = launcher(&job, &out, 4, &[]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();

    // Shard 1 has iterations 1, 5 and 9; kill its corral once one is
    // committed (its `_SUCCESS` holds its record).
    let committed = |n: i64| fx.out().join(format!("iter_{n}/_SUCCESS"));
    let needle = format!("{} --shard 1/4", job.display());
    let waiting = Instant::now();
    let pid = loop {
        assert!(waiting.elapsed() < Duration::from_secs(180), "shard 1 never got going");
        assert!(spark.try_wait().unwrap().is_none(), "the launcher ended before the kill");
        let pids = corral_pids(&needle);
        if !pids.is_empty() && [1, 5, 9].iter().any(|&n| committed(n).exists()) {
            break pids[0];
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap().success());
    let before: Vec<(i64, String)> = [1, 5, 9]
        .into_iter()
        .filter_map(|n| {
            let path = committed(n);
            path.exists().then(|| (n, read_json(&path)["started"].as_str().unwrap().to_owned()))
        })
        .collect();
    assert!(!before.is_empty() && before.len() < 3, "{before:?}");

    let finished = spark.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&finished.stderr);
    assert_eq!(finished.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("exited with -9"), "Spark saw the task fail and retried it: {stderr}");

    let manifest = fx.manifest();
    let listed: Vec<i64> = manifest["iterations"].as_array().unwrap().iter().map(|r| r["iteration"].as_i64().unwrap()).collect();
    assert_eq!(listed, iterations, "every iteration once");
    assert_eq!(manifest["summary"]["succeeded"], 12);
    for (n, started) in &before {
        let r = record(&manifest, *n);
        assert_eq!(r["carried_over"], true, "the retried task resumed rather than redo {n}: {r}");
        assert_eq!(r["started"].as_str().unwrap(), started);
    }
    let mut expected: BTreeSet<String> = BTreeSet::from(["_manifest.json".to_owned()]);
    for k in 0..4 {
        expected.insert(format!("_shards/shard-{k}-of-4.json"));
    }
    for n in &iterations {
        expected.insert(format!("iter_{n}/part-00000.parquet"));
        expected.insert(format!("iter_{n}/_SUCCESS"));
    }
    let files: BTreeSet<String> = files_under(&fx.out()).into_iter().collect();
    assert_eq!(files, expected, "each output exactly once, nothing partial");
}

#[test]
fn the_spark_job_fails_when_an_iteration_fails() {
    let fx = Fixture::new(2_000);
    let iterations: Vec<i64> = (0..6).collect();
    let job = fx.job(guests::EVIL, &iterations, r#"evil = { "4" = "error" }"#, "");
    let out = fx.out().display().to_string();
    let spark = launcher(&job, &out, 2, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&spark.stderr);
    assert_eq!(spark.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("iterations failed"), "{stderr}");
    let manifest = fx.manifest();
    assert_eq!(manifest["summary"]["failed"], 1);
    assert_eq!(record(&manifest, 4)["error"]["kind"], "guest_error");
    assert_eq!(manifest["summary"]["succeeded"], 5, "a failed iteration is recorded, not retried by Spark");
}

#[test]
fn a_hive_layout_output_is_read_by_spark_duckdb_and_pyarrow_as_one_dataset() {
    let fx = Fixture::new(3_000);
    let iterations: Vec<i64> = vec![0, 3, 5, 8, 13];
    let job = fx.job(guests::EVIL, &iterations, "", "");
    std::fs::write(&job, std::fs::read_to_string(&job).unwrap().replace("dir = \"out\"", "dir = \"out\"\nlayout = \"hive\"")).unwrap();
    let out = fx.out();
    let spark = launcher(&job, &out.display().to_string(), 2, &[]).output().unwrap();
    assert_eq!(spark.status.code(), Some(0), "{}", String::from_utf8_lossy(&spark.stderr));
    for n in &iterations {
        assert!(out.join(format!("iteration={n}/part-00000.parquet")).exists(), "iteration={n}/");
        assert!(!out.join(format!("iter_{n}")).exists());
    }
    assert_eq!(fx.manifest()["job"]["layout"], "hive");
    let want: Vec<String> = iterations
        .iter()
        .map(|&n| format!("{n} {}", fx.rows.iter().filter(|r| r.some_column == n).count()))
        .collect();
    // Spark's partition discovery (the `_` files and directories are
    // skipped), DuckDB's hive_partitioning and pyarrow's datasets.
    let readers = [
        "from pyspark.sql import SparkSession\n\
         spark = SparkSession.builder.master('local[1]').getOrCreate()\n\
         df = spark.read.parquet(sys.argv[1])\n\
         assert 'iteration' in df.columns, df.columns\n\
         rows = sorted((r['iteration'], r['count']) for r in df.groupBy('iteration').count().collect())\n\
         spark.stop()",
        "import duckdb\n\
         rows = duckdb.sql(f\"select iteration, count(*) from read_parquet('{sys.argv[1]}/*/*.parquet', hive_partitioning = true) group by 1 order by 1\").fetchall()",
        "import pyarrow.dataset as ds\n\
         table = ds.dataset(sys.argv[1], format='parquet', partitioning='hive', exclude_invalid_files=True).to_table()\n\
         counts = {}\n\
         for n in table.column('iteration').to_pylist(): counts[n] = counts.get(n, 0) + 1\n\
         rows = sorted(counts.items())",
    ];
    for reader in readers {
        let script = format!("import sys\n{reader}\nprint('\\n'.join(f'{{n}} {{c}}' for n, c in rows))\n");
        let read = Command::new("python3").arg("-c").arg(&script).arg(&out).env("PYSPARK_PYTHON", "python3").output().unwrap();
        assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
        let got: Vec<String> = String::from_utf8_lossy(&read.stdout).lines().map(str::to_owned).collect();
        assert_eq!(got, want, "rows per iteration, read as one dataset by:\n{reader}");
    }
}

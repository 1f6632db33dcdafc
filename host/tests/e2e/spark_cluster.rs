//! The Spark launcher on a real Spark standalone cluster on 127.0.0.1 (a
//! master and two workers from the PySpark package's `spark-class`, each
//! worker one core), submitted the way the README says (`spark-submit
//! --files corral,job.toml … corral_spark.py`): an executor JVM killed
//! mid-run, its task retried on the other, what it committed carried over;
//! each shard with its task's workers; the Hive layout read back by Spark.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use corral_tests::{guests, read_json};

use crate::support::{Fixture, corral, record};

const LAUNCHER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../launchers/spark/corral_spark.py");

/// The PySpark package's directory (its `bin/` has `spark-class`).
fn spark_home() -> PathBuf {
    let out = Command::new("python3")
        .args(["-c", "import os, pyspark; print(os.path.dirname(pyspark.__file__))"])
        .output()
        .expect("python3 with pyspark");
    assert!(out.status.success(), "pyspark is needed: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A master and its workers, each its own process group, killed (with the
/// executors they started) when dropped.
struct Cluster {
    url: String,
    processes: Vec<Child>,
    logs: PathBuf,
}

impl Cluster {
    fn start(dir: &Path, workers: usize) -> Cluster {
        let home = spark_home();
        let logs = dir.join("spark-logs");
        std::fs::create_dir_all(&logs).unwrap();
        let port = free_port();
        let url = format!("spark://127.0.0.1:{port}");
        let class = |name: &str, args: &[String]| {
            let log = std::fs::File::create(logs.join(format!("{name}.log"))).unwrap();
            let mut command = Command::new(home.join("bin/spark-class"));
            command
                .args(args)
                .env("SPARK_HOME", &home)
                .env("SPARK_LOCAL_IP", "127.0.0.1")
                .env("SPARK_WORKER_DIR", dir.join(format!("{name}-work")))
                .env("PYSPARK_PYTHON", "python3")
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .process_group(0);
            command.spawn().expect("starting spark-class")
        };
        let mut processes = vec![class(
            "master",
            &["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", &port.to_string(), "--webui-port", &free_port().to_string()]
                .map(str::to_owned),
        )];
        for k in 0..workers {
            let args = [
                "org.apache.spark.deploy.worker.Worker",
                "--host",
                "127.0.0.1",
                "--cores",
                "1",
                "--memory",
                "1g",
                "--webui-port",
                &free_port().to_string(),
                &url,
            ];
            processes.push(class(&format!("worker-{k}"), &args.map(str::to_owned)));
        }
        let cluster = Cluster { url, processes, logs };
        // Ready when every worker has registered with the master.
        let started = Instant::now();
        loop {
            let registered = (0..workers)
                .filter(|k| cluster.log(&format!("worker-{k}")).contains("Successfully registered with master"))
                .count();
            if registered == workers {
                return cluster;
            }
            assert!(started.elapsed() < Duration::from_secs(120), "the cluster did not come up:\n{}", cluster.log("master"));
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.logs.join(format!("{name}.log"))).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The executors are the workers' children, in their process groups.
        for child in &mut self.processes {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in executor_pids() {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
    }
}

/// The pids of running executor JVMs (`CoarseGrainedExecutorBackend`) of
/// this test's cluster (their command lines name its work directory).
fn executor_pids_under(marker: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("CoarseGrainedExecutorBackend") && cmdline.contains(marker) {
            pids.push(pid);
        }
    }
    pids
}

/// Every executor JVM started by a cluster of these tests.
fn executor_pids() -> Vec<u32> {
    executor_pids_under("corral-cluster-test")
}

#[test]
fn the_launcher_on_a_standalone_cluster_survives_a_killed_executor_and_writes_one_dataset() {
    let fx = Fixture::new(4_000);
    let iterations: Vec<i64> = (0..16).collect();
    let job = fx.job(guests::EVIL, &iterations, "delay_ms = 250", "");
    std::fs::write(&job, std::fs::read_to_string(&job).unwrap().replace("dir = \"out\"", "dir = \"out\"\nlayout = \"hive\"")).unwrap();
    let single = fx.dir.path().join("single");
    let alone = corral(&[&"run", &job, &"--out", &single]);
    assert_eq!(alone.code, 0, "{}", alone.stderr);

    let cluster = Cluster::start(fx.dir.path(), 2);
    // As the README says: ship the binary and the job with --files.
    let ship = fx.dir.path().join("ship");
    std::fs::create_dir_all(&ship).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_corral"), ship.join("corral")).unwrap();
    let text = std::fs::read_to_string(&job).unwrap();
    // The config by absolute path (the module's already is), as every
    // executor must see it.
    let absolute = text.replace("path = \"config.csv\"", &format!("path = \"{}\"", fx.config().display()));
    std::fs::write(ship.join("job.toml"), absolute).unwrap();
    let out = fx.out();
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("corral-module-cache");
    let files = format!("{},{}", ship.join("corral").display(), ship.join("job.toml").display());
    let mut submit = Command::new(spark_home().join("bin/spark-submit"))
        .args(["--master", &cluster.url, "--conf", "spark.task.maxFailures=4", "--conf", "spark.executor.extraJavaOptions=-Dcorral-cluster-test=1"])
        .args(["--files", &files, LAUNCHER, "--shards", "4", "--corral", "corral", "--out", &out.display().to_string(), "job.toml"])
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .env("PYSPARK_PYTHON", "python3")
        .env("CORRAL_CACHE_DIR", cache)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Both executors run a shard; kill one executor's JVM once an iteration
    // is committed, while its shard still has iterations to go.
    let committed = || -> Vec<i64> { iterations.iter().copied().filter(|n| out.join(format!("iteration={n}/_SUCCESS")).exists()).collect() };
    let waiting = Instant::now();
    let killed = loop {
        assert!(waiting.elapsed() < Duration::from_secs(240), "no executor got going:\n{}", cluster.log("master"));
        assert!(submit.try_wait().unwrap().is_none(), "the job ended before the kill");
        let executors = executor_pids();
        if executors.len() == 2 && committed().len() >= 2 {
            break executors[0];
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(Command::new("kill").args(["-KILL", &killed.to_string()]).status().unwrap().success());
    let before_kill: BTreeMap<i64, String> =
        committed().into_iter().map(|n| (n, read_json(&out.join(format!("iteration={n}/_SUCCESS")))["started"].as_str().unwrap().to_owned())).collect();

    let submitted = submit.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&submitted.stderr);
    assert_eq!(submitted.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("Lost executor"), "Spark saw the executor go and retried its task: {stderr}");

    let manifest = fx.manifest();
    let listed: Vec<i64> = manifest["iterations"].as_array().unwrap().iter().map(|r| r["iteration"].as_i64().unwrap()).collect();
    assert_eq!(listed, iterations, "every iteration once");
    assert_eq!(manifest["summary"]["succeeded"], 16);
    // What was committed before the kill stayed: carried over by the
    // retried task, not redone. (Which attempt's shard manifest is merged
    // depends on timing: the killed executor's corral, orphaned, may finish
    // its shard too, and both manifests cover every iteration; so the
    // check is on the records' start times, not on `carried_over`.)
    assert!(before_kill.len() >= 2, "{before_kill:?}");
    for (n, started) in &before_kill {
        assert_eq!(record(&manifest, *n)["started"].as_str().unwrap(), started, "iteration {n} was not redone");
        let success = read_json(&out.join(format!("iteration={n}/_SUCCESS")));
        assert_eq!(success["started"].as_str().unwrap(), started, "iteration {n}'s commit is the first one");
    }
    // Each shard ran as many iterations at once as its task had CPUs.
    for k in 0..4 {
        let shard = read_json(&out.join(format!("_shards/shard-{k}-of-4.json")));
        assert_eq!(shard["job"]["limits"]["max_workers"], 1, "shard {k}: {}", shard["job"]);
    }
    // The outputs equal the single process's.
    for n in &iterations {
        let part = format!("iteration={n}/part-00000.parquet");
        assert_eq!(corral_tests::read_parquet(&out.join(&part)), corral_tests::read_parquet(&single.join(&part)), "iteration {n}");
    }
    // Spark reads the output as one dataset with its iteration column.
    let script = "import sys\nfrom pyspark.sql import SparkSession\n\
                  spark = SparkSession.builder.master('local[1]').getOrCreate()\n\
                  rows = sorted((r['iteration'], r['count']) for r in spark.read.parquet(sys.argv[1]).groupBy('iteration').count().collect())\n\
                  print('\\n'.join(f'{n} {c}' for n, c in rows))\nspark.stop()\n";
    let read = Command::new("python3").arg("-c").arg(script).arg(&out).env("PYSPARK_PYTHON", "python3").output().unwrap();
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    let want: Vec<String> = iterations.iter().map(|&n| format!("{n} {}", fx.rows.iter().filter(|r| r.some_column == n).count())).collect();
    let got: Vec<String> = String::from_utf8_lossy(&read.stdout).lines().map(str::to_owned).collect();
    assert_eq!(got, want, "rows per iteration, read by Spark as one dataset");
    drop(cluster);
    assert!(executor_pids().is_empty(), "the cluster's processes are stopped");
}

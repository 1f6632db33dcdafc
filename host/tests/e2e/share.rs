//! A corral that fits the share of the machine it is given: under an
//! affinity mask (`taskset`), an address-space limit (`prlimit --as`,
//! `ulimit -v`) and, where the machine lets a test make one, a cgroup's
//! memory limit, it sizes its workers, threads and memory budget from what
//! it may use, records that in the manifest, and runs correctly.

use corral_tests::guests;

use crate::support::{Fixture, corral_command_under};

/// `corral ARGS` (with the tests' environment) run through `wrapper`
/// (e.g. `taskset -c 0`); its exit code and stderr.
fn wrapped(wrapper: &[&str], args: &[&dyn AsRef<std::ffi::OsStr>]) -> (i32, String) {
    let output = corral_command_under(wrapper, args).output().expect("running the wrapper");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// A job over the fixture with no `max_workers` (the share decides).
fn job_without_workers(fx: &Fixture, iterations: &[i64], params: &str) -> std::path::PathBuf {
    let job = fx.job(guests::EVIL, iterations, params, "");
    let text = std::fs::read_to_string(&job).unwrap().replace("max_workers = 2\n", "");
    std::fs::write(&job, text).unwrap();
    job
}

/// The most threads `pid` had while it ran, sampled every 5 ms.
fn peak_threads(child: &mut std::process::Child) -> usize {
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", child.id())) {
            peak = peak.max(tasks.count());
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    peak
}

#[test]
fn under_an_affinity_mask_of_one_cpu_corral_runs_one_worker_on_one_thread() {
    let fx = Fixture::new(2_000);
    let job = job_without_workers(&fx, &(0..6).collect::<Vec<_>>(), "delay_ms = 100");
    let (code, stderr) = wrapped(&["taskset", "-c", "0"], &[&"run", &job]);
    assert_eq!(code, 0, "{stderr}");
    let manifest = fx.manifest();
    let job_info = &manifest["job"];
    assert_eq!(job_info["share"]["cpus"], 1, "{job_info}");
    assert_eq!(job_info["limits"]["max_workers"], 1, "{job_info}");
    assert_eq!(job_info["concurrency"], 1, "{job_info}");
    assert_eq!(job_info["threads"], 1, "{job_info}");
    assert_eq!(manifest["summary"]["succeeded"], 6);

    // The process's threads on one CPU, sampled while it runs: main, one
    // runtime worker, the epoch ticker, the log flusher, the compiler, the
    // config's parser and blocking-pool threads for file I/O. (A sampled
    // peak is not compared with an unrestricted run's: blocking-pool
    // threads come and go, and on two CPUs the difference is one thread.)
    let args: [&dyn AsRef<std::ffi::OsStr>; 6] = [&"run", &job, &"--max-workers", &"1", &"--out", &fx.dir.path().join("threads")];
    let mut child = corral_command_under(&["taskset", "-c", "0"], &args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let one = peak_threads(&mut child);
    assert!(one <= 10, "{one} threads on one CPU");

    // Unrestricted, the same job sizes its threads from every CPU.
    let machine_cpus = job_info["share"]["machine_cpus"].as_u64().unwrap();
    let out = fx.dir.path().join("all_cpus");
    let (code, stderr) = wrapped(&["env"], &[&"run", &job, &"--out", &out]);
    assert_eq!(code, 0, "{stderr}");
    let all: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(all["job"]["share"]["cpus"], machine_cpus, "{}", all["job"]);
    assert_eq!(all["job"]["limits"]["max_workers"], machine_cpus, "{}", all["job"]);
    let concurrency = all["job"]["concurrency"].as_u64().unwrap();
    assert_eq!(all["job"]["threads"], machine_cpus.min(concurrency), "{}", all["job"]);
}

#[test]
fn under_an_address_space_limit_of_4_gib_corral_fits_its_budget_and_runs() {
    let fx = Fixture::new(2_000);
    let job = job_without_workers(&fx, &(0..8).collect::<Vec<_>>(), "");
    let limit = 4u64 << 30;
    let (code, stderr) = wrapped(&["prlimit", &format!("--as={limit}"), "--"], &[&"run", &job]);
    assert_eq!(code, 0, "every iteration runs under the limit:\n{stderr}");
    let manifest = fx.manifest();
    let job_info = &manifest["job"];
    assert_eq!(job_info["share"]["address_space_bytes"], limit, "{job_info}");
    let budget = job_info["limits"]["memory_budget_bytes"].as_u64().unwrap();
    assert!(budget <= limit / 2, "the budget {budget} leaves the host half the address space");
    assert_eq!(manifest["summary"]["succeeded"], 8, "{}", manifest["summary"]);
    // The pool's slots at 256 MiB each do not fit: one warning, instances
    // on demand.
    assert_eq!(stderr.matches("allocating instances on demand").count(), 1, "{stderr}");
}

#[test]
fn under_ulimit_v_a_seed_job_gives_the_same_outputs() {
    let fx = Fixture::new(5_000);
    let job = fx.job(guests::SEED_MODEL, &[0, 1, 2, 3, 4, 5], "param1 = 1.5\nparam2 = 2.0", "");
    let limited = fx.dir.path().join("limited");
    let script = format!("ulimit -v {}; exec \"$@\"", 3 << 20);
    let (code, stderr) = wrapped(&["sh", "-c", &script, "sh"], &[&"run", &job, &"--out", &limited]);
    assert_eq!(code, 0, "{stderr}");
    let free = crate::support::corral(&[&"run", &job]);
    assert_eq!(free.code, 0, "{}", free.stderr);
    for n in 0..6 {
        let part = format!("iter_{n}/part-00000.parquet");
        assert_eq!(
            corral_tests::read_seed_output(&limited.join(&part)),
            corral_tests::read_seed_output(&fx.out().join(&part)),
            "iteration {n}"
        );
    }
}

/// A cgroup v1 or v2 with a memory limit, made for the test and removed
/// after it; `None` where the test may not make one (not root, no
/// writable hierarchy).
struct MemoryCgroup {
    dir: std::path::PathBuf,
    procs: std::path::PathBuf,
}

impl MemoryCgroup {
    fn new(limit: u64) -> Option<MemoryCgroup> {
        let name = format!("corral-test-{}", std::process::id());
        for (root, file) in [("/sys/fs/cgroup/memory", "memory.limit_in_bytes"), ("/sys/fs/cgroup", "memory.max")] {
            let root = std::path::Path::new(root);
            if !root.join("cgroup.procs").exists() {
                continue;
            }
            let dir = root.join(&name);
            if std::fs::create_dir(&dir).is_err() {
                continue;
            }
            if std::fs::write(dir.join(file), limit.to_string()).is_ok() {
                return Some(MemoryCgroup { procs: dir.join("cgroup.procs"), dir });
            }
            let _ = std::fs::remove_dir(&dir);
        }
        None
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[test]
fn inside_a_cgroup_with_a_memory_limit_the_budget_is_three_quarters_of_it() {
    let limit = 1u64 << 30;
    let Some(cgroup) = MemoryCgroup::new(limit) else {
        eprintln!("skipped: this machine does not let the test make a memory cgroup (the unit tests read both versions' files)");
        return;
    };
    let fx = Fixture::new(2_000);
    let job = job_without_workers(&fx, &[0, 1, 2], "");
    let script = format!("echo $$ > {}; exec \"$@\"", cgroup.procs.display());
    let (code, stderr) = wrapped(&["sh", "-c", &script, "sh"], &[&"run", &job]);
    assert_eq!(code, 0, "{stderr}");
    let job_info = &fx.manifest()["job"];
    assert_eq!(job_info["share"]["cgroup_memory_bytes"], limit, "{job_info}");
    assert_eq!(job_info["limits"]["memory_budget_bytes"], limit / 4 * 3, "{job_info}");
    drop(cgroup);
}

//! `--resume`: a rerun finishes only what is missing, and a run killed with
//! SIGKILL is completed without losing or duplicating work.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use corral_tests::{files_under, guests, read_json, read_parquet};

use crate::support::{Fixture, corral, corral_command, record};

/// What an evil passthrough iteration `n` must output: its config rows.
pub(crate) fn check_passthrough(fx: &Fixture, n: i64) {
    let want = fx.rows.iter().filter(|r| r.some_column == n).count();
    let got: usize = read_parquet(&fx.part(n)).iter().map(|b| b.num_rows()).sum();
    assert_eq!(got, want, "rows of iteration {n}");
    assert!(fx.out().join(format!("iter_{n}/_SUCCESS")).exists());
}

/// The files a complete run of `iterations` leaves, and nothing else.
fn expected_files(iterations: impl IntoIterator<Item = i64>) -> Vec<String> {
    let mut files = vec!["_manifest.json".to_owned()];
    for n in iterations {
        files.push(format!("iter_{n}/part-00000.parquet"));
        files.push(format!("iter_{n}/_SUCCESS"));
    }
    files.sort();
    files
}

/// Starts `corral run JOB` and returns once `count` iterations have
/// committed (their `_SUCCESS` holds their record), with the run still going.
fn run_until_committed(fx: &Fixture, job: &std::path::Path, count: usize) -> std::process::Child {
    let mut child = corral_command(&[&"run", &job], &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let done = || std::fs::read_dir(fx.out()).map_or(0, |d| d.flatten().filter(|e| e.path().join("_SUCCESS").exists()).count());
    let waiting = Instant::now();
    while done() < count {
        assert!(child.try_wait().unwrap().is_none(), "corral finished before it could be stopped");
        assert!(waiting.elapsed() < Duration::from_secs(120), "not enough committed after 2 minutes");
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

fn started_of(fx: &Fixture, n: i64) -> String {
    read_json(&fx.out().join(format!("iter_{n}/_SUCCESS")))["started"].as_str().unwrap().to_owned()
}

#[test]
fn resume_runs_only_what_is_missing() {
    let fx = Fixture::new(2_000);
    let job = fx.job(guests::EVIL, &(0..8).collect::<Vec<_>>(), "", "");
    let first = corral(&[&"run", &job, &"--iterations", &"0..4"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let started: Vec<String> = (0..4).map(|n| started_of(&fx, n)).collect();
    let mtime = |n: i64| std::fs::metadata(fx.part(n)).unwrap().modified().unwrap();
    let mtimes: Vec<_> = (0..4).map(mtime).collect();
    // An output whose `_SUCCESS` is gone is not trusted, nor one whose
    // `_SUCCESS` holds no record (written by another tool).
    std::fs::remove_file(fx.out().join("iter_3/_SUCCESS")).unwrap();
    std::fs::write(fx.out().join("iter_2/_SUCCESS"), b"").unwrap();

    let resumed = corral(&[&"run", &job, &"--resume"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let manifest = fx.manifest();
    assert_eq!(manifest["iterations"].as_array().unwrap().len(), 8);
    assert_eq!(manifest["summary"]["succeeded"], 8);
    assert_eq!(manifest["summary"]["carried_over"], 2);
    assert_eq!(manifest["job"]["resumed"], true);
    for n in 0..8 {
        check_passthrough(&fx, n);
        assert_eq!(record(&manifest, n)["carried_over"], n < 2, "iteration {n}");
    }
    for n in 0..2 {
        assert_eq!(started_of(&fx, n), started[n as usize], "iteration {n} was not rerun");
        assert_eq!(mtime(n), mtimes[n as usize], "iteration {n}'s output was not rewritten");
    }
    assert_ne!(started_of(&fx, 2), started[2], "iteration 2's _SUCCESS held no record and it ran again");
    assert_ne!(started_of(&fx, 3), started[3], "iteration 3 lost its _SUCCESS and ran again");
    assert_eq!(files_under(&fx.out()), expected_files(0..8));
    assert!(resumed.stdout.contains("2 carried over"), "{}", resumed.stdout);

    // Other params: nothing is carried over.
    let changed = corral(&[&"run", &job, &"--resume", &"--param", &"extra=1"]);
    assert_eq!(changed.code, 0, "{}", changed.stderr);
    assert_eq!(fx.manifest()["summary"]["carried_over"], 0);
}

#[test]
fn a_run_killed_with_sigkill_is_completed_by_resume() {
    let fx = Fixture::new(2_000);
    let iterations: Vec<i64> = (0..12).collect();
    let job = fx.job(guests::EVIL, &iterations, "delay_ms = 250", "");
    let mut child = run_until_committed(&fx, &job, 4);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!fx.out().join("_manifest.json").exists(), "killed before the manifest");
    // What the killed run committed, as the records in the markers say.
    let finished: BTreeMap<i64, String> = iterations
        .iter()
        .filter(|n| fx.out().join(format!("iter_{n}/_SUCCESS")).exists())
        .map(|&n| (n, started_of(&fx, n)))
        .collect();
    assert!(finished.len() >= 4 && finished.len() < iterations.len(), "{finished:?}");

    let resumed = corral(&[&"run", &job, &"--resume"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let manifest = fx.manifest();
    let listed: Vec<i64> = manifest["iterations"].as_array().unwrap().iter().map(|r| r["iteration"].as_i64().unwrap()).collect();
    assert_eq!(listed, iterations, "every iteration listed once, in order");
    assert_eq!(manifest["summary"]["succeeded"], iterations.len());
    for &n in &iterations {
        check_passthrough(&fx, n);
        let carried = record(&manifest, n)["carried_over"].as_bool().unwrap();
        assert_eq!(carried, finished.contains_key(&n), "iteration {n}");
        if let Some(started) = finished.get(&n) {
            assert_eq!(&started_of(&fx, n), started, "iteration {n} finished before the kill and was not rerun");
        }
    }
    // Each output exactly once, and no staging file left behind.
    assert_eq!(files_under(&fx.out()), expected_files(iterations.iter().copied()));
}

#[test]
fn a_run_stopped_by_sigterm_is_completed_by_resume() {
    let fx = Fixture::new(2_000);
    let iterations: Vec<i64> = (0..10).collect();
    let job = fx.job(guests::EVIL, &iterations, "delay_ms = 250", "");
    let mut child = run_until_committed(&fx, &job, 3);
    let status = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert_eq!(child.wait().unwrap().code(), Some(143));
    let stopped = fx.manifest();
    let succeeded: Vec<i64> = iterations.iter().copied().filter(|&n| record(&stopped, n)["status"] == "succeeded").collect();
    assert!(stopped["summary"]["interrupted"].as_u64().unwrap() > 0, "{stopped}");

    let resumed = corral(&[&"run", &job, &"--resume"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let manifest = fx.manifest();
    assert_eq!(manifest["summary"]["succeeded"], 10);
    assert_eq!(manifest["summary"]["carried_over"], succeeded.len());
    for &n in &iterations {
        check_passthrough(&fx, n);
        assert_eq!(record(&manifest, n)["carried_over"], succeeded.contains(&n), "iteration {n}");
    }
    assert_eq!(files_under(&fx.out()), expected_files(iterations.iter().copied()));
}

#[test]
fn a_failure_record_is_removed_when_the_iteration_later_succeeds() {
    let fx = Fixture::new(1_000);
    let failing = fx.job(guests::EVIL, &[0, 1, 2], r#"evil = { "1" = "error" }"#, "");
    let first = corral(&[&"run", &failing]);
    assert_eq!(first.code, 1, "{}", first.stderr);
    // A failure leaves its record under `_records/`, and no output.
    let failure = read_json(&fx.out().join("_records/iter_1.json"));
    assert_eq!(failure["status"], "failed", "{failure}");
    assert_eq!(failure["error"]["kind"], "guest_error", "{failure}");
    assert_eq!(files_under(&fx.out()), {
        let mut files = expected_files([0, 2]);
        files.push("_records/iter_1.json".into());
        files.sort();
        files
    });

    let healthy = fx.job(guests::EVIL, &[0, 1, 2], "", "");
    let resumed = corral(&[&"run", &healthy, &"--resume"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    check_passthrough(&fx, 1);
    // The success replaced the failure record: one record per iteration.
    assert_eq!(files_under(&fx.out()), expected_files(0..3));
}

/// `bytes` with a custom section appended: the same component, another
/// sha256.
fn with_custom_section(bytes: &[u8]) -> Vec<u8> {
    let (name, payload) = (b"corral-test", b"another build");
    let mut out = bytes.to_vec();
    out.push(0); // a custom section
    out.push((1 + name.len() + payload.len()) as u8);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(payload);
    out
}

#[test]
fn resume_reruns_exactly_the_iterations_whose_inputs_changed_and_says_why() {
    let fx = Fixture::new(2_000);
    let module = fx.dir.path().join("evil.wasm");
    std::fs::copy(guests::EVIL, &module).unwrap();
    let job = fx.job("evil.wasm", &[0, 1, 2, 3], "", "");
    let first = corral(&[&"run", &job]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let resume = |extra: &[&dyn AsRef<std::ffi::OsStr>]| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"run", &job, &"--resume"];
        args.extend_from_slice(extra);
        let out = corral(&args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        out
    };
    let carried = || fx.manifest()["summary"]["carried_over"].as_u64().unwrap();
    // Each change reruns every iteration (each read the whole config),
    // saying why; the same inputs again carry every one over.
    let check_reran = |out: &crate::support::Output, why: &str| {
        assert_eq!(carried(), 0, "{why}: {}", fx.manifest()["summary"]);
        for n in 0..4 {
            assert!(out.stderr.contains(&format!("iteration {n} runs again: {why}")), "{why}, iteration {n}:\n{}", out.stderr);
        }
        resume(&[]);
        assert_eq!(carried(), 4, "unchanged after: {why}");
    };
    let unchanged = resume(&[]);
    assert_eq!(carried(), 4);
    assert!(!unchanged.stderr.contains("runs again"), "{}", unchanged.stderr);

    // The config: other rows in the same file.
    let rows = corral_tests::config_rows(2_000, 7);
    corral_tests::write_config_csv(&fx.config(), &rows);
    check_reran(&resume(&[]), "config changed");
    for n in 0..4 {
        let want = rows.iter().filter(|r| r.some_column == n).count();
        let got: usize = read_parquet(&fx.part(n)).iter().map(|b| b.num_rows()).sum();
        assert_eq!(got, want, "iteration {n} was computed from the new config");
    }
    // The module: the same component with a custom section added.
    std::fs::write(&module, with_custom_section(&std::fs::read(guests::EVIL).unwrap())).unwrap();
    check_reran(&resume(&[]), "module changed");
    // The params (the job file is rewritten in place).
    fx.job("evil.wasm", &[0, 1, 2, 3], "extra = 1", "");
    check_reran(&resume(&[]), "params changed");
    // The settings an output depends on.
    fx.job("evil.wasm", &[0, 1, 2, 3], "extra = 1", "batch_rows = 100");
    check_reran(&resume(&[]), "settings changed (config.batch_rows)");
    std::fs::write(&job, std::fs::read_to_string(&job).unwrap().replace("[output]", "[sandbox]\ndeterministic = true\n\n[output]")).unwrap();
    check_reran(&resume(&[]), "settings changed (deterministic)");
    // A new iteration: only it runs.
    let more = corral(&[&"run", &job, &"--resume", &"--iterations", &"0..5"]);
    assert_eq!(more.code, 0, "{}", more.stderr);
    assert_eq!(carried(), 4);
    assert!(!more.stderr.contains("runs again"), "{}", more.stderr);

    // The manifest holds the run's inputs, each record its own.
    let manifest = fx.manifest();
    let identity = manifest["job"]["config_identity"].as_str().unwrap().to_owned();
    let size = std::fs::metadata(fx.config()).unwrap().len();
    assert!(identity.starts_with(&format!("size {size} modified 20")), "{identity}");
    assert_eq!(manifest["job"]["settings"]["deterministic"], true);
    assert_eq!(manifest["job"]["settings"]["config.batch_rows"], 100);
    for n in 0..5 {
        assert_eq!(record(&manifest, n)["config_identity"], identity.as_str(), "iteration {n}");
        assert_eq!(record(&manifest, n)["settings"], manifest["job"]["settings"], "iteration {n}");
    }
    // What the resumes left equals a fresh run of the same job.
    let fresh = fx.dir.path().join("fresh");
    let out = corral(&[&"run", &job, &"--iterations", &"0..5", &"--out", &fresh]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for n in 0..5 {
        let part = format!("iter_{n}/part-00000.parquet");
        assert_eq!(read_parquet(&fx.out().join(&part)), read_parquet(&fresh.join(&part)), "iteration {n}");
    }
}

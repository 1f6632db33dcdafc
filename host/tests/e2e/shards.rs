//! `run --shard K/N` and `corral manifest merge`: shards run as separate
//! processes under one output, and their manifests join into one.

use corral_tests::guests;

use crate::support::{Fixture, corral, record};

#[test]
fn shards_run_apart_and_merge_into_one_manifest() {
    let fx = Fixture::new(2_000);
    let iterations: Vec<i64> = vec![5, 3, 9, 1, 7, 2, 8];
    let job = fx.job(guests::EVIL, &iterations, r#"evil = { "9" = "error" }"#, "");
    let out = fx.out();

    let early = corral(&[&"manifest", &"merge", &out]);
    assert_eq!(early.code, 2, "{}", early.stderr);
    assert!(early.stderr.contains("no shard manifests under"), "{}", early.stderr);

    for k in [0, 2] {
        let shard = corral(&[&"run", &job, &"--shard", &format!("{k}/3")]);
        assert_eq!(shard.code, if k == 2 { 1 } else { 0 }, "{}", shard.stderr);
        assert!(out.join(format!("_shards/shard-{k}-of-3.json")).exists());
    }
    assert!(!out.join("_manifest.json").exists(), "a shard writes only its own manifest");
    let missing = corral(&[&"manifest", &"merge", &out]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(missing.stderr.contains("shards 1 of 3 have no manifest"), "{}", missing.stderr);

    let shard = corral(&[&"run", &job, &"--shard", &"1/3"]);
    assert_eq!(shard.code, 0, "{}", shard.stderr);
    let merged = corral(&[&"manifest", &"merge", &out]);
    assert_eq!(merged.code, 1, "iteration 9 failed: {}", merged.stderr);
    let manifest = fx.manifest();
    let listed: Vec<i64> = manifest["iterations"].as_array().unwrap().iter().map(|r| r["iteration"].as_i64().unwrap()).collect();
    assert_eq!(listed, iterations, "the job's order");
    assert_eq!(manifest["summary"]["total"], 7);
    assert_eq!(manifest["summary"]["succeeded"], 6);
    assert_eq!(manifest["summary"]["failed"], 1);
    assert_eq!(record(&manifest, 9)["error"]["kind"], "guest_error");
    // Shards 0, 1 and 2 had 3, 2 and 2 iterations; each ran on up to 2 workers.
    assert_eq!(manifest["job"]["concurrency"], 6);
    let workers: std::collections::BTreeSet<u64> =
        manifest["iterations"].as_array().unwrap().iter().map(|r| r["worker"].as_u64().unwrap()).collect();
    assert!(workers.len() >= 3, "the shards' slots are kept apart: {workers:?}");
    assert!(merged.stdout.contains("6/7 succeeded"), "{}", merged.stdout);

    // A shard of another job (other params) does not merge.
    let other = corral(&[&"run", &job, &"--shard", &"1/3", &"--param", &"extra=1"]);
    assert_eq!(other.code, 0, "{}", other.stderr);
    let mismatched = corral(&[&"manifest", &"merge", &out]);
    assert_eq!(mismatched.code, 2, "{}", mismatched.stderr);
    assert!(mismatched.stderr.contains("are not of one run"), "{}", mismatched.stderr);
}

#[test]
fn a_bad_shard_is_refused() {
    let fx = Fixture::new(100);
    let job = fx.job(guests::EVIL, &[1, 2], "", "");
    let out = corral(&[&"run", &job, &"--shard", &"3/3"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("invalid `--shard`: `3/3` is not K/N with 0 <= K < N"), "{}", out.stderr);
    assert!(!fx.out().exists());
}

/// Runs two attempts of `corral run JOB --shard 0/2 --resume ARGS` at once
/// (as Spark's speculation or a rescheduled task of a stalled executor
/// does); their exit codes and stderr.
fn two_attempts_at_once(job: &std::path::Path, args: &[&str], envs: &[(String, String)]) -> Vec<(i32, String)> {
    let spawn = || {
        let mut command_args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"run", &job, &"--shard", &"0/2", &"--resume"];
        command_args.extend(args.iter().map(|a| a as &dyn AsRef<std::ffi::OsStr>));
        crate::support::corral_command(&command_args, envs)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let attempts = [spawn(), spawn()];
    attempts
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
        })
        .collect()
}

/// Iterations 0..16 in shard 0 of 2: the even ones.
const SHARD_ZERO: [i64; 8] = [0, 2, 4, 6, 8, 10, 12, 14];

/// What two shards of iterations 0..16 leave under `prefix` (`` or
/// `run/`), and nothing else: their manifests, each iteration's part and
/// `_SUCCESS`.
fn two_shards_files(prefix: &str) -> Vec<String> {
    let mut files: Vec<String> = (0..2).map(|k| format!("{prefix}_shards/shard-{k}-of-2.json")).collect();
    for n in 0..16 {
        files.push(format!("{prefix}iter_{n}/_SUCCESS"));
        files.push(format!("{prefix}iter_{n}/part-00000.parquet"));
    }
    files.sort();
    files
}

#[test]
fn two_attempts_of_a_shard_at_once_into_a_local_output_both_succeed_once_each_output() {
    let fx = Fixture::new(4_000);
    let job = fx.job(guests::EVIL, &(0..16).collect::<Vec<_>>(), "delay_ms = 40", "");
    // The other shard first, so that the output directory holds an earlier
    // run's work when the attempts start (they then look for a killed
    // run's staging files in each iteration's directory).
    let other = corral(&[&"run", &job, &"--shard", &"1/2"]);
    assert_eq!(other.code, 0, "{}", other.stderr);
    for (code, stderr) in two_attempts_at_once(&job, &[], &[]) {
        assert_eq!(code, 0, "each attempt's iterations ended committed:\n{stderr}");
    }
    assert_eq!(corral_tests::files_under(&fx.out()), two_shards_files(""), "every output once, no stale record, no staging file");
    let shard = corral_tests::read_json(&fx.out().join("_shards/shard-0-of-2.json"));
    let listed: Vec<i64> = shard["iterations"].as_array().unwrap().iter().map(|r| r["iteration"].as_i64().unwrap()).collect();
    assert_eq!(listed, SHARD_ZERO, "one manifest covering every iteration of the shard: {shard}");
    assert_eq!(shard["summary"]["succeeded"], SHARD_ZERO.len());
    for n in 0..16 {
        crate::resume::check_passthrough(&fx, n);
    }
    let merged = corral(&[&"manifest", &"merge", &fx.out()]);
    assert_eq!(merged.code, 0, "{}", merged.stderr);
}

#[test]
fn two_attempts_of_a_shard_at_once_on_s3_both_succeed_once_each_output() {
    let fx = Fixture::new(4_000);
    let job = fx.job(guests::EVIL, &(0..16).collect::<Vec<_>>(), "delay_ms = 40", "");
    let server = corral_tests::s3::S3Server::shared();
    let bucket = server.new_bucket("attempts");
    let out = bucket.url("run");
    let other = crate::support::corral_env(&[&"run", &job, &"--shard", &"1/2", &"--out", &out], &server.env());
    assert_eq!(other.code, 0, "{}", other.stderr);
    for (code, stderr) in two_attempts_at_once(&job, &["--out", &out], &server.env()) {
        assert_eq!(code, 0, "each attempt's iterations ended committed:\n{stderr}");
    }
    assert_eq!(bucket.keys("run"), two_shards_files("run/"), "every output once, no stale record");
    let shard: serde_json::Value = serde_json::from_slice(&bucket.get("run/_shards/shard-0-of-2.json").unwrap()).unwrap();
    assert_eq!(shard["summary"]["succeeded"], SHARD_ZERO.len(), "{shard}");
    for n in 0..16 {
        let want = fx.rows.iter().filter(|r| r.some_column == n).count();
        let got: usize = corral_tests::parquet_batches(bucket.get(&format!("run/iter_{n}/part-00000.parquet")).unwrap()).iter().map(|b| b.num_rows()).sum();
        assert_eq!(got, want, "iteration {n} is whole");
    }
}

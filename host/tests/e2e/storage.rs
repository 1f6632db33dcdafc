//! Config, outputs, records and the manifest on a real S3-compatible server
//! (moto, on 127.0.0.1), directly and through a fault-injecting proxy:
//! throttling, connections reset mid-upload, an unreachable store; and the
//! bad storage input that must fail in seconds with exit 2.

use std::collections::BTreeSet;
use std::path::PathBuf;

use corral_tests::fault_proxy::{Fault, FaultProxy};
use corral_tests::s3::{self, Bucket, S3Server};
use corral_tests::{guests, parquet_batches, read_seed_output, seed_rows, seed_step};

use crate::support::{Fixture, Output, corral_env, record};

const SEED_SEQUENCE: [i64; 9] = [2, 3, 4, 56, 22, 15, 6, 7, 9];
const SEED_PARAMS: &str = "param1 = 1.5\nparam2 = 2.0";

/// A seed job whose config is uploaded to a new bucket; `storage` is TOML
/// added as the job's `[storage]` section.
struct S3Job {
    fx: Fixture,
    job: PathBuf,
    bucket: Bucket,
}

impl S3Job {
    fn new(stem: &str, storage: &str) -> S3Job {
        let fx = Fixture::new(20_000);
        let job = fx.job(guests::SEED_MODEL, &SEED_SEQUENCE, SEED_PARAMS, "partition_by = \"some_column\"");
        if !storage.is_empty() {
            let mut text = std::fs::read_to_string(&job).unwrap();
            text.push_str(&format!("\n[storage]\n{storage}\n"));
            std::fs::write(&job, text).unwrap();
        }
        let bucket = S3Server::shared().new_bucket(stem);
        bucket.put("in/config.csv", std::fs::read(fx.config()).unwrap());
        S3Job { fx, job, bucket }
    }

    /// Runs the job with config and output in the bucket, via `endpoint`.
    fn run(&self, out: &str, endpoint: &str, extra: &[&str]) -> Output {
        let (config, out) = (self.bucket.url("in/config.csv"), self.bucket.url(out));
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"run", &self.job, &"--config", &config, &"--out", &out];
        for arg in extra {
            args.push(arg);
        }
        corral_env(&args, &s3::env_for(endpoint))
    }

    fn manifest(&self, out: &str) -> serde_json::Value {
        let bytes = self.bucket.get(&format!("{out}/_manifest.json")).expect("a manifest in the bucket");
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Checks iteration `n`'s output in the bucket against the native step.
    fn check_output(&self, out: &str, n: i64) {
        let part = self.bucket.get(&format!("{out}/iter_{n}/part-00000.parquet")).unwrap_or_else(|| panic!("no output of {n}"));
        assert_eq!(seed_rows(parquet_batches(part)), seed_step(&self.fx.rows, n, 1.5, 2.0), "iteration {n}");
        assert!(self.bucket.get(&format!("{out}/iter_{n}/_SUCCESS")).is_some(), "no _SUCCESS of {n}");
    }

    /// The keys an iteration has under `out`.
    fn keys_of(&self, out: &str, n: i64) -> Vec<String> {
        self.bucket.keys(&format!("{out}/iter_{n}"))
    }
}

fn expected_keys(out: &str, iterations: &[i64]) -> BTreeSet<String> {
    let mut keys = BTreeSet::from([format!("{out}/_manifest.json")]);
    for n in iterations {
        keys.insert(format!("{out}/iter_{n}/part-00000.parquet"));
        keys.insert(format!("{out}/iter_{n}/_SUCCESS"));
    }
    keys
}

#[test]
fn seed_job_on_s3_matches_the_local_run() {
    let s3 = S3Job::new("seed", "");
    let local = crate::support::corral(&[&"run", &s3.job]);
    assert_eq!(local.code, 0, "{}", local.stderr);

    let run = s3.run("runs/a", &S3Server::shared().endpoint(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for n in SEED_SEQUENCE {
        s3.check_output("runs/a", n);
        let part = s3.bucket.get(&format!("runs/a/iter_{n}/part-00000.parquet")).unwrap();
        assert_eq!(seed_rows(parquet_batches(part)), read_seed_output(&s3.fx.part(n)), "S3 and local outputs of {n}");
    }
    let keys: BTreeSet<String> = s3.bucket.keys("runs/a").into_iter().collect();
    assert_eq!(keys, expected_keys("runs/a", &SEED_SEQUENCE), "exactly the outputs, their markers and the manifest");

    let manifest = s3.manifest("runs/a");
    assert_eq!(manifest["summary"]["succeeded"], SEED_SEQUENCE.len());
    assert_eq!(manifest["job"]["config"], s3.bucket.url("in/config.csv"));
    assert!(manifest["job"]["storage_requests"].as_u64().unwrap() > 0);
    for n in SEED_SEQUENCE {
        let r = record(&manifest, n);
        assert!(r["output"].as_str().unwrap().ends_with(&format!("runs/a/iter_{n}/part-00000.parquet")));
        // The data file's put: the record is taken before the put of the
        // `_SUCCESS` that holds it.
        assert_eq!(r["storage_requests"], 1, "{r}");
        assert_eq!(r["storage_retries"], 0, "{r}");
        let persisted = s3.bucket.get(&format!("runs/a/iter_{n}/_SUCCESS")).unwrap();
        assert_eq!(&serde_json::from_slice::<serde_json::Value>(&persisted).unwrap(), r);
    }
}

#[test]
fn throttled_requests_are_retried_and_counted() {
    let s3 = S3Job::new("slowdown", "initial_backoff = \"20ms\"");
    let proxy = FaultProxy::start(S3Server::shared().port, Fault::SlowDown { every: 3 });
    let run = s3.run("runs/slow", &proxy.endpoint(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let slowdowns = proxy.counts.slowdowns.load(std::sync::atomic::Ordering::SeqCst);
    assert!(slowdowns >= 5, "the proxy throttled {slowdowns} requests");
    for n in SEED_SEQUENCE {
        s3.check_output("runs/slow", n);
    }
    let manifest = s3.manifest("runs/slow");
    let per_iteration: u64 = SEED_SEQUENCE.iter().map(|&n| record(&manifest, n)["storage_retries"].as_u64().unwrap()).sum();
    assert!(per_iteration > 0, "retries recorded per iteration: {manifest}");
    // The manifest's own put happens after its figures are taken.
    let total = manifest["job"]["storage_retries"].as_u64().unwrap();
    assert!(total >= per_iteration && total <= slowdowns, "{total} retries recorded, {slowdowns} throttled");
    assert!(run.stdout.contains("retried"), "the summary tells of retries: {}", run.stdout);
}

#[test]
fn uploads_reset_mid_body_are_retried() {
    let s3 = S3Job::new("reset", "initial_backoff = \"20ms\"");
    let fault = Fault::ResetUploads { every: 2, path_contains: "part-00000.parquet", min_body: 1 };
    let proxy = FaultProxy::start(S3Server::shared().port, fault);
    let run = s3.run("runs/reset", &proxy.endpoint(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let resets = proxy.counts.resets.load(std::sync::atomic::Ordering::SeqCst);
    assert!(resets >= 4, "the proxy reset {resets} uploads");
    for n in SEED_SEQUENCE {
        s3.check_output("runs/reset", n);
    }
    let manifest = s3.manifest("runs/reset");
    let retries: u64 = SEED_SEQUENCE.iter().map(|&n| record(&manifest, n)["storage_retries"].as_u64().unwrap()).sum();
    assert_eq!(retries, resets, "every reset upload was retried, and recorded against its iteration");
}

#[test]
fn a_storage_failure_is_attempted_again_within_the_run_and_its_attempts_recorded() {
    let s3 = S3Job::new("reset-again", "max_retries = 0");
    // The first two uploads are reset; with no retries of the request,
    // their iterations fail as storage and are attempted again (at most 3
    // times: the same iteration may get both resets).
    let fault = Fault::ResetFirstUploads { count: 2, path_contains: "part-00000.parquet" };
    let proxy = FaultProxy::start(S3Server::shared().port, fault);
    let run = s3.run("runs/again", &proxy.endpoint(), &["--attempts", "3"]);
    assert_eq!(run.code, 0, "the later attempts succeeded: {}", run.stderr);
    let resets = proxy.counts.resets.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(resets, 2, "the proxy reset {resets} uploads");
    let manifest = s3.manifest("runs/again");
    let again: u64 = SEED_SEQUENCE.iter().map(|&n| record(&manifest, n)["attempts"].as_u64().unwrap() - 1).sum();
    assert_eq!(again, resets, "one more attempt for each reset upload: {manifest}");
    for n in SEED_SEQUENCE {
        s3.check_output("runs/again", n);
    }
    assert!(run.stderr.contains("retrying in"), "{}", run.stderr);
    assert!(s3.bucket.keys("runs/again/_records").is_empty(), "no failure record left");
}

#[test]
fn uploads_reset_without_retries_fail_as_storage_and_leave_nothing_partial() {
    let s3 = S3Job::new("reset-fail", "max_retries = 0");
    // An earlier good run under `runs/kept`.
    let good = s3.run("runs/kept", &S3Server::shared().endpoint(), &[]);
    assert_eq!(good.code, 0, "{}", good.stderr);
    let before: Vec<_> = SEED_SEQUENCE
        .iter()
        .map(|n| s3.bucket.get(&format!("runs/kept/iter_{n}/part-00000.parquet")).unwrap())
        .collect();

    for out in ["runs/fresh", "runs/kept"] {
        let fault = Fault::ResetUploads { every: 2, path_contains: "part-00000.parquet", min_body: 1 };
        let proxy = FaultProxy::start(S3Server::shared().port, fault);
        // One attempt an iteration: a reset upload fails it.
        let run = s3.run(out, &proxy.endpoint(), &["--attempts", "1"]);
        assert_eq!(run.code, 75, "every failure was storage's, worth another run: {}", run.stderr);
        let resets = proxy.counts.resets.load(std::sync::atomic::Ordering::SeqCst);
        let manifest = s3.manifest(out);
        let failed: Vec<i64> = SEED_SEQUENCE.iter().copied().filter(|&n| record(&manifest, n)["status"] == "failed").collect();
        assert_eq!(failed.len() as u64, resets, "one failure per reset upload: {manifest}");
        assert_eq!(failed.len(), SEED_SEQUENCE.len() / 2);
        for (i, &n) in SEED_SEQUENCE.iter().enumerate() {
            let r = record(&manifest, n);
            if !failed.contains(&n) {
                s3.check_output(out, n);
                continue;
            }
            assert_eq!(r["error"]["kind"], "storage", "{r}");
            if out == "runs/fresh" {
                assert_eq!(s3.keys_of(out, n), Vec::<String>::new(), "nothing partial of {n}");
            } else {
                // The failed rerun kept the earlier good output, whole.
                assert_eq!(s3.bucket.get(&format!("{out}/iter_{n}/part-00000.parquet")).unwrap(), before[i], "{n}");
                s3.check_output(out, n);
            }
        }
    }

    // `--resume` through a healthy connection finishes the fresh output,
    // carrying over what succeeded.
    let resumed = s3.run("runs/fresh", &S3Server::shared().endpoint(), &["--resume"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let manifest = s3.manifest("runs/fresh");
    assert_eq!(manifest["summary"]["succeeded"], SEED_SEQUENCE.len());
    assert_eq!(manifest["summary"]["carried_over"], SEED_SEQUENCE.len() - SEED_SEQUENCE.len() / 2);
    for n in SEED_SEQUENCE {
        s3.check_output("runs/fresh", n);
    }
    let keys: BTreeSet<String> = s3.bucket.keys("runs/fresh").into_iter().collect();
    assert_eq!(keys, expected_keys("runs/fresh", &SEED_SEQUENCE));
}

/// Runs a job against `env`, expecting exit 2 with one error line holding `needle`.
fn assert_bad_storage(args: &[&dyn AsRef<std::ffi::OsStr>], env: &[(String, String)], needle: &str) {
    let started = std::time::Instant::now();
    let out = corral_env(args, env);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let errors: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{}", out.stderr);
    assert!(errors[0].contains(needle), "{}", errors[0]);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "bad storage input took {:?}", started.elapsed());
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn an_unreachable_store_is_a_clear_error() {
    let fx = Fixture::new(100);
    let job = fx.job(guests::SEED_MODEL, &[2], SEED_PARAMS, "");
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    assert_bad_storage(
        &[&"run", &job, &"--out", &"s3://somewhere/out"],
        &s3::env_for(&endpoint),
        &format!("cannot reach the object store at {endpoint}"),
    );
    assert!(!fx.out().exists());
}

#[test]
fn a_bucket_that_does_not_exist_is_a_clear_error() {
    let fx = Fixture::new(100);
    let job = fx.job(guests::SEED_MODEL, &[2], SEED_PARAMS, "");
    let server = S3Server::shared();
    assert_bad_storage(
        &[&"run", &job, &"--out", &"s3://no-such-bucket-corral/out"],
        &server.env(),
        "bucket `no-such-bucket-corral` does not exist",
    );
    assert_bad_storage(
        &[&"run", &job, &"--config", &"s3://no-such-bucket-corral/config.csv"],
        &server.env(),
        "bucket `no-such-bucket-corral` does not exist",
    );
}

#[test]
fn missing_credentials_are_a_clear_error() {
    let fx = Fixture::new(100);
    let job = fx.job(guests::SEED_MODEL, &[2], SEED_PARAMS, "");
    let bucket = S3Server::shared().new_bucket("nocreds");
    let out = bucket.url("out");
    let home = tempfile::tempdir().unwrap();
    let base: Vec<(String, String)> = vec![
        ("AWS_ENDPOINT_URL".into(), S3Server::shared().endpoint()),
        ("AWS_ALLOW_HTTP".into(), "true".into()),
        ("HOME".into(), home.path().display().to_string()),
    ];
    // No keys, no profile, and no instance metadata service answering.
    let mut env = base.clone();
    env.push(("AWS_METADATA_ENDPOINT".into(), format!("http://127.0.0.1:{}", closed_port())));
    assert_bad_storage(&[&"run", &job, &"--out", &out], &env, "no AWS credentials for");
    let mut env = base.clone();
    env.push(("AWS_EC2_METADATA_DISABLED".into(), "true".into()));
    assert_bad_storage(&[&"run", &job, &"--out", &out], &env, "AWS_EC2_METADATA_DISABLED is set");
    assert_eq!(bucket.keys(""), Vec::<String>::new(), "nothing written");

    // A profile in ~/.aws supplies them.
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        format!("[ci]\naws_access_key_id = {}\naws_secret_access_key = {}\n", s3::ACCESS_KEY_ID, s3::SECRET_ACCESS_KEY),
    )
    .unwrap();
    let mut env = base;
    env.push(("AWS_PROFILE".into(), "ci".into()));
    env.push(("AWS_EC2_METADATA_DISABLED".into(), "true".into()));
    let run = corral_env(&[&"run", &job, &"--out", &out], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(bucket.get("out/iter_2/_SUCCESS").is_some());
}

#[test]
fn malformed_s3_urls_are_clear_errors() {
    let fx = Fixture::new(100);
    let job = fx.job(guests::SEED_MODEL, &[2], SEED_PARAMS, "");
    let env = S3Server::shared().env();
    assert_bad_storage(&[&"run", &job, &"--out", &"s3:///out"], &env, "names no bucket");
    assert_bad_storage(&[&"run", &job, &"--out", &"s3://bad bucket/out"], &env, "malformed URL `s3://bad bucket/out`");
    assert_bad_storage(&[&"run", &job, &"--config", &"s4://b/config.csv"], &env, "unsupported URL scheme `s4`");
    let mut text = std::fs::read_to_string(&job).unwrap();
    text.push_str("\n[storage]\nendpoint = \"127.0.0.1:9000\"\n");
    std::fs::write(&job, text).unwrap();
    assert_bad_storage(&[&"run", &job], &env, "invalid `storage.endpoint`");
}

#[test]
fn credentials_never_reach_logs_outputs_or_guests() {
    let fx = Fixture::new(2_000);
    // Iteration 1 lists the environment it can see and fails if any.
    let job = fx.job(guests::EVIL, &[0, 1], r#"evil = { "1" = "env" }"#, "");
    let bucket = S3Server::shared().new_bucket("secret");
    let out = bucket.url("out");
    let run = corral_env(&[&"-vv", &"--log-format", &"json", &"run", &job, &"--out", &out], &S3Server::shared().env());
    assert_eq!(run.code, 0, "{}", run.stderr);
    for (what, text) in [("stderr", &run.stderr), ("stdout", &run.stdout)] {
        assert!(!text.contains(s3::SECRET_ACCESS_KEY), "the secret is in {what}");
    }
    for key in bucket.keys("out") {
        let bytes = bucket.get(&key).unwrap();
        let found = bytes.windows(s3::SECRET_ACCESS_KEY.len()).any(|w| w == s3::SECRET_ACCESS_KEY.as_bytes());
        assert!(!found, "the secret is in {key}");
    }
}

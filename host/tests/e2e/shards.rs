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

//! The seed job end to end: outputs equal an independent native computation.

use corral_tests::{files_under, guests, read_seed_output, seed_step};

use crate::support::{Fixture, corral, corral_command_under, record};

pub(crate) const SEED_SEQUENCE: [i64; 9] = [2, 3, 4, 56, 22, 15, 6, 7, 9];

pub(crate) fn check_seed_outputs(fx: &Fixture, iterations: &[i64], param1: f64, param2: f64) {
    let manifest = fx.manifest();
    for &n in iterations {
        let want = seed_step(&fx.rows, n, param1, param2);
        assert!(!want.is_empty(), "the generator gives every key rows");
        let got = read_seed_output(&fx.part(n));
        assert_eq!(got.len(), want.len(), "rows of iteration {n}");
        assert_eq!(got, want, "iteration {n}");
        assert!(fx.out().join(format!("iter_{n}/_SUCCESS")).exists());
        let r = record(&manifest, n);
        assert_eq!(r["status"], "succeeded");
        assert_eq!(r["error"], serde_json::Value::Null);
        assert_eq!(r["rows_in"], want.len() as u64);
        assert_eq!(r["rows_out"], want.len() as u64);
        assert!(r["bytes_out"].as_u64().unwrap() > 0);
        assert!(r["fuel_used"].as_u64().unwrap() > 0);
        assert!(r["peak_memory_bytes"].as_u64().unwrap() > 0);
        // A local output's absolute path, leading `/` and all.
        assert_eq!(r["output"], fx.part(n).display().to_string());
        // The record the iteration's `_SUCCESS` holds is the same.
        let persisted = corral_tests::read_json(&fx.out().join(format!("iter_{n}/_SUCCESS")));
        assert_eq!(&persisted, r);
    }
}

#[test]
fn seed_job_over_100k_rows_matches_the_native_step() {
    let fx = Fixture::new(100_000);
    let job = fx.job(guests::SEED_MODEL, &SEED_SEQUENCE, "param1 = 1.5\nparam2 = 2.0", "partition_by = \"some_column\"");
    let out = corral(&[&"run", &job]);
    assert_eq!(out.code, 0, "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    check_seed_outputs(&fx, &SEED_SEQUENCE, 1.5, 2.0);

    let manifest = fx.manifest();
    let summary = &manifest["summary"];
    assert_eq!((summary["total"].as_u64(), summary["succeeded"].as_u64(), summary["failed"].as_u64()), (Some(9), Some(9), Some(0)));
    assert_eq!(manifest["job"]["config_rows"], 100_000);
    assert_eq!(manifest["job"]["params"]["param1"], 1.5);
    assert_eq!(manifest["job"]["module_sha256"].as_str().unwrap().len(), 64);
    let order: Vec<i64> = manifest["iterations"].as_array().unwrap().iter().map(|r| r["iteration"].as_i64().unwrap()).collect();
    assert_eq!(order, SEED_SEQUENCE, "records in the job's order");
    assert!(out.stdout.contains("test: 9/9 succeeded, 0 failed"), "{}", out.stdout);
    assert!(!out.stderr.contains(POOL_FALLBACK), "the pool is reserved here:\n{}", out.stderr);
    assert!(!out.stderr.contains("keys for"), "a key of many rows a key is not warned about:\n{}", out.stderr);

    // Nothing but the outputs, their markers (which hold the records) and
    // the manifest.
    let mut expected: Vec<String> = SEED_SEQUENCE
        .iter()
        .flat_map(|n| [format!("iter_{n}/_SUCCESS"), format!("iter_{n}/part-00000.parquet")])
        .collect();
    expected.push("_manifest.json".into());
    expected.sort();
    assert_eq!(files_under(&fx.out()), expected);
}

#[test]
fn unindexed_scans_and_cli_overrides_give_the_same_outputs() {
    let fx = Fixture::new(20_000);
    let job = fx.job(guests::SEED_MODEL, &[1], "param1 = 9.0\nparam2 = 9.0", "batch_rows = 1000");
    let out = corral(&[
        &"run", &job, &"--iterations", &"0..4,63", &"--max-workers", &"1", &"--param", &"param1=0.5", &"--param", &"param2=-3",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    check_seed_outputs(&fx, &[0, 1, 2, 3, 63], 0.5, -3.0);
    assert!(!fx.out().join("iter_4").exists());
    // No partition_by: the first `some_column == n` scan indexed the column.
    assert_eq!(out.stderr.matches("indexed the config by `some_column`").count(), 1, "{}", out.stderr);
}

/// A declared key of one row a key is indexed by position, not split into
/// a batch a key (regression: more than ten times the table); one of a few
/// rows a key, but few keys a batch, is partitioned and warned about.
#[test]
fn a_partition_key_of_one_row_a_key_is_indexed_by_position_and_scans_right() {
    let fx = Fixture::new(10);
    let write_config = |keys: usize, rows_a_key: usize| {
        let mut csv = String::from("id,some_column,value,weight,name\n");
        for i in 0..keys * rows_a_key {
            csv.push_str(&format!("{i},{},{}.5,0.25,name_{i}\n", i / rows_a_key, i % 10));
        }
        std::fs::write(fx.config(), csv).unwrap();
    };
    write_config(3_000, 1);
    let job = fx.job(guests::SEED_MODEL, &[7, 2_999], "param1 = 2.0\nparam2 = 4.0", "partition_by = \"some_column\"");
    let out = corral(&[&"run", &job]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let positions = "config.partition_by = `some_column` has too many keys to partition (3000 for 3000 rows)";
    assert_eq!(out.stderr.matches(positions).count(), 1, "{}", out.stderr);
    assert!(!out.stderr.contains("WARN"), "{}", out.stderr);
    let manifest = fx.manifest();
    for n in [7, 2_999] {
        assert_eq!(record(&manifest, n)["rows_out"], 1, "iteration {n}");
    }

    write_config(300, 2);
    let job = fx.job(guests::SEED_MODEL, &[7, 299], "param1 = 2.0\nparam2 = 4.0", "partition_by = \"some_column\"");
    let out = corral(&[&"run", &job]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr.matches("config.partition_by = `some_column` has 300 keys for 600 rows").count(), 1, "{}", out.stderr);
    let manifest = fx.manifest();
    for n in [7, 299] {
        assert_eq!(record(&manifest, n)["rows_out"], 2, "iteration {n}");
    }

    // Without partition_by the first scan indexes positions, and does not
    // suggest a partition for a key of one row a key.
    write_config(3_000, 1);
    let unpartitioned = fx.job(guests::SEED_MODEL, &[7], "param1 = 2.0\nparam2 = 4.0", "");
    let out = corral(&[&"run", &unpartitioned]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr.matches("indexed the config by `some_column`").count(), 1, "{}", out.stderr);
    assert!(!out.stderr.contains("set config.partition_by"), "{}", out.stderr);
}

#[test]
fn rerunning_a_job_replaces_its_outputs() {
    let fx = Fixture::new(5_000);
    let job = fx.job(guests::SEED_MODEL, &[5, 6], "param1 = 1.0\nparam2 = 1.0", "");
    assert_eq!(corral(&[&"run", &job]).code, 0);
    let out = corral(&[&"run", &job, &"--param", &"param1=2.0"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    check_seed_outputs(&fx, &[5, 6], 2.0, 1.0);
}

/// The warning of a run whose instance pool could not be reserved.
const POOL_FALLBACK: &str = "allocating instances on demand";

/// Under an address-space limit (`ulimit -v`, as on some shared nodes) that
/// wasmtime's default reservations (4 GiB and guards a memory, several a
/// slot) would not fit, each memory reserves only its cap, so the pool
/// still fits: no fallback, the same outputs. (A limit the pool does not
/// fit falls back to instances on demand: `share`'s tests.)
#[test]
fn a_pool_under_an_address_space_limit_reserves_only_the_caps() {
    let fx = Fixture::new(2_000);
    let job = fx.job(guests::SEED_MODEL, &[1, 2, 3], "param1 = 1.5\nparam2 = 2.0", "partition_by = \"some_column\"");
    // 16 GiB: the default pool of 2 slots would want about 32 GiB.
    let wrapper = ["sh", "-c", "ulimit -v 16777216 && exec \"$@\"", "sh"];
    let out = corral_command_under(&wrapper, &[&"run", &job, &"--max-workers", &"1"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.matches(POOL_FALLBACK).count(), 0, "the pool fits: {stderr}");
    check_seed_outputs(&fx, &[1, 2, 3], 1.5, 2.0);
    assert_eq!(fx.manifest()["job"]["share"]["address_space_bytes"], 16u64 << 30);
}

/// The `(iteration, label)` rows of a one-row transform's output file
/// (`one-row`, `one-row-py`).
pub(crate) fn one_row_output(part: &std::path::Path) -> Vec<(i64, String)> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;

    corral_tests::read_parquet(part)
        .iter()
        .flat_map(|b| {
            let (iteration, label) = (b.column(0).as_primitive::<Int64Type>(), b.column(1).as_string::<i32>());
            (0..b.num_rows()).map(move |i| (iteration.value(i), label.value(i).to_owned()))
        })
        .collect()
}

/// The benchmark's per-iteration transform: each iteration emits its one
/// row and reads nothing (the small output's plain settings are checked by
/// `output`'s unit tests).
#[test]
fn the_one_row_transform_emits_its_iterations_row_and_reads_nothing() {
    let fx = Fixture::new(1_000);
    let iterations = [0, 1, 2, 41, 999];
    let job = fx.job(guests::ONE_ROW, &iterations, "", "");
    let out = corral(&[&"run", &job]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let manifest = fx.manifest();
    for n in iterations {
        assert_eq!(one_row_output(&fx.part(n)), [(n, format!("iteration {n}"))], "iteration {n}");
        let r = record(&manifest, n);
        assert_eq!((r["status"].as_str(), r["rows_in"].as_u64(), r["rows_out"].as_u64()), (Some("succeeded"), Some(0), Some(1)));
    }
}

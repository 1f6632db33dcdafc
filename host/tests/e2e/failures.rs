//! Iterations that fail, while the others succeed.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use corral_tests::{ConfigRow, files_under, guests, read_parquet};

use crate::support::{Fixture, corral, record};

/// What the evil transform's good path emits: `(id, some_column, value)`.
pub fn passthrough(rows: &[ConfigRow], n: i64) -> Vec<(i64, i64, f64)> {
    let round = |v: f64| format!("{v:.6}").parse::<f64>().unwrap();
    rows.iter().filter(|r| r.some_column == n).map(|r| (r.id, r.some_column, round(r.value))).collect()
}

pub fn read_passthrough(fx: &Fixture, n: i64) -> Vec<(i64, i64, f64)> {
    let mut out = Vec::new();
    for batch in read_parquet(&fx.part(n)) {
        let (id, key, value) = (
            batch.column(0).as_primitive::<Int64Type>(),
            batch.column(1).as_primitive::<Int64Type>(),
            batch.column(2).as_primitive::<Float64Type>(),
        );
        out.extend((0..batch.num_rows()).map(|i| (id.value(i), key.value(i), value.value(i))));
    }
    out.sort_by_key(|r| r.0);
    out
}

#[test]
fn a_failing_and_a_panicking_iteration_do_not_harm_the_others() {
    let fx = Fixture::new(20_000);
    let evil = r#"evil = { "3" = "error", "5" = "panic", "7" = "emit-then-error" }"#;
    let job = fx.job(guests::EVIL, &(0..10).collect::<Vec<_>>(), evil, "partition_by = \"some_column\"");
    let out = corral(&[&"run", &job]);
    assert_eq!(out.code, 1, "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);

    let manifest = fx.manifest();
    let summary = &manifest["summary"];
    assert_eq!((summary["total"].as_u64(), summary["succeeded"].as_u64(), summary["failed"].as_u64()), (Some(10), Some(7), Some(3)));

    let error = &record(&manifest, 3)["error"];
    assert_eq!(error["kind"], "guest_error");
    assert_eq!(error["message"], "model diverged at iteration 3");

    let error = &record(&manifest, 5)["error"];
    assert_eq!(error["kind"], "trap");
    let stderr = error["stderr_tail"].as_str().expect("a panic leaves stderr");
    assert!(stderr.contains("evil transform panics at iteration 5"), "{stderr}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("unreachable"), "{message}");

    let error = &record(&manifest, 7)["error"];
    assert_eq!(error["kind"], "guest_error");
    assert_eq!(error["message"], "failed after emitting");

    for n in [3, 5, 7] {
        assert_eq!(record(&manifest, n)["status"], "failed");
        assert_eq!(record(&manifest, n)["output"], serde_json::Value::Null);
        assert_eq!(files_under(&fx.out().join(format!("iter_{n}"))), Vec::<String>::new(), "nothing partial of iteration {n}");
    }
    for n in [0, 1, 2, 4, 6, 8, 9] {
        assert_eq!(record(&manifest, n)["status"], "succeeded");
        assert_eq!(read_passthrough(&fx, n), passthrough(&fx.rows, n), "iteration {n}");
        assert!(fx.out().join(format!("iter_{n}/_SUCCESS")).exists());
    }
    // The summary shows the failures first, with their kinds.
    let table: Vec<&str> = out.stdout.lines().skip(2).take(3).collect();
    assert!(table.iter().all(|l| l.contains("FAILED")), "{}", out.stdout);
    assert!(out.stdout.contains("guest_error: model diverged at iteration 3"), "{}", out.stdout);
}

#[test]
fn a_failed_rerun_keeps_the_previous_good_output() {
    let fx = Fixture::new(5_000);
    let job = fx.job(guests::EVIL, &[4], "", "");
    assert_eq!(corral(&[&"run", &job]).code, 0);
    let good = std::fs::read(fx.part(4)).unwrap();

    let job = fx.job(guests::EVIL, &[4], r#"evil = { "4" = "emit-then-error" }"#, "");
    let out = corral(&[&"run", &job]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(record(&fx.manifest(), 4)["error"]["kind"], "guest_error");
    assert_eq!(std::fs::read(fx.part(4)).unwrap(), good, "the earlier output is intact");
    assert_eq!(files_under(&fx.out().join("iter_4")), ["_SUCCESS", "part-00000.parquet"]);
}

#[test]
fn an_iteration_whose_local_output_cannot_be_written_fails_as_storage_naming_the_path() {
    let fx = Fixture::new(2_000);
    let job = fx.job(guests::EVIL, &[0, 1, 2], "", "");
    // A file where iteration 1's output directory goes.
    std::fs::create_dir_all(fx.out()).unwrap();
    let blocked = fx.out().join("iter_1");
    std::fs::write(&blocked, b"in the way").unwrap();
    let out = corral(&[&"run", &job]);
    // Attempted twice (storage may be transient), then the run exits 75.
    assert_eq!(out.code, 75, "{}", out.stderr);
    let manifest = fx.manifest();
    assert_eq!(record(&manifest, 1)["attempts"], 2, "{}", record(&manifest, 1));
    let error = &record(&manifest, 1)["error"];
    assert_eq!(error["kind"], "storage", "{error}");
    assert!(error["message"].as_str().unwrap().contains(&blocked.display().to_string()), "{error}");
    assert_eq!(std::fs::read(&blocked).unwrap(), b"in the way", "nothing of the user's is overwritten");
    for n in [0, 2] {
        assert_eq!(record(&manifest, n)["status"], "succeeded");
        assert_eq!(read_passthrough(&fx, n), passthrough(&fx.rows, n), "iteration {n}");
    }
}

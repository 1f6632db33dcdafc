//! Python transforms, built from `transforms/*-py` by componentize-py: the
//! seed job, each failure kind with the good iterations of the same run
//! unharmed, the module's memory floor, and the SDK's own tests natively.

use std::path::Path;
use std::process::Command;

use corral_tests::guests;

use crate::run::{SEED_SEQUENCE, check_seed_outputs};
use crate::support::{Fixture, corral, record};

#[test]
fn seed_model_py_over_100k_rows_equals_the_native_step() {
    let fx = Fixture::new(100_000);
    let job = fx.job(guests::SEED_MODEL_PY, &SEED_SEQUENCE, "param1 = 1.5\nparam2 = 2.0", "partition_by = \"some_column\"");
    let out = corral(&[&"run", &job]);
    assert_eq!(out.code, 0, "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    check_seed_outputs(&fx, &SEED_SEQUENCE, 1.5, 2.0);
    assert!(out.stdout.contains("test: 9/9 succeeded, 0 failed"), "{}", out.stdout);
}

#[test]
fn each_python_failure_gets_its_kind_and_the_good_iterations_succeed() {
    let fx = Fixture::new(5_000);
    let evil = r#"evil = { "1" = "error", "2" = "loop", "3" = "memory-bomb", "4" = "lazy-import", "5" = "malformed-output", "6" = "schema-change", "7" = "read-passwd", "8" = "network", "9" = "env", "10" = "log-flood" }"#;
    let iterations: Vec<i64> = (0..12).collect();
    let job = fx.job(guests::EVIL_PY, &iterations, evil, "partition_by = \"some_column\"");
    let out = corral(&[&"run", &job, &"--fuel", &"3000000000", &"--memory", &"96MiB"]);
    assert_eq!(out.code, 1, "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    let manifest = fx.manifest();
    let expect = [
        (1, "guest_error", "ValueError: the model diverged at iteration 1"),
        (2, "fuel_exhausted", "used up its fuel of 3000000000"),
        (3, "memory_limit", "over its cap of 100663296 bytes"),
        (4, "guest_error", "import every module at the top of the file"),
        (5, "invalid_output", "not a well-formed Arrow IPC stream"),
        (6, "invalid_output", "every batch of an iteration must have the same schema"),
        (10, "fuel_exhausted", "used up its fuel"),
    ];
    crate::evil_guests::assert_failures(&fx, &manifest, &expect);
    // The exception's traceback is in the message, down to the raising line.
    let raised = record(&manifest, 1)["error"]["message"].as_str().unwrap();
    assert!(raised.contains("Traceback (most recent call last)") && raised.contains("in _diverge"), "{raised}");
    let lazy = record(&manifest, 4)["error"]["message"].as_str().unwrap();
    assert!(lazy.starts_with("ModuleNotFoundError: No module named 'csv'"), "{lazy}");
    // Python's MemoryError, after the refused growth, reaches the message.
    let bomb = record(&manifest, 3)["error"]["message"].as_str().unwrap();
    assert!(bomb.contains("MemoryError"), "{bomb}");
    // Files, sockets and the environment are not there: those iterations
    // fail themselves if they are, so they succeed with their rows.
    for n in [0, 7, 8, 9, 11] {
        let r = record(&manifest, n);
        assert_eq!(r["status"], "succeeded", "iteration {n}: {r}");
        let want = fx.rows.iter().filter(|row| row.some_column == n).count() as u64;
        assert_eq!(r["rows_out"].as_u64(), Some(want), "iteration {n}");
        assert!(fx.part(n).exists());
    }
    assert_eq!(manifest["summary"]["succeeded"], 5);
}

#[test]
fn a_python_guest_asleep_past_its_timeout_is_stopped_on_time() {
    let fx = Fixture::new(1_000);
    let job = fx.job(guests::EVIL_PY, &[1, 2], r#"evil = { "1" = "sleep" }"#, "");
    let out = corral(&[&"run", &job, &"--timeout", &"2s"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let manifest = fx.manifest();
    let error = &record(&manifest, 1)["error"];
    assert_eq!(error["kind"], "timeout", "{error}");
    let wall = record(&manifest, 1)["wall_ms"].as_u64().unwrap();
    assert!((2000..4000).contains(&wall), "stopped on time: {wall} ms");
    // Asleep, it burnt no fuel to speak of.
    assert!(record(&manifest, 1)["fuel_used"].as_u64().unwrap() < 100_000_000);
    assert_eq!(record(&manifest, 2)["status"], "succeeded");
}

#[test]
fn a_memory_cap_below_a_python_modules_initial_memory_names_both_and_what_to_set() {
    let fx = Fixture::new(100);
    let job = fx.job(guests::ONE_ROW_PY, &[1], "", "");
    let out = corral(&[&"run", &job, &"--memory", &"8MiB"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    for needle in ["of memory to start", "more than the cap of 8 MiB (limits.memory)", "set `memory` in the job file's [limits]", "64 MiB"] {
        assert!(out.stderr.contains(needle), "`{needle}` in:\n{}", out.stderr);
    }
    assert!(!out.stderr.contains("not a valid WebAssembly component"), "{}", out.stderr);
    assert!(!fx.out().exists(), "nothing written before the module is accepted");
}

#[test]
fn the_one_row_python_transform_runs_many_iterations_and_checks_as_a_transform() {
    let fx = Fixture::new(100);
    let iterations: Vec<i64> = (0..40).collect();
    let job = fx.job(guests::ONE_ROW_PY, &iterations, "", "");
    let out = corral(&[&"run", &job]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for n in iterations {
        assert_eq!(crate::run::one_row_output(&fx.part(n)), [(n, format!("iteration {n}"))], "iteration {n}");
    }
    let check = corral(&[&"check", &guests::ONE_ROW_PY]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    assert!(check.stdout.contains("a component of the corral `transform` world"), "{}", check.stdout);
}

/// Runs `python3 -m pytest` in `dir` with the SDK importable.
pub(crate) fn pytest(dir: &Path) -> (bool, String) {
    let output = Command::new("python3")
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .current_dir(dir)
        .env("PYTHONPATH", guests::PYTHON_SDK)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("running python3 -m pytest (pip install pytest pyarrow)");
    (output.status.success(), format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)))
}

#[test]
fn the_python_sdk_and_transforms_pass_their_own_tests_natively() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut dirs = vec![root.join("guest-sdk/python")];
    for name in ["seed-model-py", "evil-py", "one-row-py"] {
        dirs.push(root.join("transforms").join(name));
    }
    for dir in dirs {
        let (ok, out) = pytest(&dir);
        assert!(ok && out.contains(" passed"), "{}:\n{out}", dir.display());
        assert!(!out.contains("skipped"), "{}: nothing skipped:\n{out}", dir.display());
    }
}

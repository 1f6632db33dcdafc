//! `corral new`: from nothing to a finished run with the scaffold's own
//! commands (build, test, run), against this repository's SDK.

use std::path::Path;
use std::process::Command;

use arrow_array::cast::AsArray as _;
use arrow_array::types::{Float64Type, Int64Type};
use corral_tests::guests;

use crate::support::corral;

#[test]
fn a_new_transform_builds_for_wasm_and_runs_as_scaffolded() {
    let dir = tempfile::tempdir().unwrap();
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk");
    let out = corral(&[&"new", &"my-model", &"--dir", &dir.path(), &"--sdk", &sdk]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("cargo build --release --target wasm32-wasip2"), "{}", out.stdout);
    let crate_dir = dir.path().join("my-model");

    // Build it as the README says. The guests' target directory and this
    // workspace's lock file make it reuse the dependencies built there.
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let build = Command::new(cargo)
        .current_dir(&crate_dir)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir", guests::TARGET_DIR])
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    assert!(build.status.success(), "the scaffold does not build:\n{}", String::from_utf8_lossy(&build.stderr));
    // Where the job file looks for it when built in place.
    let module = crate_dir.join("target/wasm32-wasip2/release/my_model.wasm");
    std::fs::create_dir_all(module.parent().unwrap()).unwrap();
    std::fs::copy(Path::new(guests::TARGET_DIR).join("wasm32-wasip2/release/my_model.wasm"), &module).unwrap();

    // Its own unit test, natively, as the README says.
    let test = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&crate_dir)
        .args(["test", "--target-dir"])
        .arg(Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffold-native"))
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    let test_out = String::from_utf8_lossy(&test.stdout);
    assert!(test.status.success(), "the scaffold's test fails:\n{test_out}\n{}", String::from_utf8_lossy(&test.stderr));
    assert!(test_out.contains("test tests::scores_are_value_times_factor ... ok"), "{test_out}");

    run_scaffolded_job(&crate_dir);
}

#[test]
fn new_refuses_a_bad_name_and_an_existing_crate() {
    let dir = tempfile::tempdir().unwrap();
    let out = corral(&[&"new", &"1 bad name", &"--dir", &dir.path()]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("is not a valid transform name"), "{}", out.stderr);

    std::fs::create_dir(dir.path().join("mine")).unwrap();
    std::fs::write(dir.path().join("mine/notes.txt"), "keep").unwrap();
    let out = corral(&[&"new", &"mine", &"--dir", &dir.path()]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("already exists and is not empty"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(dir.path().join("mine/notes.txt")).unwrap(), "keep");
}

#[test]
fn a_new_python_transform_builds_with_its_readme_command_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk");
    let out = corral(&[&"new", &"py-model", &"--lang", &"python", &"--dir", &dir.path(), &"--sdk", &sdk]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let project = dir.path().join("py-model");

    // The build command it prints is the README's, and it builds.
    let build_line = out.stdout.lines().map(str::trim).find(|l| l.starts_with("componentize-py ")).expect("a build command");
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    assert!(readme.contains(build_line), "the README has the printed command `{build_line}`:\n{readme}");
    let words: Vec<&str> = build_line.split_whitespace().collect();
    let build = Command::new(words[0]).args(&words[1..]).current_dir(&project).env_remove("VIRTUAL_ENV").output().unwrap();
    assert!(build.status.success(), "the scaffold does not build:\n{}", String::from_utf8_lossy(&build.stderr));

    // Its own tests, natively, as the README says (`python3 -m pytest`).
    let test = Command::new("python3")
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .current_dir(&project)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let test_out = String::from_utf8_lossy(&test.stdout);
    assert!(test.status.success() && test_out.contains("2 passed"), "the scaffold's tests:\n{test_out}");

    run_scaffolded_job(&project);
}

/// Runs a scaffolded project's `job.toml` (iterations 0..4 over its sample
/// config) and checks each output against the sample config and its model,
/// `score = value * factor` with the job's factor of 2.
fn run_scaffolded_job(project: &Path) {
    let run = corral(&[&"run", &project.join("job.toml")]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("4/4 succeeded"), "{}", run.stdout);

    // The expected output, from the sample config and `score = value * factor`.
    let config = std::fs::read_to_string(project.join("config.csv")).unwrap();
    for n in 0..4i64 {
        let mut expected: Vec<(i64, f64)> = config
            .lines()
            .skip(1)
            .map(|line| line.split(',').collect::<Vec<_>>())
            .filter(|f| f[1].parse::<i64>().unwrap() == n)
            .map(|f| (f[0].parse().unwrap(), f[2].parse::<f64>().unwrap() * 2.0))
            .collect();
        let mut got: Vec<(i64, f64)> = corral_tests::read_parquet(&project.join(format!("out/iter_{n}/part-00000.parquet")))
            .iter()
            .flat_map(|batch| {
                let ids = batch.column_by_name("id").unwrap().as_primitive::<Int64Type>().values().to_vec();
                let scores = batch.column_by_name("score").unwrap().as_primitive::<Float64Type>().values().to_vec();
                ids.into_iter().zip(scores).collect::<Vec<_>>()
            })
            .collect();
        expected.sort_by_key(|(id, _)| *id);
        got.sort_by_key(|(id, _)| *id);
        assert!(!expected.is_empty());
        assert_eq!(got, expected, "iteration {n}");
    }
}

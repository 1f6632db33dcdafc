//! Bad input: one clear error naming the problem, exit 2, nothing written.

use corral_tests::guests;

use crate::support::{Fixture, Output, corral};

#[track_caller]
fn assert_bad_input(fx: &Fixture, out: &Output, needles: &[&str]) {
    assert_eq!(out.code, 2, "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    let errors: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "one error line:\n{}", out.stderr);
    for needle in needles {
        assert!(errors[0].contains(needle), "`{needle}` in: {}", errors[0]);
    }
    assert!(!fx.out().exists(), "nothing written");
}

fn run_with_module(fx: &Fixture, bytes: &[u8]) -> Output {
    let module = fx.dir.path().join("module.wasm");
    std::fs::write(&module, bytes).unwrap();
    let job = fx.job(module.to_str().unwrap(), &[1, 2], "", "");
    corral(&[&"run", &job])
}

#[test]
fn a_missing_job_file() {
    let fx = Fixture::new(10);
    let out = corral(&[&"run", &fx.dir.path().join("nope.toml")]);
    assert_bad_input(&fx, &out, &["cannot read job file", "nope.toml"]);
}

#[test]
fn a_malformed_job_file() {
    let fx = Fixture::new(10);
    let job = fx.dir.path().join("job.toml");
    std::fs::write(&job, "iterations = [1, 2\n[config]\n").unwrap();
    let out = corral(&[&"run", &job]);
    assert_bad_input(&fx, &out, &["job.toml is malformed", "line"]);
}

#[test]
fn an_invalid_field_is_named() {
    let fx = Fixture::new(10);
    let job = fx.job(guests::SEED_MODEL, &[1], "", "");
    let out = corral(&[&"run", &job, &"--memory", &"lots"]);
    assert_bad_input(&fx, &out, &["`limits.memory`", "lots"]);
}

#[test]
fn a_missing_config_file() {
    let fx = Fixture::new(10);
    let job = fx.job(guests::SEED_MODEL, &[1], "", "");
    let out = corral(&[&"run", &job, &"--config", &fx.dir.path().join("missing.csv")]);
    assert_bad_input(&fx, &out, &["config file", "missing.csv", "not found"]);
}

#[test]
fn a_missing_module() {
    let fx = Fixture::new(10);
    let job = fx.job(guests::SEED_MODEL, &[1], "", "");
    let out = corral(&[&"run", &job, &"--module", &fx.dir.path().join("gone.wasm")]);
    assert_bad_input(&fx, &out, &["cannot read transform module", "gone.wasm"]);
}

#[test]
fn a_file_that_is_not_wasm() {
    let fx = Fixture::new(10);
    let noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let out = run_with_module(&fx, &noise);
    assert_bad_input(&fx, &out, &["module.wasm", "is not WebAssembly"]);
}

#[test]
fn a_core_module_instead_of_a_component() {
    let fx = Fixture::new(10);
    let out = run_with_module(&fx, &wat::parse_str("(module (func (export \"run\")))").unwrap());
    assert_bad_input(&fx, &out, &["is a core WebAssembly module, not a component", "wasm32-wasip2"]);
}

#[test]
fn a_truncated_component() {
    let fx = Fixture::new(10);
    let bytes = std::fs::read(guests::SEED_MODEL).unwrap();
    let out = run_with_module(&fx, &bytes[..bytes.len() / 2]);
    assert_bad_input(&fx, &out, &["is not a valid WebAssembly component"]);
}

#[test]
fn a_component_of_another_world() {
    let fx = Fixture::new(10);
    let out = run_with_module(&fx, &wat::parse_str("(component)").unwrap());
    assert_bad_input(&fx, &out, &["is not a component of the corral `transform` world", "run"]);
}

#[test]
fn a_component_importing_what_corral_does_not_provide() {
    let fx = Fixture::new(10);
    let component = wat::parse_str(r#"(component (import "example:missing/api" (instance (export "f" (func)))))"#).unwrap();
    let out = run_with_module(&fx, &component);
    assert_bad_input(&fx, &out, &["is not a component of the corral `transform` world", "example:missing/api"]);
}

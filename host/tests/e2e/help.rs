//! `--help` of every command shows an example, and errors that stop a
//! command say what to do next.

use crate::support::{Fixture, corral};

#[test]
fn every_command_help_has_an_example() {
    let commands: [&[&str]; 7] =
        [&[], &["run"], &["check"], &["new"], &["report"], &["manifest"], &["manifest", "merge"]];
    for command in commands {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = command.iter().map(|a| a as &dyn AsRef<std::ffi::OsStr>).collect();
        args.push(&"--help");
        let out = corral(&args);
        assert_eq!(out.code, 0, "corral {command:?} --help: {}", out.stderr);
        assert!(out.stdout.contains("Example"), "corral {command:?} --help has no example:\n{}", out.stdout);
        assert!(out.stdout.contains("corral "), "corral {command:?} --help: {}", out.stdout);
    }
}

#[test]
fn a_missing_module_says_how_to_build_it() {
    let fx = Fixture::new(100);
    let job = fx.job("target/wasm32-wasip2/release/not_built.wasm", &[1], "", "");
    let out = corral(&[&"run", &job]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(lines.iter().any(|l| l.starts_with("error: ") && l.contains("not_built.wasm")), "{}", out.stderr);
    assert!(
        lines.iter().any(|l| l.starts_with("hint: ") && l.contains("cargo build --release --target wasm32-wasip2")),
        "{}",
        out.stderr
    );
}

#[test]
fn a_missing_job_file_points_to_corral_new() {
    let dir = tempfile::tempdir().unwrap();
    let out = corral(&[&"run", &dir.path().join("job.toml")]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("hint: `corral new NAME`"), "{}", out.stderr);
}

//! The command line's output: JSON logs, help.

use corral_tests::guests;

use crate::support::{Fixture, corral, corral_command, corral_env};

#[test]
fn json_logs_parse_and_carry_the_iteration_on_every_iteration_event() {
    let fx = Fixture::new(2_000);
    let job = fx.job(guests::SEED_MODEL, &[1, 2, 3], "param1 = 1.0\nparam2 = 1.0", "");
    let out = corral(&[&"run", &job, &"--log-format", &"json", &"-v"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let events: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let finished: Vec<&serde_json::Value> = events.iter().filter(|e| e["message"] == "iteration succeeded").collect();
    assert_eq!(finished.len(), 3);
    for event in &finished {
        assert!(event["iteration"].is_i64(), "{event}");
        assert!(event["wall_ms"].is_u64(), "{event}");
    }
    // The seed model's own debug line, forwarded with its iteration.
    for n in [1, 2, 3] {
        let guest_line = events
            .iter()
            .find(|e| e["target"] == "corral::guest" && e["message"].as_str().unwrap_or_default().starts_with(&format!("iteration {n}:")));
        let guest_line = guest_line.unwrap_or_else(|| panic!("no guest log line of iteration {n} in:\n{}", out.stderr));
        assert_eq!(guest_line["iteration"], n);
    }
}

#[test]
fn text_logs_to_a_pipe_carry_no_colour_codes() {
    // Regression: the text logs carried ANSI colour codes into files and
    // pipes (EMR step logs), unless NO_COLOR was set.
    let fx = Fixture::new(2_000);
    let job = fx.job(guests::SEED_MODEL, &[1, 2], "param1 = 1.0\nparam2 = 1.0", "");
    let out = corral_env(&[&"run", &job], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("iteration succeeded"), "{}", out.stderr);
    assert!(!out.stderr.contains('\u{1b}'), "colour codes in piped logs:\n{:?}", out.stderr);
}

/// Runs corral with stdout and stderr into one file, as `> log 2>&1` does:
/// its exit code and what the file holds.
fn corral_into_one_file(fx: &Fixture, args: &[&dyn AsRef<std::ffi::OsStr>]) -> (i32, String) {
    let path = fx.out().with_extension("log");
    let file = std::fs::File::create(&path).unwrap();
    let status = corral_command(args, &[]).stdout(file.try_clone().unwrap()).stderr(file).status().unwrap();
    (status.code().expect("corral exited"), std::fs::read_to_string(&path).unwrap())
}

#[test]
fn logs_to_a_file_are_all_written_and_before_the_summary_or_error_that_follows_them() {
    // Lines to a pipe or file are written in batches; none may be lost at
    // exit or come after the summary (stdout) or the error printed later.
    let fx = Fixture::new(1_000);
    let job = fx.job(guests::EVIL, &(0..40).collect::<Vec<_>>(), r#"evil = { "3" = "error" }"#, "");
    let (code, text) = corral_into_one_file(&fx, &[&"run", &job]);
    assert_eq!(code, 1, "{text}");
    let summary = text.find(" iteration  status").unwrap_or_else(|| panic!("no summary table:\n{text}"));
    let (logs, after) = text.split_at(summary);
    assert_eq!(logs.matches("iteration succeeded").count(), 39, "{text}");
    assert_eq!(logs.matches("iteration failed").count(), 1, "{text}");
    assert!(!after.contains(" INFO ") && !after.contains(" WARN "), "a log line after the summary:\n{text}");
    assert!(text.trim_end().lines().last().unwrap().starts_with("manifest: "), "{text}");

    // An error after the config is loaded: the load's line comes first.
    let under_a_file = fx.config().join("out");
    let (code, text) = corral_into_one_file(&fx, &[&"run", &job, &"--out", &under_a_file]);
    assert_eq!(code, 1, "{text}");
    let loaded = text.find("config table loaded").unwrap_or_else(|| panic!("no load line:\n{text}"));
    let error = text.find("error: ").unwrap_or_else(|| panic!("no error:\n{text}"));
    assert!(loaded < error, "the log line came after the error:\n{text}");
}

#[test]
fn run_help_has_an_example() {
    let out = corral(&[&"run", &"--help"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("Example:") && out.stdout.contains("corral run examples/seed/job.toml"), "{}", out.stdout);
}

#[test]
fn check_describes_a_good_module() {
    let out = corral(&[&"check", &guests::SEED_MODEL]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("a component of the corral `transform` world"), "{}", out.stdout);
    assert!(out.stdout.contains("exports:  run"), "{}", out.stdout);
    assert!(out.stdout.contains("corral:transform/host@0.1.0"), "{}", out.stdout);
    let bytes = std::fs::read(guests::SEED_MODEL).unwrap();
    assert!(out.stdout.contains(&format!("size:     {} bytes", bytes.len())), "{}", out.stdout);
    assert!(out.stdout.contains(&corral::sandbox::module_sha256(&bytes)), "{}", out.stdout);
}

#[test]
fn check_names_what_is_wrong_with_a_bad_module() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("core.wasm", wat::parse_str("(module)").unwrap(), "is a core WebAssembly module, not a component"),
        ("other.wasm", wat::parse_str("(component)").unwrap(), "is not a component of the corral `transform` world"),
    ];
    for (name, bytes, needle) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = corral(&[&"check", &path]);
        assert_eq!(out.code, 2, "{name}: {}", out.stderr);
        assert!(out.stderr.contains(needle) && out.stderr.contains(name), "{name}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{name}: {}", out.stdout);
    }
}

#[test]
fn a_long_run_logs_a_heartbeat_with_its_counts() {
    let fx = crate::support::Fixture::new(1_000);
    let job = fx.job(corral_tests::guests::EVIL, &(0..8).collect::<Vec<_>>(), "delay_ms = 150\nevil = { \"3\" = \"error\" }", "");
    let out = crate::support::corral_with_env(&[&"--log-format", &"json", &"run", &job], &[("CORRAL_HEARTBEAT", "100ms")]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let beats: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["message"].as_str().is_some_and(|m| m.starts_with("progress:")))
        .collect();
    assert!(beats.len() >= 3, "a heartbeat every 100 ms of a run of about 600 ms: {}", out.stderr);
    let done: Vec<u64> = beats.iter().map(|b| b["done"].as_u64().unwrap()).collect();
    assert!(done.windows(2).all(|w| w[0] <= w[1]), "done only grows: {done:?}");
    for beat in &beats {
        let f = beat;
        let (done, running, remaining) = (f["done"].as_u64().unwrap(), f["running"].as_u64().unwrap(), f["remaining"].as_u64().unwrap());
        assert_eq!(done + remaining, 8, "{beat}");
        assert!(running <= 2, "at most max_workers running: {beat}");
        assert_eq!(f["succeeded"].as_u64().unwrap() + f["failed"].as_u64().unwrap(), done);
    }
}

//! The command line's output: JSON logs, help.

use corral_tests::guests;

use crate::support::{Fixture, corral};

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
fn run_help_has_an_example() {
    let out = corral(&[&"run", &"--help"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("Example:") && out.stdout.contains("corral run examples/seed/job.toml"), "{}", out.stdout);
}

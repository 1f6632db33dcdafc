//! Hostile guests: each misbehaviour lands in the manifest with its own
//! failure kind, and the good iterations of the same run are unharmed.

use corral_tests::{files_under, guests};

use crate::support::{Fixture, corral, record};

#[test]
fn each_misbehaviour_gets_its_kind_and_the_good_iterations_succeed() {
    let fx = Fixture::new(5_000);
    let evil = r#"evil = { "1" = "loop", "2" = "memory-bomb", "3" = "stack-overflow", "4" = "abort", "5" = "malformed-ipc", "6" = "schema-change", "7" = "log-loop" }"#;
    let job = fx.job(guests::EVIL, &(0..10).collect::<Vec<_>>(), evil, "partition_by = \"some_column\"");
    let out = corral(&[&"run", &job, &"--fuel", &"500000000", &"--memory", &"64MiB"]);
    assert_eq!(out.code, 1, "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    let manifest = fx.manifest();
    let expect = [
        (1, "fuel_exhausted", "used up its fuel of 500000000"),
        (2, "memory_limit", "over its cap of 67108864 bytes"),
        (3, "trap", "stack overflow"),
        (4, "trap", "evil.wasm!"),
        (5, "invalid_output", "not a complete Arrow IPC stream"),
        (6, "invalid_output", "every batch of an iteration must have the same schema"),
        (7, "fuel_exhausted", "used up its fuel"),
    ];
    for (n, kind, needle) in expect {
        let error = &record(&manifest, n)["error"];
        assert_eq!(error["kind"], kind, "iteration {n}: {error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(needle), "iteration {n}: `{needle}` in {message}");
        assert!(!message.contains("Stack backtrace"), "no host backtrace in a guest's error: {message}");
        assert_eq!(files_under(&fx.out().join(format!("iter_{n}"))), Vec::<String>::new(), "nothing partial of {n}");
    }
    // The guest's panic-on-OOM message reaches the record.
    let stderr = record(&manifest, 2)["error"]["stderr_tail"].as_str().unwrap_or_default().to_owned();
    assert!(stderr.contains("memory allocation"), "{stderr}");
    for n in [0, 8, 9] {
        assert_eq!(record(&manifest, n)["status"], "succeeded", "iteration {n}");
        assert!(fx.part(n).exists());
    }
    assert_eq!(manifest["summary"]["succeeded"], 3);
}

#[test]
fn guests_see_no_files_no_network_no_environment_and_cannot_flood_stdout() {
    let fx = Fixture::new(1_000);
    let evil = r#"evil = { "1" = "read-passwd", "2" = "network", "3" = "env", "4" = "stdout-flood" }"#;
    let job = fx.job(guests::EVIL, &[1, 2, 3, 4], evil, "");
    let out = corral(&[&"run", &job]);
    // Each behaviour fails itself (bail!) if the sandbox lets it through.
    assert_eq!(out.code, 0, "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    let manifest = fx.manifest();
    for n in 1..=4 {
        assert_eq!(record(&manifest, n)["status"], "succeeded", "iteration {n}: {}", record(&manifest, n));
    }
    // 100 MiB of stdout: logged up to a budget, not all of it.
    assert!(out.stderr.len() < 1024 * 1024, "stderr of {} bytes", out.stderr.len());
    assert!(out.stderr.contains("further stdout output of this iteration is not logged"), "{}", &out.stderr[..2000.min(out.stderr.len())]);
}

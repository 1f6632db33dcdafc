//! Hostile guests: each misbehaviour lands in the manifest with its own
//! failure kind, and the good iterations of the same run are unharmed.

use corral_tests::{files_under, guests};

use crate::support::{Fixture, corral, record};

/// Each `(iteration, kind, needle)` of `expect` failed with that kind, a
/// message holding the needle and no host backtrace, and left nothing of
/// its output.
pub(crate) fn assert_failures(fx: &Fixture, manifest: &serde_json::Value, expect: &[(i64, &str, &str)]) {
    for &(n, kind, needle) in expect {
        let error = &record(manifest, n)["error"];
        assert_eq!(error["kind"], kind, "iteration {n}: {error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(needle), "iteration {n}: `{needle}` in {message}");
        assert!(!message.contains("Stack backtrace"), "no host backtrace in a guest's error: {message}");
        assert_eq!(files_under(&fx.out().join(format!("iter_{n}"))), Vec::<String>::new(), "nothing partial of {n}");
    }
}

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
        (5, "invalid_output", "not a well-formed Arrow IPC stream"),
        (6, "invalid_output", "every batch of an iteration must have the same schema"),
        (7, "fuel_exhausted", "used up its fuel"),
    ];
    assert_failures(&fx, &manifest, &expect);
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

#[test]
fn a_guest_stuck_in_a_computation_is_stopped_by_its_timeout() {
    let fx = Fixture::new(1_000);
    let job = fx.job(guests::EVIL, &[1, 2], r#"evil = { "1" = "loop" }"#, "");
    let started = std::time::Instant::now();
    let out = corral(&[&"run", &job, &"--fuel", &"1000000000000000", &"--timeout", &"1s"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let manifest = fx.manifest();
    let error = &record(&manifest, 1)["error"];
    assert_eq!(error["kind"], "timeout", "{error}");
    assert!(error["message"].as_str().unwrap().contains("timeout of 1s"), "{error}");
    let wall = record(&manifest, 1)["wall_ms"].as_u64().unwrap();
    assert!((1000..3000).contains(&wall), "stopped on time: {wall} ms");
    assert_eq!(record(&manifest, 2)["status"], "succeeded");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn an_endless_emitter_is_capped_without_taking_host_memory() {
    let fx = Fixture::new(1_000);
    let job = fx.job(guests::EVIL, &[1, 2], r#"evil = { "1" = "emit-flood" }"#, "");
    let out = corral(&[&"run", &job, &"--max-output", &"64MiB"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let manifest = fx.manifest();
    let error = &record(&manifest, 1)["error"];
    assert_eq!(error["kind"], "invalid_output", "{error}");
    assert!(error["message"].as_str().unwrap().contains("over its cap of 67108864 bytes"), "{error}");
    assert_eq!(files_under(&fx.out().join("iter_1")), Vec::<String>::new());
    assert_eq!(record(&manifest, 2)["status"], "succeeded");
    let rss = manifest["job"]["peak_rss_bytes"].as_u64().unwrap();
    assert!(rss < 512 << 20, "host peak RSS {rss} bytes");

    // The row cap holds the same way.
    let out = corral(&[&"run", &job, &"--max-output-rows", &"3000000"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let manifest = fx.manifest();
    let error = &record(&manifest, 1)["error"];
    assert_eq!(error["kind"], "invalid_output", "{error}");
    assert!(error["message"].as_str().unwrap().contains("over its cap of 3000000 rows"), "{error}");
}

#[test]
fn deterministic_runs_give_the_same_output_bit_for_bit() {
    let fx = Fixture::new(100);
    let job = fx.job(guests::EVIL, &[1, 2], r#"evil = { "1" = "random", "2" = "random" }"#, "");
    let run = |extra: &[&dyn AsRef<std::ffi::OsStr>]| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"run", &job];
        args.extend_from_slice(extra);
        let out = corral(&args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        (std::fs::read(fx.part(1)).unwrap(), std::fs::read(fx.part(2)).unwrap())
    };
    let first = run(&[&"--deterministic"]);
    let second = run(&[&"--deterministic"]);
    assert_eq!(first, second, "same input, same output");
    assert_ne!(first.0, first.1, "but it depends on the iteration");
    assert_eq!(fx.manifest()["job"]["deterministic"], true);
    let real = run(&[]);
    assert_ne!(real.0, first.0, "real random numbers and clocks otherwise");
}

#[test]
fn the_memory_budget_bounds_the_running_caps() {
    let fx = Fixture::new(1_000);
    let job = fx.job(guests::EVIL, &(0..6).collect::<Vec<_>>(), "", "");
    // Room for one 64 MiB cap at a time, though 4 workers are allowed.
    let out = corral(&[&"run", &job, &"--max-workers", &"4", &"--memory", &"64MiB", &"--memory-budget", &"100MiB"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let manifest = fx.manifest();
    assert_eq!(manifest["job"]["concurrency"], 1);
    let workers: Vec<u64> = manifest["iterations"].as_array().unwrap().iter().map(|r| r["worker"].as_u64().unwrap()).collect();
    assert!(workers.iter().all(|w| *w == 0), "one slot: {workers:?}");

    // A single cap over the budget is refused before anything runs.
    std::fs::remove_dir_all(fx.out()).unwrap();
    let out = corral(&[&"run", &job, &"--memory", &"64MiB", &"--memory-budget", &"32MiB"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("`limits.memory`") && out.stderr.contains("memory budget"), "{}", out.stderr);
    assert!(!fx.out().exists());
}

/// Runs iterations 1, 2 and 3 with the debug-build test hook `hook` set
/// to fail iteration 2; checks the exit code, that nothing is left in
/// iteration 2's directory and that 1 and 3 succeeded; returns 2's record.
fn fail_iteration_2_by_hook(hook: &str, code: i32) -> serde_json::Value {
    let fx = Fixture::new(1_000);
    let job = fx.job(guests::EVIL, &[1, 2, 3], "", "");
    let out = crate::support::corral_with_env(&[&"run", &job], &[(hook, "2")]);
    assert_eq!(out.code, code, "{}", out.stderr);
    let manifest = fx.manifest();
    assert_eq!(files_under(&fx.out().join("iter_2")), Vec::<String>::new(), "nothing partial, no staging file");
    for n in [1, 3] {
        assert_eq!(record(&manifest, n)["status"], "succeeded");
    }
    record(&manifest, 2).clone()
}

#[test]
fn a_host_panic_fails_its_iteration_only() {
    // A host fault is not the iteration's: it is attempted again, and a
    // run whose only failures are such exits 75 (worth running again).
    let failed = fail_iteration_2_by_hook("CORRAL_TEST_HOST_PANIC", 75);
    assert_eq!(failed["attempts"], 2, "{failed}");
    let error = &failed["error"];
    assert_eq!(error["kind"], "host_panic", "{error}");
    assert!(error["message"].as_str().unwrap().contains("CORRAL_TEST_HOST_PANIC"), "{error}");
}

#[test]
fn regression_a_writer_panic_at_finish_is_a_refused_output_not_a_host_panic_retried() {
    // Finishing writes the guest's data: a panic there refuses that output
    // once. It used to be a host_panic, attempted again and making the run
    // exit 75, so that a launcher ran the whole shard again for it.
    let failed = fail_iteration_2_by_hook("CORRAL_TEST_FINISH_PANIC", 1);
    assert_eq!(failed["attempts"], 1, "{failed}");
    assert_eq!(failed["error"]["kind"], "invalid_output", "{failed}");
    let message = failed["error"]["message"].as_str().unwrap();
    assert!(message.contains("the Parquet writer cannot write this output") && message.contains("CORRAL_TEST_FINISH_PANIC"), "{message}");
}

/// The host's peak RSS bound for the mixed run: the two running iterations'
/// memory caps (2 x 64 MiB of linear memory live in the host process), their
/// output caps (2 x 32 MiB) and about 100 MiB for the engine, code and config.
const MIXED_RUN_RSS_BOUND: u64 = 384 << 20;

#[test]
fn a_mixed_run_of_201_iterations_a_third_of_them_evil_on_2_workers() {
    let fx = Fixture::new(20_000);
    let behaviours = [
        ("loop", "fuel_exhausted"),
        ("memory-bomb", "memory_limit"),
        ("stack-overflow", "trap"),
        ("abort", "trap"),
        ("panic", "trap"),
        ("error", "guest_error"),
        ("malformed-ipc", "invalid_output"),
        ("schema-change", "invalid_output"),
        ("emit-flood", "invalid_output"),
        ("log-loop", "fuel_exhausted"),
    ];
    let evil: Vec<(i64, &str, &str)> =
        (0..201).filter(|n| n % 3 == 1).enumerate().map(|(i, n)| (n, behaviours[i % behaviours.len()].0, behaviours[i % behaviours.len()].1)).collect();
    let table: Vec<String> = evil.iter().map(|(n, b, _)| format!("\"{n}\" = \"{b}\"")).collect();
    let params = format!("evil = {{ {} }}", table.join(", "));
    let job = fx.job(guests::EVIL, &(0..201).collect::<Vec<_>>(), &params, "partition_by = \"some_column\"");
    let out = corral(&[
        &"run", &job, &"--max-workers", &"2", &"--fuel", &"300000000", &"--memory", &"64MiB", &"--max-output", &"32MiB",
    ]);
    assert_eq!(out.code, 1, "{}", &out.stderr[out.stderr.len().saturating_sub(3000)..]);
    let manifest = fx.manifest();
    assert_eq!(manifest["summary"]["total"], 201);
    assert_eq!(manifest["summary"]["failed"], 67);
    assert_eq!(manifest["summary"]["succeeded"], 134);
    for (n, behaviour, kind) in &evil {
        assert_eq!(record(&manifest, *n)["error"]["kind"], *kind, "iteration {n} ({behaviour})");
        assert_eq!(files_under(&fx.out().join(format!("iter_{n}"))), Vec::<String>::new(), "iteration {n}");
    }
    for n in (0..201).filter(|n| n % 3 != 1) {
        assert_eq!(record(&manifest, n)["status"], "succeeded", "iteration {n}");
        assert_eq!(crate::failures::read_passthrough(&fx, n), crate::failures::passthrough(&fx.rows, n), "iteration {n}");
    }
    let rss = manifest["job"]["peak_rss_bytes"].as_u64().unwrap();
    eprintln!("mixed run: host peak RSS {} MiB (bound {} MiB), wall {} ms", rss >> 20, MIXED_RUN_RSS_BOUND >> 20, manifest["summary"]["wall_ms"]);
    assert!(rss > 0 && rss < MIXED_RUN_RSS_BOUND, "host peak RSS {rss} bytes over the bound");
}

/// The `spin` param (CPU work for the fairness benchmark) costs fuel in
/// proportion to the units asked, and the iteration still copies its rows.
#[test]
fn spin_gives_an_iteration_cpu_work_in_proportion() {
    let fx = Fixture::new(2_000);
    let job = fx.job(guests::EVIL, &[1, 2, 3], r#"spin = { "2" = 20, "3" = 40 }"#, "");
    let out = corral(&[&"run", &job]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let manifest = fx.manifest();
    let fuel = |n: i64| record(&manifest, n)["fuel_used"].as_u64().unwrap();
    for n in [1, 2, 3] {
        let rows = fx.rows.iter().filter(|r| r.some_column == n).count() as u64;
        assert_eq!(record(&manifest, n)["rows_out"], rows);
    }
    let (unit_2, unit_3) = (fuel(2) - fuel(1), fuel(3) - fuel(1));
    assert!(unit_2 > 20 * 100_000, "20 units of 100,000 steps cost at least a unit of fuel per step: {unit_2}");
    let ratio = unit_3 as f64 / unit_2 as f64;
    assert!((1.8..2.2).contains(&ratio), "twice the units, about twice the fuel: {ratio}");
    assert!(out.stderr.contains("spun 40 units"), "{}", out.stderr);
}

#[test]
fn an_iteration_cannot_read_what_an_earlier_one_left_in_its_reused_memory() {
    snoops_find_nothing_after("plant");
}

/// The pages `plant-scattered` dirties lie in about a thousand runs: the
/// vendored wasmtime's reset scans past the first 32 runs and copies every
/// one back instead of decommitting what is after them (vendor/README.md),
/// and must miss none.
#[test]
fn reset_restores_pages_past_32_runs() {
    snoops_find_nothing_after("plant-scattered");
}

/// Alternates `planter` and `snoop`, one iteration at a time, and checks
/// that no snoop finds a word a planter wrote.
fn snoops_find_nothing_after(planter: &str) {
    let fx = Fixture::new(100);
    // One iteration at a time, so that each `snoop` gets a pool slot (its
    // memories, tables and stack) a planter has just used.
    let iterations: Vec<i64> = (0..12).collect();
    let evil = iterations
        .iter()
        .map(|n| format!("\"{n}\" = \"{}\"", if n % 2 == 0 { planter } else { "snoop" }))
        .collect::<Vec<_>>()
        .join(", ");
    let job = fx.job(guests::EVIL, &iterations, &format!("evil = {{ {evil} }}"), "");
    let out = corral(&[&"run", &job, &"--max-workers", &"1", &"--memory", &"64MiB"]);
    assert_eq!(out.code, 0, "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    for n in iterations.iter().filter(|n| *n % 2 == 1) {
        let batches = corral_tests::read_parquet(&fx.part(*n));
        let column = |name: &str| {
            let array = batches[0].column_by_name(name).unwrap_or_else(|| panic!("iteration {n}: no column {name}"));
            array.as_any().downcast_ref::<arrow_array::Int64Array>().expect("Int64").value(0)
        };
        assert_eq!(column("before"), 0, "iteration {n} found words an earlier {planter} iteration planted");
        // The scan itself works: it finds the 1 MiB the snoop planted.
        assert_eq!(column("after"), (1 << 20) / 8, "iteration {n}: its own words");
    }
}

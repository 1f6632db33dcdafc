//! The host boundary at compile time and at shutdown: a module over its
//! size, function or compile-time bound is refused (exit 2, naming the
//! `[limits]` field) without costing the host its memory; a signal while
//! the module compiles, or while guests sleep, ends the run in seconds
//! with a manifest.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use corral_tests::{files_under, guests};

use crate::support::{Fixture, corral, corral_command, record, signal_and_wait};

/// `(component (core module (func) … (func)))` with `functions` functions,
/// written to `dir`; the text is built in one buffer.
fn many_functions(dir: &Path, functions: usize) -> PathBuf {
    let mut text = String::with_capacity(functions * 6 + 64);
    text.push_str("(component (core module ");
    for _ in 0..functions {
        text.push_str("(func)");
    }
    text.push_str("))");
    let path = dir.join(format!("functions-{functions}.wasm"));
    std::fs::write(&path, wat::parse_str(&text).unwrap()).unwrap();
    path
}

/// Appends `lines` to the job file's last section, `[limits]`.
fn with_limits(job: &Path, lines: &str) {
    let mut text = std::fs::read_to_string(job).unwrap();
    assert!(text.trim_end().ends_with("timeout = \"60s\""), "[limits] is the job file's last section");
    text.push_str(lines);
    text.push('\n');
    std::fs::write(job, text).unwrap();
}

/// The peak resident memory (`VmHWM`) of a live process, bytes.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// What a child did, with the largest peak resident memory seen while it ran.
struct Measured {
    code: i32,
    stderr: String,
    elapsed: Duration,
    peak_rss: u64,
}

/// Runs `corral args` without the module cache, sampling its peak memory
/// every millisecond until it exits.
fn run_measured(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Measured {
    let started = Instant::now();
    let mut child = corral_command(args, &[]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let drain = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut peak = 0;
    let status = loop {
        if let Some(rss) = peak_rss(child.id()) {
            peak = peak.max(rss);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "corral ran for a minute");
        std::thread::sleep(Duration::from_millis(1));
    };
    Measured { code: status.code().expect("an exit, not a kill"), stderr: drain.join().unwrap(), elapsed: started.elapsed(), peak_rss: peak }
}

#[test]
fn a_module_of_a_million_functions_is_refused_in_seconds_and_small_memory() {
    let fx = Fixture::new(100);
    let module = many_functions(fx.dir.path(), 1_000_000);
    let job = fx.job(module.to_str().unwrap(), &[0, 1], "", "");
    let run: [&dyn AsRef<std::ffi::OsStr>; 3] = [&"run", &job, &"--no-cache"];
    let check: [&dyn AsRef<std::ffi::OsStr>; 2] = [&"check", &module];
    for args in [&run[..], &check[..]] {
        let out = run_measured(args);
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(
            out.stderr.contains("has 1000000 functions, over the limit of 100000 (limits.max_module_functions)"),
            "{}",
            out.stderr
        );
        assert!(out.elapsed < Duration::from_secs(10), "refused after {:?}", out.elapsed);
        assert!(out.peak_rss > 0, "the child's memory was sampled");
        assert!(out.peak_rss < 500 << 20, "peak resident memory of {} MiB", out.peak_rss >> 20);
    }
    assert!(!fx.out().exists(), "nothing written");
}

#[test]
fn a_component_over_the_sandboxs_instance_limits_is_refused_as_such_not_as_invalid() {
    let fx = Fixture::new(100);
    // Valid components, each asking one instance for more than the pool
    // gives it, with the words of the limit it is over.
    let cases = [
        ("memories", "(component (core module (memory 1) (memory 1)))".to_owned(), "defined memories count of 2"),
        ("table", "(component (core module (table 10000000 funcref)))".to_owned(), "minimum element size of 10000000"),
        (
            "instances",
            format!("(component (core module $m) {})", (0..40).map(|i| format!("(core instance $i{i} (instantiate $m))")).collect::<String>()),
            "40 core module instances",
        ),
        ("globals", format!("(component (core module {}))", "(global i64 (i64.const 0))".repeat(200_000)), "defined globals"),
    ];
    for (name, text, reason) in cases {
        let module = fx.dir.path().join(format!("{name}.wasm"));
        std::fs::write(&module, wat::parse_str(&text).unwrap()).unwrap();
        let job = fx.job(module.to_str().unwrap(), &[0, 1], "", "");
        let run: [&dyn AsRef<std::ffi::OsStr>; 3] = [&"run", &job, &"--no-cache"];
        let check: [&dyn AsRef<std::ffi::OsStr>; 2] = [&"check", &module];
        for args in [&run[..], &check[..]] {
            let out = corral(args);
            assert_eq!(out.code, 2, "{name}: {}", out.stderr);
            assert!(out.stderr.contains("asks for more than corral's sandbox gives one instance"), "{name}: {}", out.stderr);
            assert!(out.stderr.contains(reason), "{name}: {}", out.stderr);
            assert!(!out.stderr.contains("not a valid WebAssembly component"), "{name}: {}", out.stderr);
        }
        assert!(!fx.out().exists(), "{name}: nothing written");
    }
}

#[test]
fn a_module_over_max_module_size_is_refused() {
    let fx = Fixture::new(100);
    let job = fx.job(guests::EVIL, &[0], "", "");
    with_limits(&job, "max_module_size = \"1 MiB\"");
    let out = corral(&[&"run", &job]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("over the limit of 1 MiB (limits.max_module_size)"), "{}", out.stderr);
    assert!(!fx.out().exists(), "nothing written");
}

#[test]
fn a_compile_past_compile_timeout_is_refused() {
    let fx = Fixture::new(100);
    let job = fx.job(guests::EVIL, &[0], "", "");
    with_limits(&job, "compile_timeout = \"1ms\"");
    let started = Instant::now();
    let out = corral(&[&"run", &job, &"--no-cache"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("took longer than the limit of 1ms (limits.compile_timeout)"), "{}", out.stderr);
    // Refused at the limit, not when the compile ends.
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    assert!(!fx.out().exists(), "nothing written");
}

/// Spawns `corral run job --no-cache …` with its log on a pipe.
fn spawn_run(job: &Path, extra: &[&str]) -> Child {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"run", &job, &"--no-cache"];
    for arg in extra {
        args.push(arg);
    }
    corral_command(&args, &[("NO_COLOR".into(), "1".into())]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

/// Reads the child's log until a line contains `needle`, then SIGTERMs
/// it `after` later; returns the exit code, the log, and how long after the
/// signal it exited.
fn terminate_after(mut child: Child, needle: &str, after: Duration) -> (i32, String, Duration) {
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    loop {
        let line = lines.next().unwrap_or_else(|| panic!("corral ended before `{needle}`:\n{}", log.join("\n"))).unwrap();
        let found = line.contains(needle);
        log.push(line);
        if found {
            break;
        }
    }
    std::thread::sleep(after);
    assert!(child.try_wait().unwrap().is_none(), "corral ended before the signal:\n{}", log.join("\n"));
    let drain = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let (code, elapsed) = signal_and_wait(&mut child, "TERM", Duration::from_secs(30));
    log.extend(drain.join().unwrap());
    (code, log.join("\n"), elapsed)
}

#[test]
fn sigterm_while_compiling_writes_a_manifest_of_iterations_not_started_and_exits_143() {
    let fx = Fixture::new(100);
    // Under the default limit of functions, and many seconds to compile.
    let module = many_functions(fx.dir.path(), 90_000);
    let job = fx.job(module.to_str().unwrap(), &[0, 1, 2], "", "");
    let (code, log, elapsed) = terminate_after(spawn_run(&job, &[]), "compiling the transform", Duration::from_millis(300));
    assert_eq!(code, 143, "{log}");
    assert!(elapsed < Duration::from_secs(3), "exited {elapsed:?} after the signal\n{log}");
    assert!(!log.contains("compiled the transform"), "the signal came while compiling\n{log}");

    let manifest = fx.manifest();
    assert_eq!(manifest["summary"]["total"], 3);
    assert_eq!(manifest["summary"]["interrupted"], 3);
    let bytes = std::fs::read(&module).unwrap();
    assert_eq!(manifest["job"]["module_sha256"], corral::sandbox::module_sha256(&bytes));
    for n in 0..3 {
        let record = record(&manifest, n);
        assert_eq!(record["status"], "interrupted", "{record}");
        assert_eq!(record["error"]["kind"], "interrupted");
        assert_eq!(record["error"]["message"], "not started: the run was interrupted");
    }
}

#[test]
fn sigterm_while_guests_sleep_stops_them_at_once_and_exits_143() {
    let fx = Fixture::new(1_000);
    // Every iteration sleeps ten minutes on a WASI clock, far past the
    // signal, and its timeout is longer still.
    let job = fx.job(guests::EVIL, &[0, 1, 2, 3], "delay_ms = 600000", "");
    let child = spawn_run(&job, &["--timeout", "20min"]);
    let (code, log, elapsed) = terminate_after(child, "running iterations=", Duration::from_millis(1500));
    assert_eq!(code, 143, "{log}");
    assert!(elapsed < Duration::from_secs(5), "exited {elapsed:?} after the signal\n{log}");

    let manifest = fx.manifest();
    assert_eq!(manifest["summary"]["interrupted"], 4, "{manifest}");
    let mut stopped = 0;
    for n in 0..4 {
        let record = record(&manifest, n);
        assert_eq!(record["status"], "interrupted", "{record}");
        assert_eq!(record["error"]["kind"], "interrupted");
        if record["attempts"] == 1 {
            stopped += 1;
            assert_eq!(
                record["error"]["message"],
                "the run was interrupted (SIGTERM or SIGINT) while this iteration ran; its output was discarded"
            );
        }
        assert_eq!(files_under(&fx.out().join(format!("iter_{n}"))), Vec::<String>::new(), "nothing partial of {n}");
    }
    assert_eq!(stopped, 2, "the two running iterations were stopped, not skipped: {manifest}");
}

#[test]
fn sigterm_while_compiling_a_resumed_run_keeps_what_was_committed() {
    let fx = Fixture::new(1_000);
    let job = fx.job(guests::EVIL, &[0, 1], "", "");
    let out = corral(&[&"run", &job]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The same module and params, one iteration more, compiled afresh.
    let job = fx.job(guests::EVIL, &[0, 1, 2], "", "");
    let (code, log, elapsed) = terminate_after(spawn_run(&job, &["--resume"]), "compiling the transform", Duration::from_millis(100));
    assert_eq!(code, 143, "{log}");
    assert!(elapsed < Duration::from_secs(4), "exited {elapsed:?} after the signal\n{log}");
    let manifest = fx.manifest();
    for n in [0, 1] {
        assert_eq!(record(&manifest, n)["status"], "succeeded", "carried over: {}", record(&manifest, n));
        assert!(fx.part(n).exists());
    }
    assert_eq!(record(&manifest, 2)["status"], "interrupted", "{}", record(&manifest, 2));
    assert_eq!(record(&manifest, 2)["error"]["message"], "not started: the run was interrupted");
    assert_eq!(manifest["summary"]["succeeded"], 2);
}

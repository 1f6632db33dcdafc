//! Graceful shutdown: SIGTERM or SIGINT mid-run stops admitting iterations,
//! interrupts the running ones, writes the manifest and exits 128 + signal.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use corral_tests::{files_under, guests};

use crate::support::{Fixture, record, signal_and_wait};

fn interrupt_mid_run(signal: &str, expected_code: i32) {
    let fx = Fixture::new(1_000);
    // Two iterations finish at once; the others spin until stopped.
    let evil = r#"evil = { "2" = "loop", "3" = "loop", "4" = "loop", "5" = "loop" }"#;
    let job = fx.job(guests::EVIL, &[0, 1, 2, 3, 4, 5], evil, "");
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("corral-module-cache");
    let mut child = Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(["run".as_ref(), job.as_os_str(), "--fuel".as_ref(), "1000000000000000".as_ref(), "--timeout".as_ref(), "5min".as_ref()])
        .env("CORRAL_CACHE_DIR", cache)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the spinning iterations run.
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut lines = stderr.lines();
    let mut finished = 0;
    while finished < 2 {
        let line = lines.next().expect("corral ended early").unwrap();
        if line.contains("iteration succeeded") {
            finished += 1;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let drain = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let (code, elapsed) = signal_and_wait(&mut child, signal, Duration::from_secs(10));
    let log = drain.join().unwrap().join("\n");
    assert_eq!(code, expected_code, "{log}");
    assert!(elapsed < Duration::from_secs(5), "stopped {elapsed:?} after the signal");

    let manifest = fx.manifest();
    assert_eq!(manifest["summary"]["succeeded"], 2);
    assert_eq!(manifest["summary"]["interrupted"], 4);
    assert_eq!(manifest["iterations"].as_array().unwrap().len(), 6, "every iteration listed");
    for n in [0, 1] {
        assert_eq!(record(&manifest, n)["status"], "succeeded");
    }
    for n in 2..6 {
        assert_eq!(record(&manifest, n)["status"], "interrupted", "{}", record(&manifest, n));
        assert_eq!(record(&manifest, n)["error"]["kind"], "interrupted");
        assert_eq!(files_under(&fx.out().join(format!("iter_{n}"))), Vec::<String>::new(), "nothing partial of {n}");
    }
    // The two that were running when the signal came were stopped, not skipped.
    let stopped = (2..6).filter(|n| record(&manifest, *n)["attempts"] == 1).count();
    assert_eq!(stopped, 2, "{manifest}");
}

#[test]
fn sigterm_interrupts_the_run_and_exits_143() {
    interrupt_mid_run("TERM", 143);
}

#[test]
fn sigint_interrupts_the_run_and_exits_130() {
    interrupt_mid_run("INT", 130);
}

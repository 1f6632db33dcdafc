//! The progress bar: drawn when stderr is a terminal (a pty from
//! `script`), never when it is a file or pipe.

use std::path::Path;
use std::process::Command;

use corral_tests::guests;

use crate::support::{Fixture, corral};

/// Runs `corral ARGS` in a pseudo-terminal; returns its exit code and what
/// the terminal showed (stdout and stderr together).
fn corral_in_terminal(args: &[&Path]) -> (i32, String) {
    let mut line = String::from(env!("CARGO_BIN_EXE_corral"));
    for arg in args {
        line.push(' ');
        line.push_str(&shell_quote(&arg.to_string_lossy()));
    }
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("corral-module-cache");
    let output = Command::new("script")
        .args(["--quiet", "--return", "--command", &line, "/dev/null"])
        .env("CORRAL_CACHE_DIR", cache)
        .env("COLUMNS", "120")
        .env_remove("CORRAL_NO_PROGRESS")
        .env_remove("RUST_LOG")
        .output()
        .expect("running `script` (util-linux) for a pseudo-terminal");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).into_owned())
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[test]
fn a_terminal_gets_a_bar_with_counts_and_the_log_lines_above_it() {
    let fx = Fixture::new(1_000);
    let job = fx.job(guests::EVIL, &(0..6).collect::<Vec<_>>(), "delay_ms = 300\nevil = { \"2\" = \"error\" }", "");
    let (code, screen) = corral_in_terminal(&[Path::new("run"), &job]);
    assert_eq!(code, 1, "{screen}");
    // The bar's counts, as it moved (the last frame is cleared at the end).
    assert!(screen.contains("ETA"), "no bar drawn:\n{screen}");
    assert!(screen.contains("1 failed"), "the bar counts the failure:\n{screen}");
    assert!(screen.contains("running"), "{screen}");
    // Log lines still come through, and the summary follows the bar.
    assert!(screen.contains("iteration failed") || screen.contains("guest_error"), "{screen}");
    let summary = screen.find("5/6 succeeded, 1 failed").unwrap_or_else(|| panic!("no summary:\n{screen}"));
    assert!(screen.rfind("ETA").unwrap() < summary, "the bar is gone before the summary:\n{screen}");
}

#[test]
fn a_pipe_gets_no_bar() {
    let fx = Fixture::new(1_000);
    let job = fx.job(guests::EVIL, &(0..4).collect::<Vec<_>>(), "delay_ms = 100", "");
    let out = corral(&[&"run", &job]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("ETA") && !out.stderr.contains('\u{1b}'), "{}", out.stderr);
    assert_eq!(out.stderr.matches("iteration succeeded").count(), 4, "one line per finished iteration:\n{}", out.stderr);
}

//! Fixtures: a temp directory with a generated config and a job file, and
//! running the `corral` binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use corral_tests::{ConfigRow, config_rows, write_config_csv};
use tempfile::TempDir;

/// A temp directory holding `config.csv` and job files.
pub struct Fixture {
    pub dir: TempDir,
    pub rows: Vec<ConfigRow>,
}

impl Fixture {
    /// A fixture with a config of `rows` generated rows.
    pub fn new(rows: usize) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let rows = config_rows(rows, 42);
        write_config_csv(&dir.path().join("config.csv"), &rows);
        Fixture { dir, rows }
    }

    /// The output directory jobs write to.
    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// The config file.
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.csv")
    }

    /// Writes `job.toml` for `module` and returns its path. `params` and
    /// `config_extra` are TOML lines added to `[params]` and `[config]`.
    pub fn job(&self, module: &str, iterations: &[i64], params: &str, config_extra: &str) -> PathBuf {
        let iterations: Vec<String> = iterations.iter().map(i64::to_string).collect();
        let text = format!(
            r#"name = "test"
iterations = [{}]

[config]
path = "config.csv"
{config_extra}

[transform]
module = "{module}"

[params]
{params}

[output]
dir = "out"

[limits]
max_workers = 2
memory = "256 MiB"
timeout = "60s"
"#,
            iterations.join(", ")
        );
        let path = self.dir.path().join("job.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The output file of iteration `n`.
    pub fn part(&self, n: i64) -> PathBuf {
        self.out().join(format!("iter_{n}/part-00000.parquet"))
    }

    /// The manifest, parsed.
    pub fn manifest(&self) -> serde_json::Value {
        corral_tests::read_json(&self.out().join("_manifest.json"))
    }
}

/// What a `corral` process did.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `corral` binary with `args`, sharing one compiled-module cache
/// across the tests.
pub fn corral(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    corral_with_env(args, &[])
}

/// Runs the `corral` binary with `args` and extra environment variables.
pub fn corral_with_env(args: &[&dyn AsRef<std::ffi::OsStr>], envs: &[(&str, &str)]) -> Output {
    let envs: Vec<(String, String)> = envs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    corral_env(args, &envs)
}

/// A `corral` command with the shared module cache and an environment
/// without the caller's `AWS_*` variables, plus `envs`.
pub fn corral_command(args: &[&dyn AsRef<std::ffi::OsStr>], envs: &[(String, String)]) -> Command {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("corral-module-cache");
    let mut command = Command::new(env!("CARGO_BIN_EXE_corral"));
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    command
        .args(args.iter().map(|a| a.as_ref()))
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .env("CORRAL_CACHE_DIR", cache)
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG");
    command
}

/// `corral ARGS` as [`corral_command`] makes it, run through `wrapper`
/// (`taskset -c 0`, `prlimit --as=N --`, `sh -c '…; exec "$@"' sh`), with
/// the same environment.
pub fn corral_command_under(wrapper: &[&str], args: &[&dyn AsRef<std::ffi::OsStr>]) -> Command {
    let inner = corral_command(args, &[]);
    let mut command = Command::new(wrapper[0]);
    command.args(&wrapper[1..]).arg(inner.get_program()).args(inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command
}

/// Runs the `corral` binary with `args` and `envs` (see [`corral_command`]).
pub fn corral_env(args: &[&dyn AsRef<std::ffi::OsStr>], envs: &[(String, String)]) -> Output {
    let output = corral_command(args, envs)
        .output()
        .expect("running corral");
    Output {
        code: output.status.code().expect("corral exited, not killed"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The record of iteration `n` in a manifest.
pub fn record(manifest: &serde_json::Value, n: i64) -> &serde_json::Value {
    manifest["iterations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["iteration"] == n)
        .unwrap_or_else(|| panic!("no record of iteration {n}"))
}

/// Sends `signal` (`TERM`, `INT`) to `child` and waits for it to exit, at
/// most `patience`; returns its exit code and how long after the signal it
/// exited.
pub fn signal_and_wait(child: &mut std::process::Child, signal: &str, patience: std::time::Duration) -> (i32, std::time::Duration) {
    let sent = std::time::Instant::now();
    let status = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code().expect("an exit, not a kill"), sent.elapsed());
        }
        assert!(sent.elapsed() < patience, "corral did not stop within {patience:?} of SIG{signal}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

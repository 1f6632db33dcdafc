//! Structured logging with `tracing`: human-readable text or JSON lines on
//! stderr, every iteration event carrying its iteration id. While a
//! progress bar is drawn, log lines are printed above it, not through it.
//! When stderr is not a terminal (a pipe, a log file), lines are written in
//! batches ([`batch`]), at most [`batch::BATCH_WINDOW`] late.

pub mod batch;

use std::io::IsTerminal as _;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::ProgressBar;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (for CloudWatch and the like).
    Json,
}

/// The progress bar being drawn on stderr, if any.
static BAR: RwLock<Option<ProgressBar>> = RwLock::new(None);

/// Log lines go above `bar` while it is drawn (`None`: it is gone).
pub fn set_progress_bar(bar: Option<ProgressBar>) {
    *BAR.write().unwrap_or_else(|e| e.into_inner()) = bar;
}

/// Whether log lines go through [`BATCH`] (stderr is not a terminal).
static BATCHING: AtomicBool = AtomicBool::new(false);

/// The log lines waiting to be written to stderr.
static BATCH: batch::LineBatch<RawStderr> = batch::LineBatch::new(RawStderr);

/// The process's stderr, as a sink for [`BATCH`].
struct RawStderr;

impl std::io::Write for RawStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::stderr().lock().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        std::io::stderr().lock().write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Writes the log lines still waiting in a batch. Called before anything
/// else is printed (the summary, an error) and before the process exits.
pub fn flush() {
    if BATCHING.load(Ordering::Acquire) {
        // Nowhere to report a failed write of the log itself.
        let _ = BATCH.flush();
    }
}

/// stderr, writing each log line above the progress bar while one is
/// drawn, or into the batch when stderr is not a terminal.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stderr;

impl std::io::Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        // The fmt layer formats an event whole, then writes it in one call.
        if BATCHING.load(Ordering::Acquire) {
            return BATCH.push(buf);
        }
        let bar = BAR.read().unwrap_or_else(|e| e.into_inner()).clone();
        match bar {
            Some(bar) if !bar.is_finished() => bar.suspend(|| std::io::stderr().lock().write_all(buf)),
            _ => std::io::stderr().lock().write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if BATCHING.load(Ordering::Acquire) {
            return BATCH.flush();
        }
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Stderr;

    fn make_writer(&'a self) -> Stderr {
        Stderr
    }
}

/// Installs the global subscriber. `verbosity` is -1 for `-q`, 0 by
/// default, 1+ for `-v`; `RUST_LOG` overrides it.
pub fn init(format: LogFormat, verbosity: i8) {
    let level = match verbosity {
        i8::MIN..=-1 => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},cranelift=warn,wasmtime=warn")));
    let terminal = std::io::stderr().is_terminal();
    // Colours only on a terminal: not in log files and pipes (EMR step
    // logs, CloudWatch), and never with NO_COLOR set.
    let ansi = terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(Stderr).with_ansi(ansi);
    let result = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    };
    // A second init (tests calling the CLI in-process) keeps the first.
    if result.is_ok() && !terminal {
        start_batching();
    }
}

/// Sends log lines through [`BATCH`]: starts its flusher thread, and makes
/// a panic write the lines before it first, so they stay in order.
fn start_batching() {
    let flusher = std::thread::Builder::new().name("corral-log".into()).spawn(|| BATCH.run_flusher());
    if flusher.is_err() {
        return; // Without a flusher, lines are written one by one.
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        flush();
        previous(info);
    }));
    BATCHING.store(true, Ordering::Release);
}

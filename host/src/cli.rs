//! The command line: `corral run JOB.toml [overrides]` and the other
//! commands, parsed by clap; a run's arguments become a validated
//! [`Job`](crate::job::Job) before anything runs.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::hints;
use crate::job::{Job, Overrides};
use crate::logging::{self, LogFormat};
use crate::module_cache::ModuleCache;
use crate::runner::{self, RunOptions};

/// Run a sequence of model iterations in parallel, each in its own
/// WebAssembly sandbox, over one cached config table.
#[derive(Debug, Parser)]
#[command(
    name = "corral",
    version,
    about,
    long_about = None,
    after_help = "Examples:\n  corral new my-model                       # a transform crate to start from\n  corral run examples/seed/job.toml         # run a job's iterations\n  corral check target/wasm32-wasip2/release/seed_model.wasm\n  corral report examples/seed/out --html run.html"
)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Only warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More detail (-vv for even more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// corral's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a job: every iteration of the transform over the config table.
    #[command(after_help = "Example:\n  corral run examples/seed/job.toml --iterations 2,3,4 --max-workers 2 --param param1=1.5\n  corral run job.toml --out s3://bucket/runs/2026-11-24 --resume")]
    Run(RunArgs),
    /// Check that a module is a corral transform: its world, imports,
    /// exports, size, sha256 and compile time.
    #[command(after_help = "Example:\n  corral check target/wasm32-wasip2/release/seed_model.wasm")]
    Check(CheckArgs),
    /// Write a new transform project (a Rust crate, or with --lang python
    /// a Python module): a working example transform with a test, a job
    /// file, a sample config and a README.
    #[command(
        after_help = "Examples:\n  corral new my-model && cd my-model\n  cargo build --release --target wasm32-wasip2\n  corral run job.toml\n\n  corral new my-model --lang python && cd my-model\n  componentize-py -d wit -w transform componentize app -p . -p <corral>/guest-sdk/python -o my_model.wasm\n  corral run job.toml"
    )]
    New(NewArgs),
    /// Explain a finished run from its manifest: the summary, how busy the
    /// worker slots were, the slowest iterations, every failure in full;
    /// with --html, one self-contained page with a timeline.
    #[command(
        after_help = "Examples:\n  corral report examples/seed/out\n  corral report s3://bucket/runs/2026-11-24/_manifest.json --html run.html"
    )]
    Report(ReportArgs),
    /// Work with manifests.
    #[command(subcommand, after_help = "Example:\n  corral manifest merge s3://bucket/run")]
    Manifest(ManifestCommand),
}

/// `corral report`'s arguments.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run's `_manifest.json`, or its output directory: a local path,
    /// file:// or s3:// URL.
    pub manifest: String,
    /// Write the report as one self-contained HTML page to FILE instead.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// `corral new`'s arguments.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The transform's name, e.g. `my-model` (the module is `my_model.wasm`).
    pub name: String,
    /// The language to write it in.
    #[arg(long, value_enum, default_value_t = crate::scaffold::Language::Rust)]
    pub lang: crate::scaffold::Language,
    /// The directory to create the project in (default: the current one).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// The guest SDK to use: the `guest-sdk` folder of a corral checkout
    /// (default: the one of the sources this binary was built from).
    #[arg(long, value_name = "PATH")]
    pub sdk: Option<PathBuf>,
}

/// `corral manifest …`.
#[derive(Debug, Subcommand)]
pub enum ManifestCommand {
    /// Join the manifests of a sharded run (`run --shard K/N`) into one
    /// `_manifest.json`; exits 0 if every iteration succeeded, 1 if any
    /// failed, 2 if a shard is missing.
    #[command(after_help = "Example:\n  for k in 0 1 2 3; do corral run job.toml --shard $k/4 --out s3://bucket/run; done\n  corral manifest merge s3://bucket/run")]
    Merge {
        /// The run's output directory: a local path, file:// or s3:// URL.
        out: String,
    },
}

/// `corral check`'s arguments.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The module: a local path, file:// or s3:// URL.
    pub module: String,
}

/// `corral run`'s arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job file (TOML).
    pub job: PathBuf,
    /// What the flags override of the job file.
    #[command(flatten)]
    pub overrides: Overrides,
    /// Compile the transform without the on-disk cache.
    #[arg(long)]
    pub no_cache: bool,
}

/// Runs the parsed command line; returns the process exit code.
pub fn execute(cli: Cli) -> i32 {
    let verbosity = if cli.quiet { -1 } else { cli.verbose.min(8) as i8 };
    logging::init(cli.log_format, verbosity);
    // A bar for people at a terminal; logs and heartbeats for everyone else.
    let progress_bar = cli.log_format == LogFormat::Text
        && !cli.quiet
        && std::io::stderr().is_terminal()
        && std::env::var_os("CORRAL_NO_PROGRESS").is_none();
    let code = match cli.command {
        Command::Run(args) => run(args, progress_bar),
        Command::Check(args) => check(args),
        Command::New(args) => new(args),
        Command::Report(args) => report(args),
        Command::Manifest(ManifestCommand::Merge { out }) => merge(&out),
    };
    logging::flush();
    code
}

fn new(args: NewArgs) -> i32 {
    let sdk = args.sdk.unwrap_or_else(crate::scaffold::default_sdk);
    match crate::scaffold::create(&args.name, &args.dir, &sdk, args.lang) {
        Ok(scaffold) => {
            print!("{scaffold}");
            0
        }
        Err(e) => {
            hints::print_error(&e, None);
            e.exit_code()
        }
    }
}

fn report(args: ReportArgs) -> i32 {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let result = runtime.block_on(crate::report::load(&args.manifest, &crate::storage::Storage::new(Default::default())));
    let result = result.and_then(|(manifest, location)| match &args.html {
        None => {
            print!("{}", crate::report::text::render(&manifest, &location));
            Ok(())
        }
        Some(path) => {
            let page = crate::report::html::render(&manifest, &location);
            std::fs::write(path, page).map_err(|source| crate::report::ReportError::Write { path: path.clone(), source })?;
            println!("wrote {}", path.display());
            Ok(())
        }
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            hints::print_error(&e, None);
            e.exit_code()
        }
    }
}

fn merge(out: &str) -> i32 {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let result = runtime.block_on(async {
        let location = crate::location::Location::parse(out, &cwd)?;
        crate::merge::merge(&location, &crate::storage::Storage::new(Default::default())).await
    });
    match result {
        Ok((manifest, location)) => {
            print!("{}", crate::summary::render(&manifest, &location));
            if manifest.summary.succeeded == manifest.summary.total { 0 } else { 1 }
        }
        Err(e) => {
            hints::print_error(&e, None);
            e.exit_code()
        }
    }
}

fn check(args: CheckArgs) -> i32 {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let result = runtime.block_on(crate::check::check(&args.module));
    // Not waiting for blocking work left behind (a compile past its timeout).
    runtime.shutdown_background();
    match result {
        Ok(report) => {
            print!("{report}");
            0
        }
        Err(e) => {
            hints::print_error(&e, hints::for_run(&e));
            e.exit_code()
        }
    }
}

fn run(args: RunArgs, progress_bar: bool) -> i32 {
    let job = match Job::load(&args.job, &args.overrides) {
        Ok(job) => job,
        Err(e) => {
            let e = runner::RunError::Job(e);
            hints::print_error(&e, hints::for_run(&e));
            return 2;
        }
    };
    let options = RunOptions {
        cache: if args.no_cache { None } else { ModuleCache::default_location() },
        progress_bar,
    };
    let threads = job.limits.threads();
    crate::share::set_threads(threads);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().expect("a tokio runtime");
    let result = runtime.block_on(runner::run(&job, &options));
    // Not waiting for blocking work a signal left behind (a config still
    // loading, a compile): the process exits once the manifest is written.
    runtime.shutdown_background();
    // The last iterations' log lines before the summary.
    logging::flush();
    match result {
        Ok(report) => {
            print!("{}", crate::summary::render(&report.manifest, &report.manifest_location));
            report.exit_code()
        }
        Err(e) => {
            hints::print_error(&e, hints::for_run(&e));
            e.exit_code()
        }
    }
}

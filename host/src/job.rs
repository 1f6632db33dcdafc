//! The job: the TOML file and the CLI's overrides, parsed and validated into
//! one [`Job`] value before any I/O of the run happens.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;

use crate::guest_input::GuestLimits;
use crate::location::{Location, LocationError};
use crate::shard::Shard;
use crate::storage::settings::{StorageSection, StorageSettings};

/// Why a job is not valid. Each variant names the problem and, where there
/// is one, the field.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The job file could not be read.
    #[error("cannot read job file {path}: {source}")]
    Read {
        /// The job file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The job file is not valid TOML or does not have the job's shape.
    #[error("job file {path} is malformed: {message}")]
    Malformed {
        /// The job file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A field is missing or has a value corral cannot use.
    #[error("invalid `{field}`: {message}")]
    Invalid {
        /// The field, as written in the job file (e.g. `limits.memory`).
        field: &'static str,
        /// What is wrong and what would be right.
        message: String,
    },
    /// A location (path or URL) is malformed.
    #[error("invalid `{field}`: {source}")]
    Location {
        /// The field holding the location.
        field: &'static str,
        /// The problem.
        source: LocationError,
    },
}

fn invalid(field: &'static str, message: impl Into<String>) -> JobError {
    JobError::Invalid { field, message: message.into() }
}

/// The job file, as written (before validation). Unknown keys are errors,
/// so that a typo is not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    /// The job's name (default: the job file's stem).
    pub name: Option<String>,
    /// The iteration ids: a list of integers or a string such as `"0..64"`
    /// or `"2,3,4"`.
    pub iterations: Option<Iterations>,
    /// The config table.
    #[serde(default)]
    pub config: ConfigSection,
    /// The transform.
    #[serde(default)]
    pub transform: TransformSection,
    /// Params handed to the transform as a JSON object.
    #[serde(default)]
    pub params: toml::Table,
    /// Where outputs go.
    #[serde(default)]
    pub output: OutputSection,
    /// Limits per iteration, and the worker count.
    #[serde(default)]
    pub limits: LimitsSection,
    /// How the sandbox behaves.
    #[serde(default)]
    pub sandbox: SandboxSection,
    /// How corral talks to object storage.
    #[serde(default)]
    pub storage: StorageSection,
}

/// `[sandbox]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSection {
    /// Random numbers and clocks fixed per iteration, so that the same input
    /// gives the same output, bit for bit (default false: real ones).
    pub deterministic: Option<bool>,
}

/// Iteration ids as written: a list, or a string of ranges and ids.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Iterations {
    /// `[2, 3, 4]`
    List(Vec<i64>),
    /// `"0..64"`, `"2,3,4"`, `"0..8,56"`
    Spec(String),
}

/// `[config]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSection {
    /// Local path, `file://` or `s3://` URL.
    pub path: Option<String>,
    /// `csv` or `parquet` (default: from the file's extension).
    pub format: Option<String>,
    /// A column to index, so that `column == n` scans only matching rows.
    pub partition_by: Option<String>,
    /// The CSV's columns as `"name: type"` (default: inferred).
    pub schema: Option<Vec<String>>,
    /// Whether the CSV has a header line (default true).
    pub header: Option<bool>,
    /// The CSV's field delimiter (default `,`).
    pub delimiter: Option<String>,
    /// Rows per batch handed to a transform (default 65,536).
    pub batch_rows: Option<usize>,
}

/// `[transform]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformSection {
    /// The Wasm component of the corral world.
    pub module: Option<String>,
}

/// `[output]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    /// The output directory: local path, `file://` or `s3://` URL.
    pub dir: Option<String>,
    /// How the iterations' directories are named: `iter` (the default,
    /// `iter_N/`) or `hive` (`iteration=N/`).
    pub layout: Option<String>,
}

/// How the iterations' output directories are named under the output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// `iter_N/part-00000.parquet`: the seed job's layout.
    #[default]
    Iter,
    /// `iteration=N/part-00000.parquet`: Hive partitioning, so that Spark,
    /// DuckDB and pyarrow read the output as one dataset with an
    /// `iteration` column.
    Hive,
}

impl Layout {
    /// The directory of iteration `n`, relative to the output.
    pub fn dir(self, n: i64) -> String {
        match self {
            Layout::Iter => format!("iter_{n}"),
            Layout::Hive => format!("iteration={n}"),
        }
    }
}

/// `[limits]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Iterations running at once (default: the number of cores).
    pub max_workers: Option<usize>,
    /// Fuel (Wasm instructions, roughly) per iteration.
    pub fuel: Option<u64>,
    /// Linear-memory cap per iteration, e.g. `"512 MiB"`.
    pub memory: Option<String>,
    /// Wall-clock timeout per iteration, e.g. `"10 min"`.
    pub timeout: Option<String>,
    /// Cap on one iteration's output, e.g. `"4 GiB"` (Arrow bytes emitted).
    pub max_output: Option<String>,
    /// Memory all running iterations' caps may add up to, e.g. `"16 GiB"`
    /// (default: 3/4 of the machine's memory).
    pub memory_budget: Option<String>,
    /// Cap on the rows one iteration may emit.
    pub max_output_rows: Option<u64>,
    /// Cap on the transform module's file, e.g. `"256 MiB"` (checked
    /// before it is compiled).
    pub max_module_size: Option<String>,
    /// Cap on the functions of the transform module, its nested core
    /// modules' added up (counted before it is compiled).
    pub max_module_functions: Option<u64>,
    /// How long compiling the transform module may take, e.g. `"5 min"`.
    pub compile_timeout: Option<String>,
    /// Attempts an iteration gets when it fails by no fault of its code
    /// (storage, a host fault); default 2.
    pub attempts: Option<u32>,
}

/// Overrides from the command line (`corral run`'s flags, flattened into
/// its arguments); each replaces the job file's value.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Overrides {
    /// Iteration ids, e.g. `2,3,4` or `0..64` (overrides `iterations`).
    #[arg(long)]
    pub iterations: Option<String>,
    /// Iterations running at once (overrides `limits.max_workers`).
    #[arg(long)]
    pub max_workers: Option<usize>,
    /// The config table (overrides `config.path`).
    #[arg(long)]
    pub config: Option<String>,
    /// The transform component (overrides `transform.module`).
    #[arg(long)]
    pub module: Option<String>,
    /// The output directory (overrides `output.dir`).
    #[arg(long)]
    pub out: Option<String>,
    /// A param for the transform, `key=value` (repeatable; overrides `[params]`).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Fuel per iteration (overrides `limits.fuel`).
    #[arg(long)]
    pub fuel: Option<u64>,
    /// Memory cap per iteration, e.g. `256MiB` (overrides `limits.memory`).
    #[arg(long)]
    pub memory: Option<String>,
    /// Timeout per iteration, e.g. `30s` (overrides `limits.timeout`).
    #[arg(long)]
    pub timeout: Option<String>,
    /// Cap on one iteration's output, e.g. `1GiB` (overrides `limits.max_output`).
    #[arg(long)]
    pub max_output: Option<String>,
    /// What the running iterations' memory caps may add up to, e.g. `8GiB`
    /// (overrides `limits.memory_budget`).
    #[arg(long)]
    pub memory_budget: Option<String>,
    /// Fixed random numbers and clocks per iteration: the same input gives
    /// the same output, bit for bit (sets `sandbox.deterministic`).
    #[arg(long)]
    pub deterministic: bool,
    /// Cap on the rows one iteration may emit (overrides `limits.max_output_rows`).
    #[arg(long)]
    pub max_output_rows: Option<u64>,
    /// Attempts an iteration gets when it fails as storage or host_panic
    /// (overrides `limits.attempts`).
    #[arg(long)]
    pub attempts: Option<u32>,
    /// Finish an earlier run of this job: skip the iterations it already
    /// committed from the same inputs (module, params, config, settings),
    /// run the rest, and write a manifest that covers them all.
    #[arg(long)]
    pub resume: bool,
    /// Run only shard K of N (0-based) of the iterations: the one at
    /// position i is in shard i mod N. The manifest goes to
    /// `_shards/shard-K-of-N.json`; `corral manifest merge OUT` joins them.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
}

/// A `--param` as `(key, value)`.
fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

/// A validated job: everything the run needs, nothing left to check.
#[derive(Clone, Debug)]
pub struct Job {
    /// The job's name.
    pub name: String,
    /// Iteration ids, in the order given, without duplicates.
    pub iterations: Vec<i64>,
    /// The config table's source.
    pub config: ConfigSpec,
    /// The transform module.
    pub module: Location,
    /// Params for the transform (a JSON object).
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The output directory.
    pub output: Location,
    /// How its iterations' directories are named.
    pub layout: Layout,
    /// Limits.
    pub limits: Limits,
    /// Fixed random numbers and clocks per iteration.
    pub deterministic: bool,
    /// How corral talks to object storage.
    pub storage: StorageSettings,
    /// Skip iterations whose output an earlier run already committed with
    /// the same module and params.
    pub resume: bool,
    /// The shard this process runs (`iterations` is already its share).
    pub shard: Option<Shard>,
}

/// Format of the config file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigFormat {
    /// Comma- (or otherwise) separated values.
    Csv,
    /// Apache Parquet.
    Parquet,
}

/// Where and how to read the config table.
#[derive(Clone, Debug)]
pub struct ConfigSpec {
    /// The file.
    pub location: Location,
    /// Its format.
    pub format: ConfigFormat,
    /// The column to index for `key == n` scans.
    pub partition_by: Option<String>,
    /// A declared schema (CSV only); inferred when `None`.
    pub schema: Option<SchemaRef>,
    /// CSV header line present.
    pub header: bool,
    /// CSV delimiter.
    pub delimiter: u8,
    /// Rows per batch handed to a transform.
    pub batch_rows: usize,
}

/// Limits per iteration, and how many iterations run at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// Iterations running at once.
    pub max_workers: usize,
    /// Fuel per iteration.
    pub fuel: u64,
    /// Linear-memory cap per iteration, bytes.
    pub memory_bytes: u64,
    /// Wall-clock timeout per iteration.
    #[serde(with = "humantime_serde_secs")]
    pub timeout: Duration,
    /// Cap on Arrow bytes emitted by one iteration.
    pub max_output_bytes: u64,
    /// What the memory caps of running iterations may add up to, bytes.
    pub memory_budget_bytes: u64,
    /// Cap on rows emitted by one iteration.
    pub max_output_rows: u64,
    /// Attempts an iteration gets when it fails as `storage` or
    /// `host_panic` (the others are its own code's, and final).
    pub attempts: u32,
    /// The limits on what a guest hands the host.
    pub guest: GuestLimits,
}

impl Limits {
    /// Iterations that run at once: `max_workers`, lowered so that the
    /// running iterations' memory caps fit the memory budget.
    pub fn concurrency(&self) -> usize {
        let fit = usize::try_from(self.memory_budget_bytes / self.memory_bytes).unwrap_or(usize::MAX);
        self.max_workers.min(fit).max(1)
    }

    /// Threads for the host's parallel work (the runtime, the config's
    /// parsing and indexing): the CPUs this process may use
    /// ([`crate::share::Share`]), at most one per iteration that runs at
    /// once, so that a shard told to run one at a time keeps to one core.
    pub fn threads(&self) -> usize {
        crate::share::Share::current().cpus.min(self.concurrency()).max(1)
    }
}

mod humantime_serde_secs {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// Default fuel: about 20 minutes of guest CPU at ~40 G units/s.
pub const DEFAULT_FUEL: u64 = 50_000_000_000;
/// Default memory cap per iteration.
pub const DEFAULT_MEMORY: u64 = 512 * 1024 * 1024;
/// Default timeout per iteration.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Default output cap per iteration.
pub const DEFAULT_MAX_OUTPUT: u64 = 4 * 1024 * 1024 * 1024;
/// Default cap on rows emitted by one iteration.
pub const DEFAULT_MAX_OUTPUT_ROWS: u64 = 1_000_000_000;
/// Default attempts an iteration gets when it fails transiently.
pub const DEFAULT_ATTEMPTS: u32 = 2;
/// The most attempts `limits.attempts` may ask for.
pub const MAX_ATTEMPTS: u32 = 10;
/// Default rows per batch handed to a transform.
pub const DEFAULT_BATCH_ROWS: usize = 65_536;

impl Job {
    /// Reads the job file at `path`, applies `overrides`, and validates.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Job, JobError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| JobError::Read { path: path.to_owned(), source })?;
        let file: JobFile = toml::from_str(&text)
            .map_err(|e| JobError::Malformed { path: path.to_owned(), message: e.to_string().trim_end().to_owned() })?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let base = std::path::absolute(base).unwrap_or_else(|_| base.to_owned());
        let default_name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        Job::validate(file, &base, default_name, overrides)
    }

    /// Validates a parsed job file. Paths in the file resolve against
    /// `base`; paths in `overrides` against the working directory.
    pub fn validate(
        file: JobFile,
        base: &Path,
        default_name: Option<String>,
        overrides: &Overrides,
    ) -> Result<Job, JobError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let location = |field: &'static str, file_value: Option<String>, cli: &Option<String>| {
            match (cli, file_value) {
                (Some(text), _) => Location::parse(text, &cwd),
                (None, Some(text)) => Location::parse(&text, base),
                (None, None) => return Err(invalid(field, "missing (set it in the job file or on the command line)")),
            }
            .map_err(|source| JobError::Location { field, source })
        };

        let name = file.name.or(default_name).unwrap_or_else(|| "corral".to_owned());
        let iterations = match (&overrides.iterations, file.iterations) {
            (Some(spec), _) => parse_iterations(spec)?,
            (None, Some(Iterations::Spec(spec))) => parse_iterations(&spec)?,
            (None, Some(Iterations::List(list))) => list,
            (None, None) => return Err(invalid("iterations", "missing: list the iteration ids, e.g. [2, 3, 4] or \"0..64\"")),
        };
        let iterations = dedup_in_order(iterations)?;
        let shard = match &overrides.shard {
            Some(text) => Some(Shard::parse(text).map_err(|message| invalid("--shard", message))?),
            None => None,
        };
        let iterations = match shard {
            Some(shard) => shard.pick(&iterations),
            None => iterations,
        };

        let config = &file.config;
        let config_location = location("config.path", config.path.clone(), &overrides.config)?;
        let format = match config.format.as_deref() {
            Some("csv") => ConfigFormat::Csv,
            Some("parquet") => ConfigFormat::Parquet,
            Some(other) => return Err(invalid("config.format", format!("`{other}` is not a format corral reads (csv or parquet)"))),
            None => {
                let name = config_location.file_name().unwrap_or_default().to_ascii_lowercase();
                if name.ends_with(".parquet") || name.ends_with(".pq") {
                    ConfigFormat::Parquet
                } else if name.ends_with(".csv") || name.ends_with(".txt") || name.ends_with(".tsv") {
                    ConfigFormat::Csv
                } else {
                    return Err(invalid("config.format", format!("cannot tell the format of `{name}` from its name: set format = \"csv\" or \"parquet\"")));
                }
            }
        };
        let schema = match &config.schema {
            None => None,
            Some(_) if format == ConfigFormat::Parquet => {
                return Err(invalid("config.schema", "a Parquet file carries its own schema; remove `schema`"));
            }
            Some(columns) => Some(parse_schema(columns)?),
        };
        let delimiter = match config.delimiter.as_deref() {
            None => b',',
            Some("\\t") | Some("\t") => b'\t',
            Some(d) if d.len() == 1 && d.is_ascii() => d.as_bytes()[0],
            Some(d) => return Err(invalid("config.delimiter", format!("`{d}` is not a single ASCII character"))),
        };
        let batch_rows = config.batch_rows.unwrap_or(DEFAULT_BATCH_ROWS);
        if batch_rows == 0 {
            return Err(invalid("config.batch_rows", "must be at least 1"));
        }
        if let (Some(key), Some(schema)) = (&config.partition_by, &schema) {
            if schema.field_with_name(key).is_err() {
                return Err(invalid("config.partition_by", format!("`{key}` is not a column of config.schema")));
            }
        }
        let config = ConfigSpec {
            location: config_location,
            format,
            partition_by: config.partition_by.clone(),
            schema,
            header: config.header.unwrap_or(true),
            delimiter,
            batch_rows,
        };

        let module = location("transform.module", file.transform.module, &overrides.module)?;
        let output = location("output.dir", file.output.dir, &overrides.out)?;
        let layout = match file.output.layout.as_deref() {
            None | Some("iter") => Layout::Iter,
            Some("hive") => Layout::Hive,
            Some(other) => {
                return Err(invalid("output.layout", format!("`{other}` is not a layout: `iter` (iter_N/, the default) or `hive` (iteration=N/)")));
            }
        };

        let mut params = file.params;
        for (key, value) in &overrides.params {
            params.insert(key.clone(), parse_param_value(value));
        }
        let params = match serde_json::to_value(&params) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(_) => unreachable!("a TOML table serialises to a JSON object"),
            Err(e) => return Err(invalid("params", format!("cannot be expressed as JSON: {e}"))),
        };

        let limits = &file.limits;
        let max_workers = overrides
            .max_workers
            .or(limits.max_workers)
            .unwrap_or(crate::share::Share::current().cpus);
        if max_workers == 0 {
            return Err(invalid("limits.max_workers", "must be at least 1"));
        }
        let fuel = overrides.fuel.or(limits.fuel).unwrap_or(DEFAULT_FUEL);
        if fuel == 0 {
            return Err(invalid("limits.fuel", "must be at least 1"));
        }
        let memory_bytes = match overrides.memory.as_ref().or(limits.memory.as_ref()) {
            Some(text) => parse_size("limits.memory", text)?,
            None => DEFAULT_MEMORY,
        };
        if memory_bytes < 1024 * 1024 {
            return Err(invalid("limits.memory", "must be at least 1 MiB (a Wasm page is 64 KiB and a transform needs a few)"));
        }
        let timeout = match overrides.timeout.as_ref().or(limits.timeout.as_ref()) {
            Some(text) => parse_duration("limits.timeout", text)?,
            None => DEFAULT_TIMEOUT,
        };
        if timeout.is_zero() {
            return Err(invalid("limits.timeout", "must be longer than zero"));
        }
        let max_output_bytes = match overrides.max_output.as_ref().or(limits.max_output.as_ref()) {
            Some(text) => parse_size("limits.max_output", text)?,
            None => DEFAULT_MAX_OUTPUT,
        };
        let memory_budget_bytes = match overrides.memory_budget.as_ref().or(limits.memory_budget.as_ref()) {
            Some(text) => parse_size("limits.memory_budget", text)?,
            None => crate::share::Share::current().default_memory_budget(),
        };
        let max_output_rows = overrides.max_output_rows.or(limits.max_output_rows).unwrap_or(DEFAULT_MAX_OUTPUT_ROWS);
        let attempts = overrides.attempts.or(limits.attempts).unwrap_or(DEFAULT_ATTEMPTS);
        if !(1..=MAX_ATTEMPTS).contains(&attempts) {
            return Err(invalid("limits.attempts", format!("must be from 1 to {MAX_ATTEMPTS}")));
        }
        let guest = guest_limits(limits)?;
        if memory_bytes > memory_budget_bytes {
            return Err(invalid(
                "limits.memory",
                format!(
                    "one iteration's cap of {} is over the node's memory budget of {} (limits.memory_budget): no iteration could ever start",
                    bytesize::ByteSize(memory_bytes).display().iec(),
                    bytesize::ByteSize(memory_budget_bytes).display().iec()
                ),
            ));
        }

        Ok(Job {
            name,
            iterations,
            config,
            module,
            params,
            output,
            layout,
            limits: Limits {
                max_workers,
                fuel,
                memory_bytes,
                timeout,
                max_output_bytes,
                memory_budget_bytes,
                max_output_rows,
                attempts,
                guest,
            },
            deterministic: overrides.deterministic || file.sandbox.deterministic.unwrap_or(false),
            storage: StorageSettings::validate(&file.storage).map_err(|(field, message)| invalid(field, message))?,
            resume: overrides.resume,
            shard,
        })
    }
}

impl Job {
    /// Where this run's manifest goes, relative to the output directory:
    /// `_manifest.json`, or a shard's own under `_shards/`.
    pub fn manifest_name(&self) -> String {
        match self.shard {
            None => crate::manifest::MANIFEST_FILE.to_owned(),
            Some(shard) => format!("{}/{}", crate::shard::SHARDS_DIR, shard.manifest_name()),
        }
    }
}

/// The guest limits, with the module's bounds from `[limits]`.
fn guest_limits(limits: &LimitsSection) -> Result<GuestLimits, JobError> {
    let mut guest = GuestLimits::default();
    if let Some(text) = &limits.max_module_size {
        guest.max_module_bytes = parse_size("limits.max_module_size", text)?;
        if guest.max_module_bytes == 0 {
            return Err(invalid("limits.max_module_size", "must be more than zero bytes"));
        }
    }
    if let Some(functions) = limits.max_module_functions {
        if functions == 0 {
            return Err(invalid("limits.max_module_functions", "must be at least 1"));
        }
        guest.max_module_functions = functions;
    }
    if let Some(text) = &limits.compile_timeout {
        guest.compile_timeout = parse_duration("limits.compile_timeout", text)?;
        if guest.compile_timeout.is_zero() {
            return Err(invalid("limits.compile_timeout", "must be longer than zero"));
        }
    }
    Ok(guest)
}

/// Parses `"0..64"`, `"2,3,4"`, `"0..=7,56"` into ids.
pub fn parse_iterations(spec: &str) -> Result<Vec<i64>, JobError> {
    let field = "iterations";
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(invalid(field, format!("`{spec}` has an empty item")));
        }
        let int = |s: &str| {
            s.trim().parse::<i64>().map_err(|_| invalid(field, format!("`{s}` in `{spec}` is not an integer")))
        };
        if let Some((a, b)) = part.split_once("..=") {
            out.extend(int(a)?..=int(b)?);
        } else if let Some((a, b)) = part.split_once("..") {
            out.extend(int(a)?..int(b)?);
        } else {
            out.push(int(part)?);
        }
    }
    Ok(out)
}

fn dedup_in_order(ids: Vec<i64>) -> Result<Vec<i64>, JobError> {
    if ids.is_empty() {
        return Err(invalid("iterations", "the list is empty: name at least one iteration"));
    }
    let mut seen = BTreeSet::new();
    if let Some(dup) = ids.iter().find(|id| !seen.insert(**id)) {
        return Err(invalid("iterations", format!("iteration {dup} is listed twice")));
    }
    Ok(ids)
}

fn parse_size(field: &'static str, text: &str) -> Result<u64, JobError> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|s| s.as_u64())
        .map_err(|e| invalid(field, format!("`{text}` is not a size like \"512 MiB\": {e}")))
}

fn parse_duration(field: &'static str, text: &str) -> Result<Duration, JobError> {
    // humantime wants no space between number and unit ("10min").
    let compact: String = text.split_whitespace().collect();
    humantime::parse_duration(&compact)
        .map_err(|e| invalid(field, format!("`{text}` is not a duration like \"10 min\" or \"30s\": {e}")))
}

/// A `--param` value: a TOML literal if it is one (`1.5`, `true`, `"x"`),
/// else the text as a string.
fn parse_param_value(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_owned()))
}

/// Parses `"name: type"` column declarations.
fn parse_schema(columns: &[String]) -> Result<SchemaRef, JobError> {
    let field = "config.schema";
    let mut names = BTreeSet::new();
    let mut fields = Vec::with_capacity(columns.len());
    for decl in columns {
        let (name, ty) = decl
            .split_once(':')
            .ok_or_else(|| invalid(field, format!("`{decl}` is not \"name: type\"")))?;
        let name = name.trim();
        if !names.insert(name.to_owned()) {
            return Err(invalid(field, format!("column `{name}` is declared twice")));
        }
        let data_type = match ty.trim().to_ascii_lowercase().as_str() {
            "bool" | "boolean" => DataType::Boolean,
            "int8" => DataType::Int8,
            "int16" => DataType::Int16,
            "int32" | "int" => DataType::Int32,
            "int64" | "long" | "bigint" => DataType::Int64,
            "uint8" => DataType::UInt8,
            "uint16" => DataType::UInt16,
            "uint32" => DataType::UInt32,
            "uint64" => DataType::UInt64,
            "float32" | "float" => DataType::Float32,
            "float64" | "double" => DataType::Float64,
            "utf8" | "string" | "str" | "text" => DataType::Utf8,
            "date" | "date32" => DataType::Date32,
            "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, None),
            other => {
                return Err(invalid(field, format!(
                    "type `{other}` of column `{name}` is not one of bool, int8..int64, uint8..uint64, float32, float64, string, date, timestamp"
                )));
            }
        };
        fields.push(Field::new(name, data_type, true));
    }
    if fields.is_empty() {
        return Err(invalid(field, "declares no column"));
    }
    Ok(std::sync::Arc::new(Schema::new(fields)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(text: &str, overrides: &Overrides) -> Result<Job, JobError> {
        let file: JobFile = toml::from_str(text).map_err(|e| JobError::Malformed { path: "job.toml".into(), message: e.to_string() })?;
        Job::validate(file, Path::new("/jobs"), Some("seed".into()), overrides)
    }

    const SEED: &str = r#"
        iterations = [2, 3, 4]
        [config]
        path = "config.csv"
        partition_by = "some_column"
        [transform]
        module = "seed.wasm"
        [params]
        param1 = 1.5
        [output]
        dir = "out"
        [limits]
        max_workers = 2
        memory = "64 MiB"
        timeout = "10 min"
    "#;

    #[test]
    fn a_seed_job_validates_with_paths_relative_to_the_file() {
        let job = job(SEED, &Overrides::default()).unwrap();
        assert_eq!(job.name, "seed");
        assert_eq!(job.iterations, vec![2, 3, 4]);
        assert_eq!(job.config.location, Location::Local("/jobs/config.csv".into()));
        assert_eq!(job.config.format, ConfigFormat::Csv);
        assert_eq!(job.limits.memory_bytes, 64 * 1024 * 1024);
        assert_eq!(job.limits.timeout, Duration::from_secs(600));
        assert_eq!(job.params["param1"], serde_json::json!(1.5));
    }

    #[test]
    fn cli_overrides_replace_file_values() {
        let overrides = Overrides {
            iterations: Some("0..3,9".into()),
            max_workers: Some(7),
            params: vec![("param1".into(), "2".into()), ("label".into(), "run a".into())],
            ..Overrides::default()
        };
        let job = job(SEED, &overrides).unwrap();
        assert_eq!(job.iterations, vec![0, 1, 2, 9]);
        assert_eq!(job.limits.max_workers, 7);
        assert_eq!(job.params["param1"], serde_json::json!(2));
        assert_eq!(job.params["label"], serde_json::json!("run a"));
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (SEED.replace("iterations = [2, 3, 4]", "iterations = []"), "iterations"),
            (SEED.replace("iterations = [2, 3, 4]", "iterations = [2, 2]"), "iterations"),
            (SEED.replace("\"64 MiB\"", "\"lots\""), "limits.memory"),
            (SEED.replace("\"10 min\"", "\"soon\""), "limits.timeout"),
            (SEED.replace("max_workers = 2", "max_workers = 0"), "limits.max_workers"),
            (SEED.replace("module = \"seed.wasm\"", ""), "transform.module"),
            (SEED.replace("config.csv", "config.xlsx"), "config.format"),
            (SEED.replace("timeout = \"10 min\"", "timeout = \"10 min\"\nmemory_budget = \"32 MiB\""), "limits.memory"),
            (SEED.replace("[limits]", "[limits]\nmax_module_size = \"0 B\""), "limits.max_module_size"),
            (SEED.replace("[limits]", "[limits]\nmax_module_size = \"big\""), "limits.max_module_size"),
            (SEED.replace("[limits]", "[limits]\nmax_module_functions = 0"), "limits.max_module_functions"),
            (SEED.replace("[limits]", "[limits]\ncompile_timeout = \"0s\""), "limits.compile_timeout"),
            (SEED.replace("[limits]", "[limits]\ncompile_timeout = \"later\""), "limits.compile_timeout"),
        ];
        for (text, field) in cases {
            let err = job(&text, &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains(&format!("`{field}`")), "{field}: {err}");
        }
    }

    #[test]
    fn the_module_bounds_default_and_parse() {
        let defaults = job(SEED, &Overrides::default()).unwrap().limits.guest;
        assert_eq!(defaults, GuestLimits::default());
        assert_eq!(defaults.max_module_bytes, 256 << 20);
        assert_eq!(defaults.max_module_functions, 100_000);
        assert_eq!(defaults.compile_timeout, Duration::from_secs(300));
        let text = SEED.replace(
            "[limits]",
            "[limits]\nmax_module_size = \"1 MiB\"\nmax_module_functions = 5000\ncompile_timeout = \"30 s\"",
        );
        let guest = job(&text, &Overrides::default()).unwrap().limits.guest;
        assert_eq!(guest.max_module_bytes, 1 << 20);
        assert_eq!(guest.max_module_functions, 5000);
        assert_eq!(guest.compile_timeout, Duration::from_secs(30));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = job(&SEED.replace("[limits]", "[limits]\nmax_wrokers = 3"), &Overrides::default()).unwrap_err();
        assert!(matches!(err, JobError::Malformed { .. }), "{err}");
        assert!(err.to_string().contains("max_wrokers"), "{err}");
    }

    #[test]
    fn declared_schemas_parse() {
        let text = SEED.replace("partition_by", "schema = [\"id: int64\", \"some_column: int32\", \"name: string\"]\npartition_by");
        let job = job(&text, &Overrides::default()).unwrap();
        let schema = job.config.schema.unwrap();
        assert_eq!(schema.field(1).data_type(), &DataType::Int32);
    }
}

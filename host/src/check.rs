//! `corral check MODULE`: whether a module is a transform of the corral
//! world, with its imports, exports, size, sha256 and compile time.

use std::fmt;
use std::time::Instant;

use crate::job::{DEFAULT_FUEL, DEFAULT_MAX_OUTPUT, DEFAULT_MAX_OUTPUT_ROWS, DEFAULT_MEMORY, DEFAULT_TIMEOUT, Limits};
use crate::location::Location;
use crate::runner::{RunError, compile_on_thread, read_module};
use crate::sandbox::ModuleBytes;

/// What `check` found about a good module.
#[derive(Debug)]
pub struct CheckReport {
    /// The module.
    pub location: Location,
    /// Its size, bytes.
    pub size_bytes: u64,
    /// Its sha256.
    pub sha256: String,
    /// Compile time, milliseconds (always compiled, never from the cache).
    pub compile_ms: u64,
    /// Its imports.
    pub imports: Vec<String>,
    /// Its exports.
    pub exports: Vec<String>,
}

/// Reads, compiles and links the module at `text` (a path or URL).
pub async fn check(text: &str) -> Result<CheckReport, RunError> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let location = Location::parse(text, &cwd)
        .map_err(|source| RunError::Job(crate::job::JobError::Location { field: "MODULE", source }))?;
    let storage = crate::storage::Storage::new(Default::default());
    storage.preflight(&location).await?;
    let store = storage.store(&location)?;
    // The bounds of a run's defaults: size, functions, compile time.
    let limits = Limits {
        max_workers: 1,
        fuel: DEFAULT_FUEL,
        memory_bytes: DEFAULT_MEMORY,
        timeout: DEFAULT_TIMEOUT,
        max_output_bytes: DEFAULT_MAX_OUTPUT,
        memory_budget_bytes: DEFAULT_MEMORY,
        max_output_rows: DEFAULT_MAX_OUTPUT_ROWS,
        attempts: 1,
        guest: crate::guest_input::GuestLimits::default(),
    };
    let module = ModuleBytes::new(read_module(&location, store.as_ref(), &limits).await?);
    let started = Instant::now();
    let size_bytes = module.bytes.len() as u64;
    let sandbox = compile_on_thread(module, location.clone(), limits, false, None).await?;
    Ok(CheckReport {
        location,
        size_bytes,
        sha256: sandbox.module_sha256().to_owned(),
        compile_ms: sandbox.compile_ms().unwrap_or_else(|| started.elapsed().as_millis() as u64),
        imports: sandbox.imports(),
        exports: sandbox.exports(),
    })
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: a component of the corral `transform` world (corral:transform/transform)", self.location)?;
        writeln!(f, "  size:     {} bytes", self.size_bytes)?;
        writeln!(f, "  sha256:   {}", self.sha256)?;
        writeln!(f, "  compile:  {} ms", self.compile_ms)?;
        writeln!(f, "  exports:  {}", self.exports.join(", "))?;
        writeln!(f, "  imports:")?;
        for import in &self.imports {
            writeln!(f, "    {import}")?;
        }
        Ok(())
    }
}

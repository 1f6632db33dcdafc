//! corral runs a sequence of model iterations in parallel, each in its own
//! WebAssembly sandbox, over one cached config table, and writes each
//! iteration's output and a result manifest to object storage.
//!
//! The pieces, in the order a run uses them:
//!
//! - [`cli`]: the command line, turned into a validated [`job::Job`].
//! - [`job`]: the job file and its overrides, parsed then validated.
//! - [`location`]: local paths, `file://` and `s3://` URLs.
//! - [`storage`]: object stores, credentials, retries, request counts, preflight.
//! - [`config_table`]: the config table, read once, indexed by a key.
//! - [`filter`]: scan requests evaluated natively on Arrow batches.
//! - [`sandbox`]: the engine, the transform world, one store per iteration.
//! - [`module_cache`]: compiled components cached on disk.
//! - [`output`]: Parquet outputs streamed to storage, committed or aborted.
//! - [`runner`]: the bounded pool of iterations and the manifest.
//! - [`resume`]: what an earlier run already committed, for `--resume`.
//! - [`shard`], [`merge`]: a run split over processes, and its manifests joined.
//! - [`check`]: `corral check`, a module's fitness as a transform.
//! - [`manifest`]: per-iteration records and the manifest.
//! - [`summary`], [`logging`], [`progress`], [`hints`]: what the user sees.
//! - [`scaffold`]: `corral new`, a transform crate to start from.
//! - [`report`]: `corral report`, a finished run as text or an HTML page.

pub mod check;
pub mod cli;
pub mod config_table;
pub mod filter;
pub mod hints;
pub mod job;
pub mod location;
pub mod logging;
pub mod manifest;
pub mod merge;
pub mod module_cache;
pub mod output;
pub mod progress;
pub mod report;
pub mod resume;
pub mod runner;
pub mod scaffold;
pub mod sandbox;
pub mod shard;
pub mod storage;
pub mod summary;

// These dev-dependencies serve the end-to-end tests, not the unit tests.
#[cfg(test)]
use {corral_tests as _, inotify as _};

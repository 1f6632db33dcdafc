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
//! - [`deadline`]: when host work for an iteration must stop.
//! - [`filter`]: scan requests evaluated natively on Arrow batches.
//! - [`guest_input`]: where guest input becomes trusted: limits and checks.
//! - [`sandbox`]: the engine, the transform world, one store per iteration.
//! - [`module_cache`]: compiled components cached on disk.
//! - [`output`]: Parquet outputs streamed to storage, committed or aborted.
//! - [`schema_memo`]: what derives from a schema, worked out once a run.
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
pub mod deadline;
pub mod filter;
pub mod guest_input;
pub mod hints;
pub mod inputs;
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
pub mod schema_memo;
pub mod shard;
pub mod share;
pub mod storage;
pub mod summary;

// These dev-dependencies serve the end-to-end tests, not the unit tests.
#[cfg(test)]
use {corral_tests as _, inotify as _};

/// The unit tests' allocator: the system's, counting the bytes each thread
/// holds, so that a test can bound what a step of its own thread keeps.
#[cfg(test)]
pub(crate) mod test_alloc {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static HELD: Cell<isize> = const { Cell::new(0) };
    }

    /// Bytes allocated and not yet freed by this thread (frees of memory
    /// other threads allocated count against it).
    pub(crate) fn held() -> isize {
        HELD.with(Cell::get)
    }

    struct Counting;

    fn add(bytes: isize) {
        // Not during a thread's teardown, when its local is gone.
        let _ = HELD.try_with(|held| held.set(held.get() + bytes));
    }

    // SAFETY: every call is passed on to the system allocator unchanged.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            add(layout.size() as isize);
            // SAFETY: the caller's contract, passed on.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            add(-(layout.size() as isize));
            // SAFETY: the caller's contract, passed on.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            add(layout.size() as isize);
            // SAFETY: the caller's contract, passed on.
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            add(new_size as isize - layout.size() as isize);
            // SAFETY: the caller's contract, passed on.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;
}

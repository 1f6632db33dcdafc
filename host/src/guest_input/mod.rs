//! Where guest input becomes trusted: the limits on what a guest may hand
//! the host ([`GuestLimits`], one documented value) and the checks that
//! turn raw guest input (a scan request, emitted IPC bytes, text) into
//! validated host values. The rest of the host only ever sees what these
//! return: parse, then validate, then act, as for the job file.
//!
//! Every size that comes from a guest is checked here before anything is
//! allocated or computed from it.

#[cfg(test)] mod fuzz;
pub mod ipc;
pub mod scan;
pub mod text;

use serde::Serialize;

/// The limits on guest data, per iteration unless said otherwise. The
/// defaults are generous for an honest transform and small next to the
/// host's memory; past a limit the iteration fails (or the request is
/// refused) with a message naming it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct GuestLimits {
    /// Bytes a guest may pass the host in one call (an emitted batch, a
    /// log line, a scan request): wasmtime's per-call "hostcall fuel",
    /// lowered from wasmtime's 128 MiB so that what one call makes the host
    /// hold stays small next to an iteration's memory cap (the SDK's `emit`
    /// splits batches into streams of at most 16 MiB). Past it the call
    /// traps, and the iteration fails as `invalid_output`.
    pub max_call_bytes: u64,
    /// Names in one scan's projection.
    pub max_scan_columns: usize,
    /// Comparisons in one scan's filter.
    pub max_scan_comparisons: usize,
    /// Bytes of one column name or text literal in a scan request.
    pub max_scan_text_bytes: usize,
    /// Rows per scanned batch at most: a larger `batch-rows` is clamped.
    pub max_scan_batch_rows: usize,
    /// Scans one iteration may hold open at once.
    pub max_open_scans: usize,
    /// Host resources (WASI streams, pollables, scans) and component
    /// handles one iteration may hold at once (wasmtime's defaults are
    /// 1,000,000 and 100,000); past it the call that makes one traps.
    pub max_handles: usize,
    /// Bytes of schema and field metadata (keys and values) in an emitted
    /// stream.
    pub max_metadata_bytes: usize,
    /// Fields (nested ones included) of an emitted schema.
    pub max_fields: usize,
    /// Levels of nesting of an emitted schema's fields (a top-level field
    /// is at level 1).
    pub max_nesting: usize,
    /// Messages (schema, dictionaries, batches) of one emitted stream.
    pub max_messages: usize,
    /// Bytes of a guest's error message kept (the record, the manifest, the
    /// log); the rest is cut with a marker.
    pub max_error_bytes: usize,
    /// Bytes of one guest log line kept; the rest is cut with a marker.
    pub max_log_line_bytes: usize,
    /// Bytes of log text a guest may write through `log` per iteration.
    pub max_log_bytes: u64,
    /// Bytes of a module file (checked before it is compiled).
    pub max_module_bytes: u64,
    /// Functions of a module, its nested core modules' added up.
    pub max_module_functions: u64,
    /// How long compiling a module may take.
    #[serde(with = "duration_secs")]
    pub compile_timeout: std::time::Duration,
}

/// Bytes each guest log line (or line of stdout or stderr) counts against
/// its budget besides its own: what the host's line around it costs.
pub const LOG_LINE_OVERHEAD: u64 = 128;

/// Default of [`GuestLimits::max_call_bytes`].
pub const DEFAULT_MAX_CALL_BYTES: u64 = 64 << 20;
/// Default of [`GuestLimits::max_module_bytes`].
pub const DEFAULT_MAX_MODULE_BYTES: u64 = 256 << 20;
/// Default of [`GuestLimits::max_module_functions`]: a Rust transform has a
/// few thousand, the CPython of a Python one some tens of thousands.
pub const DEFAULT_MAX_MODULE_FUNCTIONS: u64 = 100_000;
/// Default of [`GuestLimits::compile_timeout`].
pub const DEFAULT_COMPILE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

impl Default for GuestLimits {
    fn default() -> Self {
        GuestLimits {
            max_call_bytes: DEFAULT_MAX_CALL_BYTES,
            max_scan_columns: 4096,
            max_scan_comparisons: 256,
            max_scan_text_bytes: 64 << 10,
            max_scan_batch_rows: 1 << 20,
            max_open_scans: 16,
            max_handles: 10_000,
            max_metadata_bytes: 64 << 10,
            max_fields: 10_000,
            max_nesting: 16,
            max_messages: 100_000,
            max_error_bytes: 16 << 10,
            max_log_line_bytes: 4096,
            max_log_bytes: 1 << 20,
            max_module_bytes: DEFAULT_MAX_MODULE_BYTES,
            max_module_functions: DEFAULT_MAX_MODULE_FUNCTIONS,
            compile_timeout: DEFAULT_COMPILE_TIMEOUT,
        }
    }
}

/// The message of a caught panic (on guest input, or of ours).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message")
}

mod duration_secs {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

//! The four host calls (log, open a scan, next batch, emit), routed to the
//! WebAssembly host on `wasm32`, or to a [`NativeHost`] installed by
//! [`run_native`] elsewhere (tests, benchmarks of the transform without its
//! sandbox).

use crate::scan::ScanRequest;

/// Severity of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal progress.
    Info,
    /// Something looks wrong but the transform goes on.
    Warn,
    /// Something failed.
    Error,
}

/// A host implemented in ordinary Rust, for running a transform natively.
///
/// The corral host implements it to measure what the sandbox costs; tests
/// implement it to check a transform without compiling it to Wasm.
pub trait NativeHost: std::any::Any {
    /// Writes a log line.
    fn log(&mut self, level: Level, message: &str);
    /// Opens a scan; returns its schema and batches as IPC streams.
    fn open_scan(
        &mut self,
        request: &ScanRequest,
    ) -> Result<(Vec<u8>, Box<dyn Iterator<Item = Vec<u8>>>), String>;
    /// Appends an output batch (an IPC stream).
    fn emit(&mut self, batch: Vec<u8>) -> Result<(), String>;
}

/// An open scan: the host's resource, or a native iterator.
pub(crate) enum ScanHandle {
    #[cfg(target_arch = "wasm32")]
    Wasm(crate::bindings::corral::transform::host::Scan),
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    Native(Box<dyn Iterator<Item = Vec<u8>>>),
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::*;
    use crate::bindings::corral::transform::host;

    pub(crate) fn log(level: Level, message: &str) {
        let level = match level {
            Level::Trace => host::Level::Trace,
            Level::Debug => host::Level::Debug,
            Level::Info => host::Level::Info,
            Level::Warn => host::Level::Warn,
            Level::Error => host::Level::Error,
        };
        host::log(level, message);
    }

    pub(crate) fn open_scan(request: &ScanRequest) -> Result<(Vec<u8>, ScanHandle), String> {
        let scan = host::open_scan(&request.to_wit())?;
        Ok((scan.schema(), ScanHandle::Wasm(scan)))
    }

    pub(crate) fn next(scan: &mut ScanHandle) -> Option<Vec<u8>> {
        match scan {
            ScanHandle::Wasm(scan) => scan.next(),
            ScanHandle::Native(iter) => iter.next(),
        }
    }

    pub(crate) fn emit(batch: Vec<u8>) -> Result<(), String> {
        host::emit(&batch)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::*;
    use std::cell::RefCell;

    thread_local! {
        pub(super) static HOST: RefCell<Option<Box<dyn NativeHost>>> = RefCell::new(None);
    }

    fn with_host<T>(f: impl FnOnce(&mut dyn NativeHost) -> T) -> T {
        HOST.with(|cell| {
            let mut slot = cell.borrow_mut();
            let host = slot
                .as_deref_mut()
                .expect("corral_guest: no host; call the transform through corral_guest::run_native");
            f(host)
        })
    }

    pub(crate) fn log(level: Level, message: &str) {
        with_host(|host| host.log(level, message));
    }

    pub(crate) fn open_scan(request: &ScanRequest) -> Result<(Vec<u8>, ScanHandle), String> {
        let (schema, batches) = with_host(|host| host.open_scan(request))?;
        Ok((schema, ScanHandle::Native(batches)))
    }

    pub(crate) fn next(scan: &mut ScanHandle) -> Option<Vec<u8>> {
        match scan {
            ScanHandle::Native(iter) => iter.next(),
        }
    }

    pub(crate) fn emit(batch: Vec<u8>) -> Result<(), String> {
        with_host(|host| host.emit(batch))
    }
}

pub(crate) use imp::{emit, log, next, open_scan};

/// Runs a transform natively against `host`: what the sandbox would do, minus
/// the sandbox. Returns the host back with the transform's result.
///
/// Not available on `wasm32`, where the real host calls the transform.
#[cfg(not(target_arch = "wasm32"))]
pub fn run_native<H: NativeHost>(
    host: H,
    ctx: crate::Context,
    run: fn(&crate::Context) -> anyhow::Result<()>,
) -> (H, anyhow::Result<()>) {
    imp::HOST.with(|cell| *cell.borrow_mut() = Some(Box::new(host)));
    let result = run(&ctx);
    let host = imp::HOST
        .with(|cell| cell.borrow_mut().take())
        .expect("the native host is still installed");
    let host: Box<dyn std::any::Any> = host;
    let host = *host.downcast::<H>().expect("we installed exactly an `H` above");
    (host, result)
}

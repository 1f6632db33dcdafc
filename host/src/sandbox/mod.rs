//! The WebAssembly sandbox: one engine and one pre-instantiated transform
//! per run; for each iteration a fresh store and instance with its own fuel,
//! memory cap, wall-clock deadline and locked-down WASI.

pub mod bindings;
pub mod bounds;
pub mod captured;
pub mod determinism;
pub mod limiter;
pub mod state;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store, Trap, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;

use crate::config_table::ConfigTable;
use crate::deadline::{Deadline, Stop};
use crate::guest_input::text;
use crate::job::Limits;
use crate::location::Location;
use crate::manifest::{ErrorKind, IterationError};
use crate::module_cache::ModuleCache;
use crate::output::{CommitError, Finished, OutputError, OutputSink};
use bindings::{Transform, TransformPre};
use captured::CapturedOutput;
use limiter::MemoryLimiter;
use state::{HostFailure, IterationState};

/// How often the engine's epoch advances: the granularity of timeouts and
/// of the yields that share cores fairly between iterations.
const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Stack available to guest code.
const MAX_WASM_STACK: usize = 1024 * 1024;

/// Why a module cannot be used; found before any iteration runs.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// The module file could not be read.
    #[error("cannot read transform module {location}: {source}")]
    Read {
        /// The module's location.
        location: Location,
        /// The storage error.
        source: object_store::Error,
    },
    /// Not WebAssembly at all.
    #[error("transform module {location} is not WebAssembly (it does not start with the `\\0asm` header)")]
    NotWasm {
        /// The module's location.
        location: Location,
    },
    /// A core module where a component is needed.
    #[error(
        "transform module {location} is a core WebAssembly module, not a component of the corral `transform` world: build it with `cargo build --release --target wasm32-wasip2` against the corral-guest SDK, or with componentize-py for Python"
    )]
    CoreModule {
        /// The module's location.
        location: Location,
    },
    /// Malformed or truncated.
    #[error("transform module {location} is not a valid WebAssembly component: {message}")]
    Invalid {
        /// The module's location.
        location: Location,
        /// The validator's message.
        message: String,
    },
    /// A component that asks one instance for more than corral's sandbox
    /// gives it: more memories, tables or core instances, a bigger table,
    /// or an instance's own state (globals, functions) over the pool's
    /// size. Found when it is compiled, before any iteration runs.
    #[error(
        "transform module {location} is a component that asks for more than corral's sandbox gives one instance \
         (its memories, tables, core instances or an instance's own state; the limits are fixed, not settings): {message}"
    )]
    OverSandboxLimits {
        /// The module's location.
        location: Location,
        /// What is over which limit, as wasmtime reports it.
        message: String,
    },
    /// A valid component, but not of the corral `transform` world.
    #[error("transform module {location} is not a component of the corral `transform` world: {message}")]
    WrongWorld {
        /// The module's location.
        location: Location,
        /// What does not match (a missing export, an import corral does not provide).
        message: String,
    },
    /// The engine could not be configured.
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    /// Bigger than `limits.max_module_size` (found before it is read whole
    /// where the store tells the size, else before it is parsed).
    #[error(
        "transform module {location} is {}, over the limit of {} (limits.max_module_size)",
        bounds::show_size(*.size),
        bounds::show_size(*.limit)
    )]
    TooLarge {
        /// The module's location.
        location: Location,
        /// Its size, bytes.
        size: u64,
        /// The limit, bytes.
        limit: u64,
    },
    /// More functions than `limits.max_module_functions` (counted before
    /// compiling).
    #[error("transform module {location} has {functions} functions, over the limit of {limit} (limits.max_module_functions)")]
    TooManyFunctions {
        /// The module's location.
        location: Location,
        /// The functions its core modules define, plus its canonical ones.
        functions: u64,
        /// The limit.
        limit: u64,
    },
    /// Its memories start bigger than `limits.memory` allows: no iteration
    /// could even start (a Python transform starts at about 13 MiB).
    #[error(
        "transform module {location} needs {} of memory to start (its memories' initial size), more than the cap of {} (limits.memory): set `memory` in the job file's [limits] (or `--memory`) to at least {}; a Python transform needs 64 MiB or more to run",
        bounds::show_size(*.minimum),
        bounds::show_size(*.cap),
        bounds::show_size(.minimum.div_ceil(1 << 20).saturating_mul(1 << 20))
    )]
    MemoryBelowMinimum {
        /// The module's location.
        location: Location,
        /// The memory its instance holds before running, bytes.
        minimum: u64,
        /// `limits.memory`, bytes.
        cap: u64,
    },
    /// Compiling took longer than `limits.compile_timeout` (the compiler is
    /// left to finish on its own thread; nothing waits for it).
    #[error(
        "compiling transform module {location} took longer than the limit of {} (limits.compile_timeout)",
        humantime::format_duration(*.limit)
    )]
    CompileTimeout {
        /// The module's location.
        location: Location,
        /// The limit.
        limit: Duration,
    },
}

/// An interrupted iteration's message.
const INTERRUPTED: &str = "the run was interrupted (SIGTERM or SIGINT) while this iteration ran; its output was discarded";

/// Advances the engine's epoch until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: &Engine) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let (engine, flag) = (engine.clone(), stop.clone());
        std::thread::Builder::new()
            .name("corral-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What one iteration did.
#[derive(Debug)]
pub struct Outcome {
    /// The output with its data file complete, ready to be sealed with the
    /// iteration's record; or why there is none.
    pub result: Result<Finished, IterationError>,
    /// Config rows handed to the guest.
    pub rows_in: u64,
    /// Rows the guest emitted (committed or not).
    pub rows_emitted: u64,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Peak linear memory.
    pub peak_memory_bytes: u64,
}

/// A compiled transform, ready to run iterations.
pub struct Sandbox {
    engine: Engine,
    pre: TransformPre<IterationState>,
    module_sha256: String,
    component: Component,
    compile_ms: Option<u64>,
    limits: Limits,
    deterministic: bool,
    interrupt: Arc<AtomicBool>,
    /// Set with `interrupt`: wakes every running call wherever it waits.
    interrupted: tokio::sync::watch::Sender<bool>,
    schema_messages: Arc<state::SchemaMessages>,
    _ticker: EpochTicker,
}

/// An engine whose instances, memories, tables and fiber stacks come from a
/// pool sized for the iterations that run at once (one slot spare), not
/// wasmtime's default of 1,000: instantiation is then a few page remaps,
/// and the slots' memory is reused from one iteration to the next.
fn pooled_engine(config: &Config, limits: &Limits) -> wasmtime::Result<Engine> {
    let slots = u32::try_from(limits.concurrency() + 1).unwrap_or(u32::MAX);
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .total_memories(slots.saturating_mul(MEMORIES_PER_COMPONENT))
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .total_tables(slots.saturating_mul(TABLES_PER_COMPONENT))
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .total_stacks(slots)
        .max_memory_size(usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX));
    // Between iterations a slot's memories and tables are reset in place
    // rather than unmapped, so that the next iteration takes no page faults
    // on them. With Linux's PAGEMAP_SCAN (6.7+) only the pages an iteration
    // dirtied are reset (copied back from the module's memory image, which
    // is mapped copy-on-write), so the whole of a typical transform's heap
    // is kept; the vendored wasmtime finds them however many runs they lie
    // in (vendor/README.md: CPython's lie in hundreds). Without PAGEMAP_SCAN
    // the reset is a memset of the kept prefix, so keep less.
    if wasmtime::PoolingAllocationConfig::is_pagemap_scan_available() {
        pool.pagemap_scan(wasmtime::Enabled::Yes)
            .linear_memory_keep_resident(KEEP_RESIDENT_SCANNED)
            .table_keep_resident(TABLE_KEEP_RESIDENT_SCANNED);
    } else {
        pool.linear_memory_keep_resident(KEEP_RESIDENT_MEMSET);
    }
    let mut config = config.clone();
    config.allocation_strategy(pool);
    Engine::new(&config)
}

/// The guard after each linear memory under an address-space limit: the
/// bounds are checked explicitly then, so a guard only catches what the
/// checks let through (nothing); one page keeps the layout usual.
const SMALL_GUARD: u64 = 64 << 10;

/// Under an address-space limit (`RLIMIT_AS`): each linear memory reserves
/// only its cap (plus a small guard), not wasmtime's default of 4 GiB plus
/// 32 MiB of guard, so that a few iterations' memories fit the limit. The
/// compiled code then checks bounds explicitly (a little slower; a cache
/// entry compiled without a limit is not reused, as its settings differ).
fn fit_address_space(config: &mut Config, limits: &Limits) {
    config
        .memory_reservation(capped_reservation(limits))
        .memory_guard_size(SMALL_GUARD)
        .memory_reservation_for_growth(0)
        .guard_before_linear_memory(false);
}

/// What a linear memory reserves under [`fit_address_space`]: its cap, in
/// whole Wasm pages.
fn capped_reservation(limits: &Limits) -> u64 {
    limits.memory_bytes.next_multiple_of(64 << 10)
}

/// The address space the pooling allocator reserves for its linear
/// memories under [`fit_address_space`]: every slot's memories at their
/// cap and guard.
fn pool_reservation(limits: &Limits) -> u64 {
    let slots = limits.concurrency() as u64 + 1;
    slots.saturating_mul(u64::from(MEMORIES_PER_COMPONENT)).saturating_mul(capped_reservation(limits) + SMALL_GUARD)
}

/// Bytes of each linear memory kept mapped between iterations when only
/// dirty pages are reset: a transform's stack, heap and batches.
const KEEP_RESIDENT_SCANNED: usize = 16 << 20;
/// Bytes of each table kept mapped when only dirty pages are reset.
const TABLE_KEEP_RESIDENT_SCANNED: usize = 1 << 20;
/// Bytes of each linear memory kept mapped (and memset) when every kept
/// byte is reset: the stack and small heap every iteration touches.
const KEEP_RESIDENT_MEMSET: usize = 1 << 20;

/// Pool sizes per component: a Rust wasip2 component has a handful of core
/// instances (the module, the WASI adapter, shims) and one or two memories
/// and tables; the limiter caps what a guest may create within these.
const CORE_INSTANCES_PER_COMPONENT: u32 = 32;
/// See [`CORE_INSTANCES_PER_COMPONENT`].
const MEMORIES_PER_COMPONENT: u32 = 4;
/// See [`CORE_INSTANCES_PER_COMPONENT`].
const TABLES_PER_COMPONENT: u32 = 8;

/// A module's bytes and their sha256, worked out once (a run needs the
/// sha256 before the module is compiled, for a manifest if a signal comes).
#[derive(Clone, Debug)]
pub struct ModuleBytes {
    /// The module file.
    pub bytes: bytes::Bytes,
    /// Its sha256, as hex.
    pub sha256: String,
}

impl ModuleBytes {
    /// `bytes`, hashed.
    pub fn new(bytes: bytes::Bytes) -> Self {
        let sha256 = module_sha256(&bytes);
        ModuleBytes { bytes, sha256 }
    }
}

/// The sha256 of a module's bytes, as hex.
pub fn module_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Sandbox {
    /// Checks and compiles `bytes` (or loads the compilation from `cache`),
    /// and links it against the corral world: [`Sandbox::from_bytes`] on a
    /// copy of `bytes`, hashed.
    pub fn new(
        bytes: &[u8],
        location: &Location,
        limits: Limits,
        deterministic: bool,
        cache: Option<&ModuleCache>,
    ) -> Result<Sandbox, ModuleError> {
        Sandbox::from_bytes(ModuleBytes::new(bytes::Bytes::copy_from_slice(bytes)), location, limits, deterministic, cache)
    }

    /// Checks the module against `limits.guest` (its size and its functions,
    /// before compiling), compiles it on a thread of its own within
    /// `limits.guest.compile_timeout` (or loads the compilation from
    /// `cache`), and links it against the corral world. This blocks for
    /// as long as the compile does, up to the timeout; past it the compiler
    /// is left to finish on its own and nothing waits for it.
    /// With `deterministic`, random numbers and clocks are fixed per
    /// iteration.
    pub fn from_bytes(
        module: ModuleBytes,
        location: &Location,
        limits: Limits,
        deterministic: bool,
        cache: Option<&ModuleCache>,
    ) -> Result<Sandbox, ModuleError> {
        let ModuleBytes { bytes, sha256 } = module;
        check_size(bytes.len() as u64, location, &limits)?;
        check_header(&bytes, location)?;
        check_shape(&bytes, location, &limits)?;
        let mut config = Config::new();
        config.consume_fuel(true);
        config.epoch_interruption(true);
        config.max_wasm_stack(MAX_WASM_STACK);
        let address_space = crate::share::Share::current().address_space_bytes;
        if address_space.is_some() {
            fit_address_space(&mut config, &limits);
        }
        let reserved = pool_reservation(&limits);
        let engine = match address_space {
            Some(limit) if reserved > limit / 2 => {
                tracing::warn!(
                    "the address-space limit of {} (RLIMIT_AS) cannot hold the pooling allocator's slots ({} reserved); allocating instances on demand",
                    bounds::show_size(limit),
                    bounds::show_size(reserved)
                );
                Engine::new(&config)
            }
            _ => pooled_engine(&config, &limits).or_else(|pooled| {
                tracing::warn!("the pooling allocator cannot reserve its slots ({pooled:#}); allocating instances on demand");
                Engine::new(&config)
            }),
        };
        let engine = engine.map_err(|e| ModuleError::Engine(format!("{e:#}")))?;

        let mut compile_ms = None;
        let component = match cache.and_then(|c| c.load(&engine, &sha256)) {
            Some(component) => component,
            None => {
                let started = Instant::now();
                tracing::info!(module = %location, "compiling the transform");
                let component = compile(&engine, bytes, location, limits.guest.compile_timeout)?;
                let elapsed_ms = started.elapsed().as_millis() as u64;
                compile_ms = Some(elapsed_ms);
                tracing::info!(module = %location, elapsed_ms, "compiled the transform");
                if let Some(cache) = cache {
                    cache.store(&engine, &sha256, &component);
                }
                component
            }
        };

        let mut linker: Linker<IterationState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| ModuleError::Engine(format!("{e:#}")))?;
        Transform::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(|e| ModuleError::Engine(format!("{e:#}")))?;
        let wrong_world = |e: wasmtime::Error| ModuleError::WrongWorld { location: location.clone(), message: format!("{e:#}") };
        let instance_pre = linker.instantiate_pre(&component).map_err(wrong_world)?;
        let pre = TransformPre::new(instance_pre).map_err(wrong_world)?;
        let ticker = EpochTicker::start(&engine);
        Ok(Sandbox {
            engine,
            pre,
            module_sha256: sha256,
            component,
            compile_ms,
            limits,
            deterministic,
            interrupt: Arc::new(AtomicBool::new(false)),
            interrupted: tokio::sync::watch::Sender::new(false),
            schema_messages: Arc::default(),
            _ticker: ticker,
        })
    }

    /// The module's sha256.
    pub fn module_sha256(&self) -> &str {
        &self.module_sha256
    }

    /// Stops every running iteration now, wherever it is: in guest code at
    /// its next epoch tick, in host code at its next deadline check, and
    /// waiting (a guest asleep on a WASI clock, a host future) at once, its
    /// call dropped. They fail as `interrupted`.
    pub fn interrupt(&self) {
        self.interrupt.store(true, Ordering::SeqCst);
        self.interrupted.send_replace(true);
    }

    /// Whether [`Sandbox::interrupt`] was called.
    pub fn is_interrupted(&self) -> bool {
        self.interrupt.load(Ordering::SeqCst)
    }

    /// How long compiling took, or `None` if it came from the cache.
    pub fn compile_ms(&self) -> Option<u64> {
        self.compile_ms
    }

    /// The names of the component's imports.
    pub fn imports(&self) -> Vec<String> {
        self.component.component_type().imports(&self.engine).map(|(name, _)| name.to_owned()).collect()
    }

    /// The names of the component's exports.
    pub fn exports(&self) -> Vec<String> {
        self.component.component_type().exports(&self.engine).map(|(name, _)| name.to_owned()).collect()
    }

    /// Runs one iteration in a fresh store and instance, and completes or
    /// aborts its output (the caller seals a completed one).
    pub async fn run(
        &self,
        iteration: i64,
        params_json: &str,
        job_name: &str,
        config: Arc<ConfigTable>,
        sink: OutputSink,
    ) -> Outcome {
        let stdout = CapturedOutput::new(iteration, "stdout");
        let stderr = CapturedOutput::new(iteration, "stderr");
        // No preopened directories, no environment, no arguments, no
        // network; stdin is closed.
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if self.deterministic {
            determinism::fix(&mut wasi, iteration);
        }
        let wasi = wasi.build();
        let limiter = MemoryLimiter::new(self.limits.memory_bytes);
        // Guest code stops at its epoch checks, host code on its behalf at
        // its own checks of the same deadline.
        let deadline = Deadline::new(Instant::now() + self.limits.timeout, self.interrupt.clone());
        let sink = sink.with_deadline(deadline.clone());
        let guest = self.limits.guest;
        let state = IterationState::new(iteration, wasi, limiter, config, self.schema_messages.clone(), sink, guest, deadline.clone());
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_fuel(self.limits.fuel).expect("fuel is enabled");
        store.set_hostcall_fuel(usize::try_from(guest.max_call_bytes).unwrap_or(usize::MAX));
        store.set_max_component_handles(guest.max_handles);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| match deadline.check() {
            Err(stop) => Err(wasmtime::Error::new(stop)),
            Ok(()) => Ok(UpdateDeadline::Yield(1)),
        });

        let ctx = bindings::corral::transform::types::Context {
            iteration,
            params: params_json.to_owned(),
            job_name: job_name.to_owned(),
        };
        let call = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            instance.call_run(&mut store, &ctx).await
        };
        // Host calls count against the deadline too: the whole call is
        // bounded, with a little slack for the epoch to fire first.
        // An interrupt wakes the call wherever it waits (a guest asleep on
        // a WASI clock meets no epoch check): the call is dropped.
        let mut interrupted = self.interrupted.subscribe();
        let result = tokio::select! {
            biased;
            _ = interrupted.wait_for(|&stop| stop) => Ok(Err(wasmtime::Error::new(Stop::Interrupted))),
            result = tokio::time::timeout(self.limits.timeout + EPOCH_TICK * 4, call) => result,
        };

        let fuel_used = self.limits.fuel - store.get_fuel().unwrap_or(0);
        let mut state = store.into_data();
        let sink = state.sink.take().expect("the sink is returned once");
        let rows_emitted = sink.rows();
        // The message may hold the guest's text (its error, its field names):
        // inert, and cut to its cap.
        let failure = |kind: ErrorKind, message: String| IterationError {
            kind,
            message: text::block(&message, guest.max_error_bytes),
            stderr_tail: stderr.tail(),
        };
        let verdict = match (result, state.failure.take()) {
            (_, Some(HostFailure::InvalidOutput(message))) => Err(failure(ErrorKind::InvalidOutput, message)),
            (_, Some(HostFailure::Storage(message))) => Err(failure(ErrorKind::Storage, message)),
            (_, Some(HostFailure::MemoryLimit(message))) => Err(failure(ErrorKind::MemoryLimit, message)),
            (Err(_elapsed), None) => Err(failure(ErrorKind::Timeout, timeout_message(self.limits.timeout))),
            (Ok(Err(error)), None) => {
                let (kind, message) = classify(&error, &state, &self.limits);
                Err(failure(kind, message))
            }
            // A guest whose runtime turns a refused `memory.grow` into an
            // exception (Python's MemoryError) returns an error rather than
            // trapping: the cap it hit is still the cause.
            (Ok(Ok(Err(guest))), None) => match state.limiter.hit() {
                Some(asked) => Err(failure(
                    ErrorKind::MemoryLimit,
                    format!(
                        "the guest tried to grow its memory to {asked} bytes, over its cap of {} bytes (limits.memory), and then failed with: {}",
                        self.limits.memory_bytes, guest.message
                    ),
                )),
                None => Err(failure(ErrorKind::GuestError, guest.message)),
            },
            (Ok(Ok(Ok(()))), None) => Ok(()),
        };
        let result = match verdict {
            Ok(()) => sink.finish().await.map_err(|e| match e {
                CommitError::Refused(OutputError::Stopped(Stop::Timeout)) => failure(ErrorKind::Timeout, timeout_message(self.limits.timeout)),
                CommitError::Refused(OutputError::Stopped(Stop::Interrupted)) => failure(ErrorKind::Interrupted, INTERRUPTED.into()),
                CommitError::Refused(refused) => failure(ErrorKind::InvalidOutput, refused.to_string()),
                // The writer's own errors are about the data.
                CommitError::Parquet(e) if !OutputError::is_storage_error(&e) => {
                    failure(ErrorKind::InvalidOutput, format!("completing the output failed: {e}"))
                }
                e => failure(ErrorKind::Storage, format!("completing the output failed: {e}")),
            }),
            Err(error) => {
                sink.abort().await;
                Err(error)
            }
        };
        Outcome {
            result,
            rows_in: state.rows_in,
            rows_emitted,
            fuel_used,
            peak_memory_bytes: state.limiter.peak(),
        }
    }
}

fn timeout_message(timeout: Duration) -> String {
    format!("the iteration ran past its timeout of {} (limits.timeout)", humantime::format_duration(timeout))
}

/// Sorts a trap or host error into its failure class, with a message that
/// carries the wasm backtrace.
fn classify(error: &wasmtime::Error, state: &IterationState, limits: &Limits) -> (ErrorKind, String) {
    let detail = describe(error);
    match error.downcast_ref::<Stop>() {
        Some(Stop::Interrupted) => return (ErrorKind::Interrupted, INTERRUPTED.into()),
        Some(Stop::Timeout) => return (ErrorKind::Timeout, format!("{}\n{detail}", timeout_message(limits.timeout))),
        None => {}
    }
    // wasmtime's per-call limit on the data a guest passes the host.
    // The root cause only: the backtrace holds the guest's function names.
    if error.root_cause().to_string().contains("fuel allocated for hostcalls has been exhausted") {
        return (
            ErrorKind::InvalidOutput,
            format!(
                "the guest passed the host more than the per-call limit of {} in one call (an emitted batch, a log line, a scan request or the error `run` returned); \
                 emit large outputs in several batches (the Rust SDK's emit splits them)\n{detail}",
                bytesize::ByteSize(limits.guest.max_call_bytes).display().iec()
            ),
        );
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => {
            return (ErrorKind::FuelExhausted, format!("the iteration used up its fuel of {} (limits.fuel)\n{detail}", limits.fuel));
        }
        Some(Trap::StackOverflow) => {
            return (ErrorKind::Trap, format!("stack overflow: the guest recursed past its stack\n{detail}"));
        }
        // Rust keeps its stack in linear memory, below the data: running off
        // its end faults at a wrapped-around address.
        Some(Trap::MemoryOutOfBounds) if faulting_address(&detail).is_some_and(|a| a >= 0xffff_0000) => {
            return (
                ErrorKind::Trap,
                format!("out-of-bounds memory access below address 0: most likely a stack overflow (deep recursion)\n{detail}"),
            );
        }
        _ => {}
    }
    if let Some(asked) = state.limiter.hit() {
        return (
            ErrorKind::MemoryLimit,
            format!(
                "the guest tried to grow its memory to {} bytes, over its cap of {} bytes (limits.memory)\n{detail}",
                asked, limits.memory_bytes
            ),
        );
    }
    (ErrorKind::Trap, detail)
}

/// The address of a memory fault, as wasmtime reports it.
fn faulting_address(detail: &str) -> Option<u64> {
    let hex = detail.split("wasm address 0x").nth(1)?;
    let hex: String = hex.chars().take_while(char::is_ascii_hexdigit).collect();
    u64::from_str_radix(&hex, 16).ok()
}

/// The trap and its causes, then the wasm backtrace; no host backtrace.
fn describe(error: &wasmtime::Error) -> String {
    let mut lines: Vec<String> = error.chain().map(|cause| cause.to_string()).collect();
    // The outermost context is the wasm backtrace: put the causes first.
    if lines.len() > 1 && lines[0].starts_with("error while executing") {
        let backtrace = lines.remove(0);
        lines.push(backtrace);
    }
    lines.join("\n")
}

/// Refuses a module of `size` bytes over `limits.guest.max_module_bytes`.
pub fn check_size(size: u64, location: &Location, limits: &Limits) -> Result<(), ModuleError> {
    let limit = limits.guest.max_module_bytes;
    if size > limit {
        return Err(ModuleError::TooLarge { location: location.clone(), size, limit });
    }
    Ok(())
}

/// Refuses a module with more functions than
/// `limits.guest.max_module_functions`, or one whose memories' initial
/// sizes are over `limits.memory`, found without compiling.
fn check_shape(bytes: &[u8], location: &Location, limits: &Limits) -> Result<bounds::ModuleShape, ModuleError> {
    let shape =
        bounds::inspect(bytes).map_err(|e| ModuleError::Invalid { location: location.clone(), message: e.to_string() })?;
    let limit = limits.guest.max_module_functions;
    if shape.functions > limit {
        return Err(ModuleError::TooManyFunctions { location: location.clone(), functions: shape.functions, limit });
    }
    if shape.min_memory_bytes > limits.memory_bytes {
        return Err(ModuleError::MemoryBelowMinimum {
            location: location.clone(),
            minimum: shape.min_memory_bytes,
            cap: limits.memory_bytes,
        });
    }
    Ok(shape)
}

/// Compiles `bytes` on a thread of its own and waits for it at most
/// `timeout`; past it the thread is left to finish (its result dropped).
fn compile(engine: &Engine, bytes: bytes::Bytes, location: &Location, timeout: Duration) -> Result<Component, ModuleError> {
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    let engine = engine.clone();
    std::thread::Builder::new()
        .name("corral-compile".into())
        .spawn(move || {
            let _ = sender.send(Component::new(&engine, &bytes));
        })
        .map_err(|e| ModuleError::Engine(format!("cannot start the compiler's thread: {e}")))?;
    let invalid = |message: String| ModuleError::Invalid { location: location.clone(), message };
    match receiver.recv_timeout(timeout) {
        Ok(compiled) => compiled.map_err(|e| {
            let message = format!("{e:#}");
            // wasmtime checks a component against the pooling allocator's
            // limits as it compiles it, and says so only in its message.
            if message.contains("pooling allocator") {
                ModuleError::OverSandboxLimits { location: location.clone(), message }
            } else {
                invalid(message)
            }
        }),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            Err(ModuleError::CompileTimeout { location: location.clone(), limit: timeout })
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(invalid("the compiler panicked on it".into())),
    }
}

/// Tells a core module, a component and non-Wasm apart by the header.
fn check_header(bytes: &[u8], location: &Location) -> Result<(), ModuleError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(ModuleError::NotWasm { location: location.clone() });
    }
    // Core modules have version 1 and layer 0; components layer 1.
    if bytes[6..8] == [0, 0] {
        return Err(ModuleError::CoreModule { location: location.clone() });
    }
    Ok(())
}

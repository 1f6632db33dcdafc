//! Getting a run ready before its first iteration: every bucket checked,
//! the module read and compiled (on a thread of its own) while the config
//! loads.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use object_store::{ObjectStore, ObjectStoreExt};

use super::{RunError, RunOptions};
use crate::config_table::{ConfigError, ConfigTable};
use crate::job::{Job, Limits};
use crate::location::Location;
use crate::module_cache::ModuleCache;
use crate::sandbox::{ModuleBytes, ModuleError, Sandbox};
use crate::storage::Storage;

/// What a run needs before its first iteration: checked stores, the
/// compiled transform, the loaded config.
pub(super) struct Prepared {
    /// The compiled transform.
    pub(super) sandbox: Sandbox,
    /// The loaded config.
    pub(super) config: ConfigTable,
    /// The output's store, checked.
    pub(super) output_store: Arc<dyn ObjectStore>,
}

/// Checks the stores, reads the module (its sha256 set in `module_sha256`
/// as soon as it is read), and compiles it while the config loads. A module
/// error is returned as soon as it is known, before a config error.
pub(super) async fn prepare(job: &Job, options: &RunOptions, storage: &Storage, module_sha256: &OnceLock<String>) -> Result<Prepared, RunError> {
    // Every bucket is checked (credentials, endpoint, existence) before
    // anything is read or written, so that a typo fails in seconds.
    let mut checked = Vec::new();
    for location in [&job.output, &job.config.location, &job.module] {
        if let Location::S3(url) = location {
            if !checked.contains(&url.host_str()) {
                checked.push(url.host_str());
                storage.preflight(location).await?;
            }
        }
    }
    let config_store = storage.store(&job.config.location)?;
    let module_store = storage.store(&job.module)?;
    let output_store = storage.store(&job.output)?;

    // The config and the module are read and checked before anything is
    // written, compiling while the config parses.
    let module = ModuleBytes::new(read_module(&job.module, module_store.as_ref(), &job.limits).await?);
    let _ = module_sha256.set(module.sha256.clone());
    let compile = compile_on_thread(module, job.module.clone(), job.limits, job.deterministic, options.cache.clone());
    let load_started = Instant::now();
    let load = async {
        let config = ConfigTable::load(&job.config, config_store).await?;
        tracing::info!(
            rows = config.num_rows(),
            arrow_bytes = config.memory_bytes(),
            elapsed_ms = load_started.elapsed().as_millis() as u64,
            config = %job.config.location,
            "config table loaded"
        );
        Ok::<_, ConfigError>(config)
    };
    tokio::pin!(compile, load);
    let mut loaded = None;
    let sandbox = loop {
        tokio::select! {
            compiled = &mut compile => break compiled?,
            config = &mut load, if loaded.is_none() => loaded = Some(config),
        }
    };
    let config = match loaded {
        Some(config) => config?,
        None => load.await?,
    };
    Ok(Prepared { sandbox, config, output_store })
}

/// Compiles the module on a thread of its own (see [`Sandbox::from_bytes`]),
/// started now; the future resolves when it is done. Dropping the future
/// leaves the thread to finish on its own: nothing waits for it, not even
/// the runtime's shutdown.
pub(crate) fn compile_on_thread(
    module: ModuleBytes,
    location: Location,
    limits: Limits,
    deterministic: bool,
    cache: Option<ModuleCache>,
) -> impl Future<Output = Result<Sandbox, ModuleError>> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name("corral-module".into()).spawn(move || {
        let _ = sender.send(Sandbox::from_bytes(module, &location, limits, deterministic, cache.as_ref()));
    });
    async move {
        spawned.map_err(|e| ModuleError::Engine(format!("cannot start a thread to compile on: {e}")))?;
        receiver.await.unwrap_or_else(|_| Err(ModuleError::Engine("setting it up panicked".into())))
    }
}

/// Reads the module, refusing one over `limits.guest.max_module_bytes`
/// before reading it whole.
pub(crate) async fn read_module(location: &Location, store: &dyn ObjectStore, limits: &Limits) -> Result<bytes::Bytes, ModuleError> {
    let read_error = |source| ModuleError::Read { location: location.clone(), source };
    let get = store.get(&location.prefix()).await.map_err(read_error)?;
    crate::sandbox::check_size(get.meta.size, location, limits)?;
    get.bytes().await.map_err(read_error)
}


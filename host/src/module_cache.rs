//! The on-disk cache of compiled components: native code, so it is kept in
//! a directory only the user can write, keyed by the module's sha256 plus
//! the engine's compatibility hash, and checked against a digest before it
//! is loaded. A corrupt or foreign entry is a miss, never code to run.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A cache directory of compiled components.
#[derive(Clone, Debug)]
pub struct ModuleCache {
    dir: PathBuf,
}

impl ModuleCache {
    /// The default cache: `$CORRAL_CACHE_DIR`, else `$XDG_CACHE_HOME/corral`,
    /// else `~/.cache/corral`. `None` if none can be made private to the user.
    pub fn default_location() -> Option<ModuleCache> {
        let dir = std::env::var_os("CORRAL_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("corral")))
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("corral")))?;
        ModuleCache::at(dir)
    }

    /// A cache in `dir`, created with mode 0700 if missing. `None` if the
    /// directory is not owned by this user or others can write to it.
    pub fn at(dir: PathBuf) -> Option<ModuleCache> {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        if let Err(e) = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir) {
            tracing::warn!(dir = %dir.display(), "compiled-module cache disabled: {e}");
            return None;
        }
        let meta = std::fs::metadata(&dir).ok()?;
        // SAFETY: geteuid has no preconditions. std offers no safe wrapper.
        let uid = unsafe { libc_geteuid() };
        if meta.uid() != uid || meta.permissions().mode() & 0o022 != 0 {
            tracing::warn!(dir = %dir.display(), "compiled-module cache disabled: the directory is not private to this user");
            return None;
        }
        Some(ModuleCache { dir })
    }

    fn entry(&self, engine: &Engine, module_sha256: &str) -> PathBuf {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        self.dir.join(format!("{module_sha256}-{:016x}.cwasm", hasher.finish()))
    }

    /// The cached compilation of the module, if there is a sound one.
    pub fn load(&self, engine: &Engine, module_sha256: &str) -> Option<Component> {
        let path = self.entry(engine, module_sha256);
        let bytes = std::fs::read(&path).ok()?;
        if bytes.len() < 32 || Sha256::digest(&bytes[32..]).as_slice() != &bytes[..32] {
            tracing::warn!(entry = %path.display(), "ignoring a corrupt compiled-module cache entry");
            return None;
        }
        // SAFETY: the bytes were written by `store` below from
        // `Component::serialize` of this engine configuration (the file name
        // carries the compatibility hash, and wasmtime checks it again), in a
        // directory only this user can write, and they match their digest.
        match unsafe { Component::deserialize(engine, &bytes[32..]) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(entry = %path.display(), "ignoring an unusable compiled-module cache entry: {e}");
                None
            }
        }
    }

    /// Stores a compiled component (best effort: a failure only costs a
    /// recompilation next time).
    pub fn store(&self, engine: &Engine, module_sha256: &str, component: &Component) {
        let path = self.entry(engine, module_sha256);
        let result = component.serialize().map_err(|e| e.to_string()).and_then(|code| {
            let mut bytes = Sha256::digest(&code).to_vec();
            bytes.extend_from_slice(&code);
            write_atomically(&path, &bytes).map_err(|e| e.to_string())
        });
        if let Err(e) = result {
            tracing::warn!(entry = %path.display(), "could not cache the compiled module: {e}");
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine_and_component() -> (Engine, Component) {
        let engine = Engine::default();
        let component = Component::new(&engine, wat::parse_str("(component)").unwrap()).unwrap();
        (engine, component)
    }

    #[test]
    fn a_stored_entry_loads_and_a_tampered_one_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ModuleCache::at(dir.path().join("cache")).expect("a private cache dir");
        let (engine, component) = engine_and_component();
        assert!(cache.load(&engine, "abc").is_none(), "empty cache");
        cache.store(&engine, "abc", &component);
        assert!(cache.load(&engine, "abc").is_some(), "stored entry");

        let entry = cache.entry(&engine, "abc");
        let mut bytes = std::fs::read(&entry).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&entry, &bytes).unwrap();
        assert!(cache.load(&engine, "abc").is_none(), "a flipped byte is a miss");

        // A foreign entry with a valid digest: not wasmtime's format.
        let junk = b"not compiled code".to_vec();
        let mut foreign = Sha256::digest(&junk).to_vec();
        foreign.extend_from_slice(&junk);
        std::fs::write(&entry, &foreign).unwrap();
        assert!(cache.load(&engine, "abc").is_none(), "a foreign entry is a miss");
    }

    #[test]
    fn a_directory_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(ModuleCache::at(open).is_none());
    }
}

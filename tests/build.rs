//! Builds every transform in `transforms/` into `OUT_DIR` and writes their
//! paths as constants, as wasmtime's test-programs do: the Rust ones (a
//! `Cargo.toml`) with cargo for `wasm32-wasip2` (release), the Python ones
//! (an `app.py`) with componentize-py against `guest-sdk/python`, cached by
//! a hash of their sources. Tests then run the real guests.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// The componentize-py `.ci/run` and the README install.
const COMPONENTIZE_PY: &str = "0.25.1";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_owned();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let target_dir = out_dir.join("guests");
    for watched in ["transforms", "guest-sdk", "wit", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let transforms: Vec<String> = std::fs::read_dir(root.join("transforms"))
        .unwrap()
        .filter_map(|entry| {
            let path = entry.unwrap().path();
            path.join("Cargo.toml").exists().then(|| path.file_name().unwrap().to_string_lossy().into_owned())
        })
        .collect();
    // The Python builds run while cargo builds the Rust guests.
    let python = python_transforms(&root);
    let python_dir = out_dir.join("python-guests");
    std::fs::create_dir_all(&python_dir).unwrap();
    let builds: Vec<(String, PathBuf, Option<Child>)> =
        python.iter().map(|(name, dir)| start_python_build(&root, name, dir, &python_dir)).collect();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target_dir)
        // Flags meant for the host build must not leak into the guests'.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS");
    for name in &transforms {
        command.args(["-p", name]);
    }
    let status = command.status().expect("running cargo to build the guests");
    assert!(status.success(), "building the guests for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`)");

    let mut constants = format!(
        "/// The target directory the guests are built in: a build of another\n/// transform crate with the same dependencies reuses what is there.\npub const TARGET_DIR: &str = {:?};\n",
        target_dir.display().to_string()
    );
    for name in &transforms {
        let file = name.replace('-', "_");
        let path = target_dir.join("wasm32-wasip2/release").join(format!("{file}.wasm"));
        assert!(path.exists(), "{} was not built", path.display());
        let constant = file.to_uppercase();
        constants.push_str(&format!(
            "/// The `{name}` transform, built for wasm32-wasip2.\npub const {constant}: &str = {:?};\n",
            path.display().to_string()
        ));
    }
    constants.push_str(&format!(
        "/// The Python guest SDK (`corral_guest`), for `componentize-py -p`.\npub const PYTHON_SDK: &str = {:?};\n",
        root.join("guest-sdk/python").display().to_string()
    ));
    for (name, module, child) in builds {
        if let Some(mut child) = child {
            let status = child.wait().expect("waiting for componentize-py");
            let log = std::fs::read_to_string(module.with_extension("log")).unwrap_or_default();
            assert!(status.success(), "componentize-py failed to build transforms/{name}:\n{log}");
            std::fs::rename(module.with_extension("partial"), &module).unwrap();
            remove_older_builds(&module);
        }
        let constant = name.replace('-', "_").to_uppercase();
        constants.push_str(&format!(
            "/// The `{name}` Python transform, built by componentize-py.\npub const {constant}: &str = {:?};\n",
            module.display().to_string()
        ));
    }
    std::fs::write(out_dir.join("guests.rs"), constants).unwrap();
}

/// The Python transforms: folders of `transforms/` with an `app.py` and
/// no `Cargo.toml`.
fn python_transforms(root: &Path) -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(root.join("transforms"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("app.py").is_file() && !path.join("Cargo.toml").exists())
        .map(|path| (path.file_name().unwrap().to_string_lossy().into_owned(), path))
        .collect();
    found.sort();
    found
}

/// Starts componentize-py on `dir` unless a build of the same sources is
/// in `out`; returns the module's path and the build, if one was started
/// (it writes `<module>.partial`, renamed once it succeeds).
fn start_python_build(root: &Path, name: &str, dir: &Path, out: &Path) -> (String, PathBuf, Option<Child>) {
    // A cache key, not a security boundary: the std hasher is enough.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    COMPONENTIZE_PY.hash(&mut hasher);
    for tree in [dir.to_owned(), root.join("guest-sdk/python/corral_guest"), root.join("wit")] {
        hash_tree(&tree, &mut hasher);
    }
    let module = out.join(format!("{}-{:016x}.wasm", name.replace('-', "_"), hasher.finish()));
    if module.exists() {
        return (name.to_owned(), module, None);
    }
    let log = std::fs::File::create(module.with_extension("log")).unwrap();
    let child = Command::new("componentize-py")
        .current_dir(out)
        .arg("-d")
        .arg(root.join("wit"))
        .args(["-w", "transform", "componentize", "app", "-p"])
        .arg(dir)
        .arg("-p")
        .arg(root.join("guest-sdk/python"))
        .arg("-o")
        .arg(module.with_extension("partial"))
        // A virtualenv's site-packages would be bundled into the component too.
        .env_remove("VIRTUAL_ENV")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run componentize-py to build the Python transform {name} ({e}): install it with `python3 -m pip install componentize-py=={COMPONENTIZE_PY}`"
            )
        });
    (name.to_owned(), module, Some(child))
}

/// Removes the builds of earlier sources of `module`'s transform (each is
/// some 18 MB).
fn remove_older_builds(module: &Path) {
    let file = module.file_name().unwrap().to_string_lossy().into_owned();
    let prefix = &file[..file.rfind('-').unwrap() + 1];
    for entry in std::fs::read_dir(module.parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        let other = path.file_name().unwrap().to_string_lossy().into_owned();
        if other.starts_with(prefix) && other != file && !other.ends_with(".partial") {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Feeds every source file under `dir` (names and contents, in order) to
/// `hasher`, skipping Python's bytecode and pytest caches.
fn hash_tree(dir: &Path, hasher: &mut impl Hasher) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if file == "__pycache__" || file == ".pytest_cache" {
            continue;
        }
        if path.is_dir() {
            hash_tree(&path, hasher);
        } else {
            file.hash(hasher);
            std::fs::read(&path).unwrap().hash(hasher);
        }
    }
}

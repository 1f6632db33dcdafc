//! Builds every transform in `transforms/` for `wasm32-wasip2` (release) into
//! `OUT_DIR` and writes their paths as constants, as wasmtime's
//! test-programs do. Tests then run the real guests.

use std::path::PathBuf;
use std::process::Command;

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
    std::fs::write(out_dir.join("guests.rs"), constants).unwrap();
}

//! `corral new NAME [--lang python]`: a transform project of its own,
//! outside this repository, that builds, tests and runs as it is.
//!
//! The project uses the guest SDK by path (`--sdk`, by default the SDK
//! beside the `corral` sources this binary was built from; a Python
//! project uses its `python/` folder), and holds a working transform with a
//! unit test, a job file, a small sample config and a README with the three
//! commands that take it to a finished run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use thiserror::Error;

const CARGO_TOML: &str = include_str!("template/Cargo.toml.in");
const LIB_RS: &str = include_str!("template/lib.rs.in");
const JOB_TOML: &str = include_str!("template/job.toml.in");
const README_MD: &str = include_str!("template/README.md.in");
const GITIGNORE: &str = include_str!("template/gitignore.in");
const PY_APP: &str = include_str!("template/python/app.py.in");
const PY_TEST: &str = include_str!("template/python/test_app.py.in");
const PY_CONFTEST: &str = include_str!("template/python/conftest.py.in");
const PY_JOB_TOML: &str = include_str!("template/python/job.toml.in");
const PY_README_MD: &str = include_str!("template/python/README.md.in");
const PY_GITIGNORE: &str = include_str!("template/python/gitignore.in");
/// corral's world, which a Python project builds against (a Rust one gets
/// it through the SDK crate).
const WIT: &str = include_str!("../../../wit/corral.wit");

/// The language of a new transform.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    /// A Rust crate built with cargo for `wasm32-wasip2`.
    #[default]
    Rust,
    /// A Python module built with componentize-py.
    Python,
}

/// Rows of the sample config.
const SAMPLE_ROWS: usize = 40;

/// Why a scaffold could not be written.
#[derive(Debug, Error)]
pub enum ScaffoldError {
    /// NAME is not a valid crate name.
    #[error(
        "`{0}` is not a valid transform name: use letters, digits, `-` and `_`, starting with a letter (e.g. `my-model`)"
    )]
    InvalidName(String),
    /// The target directory exists and is not empty.
    #[error("{0} already exists and is not empty: choose another NAME or --dir")]
    Exists(PathBuf),
    /// The guest SDK was not found.
    #[error(
        "the guest SDK was not found at {0}: pass --sdk PATH to the `guest-sdk` directory of a corral checkout"
    )]
    NoSdk(PathBuf),
    /// Writing a file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl ScaffoldError {
    /// The process exit code: 2, the input is at fault, or 1 for I/O.
    pub fn exit_code(&self) -> i32 {
        match self {
            ScaffoldError::Write { .. } => 1,
            _ => 2,
        }
    }
}

/// The guest SDK of the sources this binary was built from, if it is there.
pub fn default_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk")
}

/// What was written.
#[derive(Debug)]
pub struct Scaffold {
    /// The crate's directory.
    pub dir: PathBuf,
    /// The files written, relative to `dir`.
    pub files: Vec<&'static str>,
    /// The module's file name once built (`my_model.wasm`).
    pub module_file: String,
    /// The commands that build it and run its job, from `dir`.
    pub next: Vec<String>,
}

impl std::fmt::Display for Scaffold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "created the transform {}:", self.dir.display())?;
        for file in &self.files {
            writeln!(f, "  {file}")?;
        }
        writeln!(f, "next:")?;
        writeln!(f, "  cd {}", self.dir.display())?;
        for command in &self.next {
            writeln!(f, "  {command}")?;
        }
        Ok(())
    }
}

/// Writes the transform `name` in `language` into `parent/name`, using the
/// guest SDK at `sdk` (the `guest-sdk` folder of a corral checkout).
pub fn create(name: &str, parent: &Path, sdk: &Path, language: Language) -> Result<Scaffold, ScaffoldError> {
    validate_name(name)?;
    let sdk = match language {
        Language::Rust => std::fs::canonicalize(sdk).ok().filter(|p| p.join("Cargo.toml").is_file()),
        Language::Python => {
            std::fs::canonicalize(sdk.join("python")).ok().filter(|p| p.join("corral_guest/__init__.py").is_file())
        }
    }
    .ok_or_else(|| ScaffoldError::NoSdk(sdk.to_owned()))?;
    let dir = parent.join(name);
    if std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(ScaffoldError::Exists(dir));
    }
    let module_file = name.replace('-', "_");
    // TOML and Python strings: a Windows path's `\` and any `"` must be escaped.
    let sdk_text = sdk.display().to_string().replace('\\', "\\\\").replace('"', "\\\"");
    let fill = |template: &str| {
        template.replace("{{name}}", name).replace("{{file}}", &module_file).replace("{{sdk}}", &sdk_text)
    };
    let (files, next): (Vec<(&'static str, String)>, Vec<String>) = match language {
        Language::Rust => (
            vec![
                ("Cargo.toml", fill(CARGO_TOML)),
                ("src/lib.rs", fill(LIB_RS)),
                ("job.toml", fill(JOB_TOML)),
                ("config.csv", sample_config()),
                ("README.md", fill(README_MD)),
                (".gitignore", GITIGNORE.to_owned()),
            ],
            vec!["cargo build --release --target wasm32-wasip2".into(), "corral run job.toml".into()],
        ),
        Language::Python => (
            vec![
                ("app.py", fill(PY_APP)),
                ("test_app.py", fill(PY_TEST)),
                ("conftest.py", fill(PY_CONFTEST)),
                ("wit/corral.wit", WIT.to_owned()),
                ("job.toml", fill(PY_JOB_TOML)),
                ("config.csv", sample_config()),
                ("README.md", fill(PY_README_MD)),
                (".gitignore", PY_GITIGNORE.to_owned()),
            ],
            vec![python_build_command(&sdk, &module_file), "corral run job.toml".into()],
        ),
    };
    for (file, text) in &files {
        let path = dir.join(file);
        let write = || {
            std::fs::create_dir_all(path.parent().expect("a file in the project"))?;
            std::fs::write(&path, text)
        };
        write().map_err(|source| ScaffoldError::Write { path: path.clone(), source })?;
    }
    Ok(Scaffold {
        dir,
        files: files.iter().map(|(file, _)| *file).collect(),
        module_file: format!("{module_file}.wasm"),
        next,
    })
}

/// The componentize-py command that builds a Python project's component,
/// run from the project's folder.
fn python_build_command(sdk: &Path, module_file: &str) -> String {
    format!("componentize-py -d wit -w transform componentize app -p . -p {} -o {module_file}.wasm", sdk.display())
}

fn validate_name(name: &str) -> Result<(), ScaffoldError> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.len() <= 64;
    if valid { Ok(()) } else { Err(ScaffoldError::InvalidName(name.to_owned())) }
}

/// A small config in the seed job's shape: `id`, `some_column` (the
/// iteration key, 0..3), `value`. The values are a fixed formula, so that
/// a run's output can be checked by hand.
pub fn sample_config() -> String {
    let mut text = String::from("id,some_column,value\n");
    for id in 0..SAMPLE_ROWS {
        let value = (id as f64 * 1.25) - 10.0;
        let _ = writeln!(text, "{id},{},{value:.2}", id % 4);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_crate_names() {
        for bad in ["", "1model", "my model", "../escape", "a/b", "ünï"] {
            assert!(matches!(validate_name(bad), Err(ScaffoldError::InvalidName(_))), "{bad:?} was accepted");
        }
        for good in ["m", "my-model", "my_model2"] {
            validate_name(good).unwrap();
        }
    }

    #[test]
    fn refuses_a_non_empty_directory_and_a_missing_sdk() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("taken")).unwrap();
        std::fs::write(dir.path().join("taken/keep.txt"), "mine").unwrap();
        let err = create("taken", dir.path(), &default_sdk(), Language::Rust).unwrap_err();
        assert!(matches!(err, ScaffoldError::Exists(_)), "{err}");
        assert_eq!(std::fs::read_to_string(dir.path().join("taken/keep.txt")).unwrap(), "mine");

        let err = create("fresh", dir.path(), &dir.path().join("no-sdk"), Language::Rust).unwrap_err();
        assert!(matches!(err, ScaffoldError::NoSdk(_)), "{err}");
        assert!(!dir.path().join("fresh").exists());
    }

    #[test]
    fn fills_every_placeholder() {
        let dir = tempfile::tempdir().unwrap();
        let scaffold = create("my-model", dir.path(), &default_sdk(), Language::Rust).unwrap();
        assert_eq!(scaffold.module_file, "my_model.wasm");
        for file in &scaffold.files {
            let text = std::fs::read_to_string(scaffold.dir.join(file)).unwrap();
            assert!(!text.contains("{{"), "{file} keeps a placeholder");
        }
        let job = std::fs::read_to_string(scaffold.dir.join("job.toml")).unwrap();
        assert!(job.contains("target/wasm32-wasip2/release/my_model.wasm"), "{job}");
        let cargo: toml::Table = std::fs::read_to_string(scaffold.dir.join("Cargo.toml")).unwrap().parse().unwrap();
        let sdk = cargo["dependencies"]["corral-guest"]["path"].as_str().unwrap();
        assert_eq!(Path::new(sdk), std::fs::canonicalize(default_sdk()).unwrap());
    }

    #[test]
    fn a_python_project_has_its_world_and_points_at_the_python_sdk() {
        let dir = tempfile::tempdir().unwrap();
        let scaffold = create("py-model", dir.path(), &default_sdk(), Language::Python).unwrap();
        assert_eq!(scaffold.module_file, "py_model.wasm");
        for file in &scaffold.files {
            let text = std::fs::read_to_string(scaffold.dir.join(file)).unwrap();
            assert!(!text.contains("{{"), "{file} keeps a placeholder");
        }
        let python_sdk = std::fs::canonicalize(default_sdk().join("python")).unwrap();
        let conftest = std::fs::read_to_string(scaffold.dir.join("conftest.py")).unwrap();
        assert!(conftest.contains(&python_sdk.display().to_string()), "{conftest}");
        assert_eq!(std::fs::read_to_string(scaffold.dir.join("wit/corral.wit")).unwrap(), WIT);
        let job: toml::Table = std::fs::read_to_string(scaffold.dir.join("job.toml")).unwrap().parse().unwrap();
        assert_eq!(job["transform"]["module"].as_str(), Some("py_model.wasm"));
        let readme = std::fs::read_to_string(scaffold.dir.join("README.md")).unwrap();
        assert!(readme.contains(&scaffold.next[0]), "the README's build command is the one printed:\n{readme}");
        // A checkout without the Python SDK is refused for Python.
        let err = create("other", dir.path(), dir.path(), Language::Python).unwrap_err();
        assert!(matches!(err, ScaffoldError::NoSdk(_)), "{err}");
    }
}

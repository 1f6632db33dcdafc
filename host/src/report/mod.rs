//! `corral report MANIFEST [--html FILE]`: a finished run explained, as
//! text in the terminal or as one self-contained HTML page.

pub mod html;
pub mod text;

use object_store::ObjectStoreExt as _;

use crate::location::{Location, LocationError};
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::storage::{Storage, StorageError};

/// Why a manifest cannot be reported on.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// MANIFEST is not a valid path or URL.
    #[error("invalid MANIFEST: {0}")]
    Location(#[from] LocationError),
    /// Its store cannot be used.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// There is no manifest there.
    #[error("no manifest at {0}: name a run's `_manifest.json` or its output directory (a run writes the manifest when it ends)")]
    NotFound(String),
    /// It could not be read.
    #[error("cannot read {location}: {source}")]
    Read {
        /// The manifest.
        location: String,
        /// The storage error.
        source: object_store::Error,
    },
    /// It is not a corral manifest.
    #[error("{location} is not a corral manifest: {message}")]
    Malformed {
        /// The manifest.
        location: String,
        /// The parser's complaint, with line and column.
        message: String,
    },
    /// The HTML file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl ReportError {
    /// 2 when MANIFEST is at fault, 1 for storage and I/O failures.
    pub fn exit_code(&self) -> i32 {
        match self {
            ReportError::Read { .. } | ReportError::Write { .. } => 1,
            _ => 2,
        }
    }
}

/// Reads the manifest at `text`: a `.json` file, or an output directory
/// holding `_manifest.json`; a local path, file:// or s3:// URL.
pub async fn load(text: &str, storage: &Storage) -> Result<(Manifest, String), ReportError> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let given = Location::parse(text, &cwd)?;
    let names_file = text.trim_end_matches('/').ends_with(".json") && given.as_local().is_none_or(|p| !p.is_dir());
    let location = if names_file { given } else { Location::parse(&format!("{}/{MANIFEST_FILE}", text.trim_end_matches('/')), &cwd)? };
    let name = location.to_string();
    storage.preflight(&location).await?;
    let store = storage.store(&location)?;
    let read = async { store.get(&location.prefix()).await?.bytes().await };
    let bytes = read.await.map_err(|source| match source {
        object_store::Error::NotFound { .. } => ReportError::NotFound(name.clone()),
        source => ReportError::Read { location: name.clone(), source },
    })?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| ReportError::Malformed { location: name.clone(), message: e.to_string() })?;
    Ok((manifest, name))
}

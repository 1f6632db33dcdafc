//! Where a file or directory lives: a local path, a `file://` URL or an
//! `s3://` URL, and its path inside the store that reaches it.

use std::fmt;
use std::path::{Path, PathBuf};
use object_store::path::Path as ObjectPath;
use url::Url;

/// A location named by the user, already resolved (relative paths are made
/// absolute against the job file's directory or the working directory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A path on the local file system (absolute).
    Local(PathBuf),
    /// An `s3://bucket/key` URL.
    S3(Url),
}

/// Why a location could not be parsed or reached.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    /// The text is a URL with a scheme corral does not read.
    #[error("unsupported URL scheme `{scheme}` in `{text}` (use a local path, file:// or s3://)")]
    UnsupportedScheme {
        /// The scheme found.
        scheme: String,
        /// The whole text.
        text: String,
    },
    /// The text looks like a URL but does not parse as one.
    #[error("malformed URL `{text}`: {source}")]
    MalformedUrl {
        /// The whole text.
        text: String,
        /// The parser's complaint.
        source: url::ParseError,
    },
    /// An `s3://` URL without a bucket.
    #[error("`{0}` names no bucket (expected s3://BUCKET/PREFIX)")]
    NoBucket(String),
}

impl Location {
    /// Parses `text`, resolving a relative local path against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Location, LocationError> {
        let Some((scheme, _)) = text.split_once("://") else {
            let path = Path::new(text);
            let path = if path.is_absolute() { path.to_owned() } else { base.join(path) };
            return Ok(Location::Local(normalise(&path)));
        };
        let url = Url::parse(text)
            .map_err(|source| LocationError::MalformedUrl { text: text.to_owned(), source })?;
        match scheme {
            "file" => url
                .to_file_path()
                .map(Location::Local)
                .map_err(|()| LocationError::MalformedUrl { text: text.to_owned(), source: url::ParseError::InvalidDomainCharacter }),
            "s3" | "s3a" => {
                if url.host_str().unwrap_or_default().is_empty() {
                    return Err(LocationError::NoBucket(text.to_owned()));
                }
                Ok(Location::S3(url))
            }
            other => Err(LocationError::UnsupportedScheme { scheme: other.to_owned(), text: text.to_owned() }),
        }
    }

    /// The last path segment (a file name), if any.
    pub fn file_name(&self) -> Option<String> {
        match self {
            Location::Local(path) => path.file_name().map(|n| n.to_string_lossy().into_owned()),
            Location::S3(url) => url.path_segments().and_then(|mut s| s.next_back()).map(str::to_owned),
        }
    }

    /// The local path, if this is one.
    pub fn as_local(&self) -> Option<&Path> {
        match self {
            Location::Local(path) => Some(path),
            Location::S3(_) => None,
        }
    }

    /// The path of this location inside its store ([`crate::storage::Storage::store`]; local paths are rooted at `/`).
    pub fn prefix(&self) -> ObjectPath {
        match self {
            Location::Local(path) => {
                ObjectPath::from_iter(path.components().filter_map(|c| match c {
                    std::path::Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
                    _ => None,
                }))
            }
            Location::S3(url) => ObjectPath::from_iter(
                url.path_segments().into_iter().flatten().filter(|s| !s.is_empty()).map(str::to_owned),
            ),
        }
    }
}

/// Folds `.` and `..` out of an absolute path, without touching the disk.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(part) => out.push(part),
            _ => {}
        }
    }
    out
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(path) => write!(f, "{}", path.display()),
            Location::S3(url) => write!(f, "{url}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_resolve_against_the_base() {
        let loc = Location::parse("data/config.csv", Path::new("/jobs")).unwrap();
        assert_eq!(loc, Location::Local(PathBuf::from("/jobs/data/config.csv")));
        assert_eq!(loc.prefix().as_ref(), "jobs/data/config.csv");
    }

    #[test]
    fn dot_dot_folds_away() {
        let loc = Location::parse("../../t/m.wasm", Path::new("/w/examples/seed")).unwrap();
        assert_eq!(loc, Location::Local(PathBuf::from("/w/t/m.wasm")));
    }

    #[test]
    fn s3_urls_keep_bucket_and_prefix() {
        let loc = Location::parse("s3://bucket/a/b", Path::new("/")).unwrap();
        assert_eq!(loc.prefix().as_ref(), "a/b");
        assert_eq!(loc.file_name().as_deref(), Some("b"));
    }

    #[test]
    fn unknown_schemes_and_bucketless_urls_are_refused() {
        assert!(matches!(
            Location::parse("gs://x/y", Path::new("/")),
            Err(LocationError::UnsupportedScheme { .. })
        ));
        assert!(matches!(Location::parse("s3:///y", Path::new("/")), Err(LocationError::NoBucket(_))));
    }
}

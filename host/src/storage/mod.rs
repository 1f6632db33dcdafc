//! Object storage for a run: the local disk, or one S3 store per bucket
//! built from the job's `[storage]` settings and the environment (the way
//! the AWS SDKs find credentials), with retries, a cap on requests in flight
//! and per-iteration request counts; and a preflight that names a missing
//! bucket, missing credentials or an unreachable endpoint before anything
//! runs.

pub mod aws_profile;
pub mod request_stats;
pub mod settings;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::limit::LimitStore;
use object_store::local::LocalFileSystem;
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, RetryConfig};
use url::Url;

use crate::location::Location;
use aws_profile::Profile;
use request_stats::{CountingConnector, RequestStats};
use settings::StorageSettings;

/// Why storage cannot be used. Each names the location and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The bucket does not exist.
    #[error("bucket `{bucket}` does not exist at {endpoint} (named by `{location}`): create it, or fix the URL")]
    NoSuchBucket {
        /// The bucket.
        bucket: String,
        /// The location that names it.
        location: String,
        /// The endpoint asked.
        endpoint: String,
    },
    /// No credentials can be found.
    #[error(
        "no AWS credentials for `{location}`: {detail}. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials, or run on a node with an instance profile"
    )]
    NoCredentials {
        /// The location.
        location: String,
        /// Where corral looked.
        detail: String,
    },
    /// The store refused the credentials.
    #[error("access to `{location}` was denied: {detail}. Check the credentials and the bucket's policy")]
    AccessDenied {
        /// The location.
        location: String,
        /// The store's answer.
        detail: String,
    },
    /// The endpoint cannot be reached.
    #[error("cannot reach the object store at {endpoint} (for `{location}`): {detail}. Check the endpoint (storage.endpoint or AWS_ENDPOINT_URL) and the network")]
    Unreachable {
        /// The location.
        location: String,
        /// The endpoint.
        endpoint: String,
        /// The connection error.
        detail: String,
    },
    /// The store could not be built from the settings.
    #[error("cannot set up storage for `{location}`: {source}")]
    Setup {
        /// The location.
        location: String,
        /// object_store's complaint.
        source: object_store::Error,
    },
    /// Any other failure of the preflight listing.
    #[error("cannot list `{location}`: {source}")]
    Other {
        /// The location.
        location: String,
        /// object_store's error.
        source: object_store::Error,
    },
}

/// Where S3 credentials will come from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum CredentialSource {
    /// Keys in the environment, the profile, or from a web identity or container role.
    Found,
    /// The instance metadata service at this endpoint, if it answers.
    InstanceMetadata(String),
    /// None: the metadata service is disabled.
    Nowhere(String),
}

/// The stores of a run.
#[derive(Debug)]
pub struct Storage {
    settings: StorageSettings,
    stats: Arc<RequestStats>,
    buckets: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
    local: Arc<dyn ObjectStore>,
}

impl Storage {
    /// Stores configured by `settings`.
    pub fn new(settings: StorageSettings) -> Storage {
        Storage {
            settings,
            stats: Arc::default(),
            buckets: Mutex::default(),
            local: Arc::new(LocalFileSystem::new()),
        }
    }

    /// The request counts of every S3 store built here.
    pub fn stats(&self) -> &Arc<RequestStats> {
        &self.stats
    }

    /// The store that reaches `location` (one per bucket, built once).
    pub fn store(&self, location: &Location) -> Result<Arc<dyn ObjectStore>, StorageError> {
        let Location::S3(url) = location else { return Ok(self.local.clone()) };
        let bucket = url.host_str().unwrap_or_default().to_owned();
        let mut buckets = self.buckets.lock().expect("bucket lock");
        if let Some(store) = buckets.get(&bucket) {
            return Ok(store.clone());
        }
        let retry = RetryConfig {
            backoff: BackoffConfig { init_backoff: self.settings.initial_backoff, max_backoff: Duration::from_secs(15), base: 2.0 },
            max_retries: self.settings.max_retries,
            retry_timeout: self.settings.retry_timeout,
        };
        let s3 = self
            .builder(&bucket, retry)
            .with_http_connector(CountingConnector::new(self.stats.clone()))
            .build()
            .map_err(|source| StorageError::Setup { location: location.to_string(), source })?;
        let store: Arc<dyn ObjectStore> = Arc::new(LimitStore::new(s3, self.settings.max_requests));
        buckets.insert(bucket, store.clone());
        Ok(store)
    }

    /// Checks that `location` can be used before the run starts: for S3,
    /// that credentials can be found, the endpoint answers and the bucket
    /// exists (one listing, retried once). Local locations need no check.
    pub async fn preflight(&self, location: &Location) -> Result<(), StorageError> {
        let Location::S3(url) = location else { return Ok(()) };
        let name = location.to_string();
        let bucket = url.host_str().unwrap_or_default().to_owned();
        let endpoint = self.endpoint(&bucket);
        let connect_timeout = self.settings.connect_timeout;
        match credential_source(&env_var, &Profile::load(env_var)) {
            CredentialSource::Found => {}
            CredentialSource::Nowhere(detail) => return Err(StorageError::NoCredentials { location: name, detail }),
            CredentialSource::InstanceMetadata(metadata) => {
                if let Err(e) = probe(&metadata, connect_timeout.min(Duration::from_secs(2))).await {
                    let detail = format!(
                        "none in the environment or the profile, and the instance metadata service at {metadata} does not answer ({e})"
                    );
                    return Err(StorageError::NoCredentials { location: name, detail });
                }
            }
        }
        if let Err(detail) = probe(&endpoint, connect_timeout).await {
            return Err(StorageError::Unreachable { location: name, endpoint, detail });
        }
        let retry = RetryConfig { max_retries: 1, retry_timeout: Duration::from_secs(20), ..RetryConfig::default() };
        let store = self
            .builder(&bucket, retry)
            .build()
            .map_err(|source| StorageError::Setup { location: name.clone(), source })?;
        let prefix = location.prefix();
        match store.list_with_delimiter(Some(&prefix)).await {
            Ok(_) => Ok(()),
            Err(source) => Err(classify(source, bucket, name, endpoint)),
        }
    }

    /// The builder for `bucket`: the environment, then the profile where
    /// the environment is silent, then the job's settings.
    fn builder(&self, bucket: &str, retry: RetryConfig) -> AmazonS3Builder {
        let mut builder = AmazonS3Builder::from_env();
        let profile = Profile::load(env_var);
        if env_var("AWS_ACCESS_KEY_ID").is_none() {
            if let Some(creds) = &profile.credentials {
                builder = builder
                    .with_access_key_id(&creds.access_key_id)
                    .with_secret_access_key(&creds.secret_access_key);
                if let Some(token) = &creds.session_token {
                    builder = builder.with_token(token);
                }
            }
        }
        if env_var("AWS_REGION").is_none() && env_var("AWS_DEFAULT_REGION").is_none() {
            if let Some(region) = &profile.region {
                builder = builder.with_region(region);
            }
        }
        if let Some(endpoint) = &self.settings.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &self.settings.region {
            builder = builder.with_region(region);
        }
        if let Some(allow) = self.settings.allow_http {
            builder = builder.with_allow_http(allow);
        }
        let millis = |d: Duration| format!("{}ms", d.as_millis());
        builder
            .with_bucket_name(bucket)
            .with_retry(retry)
            .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), millis(self.settings.request_timeout))
            .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout), millis(self.settings.connect_timeout))
    }

    /// The endpoint requests for `bucket` go to.
    fn endpoint(&self, bucket: &str) -> String {
        let builder = self.builder(bucket, RetryConfig::default());
        if let Some(endpoint) = builder.get_config_value(&AmazonS3ConfigKey::Endpoint) {
            return endpoint;
        }
        let region = builder.get_config_value(&AmazonS3ConfigKey::Region).unwrap_or_else(|| "us-east-1".into());
        format!("https://s3.{region}.amazonaws.com")
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Where credentials will come from, in the AWS SDKs' order.
fn credential_source(env: &dyn Fn(&str) -> Option<String>, profile: &Profile) -> CredentialSource {
    let set = |k: &str| env(k).is_some();
    let truthy = |k: &str| env(k).is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    if (set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY"))
        || profile.credentials.is_some()
        || (set("AWS_WEB_IDENTITY_TOKEN_FILE") && set("AWS_ROLE_ARN"))
        || set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        || truthy("AWS_SKIP_SIGNATURE")
    {
        return CredentialSource::Found;
    }
    let looked = format!("none in the environment or in profile `{}`", profile.name);
    if truthy("AWS_EC2_METADATA_DISABLED") {
        return CredentialSource::Nowhere(format!("{looked}, and AWS_EC2_METADATA_DISABLED is set"));
    }
    CredentialSource::InstanceMetadata(env("AWS_METADATA_ENDPOINT").unwrap_or_else(|| "http://169.254.169.254".into()))
}

/// Opens (and closes) a TCP connection to `endpoint`'s host and port.
async fn probe(endpoint: &str, timeout: Duration) -> Result<(), String> {
    let url = Url::parse(endpoint).map_err(|e| format!("`{endpoint}` is not a URL: {e}"))?;
    let host = url.host_str().ok_or_else(|| format!("`{endpoint}` names no host"))?.to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host.as_str(), port))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {}", humantime::format_duration(timeout))),
    }
}

/// Names what a failed preflight listing means.
fn classify(source: object_store::Error, bucket: String, location: String, endpoint: String) -> StorageError {
    let text = format!("{source:#}");
    let detail = || {
        let line = text.lines().next().unwrap_or_default();
        line.to_owned()
    };
    if text.contains("NoSuchBucket") {
        return StorageError::NoSuchBucket { bucket, location, endpoint };
    }
    if matches!(source, object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. })
        || ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken"].iter().any(|code| text.contains(code))
    {
        return StorageError::AccessDenied { location, detail: detail() };
    }
    if text.to_ascii_lowercase().contains("credential") {
        return StorageError::NoCredentials { location, detail: detail() };
    }
    StorageError::Other { location, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_looked_for_in_the_sdks_order() {
        let none = Profile::default();
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
        };
        assert_eq!(
            credential_source(&env(&[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "b")]), &none),
            CredentialSource::Found
        );
        assert_eq!(
            credential_source(&env(&[("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"), ("AWS_ROLE_ARN", "r")]), &none),
            CredentialSource::Found
        );
        assert_eq!(
            credential_source(&env(&[]), &none),
            CredentialSource::InstanceMetadata("http://169.254.169.254".into())
        );
        assert!(matches!(
            credential_source(&env(&[("AWS_EC2_METADATA_DISABLED", "true")]), &none),
            CredentialSource::Nowhere(_)
        ));
    }
}

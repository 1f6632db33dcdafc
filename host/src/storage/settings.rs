//! `[storage]`: how corral talks to object storage (endpoint, region,
//! retries, request cap), validated; credentials are never part of it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[storage]` as written in the job file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// An S3-compatible endpoint, e.g. `http://127.0.0.1:9000` (default:
    /// `AWS_ENDPOINT_URL`, else AWS).
    pub endpoint: Option<String>,
    /// The bucket's region (default: `AWS_REGION`, `AWS_DEFAULT_REGION`,
    /// the profile's region, else `us-east-1`).
    pub region: Option<String>,
    /// Allow a plain-HTTP endpoint (default: `AWS_ALLOW_HTTP`, else false).
    pub allow_http: Option<bool>,
    /// Requests in flight to one bucket at most (default 32).
    pub max_requests: Option<usize>,
    /// Retries of a throttled (503 SlowDown), failed (5xx) or timed-out
    /// request (default 10; 0 disables retries).
    pub max_retries: Option<usize>,
    /// Give up retrying a request after this long, e.g. `"3 min"`.
    pub retry_timeout: Option<String>,
    /// The first backoff; each retry waits a random time up to twice the
    /// previous one (exponential backoff with jitter). Default `"100ms"`.
    pub initial_backoff: Option<String>,
    /// Timeout of one request, e.g. `"30s"`.
    pub request_timeout: Option<String>,
    /// Timeout to connect, e.g. `"5s"`.
    pub connect_timeout: Option<String>,
}

/// Validated storage settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StorageSettings {
    /// Endpoint override.
    pub endpoint: Option<String>,
    /// Region override.
    pub region: Option<String>,
    /// Plain HTTP allowed (`None`: as the environment says).
    pub allow_http: Option<bool>,
    /// Requests in flight to one bucket at most.
    pub max_requests: usize,
    /// Retries per request.
    pub max_retries: usize,
    /// Retrying stops after this long.
    #[serde(with = "secs")]
    pub retry_timeout: Duration,
    /// The first backoff.
    #[serde(with = "secs")]
    pub initial_backoff: Duration,
    /// Timeout of one request.
    #[serde(with = "secs")]
    pub request_timeout: Duration,
    /// Timeout to connect.
    #[serde(with = "secs")]
    pub connect_timeout: Duration,
}

mod secs {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings {
            endpoint: None,
            region: None,
            allow_http: None,
            max_requests: 32,
            max_retries: 10,
            retry_timeout: Duration::from_secs(180),
            initial_backoff: Duration::from_millis(100),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl StorageSettings {
    /// Validates `[storage]`; on error, the field and what is wrong.
    pub fn validate(section: &StorageSection) -> Result<StorageSettings, (&'static str, String)> {
        let defaults = StorageSettings::default();
        let duration = |field: &'static str, text: &Option<String>, default: Duration| match text {
            None => Ok(default),
            Some(text) => humantime::parse_duration(text.trim())
                .map_err(|e| (field, format!("`{text}` is not a duration such as \"30s\" or \"3 min\": {e}"))),
        };
        let max_requests = section.max_requests.unwrap_or(defaults.max_requests);
        if max_requests == 0 {
            return Err(("storage.max_requests", "must be at least 1".into()));
        }
        if let Some(endpoint) = &section.endpoint {
            match url::Url::parse(endpoint) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {}
                _ => {
                    return Err((
                        "storage.endpoint",
                        format!("`{endpoint}` is not an http:// or https:// URL such as \"http://127.0.0.1:9000\""),
                    ));
                }
            }
        }
        let request_timeout = duration("storage.request_timeout", &section.request_timeout, defaults.request_timeout)?;
        let connect_timeout = duration("storage.connect_timeout", &section.connect_timeout, defaults.connect_timeout)?;
        if request_timeout.is_zero() || connect_timeout.is_zero() {
            return Err(("storage.request_timeout", "timeouts must be longer than zero".into()));
        }
        Ok(StorageSettings {
            endpoint: section.endpoint.clone(),
            region: section.region.clone(),
            allow_http: section.allow_http,
            max_requests,
            max_retries: section.max_retries.unwrap_or(defaults.max_retries),
            retry_timeout: duration("storage.retry_timeout", &section.retry_timeout, defaults.retry_timeout)?,
            initial_backoff: duration("storage.initial_backoff", &section.initial_backoff, defaults.initial_backoff)?,
            request_timeout,
            connect_timeout,
        })
    }
}

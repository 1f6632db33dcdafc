//! Counts the requests made to a bucket and the attempts that failed
//! (throttled, 5xx, timed out, reset) and were therefore retried, by the
//! iteration whose output they concern, so that each record shows them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use object_store::ClientOptions;
use object_store::client::{HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector};
use serde::{Deserialize, Serialize};

/// Requests and failed attempts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounts {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Attempts that failed with a retryable answer (503 SlowDown, other
    /// 5xx, 429, 408) or a transport error (reset, timeout), each of which
    /// object_store retried unless its retries were spent.
    pub retries: u64,
}

/// Counts per iteration (`None`: requests not about one iteration's output,
/// such as reading the config or writing the manifest).
#[derive(Debug, Default)]
pub struct RequestStats {
    counts: Mutex<HashMap<Option<i64>, RequestCounts>>,
}

impl RequestStats {
    /// The counts of requests for iteration `n`'s output.
    pub fn of_iteration(&self, n: i64) -> RequestCounts {
        self.counts.lock().expect("stats lock").get(&Some(n)).copied().unwrap_or_default()
    }

    /// The counts over every request.
    pub fn total(&self) -> RequestCounts {
        self.counts.lock().expect("stats lock").values().fold(RequestCounts::default(), |a, c| RequestCounts {
            requests: a.requests + c.requests,
            retries: a.retries + c.retries,
        })
    }

    fn note(&self, iteration: Option<i64>, failed: bool) {
        let mut counts = self.counts.lock().expect("stats lock");
        let entry = counts.entry(iteration).or_default();
        entry.requests += 1;
        entry.retries += u64::from(failed);
    }
}

/// The iteration a request's URL path is about: outputs live at
/// `…/iter_N/FILE` (or `…/iteration=N/FILE`, `=` perhaps escaped), so
/// the next-to-last segment names it.
fn iteration_of(path: &str) -> Option<i64> {
    let mut segments = path.trim_end_matches('/').rsplit('/');
    segments.next()?;
    let dir = segments.next()?;
    let number = ["iter_", "iteration=", "iteration%3D", "iteration%3d"].iter().find_map(|prefix| dir.strip_prefix(prefix))?;
    number.parse().ok()
}

/// An [`HttpConnector`] whose clients are reqwest's, counted into `stats`.
#[derive(Debug)]
pub struct CountingConnector {
    stats: Arc<RequestStats>,
}

impl CountingConnector {
    /// A connector counting into `stats`.
    pub fn new(stats: Arc<RequestStats>) -> Self {
        CountingConnector { stats }
    }
}

impl HttpConnector for CountingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(CountingService { inner, stats: self.stats.clone() }))
    }
}

#[derive(Debug)]
struct CountingService {
    inner: HttpClient,
    stats: Arc<RequestStats>,
}

#[async_trait::async_trait]
impl HttpService for CountingService {
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let iteration = iteration_of(request.uri().path());
        let result = self.inner.execute(request).await;
        let failed = match &result {
            Ok(response) => {
                let status = response.status().as_u16();
                status >= 500 || status == 429 || status == 408
            }
            Err(_) => true,
        };
        self.stats.note(iteration, failed);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_paths_name_their_iteration() {
        assert_eq!(iteration_of("/bucket/out/iter_7/part-00000.parquet"), Some(7));
        assert_eq!(iteration_of("/out/iter_-3/_SUCCESS"), Some(-3));
        assert_eq!(iteration_of("/bucket/out/iteration=12/part-00000.parquet"), Some(12));
        assert_eq!(iteration_of("/bucket/out/iteration%3D12/_SUCCESS"), Some(12));
        assert_eq!(iteration_of("/bucket/out/_records/iter_7.json"), None);
        assert_eq!(iteration_of("/bucket/out/_manifest.json"), None);
        assert_eq!(iteration_of("/bucket"), None);
    }
}

//! What a transform is given for one iteration: its id and the job's params.

use anyhow::{Context as _, Result};
use serde::de::DeserializeOwned;

/// One iteration's context.
#[derive(Clone, Debug)]
pub struct Context {
    iteration: i64,
    params: String,
    job_name: String,
}

impl Context {
    /// A context with the given iteration id, params (a JSON object) and job
    /// name. The host builds it; tests and native runs build their own.
    pub fn new(iteration: i64, params_json: impl Into<String>, job_name: impl Into<String>) -> Self {
        Context { iteration, params: params_json.into(), job_name: job_name.into() }
    }

    /// The iteration's id (the seed's `n`).
    pub fn iteration(&self) -> i64 {
        self.iteration
    }

    /// The job's `[params]`, deserialised into `T`.
    pub fn params<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.params).context("the job's [params] do not fit this transform")
    }

    /// The job's `[params]` as JSON text.
    pub fn params_json(&self) -> &str {
        &self.params
    }

    /// The job's name.
    pub fn job_name(&self) -> &str {
        &self.job_name
    }
}

//! What an iteration's output depends on besides its number: the module,
//! the params, the config file as it was read, and the job settings that
//! change what a transform sees. Every record carries them, the manifest
//! holds the run's, and `--resume` carries an iteration over only when all
//! of them match, naming the first that does not.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::job::{ConfigFormat, Job};

/// The inputs of an iteration's output (flattened into its record).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    /// The module that ran (sha256).
    pub module_sha256: String,
    /// The params' sha256 (of their JSON as the transform gets it).
    #[serde(default)]
    pub params_sha256: String,
    /// The config file as it was read: for an object store its ETag and
    /// size, for a local file its size and modification time (see
    /// [`config_identity`]). Empty in the records of a corral that did
    /// not record it.
    #[serde(default)]
    pub config_identity: String,
    /// The job settings that change what the transform sees or does, by
    /// name (`deterministic`, `config.batch_rows`, `config.format`, ...).
    #[serde(default)]
    pub settings: BTreeMap<String, serde_json::Value>,
}

impl Inputs {
    /// The inputs of `job`'s iterations with this module and config.
    pub fn of(job: &Job, module_sha256: &str, config_identity: &str) -> Inputs {
        Inputs {
            module_sha256: module_sha256.to_owned(),
            params_sha256: crate::manifest::params_sha256(&job.params),
            config_identity: config_identity.to_owned(),
            settings: settings(job),
        }
    }

    /// Why an output computed from `earlier` is not one of these inputs'
    /// (`None`: it is). `config_identity` is compared only when these
    /// inputs know theirs (a run interrupted before its config was read
    /// does not).
    pub fn differs(&self, earlier: &Inputs) -> Option<Rerun> {
        if earlier.module_sha256 != self.module_sha256 {
            return Some(Rerun::ModuleChanged);
        }
        if earlier.params_sha256 != self.params_sha256 {
            return Some(Rerun::ParamsChanged);
        }
        if !self.config_identity.is_empty() && earlier.config_identity != self.config_identity {
            return Some(if earlier.config_identity.is_empty() { Rerun::ConfigUnknown } else { Rerun::ConfigChanged });
        }
        let names: std::collections::BTreeSet<&String> = self.settings.keys().chain(earlier.settings.keys()).collect();
        let changed: Vec<String> = names.into_iter().filter(|k| self.settings.get(*k) != earlier.settings.get(*k)).cloned().collect();
        (!changed.is_empty()).then_some(Rerun::SettingsChanged(changed))
    }
}

/// Why `--resume` runs an iteration whose output is there again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rerun {
    /// Another module.
    ModuleChanged,
    /// Other params.
    ParamsChanged,
    /// The config file is not the one the output was computed from.
    ConfigChanged,
    /// The output's record does not say which config it read (an older
    /// corral wrote it).
    ConfigUnknown,
    /// These job settings differ.
    SettingsChanged(Vec<String>),
}

impl std::fmt::Display for Rerun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rerun::ModuleChanged => f.write_str("module changed"),
            Rerun::ParamsChanged => f.write_str("params changed"),
            Rerun::ConfigChanged => f.write_str("config changed"),
            Rerun::ConfigUnknown => f.write_str("its record does not say which config it read"),
            Rerun::SettingsChanged(names) => write!(f, "settings changed ({})", names.join(", ")),
        }
    }
}

/// The settings of `job` that change an output: fixed randomness and
/// clocks, and how the config is parsed and handed over (its format, CSV
/// header, delimiter and declared schema, the scan batch size). Not the
/// limits (an output that was committed fitted them) nor `partition_by`
/// (an index changes how fast a scan is, not what it returns).
fn settings(job: &Job) -> BTreeMap<String, serde_json::Value> {
    let config = &job.config;
    let mut settings = BTreeMap::new();
    settings.insert("deterministic".to_owned(), job.deterministic.into());
    settings.insert("config.batch_rows".to_owned(), config.batch_rows.into());
    let format = match config.format {
        ConfigFormat::Csv => "csv",
        ConfigFormat::Parquet => "parquet",
    };
    settings.insert("config.format".to_owned(), format.into());
    if config.format == ConfigFormat::Csv {
        settings.insert("config.header".to_owned(), config.header.into());
        settings.insert("config.delimiter".to_owned(), char::from(config.delimiter).to_string().into());
        let schema = config.schema.as_ref().map(|schema| {
            schema.fields().iter().map(|f| format!("{}: {}", f.name(), f.data_type())).collect::<Vec<_>>()
        });
        settings.insert("config.schema".to_owned(), serde_json::json!(schema));
    }
    settings
}

/// The identity of a config file as it was read, from the metadata of the
/// read itself: an object store's ETag and size (the ETag changes with the
/// content), or a local file's size and modification time (to the
/// nanosecond), which any rewrite of the file changes. No hash of the
/// content: that would cost a pass over a file corral otherwise parses as
/// it streams (see BENCHMARKS.md).
pub fn config_identity(meta: &object_store::ObjectMeta, local: bool) -> String {
    let modified = humantime::format_rfc3339_nanos(meta.last_modified.into());
    match (&meta.e_tag, local) {
        (Some(e_tag), false) => format!("size {} etag {e_tag}", meta.size),
        _ => format!("size {} modified {modified}", meta.size),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Inputs {
        Inputs {
            module_sha256: "m".into(),
            params_sha256: "p".into(),
            config_identity: "size 10 modified x".into(),
            settings: [("deterministic".to_owned(), false.into()), ("config.batch_rows".to_owned(), 65536.into())].into(),
        }
    }

    #[test]
    fn the_first_input_that_differs_is_named() {
        let now = inputs();
        assert_eq!(now.differs(&inputs()), None);
        let mut module = inputs();
        module.module_sha256 = "n".into();
        module.config_identity = "other".into();
        assert_eq!(now.differs(&module), Some(Rerun::ModuleChanged), "the module is named first");
        let mut params = inputs();
        params.params_sha256 = "q".into();
        assert_eq!(now.differs(&params).unwrap().to_string(), "params changed");
        let mut config = inputs();
        config.config_identity = "size 11 modified y".into();
        assert_eq!(now.differs(&config).unwrap().to_string(), "config changed");
        config.config_identity = String::new();
        assert_eq!(now.differs(&config), Some(Rerun::ConfigUnknown), "an older record");
        let mut settings = inputs();
        settings.settings.insert("deterministic".into(), true.into());
        settings.settings.insert("config.header".into(), true.into());
        assert_eq!(now.differs(&settings).unwrap().to_string(), "settings changed (config.header, deterministic)");
    }

    #[test]
    fn an_unknown_config_is_not_compared() {
        let mut now = inputs();
        now.config_identity = String::new();
        let mut earlier = inputs();
        earlier.config_identity = "anything".into();
        assert_eq!(now.differs(&earlier), None);
    }

    #[test]
    fn a_local_file_is_known_by_size_and_time_an_object_by_its_etag() {
        let meta = object_store::ObjectMeta {
            location: "c.csv".into(),
            last_modified: "2026-12-04T10:00:00.123456789Z".parse().unwrap(),
            size: 42,
            e_tag: Some("\"abc\"".into()),
            version: None,
        };
        assert_eq!(config_identity(&meta, true), "size 42 modified 2026-12-04T10:00:00.123456789Z");
        assert_eq!(config_identity(&meta, false), "size 42 etag \"abc\"");
    }
}

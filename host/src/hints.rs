//! What to do next after an error that stops a command: one `hint:` line
//! printed under the error, where the next step is not already in the
//! error's own message.

use crate::config_table::ConfigError;
use crate::job::JobError;
use crate::runner::RunError;
use crate::sandbox::ModuleError;

/// The next step after `error`, if there is a useful one.
pub fn for_run(error: &RunError) -> Option<&'static str> {
    match error {
        RunError::Job(JobError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Some("`corral new NAME` writes a transform crate with a job file to start from")
        }
        RunError::Job(JobError::Malformed { .. }) => {
            Some("examples/seed/job.toml is a complete job file; `corral run --help` lists what each field overrides")
        }
        RunError::Module(error) => for_module(error),
        RunError::Config(ConfigError::NotFound(_)) => {
            Some("`config.path` is relative to the job file; `--config PATH` overrides it")
        }
        RunError::Resume { .. } | RunError::Manifest { .. } => {
            Some("the outputs committed so far are kept; run again with --resume to finish the rest")
        }
        _ => None,
    }
}

/// How a component of the corral `transform` world is built, in Rust and
/// in Python (a macro, for `concat!`).
macro_rules! build_commands {
    () => {
        "Rust: `cargo build --release --target wasm32-wasip2` in a crate using corral-guest; \
         Python: `componentize-py -d wit -w transform componentize app -p . -p guest-sdk/python -o app.wasm`"
    };
}

/// The next step after a module error (from `run` or `check`).
pub fn for_module(error: &ModuleError) -> Option<&'static str> {
    match error {
        ModuleError::Read { source: object_store::Error::NotFound { .. }, .. } => Some(concat!(
            "build the transform first (or fix `transform.module`, which is relative to the job file); ",
            build_commands!()
        )),
        ModuleError::NotWasm { .. } | ModuleError::Invalid { .. } | ModuleError::CoreModule { .. } => Some(concat!(
            "name a component of the corral `transform` world; ",
            build_commands!()
        )),
        ModuleError::TooLarge { .. } | ModuleError::TooManyFunctions { .. } => Some(
            "a debug build is many times the size of a release one (build the transform with `cargo build --release --target wasm32-wasip2`); raise the limit only for a module you trust",
        ),
        ModuleError::OverSandboxLimits { .. } => Some(
            "components built by the Rust SDK or by componentize-py fit these limits; a module that does not was built some other way, or is hostile",
        ),
        ModuleError::WrongWorld { .. } => Some(
            "a transform is a component of the corral `transform` world: in Rust export it with `corral_guest::export!(run)`, \
             in Python decorate it with `@corral_guest.export` and build with `componentize-py -w transform`; \
             `corral check MODULE` lists the module's imports and exports",
        ),
        _ => None,
    }
}

/// Prints `error: …` and, if there is one, `hint: …` on stderr, after
/// the log lines still waiting to be written.
pub fn print_error(error: &dyn std::fmt::Display, hint: Option<&str>) {
    crate::logging::flush();
    // A module's validator echoes the module's names: inert, like any
    // text that may come from a guest.
    eprintln!("error: {}", crate::guest_input::text::block(&error.to_string(), 64 << 10));
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::location::Location;

    #[test]
    fn a_missing_module_says_to_build_it() {
        let location = Location::parse("/nowhere/model.wasm", std::path::Path::new("/")).unwrap();
        let error = RunError::Module(ModuleError::Read {
            location,
            source: object_store::Error::NotFound { path: "/nowhere/model.wasm".into(), source: "gone".into() },
        });
        let hint = for_run(&error).unwrap();
        assert!(hint.contains("cargo build --release --target wasm32-wasip2"), "{hint}");
        assert!(hint.contains("componentize-py -d wit -w transform componentize app"), "{hint}");
    }

    #[test]
    fn an_invalid_field_has_no_hint_beyond_its_message() {
        let error = RunError::Job(JobError::Invalid { field: "limits.memory", message: "not a size".into() });
        assert_eq!(for_run(&error), None);
    }
}

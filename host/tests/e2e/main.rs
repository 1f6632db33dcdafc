//! End-to-end tests of `corral`: the real binary, real guests built from
//! `transforms/`, real files. One module per area.

// A test binary sees every dependency of the package; most serve the library.
#![allow(unused_crate_dependencies)]

mod bad_input;
mod cli;
mod config_once;
mod evil_boundary;
mod evil_guests;
mod failures;
mod mixed_run;
mod help;
mod module_bounds;
mod resume;
mod progress;
mod python;
mod report;
mod run;
mod scaffold;
mod shards;
mod share;
mod shutdown;
mod spark;
mod spark_cluster;
mod storage;
mod support;

//! The `corral` binary: parse the command line, run, exit with the code.

// The binary shares the package's dependency list with the library, which
// uses them; the lint cannot tell, so it is off for this one file.
#![allow(unused_crate_dependencies)]

use clap::Parser as _;

fn main() {
    let cli = corral::cli::Cli::parse();
    std::process::exit(corral::cli::execute(cli));
}

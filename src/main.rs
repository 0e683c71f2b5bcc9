//! The `pkgsign` command line: parse arguments, run the library, print the
//! outcome, exit with the contract's code.
#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    match cli::Cli::try_parse() {
        Ok(cli) => cli::run(cli),
        Err(e) => cli::usage_error(&e),
    }
}

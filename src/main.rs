//! The `pkgsign` command line: parse arguments, run the library, print the
//! outcome, exit with the contract's code.
#![deny(unsafe_code)]

mod cli;

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    cli::run(cli::Cli::parse())
}

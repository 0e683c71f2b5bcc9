//! The `pkgsign` command line: parse arguments, run the library, print the
//! outcome, exit with the contract's code.
#![deny(unsafe_code)]

mod cli;

use std::process::ExitCode;

use clap::Parser as _;
use clap::error::ErrorKind;

fn main() -> ExitCode {
    match cli::Cli::try_parse() {
        Ok(cli) => cli::run(cli),
        Err(e) => usage_error(&e),
    }
}

/// Report a command-line error as the contract says every error is reported:
/// one `error:` line on stderr (clap's own output spans several lines) and,
/// with `--json`, one JSON object on stdout; exit 2. `--help`, `--version`
/// and a bare `pkgsign` print what clap prints.
fn usage_error(e: &clap::Error) -> ExitCode {
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let rendered = e.to_string();
    let mut msg = rendered
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(rest) = msg.strip_prefix("error: ") {
        msg = rest.to_string();
    }
    msg.push_str("; run with --help for usage");
    eprintln!("error: {msg}");
    let args: Vec<_> = std::env::args_os().collect();
    if args.iter().any(|a| a == "--json") {
        let mut obj = serde_json::json!({ "ok": false, "code": "USAGE", "error": msg });
        if args
            .get(1)
            .is_some_and(|c| c.to_string_lossy().starts_with("verify"))
        {
            obj["verified"] = serde_json::Value::Bool(false);
        }
        println!("{obj}");
    }
    ExitCode::from(2)
}

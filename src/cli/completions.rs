//! `pkgsign completions SHELL`: the shell's completion script, written by
//! `clap_complete` from the same clap definitions that parse the command
//! line, so it never offers a flag that does not exist.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;
use pkgsign::Error;

use super::Cli;
use super::error::CliError;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Load it for this session:  source <(pkgsign completions bash)\n\
Install it for every user (the README's Packaging section has them all):\n  \
pkgsign completions bash > /usr/share/bash-completion/completions/pkgsign\n  \
pkgsign completions zsh  > /usr/share/zsh/site-functions/_pkgsign\n  \
pkgsign completions fish > /usr/share/fish/vendor_completions.d/pkgsign.fish"
)]
pub struct Args {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    shell: Shell,
}

/// Print the script on stdout.
pub fn run(args: Args) -> Result<(), CliError> {
    let script = script(args.shell);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io(Path::new("<stdout>"), "writing the completion script", e))?;
    Ok(())
}

/// The completion script of `shell` for the whole command line.
fn script(shell: Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let name = cmd.get_name().to_owned();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut buf);
    buf
}

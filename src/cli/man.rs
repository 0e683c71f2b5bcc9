//! `pkgsign man --output-dir DIR` (hidden): the manual pages, written by
//! `clap_mangen` from the clap definitions: `pkgsign.1` and one page per
//! subcommand, nested ones included (`pkgsign-trust-add.1`). The pages
//! committed in `man/` are its output; tests/it/completions.rs fails when
//! they are stale.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use pkgsign::Error;
use pkgsign::fsutil::{Replace, write_atomic};

use super::Cli;
use super::error::CliError;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write the pages into DIR (created if missing); pages already there
    /// are replaced.
    #[arg(long, value_name = "DIR")]
    output_dir: PathBuf,
}

/// Write every page into the output directory, each atomically, and name
/// each one on stdout.
pub fn run(args: Args) -> Result<(), CliError> {
    let dir = &args.output_dir;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "creating", e))?;
    for (name, page) in pages()? {
        let dest = dir.join(name);
        write_atomic(&dest, &page, 0o644, Replace::Allowed)?;
        println!("{}", dest.display());
    }
    Ok(())
}

/// Every page as (file name, roff text): the top-level command's and each
/// visible subcommand's, at every depth. `help` is left out: it is not a
/// command of its own (clap_mangen's `generate_to` does the same).
fn pages() -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Builds the tree: each subcommand gets its display name
    // (`pkgsign-trust-add`), the page's title and file name.
    cmd.build();
    let mut pages = Vec::new();
    collect(cmd, &mut pages)?;
    Ok(pages)
}

fn collect(cmd: clap::Command, pages: &mut Vec<(String, Vec<u8>)>) -> Result<(), Error> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub.clone(), pages)?;
    }
    let man = clap_mangen::Man::new(cmd);
    let mut page = Vec::new();
    man.render(&mut page)
        .map_err(|e| Error::io(Path::new(&man.get_filename()), "rendering", e))?;
    pages.push((man.get_filename(), page));
    Ok(())
}

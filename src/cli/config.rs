//! `pkgsign config check FILE`: is a configuration file one every
//! subcommand (and `serve`) will read? It parses as `--config` does
//! (unknown keys, bad values: CONFIG_INVALID naming the line), then checks
//! that the paths that must already exist do.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use pkgsign::config::{Config, MAX_SIZE};
use pkgsign::error::{Error, ParseError};
use serde_json::json;

use super::error::CliError;
use super::{json_printed, print_json, shown};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "The file format, every key and the precedence of flags, environment and file \
are in docs/config.md.\n\nExit codes: 0 valid, 2 invalid (or could not be read)."
)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    /// Print the outcome as one JSON object on stdout.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check FILE: it parses, holds only known keys with sensible values,
    /// and every path that must exist (trusted keys, public keys, tokens
    /// file, TLS files, allowed directories) does.
    Check {
        /// The configuration file.
        file: PathBuf,
    },
}

pub fn run(args: Args) -> Result<(), CliError> {
    let Command::Check { file } = &args.command;
    let config = Config::load(file)?;
    let problems = missing_paths(&config);
    if problems.is_empty() {
        if args.json {
            print_json(&json!({ "ok": true, "path": shown(file) }));
        } else {
            println!("{}: OK", shown(file));
        }
        return Ok(());
    }
    // Point at each key's line; the file was read a moment ago.
    let text = pkgsign::fsutil::read_bounded(file, MAX_SIZE, "configuration file")
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let lines: Vec<Option<usize>> = problems.iter().map(|p| key_line(&text, p.key)).collect();
    let reason = problems
        .iter()
        .zip(&lines)
        .map(|(p, line)| {
            let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
            format!("{}{at}: {} {}", p.key, shown(&p.path), p.why)
        })
        .collect::<Vec<_>>()
        .join("; ");
    let e = CliError::from(Error::from(ParseError::Config {
        path: file.clone(),
        line: lines.first().copied().flatten(),
        reason,
    }));
    if args.json {
        print_json(&json!({
            "ok": false,
            "code": e.code(),
            "error": super::one_line(&e.to_string()),
            "path": shown(file),
            "missing": problems.iter().zip(&lines).map(|(p, line)| json!({
                "key": p.key, "path": shown(&p.path), "line": line, "problem": p.why,
            })).collect::<Vec<_>>(),
        }));
        json_printed();
    }
    Err(e)
}

/// A path the file names that is not there (or not of the right kind).
#[derive(Debug)]
struct Problem {
    /// The key, `section.key`.
    key: &'static str,
    /// The path, resolved against the file's directory.
    path: PathBuf,
    /// What is wrong with it.
    why: &'static str,
}

/// What must exist before any command reads the file: the directories and
/// files it reads (never those a command creates: keys_dir, state_dir,
/// release_store, key_dirs, caches, logs).
fn missing_paths(c: &Config) -> Vec<Problem> {
    let mut dirs: Vec<(&'static str, &Path)> = Vec::new();
    let mut files: Vec<(&'static str, &Path)> = Vec::new();
    if let Some(p) = &c.worker.trusted_keys {
        dirs.push(("worker.trusted_keys", p));
    }
    if let Some(p) = &c.service.trusted_keys {
        dirs.push(("service.trusted_keys", p));
    }
    for p in &c.service.allowed_dirs {
        dirs.push(("service.allowed_dirs", p));
    }
    for p in &c.worker.public_keys {
        files.push(("worker.public_keys", p));
    }
    if let Some(p) = &c.service.tokens_file {
        files.push(("service.tokens_file", p));
    }
    if let Some(t) = &c.service.tls {
        files.push(("service.tls.cert", &t.cert));
        files.push(("service.tls.key", &t.key));
        if let Some(p) = &t.client_ca {
            files.push(("service.tls.client_ca", p));
        }
    }
    let mut out = Vec::new();
    let mut check = |key, path: &Path, want_dir: bool| {
        let why = match std::fs::metadata(path) {
            Err(_) => "does not exist (or cannot be read)",
            Ok(m) if want_dir && !m.is_dir() => "is not a directory",
            Ok(m) if !want_dir && !m.is_file() => "is not a regular file",
            Ok(_) => return,
        };
        out.push(Problem {
            key,
            path: path.to_path_buf(),
            why,
        });
    };
    for (key, p) in dirs {
        check(key, p, true);
    }
    for (key, p) in files {
        check(key, p, false);
    }
    out
}

/// The line (1-based) where `section.key` is set in `text`, read the
/// simple way TOML is usually written: a `[section]` header, then
/// `key = ...`. `None` when it is written otherwise (dotted keys, inline
/// tables): the message then names the key alone.
fn key_line(text: &str, dotted: &str) -> Option<usize> {
    let (section, key) = dotted.rsplit_once('.')?;
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(h) = t.strip_prefix('[') {
            current = h
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .split('.')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(".");
        } else if current == section
            && let Some(rest) = t.strip_prefix(key)
            && rest.trim_start().starts_with('=')
        {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::key_line;

    #[test]
    fn a_keys_line_is_found_under_its_own_section_only() {
        let text = "[worker]\ntrusted_keys = \"a\"\n\n[service]\ntokens_file = \"t\"\ntrusted_keys = \"b\"\n[service.tls]\ncert = \"c\"\n";
        assert_eq!(key_line(text, "worker.trusted_keys"), Some(2));
        assert_eq!(key_line(text, "service.trusted_keys"), Some(6));
        assert_eq!(key_line(text, "service.tls.cert"), Some(8));
        assert_eq!(key_line(text, "service.allowed_dirs"), None);
    }
}

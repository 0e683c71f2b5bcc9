//! `pkgsign checksum`: what `sha256sum` & co. print, and `--check`.

use std::io::Write;
use std::path::{Path, PathBuf};

use pkgsign::digest::{Digest, HashAlg};
use pkgsign::error::{Code, Error, ParseError};
use pkgsign::release::checksum::{self, Style};
use rayon::prelude::*;

use super::common::parse_hash_alg;
use super::error::{CliError, message};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Prints what sha256sum (sha512sum, md5sum, b3sum, ...) prints for the same \
files, byte for byte; with no FILE, or `-`, it reads standard input. --tag prints the BSD form. --check reads GNU, BSD/signify and pkgsign \
(ALGO:HEX  NAME) lists and prints NAME: OK / NAME: FAILED.\n\n\
Algorithms: sha256 (default), sha224, sha384, sha512, sha3-256, sha3-512, blake3; md5 and sha1 \
only for old lists (with a warning: they are insecure).\n\n\
Exit codes: 0 done / all OK; 1 a file failed or is missing; 2 could not run."
)]
pub struct Args {
    /// Files to hash (`-`, or no FILE at all, is standard input, as for
    /// sha256sum).
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Hash algorithm (for --check: of GNU lines; default: from each digest's length).
    #[arg(long, short = 'a', value_parser = parse_hash_alg, value_name = "ALGO")]
    algorithm: Option<HashAlg>,
    /// Print BSD-style lines: `SHA256 (NAME) = HEX`.
    #[arg(long)]
    tag: bool,
    /// Check the files listed in LIST (`-`, or no LIST at all, is standard
    /// input, as for `sha256sum -c`).
    #[arg(long, short = 'c', value_name = "LIST", num_args = 0..=1,
        default_missing_value = "-", conflicts_with_all = ["files", "tag"])]
    check: Option<PathBuf>,
    /// With --check: do not print OK lines (so nothing on stdout when every
    /// file is OK; FAILED lines and errors are still printed).
    #[arg(long, short = 'q', overrides_with = "status")]
    quiet: bool,
    /// With --check: print nothing on stdout; the exit code says it all.
    #[arg(long, overrides_with = "quiet", conflicts_with = "json")]
    status: bool,
    /// With --check: exit non-zero for improperly formatted lines.
    #[arg(long)]
    strict: bool,
    /// With --check: do not fail or report for missing files.
    #[arg(long)]
    ignore_missing: bool,
    /// Hash with N threads (default: all cores).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Print the outcome as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

fn warn_if_insecure(alg: HashAlg) {
    if alg.is_insecure() {
        eprintln!(
            "warning: {alg} is insecure (collisions can be made); use it only to check old lists, never to establish trust"
        );
    }
}

fn pool(jobs: Option<usize>) -> Result<rayon::ThreadPool, CliError> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(n) = jobs {
        b = b.num_threads(n.max(1));
    }
    b.build()
        .map_err(|e| CliError::Usage(format!("--jobs: {e}")))
}

pub fn run(mut args: Args) -> Result<(), CliError> {
    if let Some(list) = &args.check {
        return check(&args, list);
    }
    if args.strict || args.status || args.ignore_missing || args.quiet {
        return Err(CliError::Usage(
            "--quiet, --strict, --status and --ignore-missing are meaningful only with --check LIST"
                .into(),
        ));
    }
    // No FILE: standard input, printed as `-`, as sha256sum does.
    if args.files.is_empty() {
        args.files.push(PathBuf::from("-"));
    }
    let alg = args.algorithm.unwrap_or(HashAlg::Sha256);
    warn_if_insecure(alg);
    let style = if args.tag { Style::Bsd } else { Style::Gnu };
    let results: Vec<Result<Digest, Error>> = pool(args.jobs)?.install(|| {
        args.files
            .par_iter()
            .map(|p| checksum::hash_path(p, alg))
            .collect()
    });
    let mut failed = 0usize;
    // The first failure's code stands for the run (NOT_A_FILE for a
    // directory, FILE_NOT_FOUND for a missing file, ...).
    let mut code: Option<Code> = None;
    let mut out = std::io::stdout().lock();
    let mut entries = Vec::new();
    for (p, r) in args.files.iter().zip(results) {
        match r {
            Ok(d) => {
                if args.json {
                    entries.push(serde_json::json!({"file": p.display().to_string(), "digest": d.to_string()}));
                } else {
                    let _ = out.write_all(&checksum::format_line(&d, p.as_os_str(), style));
                }
            }
            Err(e) => {
                failed += 1;
                code = code.or(Some(e.code()));
                eprintln!("pkgsign: {}", super::one_line(&message(&e)));
            }
        }
    }
    let code = code.unwrap_or(Code::FileNotFound);
    if args.json {
        let mut obj = serde_json::json!({"ok": failed == 0, "files": entries});
        if failed > 0 {
            obj["code"] = serde_json::json!(code);
        }
        super::print_json(&obj);
    }
    if failed > 0 {
        return Err(CliError::ItemsFailed {
            failed,
            total: args.files.len(),
            what: "files",
            code,
            exit: 2,
        });
    }
    Ok(())
}

fn check(args: &Args, list_path: &Path) -> Result<(), CliError> {
    use pkgsign::fsutil::{open_stream, read_bounded_from};
    let limit = pkgsign::release::manifest::LIST_LIMIT;
    let data = if list_path.as_os_str() == "-" {
        read_bounded_from(std::io::stdin().lock(), list_path, limit, "checksum list")?
    } else {
        read_bounded_from(open_stream(list_path)?, list_path, limit, "checksum list")?
    };
    let list = checksum::parse(&data, args.algorithm);
    if list.entries.is_empty() {
        return Err(CliError::Usage(format!(
            "{}: no properly formatted checksum lines found",
            list_path.display()
        )));
    }
    let mut algs: Vec<HashAlg> = list.entries.iter().map(|e| e.expected.alg()).collect();
    algs.sort();
    algs.dedup();
    for a in algs {
        warn_if_insecure(a);
    }
    let report = pool(args.jobs)?.install(|| checksum::check_list(&list, args.ignore_missing));
    let (bad, missing, ignored) = (report.bad, report.missing, report.ignored);
    let status_only = args.status;
    let mut out = std::io::stdout().lock();
    let mut json_files = Vec::new();
    for (e, r) in list.entries.iter().zip(&report.results) {
        let Some(status) = r.status() else {
            continue;
        };
        if let checksum::Checked::Unreadable(err) = r {
            eprintln!("pkgsign: {}", super::one_line(&message(err)));
        }
        let (escaped, shown) = checksum::display_name(&e.name);
        if args.json {
            json_files.push(serde_json::json!({
                "name": String::from_utf8_lossy(&e.name),
                "ok": status == "OK",
                "status": status,
            }));
        } else if !(status_only || (args.quiet && status == "OK")) {
            let mut line = Vec::new();
            if escaped {
                line.push(b'\\');
            }
            line.extend_from_slice(&shown);
            line.extend_from_slice(b": ");
            line.extend_from_slice(status.as_bytes());
            line.push(b'\n');
            let _ = out.write_all(&line);
        }
    }
    let total = report.total();
    let malformed = list.malformed.len();
    // Warnings, as coreutils prints them (none with --status).
    if !status_only {
        if malformed > 0 {
            eprintln!(
                "pkgsign: WARNING: {malformed} line{} improperly formatted",
                if malformed == 1 { " is" } else { "s are" }
            );
        }
        if missing > 0 {
            eprintln!(
                "pkgsign: WARNING: {missing} listed file{} could not be read",
                if missing == 1 { "" } else { "s" }
            );
        }
        if bad > 0 {
            eprintln!(
                "pkgsign: WARNING: {bad} computed checksum{} did NOT match",
                if bad == 1 { "" } else { "s" }
            );
        }
    }
    let verified = report.verified();
    let none_verified = report.none_verified(args.ignore_missing);
    if none_verified && !status_only {
        eprintln!("pkgsign: {}: no file was verified", list_path.display());
    }
    if !status_only {
        eprintln!(
            "pkgsign: {verified} of {total} file{} OK",
            if total == 1 { "" } else { "s" }
        );
    }
    let strict_failed = args.strict && malformed > 0;
    let failed = bad + missing > 0 || none_verified || strict_failed;
    let code = if bad > 0 {
        Code::ChecksumMismatch
    } else if missing > 0 || none_verified {
        Code::FileNotFound
    } else {
        Code::ManifestMalformed
    };
    if args.json {
        let mut obj = serde_json::json!({
            "ok": !failed,
            "verified": !failed,
            "files": json_files,
            "failed": bad,
            "missing": missing,
            "ignored_missing": ignored,
            "malformed_lines": list.malformed,
        });
        if failed {
            obj["code"] = serde_json::json!(code);
        }
        super::print_json(&obj);
        super::json_printed();
    }
    if bad + missing > 0 || none_verified {
        return Err(CliError::ItemsFailed {
            // With every listed file missing and ignored, they all failed.
            failed: if bad + missing > 0 {
                bad + missing
            } else {
                ignored
            },
            total: total.max(ignored),
            what: "files",
            code,
            exit: 1,
        });
    }
    if strict_failed {
        return Err(Error::Parse(ParseError::ManifestMalformed {
            path: list_path.to_path_buf(),
            lines: list
                .malformed
                .iter()
                .copied()
                .take(pkgsign::release::manifest::MALFORMED_SHOWN)
                .collect(),
            count: malformed,
        })
        .into());
    }
    Ok(())
}

//! `pkgsign verify-manifest`: a signed checksum list and every file in it.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use pkgsign::audit::{AuditEvent, Event};
use pkgsign::digest::cache::Cache;
use pkgsign::error::{Code, Error, FileError, ParseError};
use pkgsign::release::manifest::{FileResult, Options, SignedList};
use pkgsign::verify::VerifyOptions;
use serde_json::json;

use pkgsign::config::Config;

use super::common::{GuardArgs, ReleaseArgs, audit, load_trust, or_config};
use super::error::{CliError, message};
use super::{json_printed, one_line, print_json, shown};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Verifies the signature over the checksum list LIST (default LIST.sig) \
exactly as verify-package does (trusted keys, windows, --threshold), then every file the list \
names, relative to LIST's directory, in parallel. A name that is absolute or climbs out of that \
directory is refused and never opened. Publish a list with:\n  \
sha256sum * > SHA256SUMS && pkgsign sign-package --package SHA256SUMS --private-key KEY\n\n\
Every line of a signed list must be a checksum line (no blank or comment line; a final newline \
and CRLF line ends are fine) and it must name at least one file, else it is refused whole \
(MANIFEST_MALFORMED, naming the lines) before any file is checked.\n\n\
Exit codes: 0 the list is authentic, well formed and every file matches; 1 refused (signature, \
a malformed or empty list, or any file); 2 could not run."
)]
pub struct Args {
    /// The checksum list (GNU, BSD/signify or pkgsign lines).
    #[arg(value_name = "LIST")]
    list: PathBuf,
    /// The list's signature (default: LIST.sig).
    #[arg(long, value_name = "SIG")]
    signature: Option<PathBuf>,
    /// A trusted public key; repeat for several. Without this and
    /// --trusted-keys: [worker] public_keys and trusted_keys of the --config
    /// file.
    #[arg(long = "public-key", value_name = "PUB")]
    public_keys: Vec<PathBuf>,
    /// Trust every *.pub in DIR. This or --public-key is required, unless
    /// the --config file's [worker] names trusted keys.
    #[arg(long, value_name = "DIR")]
    trusted_keys: Option<PathBuf>,
    /// Number of distinct trusted keys that must have signed the list.
    #[arg(long, default_value_t = 1, value_name = "N")]
    threshold: usize,
    #[command(flatten)]
    release: ReleaseArgs,
    /// Hash with N threads (default: all cores).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Remember digests by file stat signature in FILE (see SECURITY.md)
    /// [default: [worker] cache of the --config file, else no cache].
    #[arg(long, value_name = "FILE")]
    cache: Option<PathBuf>,
    /// Print nothing on success: no OK lines, no summary, no progress bar
    /// (FAILED lines and errors are still printed).
    #[arg(long, short = 'q')]
    quiet: bool,
    #[command(flatten)]
    guard: GuardArgs,
    /// Print the outcome as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(mut args: Args, config: Option<&Config>) -> Result<(), CliError> {
    super::common::require_worker_trust(&mut args.public_keys, &mut args.trusted_keys, config)?;
    args.cache = or_config(&args.cache, config, |c| &c.worker.cache);
    // Every verification is a security event: one that cannot be logged
    // is not made.
    let log = args.guard.open()?;
    let signature = args
        .signature
        .clone()
        .unwrap_or_else(|| pkgsign::fsutil::sig_path_for(&args.list));
    let trust = load_trust(
        &args.public_keys,
        args.trusted_keys.as_deref(),
        Some(&signature),
    )?;
    let cache = args.cache.as_deref().map(Cache::open);
    // The library tells the bar how many files the verified list names.
    let bar = super::progress::for_count(0, "checking files", args.quiet, args.json);
    let opts = Options {
        progress: bar.as_ref().map(|(p, _)| p.clone()),
        on_total: bar
            .as_ref()
            .map(|(_, b)| Box::new(b.total_setter()) as Box<dyn Fn(u64) + Send + Sync>),
        jobs: args
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        cache: cache.as_ref(),
        verify: VerifyOptions {
            threshold: args.threshold,
            name: args.release.name.clone(),
            min_version: args.release.min_version.clone(),
            ..VerifyOptions::default()
        },
    };
    // A refusal that cannot be logged is reported as that failure instead.
    let refused = |e: &CliError| -> Result<(), Error> {
        audit(
            log.as_ref(),
            Event::new(AuditEvent::SignatureVerificationFailure)
                .with("package", shown(&args.list))
                .with("code", e.code())
                .with("reason", e.to_string()),
        )
        .map_err(|a| {
            a.audit_done(format!(
                "the verification of {} failed ({}) and was not logged",
                shown(&args.list),
                e.code()
            ))
        })
    };
    let opened = SignedList::open(&args.list, &signature, &trust, &opts);
    for w in trust.late_warnings() {
        eprintln!("warning: {w}");
    }
    let signed = match opened {
        Ok(s) => {
            super::verify_package::warn_uncounted(&args.list, s.verified().report());
            s
        }
        Err(e) => {
            let e = CliError::from(e);
            refused(&e)?;
            if args.json
                && let CliError::Lib(Error::Parse(ParseError::ManifestMalformed {
                    lines,
                    count,
                    ..
                })) = &e
            {
                print_json(&json!({
                    "ok": false,
                    "verified": false,
                    "code": e.code(),
                    "error": one_line(&e.to_string()),
                    "list": shown(&args.list),
                    "malformed_lines": lines,
                    "malformed_count": count,
                }));
                json_printed();
            }
            return Err(e);
        }
    };
    // Results are written as they come, in list order: nothing but a
    // batch of them is ever held, however long the list. With --json the
    // one object is written in pieces: its head, each file, its tail.
    let mut out = BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let mut head = || -> std::io::Result<()> {
        if args.json {
            write!(
                out,
                "{{\"list\":{},\"signers\":",
                serde_json::Value::from(shown(&args.list))
            )?;
            serde_json::to_writer(&mut out, &signed.verified().signers().collect::<Vec<_>>())?;
            out.write_all(b",\"files\":[")?;
        }
        Ok(())
    };
    head().map_err(stdout_error)?;
    let mut first = true;
    let bar_ref = bar.as_ref().map(|(_, b)| b);
    let (json_mode, quiet) = (args.json, args.quiet);
    let sink = |f: &FileResult| -> Result<(), Error> {
        let mut write = |out: &mut BufWriter<_>| -> std::io::Result<()> {
            if json_mode {
                if !std::mem::take(&mut first) {
                    out.write_all(b",")?;
                }
                serde_json::to_writer(&mut *out, f)?;
            } else if !f.ok || !quiet {
                out.write_all(&human_line(f))?;
            }
            Ok(())
        };
        match bar_ref {
            Some(b) => b.suspend(|| write(&mut out).and_then(|()| out.flush())),
            None => write(&mut out),
        }
        .map_err(stdout_error)
    };
    let result = signed.check_files(&opts, sink);
    let (verified, summary) = match result {
        Ok(v) => v,
        Err(e) => {
            let e = CliError::from(e);
            if args.json {
                // Close the object begun above: still exactly one.
                let tail = json!({"code": e.code(), "error": one_line(&e.to_string())});
                let _ = writeln!(
                    out,
                    "],\"ok\":false,\"verified\":false,\"code\":{},\"error\":{}}}",
                    tail["code"], tail["error"]
                );
                json_printed();
            }
            let _ = out.flush();
            refused(&e)?;
            return Err(e);
        }
    };
    if let Some(c) = &cache
        && let Err(e) = c.save()
    {
        eprintln!(
            "warning: could not save the cache: {}",
            super::one_line(&message(&e))
        );
    }
    let ok = summary.failed == 0;
    let logged = audit(
        log.as_ref(),
        Event::new(if ok {
            AuditEvent::SignatureVerificationSuccess
        } else {
            AuditEvent::SignatureVerificationFailure
        })
        .with("package", shown(&args.list))
        .with("package_hash", verified.report().package_hash.clone())
        .with(
            "key",
            verified
                .signers()
                .filter_map(|s| s.key.as_ref().map(|k| k.to_string()))
                .collect::<Vec<_>>()
                .join(","),
        )
        .with("files", summary.total)
        .with("failed_files", summary.failed),
    )
    .map_err(|e| {
        e.audit_done(format!(
            "the verification of {} {} but was not logged, so it does not count",
            shown(&args.list),
            if ok { "passed" } else { "failed" }
        ))
    });
    // The first failing file's code stands for the whole run; a run that
    // could not be logged does not count, whatever the files said.
    let code = match &logged {
        Err(e) => e.code(),
        Ok(()) => summary.first_code.unwrap_or(Code::ChecksumMismatch),
    };
    let counts = ok && logged.is_ok();
    let mut tail = || -> std::io::Result<()> {
        if args.json {
            write!(
                out,
                "],\"malformed_lines\":[],\"failed\":{},\"ok\":{counts},\"verified\":{counts}",
                summary.failed
            )?;
            if !counts {
                write!(out, ",\"code\":{}", serde_json::Value::from(code.as_str()))?;
            }
            if let Err(e) = &logged {
                write!(
                    out,
                    ",\"error\":{}",
                    serde_json::Value::from(one_line(&message(e)))
                )?;
            }
            if let Some(c) = &cache {
                let (hits, misses) = c.stats();
                write!(
                    out,
                    ",\"cache\":{}",
                    json!({"hits": hits, "misses": misses, "skipped": c.skipped()})
                )?;
            }
            out.write_all(b"}\n")?;
        }
        out.flush()
    };
    let written = tail().map_err(stdout_error);
    if args.json {
        json_printed();
    }
    written?;
    drop(out);
    logged?;
    if !(args.json || (args.quiet && ok)) {
        let signers = verified.report().signers_block();
        let (count, lines) = signers.split_once('\n').unwrap_or((&signers, ""));
        eprintln!(
            "{}: list signed by {count}; {} of {} files OK",
            shown(&args.list),
            summary.total - summary.failed,
            summary.total
        );
        if !lines.is_empty() {
            eprintln!("{lines}");
        }
    }
    if !ok {
        return Err(CliError::ItemsFailed {
            failed: summary.failed,
            total: summary.total,
            what: "files",
            code,
            exit: 1,
        });
    }
    Ok(())
}

/// A `NAME: OK` or `NAME: FAILED (why)` line. The name is escaped as
/// `sha256sum --check` escapes it, so that a name holding a newline cannot
/// print as two lines (one of them `...: OK`).
fn human_line(f: &FileResult) -> Vec<u8> {
    let (escaped, name) = pkgsign::release::checksum::display_name(f.name.as_bytes());
    let mut line = Vec::with_capacity(name.len() + 16);
    if escaped {
        line.push(b'\\');
    }
    line.extend_from_slice(&name);
    if f.ok {
        line.extend_from_slice(b": OK\n");
    } else {
        line.extend_from_slice(format!(": FAILED ({})\n", f.detail).as_bytes());
    }
    line
}

/// Writing to standard output failed (a closed pipe, a full disk).
fn stdout_error(e: std::io::Error) -> Error {
    Error::File(FileError::Io {
        path: "standard output".into(),
        action: "writing",
        source: e,
    })
}

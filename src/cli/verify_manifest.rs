//! `pkgsign verify-manifest`: a signed checksum list and every file in it.

use std::path::PathBuf;

use pkgsign::Error;
use pkgsign::audit::Event;
use pkgsign::cache::Cache;
use pkgsign::manifest::{self, Options};
use pkgsign::signer::VerifyOptions;
use serde_json::json;

use super::common::{AuditArgs, PermArgs, audit, load_trust};
use super::{print_json, shown};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Verifies the signature over the checksum list LIST (default LIST.sig) \
exactly as verify-package does (trusted keys, windows, --threshold), then every file the list \
names, relative to LIST's directory, in parallel. A name that is absolute or climbs out of that \
directory is refused and never opened. Publish a list with:\n  \
sha256sum * > SHA256SUMS && pkgsign sign-package --package SHA256SUMS --private-key KEY\n\n\
Exit codes: 0 the list is authentic and every file matches; 1 refused (signature or any file); \
2 could not run."
)]
pub struct Args {
    /// The checksum list (GNU, BSD/signify or pkgsign lines).
    #[arg(value_name = "LIST")]
    list: PathBuf,
    /// The list's signature (default: LIST.sig).
    #[arg(long, value_name = "SIG")]
    signature: Option<PathBuf>,
    /// A trusted public key; repeat for several.
    #[arg(long = "public-key", value_name = "PUB")]
    public_keys: Vec<PathBuf>,
    /// Trust every *.pub in DIR.
    #[arg(long, value_name = "DIR", required_unless_present = "public_keys")]
    trusted_keys: Option<PathBuf>,
    /// Number of distinct trusted keys that must have signed the list.
    #[arg(long, default_value_t = 1, value_name = "N")]
    threshold: usize,
    /// Hash with N threads (default: all cores).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Remember digests by file stat signature in FILE (see SECURITY.md).
    #[arg(long, value_name = "FILE")]
    cache: Option<PathBuf>,
    /// Do not print OK lines.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    audit: AuditArgs,
    #[command(flatten)]
    perms: PermArgs,
    /// Print the outcome as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<(), Error> {
    args.perms.apply();
    // Every verification is a security event: one that cannot be logged
    // is not made.
    let log = args.audit.open()?;
    let trust = load_trust(&args.public_keys, args.trusted_keys.as_deref())?;
    let signature = args
        .signature
        .clone()
        .unwrap_or_else(|| pkgsign::fsutil::sig_path_for(&args.list));
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
            ..VerifyOptions::default()
        },
    };
    let result = manifest::verify_manifest(&args.list, &signature, &trust, &opts);
    for w in trust.late_warnings() {
        eprintln!("warning: {w}");
    }
    let (verified, report) = match result {
        Ok(v) => v,
        Err(e) => {
            audit(
                log.as_ref(),
                Event::new("signature_verification_failure")
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
            })?;
            return Err(e);
        }
    };
    super::verify_package::warn_uncounted(&args.list, verified.report());
    if let Some(c) = &cache
        && let Err(e) = c.save()
    {
        eprintln!(
            "warning: could not save the cache: {}",
            super::one_line(&e.to_string())
        );
    }
    let ok = report.failed == 0;
    audit(
        log.as_ref(),
        Event::new(if ok {
            "signature_verification_success"
        } else {
            "signature_verification_failure"
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
        .with("files", report.files.len())
        .with("failed_files", report.failed),
    )
    .map_err(|e| {
        e.audit_done(format!(
            "the verification of {} {} but was not logged, so it does not count",
            shown(&args.list),
            if ok { "passed" } else { "failed" }
        ))
    })?;
    // The first failing file's code stands for the whole run.
    let code = report
        .files
        .iter()
        .find_map(|f| f.code)
        .unwrap_or("CHECKSUM_MISMATCH");
    if args.json {
        let mut v = json!({
            "ok": ok,
            "verified": ok,
            "list": shown(&args.list),
            "signers": verified.signers().collect::<Vec<_>>(),
        });
        if !ok {
            v["code"] = json!(code);
        }
        if let (Some(m), Ok(serde_json::Value::Object(extra))) =
            (v.as_object_mut(), serde_json::to_value(&report))
        {
            m.extend(extra);
        }
        if let Some(c) = &cache {
            let (hits, misses) = c.stats();
            v["cache"] = json!({"hits": hits, "misses": misses, "skipped": c.skipped()});
        }
        print_json(&v);
    } else {
        for f in &report.files {
            // Escaped as `sha256sum --check` does, so that a name holding a
            // newline cannot print as two lines (one of them `...: OK`).
            let (escaped, name) = pkgsign::checksum::display_name(f.name.as_bytes());
            let name = format!(
                "{}{}",
                if escaped { "\\" } else { "" },
                String::from_utf8_lossy(&name)
            );
            if f.ok {
                if !args.quiet {
                    println!("{name}: OK");
                }
            } else {
                println!("{name}: FAILED ({})", f.detail);
            }
        }
        if !report.malformed_lines.is_empty() {
            eprintln!(
                "warning: {} line(s) of the list are not well formed and were skipped: {:?}",
                report.malformed_lines.len(),
                report.malformed_lines
            );
        }
        eprintln!(
            "{}: list signed by {}; {} of {} files OK",
            shown(&args.list),
            verified.report().signers_line(),
            report.files.len() - report.failed,
            report.files.len()
        );
    }
    if !ok {
        return Err(Error::ItemsFailed {
            failed: report.failed,
            total: report.files.len(),
            what: "files",
            code,
            exit: 1,
        });
    }
    Ok(())
}

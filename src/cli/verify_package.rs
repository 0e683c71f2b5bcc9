//! `pkgsign verify-package`: verify a package.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pkgsign::digest::cache::{Cache, CacheUse, Skip};
use rayon::prelude::*;

use pkgsign::audit::{AuditEvent, AuditLog, Event};
use pkgsign::digest::Digest;
use pkgsign::error::{Code, Error};
use pkgsign::sign::report::{ChecksumMatched, Report, Verified};
use pkgsign::trust::TrustStore;
use pkgsign::verify::staged::{Source, stage_and_verify};
use pkgsign::verify::{self, VerifyOptions};
use serde_json::{Value, json};

use pkgsign::config::Config;

use super::common::{
    GuardArgs, ReleaseArgs, audit, load_trust, or_config, parse_size, worker_trust,
};
use super::error::{CliError, message};
use super::{print_json, shown};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 authentic and signed by enough keys trusted now; \
1 refused (bad or malformed signature, untrusted, expired or revoked key, digest mismatch, \
too few valid signatures); 2 could not run (usage, missing or unreadable file, including a \
missing .sig, unparseable key)."
)]
pub struct Args {
    /// The package to verify; repeat to verify several in parallel (each
    /// against its own FILE.sig).
    #[arg(long, value_name = "FILE", required = true)]
    package: Vec<PathBuf>,
    /// The signature file (default: FILE.sig). pkgsign and raw formats are both read.
    #[arg(long, value_name = "SIG")]
    signature: Option<PathBuf>,
    /// A trusted public key; repeat for several. Without this and
    /// --trusted-keys: [worker] public_keys and trusted_keys of the --config
    /// file.
    #[arg(long = "public-key", value_name = "PUB")]
    public_keys: Vec<PathBuf>,
    /// Trust every *.pub in DIR.
    #[arg(long, value_name = "DIR")]
    trusted_keys: Option<PathBuf>,
    /// Number of distinct trusted keys that must have signed.
    #[arg(long, default_value_t = 1, value_name = "N")]
    threshold: usize,
    /// The namespace an SSH signature must carry (`ssh-keygen -Y sign -n`).
    #[arg(long, value_name = "NS", default_value = "pkgsign")]
    namespace: String,
    #[command(flatten)]
    release: ReleaseArgs,
    /// Write the verified bytes to FILE (atomically: temp file, fsync,
    /// rename), read once: the package is copied into a private staging
    /// file as it is hashed, and only that copy is written. With
    /// `--package -` this is how a pipeline gets what was verified.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Refuse a package larger than this when it is staged (`--package -`
    /// or --output): 512M, 8G, or bytes.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "16G")]
    max_size: u64,
    /// Also require this digest (ALGO:HEX; a bare HEX means sha256), checked
    /// before the signatures count. With no key given, only the digest is checked.
    #[arg(long, value_name = "ALGO:HEX")]
    checksum: Option<String>,
    /// Remember digests by file stat signature in FILE; only hashing is
    /// skipped (see SECURITY.md) [default: [worker] cache of the --config
    /// file, else no cache].
    #[arg(long, value_name = "FILE")]
    cache: Option<PathBuf>,
    /// Verify several packages with N threads (default: all cores).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Print nothing on success and draw no progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
    #[command(flatten)]
    guard: GuardArgs,
    /// Print the outcome as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// What one package's check gave.
enum Outcome {
    /// Signatures, trusted now, met the threshold.
    Signed(Verified),
    /// Only the digest was checked (no key given).
    Checksum(ChecksumMatched),
}

impl Outcome {
    fn report(&self) -> std::borrow::Cow<'_, Report> {
        match self {
            Outcome::Signed(v) => std::borrow::Cow::Borrowed(v.report()),
            Outcome::Checksum(c) => std::borrow::Cow::Owned(c.report()),
        }
    }
}

pub fn run(mut args: Args, config: Option<&Config>) -> Result<(), CliError> {
    worker_trust(&mut args.public_keys, &mut args.trusted_keys, config);
    args.cache = or_config(&args.cache, config, |c| &c.worker.cache);
    // Every verification is a security event: one that cannot be logged
    // is not made.
    let log = args.guard.open()?;
    let checksum = args
        .checksum
        .as_deref()
        .map(|c| Digest::parse(c, true))
        .transpose()?;
    if let Some(c) = &checksum
        && c.alg().is_insecure()
    {
        eprintln!(
            "warning: {} is insecure; it proves nothing against tampering",
            c.alg()
        );
    }
    let several = args.package.len() > 1;
    if several && (args.signature.is_some() || checksum.is_some()) {
        return Err(CliError::Usage(
            "--signature and --checksum apply to one package; with several --package each is checked against its own FILE.sig".into(),
        ));
    }
    let keys_given = !args.public_keys.is_empty() || args.trusted_keys.is_some();
    let stdin = args.package.iter().any(|p| p.as_os_str() == "-");
    if (stdin || args.output.is_some())
        && (several || !keys_given || (stdin && args.signature.is_none()))
    {
        return Err(CliError::Usage(
            "--package - and --output verify one package, read once, against its signature: give one --package, --signature SIG (always, with --package -) and --public-key or --trusted-keys".into(),
        ));
    }
    // One package's signature file: only the keys it names are looked for
    // in a trusted-keys directory.
    let sig_file = match (&args.signature, args.package.as_slice()) {
        (Some(sig), _) => Some(sig.clone()),
        (None, [package]) => Some(pkgsign::fsutil::sig_path_for(package)),
        _ => None,
    };
    let trust = if keys_given {
        load_trust(
            &args.public_keys,
            args.trusted_keys.as_deref(),
            sig_file.as_deref(),
        )?
    } else {
        TrustStore::new()
    };
    if !keys_given && checksum.is_none() {
        return Err(CliError::Usage(
            "nothing to verify against: give --public-key PUB, --trusted-keys DIR, or --checksum ALGO:HEX"
                .into(),
        ));
    }
    if !keys_given && args.release.any() {
        return Err(CliError::Usage(
            "--name and --min-version check what a signature says: give --public-key or --trusted-keys"
                .into(),
        ));
    }
    let cache = args.cache.as_deref().map(|p| Arc::new(Cache::open(p)));
    let opts = VerifyOptions {
        threshold: args.threshold,
        checksum,
        now: std::time::SystemTime::now(),
        cache: cache.clone(),
        progress: None,
        name: args.release.name.clone(),
        min_version: args.release.min_version.clone(),
        namespace: Some(args.namespace.clone()),
    };
    let verify_one = |package: &PathBuf| {
        let signature = keys_given.then(|| {
            args.signature
                .clone()
                .unwrap_or_else(|| pkgsign::fsutil::sig_path_for(package))
        });
        let bar = (!several)
            .then(|| super::progress::for_file(package, args.quiet, args.json))
            .flatten();
        let opts = VerifyOptions {
            progress: bar.as_ref().map(|(p, _)| p.clone()),
            ..opts.clone()
        };
        // With a key: a proof of who signed. Without: the digest alone.
        // Standard input, or bytes to be written out, are staged: read
        // once, verified over the copy, and only the copy is used.
        let mut staged = None;
        let result = match (&signature, &opts.checksum) {
            (Some(sig), _) if stdin || args.output.is_some() => {
                let source = if stdin {
                    Source::Stdin
                } else {
                    Source::Path(package)
                };
                let dir = args
                    .output
                    .as_deref()
                    .map(pkgsign::fsutil::parent_dir)
                    .unwrap_or_else(std::env::temp_dir);
                let opts = VerifyOptions {
                    cache: None,
                    ..opts.clone()
                };
                stage_and_verify(source, package, &dir, args.max_size, sig, &trust, &opts)
                    .map(|(v, s)| {
                        staged = Some(s);
                        Outcome::Signed(v)
                    })
                    .map_err(CliError::from)
            }
            (None, Some(expected)) => verify::verify_checksum(package, expected, &opts)
                .map(Outcome::Checksum)
                .map_err(CliError::from),
            _ => verify::verify_package(package, signature.as_deref(), &trust, &opts)
                .map(Outcome::Signed)
                .map_err(CliError::from),
        };
        if let Ok(Outcome::Signed(v)) = &result {
            warn_uncounted(package, v.report());
        }
        // A verification that could not be logged does not count.
        audit_verification(log.as_ref(), package, &result).map_err(|e| {
            e.audit_done(match &result {
                Ok(_) => format!(
                    "the verification of {} passed but was not logged, so it does not count",
                    shown(package)
                ),
                Err(v) => format!(
                    "the verification of {} failed ({}) and was not logged",
                    shown(package),
                    v.code()
                ),
            })
        })?;
        // Only a verified, logged copy is written out.
        if let (Some(s), Some(out)) = (staged, &args.output) {
            s.persist(out, 0o644)?;
        }
        result
    };
    let results: Vec<Result<Outcome, CliError>> = if several {
        let mut pool = rayon::ThreadPoolBuilder::new();
        if let Some(n) = args.jobs {
            pool = pool.num_threads(n.max(1));
        }
        let pool = pool
            .build()
            .map_err(|e| CliError::Usage(format!("--jobs: {e}")))?;
        pool.install(|| args.package.par_iter().map(verify_one).collect())
    } else {
        args.package.iter().map(verify_one).collect()
    };
    for w in trust.late_warnings() {
        eprintln!("warning: {w}");
    }
    if let Some(c) = &cache
        && let Err(e) = c.save()
    {
        eprintln!(
            "warning: could not save the cache: {}",
            super::one_line(&message(&e))
        );
    }
    // With --json and --cache, say how many digests came from the cache.
    let cache_stats = cache.as_ref().map(|c| {
        let (hits, misses) = c.stats();
        let skipped = c.skipped();
        let mut stats = json!({"hits": hits, "misses": misses, "skipped": skipped});
        // One package: say whether the cache was used for it, and if not, why.
        if !several {
            stats["status"] = json!(match (hits, skipped) {
                (1.., _) => CacheUse::Hit,
                (_, 1..) => CacheUse::Skipped(Skip::WritableByOthers),
                _ => CacheUse::Miss,
            });
        }
        stats
    });
    if !several {
        let Some(result) = results.into_iter().next() else {
            return Ok(());
        };
        let verified = result?;
        print_verified(&args, &args.package[0], &verified, keys_given, cache_stats);
        return Ok(());
    }
    // Several packages: one line (or JSON entry) each, and the worst exit code.
    let mut entries = Vec::new();
    let mut failed = 0;
    let mut worst = 0u8;
    let mut first_code = None;
    for (package, result) in args.package.iter().zip(&results) {
        match result {
            Ok(v) => {
                if args.json {
                    let mut obj = json!({"package": shown(package), "verified": true});
                    merge(&mut obj, &v.report());
                    entries.push(obj);
                } else {
                    print_verified(&args, package, v, keys_given, None);
                }
            }
            Err(e) => {
                failed += 1;
                worst = worst.max(e.exit_code());
                first_code.get_or_insert(e.code());
                if args.json {
                    let mut obj = json!({"package": shown(package), "verified": false,
                        "code": e.code(), "error": super::one_line(&e.to_string())});
                    if let Some(r) = e.report() {
                        merge(&mut obj, r);
                    }
                    entries.push(obj);
                } else {
                    println!(
                        "FAILED {}: {}",
                        shown(package),
                        super::one_line(&e.to_string())
                    );
                }
            }
        }
    }
    if args.json {
        let mut obj = json!({"ok": failed == 0, "verified": failed == 0, "packages": entries});
        if let Some(code) = first_code {
            obj["code"] = json!(code);
        }
        if let Some(c) = cache_stats {
            obj["cache"] = c;
        }
        print_json(&obj);
    }
    if failed > 0 {
        return Err(CliError::ItemsFailed {
            failed,
            total: args.package.len(),
            what: "packages",
            code: first_code.unwrap_or(Code::SignatureInvalid),
            exit: worst,
        });
    }
    Ok(())
}

fn merge(obj: &mut Value, report: &Report) {
    if let (Value::Object(map), Ok(Value::Object(extra))) = (obj, serde_json::to_value(report)) {
        for (k, v) in extra {
            map.entry(k).or_insert(v);
        }
    }
}

fn print_verified(
    args: &Args,
    package: &Path,
    verified: &Outcome,
    keys_given: bool,
    cache_stats: Option<Value>,
) {
    let report = verified.report();
    let report = report.as_ref();
    if args.json {
        let mut obj = json!({ "ok": true, "verified": true });
        if let Some(c) = cache_stats {
            obj["cache"] = c;
        }
        merge(&mut obj, report);
        print_json(&obj);
    } else if args.quiet {
    } else if keys_given {
        println!(
            "verified {}: signed by {}",
            shown(package),
            report.signers_block()
        );
    } else {
        println!(
            "verified {}: digest {} matches",
            shown(package),
            report.package_hash.as_deref().unwrap_or("")
        );
    }
}

/// A verification that passed while other signatures of the same file did
/// not count: say so on stderr (the JSON output lists every signature).
pub(super) fn warn_uncounted(package: &Path, report: &Report) {
    let total = report.signatures.len();
    for s in report.signatures.iter().filter(|s| !s.is_valid()) {
        let key = s
            .key
            .as_ref()
            .map(|k| format!(" (key {k})"))
            .unwrap_or_default();
        eprintln!(
            "warning: {}: signature {} of {total}{key} did not count: {}",
            shown(package),
            s.index,
            super::one_line(&s.reason)
        );
    }
}

/// One audit line per signature examined (or one for the whole refusal).
fn audit_verification(
    log: Option<&AuditLog>,
    package: &Path,
    result: &Result<Outcome, CliError>,
) -> Result<(), Error> {
    if log.is_none() {
        return Ok(());
    }
    let base = |event: AuditEvent, report: Option<&Report>| {
        Event::new(event)
            .with("package", shown(package))
            .with("package_hash", report.and_then(|r| r.package_hash.clone()))
    };
    match result {
        Ok(Outcome::Checksum(c)) => {
            audit(
                log,
                base(AuditEvent::ChecksumVerificationSuccess, Some(&c.report())),
            )?;
        }
        Ok(Outcome::Signed(v)) => {
            for event in verify::audit_events(v.report(), None, |e| base(e, Some(v.report()))) {
                audit(log, event)?;
            }
        }
        Err(CliError::Verify(pkgsign::verify::VerifyError::Refused(r))) => {
            let reason = super::error::refused_message(r);
            for event in verify::audit_events(r, Some(reason), |e| base(e, Some(r))) {
                audit(log, event)?;
            }
        }
        Err(e) => audit(
            log,
            base(AuditEvent::SignatureVerificationFailure, None)
                .with("code", e.code())
                .with("reason", e.to_string()),
        )?,
    }
    Ok(())
}

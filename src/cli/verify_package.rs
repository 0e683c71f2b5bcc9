//! `pkgsign verify-package`: verify a package.

use std::path::{Path, PathBuf};

use pkgsign::Error;
use pkgsign::audit::{AuditLog, Event};
use pkgsign::digest::Digest;
use pkgsign::report::{Report, Verified};
use pkgsign::signer::{self, VerifyOptions};
use pkgsign::trust::TrustStore;
use serde_json::{Value, json};

use super::common::{AuditArgs, audit, load_trust};
use super::{print_json, shown};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 authentic and signed by enough keys trusted now; \
1 refused (bad or malformed signature, untrusted, expired or revoked key, digest mismatch, \
too few valid signatures); 2 could not run (usage, missing or unreadable file, including a \
missing .sig, unparseable key)."
)]
pub struct Args {
    /// The package to verify.
    #[arg(long, value_name = "FILE")]
    package: PathBuf,
    /// The signature file (default: FILE.sig). pkgsign and raw formats are both read.
    #[arg(long, value_name = "SIG")]
    signature: Option<PathBuf>,
    /// A trusted public key; repeat for several.
    #[arg(long = "public-key", value_name = "PUB")]
    public_keys: Vec<PathBuf>,
    /// Trust every *.pub in DIR.
    #[arg(long, value_name = "DIR")]
    trusted_keys: Option<PathBuf>,
    /// Number of distinct trusted keys that must have signed.
    #[arg(long, default_value_t = 1, value_name = "N")]
    threshold: usize,
    /// Also require this digest (ALGO:HEX; a bare HEX means sha256). With no
    /// key given, only the digest is checked.
    #[arg(long, value_name = "ALGO:HEX")]
    checksum: Option<String>,
    #[command(flatten)]
    audit: AuditArgs,
    /// Print the outcome as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<(), Error> {
    let checksum = args
        .checksum
        .as_deref()
        .map(|c| Digest::parse(c, true))
        .transpose()?;
    let keys_given = !args.public_keys.is_empty() || args.trusted_keys.is_some();
    let trust = if keys_given {
        load_trust(&args.public_keys, args.trusted_keys.as_deref())?
    } else {
        TrustStore::new()
    };
    if !keys_given && checksum.is_none() {
        return Err(Error::Usage(
            "nothing to verify against: give --public-key PUB, --trusted-keys DIR, or --checksum ALGO:HEX"
                .into(),
        ));
    }
    let signature = keys_given.then(|| {
        args.signature
            .clone()
            .unwrap_or_else(|| pkgsign::fsutil::sig_path_for(&args.package))
    });
    let opts = VerifyOptions {
        threshold: args.threshold,
        checksum,
        now: std::time::SystemTime::now(),
    };
    let log = args.audit.log();
    let result = signer::verify_package(&args.package, signature.as_deref(), &trust, &opts);
    for w in trust.late_warnings() {
        eprintln!("warning: {w}");
    }
    audit_verification(log.as_ref(), &args.package, &result);
    let verified = result?;
    let report = verified.report();
    if args.json {
        let mut obj = json!({ "ok": true, "verified": true });
        if let (Value::Object(map), Ok(Value::Object(extra))) =
            (&mut obj, serde_json::to_value(report))
        {
            map.extend(extra);
        }
        print_json(&obj);
    } else if keys_given {
        println!(
            "verified {}: signed by {}",
            shown(&args.package),
            report.signers_line()
        );
    } else {
        println!(
            "verified {}: digest {} matches",
            shown(&args.package),
            report.package_hash.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

/// One audit line per signature examined (or one for the whole refusal).
fn audit_verification(log: Option<&AuditLog>, package: &Path, result: &Result<Verified, Error>) {
    if log.is_none() {
        return;
    }
    let base = |event: &str, report: Option<&Report>| {
        Event::new(event)
            .with("package", shown(package))
            .with("package_hash", report.and_then(|r| r.package_hash.clone()))
    };
    match result {
        Ok(v) => {
            for s in v.signers() {
                audit(
                    log,
                    base("signature_verification_success", Some(v.report()))
                        .with("algorithm", s.algorithm.clone())
                        .with("key", s.key.as_ref().map(|k| k.to_string()))
                        .with("signed_at", s.signed_at.clone()),
                );
            }
            if v.report().signatures.is_empty() {
                audit(log, base("checksum_verification_success", Some(v.report())));
            }
        }
        Err(Error::Refused(r)) => {
            for s in &r.signatures {
                let event = if s.is_valid() {
                    "signature_verification_success"
                } else {
                    "signature_verification_failure"
                };
                audit(
                    log,
                    base(event, Some(r))
                        .with("algorithm", s.algorithm.clone())
                        .with("key", s.key.as_ref().map(|k| k.to_string()))
                        .with("code", s.refusal.map(|c| c.code()))
                        .with("reason", s.reason.clone()),
                );
            }
            if r.signatures.is_empty() {
                audit(
                    log,
                    base("signature_verification_failure", Some(r))
                        .with("code", r.code())
                        .with("reason", r.to_string()),
                );
            }
        }
        Err(e) => audit(
            log,
            base("signature_verification_failure", None)
                .with("code", e.code())
                .with("reason", e.to_string()),
        ),
    }
}

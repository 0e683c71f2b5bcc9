//! `pkgsign trust`: manage a trusted-keys directory.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use pkgsign::Error;
use pkgsign::audit::{AuditEvent, Event};
use pkgsign::keys::{Fingerprint, encoding};
use pkgsign::trust::dir::TrustDir;
use pkgsign::trust::lineage::{self, Decision, Statement};
use serde_json::json;

use super::common::{AuditArgs, audit, now, parse_fingerprint, parse_time, print_warnings};
use super::error::CliError;
use super::{KeyArgs, print_json, shown};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "The directory holds *.pub files and trust.toml (windows, names, revocations); \
see docs/trust-directory.md. A .pub dropped in by hand is trusted with no time limit.\n\n\
Exit codes: 0 done; 1 `update` refused a statement; 2 could not run."
)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    /// Print the outcome as one JSON object on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing on success (warnings and errors still go to stderr).
    #[arg(long, short = 'q', global = true)]
    quiet: bool,
    /// Accept a trusted-keys directory (or key file in it) that group or
    /// others may write. Without it such a directory is refused, as ssh's
    /// StrictModes does: whoever can write it chooses the keys.
    #[arg(long, global = true)]
    insecure_permissions: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Trust a public key, optionally only inside a window.
    Add {
        /// The trusted-keys directory.
        tdir: PathBuf,
        /// The public key file to add.
        key: PathBuf,
        /// Name of the key (default: the file's stem).
        #[arg(long)]
        name: Option<String>,
        /// Not valid before this time (RFC 3339).
        #[arg(long, value_parser = parse_time, value_name = "T")]
        not_before: Option<u64>,
        /// Not valid after this time (RFC 3339).
        #[arg(long, value_parser = parse_time, value_name = "T")]
        not_after: Option<u64>,
        #[command(flatten)]
        audit: AuditArgs,
    },
    /// List the keys with their window and state.
    List {
        /// The trusted-keys directory.
        tdir: PathBuf,
    },
    /// Revoke a key at once. Revocation always wins and is never undone.
    Revoke {
        /// The trusted-keys directory.
        tdir: PathBuf,
        /// The key's fingerprint (SHA256:...).
        #[arg(value_parser = parse_fingerprint)]
        fingerprint: Fingerprint,
        /// Why.
        #[arg(long, default_value = "revoked by operator")]
        reason: String,
        /// Sign a revocation statement with this private key (a key file, or
        /// a key on a token: a `pkcs11:` URI or a NAME.pkcs11 pointer), for
        /// workers' `trust update`.
        #[arg(long, value_name = "KEY")]
        sign_with: Option<PathBuf>,
        /// Where to write the statement (default: TDIR/lineage).
        #[arg(long, value_name = "DIR", requires = "sign_with")]
        publish_dir: Option<PathBuf>,
        #[command(flatten)]
        unlock: KeyArgs,
        #[command(flatten)]
        audit: AuditArgs,
    },
    /// Remove a key's .pub and entry (a revoked key stays revoked).
    Remove {
        /// The trusted-keys directory.
        tdir: PathBuf,
        /// The key's fingerprint (SHA256:...).
        #[arg(value_parser = parse_fingerprint)]
        fingerprint: Fingerprint,
        #[command(flatten)]
        audit: AuditArgs,
    },
    /// Show, or set, how many independent principals a package (and a
    /// change of keys through `update`) needs in this directory.
    Threshold {
        /// The trusted-keys directory.
        tdir: PathBuf,
        /// The new threshold (at least 1); omit to show the current one.
        n: Option<u32>,
        #[command(flatten)]
        audit: AuditArgs,
    },
    /// Add your cosignature to a key statement, as the head of another
    /// lineage, so that directories with a threshold above 1 apply it.
    Cosign {
        /// The statement file (*.stmt); rewritten in place, atomically.
        statement: PathBuf,
        /// Your current private key: a key file, or a key on a token (a
        /// `pkcs11:` URI or a NAME.pkcs11 pointer).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
        #[command(flatten)]
        unlock: KeyArgs,
        #[command(flatten)]
        audit: AuditArgs,
    },
    /// Follow rotations and revocations: apply the signed statements in DIR
    /// that chain from a key already trusted.
    Update {
        /// The trusted-keys directory.
        tdir: PathBuf,
        /// Directory of published statements (*.stmt).
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        #[command(flatten)]
        audit: AuditArgs,
    },
}

pub fn run(args: Args, config: Option<&pkgsign::config::Config>) -> Result<(), CliError> {
    let json = args.json;
    let quiet = args.quiet;
    if args.insecure_permissions {
        pkgsign::trust::perms::allow_insecure_permissions_for_this_process();
    }
    match args.command {
        Command::Add {
            tdir,
            key,
            name,
            not_before,
            not_after,
            audit: audit_args,
        } => {
            let log = audit_args.open()?;
            check_existing(&tdir)?;
            let public = encoding::load_public_key(&key)?;
            let name = name.unwrap_or_else(|| {
                key.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "key".into())
            });
            let fp = public.fingerprint();
            let mut warnings = Vec::new();
            if let Some(na) = not_after.filter(|na| *na < now()) {
                warnings.push(format!(
                    "--not-after {} is in the past: key {fp} is added but already expired, so it verifies nothing",
                    pkgsign::text::format_time(na)
                ));
            }
            let mut t = TrustDir::open(&tdir)?;
            let path = t.add(&public, &name, not_before, not_after)?;
            print_warnings(&warnings);
            audit(
                log.as_ref(),
                Event::new(AuditEvent::KeyTrusted)
                    .with("key", fp.to_string())
                    .with("name", name.clone())
                    .with("algorithm", public.algorithm().to_string())
                    .with("not_before", not_before.map(pkgsign::text::format_time))
                    .with("not_after", not_after.map(pkgsign::text::format_time))
                    .with("trusted_keys", shown(&tdir)),
            )
            .map_err(|e| e.audit_done(format!("key {fp} was added to {}", shown(&tdir))))?;
            if json {
                print_json(
                    &json!({"ok": true, "fingerprint": fp.to_string(), "name": name, "file": shown(&path), "warnings": warnings}),
                );
            } else if !quiet {
                println!(
                    "trusted {fp} ({name}, {}) as {}",
                    public.algorithm(),
                    shown(&path)
                );
            }
        }
        Command::List { tdir } => {
            // Listing never creates the directory: a mistyped path is an
            // error, not "no trusted keys".
            require_dir(&tdir)?;
            let t = TrustDir::open(&tdir)?;
            let (keys, warnings) = t.list(now())?;
            print_warnings(&warnings);
            if json {
                print_json(&json!({"ok": true, "keys": keys}));
            } else if quiet {
            } else if keys.is_empty() {
                println!("no trusted keys in {}", shown(&tdir));
            } else {
                for k in keys {
                    println!(
                        "{}  {:<20} {:<10} {}",
                        k.fingerprint, k.name, k.algorithm, k.detail
                    );
                }
            }
        }
        Command::Revoke {
            tdir,
            fingerprint,
            reason,
            sign_with,
            publish_dir,
            unlock,
            audit: audit_args,
        } => {
            let log = audit_args.open()?;
            check_existing(&tdir)?;
            let key = sign_with
                .as_deref()
                .map(|k| unlock.load(k, config))
                .transpose()?;
            let revoked = pkgsign::trust::revoke::revoke(
                &tdir,
                &fingerprint,
                &reason,
                key.as_deref(),
                publish_dir.as_deref(),
                now(),
            )?;
            let (changed, published, warnings) =
                (revoked.changed, revoked.statement, revoked.warnings);
            print_warnings(&warnings);
            audit(
                log.as_ref(),
                Event::new(AuditEvent::KeyRevoked)
                    .with("key", fingerprint.to_string())
                    .with("reason", reason.clone())
                    .with("trusted_keys", shown(&tdir)),
            )
            .map_err(|e| {
                e.audit_done(format!("key {fingerprint} is revoked in {}", shown(&tdir)))
            })?;
            if json {
                print_json(
                    &json!({"ok": true, "fingerprint": fingerprint.to_string(), "changed": changed,
                    "statement": published.as_ref().map(|p| shown(p)), "warnings": warnings}),
                );
            } else if !quiet {
                println!(
                    "{} {fingerprint}: {reason}",
                    if changed {
                        "revoked"
                    } else {
                        "already revoked"
                    }
                );
                if let Some(p) = published {
                    println!("published {}", shown(&p));
                }
            }
        }
        Command::Remove {
            tdir,
            fingerprint,
            audit: audit_args,
        } => {
            let log = audit_args.open()?;
            require_dir(&tdir)?;
            check_existing(&tdir)?;
            let mut t = TrustDir::open(&tdir)?;
            let n = t.remove(&fingerprint)?;
            audit(
                log.as_ref(),
                Event::new(AuditEvent::KeyRemoved)
                    .with("key", fingerprint.to_string())
                    .with("files_removed", n)
                    .with("trusted_keys", shown(&tdir)),
            )
            .map_err(|e| {
                e.audit_done(format!(
                    "key {fingerprint} was removed from {}",
                    shown(&tdir)
                ))
            })?;
            if json {
                print_json(
                    &json!({"ok": true, "fingerprint": fingerprint.to_string(), "files_removed": n}),
                );
            } else if !quiet {
                println!(
                    "removed {fingerprint} ({n} file{})",
                    if n == 1 { "" } else { "s" }
                );
            }
        }
        Command::Threshold {
            tdir,
            n,
            audit: audit_args,
        } => {
            let log = audit_args.open()?;
            require_dir(&tdir)?;
            check_existing(&tdir)?;
            let mut t = TrustDir::open(&tdir)?;
            if let Some(n) = n {
                let before = t.meta().threshold().unwrap_or(1);
                if n == 0 {
                    return Err(CliError::Usage("the threshold must be at least 1".into()));
                }
                t.set_threshold(n)?;
                audit(
                    log.as_ref(),
                    Event::new(AuditEvent::TrustThresholdChanged)
                        .with("from", before)
                        .with("to", n)
                        .with("trusted_keys", shown(&tdir)),
                )
                .map_err(|e| {
                    e.audit_done(format!("the threshold of {} was set to {n}", shown(&tdir)))
                })?;
            }
            let current = t.meta().threshold().unwrap_or(1);
            if json {
                print_json(&json!({"ok": true, "threshold": current}));
            } else if !quiet {
                println!(
                    "{}: a package needs valid signatures of {current} independent principal{}",
                    shown(&tdir),
                    if current == 1 { "" } else { "s" }
                );
            }
        }
        Command::Cosign {
            statement,
            key,
            unlock,
            audit: audit_args,
        } => {
            let log = audit_args.open()?;
            let key = unlock.load(&key, config)?;
            let mut st = Statement::read(&statement)?;
            st.cosign(key.as_ref())?;
            pkgsign::fsutil::write_atomic(
                &statement,
                st.to_text().as_bytes(),
                0o644,
                pkgsign::fsutil::Replace::Allowed,
            )?;
            let fp = key.public_key().fingerprint();
            audit(
                log.as_ref(),
                Event::new(AuditEvent::StatementCosigned)
                    .with("statement", shown(&statement))
                    .with("key", fp.to_string())
                    .with("algorithm", key.public_key().statement_scheme())
                    .with("detail", st.summary()),
            )
            .map_err(|e| e.audit_done(format!("{} was cosigned by {fp}", shown(&statement))))?;
            if json {
                print_json(&json!({"ok": true, "statement": shown(&statement),
                    "cosigner": fp.to_string(), "cosignatures": st.cosignatures.len()}));
            } else if !quiet {
                println!("cosigned {} with {fp}: {}", shown(&statement), st.summary());
            }
        }
        Command::Update {
            tdir,
            from,
            audit: audit_args,
        } => {
            let log = audit_args.open()?;
            require_dir(&tdir)?;
            check_existing(&tdir)?;
            let mut t = TrustDir::open(&tdir)?;
            let results = lineage::update(&mut t, &from, now())?;
            audit_update(log.as_ref(), &tdir, &results)?;
            let refused = results
                .iter()
                .filter(|r| r.outcome == Decision::Refused)
                .count();
            if json {
                // One object, also on refusal: `cli::run` prints no second
                // one for `StatementsRefused`.
                let mut obj =
                    json!({"ok": refused == 0, "verified": refused == 0, "statements": results});
                if refused > 0 {
                    let e = CliError::StatementsRefused(refused);
                    obj["code"] = json!(e.code());
                    obj["error"] = json!(super::one_line(&e.to_string()));
                }
                print_json(&obj);
            } else if !quiet || refused > 0 {
                for r in &results {
                    println!("{}: {}: {}", r.outcome, shown(&r.file), r.detail);
                }
            }
            if refused > 0 {
                return Err(CliError::StatementsRefused(refused));
            }
        }
    }
    Ok(())
}

/// A directory the command reads and must not create: missing is
/// `FILE_NOT_FOUND`.
fn require_dir(tdir: &Path) -> Result<(), CliError> {
    let meta = std::fs::metadata(tdir).map_err(|e| Error::io(tdir, "reading", e))?;
    if !meta.is_dir() {
        return Err(CliError::Usage(format!(
            "{}: not a directory; give the trusted-keys directory",
            shown(tdir)
        )));
    }
    Ok(())
}

/// StrictModes on a trusted-keys directory that exists already (a new one
/// is created by `add` and `revoke` with safe modes).
fn check_existing(tdir: &Path) -> Result<(), Error> {
    if tdir.is_dir() {
        pkgsign::trust::perms::check_dir(tdir, pkgsign::trust::perms::KeyDir::Trusted)?;
    }
    Ok(())
}

/// The audit event of one statement `trust update` examined: applied, or
/// refused (an attempt to change the directory without a trusted key's
/// signature); none for one applied before.
fn update_event(r: &lineage::Applied) -> Option<AuditEvent> {
    match r.outcome {
        Decision::Applied => Some(AuditEvent::LineageApplied),
        Decision::Refused => Some(AuditEvent::UnauthorizedUpdateAttempt),
        _ => None,
    }
}

fn audit_update(
    log: Option<&pkgsign::audit::AuditLog>,
    tdir: &Path,
    results: &[lineage::Applied],
) -> Result<(), Error> {
    let applied = results
        .iter()
        .filter(|r| r.outcome == Decision::Applied)
        .count();
    for r in results {
        let Some(event) = update_event(r) else {
            continue;
        };
        audit(
            log,
            Event::new(event)
                .with("statement", shown(&r.file))
                .with("detail", r.detail.clone())
                .with("trusted_keys", shown(tdir)),
        )
        .map_err(|e| {
            e.audit_done(format!(
                "{applied} statement(s) were applied to {}",
                shown(tdir)
            ))
        })?;
    }
    Ok(())
}

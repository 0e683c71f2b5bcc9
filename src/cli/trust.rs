//! `pkgsign trust`: manage a trusted-keys directory.

use std::path::PathBuf;

use clap::Subcommand;
use pkgsign::Error;
use pkgsign::audit::Event;
use pkgsign::keys::{Fingerprint, KeySource, encoding};
use pkgsign::lineage::{self, Statement};
use pkgsign::trustdir::TrustDir;
use serde_json::json;

use super::common::{AuditArgs, audit, now, parse_fingerprint, parse_time};
use super::{PassphraseArgs, print_json, shown};

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
        /// Sign a revocation statement with this private key, for workers' `trust update`.
        #[arg(long, value_name = "KEY")]
        sign_with: Option<PathBuf>,
        /// Where to write the statement (default: TDIR/lineage).
        #[arg(long, value_name = "DIR", requires = "sign_with")]
        publish_dir: Option<PathBuf>,
        #[command(flatten)]
        passphrase: PassphraseArgs,
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
    },
    /// Show, or set, how many independent principals a package (and a
    /// change of keys through `update`) needs in this directory.
    Threshold {
        /// The trusted-keys directory.
        tdir: PathBuf,
        /// The new threshold (at least 1); omit to show the current one.
        n: Option<u32>,
    },
    /// Add your cosignature to a key statement, as the head of another
    /// lineage, so that directories with a threshold above 1 apply it.
    Cosign {
        /// The statement file (*.stmt); rewritten in place, atomically.
        statement: PathBuf,
        /// Your current private key.
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// Follow rotations and revocations: apply the signed statements in DIR
    /// that chain from a key already trusted.
    Update {
        /// The trusted-keys directory.
        tdir: PathBuf,
        /// Directory of published statements (*.stmt).
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
    },
}

pub fn run(args: Args) -> Result<(), Error> {
    let json = args.json;
    match args.command {
        Command::Add {
            tdir,
            key,
            name,
            not_before,
            not_after,
        } => {
            let public = encoding::load_public_key(&key)?;
            let name = name.unwrap_or_else(|| {
                key.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "key".into())
            });
            let mut t = TrustDir::open(&tdir)?;
            let path = t.add(&public, &name, not_before, not_after)?;
            let fp = public.fingerprint();
            if json {
                print_json(
                    &json!({"ok": true, "fingerprint": fp.to_string(), "name": name, "file": shown(&path)}),
                );
            } else {
                println!(
                    "trusted {fp} ({name}, {}) as {}",
                    public.algorithm(),
                    shown(&path)
                );
            }
        }
        Command::List { tdir } => {
            let t = TrustDir::open(&tdir)?;
            let (keys, warnings) = t.list(now())?;
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            if json {
                print_json(&json!({"ok": true, "keys": keys}));
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
            passphrase,
            audit: audit_args,
        } => {
            let t_now = now();
            let mut t = TrustDir::open(&tdir)?;
            let stmt = match &sign_with {
                Some(k) => {
                    let key = encoding::load_private_key(k, passphrase.get()?.as_ref())?;
                    let signer = key.public_key().fingerprint();
                    check_statement_signer(&t, &signer, &fingerprint, t_now)?;
                    let seq = t.next_sequence(&signer);
                    let st = Statement::revoke(&key, &fingerprint, t_now, &reason, t_now, seq)?;
                    t.meta_mut().entry(&signer).sequence = Some(seq);
                    Some(st)
                }
                None => None,
            };
            let changed = t.revoke(&fingerprint, t_now, &reason)?;
            t.commit()?; // the signer's sequence, even when nothing else changed
            let published = match stmt {
                Some(st) => Some(st.publish(&publish_dir.unwrap_or_else(|| tdir.join("lineage")))?),
                None => None,
            };
            audit(
                audit_args.log().as_ref(),
                Event::new("key_revoked")
                    .with("key", fingerprint.to_string())
                    .with("reason", reason.clone())
                    .with("trusted_keys", shown(&tdir)),
            );
            if json {
                print_json(
                    &json!({"ok": true, "fingerprint": fingerprint.to_string(), "changed": changed,
                    "statement": published.as_ref().map(|p| shown(p))}),
                );
            } else {
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
        Command::Remove { tdir, fingerprint } => {
            let mut t = TrustDir::open(&tdir)?;
            let n = t.remove(&fingerprint)?;
            if json {
                print_json(
                    &json!({"ok": true, "fingerprint": fingerprint.to_string(), "files_removed": n}),
                );
            } else {
                println!(
                    "removed {fingerprint} ({n} file{})",
                    if n == 1 { "" } else { "s" }
                );
            }
        }
        Command::Threshold { tdir, n } => {
            let mut t = TrustDir::open(&tdir)?;
            if let Some(n) = n {
                t.set_threshold(n)?;
            }
            let current = t.meta().threshold().unwrap_or(1);
            if json {
                print_json(&json!({"ok": true, "threshold": current}));
            } else {
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
            passphrase,
        } => {
            let key = encoding::load_private_key(&key, passphrase.get()?.as_ref())?;
            let mut st = Statement::read(&statement)?;
            st.cosign(&key)?;
            pkgsign::fsutil::write_atomic(
                &statement,
                st.to_text().as_bytes(),
                0o644,
                pkgsign::fsutil::Replace::Allowed,
            )?;
            let fp = key.public_key().fingerprint();
            if json {
                print_json(&json!({"ok": true, "statement": shown(&statement),
                    "cosigner": fp.to_string(), "cosignatures": st.cosignatures.len()}));
            } else {
                println!("cosigned {} with {fp}: {}", shown(&statement), st.summary());
            }
        }
        Command::Update { tdir, from } => {
            let mut t = TrustDir::open(&tdir)?;
            let results = lineage::update(&mut t, &from, now())?;
            let refused = results.iter().filter(|r| r.outcome == "refused").count();
            if json {
                // One object, also on refusal: `cli::run` prints no second
                // one for `StatementsRefused`.
                let mut obj =
                    json!({"ok": refused == 0, "verified": refused == 0, "statements": results});
                if refused > 0 {
                    let e = Error::StatementsRefused(refused);
                    obj["code"] = json!(e.code());
                    obj["error"] = json!(super::one_line(&e.to_string()));
                }
                print_json(&obj);
            } else {
                for r in &results {
                    println!("{}: {}: {}", r.outcome, shown(&r.file), r.detail);
                }
            }
            if refused > 0 {
                return Err(Error::StatementsRefused(refused));
            }
        }
    }
    Ok(())
}

/// Refuse to sign a statement that workers would refuse: the signer must be
/// trusted here, current, and (unless it revokes itself) the head of its lineage.
fn check_statement_signer(
    t: &TrustDir,
    signer: &Fingerprint,
    subject: &Fingerprint,
    at: u64,
) -> Result<(), Error> {
    let refuse = |why: String| {
        Err(Error::Usage(format!(
            "--sign-with key {signer} {why} in {}; workers would refuse its statement",
            shown(t.path())
        )))
    };
    let store = t.store()?;
    let Some(k) = store.get(signer) else {
        return refuse("is not trusted".into());
    };
    if !k.state.in_window(at) || k.state.revoked.is_some() {
        return refuse(format!("is {}", k.describe_state(at)));
    }
    if let Some(s) = k.state.successor.as_ref().filter(|_| signer != subject) {
        return refuse(format!(
            "already endorsed {s}: only the current key of a lineage may sign for it"
        ));
    }
    Ok(())
}

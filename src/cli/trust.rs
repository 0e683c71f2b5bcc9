//! `pkgsign trust`: manage a trusted-keys directory.

use std::path::PathBuf;

use clap::Subcommand;
use pkgsign::Error;
use pkgsign::audit::Event;
use pkgsign::keys::{Fingerprint, encoding};
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
            let stmt = match &sign_with {
                Some(k) => {
                    let key = encoding::load_private_key(k, passphrase.get()?.as_ref())?;
                    Some(Statement::revoke(
                        &key,
                        &fingerprint,
                        t_now,
                        &reason,
                        t_now,
                    )?)
                }
                None => None,
            };
            let mut t = TrustDir::open(&tdir)?;
            if let Some(st) = &stmt
                && t.store()?.get(&st.signer).is_none()
            {
                return Err(Error::Usage(format!(
                    "--sign-with key {} is not trusted in {}; workers would refuse its statement",
                    st.signer,
                    shown(&tdir)
                )));
            }
            let changed = t.revoke(&fingerprint, t_now, &reason)?;
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

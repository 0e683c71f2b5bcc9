//! `pkgsign key-rotate`: rotate the signing key, with a grace window.

use std::path::PathBuf;

use pkgsign::Error;
use pkgsign::audit::{AuditEvent, Event};
use pkgsign::keys::KeySpec;
use pkgsign::rotate::{self, Action, Options};
use serde_json::json;

use pkgsign::config::Config;

use super::common::{GuardArgs, audit, now, or_config, parse_duration, required_or_config};
use super::error::CliError;
use super::keygen::Algorithm;
use super::{PassphraseArgs, print_json};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Replaces DIR/NAME.pem by a new key. The old key stays trusted in TDIR until \
now + --grace-period, and `sign-package --keys-dir DIR` signs with both until then; the first run \
after that deletes the old private key. The first key of a NAME is only created with --init \
(a missing key is otherwise an error, so a mistyped --name never creates and trusts a key). \
--grace-period must be at least 1h unless --emergency. --emergency revokes the old key at once. The old key signs \
an endorsement of the new one (countersigned by it), written to --publish-dir for workers' \
`pkgsign trust update`. Safe from cron: concurrent runs wait for each other, and a run killed at \
any moment is completed or rolled back by the next one.\n\n\
Cron example (daily, rotates every 90 days):\n  \
0 3 * * * pkgsign key-rotate --keys-dir /etc/pkgsign/keys --trusted-keys /etc/pkgsign/trusted --if-older-than 90d\n\n\
Exit codes: 0 done (or not due), 2 could not run."
)]
pub struct Args {
    /// The signing-keys directory (private keys). Required unless
    /// [signing] keys_dir is set in the --config file.
    #[arg(long, value_name = "DIR")]
    keys_dir: Option<PathBuf>,
    /// The trusted-keys directory to update. Required unless [signing]
    /// trusted_keys is set in the --config file.
    #[arg(long, value_name = "TDIR")]
    trusted_keys: Option<PathBuf>,
    /// The key to rotate (DIR/NAME.pem, or DIR/NAME.pkcs11 on a token) [default: [signing] key_name, else
    /// signing-key].
    #[arg(long)]
    name: Option<String>,
    /// How long the old key stays trusted (at least 1h; see --emergency)
    /// [default: [signing] grace_period, else 30d].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    grace_period: Option<u64>,
    /// Revoke the current key at once (it is compromised) and make a new one.
    #[arg(long)]
    emergency: bool,
    /// Create the first key of NAME when DIR has none. Without it a missing
    /// key is an error, so a mistyped --name never creates and trusts a new
    /// key. Run it once, by hand; keep it out of cron.
    #[arg(long)]
    init: bool,
    /// Reason recorded with an emergency revocation.
    #[arg(long, requires = "emergency")]
    reason: Option<String>,
    /// Rotate only if the current key is older than DURATION (for a daily cron entry).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    if_older_than: Option<u64>,
    /// Algorithm of the new key (default: [signing] algorithm, else that of
    /// the current key).
    #[arg(long, value_enum)]
    algorithm: Option<Algorithm>,
    /// RSA modulus size of the new key: 2048, 3072 or 4096 (default, for
    /// an RSA key: [signing] key_size, else 3072).
    #[arg(long, value_parser = ["2048", "3072", "4096"])]
    bits: Option<String>,
    /// Where to write the lineage statements (default: [signing]
    /// publish_dir, else TDIR/lineage).
    #[arg(long, value_name = "DIR")]
    publish_dir: Option<PathBuf>,
    /// With --init: make the first key on a PKCS#11 token, as this URI
    /// names it (`pkcs11:token=T;object=NAME`); DIR then holds NAME.pkcs11
    /// (a pointer) and NAME.pub. A key on a token is always rotated on its
    /// token; its retired objects are destroyed after the grace window.
    #[arg(long, value_name = "URI", requires = "init")]
    pkcs11: Option<String>,
    #[command(flatten)]
    token: super::TokenArgs,
    #[command(flatten)]
    passphrase: PassphraseArgs,
    #[command(flatten)]
    guard: GuardArgs,
    /// Print nothing on success (warnings and errors still go to stderr).
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Print the outcome as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// After the run (done, not due, or failed), write DIR/pkgsign.prom
    /// atomically for node_exporter's textfile collector: the key's age, the
    /// grace window, the last success and failure (docs/metrics.md).
    #[arg(long, value_name = "DIR")]
    metrics_textfile: Option<PathBuf>,
}

/// The shortest grace period outside an emergency: workers poll for the
/// new key (`trust update`), and releases signed by the old key keep
/// verifying until they have it.
const GRACE_FLOOR: u64 = 3_600;

/// The flags after the configuration file has filled those left unset.
struct Resolved {
    access: pkgsign::keys::pkcs11::Access,
    keys_dir: PathBuf,
    trusted_keys: PathBuf,
    name: String,
    grace_period: u64,
}

impl Args {
    /// Fill what the flags left unset from `[signing]` (a flag always wins).
    fn resolve(&mut self, config: Option<&Config>) -> Result<Resolved, CliError> {
        let signing = config.map(|c| &c.signing);
        let keys_dir = required_or_config(
            &self.keys_dir,
            config,
            |c| &c.signing.keys_dir,
            "--keys-dir <DIR>",
            "signing.keys_dir",
        )?;
        let trusted_keys = required_or_config(
            &self.trusted_keys,
            config,
            |c| &c.signing.trusted_keys,
            "--trusted-keys <TDIR>",
            "signing.trusted_keys",
        )?;
        // `--bits` alone means RSA, as without a file.
        if self.algorithm.is_none() && self.bits.is_none() {
            self.algorithm = Algorithm::from_config(config)?;
        }
        if self.bits.is_none() {
            self.bits = self
                .algorithm
                .and_then(|a| a.config_bits(config))
                .map(|b| b.to_string());
        }
        self.publish_dir = or_config(&self.publish_dir, config, |c| &c.signing.publish_dir);
        Ok(Resolved {
            access: self.token.access(config)?,
            keys_dir,
            trusted_keys,
            name: super::keygen::key_name(&self.name, config),
            grace_period: self
                .grace_period
                .or_else(|| signing.and_then(|s| s.grace_period).map(|d| d.0))
                .unwrap_or(DEFAULT_GRACE),
        })
    }
}

/// The grace period when neither `--grace-period` nor the file gives one.
const DEFAULT_GRACE: u64 = 30 * 86_400;

pub fn run(mut args: Args, config: Option<&Config>) -> Result<(), CliError> {
    let r = args.resolve(config)?;
    let textfile = or_config(&args.metrics_textfile, config, |c| {
        &c.signing.metrics_textfile
    });
    let Some(dir) = textfile else {
        return rotate_run(args, r, None);
    };
    // Checked before acting, as the audit log is: a rotation must not be
    // done unmonitored because of a mistyped directory.
    if !dir.is_dir() {
        return Err(CliError::Usage(format!(
            "--metrics-textfile {}: not a directory; give the directory node_exporter's --collector.textfile.directory reads",
            dir.display()
        )));
    }
    let keys_dir = r.keys_dir.clone();
    let result = rotate_run(args, r, Some(&dir));
    if result.is_err() {
        // The failure is recorded with the figures of the directory as it is
        // (unknown if it cannot be read); the run's own error is the one shown.
        let figures = pkgsign::metrics::key_figures(&keys_dir, now()).ok();
        if let Err(e) = pkgsign::metrics::write_textfile_failure(&dir, figures.as_ref(), now()) {
            eprintln!("warning: the failure could not be recorded in --metrics-textfile: {e}");
        }
    }
    result
}

/// Write the textfile of a run that did `action` (before the outcome is printed).
fn record_success(
    dir: &std::path::Path,
    keys_dir: &std::path::Path,
    action: Action,
) -> Result<(), Error> {
    let t = now();
    let figures = pkgsign::metrics::key_figures(keys_dir, t)?;
    pkgsign::metrics::write_textfile(dir, &figures, Some(action.as_str()), t)
}

fn rotate_run(args: Args, r: Resolved, textfile: Option<&std::path::Path>) -> Result<(), CliError> {
    if r.grace_period < GRACE_FLOOR && !args.emergency {
        let given = if args.grace_period.is_some() {
            "--grace-period"
        } else {
            "signing.grace_period"
        };
        return Err(CliError::Usage(format!(
            "{given} {}s is below the floor of 1h: the old key must stay trusted until workers have picked up the new one, or the releases it signed stop verifying; give --grace-period 1h or more, or --emergency to revoke the old key at once",
            r.grace_period
        )));
    }
    let bits = args
        .bits
        .as_deref()
        .map(|b| b.parse::<usize>().unwrap_or(3072));
    let spec = match (args.algorithm, bits) {
        (None, None) => None,
        (Some(Algorithm::Ed25519), None) => Some(KeySpec::Ed25519),
        (Some(Algorithm::Ed25519), Some(_)) => {
            return Err(CliError::Usage(
                "--bits applies to RSA keys only; add --algorithm rsa or drop --bits".into(),
            ));
        }
        (Some(Algorithm::Rsa), b) | (None, b @ Some(_)) => Some(KeySpec::Rsa {
            bits: b.unwrap_or(3072),
        }),
    };
    let passphrase = args.passphrase.get()?;
    // A requested audit log that cannot be written stops us before we act
    // (the permissions policy is set with it: nothing above reads a key
    // directory).
    let log = args.guard.open()?;
    // StrictModes on both directories, when they exist already.
    for (dir, kind) in [
        (&r.keys_dir, pkgsign::trust::perms::KeyDir::Signing),
        (&r.trusted_keys, pkgsign::trust::perms::KeyDir::Trusted),
    ] {
        if dir.is_dir() {
            pkgsign::trust::perms::check_dir(dir, kind)?;
        }
    }
    let opts = Options {
        name: r.name.clone(),
        grace: r.grace_period,
        emergency: args.emergency,
        reason: args.reason.clone(),
        if_older_than: args.if_older_than,
        spec,
        passphrase: passphrase.as_ref(),
        publish_dir: args.publish_dir.clone(),
        now: now(),
        init: args.init,
        pkcs11: args
            .pkcs11
            .as_deref()
            .map(pkgsign::keys::pkcs11::Pkcs11Uri::parse)
            .transpose()?,
        token: Some(&r.access),
    };
    let out = rotate::rotate(&r.keys_dir, &r.trusted_keys, &opts)?;
    if args.init && out.action != Action::Created {
        eprintln!(
            "warning: --init: {} already had a current key, so it was handled as without --init ({}); drop --init from anything that runs again",
            r.name, out.action
        );
    }
    let done = match out.action {
        Action::NotDue => "nothing was rotated (not due)".to_string(),
        _ => format!(
            "the rotation was done (new key {})",
            out.current_key
                .as_ref()
                .map(|k| k.to_string())
                .unwrap_or_default()
        ),
    };
    if let Err(e) = audit_rotation(&args, &r, &out, log.as_ref()) {
        return Err(e.audit_done(done).into());
    }
    if let Some(dir) = textfile {
        record_success(dir, &r.keys_dir, out.action)?;
    }
    if args.json {
        let mut v = serde_json::to_value(&out).unwrap_or_default();
        if let Some(m) = v.as_object_mut() {
            m.insert("ok".into(), json!(true));
        }
        print_json(&v);
        return Ok(());
    }
    if args.quiet {
        return Ok(());
    }
    if out.recovered {
        println!("completed an interrupted rotation first");
    }
    for (key, file) in &out.deleted {
        println!("deleted retired private key {file} ({key}): its grace window is over");
    }
    let cur = out
        .current_key
        .as_ref()
        .map(|k| k.to_string())
        .unwrap_or_default();
    match out.action {
        Action::NotDue => println!(
            "not due: {} ({cur}) is {} old, rotation needs more than {}",
            r.name,
            days(out.age_seconds.unwrap_or(0)),
            days(args.if_older_than.unwrap_or(0))
        ),
        Action::Created => println!("created {} ({cur}); no key to rotate", r.name),
        _ => {
            let old = out
                .old_key
                .as_ref()
                .map(|k| k.to_string())
                .unwrap_or_default();
            if out.revoked {
                println!("revoked {old} at once; new key {} is {cur}", r.name);
            } else {
                println!(
                    "rotated {}: new key {cur}; old key {old} trusted until {}",
                    r.name,
                    out.old_key_trusted_until.as_deref().unwrap_or("")
                );
            }
        }
    }
    for s in &out.statements {
        println!("published {s}");
    }
    Ok(())
}

/// A duration in days and hours, as people write rotation periods.
fn days(secs: u64) -> String {
    let (d, h) = (secs / 86_400, secs % 86_400 / 3_600);
    match (d, h) {
        (0, h) => format!("{h}h"),
        (d, 0) => format!("{d}d"),
        (d, h) => format!("{d}d{h}h"),
    }
}

/// The audit events of a rotation.
fn audit_rotation(
    args: &Args,
    r: &Resolved,
    out: &rotate::Outcome,
    log: Option<&pkgsign::audit::AuditLog>,
) -> Result<(), Error> {
    for (key, file) in &out.deleted {
        audit(
            log,
            Event::new(AuditEvent::KeyDeleted)
                .with("key", key.to_string())
                .with("file", file.clone()),
        )?;
    }
    if out.action != Action::NotDue {
        let new = out.current_key.as_ref().map(|k| k.to_string());
        audit(
            log,
            Event::new(AuditEvent::KeyGenerated)
                .with("key", new.clone())
                .with("algorithm", out.algorithm.clone()),
        )?;
        if out.revoked {
            audit(
                log,
                Event::new(AuditEvent::KeyRevoked)
                    .with("key", out.old_key.as_ref().map(|k| k.to_string()))
                    .with(
                        "reason",
                        args.reason
                            .clone()
                            .unwrap_or_else(|| "emergency rotation".into()),
                    ),
            )?;
        }
        audit(
            log,
            Event::new(AuditEvent::KeyRotationCompleted)
                .with("key", new)
                .with("old_key", out.old_key.as_ref().map(|k| k.to_string()))
                .with("emergency", args.emergency)
                .with("old_key_trusted_until", out.old_key_trusted_until.clone())
                .with("keys_dir", r.keys_dir.display().to_string())
                .with("trusted_keys", r.trusted_keys.display().to_string()),
        )?;
    }
    Ok(())
}

//! `pkgsign keygen`: generate a key pair.

use std::path::PathBuf;

use clap::ValueEnum;
use pkgsign::fsutil::Replace;
use pkgsign::keys::{self, KeySpec};
use serde_json::json;

use pkgsign::config::Config;

use pkgsign::audit::{AuditEvent, AuditLog, Event};

use super::common::{AuditArgs, audit, or_config, required_or_config};
use super::error::CliError;
use super::{PassphraseArgs, print_json, shown};

/// Key algorithm to generate.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Algorithm {
    /// Ed25519 (default): small, fast, deterministic signatures.
    Ed25519,
    /// RSA, for systems that require it.
    Rsa,
}

impl Algorithm {
    /// `[signing] algorithm` of the configuration file, if set.
    pub fn from_config(config: Option<&Config>) -> Result<Option<Algorithm>, CliError> {
        let Some(name) = config.and_then(|c| c.signing.algorithm.as_deref()) else {
            return Ok(None);
        };
        Algorithm::from_str(name, false).map(Some).map_err(|_| {
            CliError::Usage(format!(
                "signing.algorithm = {name:?}: write \"ed25519\" or \"rsa\""
            ))
        })
    }

    /// `[signing] key_size` of the configuration file, for an RSA key.
    pub fn config_bits(self, config: Option<&Config>) -> Option<usize> {
        match self {
            Algorithm::Rsa => config.and_then(|c| c.signing.key_size).map(|n| n as usize),
            Algorithm::Ed25519 => None,
        }
    }
}

/// The key name when neither `--name` nor `[signing] key_name` gives one.
const DEFAULT_NAME: &str = "signing-key";

/// The key's name: `--name`, else `[signing] key_name`, else
/// [`DEFAULT_NAME`].
pub fn key_name(flag: &Option<String>, config: Option<&Config>) -> String {
    or_config(flag, config, |c| &c.signing.key_name).unwrap_or_else(|| DEFAULT_NAME.into())
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Writes DIR/NAME.pem (PKCS#8, 0600) and DIR/NAME.pub (SubjectPublicKeyInfo, 0644) \
and prints the key's fingerprint on stdout. The private key is encrypted when a passphrase is given \
with --passphrase-file or PKGSIGN_PASSPHRASE.\n\nExit codes: 0 done, 2 could not run."
)]
pub struct Args {
    /// Directory to write the key pair to (created 0700 if missing).
    /// Required unless [signing] keys_dir is set in the --config file.
    /// `--dir` is the same flag (seed 004's runbook spelling).
    #[arg(long, visible_alias = "dir", value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// Base name of the key files [default: [signing] key_name, else signing-key].
    #[arg(long)]
    name: Option<String>,
    /// Key algorithm [default: [signing] algorithm, else ed25519].
    #[arg(long, value_enum)]
    algorithm: Option<Algorithm>,
    /// RSA modulus size (RSA only): 2048, 3072 or 4096 [default: [signing]
    /// key_size, else 3072]. `--size` is the same flag (seed 004's runbook
    /// spelling).
    #[arg(long, visible_alias = "size", value_parser = ["2048", "3072", "4096"])]
    bits: Option<String>,
    /// Replace existing key files of the same name (never through a symlink).
    #[arg(long)]
    force: bool,
    /// Generate the pair on a PKCS#11 token instead (`pkcs11:token=T;object=NAME`):
    /// the private key is made sensitive and not extractable and never
    /// leaves the token; only DIR/NAME.pub and the pointer DIR/NAME.pkcs11
    /// (the URI, no PIN) are written.
    #[arg(long, value_name = "URI", conflicts_with = "passphrase_file")]
    pkcs11: Option<String>,
    #[command(flatten)]
    token: super::TokenArgs,
    #[command(flatten)]
    passphrase: PassphraseArgs,
    #[command(flatten)]
    audit: AuditArgs,
    /// Print nothing on success (errors still go to stderr).
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Print the outcome as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, config: Option<&Config>) -> Result<(), CliError> {
    // Flags first, then the configuration file's [signing], then defaults.
    let output_dir = required_or_config(
        &args.output_dir,
        config,
        |c| &c.signing.keys_dir,
        "--output-dir <DIR>",
        "signing.keys_dir",
    )?;
    let name = key_name(&args.name, config);
    let algorithm = match args.algorithm {
        Some(a) => a,
        None => Algorithm::from_config(config)?.unwrap_or(Algorithm::Ed25519),
    };
    let spec = match (algorithm, args.bits.as_deref()) {
        (Algorithm::Ed25519, None) => KeySpec::Ed25519,
        (Algorithm::Ed25519, Some(_)) => {
            return Err(CliError::Usage(
                "--bits (--size) applies to RSA keys only; add --algorithm rsa or drop --bits"
                    .into(),
            ));
        }
        (Algorithm::Rsa, bits) => KeySpec::Rsa {
            bits: match bits {
                Some(b) => b.parse().unwrap_or(3072),
                None => algorithm.config_bits(config).unwrap_or(3072),
            },
        },
    };
    let replace = if args.force {
        Replace::Allowed
    } else {
        Replace::Never
    };
    // A requested audit log that cannot be written stops us before we act.
    let log = args.audit.open()?;
    if let Some(uri) = &args.pkcs11 {
        return keygen_on_token(&args, uri, &output_dir, &name, spec, replace, config, log);
    }
    let passphrase = args.passphrase.get()?;
    let written = keys::generate::keygen(&output_dir, &name, spec, passphrase.as_ref(), replace)?;
    let fp = written.public.fingerprint();
    audit_generated(log.as_ref(), &written.public, &written.public_path)?;
    if args.json {
        print_json(&json!({
            "ok": true,
            "fingerprint": fp.to_string(),
            "algorithm": written.public.algorithm().to_string(),
            "private_key": shown(&written.private_path),
            "public_key": shown(&written.public_path),
            "encrypted": passphrase.is_some(),
        }));
    } else if !args.quiet {
        eprintln!(
            "wrote {} (private, 0600{}) and {} ({})",
            shown(&written.private_path),
            if passphrase.is_some() {
                ", encrypted"
            } else {
                ""
            },
            shown(&written.public_path),
            written.public.algorithm()
        );
        println!("{fp}");
    }
    Ok(())
}

/// The `key_generated` event of a new key pair.
fn audit_generated(
    log: Option<&AuditLog>,
    public: &keys::PublicKey,
    public_path: &std::path::Path,
) -> Result<(), CliError> {
    let fp = public.fingerprint();
    audit(
        log,
        Event::new(AuditEvent::KeyGenerated)
            .with("key", fp.to_string())
            .with("algorithm", public.algorithm().to_string())
            .with("public_key", shown(public_path)),
    )
    .map_err(|e| {
        e.audit_done(format!(
            "key {fp} was generated ({}) and stays",
            shown(public_path)
        ))
        .into()
    })
}

/// `keygen --pkcs11 URI`: the pair is made on the token; only the public
/// key and the pointer are written.
#[allow(clippy::too_many_arguments)] // The flags of one command, resolved once by `run`.
fn keygen_on_token(
    args: &Args,
    uri: &str,
    output_dir: &std::path::Path,
    name: &str,
    spec: KeySpec,
    replace: Replace,
    config: Option<&Config>,
    log: Option<AuditLog>,
) -> Result<(), CliError> {
    use pkgsign::keys::KeySource;
    use pkgsign::keys::pkcs11::{self, Pkcs11Uri};
    let uri = Pkcs11Uri::parse(uri)?;
    let access = args.token.access(config)?;
    let written = pkcs11::keygen(output_dir, name, &uri, &access, spec, replace)?;
    let public = written.key.public_key();
    let fp = public.fingerprint();
    audit_generated(log.as_ref(), public, &written.public_path)?;
    if args.json {
        print_json(&json!({
            "ok": true,
            "fingerprint": fp.to_string(),
            "algorithm": public.algorithm().to_string(),
            "token_key": uri.text,
            "pointer": shown(&written.pointer_path),
            "public_key": shown(&written.public_path),
        }));
    } else if !args.quiet {
        eprintln!(
            "generated on the token: {} (private, not extractable); wrote {} and {}",
            uri.text,
            shown(&written.pointer_path),
            shown(&written.public_path)
        );
        println!("{fp}");
    }
    Ok(())
}

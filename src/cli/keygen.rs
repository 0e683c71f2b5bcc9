//! `pkgsign keygen`: generate a key pair.

use std::path::PathBuf;

use clap::ValueEnum;
use pkgsign::fsutil::Replace;
use pkgsign::keys::{self, KeySpec};
use serde_json::json;

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

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Writes DIR/NAME.pem (PKCS#8, 0600) and DIR/NAME.pub (SubjectPublicKeyInfo, 0644) \
and prints the key's fingerprint on stdout. The private key is encrypted when a passphrase is given \
with --passphrase-file or PKGSIGN_PASSPHRASE.\n\nExit codes: 0 done, 2 could not run."
)]
pub struct Args {
    /// Directory to write the key pair to (created 0700 if missing).
    #[arg(long, value_name = "DIR")]
    output_dir: PathBuf,
    /// Base name of the key files.
    #[arg(long, default_value = "signing-key")]
    name: String,
    /// Key algorithm.
    #[arg(long, value_enum, default_value_t = Algorithm::Ed25519)]
    algorithm: Algorithm,
    /// RSA modulus size (RSA only): 2048, 3072 or 4096. Default 3072.
    #[arg(long, value_parser = ["2048", "3072", "4096"])]
    bits: Option<String>,
    /// Replace existing key files of the same name (never through a symlink).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    passphrase: PassphraseArgs,
    /// Print the outcome as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<(), CliError> {
    let spec = match (args.algorithm, args.bits.as_deref()) {
        (Algorithm::Ed25519, None) => KeySpec::Ed25519,
        (Algorithm::Ed25519, Some(_)) => {
            return Err(CliError::Usage(
                "--bits applies to RSA keys only; add --algorithm rsa or drop --bits".into(),
            ));
        }
        (Algorithm::Rsa, bits) => KeySpec::Rsa {
            bits: bits.unwrap_or("3072").parse().unwrap_or(3072),
        },
    };
    let passphrase = args.passphrase.get()?;
    let replace = if args.force {
        Replace::Allowed
    } else {
        Replace::Never
    };
    let written = keys::generate::keygen(
        &args.output_dir,
        &args.name,
        spec,
        passphrase.as_ref(),
        replace,
    )?;
    let fp = written.public.fingerprint();
    if args.json {
        print_json(&json!({
            "ok": true,
            "fingerprint": fp.to_string(),
            "algorithm": written.public.algorithm().to_string(),
            "private_key": shown(&written.private_path),
            "public_key": shown(&written.public_path),
            "encrypted": passphrase.is_some(),
        }));
    } else {
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

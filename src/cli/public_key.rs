//! `pkgsign public-key`: print a key's public half, as PEM or as the
//! OpenSSH line that `allowed_signers` and `authorized_keys` take.

use std::path::PathBuf;

use pkgsign::config::Config;
use pkgsign::keys::encoding;
use pkgsign::sign::sshsig;
use serde_json::json;

use super::error::CliError;
use super::{PassphraseArgs, print_json};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "For `ssh-keygen -Y verify`: `echo \"NAME $(pkgsign public-key KEY --openssh)\" > allowed_signers`.\n\nExit codes: 0 printed, 2 could not run."
)]
pub struct Args {
    /// A public key (.pub), a private key (.pem), a `pkcs11:` URI, or the
    /// NAME.pkcs11 pointer `keygen --pkcs11` wrote.
    #[arg(value_name = "KEY")]
    key: PathBuf,
    /// Print the OpenSSH form (`ssh-ed25519 AAAA... COMMENT`).
    #[arg(long)]
    openssh: bool,
    /// The comment of the OpenSSH form.
    #[arg(long, default_value = "", requires = "openssh")]
    comment: String,
    #[command(flatten)]
    token: super::TokenArgs,
    #[command(flatten)]
    passphrase: PassphraseArgs,
    /// Print one JSON object (fingerprint, pem, openssh).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, config: Option<&Config>) -> Result<(), CliError> {
    // Sniffed within the key file bound; an unreadable file is reported by
    // the loader below, which reads it the same bounded way.
    let text = pkgsign::fsutil::read_bounded(&args.key, encoding::KEY_FILE_LIMIT, "key file")
        .map(|d| d.to_vec())
        .unwrap_or_default();
    let is_private =
        text.windows(11).any(|w| w == b"PRIVATE KEY") || super::names_token_key(&args.key);
    let public = if is_private {
        let k = super::load_key(&args.key, &args.passphrase, &args.token, config)?;
        k.public_key().clone()
    } else {
        encoding::load_public_key(&args.key)?
    };
    let pem = encoding::public_key_to_pem(&public)?;
    let openssh = sshsig::openssh_public_key(&public, &args.comment)?;
    if args.json {
        print_json(&json!({
            "ok": true,
            "fingerprint": public.fingerprint().to_string(),
            "pem": pem,
            "openssh": openssh,
        }));
    } else if args.openssh {
        println!("{openssh}");
    } else {
        print!("{pem}");
    }
    Ok(())
}

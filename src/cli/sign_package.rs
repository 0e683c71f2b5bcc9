//! `pkgsign sign-package`: sign a package.

use std::path::PathBuf;

use clap::ValueEnum;
use pkgsign::audit::{AuditEvent, Event};
use pkgsign::digest::HashAlg;
use pkgsign::keys::KeySource;
use pkgsign::rotate::keystore;
use pkgsign::sign::identity::{Identity, Version};
use pkgsign::sign::signer::{self, Format, SignOptions};
use serde_json::json;

use pkgsign::config::Config;

use super::common::{
    GuardArgs, VersionSchemeArg, When, audit, missing, now, parse_hash_alg, parse_when,
};
use super::error::CliError;
use super::{KeyArgs, print_json, shown};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// pkgsign format: signed metadata, several signatures, see docs/signature-format.md.
    Pkgsign,
    /// Bare base64 signature as openssl makes it (one key only).
    Raw,
    /// An SSH signature, as `ssh-keygen -Y sign` makes it and `ssh-keygen
    /// -Y verify` checks it (one key only; see --namespace).
    Sshsig,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Writes FILE.sig (or --output) atomically: a failed or killed run leaves no \
partial signature and never damages an existing one.\n\nExit codes: 0 signed, 2 could not run."
)]
pub struct Args {
    /// The package to sign.
    #[arg(long, value_name = "FILE")]
    package: PathBuf,
    /// Private key to sign with: a key file, or a key on a PKCS#11 token
    /// (`pkcs11:token=T;object=K`, or the NAME.pkcs11 pointer `keygen
    /// --pkcs11` wrote, with --pkcs11-module and --pin-file);
    /// repeat for several signatures in one file.
    /// This or --keys-dir is required, unless [signing] keys_dir is set in
    /// the --config file.
    #[arg(long = "private-key", value_name = "KEY")]
    private_keys: Vec<PathBuf>,
    /// Sign with every private key (*.pem) in DIR that is inside its
    /// validity window (keys.toml, kept by key-rotate) [default: [signing]
    /// keys_dir of the --config file, when no --private-key is given].
    #[arg(long, value_name = "DIR", conflicts_with = "private_keys")]
    keys_dir: Option<PathBuf>,
    /// Where to write the signature (default: FILE.sig).
    #[arg(long, value_name = "SIG")]
    output: Option<PathBuf>,
    /// Signature format.
    #[arg(long, value_enum, default_value_t = FormatArg::Pkgsign)]
    format: FormatArg,
    /// The namespace of an SSH signature (`--format sshsig`): what it is
    /// for; `ssh-keygen -Y verify -n NS` and `verify-package --namespace`
    /// require the same.
    #[arg(long, value_name = "NS", default_value = "pkgsign")]
    namespace: String,
    /// Package hash (pkgsign format): sha256, sha512 (any algorithm of
    /// `pkgsign checksum` fit for signatures).
    #[arg(long, value_parser = parse_hash_alg, default_value = "sha256", value_name = "ALGO")]
    hash: HashAlg,
    /// A comment signed with the package and shown by verify-package
    /// (printable characters, at most 1024 bytes).
    #[arg(long)]
    comment: Option<String>,
    /// The package's name, signed (signature format v2): `verify-package
    /// --name` and `apply` refuse a signature for another name.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// The release's version, signed (format v2): SemVer 2.0 (`1.4.2`), or
    /// an integer with `--version-scheme integer`. `--min-version` refuses
    /// older releases.
    #[arg(long, value_name = "VERSION")]
    release_version: Option<String>,
    /// How --release-version is written and compared.
    #[arg(long, value_enum, default_value_t = VersionSchemeArg::Semver, requires = "release_version")]
    version_scheme: VersionSchemeArg,
    /// Sign the same release as the signature file SIG: take its name and
    /// version (not its expiry). For re-signing an old release with the
    /// current key after a rotation; refused unless SIG was made for this
    /// very package (same digest and size).
    #[arg(long, value_name = "SIG", conflicts_with_all = ["name", "release_version"])]
    identity_from: Option<PathBuf>,
    /// When the signature stops verifying (format v2): a duration from now
    /// (`30d`) or an RFC 3339 time. Verifiers refuse it after that,
    /// SIGNATURE_EXPIRED.
    #[arg(long, value_name = "DURATION|TIME", value_parser = parse_when)]
    expires: Option<When>,
    #[command(flatten)]
    unlock: KeyArgs,
    #[command(flatten)]
    guard: GuardArgs,
    /// Print nothing on success and draw no progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Print the outcome as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(mut args: Args, config: Option<&Config>) -> Result<(), CliError> {
    // No key flag: the configuration file's signing-keys directory.
    if args.private_keys.is_empty() && args.keys_dir.is_none() {
        args.keys_dir = Some(
            config
                .and_then(|c| c.signing.keys_dir.clone())
                .ok_or_else(|| {
                    missing(
                        "--private-key <KEY> or --keys-dir <DIR>",
                        "signing.keys_dir",
                        config,
                    )
                })?,
        );
    }
    // A requested audit log that cannot be written stops us before we act.
    let log = args.guard.open()?;
    let passphrase = args.unlock.passphrase.get()?;
    // Check the package before unlocking keys.
    pkgsign::fsutil::open_regular(&args.package)?;
    let keys = match &args.keys_dir {
        Some(dir) => {
            let (keys, skipped) = keystore::active_keys(
                dir,
                now(),
                passphrase.as_ref(),
                &args.unlock.token.access(config)?,
            )?;
            for s in skipped {
                eprintln!("note: not signing with {}: {}", shown(&s.path), s.reason);
            }
            keys
        }
        None => {
            let token = || args.unlock.token.access(config);
            args.private_keys
                .iter()
                .map(|p| super::load_signing_key(p, passphrase.as_ref(), &token))
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let sources: Vec<&dyn KeySource> = keys.iter().map(|k| k.as_ref()).collect();
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| pkgsign::fsutil::sig_path_for(&args.package));
    let version = args
        .release_version
        .as_deref()
        .map(|v| Version::parse(v, args.version_scheme.scheme()))
        .transpose()
        .map_err(|e| CliError::Usage(format!("--release-version: {e}")))?;
    let from = args
        .identity_from
        .as_deref()
        .map(|sig| signer::identity_from(sig, &args.package))
        .transpose()?
        .unwrap_or_default();
    let opts = SignOptions {
        format: match args.format {
            FormatArg::Pkgsign => Format::Pkgsign,
            FormatArg::Raw => Format::Raw,
            FormatArg::Sshsig => Format::SshSig,
        },
        namespace: args.namespace.clone(),
        hash: args.hash,
        comment: args.comment.clone(),
        identity: Identity {
            name: args.name.clone().or(from.name),
            version: version.or(from.version),
            expires: args.expires.map(|w| w.at(now())),
        },
        now: std::time::SystemTime::now(),
        progress: None,
    };
    let bar = super::progress::for_file(&args.package, args.quiet, args.json);
    let opts = SignOptions {
        progress: bar.as_ref().map(|(p, _)| p.clone()),
        ..opts
    };
    let signed = signer::sign_package(&args.package, &sources, &opts, &output)?;
    let fps: Vec<String> = signed.keys.iter().map(|k| k.to_string()).collect();
    for k in &keys {
        audit(
            log.as_ref(),
            Event::new(AuditEvent::PackageSigned)
                .with("package", shown(&args.package))
                .with(
                    "package_hash",
                    signed.digest.as_ref().map(|d| d.to_string()),
                )
                .with("size", signed.size)
                .with("algorithm", k.public_key().statement_scheme())
                .with("key", k.public_key().fingerprint().to_string())
                .with("signature", shown(&signed.output)),
        )
        .map_err(|e| {
            // The signature is valid whatever the log says; deleting it
            // would not unsign anything a copy was taken of.
            e.audit_done(format!(
                "the signature {} was written and stays; add its package_signed event to the log by hand",
                shown(&signed.output)
            ))
        })?;
    }
    if args.json {
        print_json(&json!({
            "ok": true,
            "package": shown(&args.package),
            "signature": shown(&signed.output),
            "package_hash": signed.digest.as_ref().map(|d| d.to_string()),
            "size": signed.size,
            "keys": fps,
            "name": opts.identity.name,
            "version": opts.identity.version.as_ref().map(|v| v.to_string()),
            "expires": opts.identity.expires.map(pkgsign::text::format_time),
        }));
    } else if !args.quiet {
        println!(
            "signed {} with {} key{} ({}) -> {}",
            shown(&args.package),
            fps.len(),
            if fps.len() == 1 { "" } else { "s" },
            fps.join(", "),
            shown(&signed.output)
        );
    }
    Ok(())
}

//! Command-line parsing and output. One module per subcommand, each with its
//! `Args` and `run()`; this module holds what they share.

mod apply;
mod checksum;
mod common;
mod completions;
mod config;
mod error;
mod key_rotate;
mod keygen;
mod man;
mod progress;
mod public_key;
mod serve;
mod sign_package;
mod trust;
mod verify_manifest;
mod verify_package;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};
use pkgsign::Error;

use self::error::CliError;
use pkgsign::keys::Passphrase;
use serde_json::{Value, json};

/// Sign release packages with Ed25519 or RSA, and verify them before applying anything.
#[derive(Debug, Parser)]
#[command(name = "pkgsign", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Read unset flags from the TOML file FILE (default: $PKGSIGN_CONFIG,
    /// if set); a flag always overrides the file. See docs/config.md.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a key pair: DIR/NAME.pem (private, 0600) and DIR/NAME.pub.
    Keygen(keygen::Args),
    /// Sign a package, writing a detached signature (FILE.sig).
    SignPackage(sign_package::Args),
    /// Verify a package against its detached signature and trusted keys.
    VerifyPackage(verify_package::Args),
    /// Rotate the signing key, keeping the old one trusted through a grace window.
    KeyRotate(key_rotate::Args),
    /// Manage a trusted-keys directory: add, list, revoke, remove, threshold, cosign, update.
    Trust(trust::Args),
    /// Print or check checksums, as sha256sum & co. do.
    Checksum(checksum::Args),
    /// Verify a signed checksum list and every file it names.
    VerifyManifest(verify_manifest::Args),
    /// Verify a release once, refuse rollbacks, and apply exactly what was verified.
    Apply(apply::Args),
    /// Serve the HTTP API: verify signatures, accept signed uploads, generate keys.
    Serve(serve::Args),
    /// Check a configuration file: `pkgsign config check FILE`.
    Config(config::Args),
    /// Print a key's public half: PEM, or the OpenSSH line (--openssh).
    PublicKey(public_key::Args),
    /// Print the completion script of a shell: bash, zsh, fish, elvish or powershell.
    Completions(completions::Args),
    /// Write the manual pages into a directory (to refresh man/).
    #[command(hide = true)]
    Man(man::Args),
}

/// Run a parsed command line and return the exit code of the contract.
pub fn run(cli: Cli) -> ExitCode {
    // The configuration file, read once: a broken one stops every
    // subcommand (CONFIG_INVALID) before it acts; `config check` reads the
    // file it is given instead.
    let config = match &cli.command {
        Command::Config(_) => Ok(None),
        _ => {
            pkgsign::config::Config::from_arg_or_env(cli.config.as_deref()).map_err(CliError::from)
        }
    };
    if let Ok(Some(c)) = &config {
        common::set_config_audit_log(c);
    }
    let (json, verifying, result) = match cli.command {
        Command::Keygen(a) => (
            a.json,
            false,
            config.and_then(|c| keygen::run(a, c.as_ref())),
        ),
        Command::SignPackage(a) => (
            a.json,
            false,
            config.and_then(|c| sign_package::run(a, c.as_ref())),
        ),
        Command::VerifyPackage(a) => (
            a.json,
            true,
            config.and_then(|c| verify_package::run(a, c.as_ref())),
        ),
        Command::KeyRotate(a) => (
            a.json,
            false,
            config.and_then(|c| key_rotate::run(a, c.as_ref())),
        ),
        Command::Trust(a) => (
            a.json,
            false,
            config.and_then(|c| trust::run(a, c.as_ref())),
        ),
        Command::Checksum(a) => (a.json, false, config.and_then(|_| checksum::run(a))),
        Command::VerifyManifest(a) => (
            a.json,
            true,
            config.and_then(|c| verify_manifest::run(a, c.as_ref())),
        ),
        Command::Apply(a) => (a.json, true, config.and_then(|c| apply::run(a, c.as_ref()))),
        Command::Serve(a) => (a.json, false, config.and_then(|c| serve::run(a, c))),
        Command::Config(a) => (a.json, false, config::run(a)),
        Command::PublicKey(a) => (
            a.json,
            false,
            config.and_then(|c| public_key::run(a, c.as_ref())),
        ),
        Command::Completions(a) => (false, false, completions::run(a)),
        Command::Man(a) => (false, false, man::run(a)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `trust update` has already printed its one JSON object, with
            // the refused statements in it.
            // (So have the commands over many files.)
            let json = json
                && !JSON_PRINTED.load(std::sync::atomic::Ordering::SeqCst)
                && !matches!(
                    e,
                    CliError::StatementsRefused(_) | CliError::ItemsFailed { .. }
                );
            report_error(&e, json, verifying);
            ExitCode::from(e.exit_code())
        }
    }
}

/// Report a command-line error as the contract says every error is reported:
/// one `error:` line on stderr (clap's own output spans several lines) and,
/// with `--json`, one JSON object on stdout; exit 2. `--help`, `--version`
/// and a bare `pkgsign` print what clap prints.
pub fn usage_error(e: &clap::Error) -> ExitCode {
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let rendered = e.to_string();
    let mut msg = rendered
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(rest) = msg.strip_prefix("error: ") {
        msg = rest.to_string();
    }
    msg.push_str("; run with --help for usage");
    eprintln!("error: {msg}");
    let args: Vec<_> = std::env::args_os().collect();
    if args.iter().any(|a| a == "--json") {
        let mut obj = serde_json::json!({ "ok": false, "code": "USAGE", "error": msg });
        if args
            .get(1)
            .is_some_and(|c| c.to_string_lossy().starts_with("verify"))
        {
            obj["verified"] = serde_json::Value::Bool(false);
        }
        println!("{obj}");
    }
    ExitCode::from(2)
}

/// Print an error: one `error:` line on stderr and, with `--json`, one
/// object on stdout.
fn report_error(e: &CliError, json: bool, verifying: bool) {
    eprintln!("error: {}", one_line(&e.to_string()));
    if json {
        let mut obj = json!({
            "ok": false,
            "code": e.code(),
            "error": one_line(&e.to_string()),
        });
        if let Some(report) = e.report()
            && let (Value::Object(map), Ok(Value::Object(extra))) =
                (&mut obj, serde_json::to_value(report))
        {
            map.extend(extra);
        }
        if verifying && let Value::Object(map) = &mut obj {
            map.insert("verified".into(), Value::Bool(false));
        }
        print_json(&obj);
    }
}

/// Set by a command that has printed its one JSON object itself (possibly
/// in pieces, as `verify-manifest` streams its results), so that the error
/// it then returns is reported on stderr only.
static JSON_PRINTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Note that the command's one JSON object has been printed.
fn json_printed() {
    JSON_PRINTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Print a JSON object on one line.
fn print_json(v: &Value) {
    println!("{v}");
}

/// Make sure a message is one line.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// How to reach keys on a PKCS#11 token (`pkcs11:` URIs): the module and
/// the PIN. The PIN is never an argument.
#[derive(Debug, Clone, clap::Args)]
struct TokenArgs {
    /// The PKCS#11 module of `pkcs11:` keys [default: PKGSIGN_PKCS11_MODULE,
    /// else the URI's module-path, else [signing] pkcs11_module].
    #[arg(long, value_name = "PATH")]
    pkcs11_module: Option<PathBuf>,
    /// Read the token's user PIN from the first line of FILE [default:
    /// PKGSIGN_PKCS11_PIN, else the URI's pin-source].
    #[arg(long, value_name = "FILE")]
    pin_file: Option<PathBuf>,
}

impl TokenArgs {
    fn access(
        &self,
        config: Option<&pkgsign::config::Config>,
    ) -> Result<pkgsign::keys::pkcs11::Access, Error> {
        use pkgsign::keys::pkcs11::{self, Access};
        let module = self.pkcs11_module.clone().or_else(|| {
            std::env::var_os(pkcs11::MODULE_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let default_module = config.and_then(|c| c.signing.pkcs11_module.clone());
        let pin = match &self.pin_file {
            Some(f) => Some(pkcs11::read_pin_file(f)?),
            None => std::env::var(pkcs11::PIN_ENV)
                .ok()
                .map(zeroize::Zeroizing::new),
        };
        Ok(Access {
            module,
            default_module,
            pin,
        })
    }
}

/// A private key named on the command line: a key file, a `pkcs11:` URI
/// of a key on a token, or the `NAME.pkcs11` pointer `keygen --pkcs11`
/// wrote (it holds the URI and no secret: others may read it, not write it).
fn load_signing_key(
    arg: &Path,
    passphrase: Option<&Passphrase>,
    token: &dyn Fn() -> Result<pkgsign::keys::pkcs11::Access, Error>,
) -> Result<Box<dyn pkgsign::keys::KeySource>, Error> {
    use pkgsign::keys::pkcs11::{self, Pkcs11Uri, TokenKey};
    let uri = match arg.to_str() {
        Some(s) if Pkcs11Uri::is_uri(s) => Some(Pkcs11Uri::parse(s)?),
        _ if pkcs11::is_pointer(arg) => {
            // Read first (a missing file or a directory is said as such),
            // then as in a signing-keys directory: no one else may
            // redirect it.
            let uri = pkcs11::read_pointer(arg)?;
            pkgsign::trust::perms::check_file(arg, "token key pointer")?;
            Some(uri)
        }
        _ => None,
    };
    match uri {
        Some(uri) => Ok(Box::new(TokenKey::open(&uri, &token()?)?)),
        None => Ok(Box::new(pkgsign::keys::encoding::load_private_key(
            arg, passphrase,
        )?)),
    }
}

/// Whether a key argument names a key on a token (a URI or a pointer).
fn names_token_key(arg: &Path) -> bool {
    pkgsign::keys::pkcs11::is_pointer(arg)
        || arg
            .to_str()
            .is_some_and(pkgsign::keys::pkcs11::Pkcs11Uri::is_uri)
}

/// [`load_signing_key`] with the passphrase of `passphrase` (read first,
/// whatever the key) and the token access of `token`.
fn load_key(
    arg: &Path,
    passphrase: &PassphraseArgs,
    token: &TokenArgs,
    config: Option<&pkgsign::config::Config>,
) -> Result<Box<dyn pkgsign::keys::KeySource>, Error> {
    load_signing_key(arg, passphrase.get()?.as_ref(), &|| token.access(config))
}

/// How to unlock a private key: `--passphrase-file` for a key file,
/// `--pkcs11-module` and `--pin-file` for a key on a token.
#[derive(Debug, Clone, clap::Args)]
struct KeyArgs {
    #[command(flatten)]
    passphrase: PassphraseArgs,
    #[command(flatten)]
    token: TokenArgs,
}

impl KeyArgs {
    /// The private key `arg` names ([`load_key`]).
    fn load(
        &self,
        arg: &Path,
        config: Option<&pkgsign::config::Config>,
    ) -> Result<Box<dyn pkgsign::keys::KeySource>, Error> {
        load_key(arg, &self.passphrase, &self.token, config)
    }
}

/// Where a passphrase comes from: `--passphrase-file`, else `PKGSIGN_PASSPHRASE`.
#[derive(Debug, Clone, clap::Args)]
struct PassphraseArgs {
    /// Read the passphrase from the first line of FILE (never from argv).
    /// Otherwise the PKGSIGN_PASSPHRASE environment variable is used, if set.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

impl PassphraseArgs {
    fn get(&self) -> Result<Option<Passphrase>, Error> {
        if let Some(path) = &self.passphrase_file {
            return Passphrase::from_file(path).map(Some);
        }
        match std::env::var_os("PKGSIGN_PASSPHRASE") {
            Some(v) => {
                let bytes = zeroize::Zeroizing::new(v.into_encoded_bytes());
                Passphrase::new(bytes.to_vec()).map(Some)
            }
            None => Ok(None),
        }
    }
}

/// Display a path for messages.
fn shown(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}

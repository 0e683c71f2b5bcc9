//! Argument types shared by several subcommands.

use std::path::PathBuf;
use std::sync::OnceLock;

use pkgsign::audit::AuditLog;
use pkgsign::config::Config;

use super::error::CliError;

/// `--audit-log FILE` (or `PKGSIGN_AUDIT_LOG`, or `audit_log` in the
/// `--config` file).
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// Append one JSON line per event to FILE (default: $PKGSIGN_AUDIT_LOG
    /// if set, else audit_log in the --config file, if any).
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
}

/// The top-level `audit_log` of the `--config` file, set once by `cli::run`
/// before any subcommand runs (every subcommand with `--audit-log` reads it
/// through [`AuditArgs::open`]).
static CONFIG_AUDIT_LOG: OnceLock<PathBuf> = OnceLock::new();

/// The `[worker] worker_id` of the `--config` file, set with
/// [`CONFIG_AUDIT_LOG`]: the `worker_id` of audit events unless
/// `PKGSIGN_WORKER_ID` is set.
static CONFIG_WORKER_ID: OnceLock<String> = OnceLock::new();

/// Note the configuration file's `audit_log`, the last fallback of
/// `--audit-log` (after `PKGSIGN_AUDIT_LOG`), and its `[worker] worker_id`.
pub fn set_config_audit_log(config: &Config) {
    if let Some(p) = &config.audit_log {
        let _ = CONFIG_AUDIT_LOG.set(p.clone());
    }
    if let Some(id) = &config.worker.worker_id {
        let _ = CONFIG_WORKER_ID.set(id.clone());
    }
}

impl AuditArgs {
    /// Open the log asked for, before the command acts: a log that cannot
    /// be written stops the command (`AUDIT_LOG_UNWRITABLE`). The flag
    /// wins, then `PKGSIGN_AUDIT_LOG`, then the configuration file.
    pub fn open(&self) -> Result<Option<AuditLog>, pkgsign::Error> {
        match AuditLog::path_from_arg_or_env(self.audit_log.as_deref())
            .or_else(|| CONFIG_AUDIT_LOG.get().cloned())
        {
            Some(p) => AuditLog::open(&p)
                .map(|l| l.with_configured_worker_id(CONFIG_WORKER_ID.get().map(String::as_str)))
                .map(Some),
            None => Ok(None),
        }
    }
}

/// A flag the command cannot run without, given on the command line or
/// else filled from the configuration file: absent from both, it is the
/// usage error clap gives for a missing required flag, naming the flag
/// (`--keys-dir <DIR>`) and the configuration key (`signing.keys_dir`).
pub fn required<T>(
    value: Option<T>,
    flag: &str,
    key: &str,
    config: Option<&Config>,
) -> Result<T, CliError> {
    value.ok_or_else(|| missing(flag, key, config))
}

/// The error of [`required`].
pub fn missing(flag: &str, key: &str, config: Option<&Config>) -> CliError {
    let file = match config {
        Some(c) => format!("and {key} is not set in {}", c.path.display()),
        None => format!("or set {key} in a --config file"),
    };
    CliError::Usage(format!(
        "the following required arguments were not provided: {flag} ({file}); run with --help for usage"
    ))
}

/// The trusted keys of a worker's command: the `--public-key` and
/// `--trusted-keys` flags when either is given, else `[worker]`
/// `public_keys` and `trusted_keys` of the configuration file (never a mix:
/// a flag replaces the file's whole set).
pub fn worker_trust(
    public_keys: &mut Vec<PathBuf>,
    trusted_keys: &mut Option<PathBuf>,
    config: Option<&Config>,
) {
    if let Some(w) = config.map(|c| &c.worker)
        && public_keys.is_empty()
        && trusted_keys.is_none()
    {
        public_keys.clone_from(&w.public_keys);
        trusted_keys.clone_from(&w.trusted_keys);
    }
}

/// [`worker_trust`], for a command that needs some trusted key: none from
/// the flags or the file is the usage error naming both.
pub fn require_worker_trust(
    public_keys: &mut Vec<PathBuf>,
    trusted_keys: &mut Option<PathBuf>,
    config: Option<&Config>,
) -> Result<(), CliError> {
    worker_trust(public_keys, trusted_keys, config);
    if public_keys.is_empty() && trusted_keys.is_none() {
        return Err(missing(
            "--trusted-keys <DIR> or --public-key <PUB>",
            "worker.trusted_keys",
            config,
        ));
    }
    Ok(())
}

/// `--insecure-permissions`, on every subcommand that reads a trusted-keys
/// or signing-keys directory.
#[derive(Debug, Clone, clap::Args)]
pub struct PermArgs {
    /// Accept a key directory (or key file in it) that group or others may
    /// write. Without it such a directory is refused, as ssh's StrictModes
    /// does: whoever can write it chooses the keys.
    #[arg(long)]
    insecure_permissions: bool,
}

impl PermArgs {
    /// Set the process's policy (see `pkgsign::trust::perms`).
    pub fn apply(&self) {
        if self.insecure_permissions {
            pkgsign::trust::perms::allow_insecure_permissions_for_this_process();
        }
    }
}

/// `--audit-log` and `--insecure-permissions` together, as every command
/// that reads a key directory and records what it did takes them.
#[derive(Debug, Clone, clap::Args)]
pub struct GuardArgs {
    #[command(flatten)]
    pub audit: AuditArgs,
    #[command(flatten)]
    pub perms: PermArgs,
}

impl GuardArgs {
    /// Set the process's permissions policy ([`PermArgs::apply`]), then
    /// open the audit log asked for ([`AuditArgs::open`]).
    pub fn open(&self) -> Result<Option<AuditLog>, pkgsign::Error> {
        self.perms.apply();
        self.audit.open()
    }
}

/// A flag's value, else the configuration file's `field` (a flag always
/// wins).
pub fn or_config<T: Clone>(
    flag: &Option<T>,
    config: Option<&Config>,
    field: impl FnOnce(&Config) -> &Option<T>,
) -> Option<T> {
    flag.clone()
        .or_else(|| config.and_then(|c| field(c).clone()))
}

/// [`or_config`] for a flag the command cannot run without: absent from
/// both, the usage error of [`required`].
pub fn required_or_config<T: Clone>(
    flag: &Option<T>,
    config: Option<&Config>,
    field: impl FnOnce(&Config) -> &Option<T>,
    flag_name: &str,
    key: &str,
) -> Result<T, CliError> {
    required(or_config(flag, config, field), flag_name, key, config)
}

pub use pkgsign::text::{parse_duration, parse_size};

/// Parse an RFC 3339 UTC time like `2026-12-01T00:00:00Z`.
pub fn parse_time(s: &str) -> Result<u64, String> {
    pkgsign::text::parse_time(s)
        .ok_or_else(|| format!("{s:?} is not an RFC 3339 UTC time like 2026-12-01T00:00:00Z"))
}

/// A time given as a duration from now (`30d`) or as an RFC 3339 time.
#[derive(Debug, Clone, Copy)]
pub enum When {
    /// This long after the command's clock.
    In(u64),
    /// At this time.
    At(u64),
}

impl When {
    /// The time it names, counted from `now`.
    pub fn at(self, now: u64) -> u64 {
        match self {
            When::In(d) => now.saturating_add(d),
            When::At(t) => t,
        }
    }
}

/// Parse `30d` (from now) or `2027-01-01T00:00:00Z`.
pub fn parse_when(s: &str) -> Result<When, String> {
    match pkgsign::text::parse_time(s) {
        Some(t) => Ok(When::At(t)),
        None => parse_duration(s).map(When::In).map_err(|_| {
            format!("{s:?} is neither a duration like 30d nor an RFC 3339 UTC time like 2027-01-01T00:00:00Z")
        }),
    }
}

/// The release checks of a verification (signature format v2).
#[derive(Debug, Clone, clap::Args)]
pub struct ReleaseArgs {
    /// Count only signatures that name this package (`sign-package
    /// --name`): another package's signature is NAME_MISMATCH.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Count only signatures of this release or a newer one, compared in
    /// the signed version scheme (SemVer precedence, or integers): an older
    /// release is ROLLBACK.
    #[arg(long, value_name = "VERSION")]
    pub min_version: Option<String>,
}

impl ReleaseArgs {
    /// Whether a release check was asked for.
    pub fn any(&self) -> bool {
        self.name.is_some() || self.min_version.is_some()
    }
}

/// The scheme a release version is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VersionSchemeArg {
    /// Semantic Versioning 2.0.0 (`1.4.2`, `2.0.0-rc.1`).
    Semver,
    /// A decimal integer (`20261201`, `42`).
    Integer,
}

impl VersionSchemeArg {
    /// The library's scheme.
    pub fn scheme(self) -> pkgsign::sign::identity::VersionScheme {
        match self {
            VersionSchemeArg::Semver => pkgsign::sign::identity::VersionScheme::SemVer,
            VersionSchemeArg::Integer => pkgsign::sign::identity::VersionScheme::Integer,
        }
    }
}

/// Parse a key fingerprint.
pub fn parse_fingerprint(s: &str) -> Result<pkgsign::keys::Fingerprint, String> {
    s.parse()
        .map_err(|e: pkgsign::keys::FingerprintError| e.to_string())
}

/// Seconds since the epoch now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Record an event. A log that was asked for and cannot be written is an
/// error (`AUDIT_LOG_UNWRITABLE`), never a warning: the caller adds what it
/// had already done with [`pkgsign::Error::audit_done`].
pub fn audit(log: Option<&AuditLog>, event: pkgsign::audit::Event) -> Result<(), pkgsign::Error> {
    match log {
        Some(log) => log.record(event),
        None => Ok(()),
    }
}

/// Print warnings on stderr, one `warning:` line each.
pub fn print_warnings(warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {}", super::one_line(w));
    }
}

/// Parse a hash algorithm name (`sha256`, `blake3`, ...).
pub fn parse_hash_alg(s: &str) -> Result<pkgsign::digest::HashAlg, String> {
    s.parse::<pkgsign::digest::HashAlg>()
        .map_err(|e| e.to_string())
}

/// The keys the signatures of the pkgsign signature file `sig` name; None
/// when it cannot be read or parsed, or is a raw signature (which names no
/// key): the verification reports that itself.
pub fn keys_named_by(sig: &std::path::Path) -> Option<Vec<pkgsign::keys::Fingerprint>> {
    match pkgsign::sign::sigfile::read(sig).ok()? {
        pkgsign::sign::sigfile::SignatureFile::Pkgsign(blocks) => {
            Some(blocks.iter().map(|b| b.statement.key.clone()).collect())
        }
        pkgsign::sign::sigfile::SignatureFile::SshSig(s) => Some(vec![s.key.fingerprint()]),
        pkgsign::sign::sigfile::SignatureFile::Raw(_) => None,
    }
}

/// The trusted keys of `--public-key` files and a `--trusted-keys` directory,
/// with load warnings printed. With `signature` (the signature file to
/// check), only the keys its signatures name ([`keys_named_by`]) are looked
/// for in the directory ([`pkgsign::trust::TrustStore::add_dir_for`]).
pub fn load_trust(
    public_keys: &[std::path::PathBuf],
    dir: Option<&std::path::Path>,
    signature: Option<&std::path::Path>,
) -> Result<pkgsign::trust::TrustStore, super::error::CliError> {
    let wanted = signature.and_then(keys_named_by);
    let mut trust = pkgsign::trust::TrustStore::new();
    for p in public_keys {
        trust.add_file(p)?;
    }
    match (dir, wanted.as_deref()) {
        (Some(d), Some(w)) => trust.add_dir_for(d, w)?,
        (Some(d), None) => trust.add_dir(d)?,
        (None, _) => {}
    }
    for w in &trust.warnings {
        eprintln!("warning: {w}");
    }
    if trust.is_empty() {
        return Err(super::error::CliError::NoTrustedKey);
    }
    Ok(trust)
}

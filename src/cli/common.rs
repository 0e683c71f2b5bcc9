//! Argument types shared by several subcommands.

use std::path::PathBuf;

use pkgsign::audit::AuditLog;

/// `--audit-log FILE` (or `PKGSIGN_AUDIT_LOG`).
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// Append one JSON line per event to FILE (default: $PKGSIGN_AUDIT_LOG, if set).
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
}

impl AuditArgs {
    /// Open the log asked for, before the command acts: a log that cannot
    /// be written stops the command (`AUDIT_LOG_UNWRITABLE`).
    pub fn open(&self) -> Result<Option<AuditLog>, pkgsign::Error> {
        AuditLog::from_arg_or_env(self.audit_log.as_deref())
    }
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

/// Parse a duration like `30d`, `12h`, `90m`.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    const CENTURY: u64 = 100 * 365 * 86_400;
    let secs = humantime::parse_duration(s)
        .map(|d| d.as_secs())
        .map_err(|e| format!("{e}; write durations like 30d, 12h or 90m"))?;
    if secs > CENTURY {
        return Err(format!(
            "{s}: longer than 100 years; write durations like 30d, 12h or 90m"
        ));
    }
    Ok(secs)
}

/// Parse an RFC 3339 UTC time like `2026-12-01T00:00:00Z`.
pub fn parse_time(s: &str) -> Result<u64, String> {
    pkgsign::text::parse_time(s)
        .ok_or_else(|| format!("{s:?} is not an RFC 3339 UTC time like 2026-12-01T00:00:00Z"))
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
        pkgsign::sign::sigfile::SignatureFile::Raw(_) => None,
    }
}

/// The trusted keys of `--public-key` files and a `--trusted-keys` directory,
/// with load warnings printed. With `wanted` (the keys the signatures to
/// check name), only those are looked for in the directory
/// ([`pkgsign::trust::TrustStore::add_dir_for`]).
pub fn load_trust(
    public_keys: &[std::path::PathBuf],
    dir: Option<&std::path::Path>,
    wanted: Option<&[pkgsign::keys::Fingerprint]>,
) -> Result<pkgsign::trust::TrustStore, super::error::CliError> {
    let mut trust = pkgsign::trust::TrustStore::new();
    for p in public_keys {
        trust.add_file(p)?;
    }
    match (dir, wanted) {
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

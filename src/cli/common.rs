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
    pub fn log(&self) -> Option<AuditLog> {
        AuditLog::from_arg_or_env(self.audit_log.as_deref())
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
    pkgsign::sigfile::parse_time(s)
        .ok_or_else(|| format!("{s:?} is not an RFC 3339 UTC time like 2026-12-01T00:00:00Z"))
}

/// Parse a key fingerprint.
pub fn parse_fingerprint(s: &str) -> Result<pkgsign::keys::Fingerprint, String> {
    s.parse()
}

/// Seconds since the epoch now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Record an event, turning a failure into a warning: the audit log must
/// not make a completed operation look failed.
pub fn audit(log: Option<&AuditLog>, event: pkgsign::audit::Event) {
    if let Some(log) = log
        && let Err(e) = log.record(event)
    {
        eprintln!("warning: {}", super::one_line(&e.to_string()));
    }
}

/// Parse a hash algorithm name (`sha256`, `blake3`, ...).
pub fn parse_hash_alg(s: &str) -> Result<pkgsign::digest::HashAlg, String> {
    s.parse::<pkgsign::digest::HashAlg>()
        .map_err(|e| e.to_string())
}

/// The trusted keys of `--public-key` files and a `--trusted-keys` directory,
/// with load warnings printed.
pub fn load_trust(
    public_keys: &[std::path::PathBuf],
    dir: Option<&std::path::Path>,
) -> Result<pkgsign::trust::TrustStore, pkgsign::Error> {
    let mut trust = pkgsign::trust::TrustStore::new();
    for p in public_keys {
        trust.add_file(p)?;
    }
    if let Some(d) = dir {
        trust.add_dir(d)?;
    }
    for w in &trust.warnings {
        eprintln!("warning: {w}");
    }
    if trust.is_empty() {
        return Err(pkgsign::Error::NoKeys(
            "no usable trusted key: give --public-key PUB or a --trusted-keys DIR holding .pub files".into(),
        ));
    }
    Ok(trust)
}

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
    humantime::parse_duration(s)
        .map(|d| d.as_secs())
        .map_err(|e| format!("{e}; write durations like 30d, 12h or 90m"))
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

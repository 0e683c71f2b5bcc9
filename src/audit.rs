//! The audit log: one JSON object per line, appended with a single `write`
//! on an `O_APPEND` file so that concurrent processes never interleave or
//! lose lines. Never holds a secret.
//!
//! The log is opened once, up front ([`AuditLog::open`]), so that a log that
//! cannot be written stops a command before it acts: created if missing
//! (mode 0640), never through a symlink, and only a regular file.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

/// Environment variable naming the audit log when `--audit-log` is absent.
pub const ENV: &str = "PKGSIGN_AUDIT_LOG";

/// Environment variable giving the `worker_id` of every event; it wins over
/// the configuration file's `[worker] worker_id`, and the host name is the
/// default.
pub const WORKER_ID_ENV: &str = "PKGSIGN_WORKER_ID";

/// An audit log file, open for appending.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
    host: String,
    worker_id: String,
    file: Arc<File>,
}

/// The name of an audit event, as the log's `event` field spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditEvent {
    /// A package was signed (one event per key).
    PackageSigned,
    /// A signature counted in a verification.
    SignatureVerificationSuccess,
    /// A signature did not count, or a verification was refused.
    SignatureVerificationFailure,
    /// A key pair was generated.
    KeyGenerated,
    /// A retired private key was deleted after its grace window.
    KeyDeleted,
    /// A key was revoked.
    KeyRevoked,
    /// A key rotation finished.
    KeyRotationCompleted,
    /// A key was added to a trusted-keys directory.
    KeyTrusted,
    /// A key was removed from a trusted-keys directory.
    KeyRemoved,
    /// A trusted-keys directory's threshold was changed.
    TrustThresholdChanged,
    /// `trust update` applied a signed key statement.
    LineageApplied,
    /// `trust cosign` added a cosignature to a key statement.
    StatementCosigned,
    /// `trust update` refused a statement: an attempt to change the
    /// directory without a trusted key's signature.
    UnauthorizedUpdateAttempt,
    /// A package checked by digest only (`--checksum`, no key) matched.
    ChecksumVerificationSuccess,
    /// An update was applied.
    UpdateApplied,
    /// An update was refused.
    UpdateRefused,
    /// A signed upload was verified and stored in the release store.
    UpdateStored,
    /// A request to the service was refused before it was served (no or
    /// bad token, wrong role, rate limit, a path outside the allowed
    /// directories).
    AccessDenied,
}

impl AuditEvent {
    /// The spelling in the log (`package_signed`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AuditEvent::PackageSigned => "package_signed",
            AuditEvent::SignatureVerificationSuccess => "signature_verification_success",
            AuditEvent::SignatureVerificationFailure => "signature_verification_failure",
            AuditEvent::KeyGenerated => "key_generated",
            AuditEvent::KeyDeleted => "key_deleted",
            AuditEvent::KeyRevoked => "key_revoked",
            AuditEvent::KeyRotationCompleted => "key_rotation_completed",
            AuditEvent::KeyTrusted => "key_trusted",
            AuditEvent::KeyRemoved => "key_removed",
            AuditEvent::TrustThresholdChanged => "trust_threshold_changed",
            AuditEvent::LineageApplied => "lineage_applied",
            AuditEvent::StatementCosigned => "statement_cosigned",
            AuditEvent::UnauthorizedUpdateAttempt => "unauthorized_update_attempt",
            AuditEvent::ChecksumVerificationSuccess => "checksum_verification_success",
            AuditEvent::UpdateApplied => "update_applied",
            AuditEvent::UpdateRefused => "update_refused",
            AuditEvent::UpdateStored => "update_stored",
            AuditEvent::AccessDenied => "access_denied",
        }
    }
}

impl std::fmt::Display for AuditEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event: its name and the fields that apply.
#[derive(Debug, Clone, Default)]
pub struct Event {
    fields: Map<String, Value>,
}

impl Event {
    /// A new event of kind `event` (e.g. [`AuditEvent::PackageSigned`]).
    pub fn new(event: AuditEvent) -> Self {
        let mut fields = Map::new();
        fields.insert("event".into(), json!(event));
        Event { fields }
    }

    /// Add a field (skipped when `value` is null).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        let v = value.into();
        if !v.is_null() {
            self.fields.insert(key.into(), v);
        }
        self
    }
}

/// The `worker_id` of events: `$PKGSIGN_WORKER_ID` if set and not empty,
/// else `configured` (the configuration file's `[worker] worker_id`), else
/// the host name.
pub fn worker_id(configured: Option<&str>) -> String {
    std::env::var(WORKER_ID_ENV)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| {
            configured
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(host_name)
}

/// The field names seed 004's audit records use, which log pipelines built
/// on it query, added beside pkgsign's own: `signature_algorithm` (the
/// seed's name for `algorithm`) and `public_key_fingerprint` (the same
/// value as `key`). An `algorithm` that names a key (`rsa-3072`, on key
/// events) gives the scheme pkgsign signs with by such a key.
fn seed_fields(obj: &mut Map<String, Value>) {
    if let Some(alg) = obj.get("algorithm").and_then(Value::as_str) {
        let scheme = match alg.strip_prefix("rsa-") {
            Some(bits) if !bits.is_empty() && bits.bytes().all(|b| b.is_ascii_digit()) => {
                "rsa-pss-sha256"
            }
            _ => alg,
        };
        let name = crate::sign::report::seed_algorithm(scheme);
        obj.entry("signature_algorithm").or_insert(json!(name));
    }
    if let Some(key) = obj.get("key").cloned() {
        obj.entry("public_key_fingerprint").or_insert(key);
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

impl AuditLog {
    /// The log path given, or `$PKGSIGN_AUDIT_LOG`, or none.
    pub fn path_from_arg_or_env(path: Option<&Path>) -> Option<PathBuf> {
        path.map(Path::to_path_buf).or_else(|| {
            std::env::var_os(ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
    }

    /// Open the log at `path`, or at `$PKGSIGN_AUDIT_LOG`; `None` when
    /// neither is set. See [`AuditLog::open`].
    pub fn from_arg_or_env(path: Option<&Path>) -> Result<Option<Self>> {
        Self::path_from_arg_or_env(path)
            .map(|p| Self::open(&p))
            .transpose()
    }

    /// Open (creating it, mode 0640) the log at `path` for appending. A
    /// symlink, a directory, a FIFO or a device is refused, and so is a
    /// path whose directory does not exist: [`Error::AuditLogUnwritable`].
    pub fn open(path: &Path) -> Result<Self> {
        let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
        let unwritable = |action: &'static str, source: std::io::Error| Error::AuditLogUnwritable {
            path: path.to_path_buf(),
            action,
            source,
            done: "nothing was done".into(),
        };
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            // O_NOFOLLOW: a symlink planted at the log's name is not
            // followed; O_NONBLOCK: a FIFO there cannot hang the open.
            .custom_flags(flags.bits() as i32)
            .open(path)
            .map_err(|e| unwritable("opening", e))?;
        let meta = file.metadata().map_err(|e| unwritable("opening", e))?;
        if !meta.is_file() {
            return Err(unwritable(
                "opening",
                std::io::Error::other("not a regular file"),
            ));
        }
        Ok(AuditLog {
            path: path.to_path_buf(),
            host: host_name(),
            worker_id: worker_id(None),
            file: Arc::new(file),
        })
    }

    /// Take the `worker_id` of the configuration file (`[worker]
    /// worker_id`), unless `$PKGSIGN_WORKER_ID` is set: see [`worker_id`].
    pub fn with_configured_worker_id(mut self, configured: Option<&str>) -> Self {
        self.worker_id = worker_id(configured);
        self
    }

    /// The `worker_id` every event carries.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one event as one line with one `write` call. A failure is
    /// [`Error::AuditLogUnwritable`] with `done` "nothing was logged"; the
    /// caller says what it had done (see [`Error::audit_done`]).
    pub fn record(&self, event: Event) -> Result<()> {
        let mut obj = Map::new();
        obj.insert(
            "timestamp".into(),
            json!(humantime::format_rfc3339_millis(SystemTime::now()).to_string()),
        );
        obj.extend(event.fields);
        seed_fields(&mut obj);
        obj.insert("worker_id".into(), json!(self.worker_id));
        obj.insert("host".into(), json!(self.host));
        obj.insert("pid".into(), json!(std::process::id()));
        let mut line = Value::Object(obj).to_string();
        line.push('\n');
        let failed = |source: std::io::Error| Error::AuditLogUnwritable {
            path: self.path.clone(),
            action: "appending",
            source,
            done: "the event was not logged".into(),
        };
        // One write on an O_APPEND file: the kernel appends it whole.
        let n = (&*self.file).write(line.as_bytes()).map_err(failed)?;
        if n != line.len() {
            return Err(failed(std::io::Error::other("short write")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_event_names_keep_the_contract_spelling() {
        let contract = [
            (
                AuditEvent::SignatureVerificationSuccess,
                "signature_verification_success",
            ),
            (
                AuditEvent::SignatureVerificationFailure,
                "signature_verification_failure",
            ),
            (AuditEvent::PackageSigned, "package_signed"),
            (AuditEvent::KeyGenerated, "key_generated"),
            (AuditEvent::KeyRotationCompleted, "key_rotation_completed"),
            (AuditEvent::KeyRevoked, "key_revoked"),
            (AuditEvent::KeyTrusted, "key_trusted"),
            (AuditEvent::KeyRemoved, "key_removed"),
            (AuditEvent::LineageApplied, "lineage_applied"),
            (
                AuditEvent::UnauthorizedUpdateAttempt,
                "unauthorized_update_attempt",
            ),
            (AuditEvent::UpdateApplied, "update_applied"),
            (AuditEvent::UpdateRefused, "update_refused"),
            (AuditEvent::KeyDeleted, "key_deleted"),
            (
                AuditEvent::ChecksumVerificationSuccess,
                "checksum_verification_success",
            ),
            (AuditEvent::TrustThresholdChanged, "trust_threshold_changed"),
        ];
        for (e, s) in contract {
            assert_eq!(serde_json::to_string(&e).unwrap(), format!("\"{s}\""));
            assert_eq!(e.as_str(), s);
            assert_eq!(Event::new(e).fields["event"], s);
        }
    }

    #[test]
    fn lines_from_threads_are_whole() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(&dir.path().join("audit.log")).unwrap();
        std::thread::scope(|s| {
            for t in 0..8 {
                let log = log.clone();
                s.spawn(move || {
                    for i in 0..200 {
                        log.record(Event::new(AuditEvent::PackageSigned).with("n", t * 1000 + i))
                            .unwrap();
                    }
                });
            }
        });
        let text = std::fs::read_to_string(log.path()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1600);
        for l in lines {
            let v: Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["event"], "package_signed");
            assert!(v["timestamp"].is_string() && v["host"].is_string());
        }
    }

    #[test]
    fn a_log_that_is_a_symlink_a_directory_or_in_no_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "").unwrap();
        let link = dir.path().join("audit.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for p in [
            link,
            dir.path().to_path_buf(),
            dir.path().join("no/such.log"),
        ] {
            let e = AuditLog::open(&p).unwrap_err();
            assert_eq!(e.code(), "AUDIT_LOG_UNWRITABLE", "{p:?}: {e}");
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"");
    }
}

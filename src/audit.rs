//! The audit log: one JSON object per line, appended with a single `write`
//! on an `O_APPEND` file so that concurrent processes never interleave or
//! lose lines. Never holds a secret.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

/// Environment variable naming the audit log when `--audit-log` is absent.
pub const ENV: &str = "PKGSIGN_AUDIT_LOG";

/// An audit log file.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
    host: String,
}

/// One event: its name and the fields that apply.
#[derive(Debug, Clone, Default)]
pub struct Event {
    fields: Map<String, Value>,
}

impl Event {
    /// A new event named `event` (e.g. `package_signed`).
    pub fn new(event: &str) -> Self {
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

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

impl AuditLog {
    /// The log at `path`, or at `$PKGSIGN_AUDIT_LOG`, or none.
    pub fn from_arg_or_env(path: Option<&Path>) -> Option<Self> {
        let path = path.map(Path::to_path_buf).or_else(|| {
            std::env::var_os(ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })?;
        Some(AuditLog {
            path,
            host: host_name(),
        })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one event as one line with one `write` call.
    pub fn record(&self, event: Event) -> Result<()> {
        let mut obj = Map::new();
        obj.insert(
            "timestamp".into(),
            json!(humantime::format_rfc3339_millis(SystemTime::now()).to_string()),
        );
        obj.extend(event.fields);
        obj.insert("host".into(), json!(self.host));
        obj.insert("pid".into(), json!(std::process::id()));
        let mut line = Value::Object(obj).to_string();
        line.push('\n');
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, "opening audit log", e))?;
        // One write on an O_APPEND file: the kernel appends it whole.
        let n = f
            .write(line.as_bytes())
            .map_err(|e| Error::io(&self.path, "appending to audit log", e))?;
        if n != line.len() {
            return Err(Error::io(
                &self.path,
                "appending to audit log",
                std::io::Error::other("short write"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_from_threads_are_whole() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::from_arg_or_env(Some(&dir.path().join("audit.log"))).unwrap();
        std::thread::scope(|s| {
            for t in 0..8 {
                let log = log.clone();
                s.spawn(move || {
                    for i in 0..200 {
                        log.record(Event::new("package_signed").with("n", t * 1000 + i))
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
}

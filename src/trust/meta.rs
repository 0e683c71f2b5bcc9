//! The human-readable metadata file kept in a trusted-keys directory
//! (`trust.toml`) and in a signing-keys directory (`keys.toml`).
//!
//! Entries are keyed by key fingerprint, never by file name, so a key file
//! that is renamed or linked still gets its own window. See
//! `docs/trust-directory.md`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, FileError, ParseError, Result};
use crate::fsutil::{self, Replace};
use crate::keys::Fingerprint;
use crate::text::{format_time, parse_time};

/// File name of the metadata in a trusted-keys directory.
pub const TRUST_FILE: &str = "trust.toml";
/// File name of the metadata in a signing-keys directory.
pub const KEYS_FILE: &str = "keys.toml";
/// Largest metadata file accepted (about 1 MiB: thousands of keys).
pub const META_LIMIT: u64 = 4 * 1024 * 1024;
/// The newest metadata format version (2 adds lineage fields and the threshold).
const VERSION: u32 = 2;
/// Longest name or reason.
const TEXT_MAX: usize = 256;

/// One key's metadata as written in the file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// `SHA256:...` fingerprint.
    pub fingerprint: String,
    /// The key file's name in the directory (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Human name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Start of the validity window (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// End of the validity window, i.e. of the rotation grace period (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// When the key was revoked (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// Why it was revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_reason: Option<String>,
    /// The first key of the lineage this key belongs to (absent: the key is
    /// its own principal). Set by `trust update` and `key-rotate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The key this key endorsed as its successor: once set, the key has no
    /// more say over keys (it is no longer the head of its lineage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor: Option<String>,
    /// The sequence number of the last key statement of this key's lineage
    /// applied here: the statement that introduced the key, or the last one
    /// it signed. Its next statement must carry this number plus one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    version: u32,
    /// Principals whose signatures a package needs (trusted-keys directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    threshold: Option<u32>,
    #[serde(default, rename = "key")]
    keys: Vec<Entry>,
}

/// A key's window and state, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyState {
    /// Fingerprint.
    pub fingerprint: Option<Fingerprint>,
    /// Name.
    pub name: Option<String>,
    /// File name.
    pub file: Option<String>,
    /// Not valid before (seconds since the epoch).
    pub not_before: Option<u64>,
    /// Not valid after.
    pub not_after: Option<u64>,
    /// Revocation time and reason.
    pub revoked: Option<(u64, String)>,
    /// The first key of its lineage (None: the key is its own principal).
    pub principal: Option<Fingerprint>,
    /// The successor it endorsed (None: it is the head of its lineage).
    pub successor: Option<Fingerprint>,
    /// The last statement sequence number of its lineage applied here.
    pub sequence: Option<u64>,
}

impl KeyState {
    /// The entry form.
    pub fn to_entry(&self) -> Entry {
        Entry {
            fingerprint: self
                .fingerprint
                .as_ref()
                .map(|f| f.to_string())
                .unwrap_or_default(),
            file: self.file.clone(),
            name: self.name.clone(),
            not_before: self.not_before.map(format_time),
            not_after: self.not_after.map(format_time),
            revoked_at: self.revoked.as_ref().map(|(t, _)| format_time(*t)),
            revoked_reason: self.revoked.as_ref().map(|(_, r)| r.clone()),
            principal: self.principal.as_ref().map(|f| f.to_string()),
            successor: self.successor.as_ref().map(|f| f.to_string()),
            sequence: self.sequence,
        }
    }

    /// Whether this entry uses a field of format version 2.
    fn needs_v2(&self) -> bool {
        self.principal.is_some() || self.successor.is_some() || self.sequence.is_some()
    }

    /// Close the window at `t`, unless it already closes earlier: a
    /// retirement only ever shortens a window. Returns whether it changed.
    pub fn retire_at(&mut self, t: u64) -> bool {
        let shorter = self.not_after.is_none_or(|na| t < na);
        if shorter {
            self.not_after = Some(t);
        }
        shorter
    }
}

/// The metadata of one directory.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    path: PathBuf,
    keys: Vec<KeyState>,
    /// Position of each fingerprint's entry in `keys`.
    index: HashMap<Fingerprint, usize>,
    threshold: Option<u32>,
}

fn text_ok(s: &str) -> bool {
    s.len() <= TEXT_MAX && !s.chars().any(|c| c.is_control())
}

impl Metadata {
    /// Load `dir/file_name`; a missing file is empty metadata. A file that
    /// does not parse is an error (never "trust everything").
    pub fn load(dir: &Path, file_name: &str) -> Result<Self> {
        let path = dir.join(file_name);
        let data = match fsutil::read_bounded(&path, META_LIMIT, "metadata file") {
            Ok(d) => d,
            Err(Error::File(FileError::NotFound { .. })) => {
                return Ok(Metadata {
                    path,
                    ..Metadata::default()
                });
            }
            Err(e) => return Err(e),
        };
        Self::parse(path, &data)
    }

    /// Parse the bytes `data` of the metadata file `path` (see [`Metadata::load`]).
    pub fn parse(path: PathBuf, data: &[u8]) -> Result<Self> {
        let bad = |reason: String| {
            Error::Parse(ParseError::Metadata {
                path: path.clone(),
                reason,
            })
        };
        let text = std::str::from_utf8(data).map_err(|_| bad("not UTF-8 text".into()))?;
        let form: FileForm = toml::from_str(text).map_err(|e| bad(one_line(&e.to_string())))?;
        if !(1..=VERSION).contains(&form.version) {
            return Err(bad(format!(
                "version {} is not supported (this pkgsign reads versions 1 to {VERSION}); upgrade pkgsign",
                form.version
            )));
        }
        if form.threshold == Some(0) {
            return Err(bad("threshold must be at least 1".into()));
        }
        let mut keys: Vec<KeyState> = Vec::with_capacity(form.keys.len());
        let mut seen = std::collections::HashSet::with_capacity(form.keys.len());
        for (i, e) in form.keys.iter().enumerate() {
            let st = entry_state(e).map_err(|what| bad(format!("key entry {}: {what}", i + 1)))?;
            if let Some(fp) = &st.fingerprint
                && !seen.insert(fp.clone())
            {
                return Err(bad(format!(
                    "key entry {}: fingerprint {fp} is listed twice",
                    i + 1
                )));
            }
            keys.push(st);
        }
        let index = index_of(&keys);
        Ok(Metadata {
            path,
            keys,
            index,
            threshold: form.threshold,
        })
    }

    /// The file this metadata lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Principals whose valid signatures a package needs, as set by
    /// `trust threshold` (None: 1).
    pub fn threshold(&self) -> Option<u32> {
        self.threshold
    }

    /// Set (or with None clear) the directory's threshold.
    pub fn set_threshold(&mut self, t: Option<u32>) {
        self.threshold = t;
    }

    /// All entries.
    pub fn keys(&self) -> &[KeyState] {
        &self.keys
    }

    /// The entry for `fp`.
    pub fn get(&self, fp: &Fingerprint) -> Option<&KeyState> {
        self.index.get(fp).and_then(|&i| self.keys.get(i))
    }

    /// The entry for `fp`, created empty if missing.
    pub fn entry(&mut self, fp: &Fingerprint) -> &mut KeyState {
        let idx = match self.index.get(fp) {
            Some(&i) => i,
            None => {
                self.keys.push(KeyState {
                    fingerprint: Some(fp.clone()),
                    ..KeyState::default()
                });
                let i = self.keys.len() - 1;
                self.index.insert(fp.clone(), i);
                i
            }
        };
        #[allow(clippy::indexing_slicing)]
        // `index` holds positions of `keys` only, and `idx` was just found
        // there or pushed; a `get_mut` with a fallback would need a second
        // `&mut` path the borrow checker refuses.
        &mut self.keys[idx]
    }

    /// Drop the entry for `fp`.
    pub fn remove(&mut self, fp: &Fingerprint) {
        if self.index.remove(fp).is_some() {
            self.keys.retain(|k| k.fingerprint.as_ref() != Some(fp));
            self.index = index_of(&self.keys);
        }
    }

    /// The text written to disk.
    pub fn to_text(&self) -> Result<String> {
        // Version 1 unless a field of version 2 is used, so that a
        // directory that uses none stays readable by older pkgsign; one that
        // does is refused by them (they would ignore the new rules).
        let v2 = self.threshold.is_some() || self.keys.iter().any(KeyState::needs_v2);
        let form = FileForm {
            version: if v2 { VERSION } else { 1 },
            threshold: self.threshold,
            keys: self.keys.iter().map(KeyState::to_entry).collect(),
        };
        let body = toml::to_string(&form).map_err(|e| {
            Error::Parse(ParseError::Metadata {
                path: self.path.clone(),
                reason: e.to_string(),
            })
        })?;
        Ok(format!(
            "# pkgsign key metadata, kept by pkgsign (trust add/revoke/remove, key-rotate).\n\
             # Keys are matched by fingerprint. Times are RFC 3339 UTC. See docs/trust-directory.md.\n{body}"
        ))
    }

    /// Write atomically (temp file, fsync, rename).
    pub fn save(&self) -> Result<()> {
        let text = self.to_text()?;
        fsutil::write_atomic(&self.path, text.as_bytes(), 0o644, Replace::Allowed)
    }
}

/// One entry of the file, checked and parsed; the error says what is wrong
/// with it (the caller adds which entry).
fn entry_state(e: &Entry) -> std::result::Result<KeyState, String> {
    let fp: Fingerprint = e.fingerprint.parse().map_err(|m| format!("{m}"))?;
    let time = |v: &Option<String>, field: &str| -> std::result::Result<Option<u64>, String> {
        v.as_deref()
            .map(|s| {
                parse_time(s).ok_or_else(|| {
                    format!("{field} must be an RFC 3339 UTC time like 2026-12-01T00:00:00Z")
                })
            })
            .transpose()
    };
    for (v, field) in [
        (&e.name, "name"),
        (&e.file, "file"),
        (&e.revoked_reason, "revoked_reason"),
    ] {
        if v.as_deref().is_some_and(|s| !text_ok(s)) {
            return Err(format!(
                "{field} is longer than {TEXT_MAX} bytes or holds control characters"
            ));
        }
    }
    let revoked_at = time(&e.revoked_at, "revoked_at")?;
    let key_ref =
        |v: &Option<String>, field: &str| -> std::result::Result<Option<Fingerprint>, String> {
            v.as_deref()
                .map(|s| {
                    s.parse::<Fingerprint>()
                        .map_err(|m| format!("{field}: {m}"))
                })
                .transpose()
        };
    if e.revoked_reason.is_some() && revoked_at.is_none() {
        return Err("revoked_reason without revoked_at".into());
    }
    Ok(KeyState {
        fingerprint: Some(fp),
        name: e.name.clone(),
        file: e.file.clone(),
        not_before: time(&e.not_before, "not_before")?,
        not_after: time(&e.not_after, "not_after")?,
        revoked: revoked_at.map(|t| (t, e.revoked_reason.clone().unwrap_or_default())),
        principal: key_ref(&e.principal, "principal")?,
        successor: key_ref(&e.successor, "successor")?,
        sequence: e.sequence,
    })
}

/// Where each `[[key]]` entry's body is in the text of a metadata file that
/// [`Metadata::parse`] accepted (`keys` being what it gave): the end of the
/// file's head (the top-level fields, before the first entry), and the byte
/// range after each header line up to the next header line, one per entry,
/// in order. None unless every entry is written as a `[[key]]` table with
/// that exact header line (as pkgsign writes it); a hand-written file in
/// another TOML form is then always parsed whole.
pub fn entry_spans(data: &[u8], keys: &[KeyState]) -> Option<(usize, Vec<(usize, usize)>)> {
    let mut starts = Vec::with_capacity(keys.len());
    let mut headers = Vec::with_capacity(keys.len());
    let mut at = 0;
    for line in data.split_inclusive(|&b| b == b'\n') {
        if line.strip_suffix(b"\n").unwrap_or(line) == b"[[key]]" {
            headers.push(at);
            starts.push(at + line.len());
        }
        at += line.len();
    }
    if starts.len() != keys.len() {
        return None;
    }
    let head_end = headers.first().copied().unwrap_or(data.len());
    let ends = headers.iter().skip(1).copied().chain([data.len()]);
    Some((head_end, starts.into_iter().zip(ends).collect()))
}

/// Parse one entry's body, cut out of a metadata file with [`entry_spans`]:
/// the same checks as for the whole file.
pub fn parse_entry(path: &Path, body: &[u8]) -> Result<KeyState> {
    let bad = |reason: String| {
        Error::Parse(ParseError::Metadata {
            path: path.to_path_buf(),
            reason,
        })
    };
    let text = std::str::from_utf8(body).map_err(|_| bad("not UTF-8 text".into()))?;
    let e: Entry = toml::from_str(text).map_err(|e| bad(one_line(&e.to_string())))?;
    entry_state(&e).map_err(bad)
}

/// Where each fingerprint's entry is.
fn index_of(keys: &[KeyState]) -> HashMap<Fingerprint, usize> {
    keys.iter()
        .enumerate()
        .filter_map(|(i, k)| k.fingerprint.clone().map(|f| (f, i)))
        .collect()
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(n: u8) -> Fingerprint {
        Fingerprint::of_spki_der(&[n])
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Metadata::load(dir.path(), TRUST_FILE).unwrap();
        assert!(m.keys().is_empty());
        let e = m.entry(&fp(1));
        e.name = Some("release".into());
        e.not_after = Some(1_800_000_000);
        m.entry(&fp(2)).revoked = Some((1_700_000_000, "leaked".into()));
        m.save().unwrap();
        let back = Metadata::load(dir.path(), TRUST_FILE).unwrap();
        assert_eq!(back.keys(), m.keys());
        assert!(m.to_text().unwrap().contains("version = 1"));
        // Lineage fields and a threshold need version 2.
        m.entry(&fp(1)).successor = Some(fp(3));
        m.entry(&fp(3)).principal = Some(fp(1));
        m.entry(&fp(3)).sequence = Some(4);
        m.set_threshold(Some(2));
        m.save().unwrap();
        assert!(m.to_text().unwrap().contains("version = 2"));
        let back = Metadata::load(dir.path(), TRUST_FILE).unwrap();
        assert_eq!(back.keys(), m.keys());
        assert_eq!(back.threshold(), Some(2));
    }

    #[test]
    fn bad_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(TRUST_FILE);
        for bad in [
            "version = 3\n",
            "version = 2\nthreshold = 0\n",
            "version = 2\n[[key]]\nfingerprint = \"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\"\nsuccessor = \"nope\"\n",
            "garbage",
            "version = 1\n[[key]]\nfingerprint = \"nope\"\n",
            "version = 1\n[[key]]\nfingerprint = \"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\"\nunknown = 1\n",
            "version = 1\n[[key]]\nfingerprint = \"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\"\nnot_after = \"tomorrow\"\n",
        ] {
            std::fs::write(&p, bad).unwrap();
            assert!(
                matches!(
                    Metadata::load(dir.path(), TRUST_FILE),
                    Err(Error::Parse(ParseError::Metadata { .. }))
                ),
                "{bad}"
            );
        }
    }
}

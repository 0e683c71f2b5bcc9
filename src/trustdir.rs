//! Changing a trusted-keys directory: add, revoke and remove keys, and list
//! them. Every change takes the directory's lock and writes each file
//! atomically; the metadata (`trust.toml`) is rewritten as a whole.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil::{self, DirLock, Replace};
use crate::keys::{Fingerprint, PublicKey, encoding};
use crate::meta::{KeyState, Metadata, TRUST_FILE};
use crate::trust::{TrustStore, describe_state};

/// An open, locked trusted-keys directory.
#[derive(Debug)]
pub struct TrustDir {
    dir: PathBuf,
    meta: Metadata,
    _lock: DirLock,
}

/// One key as `trust list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    /// Fingerprint.
    pub fingerprint: Fingerprint,
    /// Name.
    pub name: String,
    /// Algorithm (`ed25519`, `rsa-3072`), or `unknown` for a revoked key whose file is gone.
    pub algorithm: String,
    /// The `.pub` file, if present.
    pub file: Option<String>,
    /// Window start.
    pub not_before: Option<String>,
    /// Window end.
    pub not_after: Option<String>,
    /// `active`, `retiring`, `expired`, `not-yet-valid` or `revoked`.
    pub state: &'static str,
    /// The state in words.
    pub detail: String,
    /// Revocation reason.
    pub revoked_reason: Option<String>,
}

fn state_word(st: &KeyState, now: u64) -> &'static str {
    if st.revoked.is_some() {
        "revoked"
    } else if st.not_before.is_some_and(|nb| now < nb) {
        "not-yet-valid"
    } else if st.not_after.is_some_and(|na| now > na) {
        "expired"
    } else if st.not_after.is_some() {
        "retiring"
    } else {
        "active"
    }
}

impl TrustDir {
    /// Open (and lock) `dir`, creating it if missing.
    pub fn open(dir: &Path) -> Result<Self> {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "creating directory", e))?;
        }
        let lock = fsutil::lock_dir(dir, true)?;
        let meta = Metadata::load(dir, TRUST_FILE)?;
        Ok(TrustDir {
            dir: dir.to_path_buf(),
            meta,
            _lock: lock,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The metadata.
    pub fn meta(&self) -> &Metadata {
        &self.meta
    }

    /// The keys as a store (reads every `.pub`).
    pub fn store(&self) -> Result<TrustStore> {
        TrustStore::load_dir(&self.dir)
    }

    /// Add (or update the window of) a key. Its `.pub` is written into the
    /// directory as `NAME.pub` (or `NAME-XXXXXXXX.pub` if that name is
    /// taken). A revoked key cannot be added back.
    pub fn add(
        &mut self,
        public: &PublicKey,
        name: &str,
        not_before: Option<u64>,
        not_after: Option<u64>,
    ) -> Result<PathBuf> {
        crate::keys::generate::check_name(name)?;
        let fp = public.fingerprint();
        if let Some((t, reason)) = self.meta.get(&fp).and_then(|s| s.revoked.clone()) {
            return Err(Error::Usage(format!(
                "key {fp} was revoked at {} ({reason}); a revoked key is never trusted again: use a new key",
                crate::sigfile::format_time(t)
            )));
        }
        if let (Some(nb), Some(na)) = (not_before, not_after)
            && na < nb
        {
            return Err(Error::Usage("--not-after is before --not-before".into()));
        }
        let file = self.file_for(&fp, name)?;
        let path = self.dir.join(&file);
        let pem = encoding::public_key_to_pem(public)?;
        // Metadata first: an entry whose file is not there yet trusts nothing.
        let e = self.meta.entry(&fp);
        e.name = Some(name.to_string());
        e.file = Some(file);
        e.not_before = not_before;
        e.not_after = not_after;
        self.meta.save()?;
        fsutil::write_atomic(&path, pem.as_bytes(), 0o644, Replace::Allowed)?;
        fsutil::sync_dir(&self.dir)?;
        Ok(path)
    }

    /// Shorten (never lengthen) a key's window end.
    pub fn retire(&mut self, fp: &Fingerprint, not_after: u64) -> Result<()> {
        let e = self.meta.entry(fp);
        e.not_after = Some(e.not_after.map_or(not_after, |na| na.min(not_after)));
        self.meta.save()
    }

    fn file_for(&self, fp: &Fingerprint, name: &str) -> Result<String> {
        // Reuse the file already holding this key.
        if let Some(f) = self.meta.get(fp).and_then(|s| s.file.clone())
            && !f.contains('/')
        {
            return Ok(f);
        }
        let plain = format!("{name}.pub");
        let p = self.dir.join(&plain);
        match encoding::load_public_key(&p) {
            Err(Error::FileNotFound { .. }) => Ok(plain),
            Ok(k) if &k.fingerprint() == fp => Ok(plain),
            _ => Ok(format!("{name}-{}.pub", fp.short_hex())),
        }
    }

    /// Revoke a key at `at` with `reason`. The entry stays (with the file, if
    /// any) so the key can never be trusted again by accident.
    pub fn revoke(&mut self, fp: &Fingerprint, at: u64, reason: &str) -> Result<bool> {
        crate::sigfile::check_comment(reason)
            .map_err(|e| Error::Usage(format!("--reason: {e}")))?;
        let e = self.meta.entry(fp);
        if e.revoked.is_some() {
            return Ok(false);
        }
        e.revoked = Some((at, reason.to_string()));
        self.meta.save()?;
        Ok(true)
    }

    /// Remove a key: delete its `.pub` files and its entry. A revoked key's
    /// entry is kept as a tombstone so that the key stays revoked.
    pub fn remove(&mut self, fp: &Fingerprint) -> Result<usize> {
        let mut removed = 0;
        for (path, key_fp) in self.pub_files()? {
            if &key_fp == fp {
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, "removing", e))?;
                removed += 1;
            }
        }
        let known = self.meta.get(fp).is_some();
        if removed == 0 && !known {
            return Err(Error::Usage(format!(
                "key {fp} is not in {}; see `pkgsign trust list {}`",
                self.dir.display(),
                self.dir.display()
            )));
        }
        if self.meta.get(fp).is_some_and(|s| s.revoked.is_some()) {
            self.meta.entry(fp).file = None;
        } else {
            self.meta.remove(fp);
        }
        self.meta.save()?;
        fsutil::sync_dir(&self.dir)?;
        Ok(removed)
    }

    fn pub_files(&self) -> Result<Vec<(PathBuf, Fingerprint)>> {
        let mut out = Vec::new();
        let rd = std::fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, "listing", e))?;
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "pub")
                && let Ok(k) = encoding::load_public_key(&p)
            {
                out.push((p, k.fingerprint()));
            }
        }
        Ok(out)
    }

    /// Every key with its state at `now`, plus revoked keys whose file is gone.
    pub fn list(&self, now: u64) -> Result<(Vec<Listed>, Vec<String>)> {
        let store = self.store()?;
        let mut out: Vec<Listed> = store
            .keys()
            .map(|k| Listed {
                fingerprint: k.fingerprint.clone(),
                name: k.name.clone(),
                algorithm: k.public.algorithm().to_string(),
                file: k
                    .source
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned()),
                not_before: k.state.not_before.map(crate::sigfile::format_time),
                not_after: k.state.not_after.map(crate::sigfile::format_time),
                state: state_word(&k.state, now),
                detail: describe_state(&k.state, now),
                revoked_reason: k.state.revoked.as_ref().map(|(_, r)| r.clone()),
            })
            .collect();
        for st in self.meta.keys() {
            let Some(fp) = &st.fingerprint else { continue };
            if store.get(fp).is_none() && st.revoked.is_some() {
                out.push(Listed {
                    fingerprint: fp.clone(),
                    name: st.name.clone().unwrap_or_default(),
                    algorithm: "unknown".into(),
                    file: None,
                    not_before: st.not_before.map(crate::sigfile::format_time),
                    not_after: st.not_after.map(crate::sigfile::format_time),
                    state: "revoked",
                    detail: describe_state(st, now),
                    revoked_reason: st.revoked.as_ref().map(|(_, r)| r.clone()),
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.fingerprint.cmp(&b.fingerprint)));
        let mut warnings = store.late_warnings();
        warnings.extend(store.warnings);
        Ok((out, warnings))
    }
}

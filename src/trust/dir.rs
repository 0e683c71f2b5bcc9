//! Changing a trusted-keys directory: add, revoke and remove keys, and list
//! them. Every change takes the directory's lock and writes each file
//! atomically; the metadata (`trust.toml`) is rewritten as a whole.

use std::path::{Path, PathBuf};

use crate::error::{Error, FileError, Invalid, Result};
use crate::fsutil::{self, DirLock};
use crate::keys::{Fingerprint, PublicKey, encoding};
use crate::trust::meta::{KeyState, Metadata, TRUST_FILE};
use crate::trust::{TrustStore, describe_state};

/// An open, locked trusted-keys directory.
#[derive(Debug)]
pub struct TrustDir {
    dir: PathBuf,
    meta: Metadata,
    /// `.pub` files to write at the next [`TrustDir::commit`] (after the
    /// metadata, so that a key is never trusted without its entry).
    staged: Vec<(PathBuf, String)>,
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
    /// Where the key stands now.
    pub state: KeyStatus,
    /// The state in words.
    pub detail: String,
    /// Revocation reason.
    pub revoked_reason: Option<String>,
    /// The first key of its lineage, when it joined one through `trust update`
    /// or `key-rotate` (keys of one lineage count once for a threshold).
    pub principal: Option<Fingerprint>,
    /// The key it endorsed, if any: it is then no longer its lineage's head.
    pub successor: Option<Fingerprint>,
}

/// Where a trusted key stands at a time, as `trust list` shows it; the JSON
/// spelling is `active`, `retiring`, `expired`, `not-yet-valid` or `revoked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum KeyStatus {
    /// Trusted with no end of window.
    Active,
    /// Trusted now, until the end of its window.
    Retiring,
    /// Its window has ended.
    Expired,
    /// Its window has not begun.
    NotYetValid,
    /// Revoked.
    Revoked,
}

impl KeyStatus {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Retiring => "retiring",
            KeyStatus::Expired => "expired",
            KeyStatus::NotYetValid => "not-yet-valid",
            KeyStatus::Revoked => "revoked",
        }
    }
}

impl std::fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn state_word(st: &KeyState, now: u64) -> KeyStatus {
    if st.revoked.is_some() {
        KeyStatus::Revoked
    } else if st.not_before.is_some_and(|nb| now < nb) {
        KeyStatus::NotYetValid
    } else if st.not_after.is_some_and(|na| now > na) {
        KeyStatus::Expired
    } else if st.not_after.is_some() {
        KeyStatus::Retiring
    } else {
        KeyStatus::Active
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
            staged: Vec::new(),
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
        let path = self.stage_key(public, name, not_before, not_after)?;
        self.commit()?;
        Ok(path)
    }

    /// [`TrustDir::add`] in memory: the entry is changed and the `.pub` is
    /// written by the next [`TrustDir::commit`].
    pub fn stage_key(
        &mut self,
        public: &PublicKey,
        name: &str,
        not_before: Option<u64>,
        not_after: Option<u64>,
    ) -> Result<PathBuf> {
        crate::keys::generate::check_name(name)?;
        let fp = public.fingerprint();
        if let Some((t, reason)) = self.meta.get(&fp).and_then(|s| s.revoked.clone()) {
            return Err(Invalid::RevokedKeyReadded {
                key: fp.to_string(),
                at: crate::text::format_time(t),
                reason,
            }
            .into());
        }
        if let (Some(nb), Some(na)) = (not_before, not_after)
            && na < nb
        {
            return Err(Invalid::WindowReversed.into());
        }
        let file = self.file_for(&fp, name)?;
        let path = self.dir.join(&file);
        let pem = encoding::public_key_to_pem(public)?;
        let e = self.meta.entry(&fp);
        e.name = Some(name.to_string());
        e.file = Some(file);
        e.not_before = not_before;
        e.not_after = not_after;
        self.staged
            .retain(|(p, _)| p.as_os_str() != path.as_os_str());
        self.staged.push((path.clone(), pem));
        Ok(path)
    }

    /// Write what was changed in memory: the metadata first (an entry
    /// whose file is not there yet trusts nothing), then the staged `.pub`
    /// files, each atomically.
    pub fn commit(&mut self) -> Result<()> {
        self.meta.save()?;
        let staged = std::mem::take(&mut self.staged);
        fsutil::write_atomic_batch(&self.dir, &staged, 0o644)?;
        fsutil::sync_dir(&self.dir)
    }

    /// The metadata, to change in memory; [`TrustDir::commit`] writes it.
    pub fn meta_mut(&mut self) -> &mut Metadata {
        &mut self.meta
    }

    /// Record that `old` endorsed `new` in statement `sequence`: `new` joins
    /// `old`'s lineage (principal), and `old` is no longer its head.
    /// Written by the next [`TrustDir::commit`].
    pub fn link_successor(&mut self, old: &Fingerprint, new: &Fingerprint, sequence: u64) {
        let principal = self.principal_of(old);
        let o = self.meta.entry(old);
        o.successor = Some(new.clone());
        o.sequence = Some(sequence);
        let n = self.meta.entry(new);
        n.principal = Some(principal);
        n.sequence = Some(sequence);
    }

    /// The principal of `fp`: the first key of its lineage.
    pub fn principal_of(&self, fp: &Fingerprint) -> Fingerprint {
        self.meta
            .get(fp)
            .and_then(|s| s.principal.clone())
            .unwrap_or_else(|| fp.clone())
    }

    /// The sequence number the next statement signed by `fp` carries.
    pub fn next_sequence(&self, fp: &Fingerprint) -> u64 {
        self.meta
            .get(fp)
            .and_then(|s| s.sequence)
            .unwrap_or(0)
            .saturating_add(1)
    }

    /// Set the directory's threshold: how many principals a package needs.
    pub fn set_threshold(&mut self, n: u32) -> Result<()> {
        if n == 0 {
            return Err(Invalid::ThresholdZero.into());
        }
        self.meta.set_threshold((n > 1).then_some(n));
        self.meta.save()
    }

    /// Shorten (never lengthen) a key's window end.
    pub fn retire(&mut self, fp: &Fingerprint, not_after: u64) -> Result<()> {
        let e = self.meta.entry(fp);
        e.retire_at(not_after);
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
        // Taken by another key's entry, or by a file staged in this run.
        let claimed = self.meta.keys().iter().any(|k| {
            k.file.as_deref() == Some(plain.as_str()) && k.fingerprint.as_ref() != Some(fp)
        }) || self
            .staged
            .iter()
            .any(|(sp, _)| sp.as_os_str() == p.as_os_str());
        if claimed {
            return Ok(format!("{name}-{}.pub", fp.short_hex()));
        }
        match encoding::load_public_key(&p) {
            Err(Error::File(FileError::NotFound { .. })) => Ok(plain),
            Ok(k) if &k.fingerprint() == fp => Ok(plain),
            _ => Ok(format!("{name}-{}.pub", fp.short_hex())),
        }
    }

    /// Revoke a key at `at` with `reason`. The entry stays (with the file, if
    /// any) so the key can never be trusted again by accident.
    pub fn revoke(&mut self, fp: &Fingerprint, at: u64, reason: &str) -> Result<bool> {
        crate::text::check_comment(reason).map_err(|reason| Invalid::Reason { reason })?;
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
            return Err(Invalid::KeyNotInDir {
                key: fp.to_string(),
                dir: self.dir.clone(),
            }
            .into());
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
                not_before: k.state.not_before.map(crate::text::format_time),
                not_after: k.state.not_after.map(crate::text::format_time),
                state: state_word(&k.state, now),
                detail: describe_state(&k.state, now),
                revoked_reason: k.state.revoked.as_ref().map(|(_, r)| r.clone()),
                principal: k.state.principal.clone(),
                successor: k.state.successor.clone(),
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
                    not_before: st.not_before.map(crate::text::format_time),
                    not_after: st.not_after.map(crate::text::format_time),
                    state: KeyStatus::Revoked,
                    detail: describe_state(st, now),
                    revoked_reason: st.revoked.as_ref().map(|(_, r)| r.clone()),
                    principal: st.principal.clone(),
                    successor: st.successor.clone(),
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.fingerprint.cmp(&b.fingerprint)));
        let mut warnings = store.late_warnings();
        warnings.extend(store.warnings);
        Ok((out, warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeySpec, generate};

    const T: u64 = 1_800_000_000;

    #[test]
    fn key_status_json_keeps_the_trust_list_spelling() {
        for (st, s) in [
            (KeyStatus::Active, "active"),
            (KeyStatus::Retiring, "retiring"),
            (KeyStatus::Expired, "expired"),
            (KeyStatus::NotYetValid, "not-yet-valid"),
            (KeyStatus::Revoked, "revoked"),
        ] {
            assert_eq!(serde_json::to_string(&st).unwrap(), format!("\"{s}\""));
            assert_eq!(st.to_string(), s);
        }
    }

    fn public() -> PublicKey {
        generate(KeySpec::Ed25519).unwrap().public_key()
    }

    fn open() -> (tempfile::TempDir, TrustDir) {
        let d = tempfile::tempdir().unwrap();
        let t = TrustDir::open(&d.path().join("trusted")).unwrap();
        (d, t)
    }

    fn listed<'a>(l: &'a [Listed], fp: &Fingerprint) -> &'a Listed {
        l.iter().find(|k| &k.fingerprint == fp).unwrap()
    }

    #[test]
    fn a_revoked_key_stays_revoked_through_remove_and_add() {
        let (_d, mut t) = open();
        let k = public();
        let fp = k.fingerprint();
        let path = t.add(&k, "k", None, None).unwrap();
        assert!(t.revoke(&fp, T, "leaked").unwrap());
        assert!(!t.revoke(&fp, T + 1, "again").unwrap());
        assert_eq!(t.remove(&fp).unwrap(), 1);
        assert!(!path.exists());
        // The tombstone: listed, still revoked, with the first reason.
        let (l, _) = t.list(T + 5).unwrap();
        let e = listed(&l, &fp);
        assert_eq!((e.state, e.file.as_deref()), (KeyStatus::Revoked, None));
        assert_eq!(e.revoked_reason.as_deref(), Some("leaked"));
        assert!(matches!(
            t.add(&k, "k", None, None),
            Err(Error::Invalid(Invalid::RevokedKeyReadded { .. }))
        ));
        // Dropped back in by hand: still revoked for a verifier.
        std::fs::write(
            t.path().join("back.pub"),
            encoding::public_key_to_pem(&k).unwrap(),
        )
        .unwrap();
        let store = TrustStore::load_dir(t.path()).unwrap();
        assert!(matches!(
            store.decide(&fp, T + 5, None),
            crate::trust::Decision::Refused(crate::trust::Refusal::KeyRevoked, _)
        ));
        // Reloading from disk keeps all of it.
        drop(t);
        let d = _d.path().join("trusted");
        let t = TrustDir::open(&d).unwrap();
        assert!(t.meta().get(&fp).unwrap().revoked.is_some());
    }

    #[test]
    fn retire_only_shortens_a_window() {
        let (_d, mut t) = open();
        let k = public();
        let fp = k.fingerprint();
        t.add(&k, "k", Some(T), None).unwrap();
        t.retire(&fp, T + 100).unwrap();
        t.retire(&fp, T + 200).unwrap();
        assert_eq!(t.meta().get(&fp).unwrap().not_after, Some(T + 100));
        t.retire(&fp, T + 50).unwrap();
        assert_eq!(t.meta().get(&fp).unwrap().not_after, Some(T + 50));
    }

    #[test]
    fn add_never_overwrites_another_keys_file() {
        let (_d, mut t) = open();
        let (a, b) = (public(), public());
        let pa = t.add(&a, "k", None, None).unwrap();
        let pb = t.add(&b, "k", None, None).unwrap();
        assert_ne!(pa, pb);
        assert_eq!(encoding::load_public_key(&pa).unwrap(), a);
        assert_eq!(encoding::load_public_key(&pb).unwrap(), b);
        // Adding a key again updates its window in place.
        let pa2 = t.add(&a, "k", Some(T), Some(T + 10)).unwrap();
        assert_eq!(pa2, pa);
        let st = t.meta().get(&a.fingerprint()).unwrap();
        assert_eq!((st.not_before, st.not_after), (Some(T), Some(T + 10)));
        assert!(matches!(
            t.add(&b, "k", Some(T + 10), Some(T)),
            Err(Error::Invalid(Invalid::WindowReversed))
        ));
        assert!(t.add(&b, "../evil", None, None).is_err());
    }

    #[test]
    fn list_shows_each_state() {
        let (_d, mut t) = open();
        let keys: Vec<PublicKey> = (0..5).map(|_| public()).collect();
        t.add(&keys[0], "active", None, None).unwrap();
        t.add(&keys[1], "retiring", Some(T - 10), Some(T + 10))
            .unwrap();
        t.add(&keys[2], "expired", None, Some(T - 1)).unwrap();
        t.add(&keys[3], "later", Some(T + 1), None).unwrap();
        t.add(&keys[4], "revoked", None, Some(T + 10)).unwrap();
        t.revoke(&keys[4].fingerprint(), T - 5, "r").unwrap();
        let (l, warnings) = t.list(T).unwrap();
        assert!(warnings.is_empty());
        let states: Vec<(&str, &str)> = l
            .iter()
            .map(|k| (k.name.as_str(), k.state.as_str()))
            .collect();
        assert_eq!(
            states,
            [
                ("active", "active"),
                ("expired", "expired"),
                ("later", "not-yet-valid"),
                ("retiring", "retiring"),
                ("revoked", "revoked"),
            ]
        );
        assert!(
            listed(&l, &keys[1].fingerprint())
                .detail
                .contains("retiring until")
        );
        // At the exact ends the window is still open.
        let (l, _) = t.list(T + 10).unwrap();
        assert_eq!(
            listed(&l, &keys[1].fingerprint()).state,
            KeyStatus::Retiring
        );
        let (l, _) = t.list(T + 11).unwrap();
        assert_eq!(listed(&l, &keys[1].fingerprint()).state, KeyStatus::Expired);
    }
}

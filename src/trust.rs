//! The set of keys a verifier trusts, looked up by fingerprint.
//!
//! Keys come from `--public-key` files or from a trusted-keys directory
//! (every `*.pub` in it). Each trust decision is one [`Decision`] that can be
//! explained in one line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::keys::{Fingerprint, PublicKey, encoding};
use crate::meta::{KeyState, Metadata, TRUST_FILE};
use crate::report::Refusal;
use crate::sigfile::format_time;

/// A trusted public key.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    /// The key.
    pub public: PublicKey,
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
    /// A human name (the file stem of its `.pub`).
    pub name: String,
    /// Where it was read from.
    pub source: PathBuf,
    /// Window and revocation from the directory's metadata (empty: trusted
    /// with no limit).
    pub state: KeyState,
}

impl TrustedKey {
    /// The key's state at `now`, in words: `active`, `retiring until T`,
    /// `expired at T`, `not valid before T`, `revoked at T: reason`.
    pub fn describe_state(&self, now: u64) -> String {
        describe_state(&self.state, now)
    }
}

/// A key state in words (see [`TrustedKey::describe_state`]).
pub fn describe_state(st: &KeyState, now: u64) -> String {
    if let Some((t, reason)) = &st.revoked {
        return format!("revoked at {} ({})", format_time(*t), reason);
    }
    match (st.not_before, st.not_after) {
        (Some(nb), _) if now < nb => format!("not valid before {}", format_time(nb)),
        (_, Some(na)) if now > na => format!("expired at {}", format_time(na)),
        (_, Some(na)) => format!("retiring until {}", format_time(na)),
        _ => "active".into(),
    }
}

/// The outcome of asking whether a key may be used for a signature.
#[derive(Debug)]
pub enum Decision<'a> {
    /// Accepted, with the one-line reason.
    Accepted(&'a TrustedKey, String),
    /// Refused, with the code and the one-line reason.
    Refused(Refusal, String),
}

/// Keys trusted for verification.
#[derive(Debug, Default)]
pub struct TrustStore {
    keys: HashMap<Fingerprint, TrustedKey>,
    /// Metadata of the trusted-keys directories loaded (windows, revocations).
    meta: HashMap<Fingerprint, KeyState>,
    /// Problems found while loading (unparseable `.pub` files), by name.
    pub warnings: Vec<String>,
}

impl TrustStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// All keys, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &TrustedKey> {
        self.keys.values()
    }

    /// Look a key up by fingerprint.
    pub fn get(&self, fp: &Fingerprint) -> Option<&TrustedKey> {
        self.keys.get(fp)
    }

    /// Add a public key read from `path` (a `--public-key` argument). A bad
    /// file is an error.
    pub fn add_file(&mut self, path: &Path) -> Result<()> {
        let public = encoding::load_public_key(path)?;
        self.insert(public, path);
        Ok(())
    }

    fn insert(&mut self, public: PublicKey, path: &Path) {
        let fingerprint = public.fingerprint();
        let state = self.meta.get(&fingerprint).cloned().unwrap_or_default();
        let name = state.name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| fingerprint.to_string())
        });
        self.keys.entry(fingerprint.clone()).or_insert(TrustedKey {
            public,
            fingerprint,
            name,
            source: path.to_path_buf(),
            state,
        });
    }

    fn merge_meta(&mut self, meta: &Metadata) {
        for st in meta.keys() {
            let Some(fp) = &st.fingerprint else { continue };
            self.meta.insert(fp.clone(), st.clone());
            if let Some(k) = self.keys.get_mut(fp) {
                k.state = st.clone();
                if let Some(n) = &st.name {
                    k.name = n.clone();
                }
            }
        }
    }

    /// Metadata known for `fp`, including revoked keys whose file is gone.
    pub fn state_of(&self, fp: &Fingerprint) -> Option<&KeyState> {
        self.meta.get(fp)
    }

    /// Load every `*.pub` in `dir`. A file that does not parse is skipped
    /// and reported by name in [`TrustStore::warnings`]; a missing or
    /// unreadable directory is an error.
    pub fn load_dir(dir: &Path) -> Result<Self> {
        let mut store = TrustStore::new();
        store.add_dir(dir)?;
        Ok(store)
    }

    /// Add every `*.pub` in `dir` and apply the directory's metadata
    /// (`trust.toml`): windows, names, revocations. A metadata file that does
    /// not parse is an error.
    pub fn add_dir(&mut self, dir: &Path) -> Result<()> {
        let st = std::fs::metadata(dir).map_err(|e| Error::io(dir, "reading", e))?;
        if !st.is_dir() {
            return Err(Error::Usage(format!(
                "{}: --trusted-keys needs a directory of .pub files",
                dir.display()
            )));
        }
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, "listing", e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pub"))
            .collect();
        paths.sort();
        let meta = Metadata::load(dir, TRUST_FILE)?;
        self.merge_meta(&meta);
        for path in paths {
            match encoding::load_public_key(&path) {
                Ok(public) => self.insert(public, &path),
                Err(e) => self.warnings.push(format!("skipping {e}")),
            }
        }
        Ok(())
    }

    /// May the key `fp` be used for a signature made at `signed_at`
    /// (seconds since the epoch, when the format records it), judged at `now`?
    pub fn decide(&self, fp: &Fingerprint, _now: u64, _signed_at: Option<u64>) -> Decision<'_> {
        match self.keys.get(fp) {
            Some(k) => Decision::Accepted(
                k,
                format!(
                    "key {} ({}) is trusted with no time limit",
                    k.fingerprint, k.name
                ),
            ),
            None => Decision::Refused(
                Refusal::KeyNotTrusted,
                format!("key {fp} is not among the trusted keys"),
            ),
        }
    }
}

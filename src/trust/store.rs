//! The set of keys a verifier trusts, looked up by fingerprint.
//!
//! Keys come from `--public-key` files or from a trusted-keys directory
//! (every `*.pub` in it, with the windows and revocations of its
//! `trust.toml`). Each trust decision is one [`Decision`] that can be
//! explained in one line.
//!
//! A `.pub` that `trust.toml` describes (fingerprint and file name) is only
//! read when a signature names its fingerprint, so a directory of 1,000 keys
//! verifies as fast as one of a single key. Its fingerprint is checked when
//! it is read; a file that does not hold the key its entry names is not
//! trusted. Keys dropped in by hand are read up front.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::Refusal;
use crate::error::{Error, FileError, Result};
use crate::keys::{Fingerprint, PublicKey, encoding};
use crate::text::format_time;
use crate::trust::meta::{KeyState, META_LIMIT, Metadata, TRUST_FILE};

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

    /// The principal this key signs for: the first key of its lineage. A
    /// key and the keys it endorsed are one signer for a threshold.
    pub fn principal(&self) -> &Fingerprint {
        self.state.principal.as_ref().unwrap_or(&self.fingerprint)
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

/// A key described by the metadata, read on first use.
#[derive(Debug)]
struct Slot {
    path: PathBuf,
    cell: OnceLock<std::result::Result<TrustedKey, String>>,
}

/// Keys trusted for verification.
#[derive(Debug, Default)]
pub struct TrustStore {
    keys: HashMap<Fingerprint, TrustedKey>,
    lazy: HashMap<Fingerprint, Slot>,
    /// Metadata of the trusted-keys directories loaded (windows, revocations).
    meta: HashMap<Fingerprint, KeyState>,
    /// The highest threshold set by a directory loaded (0: none set).
    dir_threshold: usize,
    /// Problems found while loading (unparseable `.pub` files), by name.
    pub warnings: Vec<String>,
}

impl TrustStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of keys (including those not read yet).
    pub fn len(&self) -> usize {
        self.keys.len() + self.lazy.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All keys, in no particular order (reads every key not read yet).
    pub fn keys(&self) -> impl Iterator<Item = &TrustedKey> {
        self.keys.values().chain(
            self.lazy
                .iter()
                .filter_map(|(fp, slot)| self.load_slot(fp, slot)),
        )
    }

    /// Look a key up by fingerprint.
    pub fn get(&self, fp: &Fingerprint) -> Option<&TrustedKey> {
        self.keys
            .get(fp)
            .or_else(|| self.lazy.get(fp).and_then(|slot| self.load_slot(fp, slot)))
    }

    fn load_slot<'a>(&'a self, fp: &Fingerprint, slot: &'a Slot) -> Option<&'a TrustedKey> {
        slot.cell
            .get_or_init(|| {
                let public = encoding::load_public_key(&slot.path).map_err(|e| e.to_string())?;
                if &public.fingerprint() != fp {
                    return Err(format!(
                        "{}: holds key {}, but trust.toml lists this file for {fp}; not trusted",
                        slot.path.display(),
                        public.fingerprint()
                    ));
                }
                Ok(self.make_key(public, &slot.path))
            })
            .as_ref()
            .ok()
    }

    /// Problems met while reading keys on demand (by name).
    pub fn late_warnings(&self) -> Vec<String> {
        self.lazy
            .values()
            .filter_map(|s| match s.cell.get() {
                Some(Err(e)) => Some(format!("skipping {e}")),
                _ => None,
            })
            .collect()
    }

    /// Add a public key read from `path` (a `--public-key` argument). A bad
    /// file is an error.
    pub fn add_file(&mut self, path: &Path) -> Result<()> {
        let public = encoding::load_public_key(path)?;
        let key = self.make_key(public, path);
        self.keys.entry(key.fingerprint.clone()).or_insert(key);
        Ok(())
    }

    fn make_key(&self, public: PublicKey, path: &Path) -> TrustedKey {
        let fingerprint = public.fingerprint();
        let state = self.meta.get(&fingerprint).cloned().unwrap_or_default();
        let name = state.name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| fingerprint.to_string())
        });
        TrustedKey {
            public,
            fingerprint,
            name,
            source: path.to_path_buf(),
            state,
        }
    }

    /// Principals whose valid signatures a package needs at least, as the
    /// directories loaded require (`trust threshold`); 1 when none is set.
    /// A caller's own threshold may only raise it.
    pub fn threshold(&self) -> usize {
        self.dir_threshold.max(1)
    }

    /// Metadata known for `fp`, including revoked keys whose file is gone.
    pub fn state_of(&self, fp: &Fingerprint) -> Option<&KeyState> {
        self.meta.get(fp)
    }

    /// Load a trusted-keys directory (see [`TrustStore::add_dir`]).
    pub fn load_dir(dir: &Path) -> Result<Self> {
        let mut store = TrustStore::new();
        store.add_dir(dir)?;
        Ok(store)
    }

    /// Add every `*.pub` in `dir` and apply the directory's metadata
    /// (`trust.toml`): windows, names, revocations. A metadata file that does
    /// not parse is an error; a `.pub` that does not parse is skipped and
    /// reported by name in [`TrustStore::warnings`]. A directory or key file
    /// group or others may write is refused ([`Error::Trust(TrustError::InsecurePermissions)`],
    /// unless [`crate::trust::perms::allow_insecure_permissions_for_this_process`]),
    /// and so is a `.pub` symlink that leads out of it ([`Error::Trust(TrustError::KeyOutsideDir)`]).
    pub fn add_dir(&mut self, dir: &Path) -> Result<()> {
        self.scan_dir(dir, false)
    }

    /// [`TrustStore::add_dir`] for a verification whose signatures name the
    /// keys `wanted`: only those keys' files and `trust.toml` entries are
    /// read, found through the directory's cache ([`crate::trust::index`]).
    /// When the cache cannot answer for every one of them exactly as a full
    /// scan would, this is a full scan, which rebuilds it (best-effort).
    /// Keys not in `wanted` may then be missing from the store.
    pub fn add_dir_for(&mut self, dir: &Path, wanted: &[Fingerprint]) -> Result<()> {
        let Some(found) = crate::trust::index::lookup(dir, wanted) else {
            return self.scan_dir(dir, true);
        };
        if let Some(t) = found.threshold {
            self.dir_threshold = self.dir_threshold.max(t as usize);
        }
        for st in found.states {
            self.apply_state(st);
        }
        for (public, path) in found.keys {
            let key = self.make_key(public, &path);
            self.keys.entry(key.fingerprint.clone()).or_insert(key);
        }
        self.warnings.extend(found.warnings);
        Ok(())
    }

    /// Record a key's metadata, also on a key already read.
    fn apply_state(&mut self, st: KeyState) {
        let Some(fp) = st.fingerprint.clone() else {
            return;
        };
        if let Some(k) = self.keys.get_mut(&fp) {
            k.state = st.clone();
            if let Some(n) = &st.name {
                k.name = n.clone();
            }
        }
        self.meta.insert(fp, st);
    }

    /// The full scan of [`TrustStore::add_dir`]; with `index`, the
    /// directory's cache is rebuilt from it.
    fn scan_dir(&mut self, dir: &Path, index: bool) -> Result<()> {
        let st = std::fs::metadata(dir).map_err(|e| Error::io(dir, "reading", e))?;
        if !st.is_dir() {
            return Err(crate::error::Invalid::NotAKeyDir {
                path: dir.to_path_buf(),
                kind: crate::error::KeyDirKind::TrustedKeys,
            }
            .into());
        }
        // StrictModes: refuse a directory (or key file) others may write,
        // and a .pub symlink that leads out of it.
        crate::trust::perms::check_dir(dir, crate::trust::perms::KeyDir::Trusted)?;
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, "listing", e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pub"))
            .collect();
        paths.sort();
        let toml_path = dir.join(TRUST_FILE);
        let toml = match crate::fsutil::read_bounded(&toml_path, META_LIMIT, "metadata file") {
            Ok(d) => Some(d),
            Err(Error::File(FileError::NotFound { .. })) => None,
            Err(e) => return Err(e),
        };
        let meta = match &toml {
            Some(data) => Metadata::parse(toml_path, data)?,
            None => Metadata::load(dir, TRUST_FILE)?,
        };
        if let Some(t) = meta.threshold() {
            self.dir_threshold = self.dir_threshold.max(t as usize);
        }
        let mut described: HashMap<&str, &Fingerprint> = HashMap::new();
        for st in meta.keys() {
            let Some(fp) = &st.fingerprint else { continue };
            self.apply_state(st.clone());
            if let Some(f) = st.file.as_deref() {
                described.insert(f, fp);
            }
        }
        let warned = self.warnings.len();
        let mut mine: Vec<Fingerprint> = Vec::new();
        for path in paths {
            let file = path
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or_default();
            if let Some(fp) = described.get(file) {
                if !self.keys.contains_key(*fp) {
                    mine.push((*fp).clone());
                    self.lazy.insert(
                        (*fp).clone(),
                        Slot {
                            path,
                            cell: OnceLock::new(),
                        },
                    );
                }
                continue;
            }
            match encoding::load_public_key(&path) {
                Ok(public) => {
                    let key = self.make_key(public, &path);
                    mine.push(key.fingerprint.clone());
                    self.keys.entry(key.fingerprint.clone()).or_insert(key);
                }
                Err(e) => self.warnings.push(format!("skipping {e}")),
            }
        }
        if index {
            // The file each key of this directory is read from, as `get` would.
            mine.sort();
            mine.dedup();
            let files = mine
                .into_iter()
                .filter_map(|fp| {
                    let path = match self.keys.get(&fp) {
                        Some(k) => k.source.clone(),
                        None => self.lazy.get(&fp)?.path.clone(),
                    };
                    (path.parent() == Some(dir)).then_some((fp, path))
                })
                .collect();
            let scan = crate::trust::index::Scan {
                dir_before: &st,
                toml: toml.as_deref().map(|d| d.as_slice()),
                meta: &meta,
                files,
                warnings: self.warnings.get(warned..).unwrap_or_default(),
            };
            crate::trust::index::write(dir, &scan);
        }
        Ok(())
    }

    /// May the key `fp` be used for a signature made at `signed_at`
    /// (seconds since the epoch, when the format records it), judged at `now`?
    ///
    /// Revocation always wins; then the window is checked against the
    /// verifying machine's clock, and against the signed time when there is
    /// one ([`standing`], the one rule).
    pub fn decide(&self, fp: &Fingerprint, now: u64, signed_at: Option<u64>) -> Decision<'_> {
        if let Some(st) = self.meta.get(fp).filter(|s| s.revoked.is_some()) {
            let why = standing(st, now, signed_at).explain(&format!("key {fp}"));
            return Decision::Refused(Refusal::KeyRevoked, why);
        }
        let Some(k) = self.get(fp) else {
            return Decision::Refused(
                Refusal::KeyNotTrusted,
                format!("key {fp} is not among the trusted keys"),
            );
        };
        let who = format!("key {} ({})", k.fingerprint, k.name);
        let standing = standing(&k.state, now, signed_at);
        let why = standing.explain(&who);
        match standing.refusal() {
            Some(code) => Decision::Refused(code, why),
            None => Decision::Accepted(k, why),
        }
    }
}

/// Where a key stands at a time: the one trust rule, shared by package
/// verification ([`TrustStore::decide`]) and by key statements
/// ([`crate::trust::lineage::why_not_current`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Revoked (at any time: revocation always wins).
    Revoked {
        /// When.
        at: u64,
        /// Why.
        reason: String,
    },
    /// Its window opens after `now`.
    NotYetValid {
        /// The window's start.
        from: u64,
    },
    /// The signature's own time is before the window opened.
    SignedBeforeWindow {
        /// The signed time.
        signed: u64,
        /// The window's start.
        from: u64,
    },
    /// Its window closed before `now`.
    Expired {
        /// The window's end.
        at: u64,
    },
    /// The signature's own time is after the window closed.
    SignedAfterWindow {
        /// The signed time.
        signed: u64,
        /// The window's end.
        until: u64,
    },
    /// Trusted now, until the window closes.
    Retiring {
        /// The window's end.
        until: u64,
    },
    /// Trusted with no time limit.
    Unlimited,
}

/// Where the key in state `st` stands at `now`, for a signature made at
/// `signed_at` when the format records it.
pub fn standing(st: &KeyState, now: u64, signed_at: Option<u64>) -> Standing {
    if let Some((at, reason)) = &st.revoked {
        return Standing::Revoked {
            at: *at,
            reason: reason.clone(),
        };
    }
    if let Some(from) = st.not_before {
        if now < from {
            return Standing::NotYetValid { from };
        }
        if let Some(signed) = signed_at.filter(|s| *s < from) {
            return Standing::SignedBeforeWindow { signed, from };
        }
    }
    match st.not_after {
        Some(at) if now > at => Standing::Expired { at },
        Some(until) => match signed_at.filter(|s| *s > until) {
            Some(signed) => Standing::SignedAfterWindow { signed, until },
            None => Standing::Retiring { until },
        },
        None => Standing::Unlimited,
    }
}

impl Standing {
    /// The refusal it means for a signature; None when the key may sign.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            Standing::Revoked { .. } => Some(Refusal::KeyRevoked),
            Standing::NotYetValid { .. } | Standing::SignedBeforeWindow { .. } => {
                Some(Refusal::KeyNotYetValid)
            }
            Standing::Expired { .. } | Standing::SignedAfterWindow { .. } => {
                Some(Refusal::KeyExpired)
            }
            Standing::Retiring { .. } | Standing::Unlimited => None,
        }
    }

    /// One line about the key `who` (for example `key FP (name)`).
    pub fn explain(&self, who: &str) -> String {
        match self {
            Standing::Revoked { at, reason } => {
                format!("{who} was revoked at {}: {reason}", format_time(*at))
            }
            Standing::NotYetValid { from } => {
                format!("{who} is not valid before {}", format_time(*from))
            }
            Standing::SignedBeforeWindow { signed, from } => format!(
                "{who} signed at {}, before its window opened at {}",
                format_time(*signed),
                format_time(*from)
            ),
            Standing::Expired { at } => format!("{who} expired at {}", format_time(*at)),
            Standing::SignedAfterWindow { signed, until } => format!(
                "{who} signed at {}, after its window closed at {}",
                format_time(*signed),
                format_time(*until)
            ),
            Standing::Retiring { until } => {
                format!("{who} is trusted, retiring until {}", format_time(*until))
            }
            Standing::Unlimited => format!("{who} is trusted with no time limit"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeySpec, generate};

    fn pubkey() -> PublicKey {
        generate(KeySpec::Ed25519).unwrap().public_key()
    }

    fn store_with(state: KeyState) -> (TrustStore, Fingerprint) {
        let k = pubkey();
        let fp = k.fingerprint();
        let mut s = TrustStore::new();
        s.meta.insert(fp.clone(), state.clone());
        let key = TrustedKey {
            public: k,
            fingerprint: fp.clone(),
            name: "k".into(),
            source: PathBuf::from("k.pub"),
            state,
        };
        s.keys.insert(fp.clone(), key);
        (s, fp)
    }

    fn code(d: Decision<'_>) -> Option<Refusal> {
        match d {
            Decision::Accepted(..) => None,
            Decision::Refused(r, _) => Some(r),
        }
    }

    #[test]
    fn windows_and_revocation() {
        let (s, fp) = store_with(KeyState {
            not_before: Some(100),
            not_after: Some(200),
            ..KeyState::default()
        });
        assert_eq!(code(s.decide(&fp, 150, Some(150))), None);
        assert_eq!(code(s.decide(&fp, 150, None)), None);
        assert_eq!(code(s.decide(&fp, 50, None)), Some(Refusal::KeyNotYetValid));
        assert_eq!(
            code(s.decide(&fp, 250, Some(150))),
            Some(Refusal::KeyExpired)
        );
        // Signed after the window closed, even though "now" is inside it.
        assert_eq!(
            code(s.decide(&fp, 150, Some(201))),
            Some(Refusal::KeyExpired)
        );
        assert_eq!(
            code(s.decide(&fp, 150, Some(99))),
            Some(Refusal::KeyNotYetValid)
        );
        let (s, fp) = store_with(KeyState {
            revoked: Some((120, "leaked".into())),
            ..KeyState::default()
        });
        assert_eq!(
            code(s.decide(&fp, 150, Some(110))),
            Some(Refusal::KeyRevoked)
        );
        let other = pubkey().fingerprint();
        assert_eq!(
            code(s.decide(&other, 150, None)),
            Some(Refusal::KeyNotTrusted)
        );
    }

    #[test]
    fn described_keys_load_lazily_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let a = pubkey();
        let b = pubkey();
        std::fs::write(
            dir.path().join("a.pub"),
            encoding::public_key_to_pem(&a).unwrap(),
        )
        .unwrap();
        // b.pub holds key a: its entry names b, so it must not be trusted as b.
        std::fs::write(
            dir.path().join("b.pub"),
            encoding::public_key_to_pem(&a).unwrap(),
        )
        .unwrap();
        let mut m = Metadata::load(dir.path(), TRUST_FILE).unwrap();
        m.entry(&a.fingerprint()).file = Some("a.pub".into());
        m.entry(&b.fingerprint()).file = Some("b.pub".into());
        m.save().unwrap();
        let s = TrustStore::load_dir(dir.path()).unwrap();
        assert!(s.keys.is_empty(), "described keys are not read up front");
        assert!(s.get(&a.fingerprint()).is_some());
        assert!(s.get(&b.fingerprint()).is_none());
        assert_eq!(s.late_warnings().len(), 1);
    }
}

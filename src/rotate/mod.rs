//! `key-rotate`: replace the current signing key, keep the old one trusted
//! through a grace window, delete it afterwards; or, in an emergency, revoke
//! it at once.
//!
//! Crash safety. A rotation changes two directories, so it is done as a
//! small transaction:
//! 1. under the signing directory's lock, the new private key is written to
//!    a hidden staging file (`.pkgsign-rotate-new.key`, ignored by everyone);
//! 2. a journal describing the whole change is written atomically: this is
//!    the commit point;
//! 3. the change is applied in an order that is safe at every instant
//!    (the trusted-keys directory first, so the current key is always
//!    trusted; the old key is hard-linked under its retired name before the
//!    current name is replaced, so no key is ever lost);
//! 4. the journal is removed.
//!
//! A run killed before step 2 leaves nothing but a staging file, removed by
//! the next run (rolled back); a run killed after it is completed by the
//! next `key-rotate` or `sign-package --keys-dir` (rolled forward).
//! Every metadata entry is keyed by fingerprint, so even the instants in
//! between sign with exactly the keys of "before" or of "after".
#![forbid(unsafe_code)]

pub mod keystore;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, FileError, ParseError, Result, TrustError};
use crate::fsutil::{self, Replace};
use crate::keys::pkcs11::{self, Access, Pkcs11Uri, TokenKey};
use crate::keys::{
    self, Fingerprint, KeyAlgorithm, KeySource, KeySpec, LocalKey, Passphrase, encoding,
};
use crate::text::format_time;
use crate::trust::dir::TrustDir;
use crate::trust::lineage::Statement;
use crate::trust::meta::{KEYS_FILE, Metadata, TRUST_FILE};

/// The journal of a rotation in progress.
pub const JOURNAL: &str = ".pkgsign-rotate.journal";
/// The staged new private key.
pub const STAGED: &str = ".pkgsign-rotate-new.key";
use crate::fsutil::crash_point;
pub use crate::fsutil::{CRASH_ENV, CRASH_POINTS};

/// How to rotate.
pub struct Options<'a> {
    /// The key name (`NAME.pem` in the keys directory).
    pub name: String,
    /// Grace period in seconds.
    pub grace: u64,
    /// Revoke the old key at once, no grace.
    pub emergency: bool,
    /// Reason recorded for an emergency revocation.
    pub reason: Option<String>,
    /// Only rotate if the current key is older than this many seconds.
    pub if_older_than: Option<u64>,
    /// The new key's kind (default: the same as the current key).
    pub spec: Option<KeySpec>,
    /// Passphrase of the current key, and for the new key.
    pub passphrase: Option<&'a Passphrase>,
    /// Where to publish lineage statements (default: `TDIR/lineage`).
    pub publish_dir: Option<PathBuf>,
    /// The clock.
    pub now: u64,
    /// Create the first key of `name` if the directory has none. Without
    /// it, a missing current key is [`Error::Trust(TrustError::NoCurrentKey)`], so a mistyped
    /// name never creates (and trusts) a new key.
    pub init: bool,
    /// With `init`: make the first key on this PKCS#11 token, as the URI
    /// names it. (A current key on a token is always rotated on its token.)
    pub pkcs11: Option<Pkcs11Uri>,
    /// How to reach the token of token keys (module, PIN).
    pub token: Option<&'a Access>,
}

impl Options<'_> {
    /// A rotation of `name` at `now` with the defaults of `key-rotate`: a
    /// 30-day grace window, the current key's kind, no passphrase, no
    /// token, the default publish directory; not `init`.
    pub fn new(name: &str, now: u64) -> Self {
        Options {
            name: name.to_string(),
            grace: 30 * 86_400,
            emergency: false,
            reason: None,
            if_older_than: None,
            spec: None,
            passphrase: None,
            publish_dir: None,
            now,
            init: false,
            pkcs11: None,
            token: None,
        }
    }
}

/// What a rotation did, as `key-rotate --json` spells it in `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Action {
    /// The current key was replaced by a new one.
    Rotated,
    /// No current key existed: the first one was created (`--init`).
    Created,
    /// The current key is younger than asked for: nothing was done.
    NotDue,
}

impl Action {
    /// The spelling of the JSON output (`rotated`, `created`, `not-due`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Rotated => "rotated",
            Action::Created => "created",
            Action::NotDue => "not-due",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares with the JSON spelling, so that callers written against the
/// string field (`out.action == "rotated"`) keep working.
impl PartialEq<&str> for Action {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// What a rotation did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// What was done.
    pub action: Action,
    /// The key that was current before.
    pub old_key: Option<Fingerprint>,
    /// The current key now.
    pub current_key: Option<Fingerprint>,
    /// End of the old key's grace window.
    pub old_key_trusted_until: Option<String>,
    /// Whether the old key was revoked.
    pub revoked: bool,
    /// Age of the current key, in seconds, when not due.
    pub age_seconds: Option<u64>,
    /// Private keys deleted because their window ended: (key, file).
    pub deleted: Vec<(Fingerprint, String)>,
    /// Lineage statements written.
    pub statements: Vec<String>,
    /// Whether an interrupted rotation was completed first.
    pub recovered: bool,
    /// The new key's algorithm.
    pub algorithm: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Journal {
    version: u32,
    tdir: PathBuf,
    name: String,
    now: u64,
    emergency: bool,
    reason: String,
    grace_end: u64,
    old_fp: Option<String>,
    old_pem_sha256: Option<String>,
    retired_file: Option<String>,
    new_fp: String,
    new_pub_pem: String,
    publish_dir: PathBuf,
    statements: Vec<(String, String)>,
    /// The sequence number of the statement (absent in journals of pkgsign 0.1).
    #[serde(default)]
    sequence: Option<u64>,
    /// The extension of the key files: `pkcs11` for keys on a token (the
    /// file is a pointer holding the URI), absent for `pem`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ext: Option<String>,
}

impl Journal {
    fn ext(&self) -> &str {
        self.ext.as_deref().unwrap_or("pem")
    }
}

/// The prefix of a pointer to a token key made by a rotation that did not
/// commit: the next `key-rotate` destroys the key and the pointer.
const ORPHAN_PREFIX: &str = ".pkgsign-orphan-";

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn fp(s: &str, path: &Path) -> Result<Fingerprint> {
    s.parse().map_err(|e: keys::FingerprintError| {
        Error::Parse(ParseError::Metadata {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    })
}

/// Rotate (see the module docs). Takes the keys directory's lock, then the
/// trusted-keys directory's.
pub fn rotate(dir: &Path, tdir: &Path, opts: &Options<'_>) -> Result<Outcome> {
    keys::generate::check_name(&opts.name)?;
    if !opts.init {
        require_current(dir, &opts.name)?;
    }
    fsutil::create_private_dir_all(dir)?;
    let tdir = std::path::absolute(tdir).map_err(|e| Error::io(tdir, "resolving", e))?;
    let _lock = fsutil::lock_dir(dir, true)?;
    let recovered = recover_locked(dir)?;
    let mut deleted = delete_expired(dir, &opts.name, opts.now, opts.token)?;

    deleted.extend(destroy_orphans(dir, opts.token)?);

    let pem_path = dir.join(format!("{}.pem", opts.name));
    let tok_path = dir.join(format!("{}.{}", opts.name, pkcs11::POINTER_EXT));
    let exists = |p: &Path| match std::fs::symlink_metadata(p) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(p, "reading", e)),
    };
    let on_token = exists(&tok_path)?;
    if on_token && exists(&pem_path)? {
        return Err(Error::File(FileError::AlreadyExists { path: pem_path }));
    }
    let (cur_path, ext) = if on_token || (opts.pkcs11.is_some() && !exists(&pem_path)?) {
        (tok_path, pkcs11::POINTER_EXT)
    } else {
        (pem_path, "pem")
    };
    let meta = Metadata::load(dir, KEYS_FILE)?;
    let no_access = Access::default();
    let access = opts.token.unwrap_or(&no_access);
    let mut current_uri: Option<Pkcs11Uri> = None;
    let current: Option<Box<dyn KeySource>> = if !exists(&cur_path)? {
        None
    } else if ext == "pem" {
        if opts.pkcs11.is_some() {
            return Err(Error::Invalid(crate::error::Invalid::KeyKindChange {
                name: opts.name.clone(),
            }));
        }
        Some(Box::new(encoding::load_private_key(
            &cur_path,
            opts.passphrase,
        )?))
    } else {
        let uri = pkcs11::read_pointer(&cur_path)?;
        let key = TokenKey::open(&uri, access)?;
        current_uri = Some(uri);
        Some(Box::new(key))
    };
    let mut outcome = Outcome {
        action: Action::Rotated,
        old_key: current.as_ref().map(|k| k.public_key().fingerprint()),
        current_key: None,
        old_key_trusted_until: None,
        revoked: false,
        age_seconds: None,
        deleted,
        statements: Vec::new(),
        recovered,
        algorithm: None,
    };

    if let (Some(limit), Some(cur), false) = (opts.if_older_than, &current, opts.emergency) {
        let fp = cur.public_key().fingerprint();
        let born = meta.get(&fp).and_then(|s| s.not_before).unwrap_or_else(|| {
            std::fs::metadata(&cur_path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
        let age = opts.now.saturating_sub(born);
        if age < limit {
            outcome.action = Action::NotDue;
            outcome.current_key = Some(fp);
            outcome.age_seconds = Some(age);
            return Ok(outcome);
        }
    }

    // The new key: same kind as the current one unless asked otherwise.
    let spec = opts
        .spec
        .unwrap_or(match current.as_ref().map(|k| k.public_key().algorithm()) {
            Some(KeyAlgorithm::Rsa { bits }) => KeySpec::Rsa { bits },
            _ => KeySpec::Ed25519,
        });
    // 1. Stage the new key (hidden name, 0600, never *.pem): a file key's
    // PEM, or, for a token key, the pointer to it, written before the key
    // is made on the token, so that a run killed in between leaves a
    // record of what to destroy.
    let staged = dir.join(STAGED);
    let _ = std::fs::remove_file(&staged);
    let token_target = match (&current_uri, &opts.pkcs11) {
        (Some(cur), _) => {
            // A label of its own: the time, and random bits for two
            // rotations in one second (or a rotation right after a
            // rolled-forward one).
            let t = format_time(opts.now).replace([':', '-'], "");
            let mut salt = [0u8; 4];
            getrandom::fill(&mut salt).map_err(|e| Error::Crypto {
                what: "naming the new token key",
                reason: e.to_string(),
            })?;
            Some(cur.with_object(&format!("{}-{t}-{}", opts.name, hex::encode(salt))))
        }
        (None, Some(first)) if current.is_none() => Some(first.clone()),
        _ => None,
    };
    let (new_key, new_pem): (Box<dyn KeySource>, zeroize::Zeroizing<String>) = match &token_target {
        Some(uri) => {
            let text = format!("{}\n", uri.text);
            fsutil::write_atomic(&staged, text.as_bytes(), 0o600, Replace::Never)?;
            crash_point(14);
            let key = TokenKey::generate(uri, access, spec)?;
            (Box::new(key), zeroize::Zeroizing::new(text))
        }
        None => {
            let key = LocalKey::new(keys::generate(spec)?, cur_path.clone());
            let pem = encoding::private_key_to_pem(key.private_key(), opts.passphrase)?;
            fsutil::write_atomic(&staged, pem.as_bytes(), 0o600, Replace::Never)?;
            (Box::new(key), pem)
        }
    };
    drop(new_pem);
    let new_fp = new_key.public_key().fingerprint();
    let new_pub_pem = encoding::public_key_to_pem(new_key.public_key())?;

    let grace_end = if opts.emergency {
        opts.now
    } else {
        opts.now.saturating_add(opts.grace)
    };
    let reason = opts
        .reason
        .clone()
        .unwrap_or_else(|| "emergency rotation".to_string());
    let publish_dir = opts
        .publish_dir
        .clone()
        .unwrap_or_else(|| tdir.join("lineage"));
    let mut statements = Vec::new();
    let mut sequence = None;
    let (old_fp, old_sha, retired) = match &current {
        Some(old) => {
            let old_fp = old.public_key().fingerprint();
            // The next statement of the old key's lineage, as the
            // trusted-keys directory records it.
            let seq = Metadata::load(&tdir, TRUST_FILE)?
                .get(&old_fp)
                .and_then(|s| s.sequence)
                .unwrap_or(0)
                .saturating_add(1);
            sequence = Some(seq);
            let st = if opts.emergency {
                // The old key is compromised: it may only revoke itself.
                Statement::revoke(old.as_ref(), &old_fp, opts.now, &reason, opts.now, seq)?
            } else {
                Statement::endorse(
                    old.as_ref(),
                    new_key.as_ref(),
                    &opts.name,
                    (opts.now, Some(grace_end)),
                    opts.now,
                    seq,
                )?
            };
            statements.push((st.file_name(), st.to_text()));
            let bytes = fsutil::read_bounded(&cur_path, encoding::KEY_FILE_LIMIT, "key file")?;
            let retired =
                (!opts.emergency).then(|| retired_name(dir, &opts.name, &old_fp, opts.now, ext));
            (Some(old_fp.to_string()), Some(sha256_hex(&bytes)), retired)
        }
        None => {
            outcome.action = Action::Created;
            (None, None, None)
        }
    };

    crash_point(1);
    // 2. Commit: the journal.
    let journal = Journal {
        version: 1,
        tdir: tdir.clone(),
        name: opts.name.clone(),
        now: opts.now,
        emergency: opts.emergency,
        reason: reason.clone(),
        grace_end,
        old_fp: old_fp.clone(),
        old_pem_sha256: old_sha,
        retired_file: retired,
        new_fp: new_fp.to_string(),
        new_pub_pem,
        publish_dir: publish_dir.clone(),
        statements,
        sequence,
        ext: (ext != "pem").then(|| ext.to_string()),
    };
    let text = serde_json::to_string_pretty(&journal).map_err(|e| Error::Encoding {
        what: "writing the rotation journal",
        reason: e.to_string(),
    })?;
    fsutil::write_atomic(&dir.join(JOURNAL), text.as_bytes(), 0o600, Replace::Never)?;
    crash_point(2);
    // 3. Apply, 4. remove the journal.
    let written = apply(dir, &journal)?;

    outcome.algorithm = Some(new_key.public_key().algorithm().to_string());
    outcome.current_key = Some(new_fp);
    outcome.revoked = opts.emergency && old_fp.is_some();
    outcome.old_key_trusted_until =
        (!opts.emergency && old_fp.is_some()).then(|| format_time(grace_end));
    outcome.statements = written.iter().map(|p| p.display().to_string()).collect();
    Ok(outcome)
}

/// Refuse to go on when `dir` holds no current key `name` (and no
/// interrupted rotation that would make one): [`Error::Trust(TrustError::NoCurrentKey)`],
/// naming the keys it does hold.
fn require_current(dir: &Path, name: &str) -> Result<()> {
    let cur = dir.join(format!("{name}.pem"));
    let tok = dir.join(format!("{name}.{}", pkcs11::POINTER_EXT));
    if std::fs::symlink_metadata(&cur).is_ok()
        || std::fs::symlink_metadata(&tok).is_ok()
        || dir.join(JOURNAL).exists()
    {
        return Ok(());
    }
    let mut existing: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .filter_map(|n| {
                    n.strip_suffix(".pem")
                        .or_else(|| n.strip_suffix(".pkcs11"))
                        .map(str::to_owned)
                })
                .filter(|n| !n.contains(".retired-"))
                .collect()
        })
        .unwrap_or_default();
    existing.sort();
    Err(Error::Trust(TrustError::NoCurrentKey {
        dir: dir.to_path_buf(),
        name: name.to_string(),
        existing,
    }))
}

/// The name the current key is kept under through its grace window:
/// `NAME.retired-<time>.pem`, or, if that name is taken (two rotations in
/// the same second), `NAME.retired-<time>-<fingerprint hex>.pem`. Never a
/// name that exists: the hard link in [`apply`] must not find another key there.
fn retired_name(dir: &Path, name: &str, old_fp: &Fingerprint, now: u64, ext: &str) -> String {
    let t = format_time(now).replace([':', '-'], "");
    let plain = format!("{name}.retired-{t}.{ext}");
    if std::fs::symlink_metadata(dir.join(&plain)).is_err() {
        plain
    } else {
        format!("{name}.retired-{t}-{}.{ext}", old_fp.short_hex())
    }
}

/// Complete an interrupted rotation of `dir`, or roll back one that had not
/// committed. The caller holds `dir`'s lock. Returns whether there was one.
pub fn recover_locked(dir: &Path) -> Result<bool> {
    let jpath = dir.join(JOURNAL);
    let staged = dir.join(STAGED);
    let data = match fsutil::read_bounded(&jpath, 1024 * 1024, "rotation journal") {
        Ok(d) => d,
        Err(Error::File(FileError::NotFound { .. })) => {
            // Not committed: roll back. A staged token key is kept as an
            // orphan pointer: the key may exist on the token, and only a
            // run that can reach the token (`key-rotate`) destroys it.
            let had = staged.exists();
            if had {
                let is_pointer =
                    fsutil::read_bounded(&staged, encoding::KEY_FILE_LIMIT, "key file")
                        .map(|b| Pkcs11Uri::is_uri(&String::from_utf8_lossy(&b)))
                        .unwrap_or(false);
                if is_pointer {
                    let orphan = dir.join(format!(
                        "{ORPHAN_PREFIX}{}.{}",
                        sha256_hex(&std::fs::read(&staged).unwrap_or_default()),
                        pkcs11::POINTER_EXT
                    ));
                    std::fs::rename(&staged, &orphan)
                        .map_err(|e| Error::io(&staged, "keeping as an orphan", e))?;
                    fsutil::sync_dir(dir)?;
                } else {
                    std::fs::remove_file(&staged).map_err(|e| Error::io(&staged, "removing", e))?;
                }
            }
            remove_temp_files(dir);
            return Ok(had);
        }
        Err(e) => return Err(e),
    };
    let journal: Journal = serde_json::from_slice(&data).map_err(|e| {
        Error::Parse(ParseError::Metadata {
            path: jpath.clone(),
            reason: format!("unreadable rotation journal ({e}); inspect it by hand"),
        })
    })?;
    apply(dir, &journal)?;
    remove_temp_files(dir);
    // The killed run may also have left temp files of its atomic writes in
    // the trusted-keys directory and the publish directory. Remove them
    // under that directory's lock, so that no write in progress is hit.
    {
        let _tlock = fsutil::lock_dir(&journal.tdir, true)?;
        remove_temp_files(&journal.tdir);
        remove_temp_files(&journal.publish_dir);
    }
    Ok(true)
}

/// Leftover temp files of killed atomic writes.
fn remove_temp_files(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let n = e.file_name();
            let n = n.to_string_lossy();
            if n.starts_with(".pkgsign-") && n.ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Apply a committed journal. Every step is idempotent.
fn apply(dir: &Path, j: &Journal) -> Result<Vec<PathBuf>> {
    let jpath = dir.join(JOURNAL);
    let new_fp = fp(&j.new_fp, &jpath)?;
    let old_fp = j.old_fp.as_deref().map(|s| fp(s, &jpath)).transpose()?;
    let new_pub = encoding::parse_public_key(&jpath, j.new_pub_pem.as_bytes())?;

    // a. Trusted keys first: the new key is trusted before it is used.
    {
        let mut t = TrustDir::open(&j.tdir)?;
        t.stage_key(&new_pub, &j.name, Some(j.now), None)?;
        if let Some(o) = &old_fp {
            if j.emergency {
                let e = t.meta_mut().entry(o);
                e.revoked.get_or_insert_with(|| (j.now, j.reason.clone()));
                if let Some(seq) = j.sequence {
                    e.sequence = Some(e.sequence.map_or(seq, |s| s.max(seq)));
                }
            } else {
                if let Some(seq) = j.sequence {
                    t.link_successor(o, &new_fp, seq);
                }
                let e = t.meta_mut().entry(o);
                e.retire_at(j.grace_end);
            }
        }
        t.commit()?;
        crash_point(3);
    }
    crash_point(4);

    // b. The signing directory.
    let cur = dir.join(format!("{}.{}", j.name, j.ext()));
    if let (Some(retired), Some(sha)) = (&j.retired_file, &j.old_pem_sha256) {
        let rpath = dir.join(retired);
        let cur_is_old = fsutil::read_bounded(&cur, encoding::KEY_FILE_LIMIT, "key file")
            .map(|b| &sha256_hex(&b) == sha)
            .unwrap_or(false);
        if cur_is_old {
            match fsutil::read_bounded(&rpath, encoding::KEY_FILE_LIMIT, "key file") {
                Ok(b) if &sha256_hex(&b) == sha => {} // linked by an earlier attempt
                Err(Error::File(FileError::NotFound { .. })) => {
                    std::fs::hard_link(&cur, &rpath)
                        .map_err(|e| Error::io(&rpath, "linking", e))?;
                    fsutil::sync_dir(dir)?;
                }
                // Another key holds that name: replacing NAME.pem now would
                // lose the old key. Stop; the journal stays for a human.
                Ok(_) => return Err(Error::File(FileError::AlreadyExists { path: rpath })),
                Err(e) => return Err(e),
            }
        }
    }
    crash_point(5);
    let mut meta = Metadata::load(dir, KEYS_FILE)?;
    {
        let e = meta.entry(&new_fp);
        e.name = Some(j.name.clone());
        e.file = Some(format!("{}.{}", j.name, j.ext()));
        e.not_before = Some(j.now);
    }
    if let Some(o) = &old_fp {
        let e = meta.entry(o);
        e.name.get_or_insert_with(|| j.name.clone());
        if j.emergency {
            e.revoked = Some((j.now, j.reason.clone()));
            e.file = None;
        } else {
            e.file = j.retired_file.clone();
            e.retire_at(j.grace_end);
        }
    }
    meta.save()?;
    crash_point(6);
    let staged = dir.join(STAGED);
    if staged.exists() {
        std::fs::rename(&staged, &cur).map_err(|e| Error::io(&cur, "renaming into place", e))?;
        fsutil::sync_dir(dir)?;
    }
    crash_point(7);
    fsutil::write_atomic(
        &dir.join(format!("{}.pub", j.name)),
        j.new_pub_pem.as_bytes(),
        0o644,
        Replace::Allowed,
    )?;
    crash_point(8);

    // c. Publish the lineage statements.
    let mut written = Vec::new();
    if !j.statements.is_empty() {
        std::fs::create_dir_all(&j.publish_dir)
            .map_err(|e| Error::io(&j.publish_dir, "creating directory", e))?;
    }
    for (name, text) in &j.statements {
        if name.contains('/') {
            continue;
        }
        let p = j.publish_dir.join(name);
        fsutil::write_atomic(&p, text.as_bytes(), 0o644, Replace::Allowed)?;
        written.push(p);
    }
    crash_point(9);
    std::fs::remove_file(&jpath).map_err(|e| Error::io(&jpath, "removing", e))?;
    fsutil::sync_dir(dir)?;
    Ok(written)
}

/// Delete private keys whose window has ended (or that were revoked),
/// never the current `NAME.pem` (or `NAME.pkcs11`). A key on a token is
/// destroyed on the token, then its pointer removed; without access to the
/// token it is kept (and reported again next time). Their public keys stay
/// in the trusted-keys directory, expired, as history.
fn delete_expired(
    dir: &Path,
    name: &str,
    now: u64,
    token: Option<&Access>,
) -> Result<Vec<(Fingerprint, String)>> {
    let mut meta = Metadata::load(dir, KEYS_FILE)?;
    let current_files = [
        format!("{name}.pem"),
        format!("{name}.{}", pkcs11::POINTER_EXT),
    ];
    let mut deleted = Vec::new();
    let mut changed = false;
    for st in meta.keys().to_vec() {
        let Some(fp) = st.fingerprint.clone() else {
            continue;
        };
        let over = st.revoked.is_some() || st.not_after.is_some_and(|na| now > na);
        let Some(file) = st.file.clone() else {
            continue;
        };
        if !over || current_files.contains(&file) || file.contains('/') {
            continue;
        }
        let p = dir.join(&file);
        if file.ends_with(&format!(".{}", pkcs11::POINTER_EXT)) {
            let Some(access) = token else {
                continue;
            };
            match pkcs11::read_pointer(&p) {
                Ok(uri) => {
                    TokenKey::destroy(&uri, access)?;
                }
                Err(Error::File(FileError::NotFound { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        match std::fs::remove_file(&p) {
            Ok(()) => deleted.push((fp.clone(), p.display().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&p, "deleting", e)),
        }
        meta.entry(&fp).file = None;
        changed = true;
    }
    if changed {
        meta.save()?;
        fsutil::sync_dir(dir)?;
    }
    Ok(deleted)
}

/// Destroy the token keys of rotations that never committed (their orphan
/// pointers), when the token can be reached.
fn destroy_orphans(dir: &Path, token: Option<&Access>) -> Result<Vec<(Fingerprint, String)>> {
    let Some(access) = token else {
        return Ok(Vec::new());
    };
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut done = Vec::new();
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if !(n.starts_with(ORPHAN_PREFIX) && n.ends_with(pkcs11::POINTER_EXT)) {
            continue;
        }
        let p = e.path();
        let uri = pkcs11::read_pointer(&p)?;
        // The key of an uncommitted rotation: whatever it is, nothing
        // trusts it and nothing else points to it.
        let fp = TokenKey::open(&uri, access)
            .ok()
            .map(|k| k.public_key().fingerprint());
        TokenKey::destroy(&uri, access)?;
        std::fs::remove_file(&p).map_err(|e| Error::io(&p, "removing", e))?;
        if let Some(fp) = fp {
            done.push((fp, uri.text));
        }
    }
    if !done.is_empty() {
        fsutil::sync_dir(dir)?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::trust::meta::TRUST_FILE;

    /// 2027-01-15T08:00:00Z.
    const T: u64 = 1_800_000_000;
    const NAME: &str = "signing-key";

    #[test]
    fn rotation_action_json_keeps_the_contract_spelling() {
        for (a, s) in [
            (Action::Rotated, "rotated"),
            (Action::Created, "created"),
            (Action::NotDue, "not-due"),
        ] {
            assert_eq!(serde_json::to_string(&a).unwrap(), format!("\"{s}\""));
            assert_eq!(a.to_string(), s);
        }
    }

    fn opts(now: u64) -> Options<'static> {
        Options {
            init: true,
            ..Options::new(NAME, now)
        }
    }

    fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let keys = d.path().join("keys");
        let tdir = d.path().join("trusted");
        (d, keys, tdir)
    }

    fn fp_of(path: &Path) -> Fingerprint {
        encoding::load_private_key(path, None)
            .unwrap()
            .public_key()
            .fingerprint()
    }

    fn pem_fps(dir: &Path) -> BTreeSet<Fingerprint> {
        crate::rotate::keystore::pem_files(dir)
            .unwrap()
            .iter()
            .map(|p| fp_of(p))
            .collect()
    }

    /// Every file of both directories (but the lock), with its contents.
    fn snapshot(dirs: &[&Path]) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut m = BTreeMap::new();
        for d in dirs {
            for sub in [d.to_path_buf(), d.join("lineage")] {
                let Ok(rd) = std::fs::read_dir(&sub) else {
                    continue;
                };
                for e in rd.flatten() {
                    let p = e.path();
                    if p.is_file() && !p.ends_with(crate::fsutil::LOCK_FILE) {
                        m.insert(p.clone(), std::fs::read(&p).unwrap());
                    }
                }
            }
        }
        m
    }

    /// Steps 1 and 2 of a rotation of `dir` at `now`, done by hand: the
    /// staged key and the committed journal, nothing applied.
    fn commit_only(dir: &Path, tdir: &Path, now: u64, retired: Option<String>) -> Journal {
        let cur = dir.join(format!("{NAME}.pem"));
        let old = encoding::load_private_key(&cur, None).unwrap();
        let new = LocalKey::new(keys::generate(KeySpec::Ed25519).unwrap(), cur.clone());
        let st = Statement::endorse(&old, &new, NAME, (now, Some(now + 100)), now, 1).unwrap();
        let bytes = std::fs::read(&cur).unwrap();
        let retired = retired.unwrap_or_else(|| {
            retired_name(dir, NAME, &old.public_key().fingerprint(), now, "pem")
        });
        fsutil::write_atomic(
            &dir.join(STAGED),
            encoding::private_key_to_pem(new.private_key(), None)
                .unwrap()
                .as_bytes(),
            0o600,
            Replace::Never,
        )
        .unwrap();
        let j = Journal {
            version: 1,
            tdir: std::path::absolute(tdir).unwrap(),
            name: NAME.into(),
            now,
            emergency: false,
            reason: String::new(),
            grace_end: now + 100,
            old_fp: Some(old.public_key().fingerprint().to_string()),
            old_pem_sha256: Some(sha256_hex(&bytes)),
            retired_file: Some(retired),
            new_fp: new.public_key().fingerprint().to_string(),
            new_pub_pem: encoding::public_key_to_pem(new.public_key()).unwrap(),
            publish_dir: tdir.join("lineage"),
            statements: vec![(st.file_name(), st.to_text())],
            sequence: Some(1),
            ext: None,
        };
        std::fs::write(dir.join(JOURNAL), serde_json::to_vec(&j).unwrap()).unwrap();
        j
    }

    #[test]
    fn rotations_in_the_same_second_keep_every_private_key() {
        let (_d, keys, tdir) = dirs();
        let mut made = BTreeSet::new();
        for _ in 0..4 {
            let out = rotate(&keys, &tdir, &opts(T)).unwrap();
            made.insert(out.current_key.unwrap());
        }
        assert_eq!(made.len(), 4);
        assert_eq!(pem_fps(&keys), made, "a retired key was overwritten");
        let meta = Metadata::load(&keys, KEYS_FILE).unwrap();
        let files: BTreeSet<String> = meta.keys().iter().filter_map(|k| k.file.clone()).collect();
        assert_eq!(files.len(), 4, "each key has its own file: {files:?}");
        for k in meta.keys() {
            let f = k.file.as_ref().unwrap();
            assert_eq!(Some(fp_of(&keys.join(f))), k.fingerprint, "{f}");
        }
    }

    #[test]
    fn a_committed_journal_is_applied_idempotently() {
        let (_d, keys, tdir) = dirs();
        rotate(&keys, &tdir, &opts(T)).unwrap();
        let old = fp_of(&keys.join(format!("{NAME}.pem")));
        let j = commit_only(&keys, &tdir, T + 10, None);
        let jtext = std::fs::read(keys.join(JOURNAL)).unwrap();
        assert!(recover_locked(&keys).unwrap());
        let after = snapshot(&[&keys, &tdir]);
        assert!(!keys.join(JOURNAL).exists() && !keys.join(STAGED).exists());
        assert_eq!(
            fp_of(&keys.join(format!("{NAME}.pem"))).to_string(),
            j.new_fp
        );
        assert!(pem_fps(&keys).contains(&old));
        // Replaying the same journal (a run killed before removing it)
        // changes nothing.
        std::fs::write(keys.join(JOURNAL), &jtext).unwrap();
        assert!(recover_locked(&keys).unwrap());
        assert_eq!(snapshot(&[&keys, &tdir]), after);
        assert!(!recover_locked(&keys).unwrap(), "nothing left to recover");
    }

    #[test]
    fn an_uncommitted_rotation_is_rolled_back() {
        let (_d, keys, tdir) = dirs();
        rotate(&keys, &tdir, &opts(T)).unwrap();
        let before = snapshot(&[&keys, &tdir]);
        commit_only(&keys, &tdir, T + 10, None);
        std::fs::remove_file(keys.join(JOURNAL)).unwrap();
        std::fs::write(keys.join(".pkgsign-XXXXXX.tmp"), b"partial").unwrap();
        assert!(recover_locked(&keys).unwrap());
        assert_eq!(snapshot(&[&keys, &tdir]), before);
    }

    #[test]
    fn recovery_removes_temp_files_of_the_killed_run_everywhere() {
        let (_d, keys, tdir) = dirs();
        rotate(&keys, &tdir, &opts(T)).unwrap();
        commit_only(&keys, &tdir, T + 10, None);
        std::fs::create_dir_all(tdir.join("lineage")).unwrap();
        for d in [&keys, &tdir, &tdir.join("lineage")] {
            std::fs::write(d.join(".pkgsign-AbCdEf.tmp"), b"partial").unwrap();
        }
        assert!(recover_locked(&keys).unwrap());
        for d in [&keys, &tdir, &tdir.join("lineage")] {
            assert!(!d.join(".pkgsign-AbCdEf.tmp").exists(), "{}", d.display());
        }
    }

    #[test]
    fn apply_never_replaces_the_current_key_over_another_retired_key() {
        let (_d, keys, tdir) = dirs();
        rotate(&keys, &tdir, &opts(T)).unwrap();
        let cur = keys.join(format!("{NAME}.pem"));
        let old = fp_of(&cur);
        // A journal whose retired name is already taken by another key
        // (as the same-second collision used to produce).
        let other = keys.join("taken.pem");
        let k = keys::generate(KeySpec::Ed25519).unwrap();
        fsutil::write_atomic(
            &other,
            encoding::private_key_to_pem(&k, None).unwrap().as_bytes(),
            0o600,
            Replace::Never,
        )
        .unwrap();
        let other_fp = fp_of(&other);
        commit_only(&keys, &tdir, T + 10, Some("taken.pem".into()));
        assert!(matches!(
            recover_locked(&keys),
            Err(Error::File(FileError::AlreadyExists { .. }))
        ));
        assert_eq!(fp_of(&cur), old, "the current key must not be replaced");
        assert_eq!(fp_of(&other), other_fp);
        assert!(keys.join(JOURNAL).exists(), "the journal stays for a human");
    }

    #[test]
    fn retired_name_is_never_a_taken_name() {
        let (_d, keys, _) = dirs();
        std::fs::create_dir_all(&keys).unwrap();
        let fp = Fingerprint::of_spki_der(b"k");
        let plain = retired_name(&keys, NAME, &fp, T, "pem");
        assert_eq!(plain, "signing-key.retired-20270115T080000Z.pem");
        std::fs::write(keys.join(&plain), b"x").unwrap();
        let other = retired_name(&keys, NAME, &fp, T, "pem");
        assert_ne!(other, plain);
        assert!(
            other.starts_with("signing-key.retired-20270115T080000Z-") && other.ends_with(".pem")
        );
    }

    #[test]
    fn emergency_rotation_revokes_and_deletes_the_old_key() {
        let (_d, keys, tdir) = dirs();
        rotate(&keys, &tdir, &opts(T)).unwrap();
        let old = fp_of(&keys.join(format!("{NAME}.pem")));
        let o = Options {
            emergency: true,
            reason: Some("stolen".into()),
            ..opts(T + 5)
        };
        let out = rotate(&keys, &tdir, &o).unwrap();
        assert!(out.revoked);
        assert!(!pem_fps(&keys).contains(&old));
        let t = Metadata::load(&tdir, TRUST_FILE).unwrap();
        assert_eq!(t.get(&old).unwrap().revoked, Some((T + 5, "stolen".into())));
        let k = Metadata::load(&keys, KEYS_FILE).unwrap();
        assert!(k.get(&old).unwrap().revoked.is_some());
        assert_eq!(out.statements.len(), 1);
    }
}

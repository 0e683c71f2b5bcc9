//! The verification cache (`--cache FILE`): remembers digests already
//! computed, keyed by the file's path and stat signature (device, inode,
//! size, mtime and ctime in nanoseconds) and the algorithm.
//!
//! Only hashing is skipped on a hit; signatures, trust windows and
//! revocations are always checked afresh. ctime cannot be set by the file's
//! owner, so rewriting a file and restoring its size and mtime still misses.
//! A file whose ctime is less than [`RACY_SECS`] old is not cached: a second
//! write within the same clock tick could otherwise go unnoticed.
//!
//! Only files that nobody but the verifying user (or root) can write are
//! looked up or remembered ([`cacheable`]): a process that can write a file
//! can change its bytes without changing any stat field (a write through a
//! shared memory mapping to pages already dirty updates neither mtime nor
//! ctime), so a stat-keyed cache can vouch only for files whose writers
//! the caller already trusts as much as itself.
//!
//! The file is JSON, written atomically and merged under a lock when several
//! processes share it, bounded to [`MAX_ENTRIES`] entries (least recently
//! used dropped). A missing, corrupt, oversized or foreign-version cache is
//! ignored and rebuilt, never an error. `SECURITY.md` says what it trusts.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, HashAlg, Progress};
use crate::error::{Error, Result};
use crate::fsutil::{self, Replace};

/// Most entries kept.
pub const MAX_ENTRIES: usize = 200_000;
/// Largest cache file read.
pub const FILE_LIMIT: u64 = 128 * 1024 * 1024;
/// Files changed more recently than this are not cached.
pub const RACY_SECS: i64 = 1;
const VERSION: u32 = 1;

/// The stat signature a cached digest is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatSig {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// Status-change time, nanoseconds since the epoch.
    pub ctime_ns: i128,
}

impl StatSig {
    /// From file metadata.
    pub fn of(m: &Metadata) -> Self {
        StatSig {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    path: String,
    alg: String,
    stat: StatSig,
    hex: String,
    used: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct FileForm {
    version: u32,
    entries: Vec<Record>,
}

type Key = (String, HashAlg);

/// An open cache. Shared between threads; saved with [`Cache::save`].
#[derive(Debug)]
pub struct Cache {
    path: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Key, (StatSig, Digest, u64)>,
    fresh: HashMap<Key, (StatSig, Digest, u64)>,
    hits: u64,
    misses: u64,
    skipped: u64,
}

/// Why a file's digest is neither taken from the cache nor put into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Someone other than the caller and root can write the file: it is
    /// owned by another user, or group or others have write permission.
    WritableByOthers,
}

impl Skip {
    /// How `--json` says it: `skipped: writable by others`.
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::WritableByOthers => "skipped: writable by others",
        }
    }
}

/// How the cache served one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// The digest came from the cache.
    Hit,
    /// The file was hashed (and its digest remembered).
    Miss,
    /// The cache was not used for it, and why.
    Skipped(Skip),
}

impl CacheUse {
    /// How `--json` says it: `hit`, `miss`, `skipped: writable by others`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheUse::Hit => "hit",
            CacheUse::Miss => "miss",
            CacheUse::Skipped(s) => s.as_str(),
        }
    }
}

impl serde::Serialize for CacheUse {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Whether the cache may vouch for the file whose metadata is `m`: owned by
/// the caller (effective uid) or by root, with no group or other write bit.
/// A rename over the file needs no write permission on it, but gives
/// another inode and ctime, so it misses anyway.
pub fn cacheable(m: &Metadata) -> std::result::Result<(), Skip> {
    let owner = m.uid();
    let caller = rustix::process::geteuid().as_raw();
    if (owner == caller || owner == 0) && m.mode() & 0o022 == 0 {
        Ok(())
    } else {
        Err(Skip::WritableByOthers)
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn load_entries(path: &Path) -> HashMap<Key, (StatSig, Digest, u64)> {
    let Ok(data) = fsutil::read_bounded(path, FILE_LIMIT, "cache file") else {
        return HashMap::new();
    };
    parse_entries(&data)
}

fn parse_entries(data: &[u8]) -> HashMap<Key, (StatSig, Digest, u64)> {
    let Ok(form) = serde_json::from_slice::<FileForm>(data) else {
        return HashMap::new();
    };
    if form.version != VERSION {
        return HashMap::new();
    }
    form.entries
        .into_iter()
        .take(MAX_ENTRIES)
        .filter_map(|r| {
            let alg: HashAlg = r.alg.parse().ok()?;
            let digest = Digest::parse(&format!("{}:{}", alg.name(), r.hex), false).ok()?;
            Some(((r.path, alg), (r.stat, digest, r.used)))
        })
        .collect()
}

impl Cache {
    /// Open the cache at `path` (missing or unusable: empty).
    pub fn open(path: &Path) -> Self {
        Cache {
            path: path.to_path_buf(),
            inner: Mutex::new(Inner {
                entries: load_entries(path),
                ..Inner::default()
            }),
        }
    }

    /// A cache at `path` holding what the cache file bytes `data` hold
    /// (see [`Cache::open`]: bytes that do not parse give an empty cache).
    pub fn from_bytes(path: &Path, data: &[u8]) -> Self {
        Cache {
            path: path.to_path_buf(),
            inner: Mutex::new(Inner {
                entries: parse_entries(data),
                ..Inner::default()
            }),
        }
    }

    /// How many digests the cache holds.
    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.entries.len()).unwrap_or(0)
    }

    /// Whether the cache holds no digest.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cache file's bytes for what the cache holds now (what
    /// [`Cache::save`] writes, less the merge with the file on disk):
    /// [`Cache::from_bytes`] reads them back as the same cache.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let entries = self
            .inner
            .lock()
            .map(|i| i.entries.clone())
            .unwrap_or_default();
        encode(entries)
            .map_err(|e| Error::io(&self.path, "encoding cache", std::io::Error::other(e)))
    }

    fn key(file: &Path, alg: HashAlg) -> Option<Key> {
        let abs = std::path::absolute(file).ok()?;
        Some((abs.to_str()?.to_string(), alg))
    }

    /// The cached digest of `file` if its stat signature is unchanged.
    /// (Not counted in [`Cache::stats`]: [`Cache::lookup`] counts files.)
    pub fn get(&self, file: &Path, alg: HashAlg, stat: &StatSig) -> Option<Digest> {
        let key = Cache::key(file, alg)?;
        let mut inner = self.inner.lock().ok()?;
        match inner.entries.get_mut(&key) {
            Some((s, d, used)) if s == stat => {
                *used = now_secs();
                Some(d.clone())
            }
            _ => None,
        }
    }

    /// The digests of the opened regular `file` (known as `path`) for each
    /// of `algs`, if all are cached for its present stat signature, taken
    /// from the descriptor itself. Returns the size and the digests. Counts
    /// one hit or one miss in [`Cache::stats`].
    pub fn lookup(&self, file: &File, path: &Path, algs: &[HashAlg]) -> Option<(u64, Vec<Digest>)> {
        let meta = file.metadata().ok().filter(|m| m.is_file());
        if let Some(m) = &meta
            && cacheable(m).is_err()
        {
            if let Ok(mut inner) = self.inner.lock() {
                inner.skipped += 1;
            }
            return None;
        }
        let found = meta.and_then(|m| {
            let stat = StatSig::of(&m);
            let digests = algs
                .iter()
                .map(|a| self.get(path, *a, &stat))
                .collect::<Option<Vec<_>>>()?;
            Some((stat.size, digests))
        });
        if let Ok(mut inner) = self.inner.lock() {
            if found.is_some() {
                inner.hits += 1;
            } else {
                inner.misses += 1;
            }
        }
        found
    }

    /// Remember `digest` for `file`, if the file did not change while it was
    /// hashed (`before` and `after` stat signatures equal) and is not too
    /// recently changed.
    pub fn put(&self, file: &Path, digest: &Digest, before: &StatSig, after: &StatSig) {
        if before != after {
            return;
        }
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        if now_ns - after.ctime_ns < i128::from(RACY_SECS) * 1_000_000_000 {
            return;
        }
        let Some(key) = Cache::key(file, digest.alg()) else {
            return;
        };
        if let Ok(mut inner) = self.inner.lock() {
            let v = (*after, digest.clone(), now_secs());
            inner.entries.insert(key.clone(), v.clone());
            inner.fresh.insert(key, v);
        }
    }

    /// (hits, misses) so far.
    pub fn stats(&self) -> (u64, u64) {
        self.inner
            .lock()
            .map(|i| (i.hits, i.misses))
            .unwrap_or((0, 0))
    }

    /// Files looked up so far that the cache was not used for (see
    /// [`cacheable`]).
    pub fn skipped(&self) -> u64 {
        self.inner.lock().map(|i| i.skipped).unwrap_or(0)
    }

    /// Write the cache back: under a lock on `FILE.lock`, re-read the file,
    /// merge this run's new entries into it, keep the most recently used
    /// [`MAX_ENTRIES`], and replace the file atomically.
    pub fn save(&self) -> Result<()> {
        let Ok(inner) = self.inner.lock() else {
            return Ok(());
        };
        // Pure hits change nothing worth an fsync: the least-recently-used
        // order is refreshed only when new entries are written anyway.
        if inner.fresh.is_empty() {
            return Ok(());
        }
        let lock_path = {
            let mut s = self.path.as_os_str().to_os_string();
            s.push(".lock");
            PathBuf::from(s)
        };
        let lock = fsutil::open_lock_file(&lock_path)?;
        lock.lock()
            .map_err(|e| Error::io(&lock_path, "locking cache", e))?;
        let mut merged = load_entries(&self.path);
        for (k, v) in inner.entries.iter() {
            // Ours win where we hashed or used them in this run.
            match merged.get(k) {
                Some(theirs) if !inner.fresh.contains_key(k) && theirs.2 >= v.2 => {}
                _ => {
                    merged.insert(k.clone(), v.clone());
                }
            }
        }
        let text = encode(merged)
            .map_err(|e| Error::io(&self.path, "encoding cache", std::io::Error::other(e)))?;
        fsutil::write_atomic(&self.path, &text, 0o600, Replace::Allowed)
    }
}

/// Hash the opened `file` (known as `path`) with each of `algs`, and with
/// a cache, remember the digests if the file did not change while it was
/// read: its stat signature, taken from this same descriptor before and
/// after, is unchanged. The digests are never those of another file that
/// was swapped in under the name meanwhile. Returns the size and digests.
pub fn hash_and_remember(
    file: File,
    path: &Path,
    algs: &[HashAlg],
    cache: Option<&Cache>,
    progress: Option<&Progress>,
    allow_thread: bool,
) -> Result<(u64, Vec<Digest>)> {
    let before = file
        .metadata()
        .map_err(|_| ())
        .and_then(|m| cacheable(&m).map_err(|_| ()).map(|()| StatSig::of(&m)));
    let again = cache.and_then(|_| file.try_clone().ok());
    let (size, digests) = crate::digest::hash_open_file(file, path, algs, progress, allow_thread)?;
    if let (Some(c), Some(f), Ok(before)) = (cache, again, before)
        && let Ok(m) = f.metadata()
    {
        let after = StatSig::of(&m);
        for d in &digests {
            c.put(path, d, &before, &after);
        }
    }
    Ok((size, digests))
}

/// Hash the regular file at `path` with each of `algs`, taking the digests
/// from `cache` when its stat signature is unchanged and remembering them
/// otherwise. Stat and digest come from one descriptor. Returns the size,
/// the digests in the order of `algs`, and whether they came from the cache.
pub fn hash_file_cached(
    path: &Path,
    algs: &[HashAlg],
    cache: Option<&Cache>,
    progress: Option<&Progress>,
) -> Result<(u64, Vec<Digest>, bool)> {
    let file = crate::fsutil::open_regular(path)?;
    if let Some((size, digests)) = cache.and_then(|c| c.lookup(&file, path, algs)) {
        return Ok((size, digests, true));
    }
    let (size, digests) = hash_and_remember(file, path, algs, cache, progress, true)?;
    Ok((size, digests, false))
}

/// The cache file's text for `entries`: the most recently used
/// [`MAX_ENTRIES`], sorted by path and algorithm.
fn encode(entries: HashMap<Key, (StatSig, Digest, u64)>) -> serde_json::Result<Vec<u8>> {
    let mut records: Vec<Record> = entries
        .into_iter()
        .map(|((path, alg), (stat, d, used))| Record {
            path,
            alg: alg.name().to_string(),
            stat,
            hex: d.hex(),
            used,
        })
        .collect();
    if records.len() > MAX_ENTRIES {
        records.sort_by_key(|r| std::cmp::Reverse(r.used));
        records.truncate(MAX_ENTRIES);
    }
    records.sort_by(|a, b| (&a.path, &a.alg).cmp(&(&b.path, &b.alg)));
    serde_json::to_vec(&FileForm {
        version: VERSION,
        entries: records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::hash_bytes;

    fn old_file(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        p
    }

    fn stat(p: &Path) -> StatSig {
        StatSig::of(&std::fs::metadata(p).unwrap())
    }

    #[test]
    fn hash_file_cached_skips_hashing_only_for_an_unchanged_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = old_file(dir.path(), "f", b"first");
        let c = Cache::open(&dir.path().join("cache.json"));
        let algs = [HashAlg::Sha256, HashAlg::Blake3];
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let (n, d, hit) = hash_file_cached(&p, &algs, Some(&c), None).unwrap();
        assert_eq!((n, hit), (5, false));
        assert_eq!(d[0], hash_bytes(HashAlg::Sha256, b"first"));
        assert_eq!(d[1], hash_bytes(HashAlg::Blake3, b"first"));
        let (_, again, hit) = hash_file_cached(&p, &algs, Some(&c), None).unwrap();
        assert!(hit);
        assert_eq!(again, d);
        // Same size, mtime put back: the ctime still moves, so it is hashed.
        let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
        std::fs::write(&p, b"other").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let (_, d2, hit) = hash_file_cached(&p, &algs, Some(&c), None).unwrap();
        assert!(!hit);
        assert_eq!(d2[0], hash_bytes(HashAlg::Sha256, b"other"));
        assert_eq!(c.stats(), (1, 2));
    }

    #[test]
    fn hit_miss_and_racy_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = old_file(dir.path(), "f", b"data");
        let d = hash_bytes(HashAlg::Sha256, b"data");
        let c = Cache::open(&dir.path().join("cache.json"));
        let s = stat(&p);
        // Just written: too recent to cache.
        c.put(&p, &d, &s, &s);
        assert!(c.get(&p, HashAlg::Sha256, &s).is_none());
        std::thread::sleep(std::time::Duration::from_millis(1100));
        c.put(&p, &d, &s, &s);
        assert_eq!(c.get(&p, HashAlg::Sha256, &s), Some(d.clone()));
        assert!(c.get(&p, HashAlg::Sha512, &s).is_none());
        c.save().unwrap();
        let c2 = Cache::open(&dir.path().join("cache.json"));
        assert_eq!(c2.get(&p, HashAlg::Sha256, &s), Some(d));
        let mut other = s;
        other.ctime_ns += 1;
        assert!(c2.get(&p, HashAlg::Sha256, &other).is_none());
    }

    #[test]
    fn corrupt_cache_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cp = dir.path().join("cache.json");
        for junk in [&b"{not json"[..], b"{\"version\":9,\"entries\":[]}", b""] {
            std::fs::write(&cp, junk).unwrap();
            let c = Cache::open(&cp);
            assert_eq!(c.stats(), (0, 0));
        }
    }

    /// A stat signature whose ctime is old enough to be cached, without
    /// waiting: `put` judges the age from the signature it is given.
    fn aged(p: &Path) -> StatSig {
        let mut s = stat(p);
        s.ctime_ns -= 10_000_000_000;
        s
    }

    #[test]
    fn changed_while_hashed_is_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let p = old_file(dir.path(), "f", b"data");
        let d = hash_bytes(HashAlg::Sha256, b"data");
        let c = Cache::open(&dir.path().join("cache.json"));
        let before = aged(&p);
        let mut after = before;
        after.mtime_ns += 1;
        c.put(&p, &d, &before, &after);
        assert!(c.get(&p, HashAlg::Sha256, &before).is_none());
        assert!(c.get(&p, HashAlg::Sha256, &after).is_none());
        c.put(&p, &d, &before, &before);
        assert_eq!(c.get(&p, HashAlg::Sha256, &before), Some(d));
        // Any field of the signature differing is a miss.
        for f in 0..5 {
            let mut other = before;
            match f {
                0 => other.dev += 1,
                1 => other.ino += 1,
                2 => other.size += 1,
                3 => other.mtime_ns -= 1,
                _ => other.ctime_ns += 1,
            }
            assert!(c.get(&p, HashAlg::Sha256, &other).is_none(), "field {f}");
        }
    }

    #[test]
    fn two_caches_saving_the_same_file_merge() {
        let dir = tempfile::tempdir().unwrap();
        let cp = dir.path().join("cache.json");
        let p1 = old_file(dir.path(), "one", b"1");
        let p2 = old_file(dir.path(), "two", b"2");
        let (c1, c2) = (Cache::open(&cp), Cache::open(&cp));
        let d1 = hash_bytes(HashAlg::Sha256, b"1");
        let d2 = hash_bytes(HashAlg::Blake3, b"2");
        let (s1, s2) = (aged(&p1), aged(&p2));
        c1.put(&p1, &d1, &s1, &s1);
        c2.put(&p2, &d2, &s2, &s2);
        c1.save().unwrap();
        c2.save().unwrap();
        let c = Cache::open(&cp);
        assert_eq!(c.get(&p1, HashAlg::Sha256, &s1), Some(d1));
        assert_eq!(c.get(&p2, HashAlg::Blake3, &s2), Some(d2));
        assert!(c.get(&p2, HashAlg::Sha256, &s2).is_none());
    }

    #[test]
    fn oversized_or_malformed_entries_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cp = dir.path().join("cache.json");
        let p = old_file(dir.path(), "f", b"data");
        let s = aged(&p);
        let good = Cache::open(&cp);
        let d = hash_bytes(HashAlg::Sha256, b"data");
        good.put(&p, &d, &s, &s);
        good.save().unwrap();
        assert_eq!(Cache::open(&cp).get(&p, HashAlg::Sha256, &s), Some(d));
        // A digest of the wrong length for its algorithm is dropped.
        let text = std::fs::read_to_string(&cp).unwrap();
        let hex = hash_bytes(HashAlg::Sha256, b"data").hex();
        std::fs::write(&cp, text.replace(&hex, &hex[..40])).unwrap();
        assert!(Cache::open(&cp).get(&p, HashAlg::Sha256, &s).is_none());
        // Beyond the size limit: ignored.
        let f = std::fs::File::create(&cp).unwrap();
        f.set_len(FILE_LIMIT + 1).unwrap();
        drop(f);
        let c = Cache::open(&cp);
        assert!(c.get(&p, HashAlg::Sha256, &s).is_none());
        // Deeply nested JSON: no stack overflow, ignored.
        std::fs::write(&cp, "[".repeat(1_000_000)).unwrap();
        assert!(Cache::open(&cp).get(&p, HashAlg::Sha256, &s).is_none());
    }
}

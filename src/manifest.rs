//! `verify-manifest`: a signed checksum list, then every file it names.
//!
//! The list's signature is checked first, through the same signer and trust
//! code as `verify-package` (thresholds and windows included), on exactly
//! the bytes that are then parsed. Then every named file is hashed, in
//! parallel, relative to the list's directory. A name that is absolute,
//! climbs out of that directory (`..`, or a symlink that leads outside), or
//! uses an insecure algorithm is refused and never opened.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::cache::Cache;
use crate::checksum;
use crate::digest::{self, Digest};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::report::Verified;
use crate::signer::{self, VerifyOptions};
use crate::trust::TrustStore;

/// Largest checksum list accepted.
pub const LIST_LIMIT: u64 = 256 * 1024 * 1024;

/// The outcome for one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileResult {
    /// The name as written in the list (lossy UTF-8 for display).
    pub name: String,
    /// The list line.
    pub line: usize,
    /// Whether it matched.
    pub ok: bool,
    /// A stable code when it did not: `CHECKSUM_MISMATCH`, `FILE_NOT_FOUND`,
    /// `PATH_REFUSED`, `WEAK_ALGORITHM`, `IO_ERROR`, `NOT_A_FILE`.
    pub code: Option<&'static str>,
    /// One line.
    pub detail: String,
    /// Whether the digest came from the cache.
    pub cached: bool,
}

/// Everything `verify-manifest` found.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestReport {
    /// Per file, in list order.
    pub files: Vec<FileResult>,
    /// Lines of the list that are not well formed.
    pub malformed_lines: Vec<usize>,
    /// Files that failed.
    pub failed: usize,
}

/// Options.
pub struct Options<'a> {
    /// Worker threads (at least 1).
    pub jobs: usize,
    /// The verification cache.
    pub cache: Option<&'a Cache>,
    /// Signature checks (threshold, clock).
    pub verify: VerifyOptions,
    /// Told how many files have been checked so far.
    pub progress: Option<crate::digest::Progress>,
    /// Told, once the list is verified, how many files it names.
    pub on_total: Option<Box<dyn Fn(u64) + Send + Sync>>,
}

/// Verify the signature over `list`, then every file in it.
pub fn verify_manifest(
    list: &Path,
    signature: &Path,
    trust: &TrustStore,
    opts: &Options<'_>,
) -> Result<(Verified, ManifestReport)> {
    let bytes = fsutil::read_bounded(list, LIST_LIMIT, "checksum list")?;
    let verified = signer::verify_package(list, Some(signature), trust, &opts.verify)?;
    // The list may not change between its verification and its use.
    let same = verified
        .report()
        .package_hash
        .as_deref()
        .and_then(|h| Digest::parse(h, false).ok())
        .is_some_and(|d| d.ct_eq(&digest::hash_bytes(d.alg(), &bytes)));
    if !same {
        return Err(Error::Io {
            path: list.to_path_buf(),
            action: "reading",
            source: std::io::Error::other(
                "the list changed while it was being verified; try again",
            ),
        });
    }
    let parsed = checksum::parse(&bytes, None);
    if let Some(f) = &opts.on_total {
        f(parsed.entries.len() as u64);
    }
    let base = fsutil::parent_dir(list);
    let base_real = std::fs::canonicalize(&base).map_err(|e| Error::io(&base, "resolving", e))?;
    let files = check_all(&parsed.entries, &base, &base_real, opts);
    let failed = files.iter().filter(|f| !f.ok).count();
    Ok((
        verified,
        ManifestReport {
            files,
            malformed_lines: parsed.malformed,
            failed,
        },
    ))
}

fn check_all(
    entries: &[checksum::Entry],
    base: &Path,
    base_real: &Path,
    opts: &Options<'_>,
) -> Vec<FileResult> {
    let dirs = Dirs {
        base,
        real: base_real,
        handle: std::fs::File::open(base_real).ok(),
    };
    let done = std::sync::atomic::AtomicU64::new(0);
    let tick = || {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if let Some(p) = &opts.progress {
            (p.0)(n);
        }
    };
    // First, on this thread, everything that needs no hashing: refusals,
    // missing files and cache hits. A warm cache then starts no thread.
    let mut results: Vec<Option<FileResult>> = entries
        .iter()
        .map(|e| {
            let r = check_one(e, &dirs, opts.cache, Mode::NoHash);
            if r.is_some() {
                tick();
            }
            r
        })
        .collect();
    let pending: Vec<usize> = (0..entries.len())
        .filter(|i| results[*i].is_none())
        .collect();
    // Files hashed in parallel are read on their hashing thread.
    let parallel = pending.len() > 1 && opts.jobs > 1;
    let hash = |i: &usize| {
        let mode = if parallel { Mode::HashHere } else { Mode::Hash };
        let r = check_one(&entries[*i], &dirs, opts.cache, mode);
        tick();
        r
    };
    let hashed: Vec<Option<FileResult>> = match pending.len() {
        0 => Vec::new(),
        1 => pending.iter().map(hash).collect(),
        _ => match rayon::ThreadPoolBuilder::new()
            .num_threads(opts.jobs.max(1))
            .build()
        {
            Ok(pool) => pool.install(|| {
                use rayon::prelude::*;
                pending.par_iter().map(hash).collect()
            }),
            Err(_) => pending.iter().map(hash).collect(),
        },
    };
    for (i, r) in pending.into_iter().zip(hashed) {
        results[i] = r;
    }
    results
        .into_iter()
        .zip(entries)
        .map(|(r, e)| {
            r.unwrap_or_else(|| FileResult {
                name: String::from_utf8_lossy(&e.name).into_owned(),
                line: e.line,
                ok: false,
                code: Some("IO_ERROR"),
                detail: "not checked".into(),
                cached: false,
            })
        })
        .collect()
}

/// A name that stays inside the list's directory: relative, no `..`, no
/// root or prefix components, no NUL.
pub fn safe_relative(name: &[u8]) -> Option<PathBuf> {
    if name.is_empty() || name.contains(&0) {
        return None;
    }
    let p = Path::new(OsStr::from_bytes(name));
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// The list's directory: as named, resolved, and opened.
struct Dirs<'a> {
    base: &'a Path,
    real: &'a Path,
    handle: Option<std::fs::File>,
}

/// How [`check_one`] may get a digest.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Only from the cache: `None` means "hash it".
    NoHash,
    /// Hash, reading with a reader thread for large files.
    Hash,
    /// Hash, reading on this thread.
    HashHere,
}

/// Check one entry: refusals, missing files, cache hits, and (unless
/// `mode` is [`Mode::NoHash`]) hashing.
fn check_one(
    e: &checksum::Entry,
    dirs: &Dirs<'_>,
    cache: Option<&Cache>,
    mode: Mode,
) -> Option<FileResult> {
    let (base, base_real, base_dir) = (dirs.base, dirs.real, dirs.handle.as_ref());
    let name = String::from_utf8_lossy(&e.name).into_owned();
    let mut r = FileResult {
        name,
        line: e.line,
        ok: false,
        code: None,
        detail: String::new(),
        cached: false,
    };
    let fail = |mut r: FileResult, code: &'static str, detail: String| {
        r.code = Some(code);
        r.detail = detail;
        Some(r)
    };
    let alg = e.expected.alg();
    if !alg.fit_for_signatures() {
        return fail(
            r,
            "WEAK_ALGORITHM",
            format!("{alg} is insecure; a signed list must use SHA-256 or stronger"),
        );
    }
    let Some(rel) = safe_relative(&e.name) else {
        return fail(
            r,
            "PATH_REFUSED",
            "absolute or climbs out of the list's directory; not opened".into(),
        );
    };
    let path = base.join(&rel);
    // A symlink on the way may still lead outside: resolve and check.
    match std::fs::canonicalize(&path) {
        Ok(real) if real.starts_with(base_real) => {}
        Ok(_) => {
            return fail(
                r,
                "PATH_REFUSED",
                "leads outside the list's directory through a symlink; not read".into(),
            );
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return fail(r, "FILE_NOT_FOUND", "missing".into());
        }
        Err(err) => return fail(r, "IO_ERROR", err.to_string()),
    }
    // Open beneath the list's directory: with openat2(RESOLVE_BENEATH) the
    // kernel refuses any way out, even a symlink swapped in after the check
    // above. The digest is computed from this very descriptor.
    let file = match open_beneath(base_dir, &rel, &path) {
        Ok(f) => f,
        Err(err) if err.raw_os_error() == Some(rustix::io::Errno::XDEV.raw_os_error()) => {
            return fail(
                r,
                "PATH_REFUSED",
                "leads outside the list's directory; not read".into(),
            );
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return fail(r, "FILE_NOT_FOUND", "missing".into());
        }
        Err(err) => return fail(r, "IO_ERROR", err.to_string()),
    };
    match file.metadata() {
        Ok(m) if m.is_file() => {}
        Ok(_) => return fail(r, "NOT_A_FILE", "not a regular file".into()),
        Err(err) => return fail(r, "IO_ERROR", err.to_string()),
    }
    let found = if mode == Mode::NoHash {
        match cache.and_then(|c| c.lookup(&file, &path, &[alg])) {
            Some((_, d)) => Ok((d, true)),
            None => return None,
        }
    } else {
        crate::cache::hash_and_remember(file, &path, &[alg], cache, None, mode == Mode::Hash)
            .map(|(_, d)| (d, false))
    };
    match found.and_then(|(d, cached)| match d.into_iter().next() {
        Some(d) => Ok((d, cached)),
        None => Err(Error::Io {
            path: path.clone(),
            action: "hashing",
            source: std::io::Error::other("no digest computed"),
        }),
    }) {
        Ok((d, cached)) => {
            r.cached = cached;
            if d.ct_eq(&e.expected) {
                r.ok = true;
                r.detail = "OK".into();
                Some(r)
            } else {
                fail(
                    r,
                    "CHECKSUM_MISMATCH",
                    format!(
                        "{alg} digest is {}, the list says {}",
                        d.hex(),
                        e.expected.hex()
                    ),
                )
            }
        }
        Err(Error::FileNotFound { .. }) => fail(r, "FILE_NOT_FOUND", "missing".into()),
        Err(Error::NotAFile { .. }) => fail(r, "NOT_A_FILE", "not a regular file".into()),
        Err(err) => fail(r, "IO_ERROR", err.to_string()),
    }
}

/// Open `rel` for reading beneath the directory `dir` (opened once per
/// list) with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`; on a
/// kernel without openat2 (before Linux 5.6), open `path` as checked above.
/// Never blocks on a FIFO.
fn open_beneath(
    dir: Option<&std::fs::File>,
    rel: &Path,
    path: &Path,
) -> std::io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags, ResolveFlags, openat2};
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    if let Some(d) = dir {
        match openat2(
            d,
            rel,
            flags,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => return Ok(std::fs::File::from(fd)),
            Err(rustix::io::Errno::NOSYS) => {}
            Err(e) => return Err(e.into()),
        }
    }
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(OFlags::NONBLOCK.bits() as i32)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The open itself refuses a way out, so a symlink swapped in after the
    /// path check cannot lead outside.
    #[cfg(target_os = "linux")]
    #[test]
    fn open_beneath_refuses_an_escaping_symlink() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"x").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ok"), b"y").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link")).unwrap();
        let handle = std::fs::File::open(dir.path()).unwrap();
        assert!(open_beneath(Some(&handle), Path::new("ok"), &dir.path().join("ok")).is_ok());
        let err =
            open_beneath(Some(&handle), Path::new("link"), &dir.path().join("link")).unwrap_err();
        assert_eq!(
            err.raw_os_error(),
            Some(rustix::io::Errno::XDEV.raw_os_error())
        );
    }

    #[test]
    fn traversal_is_refused() {
        for bad in [
            &b"/etc/passwd"[..],
            b"../x",
            b"a/../../x",
            b"a/..",
            b"",
            b"a\0b",
            b".",
        ] {
            assert!(safe_relative(bad).is_none(), "{bad:?}");
        }
        assert_eq!(safe_relative(b"./a/b").unwrap(), PathBuf::from("a/b"));
        assert_eq!(
            safe_relative(b"sp ace/f").unwrap(),
            PathBuf::from("sp ace/f")
        );
    }
}

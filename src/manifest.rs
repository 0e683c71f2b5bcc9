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
    /// With a cache: `hit`, `miss`, or why it was not used for this file
    /// (`skipped: writable by others`, see [`crate::cache::cacheable`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<&'static str>,
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
    // Every listed file is opened relative to this handle (O_PATH: search
    // permission is enough).
    let handle = rustix::fs::open(
        &base_real,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::io(&base, "opening", e.into()))?;
    let dirs = Dirs {
        base: &base,
        real: &base_real,
        handle: std::fs::File::from(handle),
    };
    let files = check_all(&parsed.entries, &dirs, opts);
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

fn check_all(entries: &[checksum::Entry], dirs: &Dirs<'_>, opts: &Options<'_>) -> Vec<FileResult> {
    let done = std::sync::atomic::AtomicU64::new(0);
    let tick = || {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if let Some(p) = &opts.progress {
            (p.0)(n);
        }
    };
    // With a cache, first, on this thread, everything that needs no
    // hashing: refusals, missing files and cache hits, so that a warm cache
    // starts no thread. Without one, each file is checked once, below.
    let mut results: Vec<Option<FileResult>> = match opts.cache {
        Some(_) => entries
            .iter()
            .map(|e| {
                let r = check_one(e, dirs, opts.cache, Mode::NoHash);
                if r.is_some() {
                    tick();
                }
                r
            })
            .collect(),
        None => vec![None; entries.len()],
    };
    let pending: Vec<usize> = (0..entries.len())
        .filter(|i| results[*i].is_none())
        .collect();
    // Files hashed in parallel are read on their hashing thread.
    let parallel = pending.len() > 1 && opts.jobs > 1;
    let hash = |i: &usize| {
        let mode = if parallel { Mode::HashHere } else { Mode::Hash };
        let r = check_one(&entries[*i], dirs, opts.cache, mode);
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
                cache: None,
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
    handle: std::fs::File,
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
    let (base, base_real, base_dir) = (dirs.base, dirs.real, &dirs.handle);
    let name = String::from_utf8_lossy(&e.name).into_owned();
    let mut r = FileResult {
        name,
        line: e.line,
        ok: false,
        code: None,
        detail: String::new(),
        cached: false,
        cache: None,
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
    let file = match open_beneath(base_dir, &rel) {
        Ok(f) => f,
        Err(err) if is_refusal(&err) => {
            return fail(
                r,
                "PATH_REFUSED",
                "leads outside the list's directory, or through a symlink this kernel cannot follow safely (no openat2); not read".into(),
            );
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return fail(r, "FILE_NOT_FOUND", "missing".into());
        }
        Err(err) => return fail(r, "IO_ERROR", err.to_string()),
    };
    match file.metadata() {
        Ok(m) if m.is_file() => {
            if cache.is_some() {
                r.cache = Some(match crate::cache::cacheable(&m) {
                    Ok(()) => "miss",
                    Err(skip) => skip.as_str(),
                });
            }
        }
        Ok(_) => return fail(r, "NOT_A_FILE", "not a regular file".into()),
        Err(err) => return fail(r, "IO_ERROR", err.to_string()),
    }
    // The file is open: from here on only reading can fail.
    let found = if mode == Mode::NoHash {
        match cache.and_then(|c| c.lookup(&file, &path, &[alg])) {
            Some((_, d)) => Ok((d, true)),
            None => return None,
        }
    } else {
        crate::cache::hash_and_remember(file, &path, &[alg], cache, None, mode == Mode::Hash)
            .map(|(_, d)| (d, false))
    };
    let (d, cached) = match found.and_then(|(d, cached)| Ok((digest::single(d, &path)?, cached))) {
        Ok(found) => found,
        Err(err) => return fail(r, "IO_ERROR", err.to_string()),
    };
    r.cached = cached;
    if cached {
        r.cache = Some("hit");
    }
    if !d.ct_eq(&e.expected) {
        return fail(
            r,
            "CHECKSUM_MISMATCH",
            format!(
                "{alg} digest is {}, the list says {}",
                d.hex(),
                e.expected.hex()
            ),
        );
    }
    r.ok = true;
    r.detail = "OK".into();
    Some(r)
}

/// Open `rel` (a [`safe_relative`] name) for reading beneath the directory
/// `dir` (opened once per list), so that nothing, not even a symlink swapped
/// in after the name was checked, leads outside. With
/// `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` the kernel does it and
/// symlinks that stay inside are followed; on a kernel without openat2
/// (before Linux 5.6) see [`open_no_follow`]. Never blocks on a FIFO.
fn open_beneath(dir: &std::fs::File, rel: &Path) -> std::io::Result<std::fs::File> {
    use rustix::fs::{Mode, ResolveFlags, openat2};
    match openat2(
        dir,
        rel,
        OPEN_FLAGS,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => Ok(std::fs::File::from(fd)),
        Err(rustix::io::Errno::NOSYS) => open_no_follow(dir, rel),
        Err(e) => Err(e.into()),
    }
}

/// How each listed file is opened: read-only, and never waiting on a FIFO
/// (which is then refused as not a regular file).
const OPEN_FLAGS: rustix::fs::OFlags = rustix::fs::OFlags::RDONLY
    .union(rustix::fs::OFlags::CLOEXEC)
    .union(rustix::fs::OFlags::NOCTTY)
    .union(rustix::fs::OFlags::NONBLOCK);

/// Without openat2: walk `rel` one component at a time from `dir`, each
/// opened with `O_NOFOLLOW`, so a symlink anywhere on the way is refused
/// (`ELOOP`, or `ENOTDIR` for a directory) rather than followed. Fails
/// closed: symlinks inside a release are not followed on such kernels.
fn open_no_follow(dir: &std::fs::File, rel: &Path) -> std::io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags, openat};
    let parts: Vec<&OsStr> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s),
            _ => None,
        })
        .collect();
    let Some((last, parents)) = parts.split_last() else {
        return Err(std::io::ErrorKind::NotFound.into());
    };
    let mut here = rustix::io::dup(dir)?;
    for part in parents {
        here = openat(
            &here,
            *part,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
    }
    let fd = openat(&here, *last, OPEN_FLAGS | OFlags::NOFOLLOW, Mode::empty())?;
    Ok(std::fs::File::from(fd))
}

/// Whether an open error means "a way out, or a symlink, was refused".
fn is_refusal(err: &std::io::Error) -> bool {
    use rustix::io::Errno;
    [Errno::XDEV, Errno::LOOP, Errno::NOTDIR]
        .iter()
        .any(|e| err.raw_os_error() == Some(e.raw_os_error()))
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
        assert!(open_beneath(&handle, Path::new("ok")).is_ok());
        let err = open_beneath(&handle, Path::new("link")).unwrap_err();
        assert_eq!(
            err.raw_os_error(),
            Some(rustix::io::Errno::XDEV.raw_os_error())
        );
        assert!(is_refusal(&err));
    }

    /// The walk used where openat2 is missing never follows a symlink, in
    /// the last component or on the way, and finds what is really there.
    #[test]
    fn open_no_follow_refuses_every_symlink() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(outside.path().join("d")).unwrap();
        std::fs::write(outside.path().join("d/secret"), b"x").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/f"), b"inside").unwrap();
        std::os::unix::fs::symlink(outside.path().join("d/secret"), dir.path().join("a/l"))
            .unwrap();
        std::os::unix::fs::symlink(outside.path().join("d"), dir.path().join("a/dl")).unwrap();
        std::os::unix::fs::symlink("b", dir.path().join("a/inner")).unwrap();
        let handle = std::fs::File::open(dir.path()).unwrap();
        let mut got = String::new();
        std::io::Read::read_to_string(
            &mut open_no_follow(&handle, Path::new("a/b/f")).unwrap(),
            &mut got,
        )
        .unwrap();
        assert_eq!(got, "inside");
        for refused in ["a/l", "a/dl/secret", "a/inner/f"] {
            let err = open_no_follow(&handle, Path::new(refused)).unwrap_err();
            assert!(is_refusal(&err), "{refused}: {err}");
        }
        let err = open_no_follow(&handle, Path::new("a/missing")).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
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

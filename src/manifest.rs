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
use crate::digest::{self, Digest, HashAlg};
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
    let jobs = opts.jobs.max(1);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build();
    let done = std::sync::atomic::AtomicU64::new(0);
    let one = |e: &checksum::Entry| {
        let r = check_one(e, base, base_real, opts.cache);
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if let Some(p) = &opts.progress {
            (p.0)(n);
        }
        r
    };
    let run = || {
        use rayon::prelude::*;
        entries.par_iter().map(one).collect::<Vec<_>>()
    };
    match pool {
        Ok(p) => p.install(run),
        Err(_) => entries.iter().map(one).collect(),
    }
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

fn check_one(
    e: &checksum::Entry,
    base: &Path,
    base_real: &Path,
    cache: Option<&Cache>,
) -> FileResult {
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
        r
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
    match hash_with_cache(&path, alg, cache) {
        Ok((d, cached)) => {
            r.cached = cached;
            if d.ct_eq(&e.expected) {
                r.ok = true;
                r.detail = "OK".into();
                r
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

/// Hash `path`, using and feeding the cache. Returns the digest and whether
/// it came from the cache.
pub fn hash_with_cache(path: &Path, alg: HashAlg, cache: Option<&Cache>) -> Result<(Digest, bool)> {
    let (_, d, cached) = crate::cache::hash_file_cached(path, &[alg], cache, None)?;
    let d = d.into_iter().next().ok_or_else(|| Error::Io {
        path: path.to_path_buf(),
        action: "hashing",
        source: std::io::Error::other("no digest computed"),
    })?;
    Ok((d, cached))
}

#[cfg(test)]
mod tests {
    use super::*;

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

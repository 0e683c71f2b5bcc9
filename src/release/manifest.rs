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

use crate::digest::cache::{Cache, CacheUse};
use crate::digest::{self, Digest, HashAlg};
use crate::error::{Code, Error, FileError, ParseError, Result};
use crate::fsutil;
use crate::release::checksum;
use crate::sign::report::Verified;
use crate::trust::TrustStore;
use crate::verify::{self, VerifyError, VerifyOptions};

/// Largest checksum list accepted, checked from the open file's size
/// before any byte of it is read.
pub const LIST_LIMIT: u64 = 256 * 1024 * 1024;

/// How many malformed line numbers are kept (and reported); the count is
/// exact.
pub const MALFORMED_SHOWN: usize = 100;

/// The list is read in pieces of this size, each fingerprinted (see
/// [`SignedList`]).
const CHUNK: usize = 1 << 20;

/// Entries checked together (in parallel) before their results are handed
/// on: bounds the memory a list of any length takes.
const BATCH: usize = 2048;

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
    pub code: Option<Code>,
    /// One line.
    pub detail: String,
    /// Whether the digest came from the cache.
    pub cached: bool,
    /// With a cache: `hit`, `miss`, or why it was not used for this file
    /// (`skipped: writable by others`, see [`crate::digest::cache::cacheable`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheUse>,
}

/// Everything `verify-manifest` found (see [`verify_manifest`]).
#[derive(Debug, Clone, Serialize)]
pub struct ManifestReport {
    /// Per file, in list order.
    pub files: Vec<FileResult>,
    /// Lines of the list that are not well formed: always empty, since such
    /// a list is refused ([`Error::Parse(ParseError::ManifestMalformed)`]). Kept for the shape
    /// of the JSON output.
    pub malformed_lines: Vec<usize>,
    /// Files that failed.
    pub failed: usize,
}

/// The counts of a [`SignedList::check_files`] run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    /// Files checked (the list's entries).
    pub total: usize,
    /// Files that failed.
    pub failed: usize,
    /// The first failing file's code, in list order.
    pub first_code: Option<Code>,
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

/// Verify the signature over `list`, then every file in it, collecting
/// every result in memory. For lists of any length, use [`SignedList::open`]
/// and [`SignedList::check_files`], which hand each result on as it comes.
pub fn verify_manifest(
    list: &Path,
    signature: &Path,
    trust: &TrustStore,
    opts: &Options<'_>,
) -> Result<(Verified, ManifestReport), VerifyError> {
    let signed = SignedList::open(list, signature, trust, opts)?;
    let mut files = Vec::new();
    let (verified, summary) = signed.check_files(opts, |r| {
        files.push(r.clone());
        Ok(())
    })?;
    Ok((
        verified,
        ManifestReport {
            files,
            malformed_lines: Vec::new(),
            failed: summary.failed,
        },
    ))
}

/// A checksum list whose signature verified, every line of which is a
/// checksum entry, and which names at least one file; its files are not
/// checked yet ([`SignedList::check_files`]).
///
/// # Why the list is read twice, and why that is safe
///
/// The list is never held in memory whole (a release may list millions of
/// files). It is opened once, and that one descriptor is read twice: first
/// to hash it (the digest must be the one the signature vouches for), to
/// check that every line is an entry and to count them; then to check the
/// files, batch by batch. Between the two reads the file could be changed in
/// place by anyone who may write it. So the first read also keeps a BLAKE3
/// digest of every 1 MiB piece (256 of them at most: 8 KiB), and the second
/// read checks each piece against its digest *before* parsing any line of
/// it. Every byte parsed the second time is thus a byte that was hashed into
/// the signed digest: a change is refused ("the list changed while it was
/// being verified") before any of its lines is acted on, and nothing is
/// reported for a line that was not authentic. The path is never opened
/// again after the signature check, so swapping the file by rename achieves
/// nothing either.
pub struct SignedList {
    verified: Verified,
    path: PathBuf,
    file: std::fs::File,
    pieces: Vec<Digest>,
    entries: usize,
}

impl std::fmt::Debug for SignedList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedList")
            .field("path", &self.path)
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

/// Reads a list piece by piece from its start (positional reads: the
/// descriptor's offset is never used), at most [`LIST_LIMIT`] bytes.
struct Pieces<'a> {
    file: &'a std::fs::File,
    path: &'a Path,
    buf: Vec<u8>,
    offset: u64,
    index: usize,
    done: bool,
}

impl<'a> Pieces<'a> {
    fn new(file: &'a std::fs::File, path: &'a Path) -> Self {
        Pieces {
            file,
            path,
            buf: vec![0u8; CHUNK],
            offset: 0,
            index: 0,
            done: false,
        }
    }

    /// The next piece and its index; `None` at the end.
    fn next(&mut self) -> Result<Option<(usize, &[u8])>> {
        use std::os::unix::fs::FileExt;
        if self.done {
            return Ok(None);
        }
        let mut filled = 0;
        while let Some(room) = self.buf.get_mut(filled..).filter(|r| !r.is_empty()) {
            match self.file.read_at(room, self.offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(self.path, "reading", e)),
            }
        }
        self.done = filled < CHUNK;
        if filled == 0 {
            return Ok(None);
        }
        self.offset += filled as u64;
        if self.offset > LIST_LIMIT {
            return Err(Error::File(FileError::TooLarge {
                path: self.path.to_path_buf(),
                what: "checksum list",
                limit: LIST_LIMIT,
            }));
        }
        let index = self.index;
        self.index += 1;
        let piece = self.buf.get(..filled).ok_or_else(|| changed(self.path))?;
        Ok(Some((index, piece)))
    }
}

/// Add the entry of line `n` to `batch`; a line that is not one sets `bad`.
fn push_entry(batch: &mut Vec<checksum::Entry>, bad: &mut bool, n: usize, line: Option<&[u8]>) {
    match line.map(|l| checksum::parse_line(l, None)) {
        Some(checksum::Line::Entry(expected, name)) => batch.push(checksum::Entry {
            expected,
            name,
            line: n,
        }),
        _ => *bad = true,
    }
}

/// Checks batches of entries: on this thread what needs no hashing (with a
/// cache), the rest in parallel on the pool.
struct Checker<'a> {
    dirs: &'a Dirs<'a>,
    opts: &'a Options<'a>,
    pool: Option<&'a rayon::ThreadPool>,
    done: std::sync::atomic::AtomicU64,
}

impl Checker<'_> {
    fn tick(&self) {
        let n = self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if let Some(p) = &self.opts.progress {
            (p.0)(n);
        }
    }

    /// The results for `entries`, in their order.
    fn check(&self, entries: &[checksum::Entry]) -> Vec<FileResult> {
        let (dirs, cache) = (self.dirs, self.opts.cache);
        // With a cache, first, on this thread, everything that needs no
        // hashing: refusals, missing files and cache hits, so that a warm
        // cache starts no thread. Without one, each file is checked once,
        // below.
        let mut results: Vec<Option<FileResult>> = match cache {
            Some(_) => entries
                .iter()
                .map(|e| {
                    let r = check_one(e, dirs, cache, Mode::NoHash);
                    if r.is_some() {
                        self.tick();
                    }
                    r
                })
                .collect(),
            None => vec![None; entries.len()],
        };
        let pending: Vec<usize> = (0..entries.len())
            .filter(|i| results.get(*i).is_some_and(Option::is_none))
            .collect();
        // Files hashed in parallel are read on their hashing thread.
        let parallel = pending.len() > 1 && self.opts.jobs > 1 && self.pool.is_some();
        let hash = |i: &usize| {
            let mode = if parallel { Mode::HashHere } else { Mode::Hash };
            let r = entries
                .get(*i)
                .and_then(|e| check_one(e, dirs, cache, mode));
            self.tick();
            r
        };
        let hashed: Vec<Option<FileResult>> = match self.pool {
            Some(pool) if parallel => pool.install(|| {
                use rayon::prelude::*;
                pending.par_iter().map(hash).collect()
            }),
            _ => pending.iter().map(hash).collect(),
        };
        for (i, r) in pending.into_iter().zip(hashed) {
            if let Some(slot) = results.get_mut(i) {
                *slot = r;
            }
        }
        results
            .into_iter()
            .zip(entries)
            .map(|(r, e)| {
                r.unwrap_or_else(|| FileResult {
                    name: String::from_utf8_lossy(&e.name).into_owned(),
                    line: e.line,
                    ok: false,
                    code: Some(Code::IoError),
                    detail: "not checked".into(),
                    cached: false,
                    cache: None,
                })
            })
            .collect()
    }
}

fn changed(path: &Path) -> Error {
    Error::File(FileError::Io {
        path: path.to_path_buf(),
        action: "reading",
        source: std::io::Error::other("the list changed while it was being verified; try again"),
    })
}

impl SignedList {
    /// Open `list`, refuse it if it is larger than [`LIST_LIMIT`] (from its
    /// size, before reading it), verify `signature` over it, then read it
    /// once: its digest must be the signed one, every line must be a
    /// checksum entry ([`checksum::Line::Entry`]; a final newline is
    /// optional, a CRLF line end is read as coreutils reads it), and it must
    /// name at least one file. Otherwise [`Error::Parse(ParseError::ManifestMalformed)`],
    /// naming the lines.
    pub fn open(
        list: &Path,
        signature: &Path,
        trust: &TrustStore,
        opts: &Options<'_>,
    ) -> Result<SignedList, VerifyError> {
        let file = fsutil::open_regular(list)?;
        let size = file
            .metadata()
            .map_err(|e| Error::io(list, "reading metadata of", e))?
            .len();
        if size > LIST_LIMIT {
            return Err(Error::File(FileError::TooLarge {
                path: list.to_path_buf(),
                what: "checksum list",
                limit: LIST_LIMIT,
            })
            .into());
        }
        // Hash the list once, from this descriptor: the digest the
        // signature is checked against is the digest of the very bytes
        // parsed here (and fingerprinted piece by piece for the second read).
        let mut pieces = Vec::new();
        let mut lines = checksum::LineSplitter::default();
        let (mut entries, mut malformed, mut shown) = (0usize, 0usize, Vec::new());
        let mut read = false;
        let verified = {
            let mut on_line =
                |n: usize, line: Option<&[u8]>| match line.map(|l| checksum::parse_line(l, None)) {
                    Some(checksum::Line::Entry(..)) => entries += 1,
                    _ => {
                        malformed += 1;
                        if shown.len() < MALFORMED_SHOWN {
                            shown.push(n);
                        }
                    }
                };
            let mut stream = |sink: &mut dyn FnMut(&[u8])| -> Result<()> {
                if std::mem::replace(&mut read, true) {
                    // Read once only: a second pass would be unchecked.
                    return Err(changed(list));
                }
                let mut reader = Pieces::new(&file, list);
                while let Some((_, piece)) = reader.next()? {
                    sink(piece);
                    pieces.push(digest::hash_bytes(HashAlg::Blake3, piece));
                    lines.feed(piece, &mut on_line);
                }
                lines.finish(&mut on_line);
                Ok(())
            };
            verify::verify_content(
                list,
                verify::Content::Stream(&mut stream),
                signature,
                trust,
                &opts.verify,
            )?
        };
        // The signatures verified over the digest of what was read: it was
        // read (and parsed) exactly once.
        if !read {
            return Err(changed(list).into());
        }
        if malformed > 0 || entries == 0 {
            return Err(Error::Parse(ParseError::ManifestMalformed {
                path: list.to_path_buf(),
                lines: shown,
                count: malformed,
            })
            .into());
        }
        Ok(SignedList {
            verified,
            path: list.to_path_buf(),
            file,
            pieces,
            entries,
        })
    }

    /// The proof that the list is authentic.
    pub fn verified(&self) -> &Verified {
        &self.verified
    }

    /// How many files the list names.
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Check every file the list names, relative to the list's directory,
    /// in parallel batches, handing each result to `sink` in list order
    /// (an error from `sink` stops the run). Memory stays bounded whatever
    /// the list's length. See the type's documentation for how the list's
    /// bytes are known to be the signed ones.
    pub fn check_files(
        self,
        opts: &Options<'_>,
        mut sink: impl FnMut(&FileResult) -> Result<()>,
    ) -> Result<(Verified, Summary)> {
        if let Some(f) = &opts.on_total {
            f(self.entries as u64);
        }
        let list = self.path.as_path();
        let base = fsutil::parent_dir(list);
        let base_real =
            std::fs::canonicalize(&base).map_err(|e| Error::io(&base, "resolving", e))?;
        // Every listed file is opened relative to this handle (O_PATH:
        // search permission is enough).
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
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(opts.jobs.max(1))
            .build()
            .ok();
        let checker = Checker {
            dirs: &dirs,
            opts,
            pool: pool.as_ref(),
            done: std::sync::atomic::AtomicU64::new(0),
        };
        let mut summary = Summary::default();
        let mut batch: Vec<checksum::Entry> = Vec::with_capacity(BATCH);
        let mut run_batch = |batch: &mut Vec<checksum::Entry>| -> Result<()> {
            for r in checker.check(batch) {
                summary.total += 1;
                if !r.ok {
                    summary.failed += 1;
                    summary.first_code = summary.first_code.or(r.code);
                }
                sink(&r)?;
            }
            batch.clear();
            Ok(())
        };
        let mut lines = checksum::LineSplitter::default();
        // A line that no longer parses could only mean the bytes changed,
        // which the piece digests catch first: fail closed all the same.
        let mut bad_line = false;
        let mut reader = Pieces::new(&self.file, list);
        let mut count = 0;
        while let Some((index, piece)) = reader.next()? {
            count += 1;
            let fresh = digest::hash_bytes(HashAlg::Blake3, piece);
            if !self.pieces.get(index).is_some_and(|d| d.ct_eq(&fresh)) {
                return Err(changed(list));
            }
            lines.feed(piece, &mut |n, line| {
                push_entry(&mut batch, &mut bad_line, n, line);
            });
            if bad_line {
                return Err(changed(list));
            }
            if batch.len() >= BATCH {
                run_batch(&mut batch)?;
            }
        }
        lines.finish(&mut |n, line| push_entry(&mut batch, &mut bad_line, n, line));
        if bad_line || count != self.pieces.len() {
            return Err(changed(list));
        }
        run_batch(&mut batch)?;
        Ok((self.verified, summary))
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
    let fail = |mut r: FileResult, code: Code, detail: String| {
        r.code = Some(code);
        r.detail = detail;
        Some(r)
    };
    let alg = e.expected.alg();
    if !alg.fit_for_signatures() {
        return fail(
            r,
            Code::WeakAlgorithm,
            format!("{alg} is insecure; a signed list must use SHA-256 or stronger"),
        );
    }
    let Some(rel) = safe_relative(&e.name) else {
        return fail(
            r,
            Code::PathRefused,
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
                Code::PathRefused,
                "leads outside the list's directory through a symlink; not read".into(),
            );
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return fail(r, Code::FileNotFound, "missing".into());
        }
        Err(err) => return fail(r, Code::IoError, err.to_string()),
    }
    // Open beneath the list's directory: with openat2(RESOLVE_BENEATH) the
    // kernel refuses any way out, even a symlink swapped in after the check
    // above. The digest is computed from this very descriptor.
    let file = match open_beneath(base_dir, &rel) {
        Ok(f) => f,
        Err(err) if is_refusal(&err) => {
            return fail(
                r,
                Code::PathRefused,
                "leads outside the list's directory, or through a symlink this kernel cannot follow safely (no openat2); not read".into(),
            );
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return fail(r, Code::FileNotFound, "missing".into());
        }
        Err(err) => return fail(r, Code::IoError, err.to_string()),
    };
    match file.metadata() {
        Ok(m) if m.is_file() => {
            if cache.is_some() {
                r.cache = Some(match crate::digest::cache::cacheable(&m) {
                    Ok(()) => CacheUse::Miss,
                    Err(skip) => CacheUse::Skipped(skip),
                });
            }
        }
        Ok(_) => return fail(r, Code::NotAFile, "not a regular file".into()),
        Err(err) => return fail(r, Code::IoError, err.to_string()),
    }
    // The file is open: from here on only reading can fail.
    let found = if mode == Mode::NoHash {
        match cache.and_then(|c| c.lookup(&file, &path, &[alg])) {
            Some((_, d)) => Ok((d, true)),
            None => return None,
        }
    } else {
        crate::digest::cache::hash_and_remember(
            file,
            &path,
            &[alg],
            cache,
            None,
            mode == Mode::Hash,
        )
        .map(|(_, d)| (d, false))
    };
    let (d, cached) = match found.and_then(|(d, cached)| Ok((digest::single(d, &path)?, cached))) {
        Ok(found) => found,
        Err(err) => return fail(r, Code::IoError, err.to_string()),
    };
    r.cached = cached;
    if cached {
        r.cache = Some(CacheUse::Hit);
    }
    if !d.ct_eq(&e.expected) {
        return fail(
            r,
            Code::ChecksumMismatch,
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
mod tests;

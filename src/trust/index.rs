//! A cache kept beside a trusted-keys directory, so that a verification
//! reads only what its signature names: which file holds which key, and
//! where each key's entry is in `trust.toml`.
//!
//! The cache is never trusted for a decision. It only says where to look:
//!
//! - the key file it names for a fingerprint is opened (never through a
//!   symlink), its permissions checked, and its key read and fingerprinted
//!   again; a file that no longer holds that key, or whose inode, size, mtime
//!   or ctime changed, sends the caller to a full scan;
//! - `trust.toml` is read whole every time and must hash (BLAKE3) to the
//!   digest recorded; the entry of each wanted key and the file's head
//!   (version, threshold) are parsed from those very bytes, with the same
//!   checks as a full parse;
//! - the directory's device, inode, mode, mtime and ctime must be those
//!   seen when the cache was built, so a key file added, removed or renamed
//!   since (which changes them) means a full scan;
//! - a cache that is missing, cut short, written by another version, or
//!   writable by group or others is ignored. Nothing in it is believed
//!   without that check against the files, except that the `trust.toml`
//!   whose digest it records was valid as a whole (one entry per key) when
//!   pkgsign parsed it: a corrupt cache cannot forge that digest, and an
//!   entry is only taken when the span recorded is exactly one whole entry.
//!
//! Anything the cache cannot answer (a key it does not list, a refusal to
//! explain) goes to the full scan of [`crate::trust::TrustStore::add_dir`],
//! which rebuilds it. Writing it is best-effort: a read-only directory
//! verifies as before, with a full scan each time. See
//! `docs/trust-directory.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::fsutil::{self, Replace};
use crate::keys::{Fingerprint, PublicKey, encoding};
use crate::trust::meta::{self, KeyState, META_LIMIT, Metadata, TRUST_FILE};
use crate::trust::perms::{self, Permissions};

/// The directory, inside a trusted-keys directory, that holds the cache.
pub const CACHE_DIR: &str = ".cache";
/// The cache file, in [`CACHE_DIR`].
pub const INDEX_FILE: &str = "pkgsign-trust-index";
/// First line of the cache; a cache of another format or version is ignored.
const MAGIC: &str = concat!("pkgsign-trust-index 1 ", env!("CARGO_PKG_VERSION"));
/// Largest cache file read.
const INDEX_LIMIT: u64 = 64 * 1024 * 1024;
/// Largest key file read (as the full scan).
const KEY_LIMIT: u64 = 64 * 1024;

/// What the cache found for the wanted keys, read from the files themselves.
#[derive(Debug, Default)]
pub struct Found {
    /// The wanted keys held by a file of the directory, with that file.
    pub keys: Vec<(PublicKey, PathBuf)>,
    /// The `trust.toml` entries of the wanted keys that have one.
    pub states: Vec<KeyState>,
    /// The directory's threshold.
    pub threshold: Option<u32>,
    /// The warnings of the full scan the cache was built from (unreadable
    /// key files), to be shown again.
    pub warnings: Vec<String>,
}

/// What a full scan saw, for [`write`].
#[derive(Debug)]
pub struct Scan<'a> {
    /// The directory's metadata, taken before it was listed.
    pub dir_before: &'a std::fs::Metadata,
    /// The bytes of `trust.toml` that were parsed (None: no such file).
    pub toml: Option<&'a [u8]>,
    /// Their parse.
    pub meta: &'a Metadata,
    /// The file the store uses for each key of the directory.
    pub files: Vec<(Fingerprint, PathBuf)>,
    /// Warnings of the scan.
    pub warnings: &'a [String],
}

/// The identity of a file or directory as compared: device, inode, mode,
/// size, mtime and ctime (with nanoseconds).
fn stamp(m: &std::fs::Metadata) -> String {
    format!(
        "{} {} {:o} {} {}.{} {}.{}",
        m.dev(),
        m.ino(),
        m.mode(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    )
}

/// Open `path` for reading if it is a regular file (never through a
/// symlink, never blocking on a FIFO) that the policy allows, and read at
/// most `limit` bytes of it. None for anything else.
fn read_checked(
    path: &Path,
    limit: u64,
    policy: Permissions,
) -> Option<(Vec<u8>, std::fs::Metadata)> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let file = File::from(fd);
    let m = file.metadata().ok()?;
    if !m.file_type().is_file() || m.len() > limit {
        return None;
    }
    if policy == Permissions::Strict && m.mode() & 0o022 != 0 {
        return None;
    }
    let mut data = Vec::with_capacity(m.len() as usize);
    file.take(limit + 1).read_to_end(&mut data).ok()?;
    (data.len() as u64 <= limit).then_some((data, m))
}

/// The rest of the line `k FP ...` of the cache `body`.
fn line_for<'a>(body: &'a str, fp: &Fingerprint) -> Option<&'a str> {
    let needle = format!("\nk {fp} ");
    let at = memchr::memmem::find(body.as_bytes(), needle.as_bytes())? + needle.len();
    let rest = body.get(at..)?;
    rest.get(..memchr::memchr(b'\n', rest.as_bytes())?)
}

/// An entry's header line, as pkgsign writes it and as the cache requires.
const HEADER: &[u8] = b"[[key]]\n";

/// Whether a line of `data` starts at `at`.
fn line_start(data: &[u8], at: usize) -> bool {
    at == 0 || (at <= data.len() && data.get(at - 1) == Some(&b'\n'))
}

/// Whether a header line starts at `at` in `data`.
fn header_at(data: &[u8], at: usize) -> bool {
    line_start(data, at) && data.get(at..).is_some_and(|d| d.starts_with(HEADER))
}

/// Whether `data[a..b]` is exactly the body of one `[[key]]` entry of a
/// file whose every entry has that exact header line: it follows a header
/// line, holds none, and ends at the next one or at the end of the file.
/// (In a valid file such a line is never part of a string or comment.)
fn whole_entry(data: &[u8], a: usize, b: usize) -> bool {
    a >= HEADER.len()
        && a <= b
        && header_at(data, a - HEADER.len())
        && (b == data.len() || header_at(data, b))
        && data.get(a..b).is_some_and(|body| {
            !body.starts_with(HEADER) && memchr::memmem::find(body, b"\n[[key]]\n").is_none()
        })
}

/// Whether `data[..end]` is exactly the head of the file: all of it before
/// the first header line.
fn whole_head(data: &[u8], end: usize) -> bool {
    let first = if data.starts_with(HEADER) {
        0
    } else {
        memchr::memmem::find(data, b"\n[[key]]\n").map_or(data.len(), |i| i + 1)
    };
    end == first
}

/// Answer for the keys `wanted` from the cache of `dir`, or None when the
/// cache cannot answer for all of them exactly as a full scan would.
pub fn lookup(dir: &Path, wanted: &[Fingerprint]) -> Option<Found> {
    let policy = perms::current();
    let dir_meta = std::fs::metadata(dir).ok()?;
    if !dir_meta.is_dir() || (policy == Permissions::Strict && dir_meta.mode() & 0o022 != 0) {
        return None;
    }
    // The cache is the directory owner's, and only theirs to write.
    let cache = dir.join(CACHE_DIR);
    let cm = std::fs::symlink_metadata(&cache).ok()?;
    if !cm.is_dir() || cm.mode() & 0o022 != 0 || cm.uid() != dir_meta.uid() {
        return None;
    }
    let (raw, im) = read_checked(&cache.join(INDEX_FILE), INDEX_LIMIT, Permissions::Strict)?;
    if im.uid() != dir_meta.uid() {
        return None;
    }
    let text = std::str::from_utf8(&raw).ok()?;
    // A cache cut short (it is written whole, then renamed) lacks its end.
    let body = text.strip_suffix("end\n")?;
    let mut lines = body.lines();
    if lines.next()? != MAGIC || lines.next()?.strip_prefix("dir ")? != stamp(&dir_meta) {
        return None;
    }
    let toml_line = lines.next()?.strip_prefix("toml ")?;
    let toml_path = dir.join(TRUST_FILE);
    let mut found = Found::default();
    let toml = if toml_line == "absent" {
        match std::fs::symlink_metadata(&toml_path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            _ => return None,
        }
    } else {
        let (hash, head_end) = toml_line.split_once(' ')?;
        let (data, _) = read_checked(&toml_path, META_LIMIT, policy)?;
        if blake3::hash(&data).to_hex().as_str() != hash {
            return None;
        }
        // The head (version, threshold), parsed from the file's own bytes.
        let head_end = head_end.parse::<usize>().ok()?;
        if !whole_head(&data, head_end) {
            return None;
        }
        let head = data.get(..head_end)?;
        found.threshold = Metadata::parse(toml_path.clone(), head).ok()?.threshold();
        data
    };
    for line in lines.map_while(|l| l.strip_prefix("warn ")) {
        let w = hex::decode(line).ok()?;
        found
            .warnings
            .push(String::from_utf8_lossy(&w).into_owned());
    }
    for fp in wanted {
        // k FP ENTRY-START-END|- FILE-HEX|- STAMP|-
        let mut f = line_for(body, fp)?.splitn(3, ' ');
        let (span, name, want_stamp) = (f.next()?, f.next()?, f.next()?);
        let mut revoked = false;
        if span == "-" && !toml.is_empty() {
            // "No entry": believed only when the key's fingerprint appears
            // nowhere in the file, in a file with no escape sequences (so
            // that every string is written as it reads).
            if memchr::memchr(b'\\', &toml).is_some()
                || memchr::memmem::find(&toml, fp.as_str().as_bytes()).is_some()
            {
                return None;
            }
        } else if span != "-" {
            let (a, b) = span.split_once('-')?;
            let (a, b) = (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?);
            if !whole_entry(&toml, a, b) {
                return None;
            }
            let st = meta::parse_entry(&toml_path, toml.get(a..b)?).ok()?;
            if st.fingerprint.as_ref() != Some(fp) {
                return None;
            }
            revoked = st.revoked.is_some();
            found.states.push(st);
        }
        if name == "-" {
            // A revoked key is refused whether or not a file holds it; any
            // other key no file held when the cache was built may be in a
            // file changed since: only a full scan can say.
            if revoked {
                continue;
            }
            return None;
        }
        let name = String::from_utf8(hex::decode(name).ok()?).ok()?;
        if name.contains('/') || !name.ends_with(".pub") {
            return None;
        }
        let path = dir.join(&name);
        let (data, m) = read_checked(&path, KEY_LIMIT, policy)?;
        if stamp(&m) != want_stamp {
            return None;
        }
        let public = encoding::parse_public_key(&path, &data).ok()?;
        if &public.fingerprint() != fp {
            return None;
        }
        found.keys.push((public, path));
    }
    Some(found)
}

/// Build the cache of `dir` from a full scan that succeeded, if the
/// directory allows it: best-effort, silent (a read-only directory, a
/// cache directory writable by others, a key file that is a symlink, or
/// a directory that group or others may write leave no cache).
pub fn write(dir: &Path, scan: &Scan<'_>) {
    let _ = try_write(dir, scan);
}

fn try_write(dir: &Path, scan: &Scan<'_>) -> Option<()> {
    // Only a directory that passes the strict checks gets a cache, so that
    // one read with --insecure-permissions cannot let a later strict run
    // skip them.
    if perms::current() != Permissions::Strict
        && perms::check_dir_with(dir, perms::KeyDir::Trusted, Permissions::Strict).is_err()
    {
        return None;
    }
    let toml_path = dir.join(TRUST_FILE);
    let mut text = format!("{MAGIC}\ndir {}\n", stamp(scan.dir_before));
    // Per key: where its entry is in trust.toml, and which file holds it.
    let mut keys: BTreeMap<&Fingerprint, (String, String)> = BTreeMap::new();
    match scan.toml {
        None => text.push_str("toml absent\n"),
        Some(data) => {
            if !std::fs::symlink_metadata(&toml_path).ok()?.is_file() {
                return None;
            }
            let (head_end, spans) = meta::entry_spans(data, scan.meta.keys())?;
            writeln!(text, "toml {} {head_end}", blake3::hash(data).to_hex()).ok()?;
            for (st, (a, b)) in scan.meta.keys().iter().zip(spans) {
                keys.insert(st.fingerprint.as_ref()?, (format!("{a}-{b}"), "- -".into()));
            }
        }
    }
    for w in scan.warnings {
        writeln!(text, "warn {}", hex::encode(w)).ok()?;
    }
    for (fp, path) in &scan.files {
        let m = std::fs::symlink_metadata(path).ok()?;
        if !m.is_file() {
            return None;
        }
        let name = path.file_name()?.to_str()?;
        let file = format!("{} {}", hex::encode(name), stamp(&m));
        keys.entry(fp)
            .or_insert_with(|| ("-".into(), String::new()))
            .1 = file;
    }
    for (fp, (span, file)) in keys {
        writeln!(text, "k {fp} {span} {file}").ok()?;
    }
    text.push_str("end\n");
    let cache = dir.join(CACHE_DIR);
    match std::fs::symlink_metadata(&cache) {
        Ok(m) if m.is_dir() && m.mode() & 0o022 == 0 => {}
        Ok(_) => return None,
        Err(_) => {
            // Making it changes the directory: the cache is written by the
            // next full scan, which sees the directory as it then is.
            use std::os::unix::fs::DirBuilderExt;
            let _ = std::fs::DirBuilder::new().mode(0o755).create(&cache);
            return None;
        }
    }
    fsutil::write_atomic(
        &cache.join(INDEX_FILE),
        text.as_bytes(),
        0o644,
        Replace::Allowed,
    )
    .ok()
}

//! Extracting a verified release archive (`.tar`, `.tar.gz`, `.tar.zst`,
//! `.tar.xz`, told by the first bytes) into a new,
//! empty directory, refusing anything that could reach outside it or that
//! is not plain content: absolute paths, `..`, symlinks whose target leaves
//! the directory, entries under a symlink the archive made, hard links,
//! devices and FIFOs. Permission bits are kept but setuid, setgid and
//! sticky bits are dropped; the total size and the number of entries are
//! bounded (decompression bombs).

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use crate::error::Error;

/// Bounds of one extraction.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most bytes of file content in all.
    pub max_bytes: u64,
    /// Most entries.
    pub max_entries: u64,
}

/// Why an archive is not extracted.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// An entry is refused (the archive is not applied).
    #[error("entry {entry:?}: {reason}")]
    Refused {
        /// The entry's path as written in the archive.
        entry: String,
        /// Why.
        reason: String,
    },
    /// More content or entries than the limits allow.
    #[error("{0}")]
    TooLarge(String),
    /// The archive does not parse.
    #[error("not a readable tar archive: {0}")]
    Malformed(String),
    /// Writing failed.
    #[error(transparent)]
    Io(#[from] Error),
}

/// What was extracted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extracted {
    /// Entries written.
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

const GZIP: &[u8] = &[0x1f, 0x8b];
const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const XZ: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];

/// Extract the archive `file` (a tar, plain or compressed with gzip, zstd
/// or xz, told by its first bytes) into `dest`, an empty directory this
/// process made.
pub fn extract(
    mut file: File,
    dest: &Path,
    limits: Limits,
) -> std::result::Result<Extracted, ArchiveError> {
    let malformed = |e: std::io::Error| ArchiveError::Malformed(e.to_string());
    let mut magic = [0u8; 6];
    let n = read_up_to(&mut file, &mut magic).map_err(malformed)?;
    file.seek(SeekFrom::Start(0)).map_err(malformed)?;
    let head = magic.get(..n).unwrap_or_default();
    if head.starts_with(GZIP) {
        unpack_decoded(flate2::read::MultiGzDecoder::new(file), dest, limits)
    } else if head.starts_with(ZSTD) {
        let decoder = ruzstd::decoding::StreamingDecoder::new(std::io::BufReader::new(file))
            .map_err(|e| ArchiveError::Malformed(format!("zstd: {e}")))?;
        unpack_decoded(decoder, dest, limits)
    } else if head.starts_with(XZ) {
        // lzma-rs decodes into a writer: it runs in a thread that writes
        // into a pipe the tar reader reads. When the reader stops (an entry
        // refused, a limit reached), the pipe breaks and the thread ends.
        let (reader, mut writer) = std::io::pipe().map_err(malformed)?;
        let decoding = std::thread::spawn(move || {
            let mut input = std::io::BufReader::new(file);
            lzma_rs::xz_decompress(&mut input, &mut writer)
        });
        let mut reader = reader;
        let result = unpack(&mut reader, dest, limits).and_then(|done| {
            // What follows the archive's end (its zero blocks and record
            // padding) is read so the decoder can finish; a lot more is a
            // bomb hiding behind the end, and refused.
            let trailing = std::io::copy(&mut (&mut reader).take(1 << 20), &mut std::io::sink())
                .map_err(malformed)?;
            if trailing == 1 << 20 {
                return Err(ArchiveError::TooLarge(
                    "more than 1 MiB of data after the end of the archive".into(),
                ));
            }
            Ok(done)
        });
        drop(reader);
        match (result, decoding.join()) {
            (Err(e), _) => Err(e),
            (Ok(done), Ok(Ok(()))) => Ok(done),
            (Ok(_), Ok(Err(e))) => Err(ArchiveError::Malformed(format!("xz: {e}"))),
            (Ok(_), Err(_)) => Err(ArchiveError::Malformed("xz: the decoder failed".into())),
        }
    } else {
        unpack(file, dest, limits)
    }
}

/// Unpack what `decoder` decodes, decoding in a second thread: the
/// decompression (one core) overlaps with creating and writing the files
/// (the other), as `tar -xzf` overlaps with its `gzip -d`. The decoded bytes
/// are handed over in a few chunks at a time (bounded memory). Nothing after
/// the end of the tar archive is needed: once the archive is unpacked (or
/// refused) the channel is closed, and the thread stops at its next chunk.
fn unpack_decoded(
    decoder: impl Read + Send + 'static,
    dest: &Path,
    limits: Limits,
) -> std::result::Result<Extracted, ArchiveError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(CHUNKS_IN_FLIGHT);
    let decoding = std::thread::spawn(move || decode_into(decoder, &tx));
    let result = unpack(
        Decoded {
            rx,
            chunk: Vec::new(),
            pos: 0,
            finished: false,
        },
        dest,
        limits,
    );
    // `unpack` dropped the receiving end: the thread ends.
    let _ = decoding.join();
    result
}

/// Bytes per chunk handed from the decoding thread, and chunks in flight.
const CHUNK: usize = 128 * 1024;
const CHUNKS_IN_FLIGHT: usize = 4;

/// One message of the decoding thread.
enum Decode {
    Chunk(Vec<u8>),
    /// The decoder reached its end: only this is an end of the stream (a
    /// thread that died says nothing, and the reader then fails).
    End,
    Failed(std::io::Error),
}

fn decode_into(mut decoder: impl Read, tx: &std::sync::mpsc::SyncSender<Decode>) {
    loop {
        let mut chunk = vec![0u8; CHUNK];
        let msg = match read_up_to(&mut decoder, &mut chunk) {
            Ok(0) => Decode::End,
            Ok(n) => {
                chunk.truncate(n);
                Decode::Chunk(chunk)
            }
            Err(e) => Decode::Failed(e),
        };
        let last = !matches!(msg, Decode::Chunk(_));
        if tx.send(msg).is_err() || last {
            return;
        }
    }
}

/// The reading end of [`unpack_decoded`]'s thread.
struct Decoded {
    rx: std::sync::mpsc::Receiver<Decode>,
    chunk: Vec<u8>,
    pos: usize,
    finished: bool,
}

impl Read for Decoded {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(rest) = self.chunk.get(self.pos..).filter(|r| !r.is_empty()) {
                let n = rest.len().min(out.len());
                out.get_mut(..n)
                    .unwrap_or_default()
                    .copy_from_slice(rest.get(..n).unwrap_or_default());
                self.pos += n;
                return Ok(n);
            }
            if self.finished {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Decode::Chunk(c)) => {
                    self.chunk = c;
                    self.pos = 0;
                }
                Ok(Decode::End) => self.finished = true,
                Ok(Decode::Failed(e)) => return Err(e),
                Err(_) => return Err(std::io::Error::other("the decoder stopped")),
            }
        }
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|r| !r.is_empty()) {
        match r.read(rest)? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn refused(entry: &str, reason: impl Into<String>) -> ArchiveError {
    ArchiveError::Refused {
        entry: entry.to_string(),
        reason: reason.into(),
    }
}

/// The entry path as a clean relative path, or why not.
fn clean_relative(raw: &Path) -> std::result::Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err("a `..` in the path"),
            Component::RootDir | Component::Prefix(_) => return Err("an absolute path"),
        }
    }
    if out.as_os_str().is_empty() {
        return Err("an empty path");
    }
    Ok(out)
}

/// Whether `target`, read relative to the directory of `link` (both inside
/// the extraction root), stays inside the root.
fn link_stays_inside(link: &Path, target: &Path) -> bool {
    let mut depth: usize = link.components().count().saturating_sub(1);
    for c in target.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Create the directories above `path` (inside the root).
fn make_parent(path: &Path) -> Result<(), Error> {
    match path.parent() {
        Some(parent) => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|e| Error::io(parent, "creating", e)),
        None => Ok(()),
    }
}

fn unpack(
    reader: impl Read,
    dest: &Path,
    limits: Limits,
) -> std::result::Result<Extracted, ArchiveError> {
    let mut archive = tar::Archive::new(reader);
    let mut done = Extracted::default();
    // Symlinks this archive made: no later entry may go through one (its
    // real place could differ from where its path says it is).
    let mut links: HashSet<PathBuf> = HashSet::new();
    let entries = archive
        .entries()
        .map_err(|e| ArchiveError::Malformed(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ArchiveError::Malformed(e.to_string()))?;
        let raw = entry
            .path()
            .map_err(|e| ArchiveError::Malformed(e.to_string()))?
            .into_owned();
        let shown = raw.display().to_string();
        done.entries += 1;
        if done.entries > limits.max_entries {
            return Err(ArchiveError::TooLarge(format!(
                "more than {} entries",
                limits.max_entries
            )));
        }
        let kind = entry.header().entry_type();
        // `./` itself (as `tar -C dir .` writes it): the root, made already.
        if kind.is_dir() && raw.components().all(|c| c == Component::CurDir) {
            continue;
        }
        let rel = clean_relative(&raw).map_err(|why| refused(&shown, why))?;
        if rel.ancestors().skip(1).any(|a| links.contains(a)) {
            return Err(refused(&shown, "a path through a symlink in the archive"));
        }
        let path = dest.join(&rel);
        let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
        if kind.is_dir() {
            match std::fs::DirBuilder::new()
                .recursive(true)
                .mode(mode | 0o700)
                .create(&path)
            {
                Ok(()) => {}
                Err(e) => return Err(Error::io(&path, "creating", e).into()),
            }
        } else if kind.is_file() {
            make_parent(&path)?;
            let size = entry.header().size().unwrap_or(u64::MAX);
            if done.bytes.saturating_add(size) > limits.max_bytes {
                return Err(ArchiveError::TooLarge(format!(
                    "more than {} bytes of content",
                    limits.max_bytes
                )));
            }
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(&path)
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::AlreadyExists => {
                        refused(&shown, "a second entry of that path")
                    }
                    _ => Error::io(&path, "creating", e).into(),
                })?;
            // Copy at most what the header said, whatever the stream holds.
            let written = std::io::copy(&mut (&mut entry).take(size), &mut out)
                .map_err(|e| Error::io(&path, "writing", e))?;
            out.flush().map_err(|e| Error::io(&path, "writing", e))?;
            done.bytes += written;
        } else if kind.is_symlink() {
            let target = entry
                .link_name()
                .map_err(|e| ArchiveError::Malformed(e.to_string()))?
                .ok_or_else(|| refused(&shown, "a symlink without a target"))?
                .into_owned();
            if !link_stays_inside(&rel, &target) {
                return Err(refused(
                    &shown,
                    format!("a symlink to {} leads out of the release", target.display()),
                ));
            }
            make_parent(&path)?;
            std::os::unix::fs::symlink(&target, &path).map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => refused(&shown, "a second entry of that path"),
                _ => Error::io(&path, "creating", e).into(),
            })?;
            links.insert(rel);
        } else if kind.is_hard_link() {
            return Err(refused(
                &shown,
                "a hard link (not extracted: copy the file instead)",
            ));
        } else if kind.is_pax_global_extensions() {
            continue;
        } else {
            return Err(refused(
                &shown,
                "a device, FIFO or other special entry (only files, directories and symlinks are extracted)",
            ));
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(msgs: Vec<Decode>) -> Decoded {
        let (tx, rx) = std::sync::mpsc::sync_channel(msgs.len());
        for m in msgs {
            tx.send(m).unwrap();
        }
        Decoded {
            rx,
            chunk: Vec::new(),
            pos: 0,
            finished: false,
        }
    }

    #[test]
    fn only_the_decoders_own_end_ends_the_decoded_stream() {
        let mut out = Vec::new();
        let mut ended = decoded(vec![Decode::Chunk(b"ab".to_vec()), Decode::End]);
        assert_eq!(ended.read_to_end(&mut out).unwrap(), 2);
        // A thread that died (its sender dropped) is no end: an error, so a
        // truncated stream never passes for a short archive.
        let mut died = decoded(vec![Decode::Chunk(b"ab".to_vec())]);
        assert!(died.read_to_end(&mut Vec::new()).is_err());
        let mut failed = decoded(vec![Decode::Failed(std::io::Error::other("bad"))]);
        assert!(failed.read_to_end(&mut Vec::new()).is_err());
    }

    #[test]
    fn paths_and_links_are_judged_lexically() {
        assert!(clean_relative(Path::new("a/./b")).is_ok());
        for bad in ["/etc/passwd", "a/../../b", "..", "", "."] {
            assert!(clean_relative(Path::new(bad)).is_err(), "{bad:?}");
        }
        assert!(link_stays_inside(
            Path::new("lib/libx.so"),
            Path::new("libx.so.1")
        ));
        assert!(link_stays_inside(Path::new("a/b/l"), Path::new("../c")));
        assert!(!link_stays_inside(Path::new("l"), Path::new("../x")));
        assert!(!link_stays_inside(Path::new("a/l"), Path::new("../../x")));
        assert!(!link_stays_inside(Path::new("l"), Path::new("/etc/passwd")));
    }
}

//! Incremental hashers and the streaming reader that feeds a file through
//! every hasher in one pass.
//!
//! A large file is read by a reader thread into a few small recycled buffers
//! while the caller's thread hashes, so copying out of the page cache
//! overlaps with hashing; a small file is read on the calling thread into
//! one buffer sized by its length, with no thread at all. Memory stays
//! bounded (`BUF_COUNT * BUF_SIZE`) whatever the package size. The sizes and
//! the way the reader waits were measured (`docs/benchmarks.md`,
//! `benches/vs-openssl.sh`): buffers must be small enough to stay in the CPU
//! caches. The reader blocks until a buffer is free (`benches/reader-wait.sh`).

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::mpsc;

use sha2::Digest as _;

use super::{Digest, HashAlg};
use crate::error::{Error, FileError, Result};

/// Size of one read block. 192 KiB: few system calls, and the blocks in
/// flight (`BUF_COUNT * BUF_SIZE` = 576 KiB) stay in the CPU caches where
/// the hashing thread finds them. Measured on 1 GiB (`docs/benchmarks.md`):
/// 128-192 KiB blocks, 2-4 of them, are best; 1 MiB in flight is already
/// ~14% slower, 4 MiB (4 x 1 MiB) ~19% slower, and 64 KiB blocks cost more
/// in handoffs than they save.
pub const BUF_SIZE: usize = 192 * 1024;
/// Number of read blocks in flight.
pub const BUF_COUNT: usize = 3;
/// Files up to this size are read on the calling thread: a reader thread
/// costs more to start than it saves on them.
const THREAD_MIN_LEN: u64 = 4 << 20;
/// The smallest read buffer (tiny files, or files whose size is unknown).
const MIN_BUF_SIZE: usize = 16 * 1024;

/// An incremental hasher for one algorithm.
#[derive(Clone)]
pub enum Hasher {
    /// SHA-256 state.
    Sha256(sha2::Sha256),
    /// SHA-224 state.
    Sha224(sha2::Sha224),
    /// SHA-384 state.
    Sha384(sha2::Sha384),
    /// SHA-512 state.
    Sha512(sha2::Sha512),
    /// SHA3-256 state.
    Sha3_256(sha3::Sha3_256),
    /// SHA3-512 state.
    Sha3_512(sha3::Sha3_512),
    /// BLAKE3 state.
    Blake3(Box<blake3::Hasher>),
    /// MD5 state.
    Md5(md5::Md5),
    /// SHA-1 state.
    Sha1(sha1::Sha1),
}

/// Inputs at least this large are hashed by BLAKE3 on all cores.
const BLAKE3_PARALLEL_MIN: usize = 128 * 1024;

impl Hasher {
    /// A fresh hasher.
    pub fn new(alg: HashAlg) -> Self {
        match alg {
            HashAlg::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashAlg::Sha224 => Hasher::Sha224(sha2::Sha224::new()),
            HashAlg::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            HashAlg::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
            HashAlg::Sha3_256 => Hasher::Sha3_256(sha3::Sha3_256::new()),
            HashAlg::Sha3_512 => Hasher::Sha3_512(sha3::Sha3_512::new()),
            HashAlg::Blake3 => Hasher::Blake3(Box::new(blake3::Hasher::new())),
            HashAlg::Md5 => Hasher::Md5(md5::Md5::new()),
            HashAlg::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
        }
    }

    /// Feed bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha224(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
            Hasher::Sha3_256(h) => h.update(data),
            Hasher::Sha3_512(h) => h.update(data),
            Hasher::Blake3(h) => {
                if data.len() >= BLAKE3_PARALLEL_MIN {
                    h.update_rayon(data);
                } else {
                    h.update(data);
                }
            }
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha1(h) => h.update(data),
        }
    }

    /// Finish.
    pub fn finish(self) -> Digest {
        let (alg, bytes) = match self {
            Hasher::Sha256(h) => (HashAlg::Sha256, h.finalize().to_vec()),
            Hasher::Sha224(h) => (HashAlg::Sha224, h.finalize().to_vec()),
            Hasher::Sha384(h) => (HashAlg::Sha384, h.finalize().to_vec()),
            Hasher::Sha512(h) => (HashAlg::Sha512, h.finalize().to_vec()),
            Hasher::Sha3_256(h) => (HashAlg::Sha3_256, h.finalize().to_vec()),
            Hasher::Sha3_512(h) => (HashAlg::Sha3_512, h.finalize().to_vec()),
            Hasher::Blake3(h) => (HashAlg::Blake3, h.finalize().as_bytes().to_vec()),
            Hasher::Md5(h) => (HashAlg::Md5, h.finalize().to_vec()),
            Hasher::Sha1(h) => (HashAlg::Sha1, h.finalize().to_vec()),
        };
        Digest { alg, bytes }
    }
}

/// Hash a byte string in memory.
pub fn hash_bytes(alg: HashAlg, data: &[u8]) -> Digest {
    let mut h = Hasher::new(alg);
    h.update(data);
    h.finish()
}

/// Read the file at `path` once, in order, handing each block to `sink`.
/// Returns the number of bytes read.
///
/// A file larger than 4 MiB is read by a reader thread into [`BUF_COUNT`]
/// recycled buffers of [`BUF_SIZE`] bytes while `sink` runs on the calling
/// thread. A smaller one is read on the calling thread into one buffer
/// sized by its length (a 1 KiB package costs a 16 KiB buffer and no
/// thread). Either way the file is read to its end, whatever size it said
/// it had when opened. Refuses non-regular files.
pub fn stream_file(path: &Path, sink: impl FnMut(&[u8])) -> Result<u64> {
    let file = crate::fsutil::open_regular(path)?;
    let len = stated_len(&file);
    stream_from(file, path, len, sink, true)
}

/// The size the opened file states, which only picks a reading strategy;
/// if it cannot be read, assume large.
fn stated_len(file: &std::fs::File) -> u64 {
    file.metadata().map_or(u64::MAX, |m| m.len())
}

/// Several hashers fed the same bytes: one pass, every algorithm.
pub struct MultiHasher(Vec<Hasher>);

impl MultiHasher {
    /// Fresh hashers for `algs`.
    pub fn new(algs: &[HashAlg]) -> Self {
        MultiHasher(algs.iter().map(|a| Hasher::new(*a)).collect())
    }

    /// Feed bytes to every hasher.
    pub fn update(&mut self, data: &[u8]) {
        for h in self.0.iter_mut() {
            h.update(data);
        }
    }

    /// The digests, in the order of the algorithms given to [`MultiHasher::new`].
    pub fn finish(self) -> Vec<Digest> {
        self.0.into_iter().map(Hasher::finish).collect()
    }
}

/// The digest of a hash asked for with one algorithm (every `hash_*`
/// function returns one digest per algorithm, in order).
pub fn single(digests: Vec<Digest>, path: &Path) -> Result<Digest> {
    digests.into_iter().next().ok_or_else(|| {
        Error::File(FileError::Io {
            path: path.to_path_buf(),
            action: "hashing",
            source: std::io::Error::other("no digest computed"),
        })
    })
}

/// Hash a file already opened by the caller with each of `algs` in a
/// single pass; everything is read from this one descriptor. Returns the
/// size and the digests in the order of `algs`. `path` is for messages only.
///
/// With `allow_thread` false the file is read on the calling thread, for
/// callers that already hash several files in parallel. Otherwise a large
/// file gets a reader thread, and BLAKE3 alone hashes a large file from a
/// mapping on all cores (its tree hash splits; blocks of a few hundred KiB
/// would leave the cores waiting).
pub fn hash_open_file(
    file: std::fs::File,
    path: &Path,
    algs: &[HashAlg],
    progress: Option<&Progress>,
    allow_thread: bool,
) -> Result<(u64, Vec<Digest>)> {
    let len = stated_len(&file);
    if algs == [HashAlg::Blake3] && allow_thread && len != u64::MAX && len >= THREAD_MIN_LEN {
        return blake3_mapped(&file, path, progress);
    }
    let mut hashers = MultiHasher::new(algs);
    let size = stream_from(
        file,
        path,
        len,
        Progress::wrap(progress, |chunk| hashers.update(chunk)),
        allow_thread,
    )?;
    Ok((size, hashers.finish()))
}

/// [`stream_file`] on an opened file that states `len` bytes.
fn stream_from(
    mut file: std::fs::File,
    path: &Path,
    len: u64,
    mut sink: impl FnMut(&[u8]),
    allow_thread: bool,
) -> Result<u64> {
    if len > BUF_SIZE as u64 {
        advise_sequential(&file);
    }
    if !allow_thread || len <= THREAD_MIN_LEN {
        let size = usize::try_from(len)
            .unwrap_or(BUF_SIZE)
            .clamp(MIN_BUF_SIZE, BUF_SIZE);
        let mut buf = vec![0u8; size];
        let mut total = 0u64;
        loop {
            let n = read_full(&mut file, &mut buf).map_err(|e| Error::io(path, "reading", e))?;
            if n == 0 {
                return Ok(total);
            }
            // Short only at the end of the file: the last chunk.
            buf.truncate(n);
            sink(&buf);
            total += n as u64;
        }
    }
    let (full_tx, full_rx) = mpsc::sync_channel::<(Vec<u8>, usize)>(BUF_COUNT);
    let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(BUF_COUNT);
    for _ in 0..BUF_COUNT {
        // Cannot fail: the channel has room for BUF_COUNT buffers.
        let _ = empty_tx.send(vec![0u8; BUF_SIZE]);
    }
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || -> std::io::Result<()> {
            while let Ok(mut buf) = empty_rx.recv() {
                buf.resize(BUF_SIZE, 0);
                let n = read_full(&mut file, &mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                buf.truncate(n);
                if full_tx.send((buf, n)).is_err() {
                    return Ok(());
                }
            }
            Ok(())
        });
        let mut total = 0u64;
        while let Ok((buf, n)) = full_rx.recv() {
            sink(&buf);
            total += n as u64;
            // The reader may have finished; a failed send is harmless.
            let _ = empty_tx.send(buf);
        }
        drop(empty_tx);
        match reader.join() {
            Ok(Ok(())) => Ok(total),
            Ok(Err(e)) => Err(Error::io(path, "reading", e)),
            Err(_) => Err(Error::File(FileError::Io {
                path: path.to_path_buf(),
                action: "reading",
                source: std::io::Error::other("reader thread panicked"),
            })),
        }
    })
}

/// Tell the kernel the file will be read once, from start to end: it then
/// reads ahead twice as far. That only matters when the package is not in
/// the page cache (measured: cold reads of a 512 MiB file went from
/// 1.0-1.9 GB/s to 1.6-2.0 GB/s on the benchmark machine). Advice only: a
/// failure changes nothing.
fn advise_sequential(file: &std::fs::File) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::Sequential);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = file;
}

/// Bytes of a mapped file handed to BLAKE3's parallel hasher at a time:
/// large enough to keep every core busy, small enough for the progress bar
/// to move. (Any split gives the same digest.)
const BLAKE3_STEP: usize = 64 * 1024 * 1024;

/// BLAKE3 of a large opened file: mapped, and hashed on all cores at once.
fn blake3_mapped(
    file: &std::fs::File,
    path: &Path,
    progress: Option<&Progress>,
) -> Result<(u64, Vec<Digest>)> {
    let mut h = blake3::Hasher::new();
    let ((), size) = crate::mapped::with_mapped(file, path, |bytes| {
        let mut done = 0u64;
        for step in bytes.chunks(BLAKE3_STEP) {
            h.update_rayon(step);
            done += step.len() as u64;
            if let Some(p) = progress {
                (p.0)(done);
            }
        }
        Ok(())
    })?;
    let d = Digest {
        alg: HashAlg::Blake3,
        bytes: h.finalize().as_bytes().to_vec(),
    };
    Ok((size, vec![d]))
}

/// Fill `buf` as far as the file allows (short only at end of file).
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|r| !r.is_empty()) {
        match file.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Hash a file with each of `algs` in a single pass. Returns the size and
/// the digests in the order of `algs`.
pub fn hash_file(path: &Path, algs: &[HashAlg]) -> Result<(u64, Vec<Digest>)> {
    hash_file_with(path, algs, None)
}

/// A progress callback, told how many bytes have been read so far. The
/// library never draws anything itself; the command line turns this into a
/// progress bar.
#[derive(Clone)]
pub struct Progress(pub std::sync::Arc<dyn Fn(u64) + Send + Sync>);

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Progress")
    }
}

impl Progress {
    /// Wrap a sink so that it also reports progress.
    pub fn wrap<'a>(
        progress: Option<&'a Progress>,
        mut sink: impl FnMut(&[u8]) + 'a,
    ) -> impl FnMut(&[u8]) + 'a {
        let mut done = 0u64;
        move |chunk| {
            sink(chunk);
            done += chunk.len() as u64;
            if let Some(p) = progress {
                (p.0)(done);
            }
        }
    }
}

/// [`hash_file`], reporting progress.
pub fn hash_file_with(
    path: &Path,
    algs: &[HashAlg],
    progress: Option<&Progress>,
) -> Result<(u64, Vec<Digest>)> {
    let file = crate::fsutil::open_regular(path)?;
    hash_open_file(file, path, algs, progress, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        assert_eq!(
            hash_bytes(HashAlg::Sha256, b"abc").hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(
            hash_bytes(HashAlg::Sha512, b"")
                .hex()
                .starts_with("cf83e1357eefb8bd")
        );
    }

    #[test]
    fn parse_is_strict() {
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert!(Digest::parse(&format!("sha256:{hex}"), false).is_ok());
        assert!(Digest::parse(hex, true).is_ok());
        assert!(Digest::parse(hex, false).is_err());
        assert!(Digest::parse(&format!("sha256:{hex}0"), false).is_err());
        assert!(Digest::parse(&format!("sha512:{hex}"), false).is_err());
        assert!(Digest::parse(&format!("md4:{hex}"), false).is_err());
        assert!(Digest::parse(&format!("sha256:{}", hex.replace('a', "g")), false).is_err());
        assert!(Digest::parse("sha256:", false).is_err());
    }

    #[test]
    fn stream_matches_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        for size in [
            0usize,
            1,
            MIN_BUF_SIZE - 1,
            MIN_BUF_SIZE,
            MIN_BUF_SIZE * 2 + 1,
            BUF_SIZE - 1,
            BUF_SIZE,
            BUF_SIZE + 1,
            BUF_SIZE * 3 + 7,
            THREAD_MIN_LEN as usize,
            THREAD_MIN_LEN as usize + 1,
            THREAD_MIN_LEN as usize + BUF_SIZE * 5 + 3,
        ] {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let p = dir.path().join("f");
            std::fs::write(&p, &data).unwrap();
            let (n, d) = hash_file(&p, &[HashAlg::Sha256, HashAlg::Sha512]).unwrap();
            assert_eq!(n, size as u64);
            assert_eq!(d[0], hash_bytes(HashAlg::Sha256, &data));
            assert_eq!(d[1], hash_bytes(HashAlg::Sha512, &data));
        }
    }

    /// A hashing side slower than the reader (here: much slower) gets every
    /// block, in order.
    #[test]
    fn slow_sink_gets_every_block_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let size = THREAD_MIN_LEN as usize + BUF_SIZE * 4 + 9;
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 253) as u8).collect();
        let p = dir.path().join("f");
        std::fs::write(&p, &data).unwrap();
        let mut seen = Vec::with_capacity(size);
        let n = stream_file(&p, |chunk| {
            std::thread::sleep(std::time::Duration::from_millis(3));
            seen.extend_from_slice(chunk);
        })
        .unwrap();
        assert_eq!(n, size as u64);
        assert!(seen == data);
    }

    /// The size a file says it has only picks the buffer: a file is always
    /// read to its end (procfs files say 0 bytes and hold more).
    #[cfg(target_os = "linux")]
    #[test]
    fn stream_reads_past_the_stated_size() {
        let p = Path::new("/proc/self/status");
        assert_eq!(std::fs::metadata(p).unwrap().len(), 0);
        let mut seen = Vec::new();
        let n = stream_file(p, |chunk| seen.extend_from_slice(chunk)).unwrap();
        assert!(n > 0);
        assert_eq!(n, seen.len() as u64);
    }
}

//! Hash algorithms, digest values (`ALGO:HEX`) and the streaming reader that
//! feeds a package through every hasher in one pass.
//!
//! Reading and hashing overlap: one thread reads the file in large blocks into
//! a small pool of recycled buffers while the caller's thread hashes, so the
//! wall time is that of the slower of the two, and memory stays bounded
//! (`BUF_COUNT * BUF_SIZE`) whatever the package size.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;
use std::sync::mpsc;

use sha2::Digest as _;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// Size of one read block.
pub const BUF_SIZE: usize = 1 << 20;
/// Number of read blocks in flight.
pub const BUF_COUNT: usize = 4;

/// A hash algorithm pkgsign knows: the one registry used everywhere
/// (`checksum`, `--checksum`, `--hash`, manifests, signatures).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum HashAlg {
    /// SHA-256 (the default).
    Sha256,
    /// SHA-224.
    Sha224,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// SHA3-256.
    Sha3_256,
    /// SHA3-512.
    Sha3_512,
    /// BLAKE3 (256-bit output).
    Blake3,
    /// MD5: insecure, for checking old lists only.
    Md5,
    /// SHA-1: insecure, for checking old lists only.
    Sha1,
}

impl HashAlg {
    /// Every algorithm, in the order they are listed to users.
    pub const ALL: &'static [HashAlg] = &[
        HashAlg::Sha256,
        HashAlg::Sha224,
        HashAlg::Sha384,
        HashAlg::Sha512,
        HashAlg::Sha3_256,
        HashAlg::Sha3_512,
        HashAlg::Blake3,
        HashAlg::Md5,
        HashAlg::Sha1,
    ];

    /// The name used in `ALGO:HEX` values and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha224 => "sha224",
            HashAlg::Sha384 => "sha384",
            HashAlg::Sha512 => "sha512",
            HashAlg::Sha3_256 => "sha3-256",
            HashAlg::Sha3_512 => "sha3-512",
            HashAlg::Blake3 => "blake3",
            HashAlg::Md5 => "md5",
            HashAlg::Sha1 => "sha1",
        }
    }

    /// The tag of BSD-style lines (`SHA256 (file) = ...`).
    pub fn bsd_tag(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "SHA256",
            HashAlg::Sha224 => "SHA224",
            HashAlg::Sha384 => "SHA384",
            HashAlg::Sha512 => "SHA512",
            HashAlg::Sha3_256 => "SHA3-256",
            HashAlg::Sha3_512 => "SHA3-512",
            HashAlg::Blake3 => "BLAKE3",
            HashAlg::Md5 => "MD5",
            HashAlg::Sha1 => "SHA1",
        }
    }

    /// The algorithm of a BSD tag.
    pub fn from_bsd_tag(tag: &str) -> Option<Self> {
        HashAlg::ALL.iter().copied().find(|a| a.bsd_tag() == tag)
    }

    /// Digest length in bytes.
    #[allow(clippy::len_without_is_empty)] // An algorithm is never "empty".
    pub fn len(self) -> usize {
        match self {
            HashAlg::Md5 => 16,
            HashAlg::Sha1 => 20,
            HashAlg::Sha224 => 28,
            HashAlg::Sha256 | HashAlg::Sha3_256 | HashAlg::Blake3 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 | HashAlg::Sha3_512 => 64,
        }
    }

    /// The coreutils algorithm of a bare hex digest of this many digits.
    pub fn from_hex_len(digits: usize) -> Option<Self> {
        match digits {
            32 => Some(HashAlg::Md5),
            40 => Some(HashAlg::Sha1),
            56 => Some(HashAlg::Sha224),
            64 => Some(HashAlg::Sha256),
            96 => Some(HashAlg::Sha384),
            128 => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    /// MD5 and SHA-1: collisions can be made. Checked with a warning, never
    /// accepted for a signature.
    pub fn is_insecure(self) -> bool {
        matches!(self, HashAlg::Md5 | HashAlg::Sha1)
    }

    /// Whether the algorithm may be named in a signature.
    pub fn fit_for_signatures(self) -> bool {
        !self.is_insecure()
    }

    fn supported_list() -> String {
        HashAlg::ALL
            .iter()
            .map(|a| a.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for HashAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HashAlg {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        HashAlg::ALL
            .iter()
            .copied()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "unknown hash algorithm {s:?}; supported: {}",
                    HashAlg::supported_list()
                ))
            })
    }
}

/// A digest value together with its algorithm.
#[derive(Clone, PartialEq, Eq)]
pub struct Digest {
    alg: HashAlg,
    bytes: Vec<u8>,
}

impl Digest {
    /// Wrap raw digest bytes; the length must match the algorithm.
    pub fn new(alg: HashAlg, bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() == alg.len()).then_some(Digest { alg, bytes })
    }

    /// The algorithm.
    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    /// The raw digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Lower-case hex of the digest.
    pub fn hex(&self) -> String {
        hex::encode(&self.bytes)
    }

    /// Constant-time comparison of two digests (algorithm included).
    pub fn ct_eq(&self, other: &Digest) -> bool {
        self.alg == other.alg && bool::from(self.bytes.as_slice().ct_eq(other.bytes.as_slice()))
    }

    /// Parse `ALGO:HEX`, or a bare HEX meaning SHA-256 when `bare_means_sha256`.
    ///
    /// Parsing is strict: a known algorithm, lower- or upper-case hex only, and
    /// exactly the algorithm's length.
    pub fn parse(s: &str, bare_means_sha256: bool) -> Result<Self> {
        let (alg, hex_part) = match s.split_once(':') {
            Some((a, h)) => (a.parse::<HashAlg>()?, h),
            None if bare_means_sha256 => (HashAlg::Sha256, s),
            None => {
                return Err(Error::Usage(format!(
                    "malformed digest {s:?}: expected ALGO:HEX, for example sha256:<64 hex digits>"
                )));
            }
        };
        if hex_part.len() != alg.len() * 2 || !hex_part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Usage(format!(
                "malformed {} digest: expected exactly {} hex digits, got {:?}",
                alg,
                alg.len() * 2,
                truncate_for_display(hex_part)
            )));
        }
        let bytes = hex::decode(hex_part).map_err(|e| Error::Usage(e.to_string()))?;
        Ok(Digest { alg, bytes })
    }
}

fn truncate_for_display(s: &str) -> String {
    let cut: String = s.chars().take(80).filter(|c| !c.is_control()).collect();
    if s.chars().count() > 80 {
        format!("{cut}...")
    } else {
        cut
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.alg, self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

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
/// A reader thread fills recycled buffers while `sink` runs on the calling
/// thread. Refuses non-regular files.
pub fn stream_file(path: &Path, mut sink: impl FnMut(&[u8])) -> Result<u64> {
    let mut file = crate::fsutil::open_regular(path)?;
    let (full_tx, full_rx) = mpsc::sync_channel::<(Vec<u8>, usize)>(BUF_COUNT);
    let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(BUF_COUNT);
    for _ in 0..BUF_COUNT {
        // Cannot fail: the channel has room for BUF_COUNT buffers.
        let _ = empty_tx.send(vec![0u8; BUF_SIZE]);
    }
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || -> std::io::Result<()> {
            while let Ok(mut buf) = empty_rx.recv() {
                let n = read_full(&mut file, &mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                if full_tx.send((buf, n)).is_err() {
                    return Ok(());
                }
            }
            Ok(())
        });
        let mut total = 0u64;
        while let Ok((buf, n)) = full_rx.recv() {
            sink(&buf[..n]);
            total += n as u64;
            // The reader may have finished; a failed send is harmless.
            let _ = empty_tx.send(buf);
        }
        drop(empty_tx);
        match reader.join() {
            Ok(Ok(())) => Ok(total),
            Ok(Err(e)) => Err(Error::io(path, "reading", e)),
            Err(_) => Err(Error::Io {
                path: path.to_path_buf(),
                action: "reading",
                source: std::io::Error::other("reader thread panicked"),
            }),
        }
    })
}

/// Fill `buf` as far as the file allows (short only at end of file).
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
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
    let mut hashers: Vec<Hasher> = algs.iter().map(|a| Hasher::new(*a)).collect();
    let size = stream_file(
        path,
        Progress::wrap(progress, |chunk| {
            for h in hashers.iter_mut() {
                h.update(chunk);
            }
        }),
    )?;
    Ok((size, hashers.into_iter().map(Hasher::finish).collect()))
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
        for size in [0usize, 1, BUF_SIZE - 1, BUF_SIZE, BUF_SIZE * 3 + 7] {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let p = dir.path().join("f");
            std::fs::write(&p, &data).unwrap();
            let (n, d) = hash_file(&p, &[HashAlg::Sha256, HashAlg::Sha512]).unwrap();
            assert_eq!(n, size as u64);
            assert_eq!(d[0], hash_bytes(HashAlg::Sha256, &data));
            assert_eq!(d[1], hash_bytes(HashAlg::Sha512, &data));
        }
    }
}

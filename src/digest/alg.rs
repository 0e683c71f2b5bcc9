//! The hash algorithms pkgsign knows, and which of them may be used where.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Invalid, Result};

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
                Error::from(Invalid::UnknownHashAlg {
                    name: s.to_string(),
                    supported: HashAlg::supported_list(),
                })
            })
    }
}

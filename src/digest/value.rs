//! A digest value with its algorithm, written `ALGO:HEX`, compared in
//! constant time.

use std::fmt;

use subtle::ConstantTimeEq;

use super::HashAlg;
use crate::error::{Invalid, Result};
/// A digest value together with its algorithm.
#[derive(Clone, PartialEq, Eq)]
pub struct Digest {
    pub(super) alg: HashAlg,
    pub(super) bytes: Vec<u8>,
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
                return Err(Invalid::MalformedDigest(format!(
                    "malformed digest {s:?}: expected ALGO:HEX, for example sha256:<64 hex digits>"
                ))
                .into());
            }
        };
        if hex_part.len() != alg.len() * 2 || !hex_part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Invalid::MalformedDigest(format!(
                "malformed {} digest: expected exactly {} hex digits, got {:?}",
                alg,
                alg.len() * 2,
                truncate_for_display(hex_part)
            ))
            .into());
        }
        let bytes = hex::decode(hex_part).map_err(|e| Invalid::MalformedDigest(e.to_string()))?;
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

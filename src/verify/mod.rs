//! Verifying: whether signatures count against a trust store at a given
//! time. The [`Verifier`] checks one signature under a domain; [`package`]
//! verifies a package's signature file with it and returns a typed proof.
//!
//! This layer sits above [`crate::sign`] (formats, signing, proofs) and
//! [`crate::trust`] (who is trusted): a verification needs both.
#![forbid(unsafe_code)]

pub mod package;
pub mod staged;
pub mod verifier;

pub use package::{Content, Feed, VerifyOptions, verify_checksum, verify_content, verify_package};
pub use verifier::Verifier;

use std::path::PathBuf;

use crate::error::{Code, Error};
use crate::sign::report::Report;

/// Why a verification gave no proof: it ran and refused the package (its
/// signatures, or its digest), or it could not be made at all.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The signatures were checked and do not meet the threshold; the
    /// report says why, per signature.
    #[error("{0}")]
    Refused(Box<Report>),
    /// The package's digest differs from the one expected.
    #[error("{}: {algorithm} digest is {actual}, expected {expected}: the package is corrupt or was replaced; do not use it", .path.display())]
    ChecksumMismatch {
        /// The package.
        path: PathBuf,
        /// The algorithm.
        algorithm: &'static str,
        /// Expected digest (hex).
        expected: String,
        /// Actual digest (hex).
        actual: String,
    },

    /// The verification could not be made (a file missing or malformed, a
    /// key that cannot be used, ...).
    #[error(transparent)]
    Failed(#[from] Error),
}

impl VerifyError {
    /// The stable code of the contract.
    pub fn code(&self) -> Code {
        match self {
            VerifyError::Refused(r) => r.code(),
            VerifyError::ChecksumMismatch { .. } => Code::ChecksumMismatch,
            VerifyError::Failed(e) => e.code(),
        }
    }
}

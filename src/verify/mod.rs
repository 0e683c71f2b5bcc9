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

pub use package::{
    Content, Feed, VerifyOptions, verify_checksum, verify_content, verify_package, verify_parsed,
};
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

/// The audit events of a verification: one per signature examined (also
/// those that did not count), and, for a refusal that no signature's
/// failure explains (none examined, or every one valid but too few
/// principals), one failure line for the refusal itself, saying
/// `refusal` (the caller's message), so that the log never shows only
/// successes for a refused package. `base` makes each event with the
/// caller's own fields (package, request, ...).
pub fn audit_events(
    report: &Report,
    refusal: Option<String>,
    base: impl Fn(crate::audit::AuditEvent) -> crate::audit::Event,
) -> Vec<crate::audit::Event> {
    use crate::audit::AuditEvent;
    let mut events: Vec<_> = report
        .signatures
        .iter()
        .map(|s| {
            let event = if s.is_valid() {
                AuditEvent::SignatureVerificationSuccess
            } else {
                AuditEvent::SignatureVerificationFailure
            };
            base(event)
                .with("algorithm", s.algorithm.clone())
                .with("key", s.key.as_ref().map(|k| k.to_string()))
                .with("signed_at", s.signed_at.clone())
                .with("code", s.refusal.map(|c| c.code()))
                .with("reason", (!s.is_valid()).then(|| s.reason.clone()))
        })
        .collect();
    if let Some(reason) = refusal
        && report.signatures.iter().all(|s| s.is_valid())
    {
        events.push(
            base(AuditEvent::SignatureVerificationFailure)
                .with("code", report.code())
                .with("reason", reason),
        );
    }
    events
}

//! Why a signature did not count: the outcome of a trust decision or of
//! the signature check, each with a stable code of the contract.

use serde::Serialize;

use crate::error::Code;

/// Why a signature did not count. Each has a stable code of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum Refusal {
    /// The signature does not verify, or the package differs from what was signed.
    SignatureInvalid,
    /// The signing key is not among the trusted keys.
    KeyNotTrusted,
    /// The signing key's validity window has ended.
    KeyExpired,
    /// The signing key's validity window has not begun.
    KeyNotYetValid,
    /// The signing key was revoked.
    KeyRevoked,
    /// The statement's own expiry has passed.
    SignatureExpired,
    /// The statement is for another package name, or names none.
    NameMismatch,
    /// The statement's release is older than the minimum asked for, or
    /// names no version that can be compared with it.
    Rollback,
}

impl Refusal {
    /// The contract's code.
    pub fn code(self) -> Code {
        match self {
            Refusal::SignatureInvalid => Code::SignatureInvalid,
            Refusal::KeyNotTrusted => Code::KeyNotTrusted,
            Refusal::KeyExpired => Code::KeyExpired,
            Refusal::KeyNotYetValid => Code::KeyNotYetValid,
            Refusal::KeyRevoked => Code::KeyRevoked,
            Refusal::SignatureExpired => Code::SignatureExpired,
            Refusal::NameMismatch => Code::NameMismatch,
            Refusal::Rollback => Code::Rollback,
        }
    }

    /// Which refusal to report when several signatures failed differently:
    /// the most alarming first.
    pub(crate) fn priority(self) -> u8 {
        match self {
            Refusal::SignatureInvalid => 0,
            Refusal::KeyRevoked => 1,
            Refusal::NameMismatch => 2,
            Refusal::Rollback => 3,
            Refusal::SignatureExpired => 4,
            Refusal::KeyExpired => 5,
            Refusal::KeyNotYetValid => 6,
            Refusal::KeyNotTrusted => 7,
        }
    }
}

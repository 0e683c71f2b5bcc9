//! The stable upper-case codes of the contract, as one enum.
//!
//! `--json` output, the audit log and per-file results carry these codes;
//! their spelling never changes (serde renames them to the contract's
//! `SCREAMING_SNAKE_CASE`). The code of a library error is
//! [`crate::Error::code`]; which exit status it means is the command line's
//! business.

use std::fmt;

use serde::Serialize;

/// A stable machine-readable code of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum Code {
    /// The request was inconsistent (a usage error of the command line, or
    /// an argument a library function refuses).
    Usage,
    /// A file that must exist does not.
    FileNotFound,
    /// A path names a directory or special file where a file is expected.
    NotAFile,
    /// An input file is larger than accepted for its kind.
    FileTooLarge,
    /// Reading or writing failed.
    IoError,
    /// A key file does not parse.
    KeyMalformed,
    /// A key of a kind pkgsign does not support.
    KeyUnsupported,
    /// An RSA key outside 2048..=8192 bits.
    KeyTooWeak,
    /// A key file or key directory with unsafe permissions.
    KeyPermissions,
    /// An encrypted key and no passphrase.
    PassphraseRequired,
    /// The passphrase does not decrypt the key.
    PassphraseWrong,
    /// A file pkgsign would create exists.
    AlreadyExists,
    /// A signature file does not parse.
    SignatureMalformed,
    /// A signature file of an unknown format version.
    SignatureVersionUnsupported,
    /// No signature verifies.
    SignatureInvalid,
    /// The signing key is not trusted.
    KeyNotTrusted,
    /// The signing key's window has ended.
    KeyExpired,
    /// The signing key's window has not begun.
    KeyNotYetValid,
    /// The signing key was revoked.
    KeyRevoked,
    /// Valid signatures, but fewer distinct keys than the threshold.
    ThresholdNotMet,
    /// The signed statement's expiry has passed.
    SignatureExpired,
    /// The signature is for another package name (or names none).
    NameMismatch,
    /// The signed release is older than the minimum asked for, or than
    /// the release applied before.
    Rollback,
    /// A version applied before is offered again with other bytes.
    VersionReused,
    /// A verified archive holds entries that are not extracted (paths out
    /// of the release, links, devices) or exceeds the extraction limits.
    ArchiveRefused,
    /// A digest differs from the expected one.
    ChecksumMismatch,
    /// A key metadata file does not parse.
    MetadataInvalid,
    /// A checksum list with malformed lines, or no entry.
    ManifestMalformed,
    /// A configuration file does not parse or holds an unknown key.
    ConfigInvalid,
    /// A name in a checksum list that is absolute or climbs out of its directory.
    PathRefused,
    /// A checksum list entry with an algorithm unfit for signatures.
    WeakAlgorithm,
    /// No key to sign with or verify against.
    NoKeys,
    /// Key statements were refused.
    StatementRefused,
    /// A key statement in the format of pkgsign 0.1.
    StatementOutdated,
    /// More key statements than one run reads.
    TooManyStatements,
    /// A cryptographic operation failed unexpectedly.
    CryptoError,
    /// Encoding a machine-readable file (JSON) failed.
    EncodingError,
    /// The system clock is before 1970.
    ClockWrong,
    /// The audit log asked for cannot be written.
    AuditLogUnwritable,
    /// A key file symlink leads out of its directory.
    KeyOutsideDir,
    /// No key of the name asked for.
    KeyNotFound,
    /// A request without a valid bearer token (`pkgsign serve`).
    Unauthorized,
    /// A token whose role does not allow the request (`pkgsign serve`).
    Forbidden,
    /// A token over its rate limit (`pkgsign serve`).
    RateLimited,
    /// No such route or stored release (`pkgsign serve`).
    NotFound,
    /// The disk is full: nothing was written (`pkgsign serve`).
    DiskFull,
    /// A request that did not arrive in time (`pkgsign serve`).
    RequestTimeout,
    /// A header claims an algorithm or key the signature does not have (`pkgsign serve`).
    HeaderMismatch,
    /// The service cannot serve yet (`pkgsign serve`'s `/readyz`).
    NotReady,
    /// The PKCS#11 module or token cannot be used (missing, not PKCS#11, session lost).
    TokenUnavailable,
    /// No token or key object (or several) matches a `pkcs11:` URI.
    TokenKeyNotFound,
    /// The token does not support a mechanism pkgsign needs.
    TokenMechanism,
}

impl Code {
    /// Every code, for tables and tests.
    pub const ALL: &'static [Code] = &[
        Code::Usage,
        Code::FileNotFound,
        Code::NotAFile,
        Code::FileTooLarge,
        Code::IoError,
        Code::KeyMalformed,
        Code::KeyUnsupported,
        Code::KeyTooWeak,
        Code::KeyPermissions,
        Code::PassphraseRequired,
        Code::PassphraseWrong,
        Code::AlreadyExists,
        Code::SignatureMalformed,
        Code::SignatureVersionUnsupported,
        Code::SignatureInvalid,
        Code::KeyNotTrusted,
        Code::KeyExpired,
        Code::KeyNotYetValid,
        Code::KeyRevoked,
        Code::ThresholdNotMet,
        Code::ChecksumMismatch,
        Code::MetadataInvalid,
        Code::ManifestMalformed,
        Code::ConfigInvalid,
        Code::PathRefused,
        Code::WeakAlgorithm,
        Code::NoKeys,
        Code::StatementRefused,
        Code::StatementOutdated,
        Code::TooManyStatements,
        Code::CryptoError,
        Code::EncodingError,
        Code::ClockWrong,
        Code::AuditLogUnwritable,
        Code::KeyOutsideDir,
        Code::KeyNotFound,
        Code::SignatureExpired,
        Code::NameMismatch,
        Code::Rollback,
        Code::VersionReused,
        Code::ArchiveRefused,
        Code::Unauthorized,
        Code::Forbidden,
        Code::RateLimited,
        Code::NotFound,
        Code::DiskFull,
        Code::RequestTimeout,
        Code::HeaderMismatch,
        Code::NotReady,
        Code::TokenUnavailable,
        Code::TokenKeyNotFound,
        Code::TokenMechanism,
    ];

    /// The contract's spelling (`SIGNATURE_INVALID`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Usage => "USAGE",
            Code::FileNotFound => "FILE_NOT_FOUND",
            Code::NotAFile => "NOT_A_FILE",
            Code::FileTooLarge => "FILE_TOO_LARGE",
            Code::IoError => "IO_ERROR",
            Code::KeyMalformed => "KEY_MALFORMED",
            Code::KeyUnsupported => "KEY_UNSUPPORTED",
            Code::KeyTooWeak => "KEY_TOO_WEAK",
            Code::KeyPermissions => "KEY_PERMISSIONS",
            Code::PassphraseRequired => "PASSPHRASE_REQUIRED",
            Code::PassphraseWrong => "PASSPHRASE_WRONG",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::SignatureMalformed => "SIGNATURE_MALFORMED",
            Code::SignatureVersionUnsupported => "SIGNATURE_VERSION_UNSUPPORTED",
            Code::SignatureInvalid => "SIGNATURE_INVALID",
            Code::KeyNotTrusted => "KEY_NOT_TRUSTED",
            Code::KeyExpired => "KEY_EXPIRED",
            Code::KeyNotYetValid => "KEY_NOT_YET_VALID",
            Code::KeyRevoked => "KEY_REVOKED",
            Code::ThresholdNotMet => "THRESHOLD_NOT_MET",
            Code::ChecksumMismatch => "CHECKSUM_MISMATCH",
            Code::MetadataInvalid => "METADATA_INVALID",
            Code::ManifestMalformed => "MANIFEST_MALFORMED",
            Code::ConfigInvalid => "CONFIG_INVALID",
            Code::PathRefused => "PATH_REFUSED",
            Code::WeakAlgorithm => "WEAK_ALGORITHM",
            Code::NoKeys => "NO_KEYS",
            Code::StatementRefused => "STATEMENT_REFUSED",
            Code::StatementOutdated => "STATEMENT_OUTDATED",
            Code::TooManyStatements => "TOO_MANY_STATEMENTS",
            Code::CryptoError => "CRYPTO_ERROR",
            Code::EncodingError => "ENCODING_ERROR",
            Code::ClockWrong => "CLOCK_WRONG",
            Code::AuditLogUnwritable => "AUDIT_LOG_UNWRITABLE",
            Code::KeyOutsideDir => "KEY_OUTSIDE_DIR",
            Code::KeyNotFound => "KEY_NOT_FOUND",
            Code::SignatureExpired => "SIGNATURE_EXPIRED",
            Code::NameMismatch => "NAME_MISMATCH",
            Code::Rollback => "ROLLBACK",
            Code::VersionReused => "VERSION_REUSED",
            Code::ArchiveRefused => "ARCHIVE_REFUSED",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Forbidden => "FORBIDDEN",
            Code::RateLimited => "RATE_LIMITED",
            Code::NotFound => "NOT_FOUND",
            Code::DiskFull => "DISK_FULL",
            Code::RequestTimeout => "REQUEST_TIMEOUT",
            Code::HeaderMismatch => "HEADER_MISMATCH",
            Code::NotReady => "NOT_READY",
            Code::TokenUnavailable => "TOKEN_UNAVAILABLE",
            Code::TokenKeyNotFound => "TOKEN_KEY_NOT_FOUND",
            Code::TokenMechanism => "TOKEN_MECHANISM",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Code> for serde_json::Value {
    fn from(c: Code) -> Self {
        serde_json::Value::from(c.as_str())
    }
}

/// Compares with the contract's spelling (`code == "KEY_REVOKED"`).
impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_json_is_its_contract_spelling() {
        for &c in Code::ALL {
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
            assert!(
                c.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'_')
            );
        }
        let mut seen = std::collections::HashSet::new();
        assert!(Code::ALL.iter().all(|c| seen.insert(c.as_str())));
    }
}

//! The error type of the library, by area: [`Invalid`] requests,
//! [`FileError`], [`KeyError`], [`ParseError`] (untrusted input),
//! [`TrustError`]; a refused verification is the verify layer's own
//! `VerifyError`.
//!
//! Every variant names what failed, on which file or key, with the facts in
//! fields. Messages name no command-line flag and no exit status: the
//! `pkgsign` binary maps an error to its exit code and adds the "what to do
//! next" hint of its command line (`src/cli/error.rs`), so that a service
//! using the library gets messages about its own inputs. [`Error::code`]
//! gives the stable upper-case [`Code`] of the contract.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

mod code;
mod file;
mod invalid;
mod key;
mod parse;
mod token;
mod trust;
pub use code::Code;
pub use file::FileError;
pub use invalid::{Invalid, KeyDirKind};
pub use key::KeyError;
pub use parse::ParseError;
pub use token::TokenError;
pub use trust::TrustError;

/// Which key was missing (see [`TrustError::NoKeys`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoKeys {
    /// Signing was asked for with no key.
    #[error("no signing key")]
    ToSign,
    /// Verification was asked for with no trusted key and no expected digest.
    #[error("nothing to verify")]
    ToVerify,
    /// A signing-keys directory holds no key inside its validity window.
    #[error("{}: no private key inside its validity window", .dir.display())]
    InWindow {
        /// The signing-keys directory.
        dir: PathBuf,
    },
}

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in pkgsign, by area: an invalid request,
/// files, keys, parsing untrusted input, trust; and the few failures of
/// their own (the clock, the audit log, encoding, the crypto library). A
/// verification that ran and said no is not an error of this type but a
/// refusal (`verify::VerifyError`, in the layer that verifies).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// What was asked does not make sense (code `USAGE`).
    #[error("{0}")]
    Invalid(#[from] Invalid),

    /// Reading or writing a file failed.
    #[error(transparent)]
    File(#[from] FileError),

    /// A key file cannot be used.
    #[error(transparent)]
    Key(#[from] KeyError),

    /// A key on a PKCS#11 token could not be used.
    #[error(transparent)]
    Token(#[from] TokenError),

    /// Untrusted input does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),

    /// Which keys may be used cannot be decided safely, or there are none.
    #[error(transparent)]
    Trust(#[from] TrustError),

    /// The system clock is set before 1970: a signing time cannot be written.
    #[error(
        "the system clock says {seconds_before_1970} seconds before 1970-01-01T00:00:00Z; set the clock right (for example with NTP) and sign again"
    )]
    ClockWrong {
        /// How far before the Unix epoch the clock is.
        seconds_before_1970: u64,
    },

    /// The audit log that was asked for cannot be opened or written. Before
    /// the command acted, nothing was done; after, `done` says what was.
    #[error("{}: cannot write the audit log ({action}: {source}); {done}", .path.display())]
    AuditLogUnwritable {
        /// The audit log file.
        path: PathBuf,
        /// What was being done ("opening", "appending to").
        action: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
        /// What the command had done when the log failed ("nothing was done", ...).
        done: String,
    },

    /// Encoding a machine-readable file (JSON) failed.
    #[error("{what} failed: {reason}")]
    Encoding {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's message.
        reason: String,
    },

    /// A cryptographic operation failed unexpectedly.
    #[error("{what} failed: {reason}")]
    Crypto {
        /// The operation.
        what: &'static str,
        /// The library's message.
        reason: String,
    },
}

fn others_suffix(n: usize) -> String {
    match n {
        0 | 1 => String::new(),
        2 => " and so is 1 other path".into(),
        n => format!(" and so are {} other paths", n - 1),
    }
}

fn names_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// "line 2 is", "lines 1, 2 are", or "names no file", for [`Error::ManifestMalformed`].
fn malformed_lines(lines: &[usize], count: usize) -> String {
    const SHOWN: usize = 10;
    if count == 0 {
        return "the list names no file".into();
    }
    let mut text = lines
        .iter()
        .take(SHOWN)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if count > lines.len().min(SHOWN) {
        text.push_str(&format!(" and {} more", count - lines.len().min(SHOWN)));
    }
    if count == 1 {
        format!("line {text} is not a checksum line")
    } else {
        format!("lines {text} are not checksum lines")
    }
}

fn line_suffix(line: Option<usize>) -> String {
    line.map(|l| format!(" (line {l})")).unwrap_or_default()
}

impl Error {
    /// The stable upper-case code of the contract.
    pub fn code(&self) -> Code {
        match self {
            Error::Invalid(_) => Code::Usage,
            Error::File(e) => e.code(),
            Error::Key(e) => e.code(),
            Error::Token(e) => e.code(),
            Error::Parse(e) => e.code(),
            Error::Trust(e) => e.code(),
            Error::Crypto { .. } => Code::CryptoError,
            Error::Encoding { .. } => Code::EncodingError,
            Error::ClockWrong { .. } => Code::ClockWrong,
            Error::AuditLogUnwritable { .. } => Code::AuditLogUnwritable,
        }
    }

    /// Build a [`FileError::Io`] (or the more precise
    /// [`FileError::NotFound`] for "not found").
    pub fn io(path: &Path, action: &'static str, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            FileError::NotFound {
                path: path.to_path_buf(),
            }
            .into()
        } else {
            FileError::Io {
                path: path.to_path_buf(),
                action,
                source,
            }
            .into()
        }
    }

    /// Say what the command had done when its audit log failed (an
    /// [`Error::AuditLogUnwritable`]); other errors are returned as they are.
    pub fn audit_done(mut self, what: impl Into<String>) -> Self {
        if let Error::AuditLogUnwritable { done, .. } = &mut self {
            *done = what.into();
        }
        self
    }

    /// Shorthand for [`KeyError::Malformed`].
    pub fn key_malformed(path: &Path, reason: impl Into<String>) -> Self {
        KeyError::Malformed {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
        .into()
    }

    /// Shorthand for [`KeyError::Unsupported`].
    pub fn key_unsupported(path: &Path, reason: impl Into<String>) -> Self {
        KeyError::Unsupported {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
        .into()
    }
}

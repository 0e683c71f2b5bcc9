//! The error type of the library.
//!
//! Every variant names what failed, on which file or key, with the facts in
//! fields. Messages name no command-line flag and no exit status: the
//! `pkgsign` binary maps an error to its exit code and adds the "what to do
//! next" hint of its command line (`src/cli/error.rs`), so that a service
//! using the library gets messages about its own inputs. [`Error::code`]
//! gives the stable upper-case [`Code`] of the contract.

use std::path::{Path, PathBuf};

mod code;
mod invalid;
pub use code::Code;
pub use invalid::{Invalid, KeyDirKind};

/// Which key was missing (see [`Error::NoKeys`]).
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

/// Everything that can go wrong in pkgsign.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// What was asked does not make sense (code `USAGE`).
    #[error("{0}")]
    Invalid(#[from] Invalid),

    /// A file that must exist does not.
    #[error("{}: no such file; check the path", .path.display())]
    FileNotFound {
        /// The missing file.
        path: PathBuf,
    },

    /// A path names a directory or other non-regular file where a file is expected.
    #[error("{}: is a directory or special file, not a regular file; pass the path of a file", .path.display())]
    NotAFile {
        /// The offending path.
        path: PathBuf,
    },

    /// An input file is larger than pkgsign accepts for its kind.
    #[error("{}: {what} is larger than {limit} bytes; this is not a valid {what}", .path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// What kind of file it was supposed to be.
        what: &'static str,
        /// The cap in bytes.
        limit: u64,
    },

    /// Reading or writing a file failed.
    #[error("{}: {action} failed: {source}; check that the path is correct and accessible", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done ("reading", "writing", ...).
        action: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A key file could not be parsed.
    #[error("{}: not a usable key: {reason}", .path.display())]
    KeyMalformed {
        /// The key file.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },

    /// A key file is well formed but of a kind pkgsign does not support.
    #[error("{}: unsupported key: {reason}", .path.display())]
    KeyUnsupported {
        /// The key file.
        path: PathBuf,
        /// What is unsupported and what to do.
        reason: String,
    },

    /// An RSA key is smaller than 2048 bits (or larger than 8192).
    #[error("{}: RSA key of {bits} bits refused: pkgsign accepts 2048 to 8192 bits", .path.display())]
    KeyTooWeak {
        /// The key file.
        path: PathBuf,
        /// Its modulus size.
        bits: usize,
    },

    /// A private key file can be read or written by group or others.
    #[error("{}: private key is accessible by group or others (mode {mode:04o})", .path.display())]
    KeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// An encrypted key needs a passphrase and none was given.
    #[error("{}: the private key is encrypted and no passphrase was given", .path.display())]
    PassphraseRequired {
        /// The key file.
        path: PathBuf,
    },

    /// The passphrase did not decrypt the key.
    #[error("{}: wrong passphrase, or the encrypted key is damaged", .path.display())]
    PassphraseWrong {
        /// The key file.
        path: PathBuf,
    },

    /// A file pkgsign would create already exists.
    #[error("{}: already exists", .path.display())]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },

    /// A signature file could not be parsed.
    #[error("{}: malformed signature file{}: {reason}", .path.display(), line_suffix(*.line))]
    SignatureMalformed {
        /// The signature file.
        path: PathBuf,
        /// The 1-based line, when one is to blame.
        line: Option<usize>,
        /// What is wrong.
        reason: String,
    },

    /// A signature file of a version this pkgsign does not know.
    #[error("{}: signature format version {version:?} is not supported by this pkgsign (it reads version 1); upgrade pkgsign", .path.display())]
    SignatureVersionUnsupported {
        /// The signature file.
        path: PathBuf,
        /// The version it declares.
        version: String,
    },

    /// The package's digest differs from the expected `--checksum`.
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

    /// A key metadata file (`trust.toml`, `keys.toml`) does not parse.
    #[error("{}: invalid key metadata: {reason}; fix or restore the file (nothing is trusted while it is broken)", .path.display())]
    Metadata {
        /// The metadata file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A key statement in the format of pkgsign 0.1 (no sequence number).
    #[error("{}: key statement format v1 (written by pkgsign 0.1) has no sequence number and is no longer applied; on the coordinator run `pkgsign key-rotate` to publish a statement in the current format, or trust the current key by hand with `pkgsign trust add TDIR KEY.pub` (see docs/rotation.md)", .path.display())]
    StatementOutdated {
        /// The statement file.
        path: PathBuf,
    },

    /// A directory holds more key statements than one run reads.
    #[error("{}: more than {limit} key statements; move the ones every worker has applied elsewhere, or apply them in parts", .dir.display())]
    TooManyStatements {
        /// The directory.
        dir: PathBuf,
        /// The cap.
        limit: usize,
    },

    /// A checksum list holds lines that are not checksum entries, or no
    /// entry at all: a signed list is refused whole.
    #[error("{}: {}; the list is refused: re-create it (for example `sha256sum FILES > LIST`), and sign it again if it is signed (a signed list holds checksum lines only: no blank or comment line)", .path.display(), malformed_lines(.lines, *.count))]
    ManifestMalformed {
        /// The list.
        path: PathBuf,
        /// The first malformed lines (1-based), as many as the list reader
        /// keeps (the `release::manifest` module says how many).
        lines: Vec<usize>,
        /// How many lines are malformed (0: the list names no file).
        count: usize,
    },

    /// No key was available to sign with or to verify against.
    #[error("{0}")]
    NoKeys(NoKeys),

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

    /// A key directory or a key or metadata file in it can be written by
    /// group or others: anyone who can write it can choose which keys are
    /// trusted or used (ssh's StrictModes refuses the same).
    #[error("{}: {what} is writable by group or others (mode {mode:04o}){}, so another user could choose the keys pkgsign trusts or signs with", .path.display(), others_suffix(.all.len()))]
    InsecurePermissions {
        /// The first offending directory or file.
        path: PathBuf,
        /// What it is ("trusted-keys directory", "public key file", ...).
        what: &'static str,
        /// Its permission bits.
        mode: u32,
        /// Every offending path (`path` first), for the one `chmod` to run.
        all: Vec<PathBuf>,
    },

    /// A key file of a key directory is a symlink that leads out of the
    /// directory (or nowhere): the directory's permissions would not protect it.
    #[error("{}: symlink that leads out of {} ({}); a key file must lie in the directory itself: replace the link by a copy of the key, or remove it", .path.display(), .dir.display(), .target)]
    KeyOutsideDir {
        /// The symlink.
        path: PathBuf,
        /// The directory it is in.
        dir: PathBuf,
        /// Where it leads, in words.
        target: String,
    },

    /// `key-rotate` found no current key of that name, and creating the
    /// first one was not asked for.
    #[error("{}: no current key named {name:?} (keys here: {})", .dir.display(), names_or_none(.existing))]
    NoCurrentKey {
        /// The signing-keys directory.
        dir: PathBuf,
        /// The name asked for.
        name: String,
        /// The names of the current keys the directory holds.
        existing: Vec<String>,
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
            Error::FileNotFound { .. } => Code::FileNotFound,
            Error::NotAFile { .. } => Code::NotAFile,
            Error::TooLarge { .. } => Code::FileTooLarge,
            Error::Io { .. } => Code::IoError,
            Error::KeyMalformed { .. } => Code::KeyMalformed,
            Error::KeyUnsupported { .. } => Code::KeyUnsupported,
            Error::KeyTooWeak { .. } => Code::KeyTooWeak,
            Error::KeyPermissions { .. } => Code::KeyPermissions,
            Error::PassphraseRequired { .. } => Code::PassphraseRequired,
            Error::PassphraseWrong { .. } => Code::PassphraseWrong,
            Error::AlreadyExists { .. } => Code::AlreadyExists,
            Error::SignatureMalformed { .. } => Code::SignatureMalformed,
            Error::SignatureVersionUnsupported { .. } => Code::SignatureVersionUnsupported,
            Error::ChecksumMismatch { .. } => Code::ChecksumMismatch,
            Error::Metadata { .. } => Code::MetadataInvalid,
            Error::ManifestMalformed { .. } => Code::ManifestMalformed,
            Error::NoKeys(_) => Code::NoKeys,
            Error::StatementOutdated { .. } => Code::StatementOutdated,
            Error::TooManyStatements { .. } => Code::TooManyStatements,
            Error::Crypto { .. } => Code::CryptoError,
            Error::Encoding { .. } => Code::EncodingError,
            Error::ClockWrong { .. } => Code::ClockWrong,
            Error::AuditLogUnwritable { .. } => Code::AuditLogUnwritable,
            Error::InsecurePermissions { .. } => Code::KeyPermissions,
            Error::KeyOutsideDir { .. } => Code::KeyOutsideDir,
            Error::NoCurrentKey { .. } => Code::KeyNotFound,
        }
    }

    /// Build an [`Error::Io`] (or the more precise variant for "not found").
    pub fn io(path: &Path, action: &'static str, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::FileNotFound {
                path: path.to_path_buf(),
            }
        } else {
            Error::Io {
                path: path.to_path_buf(),
                action,
                source,
            }
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

    /// Shorthand for [`Error::KeyMalformed`].
    pub fn key_malformed(path: &Path, reason: impl Into<String>) -> Self {
        Error::KeyMalformed {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::KeyUnsupported`].
    pub fn key_unsupported(path: &Path, reason: impl Into<String>) -> Self {
        Error::KeyUnsupported {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

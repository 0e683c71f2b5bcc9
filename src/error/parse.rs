//! Untrusted input that does not parse: signature files, metadata, checksum lists, key statements.

use std::path::PathBuf;

use super::Code;
use super::{line_suffix, malformed_lines};

/// Untrusted input that does not parse: signature files, metadata, checksum lists, key statements.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
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

    /// A key metadata file (`trust.toml`, `keys.toml`) does not parse.
    #[error("{}: invalid key metadata: {reason}; fix or restore the file (nothing is trusted while it is broken)", .path.display())]
    Metadata {
        /// The metadata file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A configuration file does not parse, or holds a key or value that
    /// is not known.
    #[error("{}{}: invalid configuration: {reason}; fix the file (`pkgsign config check FILE` checks one)", .path.display(), line_suffix(*.line))]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// The 1-based line, when one is to blame.
        line: Option<usize>,
        /// What is wrong.
        reason: String,
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
}

impl ParseError {
    /// The stable upper-case code of the contract.
    pub fn code(&self) -> Code {
        match self {
            ParseError::SignatureMalformed { .. } => Code::SignatureMalformed,
            ParseError::SignatureVersionUnsupported { .. } => Code::SignatureVersionUnsupported,
            ParseError::Metadata { .. } => Code::MetadataInvalid,
            ParseError::Config { .. } => Code::ConfigInvalid,
            ParseError::ManifestMalformed { .. } => Code::ManifestMalformed,
            ParseError::StatementOutdated { .. } => Code::StatementOutdated,
            ParseError::TooManyStatements { .. } => Code::TooManyStatements,
        }
    }
}

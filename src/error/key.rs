//! A key file: its form, its kind, its protection.

use std::path::PathBuf;

use super::Code;

/// A key file: its form, its kind, its protection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A key file could not be parsed.
    #[error("{}: not a usable key: {reason}", .path.display())]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },

    /// A key file is well formed but of a kind pkgsign does not support.
    #[error("{}: unsupported key: {reason}", .path.display())]
    Unsupported {
        /// The key file.
        path: PathBuf,
        /// What is unsupported and what to do.
        reason: String,
    },

    /// An RSA key is smaller than 2048 bits (or larger than 8192).
    #[error("{}: RSA key of {bits} bits refused: pkgsign accepts 2048 to 8192 bits", .path.display())]
    TooWeak {
        /// The key file.
        path: PathBuf,
        /// Its modulus size.
        bits: usize,
    },

    /// A private key file can be read or written by group or others.
    #[error("{}: private key is accessible by group or others (mode {mode:04o})", .path.display())]
    Permissions {
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
}

impl KeyError {
    /// The stable upper-case code of the contract.
    pub fn code(&self) -> Code {
        match self {
            KeyError::Malformed { .. } => Code::KeyMalformed,
            KeyError::Unsupported { .. } => Code::KeyUnsupported,
            KeyError::TooWeak { .. } => Code::KeyTooWeak,
            KeyError::Permissions { .. } => Code::KeyPermissions,
            KeyError::PassphraseRequired { .. } => Code::PassphraseRequired,
            KeyError::PassphraseWrong { .. } => Code::PassphraseWrong,
        }
    }
}

//! Which keys may be used: key directories others could change, and keys that are missing.

use std::path::PathBuf;

use super::Code;
use super::{NoKeys, names_or_none, others_suffix};

/// Which keys may be used: key directories others could change, and keys that are missing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
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

    /// No key was available to sign with or to verify against.
    #[error("{0}")]
    NoKeys(NoKeys),

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
}

impl TrustError {
    /// The stable upper-case code of the contract.
    pub fn code(&self) -> Code {
        match self {
            TrustError::InsecurePermissions { .. } => Code::KeyPermissions,
            TrustError::KeyOutsideDir { .. } => Code::KeyOutsideDir,
            TrustError::NoKeys(_) => Code::NoKeys,
            TrustError::NoCurrentKey { .. } => Code::KeyNotFound,
        }
    }
}

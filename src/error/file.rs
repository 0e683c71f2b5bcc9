//! Reading or writing a file.

use std::path::PathBuf;

use super::Code;

/// Reading or writing a file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// A file that must exist does not.
    #[error("{}: no such file; check the path", .path.display())]
    NotFound {
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

    /// A file pkgsign would create already exists.
    #[error("{}: already exists", .path.display())]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },

    /// A directory where pkgsign places a verified file (or extracts one)
    /// that group or others may write, without the sticky bit: another
    /// user could rename their own file over it before it is used.
    #[error("{}: {what} is writable by group or others (mode {mode:04o}) and not sticky, so another user could replace the verified copy before it is used; use a directory only you can write", .path.display())]
    WritableByOthers {
        /// The directory.
        path: PathBuf,
        /// What it is for.
        what: &'static str,
        /// Its permission bits.
        mode: u32,
    },
}

impl FileError {
    /// The stable upper-case code of the contract.
    pub fn code(&self) -> Code {
        match self {
            FileError::WritableByOthers { .. } => Code::PathRefused,
            FileError::NotFound { .. } => Code::FileNotFound,
            FileError::NotAFile { .. } => Code::NotAFile,
            FileError::TooLarge { .. } => Code::FileTooLarge,
            FileError::Io { .. } => Code::IoError,
            FileError::AlreadyExists { .. } => Code::AlreadyExists,
        }
    }
}

//! Files named in a request, confined to the directories the configuration
//! allows. A path is resolved (`..` and every symlink) before it is
//! judged, opened without following a final symlink, and the file opened is
//! checked again through `/proc/self/fd`: a path swapped for a symlink in
//! between is refused, not followed.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::fsutil;

/// The allowed directories, resolved once at start.
#[derive(Debug, Clone, Default)]
pub struct Confined {
    roots: Vec<PathBuf>,
}

/// Why a path was refused.
#[derive(Debug)]
pub enum PathError {
    /// Outside every allowed directory (or escaping through `..` or a
    /// symlink), or not absolute.
    Refused(String),
    /// It could not be opened.
    File(Error),
}

impl Confined {
    /// Resolve the allowed directories; one that does not exist is an error
    /// (the service would refuse everything under it anyway).
    pub fn new(dirs: &[PathBuf]) -> crate::error::Result<Confined> {
        let roots = dirs
            .iter()
            .map(|d| std::fs::canonicalize(d).map_err(|e| Error::io(d, "resolving", e)))
            .collect::<crate::error::Result<Vec<_>>>()?;
        Ok(Confined { roots })
    }

    fn inside(&self, p: &Path) -> bool {
        self.roots.iter().any(|r| p.starts_with(r))
    }

    /// Open `path` for reading if it is a regular file inside an allowed
    /// directory.
    pub fn open(&self, path: &Path) -> Result<File, PathError> {
        if !path.is_absolute() {
            return Err(PathError::Refused(format!(
                "{}: give an absolute path",
                path.display()
            )));
        }
        let refused = || {
            PathError::Refused(format!(
                "{}: outside the directories this service may read",
                path.display()
            ))
        };
        let real = match std::fs::canonicalize(path) {
            Ok(r) => r,
            // A path that does not resolve is judged by its own text: one
            // outside the allowed directories is refused before anyone
            // learns whether it exists.
            Err(e) => {
                return Err(if self.inside(path) && !has_dot_dot(path) {
                    PathError::File(Error::io(path, "opening", e))
                } else {
                    refused()
                });
            }
        };
        if !self.inside(&real) {
            return Err(refused());
        }
        let file = fsutil::open_regular_nofollow(&real).map_err(PathError::File)?;
        // The file actually opened, whatever happened to the path since.
        let opened = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .map_err(|e| PathError::File(Error::io(path, "resolving the opened", e)))?;
        if !self.inside(&opened) {
            return Err(refused());
        }
        Ok(file)
    }
}

fn has_dot_dot(p: &Path) -> bool {
    p.components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_through_dot_dot_and_symlinks_are_refused() {
        let top = tempfile::tempdir().unwrap();
        let allowed = top.path().join("allowed");
        std::fs::create_dir(&allowed).unwrap();
        std::fs::write(allowed.join("ok"), b"x").unwrap();
        std::fs::write(top.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(top.path().join("secret"), allowed.join("link")).unwrap();
        let c = Confined::new(std::slice::from_ref(&allowed)).unwrap();
        assert!(c.open(&allowed.join("ok")).is_ok());
        for p in [
            allowed.join("../secret"),
            allowed.join("link"),
            top.path().join("secret"),
            PathBuf::from("allowed/ok"),
            allowed.join("../nothing-here"),
        ] {
            assert!(
                matches!(c.open(&p), Err(PathError::Refused(_))),
                "{} was not refused",
                p.display()
            );
        }
        assert!(matches!(
            c.open(&allowed.join("missing")),
            Err(PathError::File(_))
        ));
    }
}

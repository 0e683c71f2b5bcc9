//! StrictModes for key directories, as ssh does for `~/.ssh`: a
//! trusted-keys directory (`*.pub`, `trust.toml`) or a signing-keys
//! directory (`*.pem`, `keys.toml`) that group or others may write is
//! refused, because whoever can write it chooses the keys. A sticky
//! directory writable by others (`/tmp`) is refused too: anyone may add a
//! file there.
//!
//! A key file that is a symlink is followed only when it resolves to a
//! file inside the directory, through directories group and others cannot
//! write; one that leads out (or nowhere) is refused whatever the mode.
//!
//! Ownership is not checked: the write bits are what let another user
//! change a file, and a CI job running as root over a checkout owned by
//! the runner's user must keep working. See SECURITY.md.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result, TrustError};
use crate::trust::meta::{KEYS_FILE, TRUST_FILE};

/// Whether the write-permission checks apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permissions {
    /// Refuse directories and key files that group or others may write.
    Strict,
    /// Accept them (`--insecure-permissions`): anyone who can write them
    /// chooses the keys.
    InsecureAllowed,
}

static INSECURE: AtomicBool = AtomicBool::new(false);

/// Accept group- or world-writable key directories for the rest of the
/// process (`--insecure-permissions`). Symlinks out of a directory stay refused.
pub fn allow_insecure_permissions_for_this_process() {
    INSECURE.store(true, Ordering::SeqCst);
}

/// The policy in force ([`Permissions::Strict`] unless
/// [`allow_insecure_permissions_for_this_process`] was called).
pub fn current() -> Permissions {
    if INSECURE.load(Ordering::SeqCst) {
        Permissions::InsecureAllowed
    } else {
        Permissions::Strict
    }
}

/// The kind of key directory, and the files in it that are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDir {
    /// A trusted-keys directory: `*.pub` and `trust.toml`.
    Trusted,
    /// A signing-keys directory: `*.pem` and `keys.toml`.
    Signing,
}

impl KeyDir {
    fn what(self) -> &'static str {
        match self {
            KeyDir::Trusted => "trusted-keys directory",
            KeyDir::Signing => "signing-keys directory",
        }
    }

    /// What the file `name` is, if it is one of those checked.
    fn file_kind(self, name: &str) -> Option<&'static str> {
        match self {
            KeyDir::Trusted if name == TRUST_FILE => Some("trust metadata file"),
            KeyDir::Trusted if name.ends_with(".pub") => Some("public key file"),
            KeyDir::Signing if name == KEYS_FILE => Some("key metadata file"),
            KeyDir::Signing if name.ends_with(".pem") => Some("private key file"),
            // Names which token key signs: no one else may redirect it.
            KeyDir::Signing if name.ends_with(".pkcs11") => Some("token key pointer"),
            _ => None,
        }
    }
}

fn writable_by_others(mode: u32) -> bool {
    mode & 0o022 != 0
}

/// The paths found writable by group or others, first one first.
#[derive(Default)]
struct Offenders(Vec<(PathBuf, &'static str, u32)>);

impl Offenders {
    fn check(&mut self, path: &Path, what: &'static str, mode: u32, policy: Permissions) {
        if policy == Permissions::Strict && writable_by_others(mode) {
            self.0.push((path.to_path_buf(), what, mode & 0o7777));
        }
    }

    fn into_result(self) -> Result<()> {
        let all: Vec<PathBuf> = self.0.iter().map(|(p, _, _)| p.clone()).collect();
        match self.0.into_iter().next() {
            None => Ok(()),
            Some((path, what, mode)) => Err(Error::Trust(TrustError::InsecurePermissions {
                path,
                what,
                mode,
                all,
            })),
        }
    }
}

/// Check `dir` (an existing directory) and the key and metadata files in
/// it under the process's policy ([`current`]).
pub fn check_dir(dir: &Path, kind: KeyDir) -> Result<()> {
    check_dir_with(dir, kind, current())
}

/// [`check_dir`] with an explicit policy.
pub fn check_dir_with(dir: &Path, kind: KeyDir, policy: Permissions) -> Result<()> {
    let mut bad = Offenders::default();
    let meta = std::fs::metadata(dir).map_err(|e| Error::io(dir, "reading", e))?;
    bad.check(dir, kind.what(), meta.permissions().mode(), policy);
    let canon_dir = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, "resolving", e))?;
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, "listing", e))?;
    let mut entries = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(dir, "listing", e))?;
        entries.push(entry.path());
    }
    entries.sort();
    for path in entries {
        let Some(what) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| kind.file_kind(n))
        else {
            continue;
        };
        let lmeta = std::fs::symlink_metadata(&path).map_err(|e| Error::io(&path, "reading", e))?;
        if lmeta.file_type().is_symlink() {
            let target = resolve_inside(&path, dir, &canon_dir, policy, &mut bad)?;
            let tmeta = std::fs::metadata(&target).map_err(|e| Error::io(&target, "reading", e))?;
            bad.check(&target, what, tmeta.permissions().mode(), policy);
        } else {
            bad.check(&path, what, lmeta.permissions().mode(), policy);
        }
    }
    bad.into_result()
}

/// Check one key file named on its own (not found in a key directory),
/// under the process's policy: refused if group or others may write it.
/// `what` names it in the error ("token key pointer", ...).
pub fn check_file(path: &Path, what: &'static str) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, "reading", e))?;
    let mut bad = Offenders::default();
    bad.check(path, what, meta.permissions().mode(), current());
    bad.into_result()
}

/// Where the symlink `link` (in `dir`) leads, if that is a file inside
/// `dir` reached through directories group and others cannot write.
fn resolve_inside(
    link: &Path,
    dir: &Path,
    canon_dir: &Path,
    policy: Permissions,
    bad: &mut Offenders,
) -> Result<PathBuf> {
    let outside = |target: String| {
        Error::Trust(TrustError::KeyOutsideDir {
            path: link.to_path_buf(),
            dir: dir.to_path_buf(),
            target,
        })
    };
    let target = match std::fs::canonicalize(link) {
        Ok(t) => t,
        Err(_) => {
            let shown = std::fs::read_link(link)
                .map(|t| format!("to {}, which does not exist", t.display()))
                .unwrap_or_else(|_| "to nothing".into());
            return Err(outside(shown));
        }
    };
    let Ok(rest) = target.strip_prefix(canon_dir) else {
        return Err(outside(format!("to {}", target.display())));
    };
    // A subdirectory on the way must not be writable by others either.
    let mut sub = canon_dir.to_path_buf();
    let parts: Vec<_> = rest.components().collect();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        sub.push(part);
        let m = std::fs::metadata(&sub).map_err(|e| Error::io(&sub, "reading", e))?;
        bad.check(
            &sub,
            "directory of a key file",
            m.permissions().mode(),
            policy,
        );
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn writable_dirs_and_files_are_refused_unless_allowed() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        chmod(dir, 0o755);
        std::fs::write(dir.join("a.pub"), "x").unwrap();
        chmod(&dir.join("a.pub"), 0o644);
        std::fs::write(dir.join("other.txt"), "x").unwrap();
        chmod(&dir.join("other.txt"), 0o666);
        check_dir_with(dir, KeyDir::Trusted, Permissions::Strict).unwrap();
        for (p, mode) in [(dir.to_path_buf(), 0o1777), (dir.join("a.pub"), 0o664)] {
            chmod(&p, mode);
            let e = check_dir_with(dir, KeyDir::Trusted, Permissions::Strict).unwrap_err();
            assert_eq!(e.code(), "KEY_PERMISSIONS", "{e}");
            assert!(
                matches!(&e, Error::Trust(TrustError::InsecurePermissions { all, .. }) if all == std::slice::from_ref(&p)),
                "{e}"
            );
            check_dir_with(dir, KeyDir::Trusted, Permissions::InsecureAllowed).unwrap();
            chmod(&p, if p == dir { 0o755 } else { 0o644 });
        }
        // Several at once: one command fixes them all.
        chmod(dir, 0o775);
        chmod(&dir.join("a.pub"), 0o664);
        let e = check_dir_with(dir, KeyDir::Trusted, Permissions::Strict).unwrap_err();
        // Both paths, for the one `chmod go-w` the command line suggests.
        let want = vec![dir.to_path_buf(), dir.join("a.pub")];
        assert!(
            matches!(&e, Error::Trust(TrustError::InsecurePermissions { all, .. }) if all == &want),
            "{e}"
        );
    }

    #[test]
    fn symlinks_out_of_the_directory_are_refused_even_when_allowed() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("trusted");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("real.key"), "x").unwrap();
        std::fs::write(d.path().join("outside.pub"), "x").unwrap();
        std::os::unix::fs::symlink("real.key", dir.join("in.pub")).unwrap();
        check_dir_with(&dir, KeyDir::Trusted, Permissions::Strict).unwrap();
        std::os::unix::fs::symlink("../outside.pub", dir.join("out.pub")).unwrap();
        for policy in [Permissions::Strict, Permissions::InsecureAllowed] {
            let e = check_dir_with(&dir, KeyDir::Trusted, policy).unwrap_err();
            assert_eq!(e.code(), "KEY_OUTSIDE_DIR", "{e}");
        }
        std::fs::remove_file(dir.join("out.pub")).unwrap();
        std::os::unix::fs::symlink("gone", dir.join("dangling.pub")).unwrap();
        let e = check_dir_with(&dir, KeyDir::Trusted, Permissions::Strict).unwrap_err();
        assert_eq!(e.code(), "KEY_OUTSIDE_DIR", "{e}");
    }
}

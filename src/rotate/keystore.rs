//! The signing-keys directory of a coordinator: private keys (`*.pem`) and
//! their windows in `keys.toml`. `sign-package --keys-dir` signs with every
//! key inside its window; `key-rotate` maintains it (see [`crate::rotate`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::{Error, FileError, Invalid, KeyDirKind, Result, TrustError};
use crate::fsutil;
use crate::keys::pkcs11::Access;
use crate::keys::{KeySource, Passphrase, encoding};
use crate::trust::meta::{KEYS_FILE, Metadata};

/// The private key files of `dir`: every `*.pem`, sorted.
pub fn pem_files(dir: &Path) -> Result<Vec<PathBuf>> {
    key_files_with(dir, &["pem"])
}

/// The keys of `dir`: every `*.pem` and every `*.pkcs11` (a pointer to a
/// key on a token), sorted; never the orphans of uncommitted rotations.
pub fn key_files(dir: &Path) -> Result<Vec<PathBuf>> {
    key_files_with(dir, &["pem", crate::keys::pkcs11::POINTER_EXT])
}

fn key_files_with(dir: &Path, exts: &[&str]) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(dir).map_err(|e| Error::io(dir, "reading", e))?;
    if !meta.is_dir() {
        return Err(Invalid::NotAKeyDir {
            path: dir.to_path_buf(),
            kind: KeyDirKind::SigningKeys,
        }
        .into());
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, "listing", e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| exts.iter().any(|e| x == *e)))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".pkgsign-"))
        })
        .collect();
    v.sort();
    Ok(v)
}

/// A key of the directory: a key file, or a key on a token.
pub type SigningKey = Box<dyn KeySource>;

/// A key of the directory that was left out, and why.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// The file.
    pub path: PathBuf,
    /// One line.
    pub reason: String,
}

/// Load the keys of `dir` usable at `now`: inside their window and not
/// revoked (keys without metadata always). A key file present under two
/// names (during a rotation) is used once.
///
/// Completes an interrupted rotation first, under the directory's lock, so
/// a half-rotated directory is never used.
pub fn active_keys(
    dir: &Path,
    now: u64,
    passphrase: Option<&Passphrase>,
    token: &Access,
) -> Result<(Vec<SigningKey>, Vec<Skipped>)> {
    if !dir.is_dir() {
        return Err(match std::fs::metadata(dir) {
            Err(e) => Error::io(dir, "reading", e),
            Ok(_) => Invalid::NotAKeyDir {
                path: dir.to_path_buf(),
                kind: KeyDirKind::SigningKeys,
            }
            .into(),
        });
    }
    // StrictModes: refuse a directory (or key file) others may write.
    crate::trust::perms::check_dir(dir, crate::trust::perms::KeyDir::Signing)?;
    // A read-only keys directory (a CI secret mount) cannot be mid-rotation
    // by this host; sign without the lock then.
    let _lock = match fsutil::lock_dir(dir, true) {
        Ok(lock) => {
            crate::rotate::recover_locked(dir)?;
            Some(lock)
        }
        Err(Error::File(FileError::Io { source, .. }))
            if matches!(
                source.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ) && !dir.join(crate::rotate::JOURNAL).exists() =>
        {
            None
        }
        Err(e) => return Err(e),
    };
    let meta = Metadata::load(dir, KEYS_FILE)?;
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    let mut seen = HashSet::new();
    for path in key_files(dir)? {
        let key: Box<dyn KeySource> = if crate::keys::pkcs11::is_pointer(&path) {
            let uri = crate::keys::pkcs11::read_pointer(&path)?;
            Box::new(crate::keys::pkcs11::TokenKey::open(&uri, token)?)
        } else {
            Box::new(encoding::load_private_key(&path, passphrase)?)
        };
        let fp = key.public_key().fingerprint();
        if !seen.insert(fp.clone()) {
            continue;
        }
        // The one rule of the trust store: a key is used to sign exactly
        // when a worker would accept it now.
        if let Some(st) = meta.get(&fp) {
            let standing = crate::trust::standing(st, now, None);
            if standing.refusal().is_some() {
                skipped.push(Skipped {
                    path,
                    reason: standing.explain(&format!("key {fp}")),
                });
                continue;
            }
        }
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(Error::Trust(TrustError::NoKeys(
            crate::error::NoKeys::InWindow {
                dir: dir.to_path_buf(),
            },
        )));
    }
    Ok((keys, skipped))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::keys::{KeySpec, generate};

    const T: u64 = 1_800_000_000;

    /// A stolen key that the coordinator revoked, or a key whose window has
    /// not begun, stays in the directory but never signs: `active_keys`
    /// decides by `trust::standing`, the rule workers apply, and says why.
    #[test]
    fn revoked_and_not_yet_valid_keys_never_sign() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let mut fps = Vec::new();
        for name in ["good", "revoked", "later"] {
            let k = generate(KeySpec::Ed25519).unwrap();
            fps.push(k.public_key().fingerprint());
            let pem = encoding::private_key_to_pem(&k, None).unwrap();
            fsutil::write_atomic(
                &dir.join(format!("{name}.pem")),
                pem.as_bytes(),
                0o600,
                fsutil::Replace::Never,
            )
            .unwrap();
        }
        let mut meta = Metadata::load(dir, KEYS_FILE).unwrap();
        meta.entry(&fps[1]).revoked = Some((T - 10, "stolen".into()));
        meta.entry(&fps[2]).not_before = Some(T + 10);
        meta.save().unwrap();
        let (keys, skipped) = active_keys(dir, T, None, &Access::default()).unwrap();
        let used: Vec<_> = keys.iter().map(|k| k.public_key().fingerprint()).collect();
        assert_eq!(used, [fps[0].clone()]);
        let reasons: Vec<&str> = skipped.iter().map(|s| s.reason.as_str()).collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("revoked") && r.contains("stolen")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("not valid before")),
            "{reasons:?}"
        );
    }
}

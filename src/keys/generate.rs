//! Key generation and writing a key pair to disk.

use std::path::{Path, PathBuf};

use rand_core::UnwrapErr;

use super::encoding::{Passphrase, private_key_to_pem, public_key_to_pem};
use super::{PrivateKey, PublicKey};
use crate::error::{Error, Invalid, Result};
use crate::fsutil::{self, Replace};

/// What kind of key to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// Ed25519.
    Ed25519,
    /// RSA with 2048, 3072 or 4096 bits.
    Rsa {
        /// Modulus size.
        bits: usize,
    },
}

/// Generate a new private key from the operating system's random generator.
pub fn generate(spec: KeySpec) -> Result<PrivateKey> {
    let mut rng = UnwrapErr(getrandom::SysRng);
    match spec {
        KeySpec::Ed25519 => Ok(PrivateKey::Ed25519(ed25519_dalek::SigningKey::generate(
            &mut rng,
        ))),
        KeySpec::Rsa { bits } => {
            if ![2048, 3072, 4096].contains(&bits) {
                return Err(Invalid::RsaBits { bits }.into());
            }
            let key = rsa::PrivateKey::new(&mut rng, bits).map_err(|e| Error::Crypto {
                what: "RSA key generation",
                reason: e.to_string(),
            })?;
            Ok(PrivateKey::Rsa(Box::new(key)))
        }
    }
}

/// Where a key pair was written.
#[derive(Debug, Clone)]
pub struct WrittenPair {
    /// The private key file (`NAME.pem`, mode 0600).
    pub private_path: PathBuf,
    /// The public key file (`NAME.pub`, mode 0644).
    pub public_path: PathBuf,
    /// The public key.
    pub public: PublicKey,
}

/// Write `key` as `dir/name.pem` (0600) and `dir/name.pub` (0644).
///
/// Without `replace == Replace::Allowed`, fails if either file exists and
/// writes nothing. Each file is written atomically and never through a
/// symlink.
pub fn write_key_pair(
    dir: &Path,
    name: &str,
    key: &PrivateKey,
    passphrase: Option<&Passphrase>,
    replace: Replace,
) -> Result<WrittenPair> {
    check_name(name)?;
    let private_path = dir.join(format!("{name}.pem"));
    let public_path = dir.join(format!("{name}.pub"));
    if replace == Replace::Never {
        fsutil::ensure_absent(&private_path)?;
        fsutil::ensure_absent(&public_path)?;
    }
    let public = key.public_key();
    let private_pem = private_key_to_pem(key, passphrase)?;
    let public_pem = public_key_to_pem(&public)?;
    fsutil::write_atomic(&private_path, private_pem.as_bytes(), 0o600, replace)?;
    if let Err(e) = fsutil::write_atomic(&public_path, public_pem.as_bytes(), 0o644, replace) {
        if replace == Replace::Never {
            // We created the private key a moment ago; do not leave half a pair.
            let _ = std::fs::remove_file(&private_path);
        }
        return Err(e);
    }
    Ok(WrittenPair {
        private_path,
        public_path,
        public,
    })
}

/// The whole `keygen` workflow: check the name, create `dir` (0700) if it
/// is missing, refuse existing files before the (for RSA, slow) generation
/// unless `replace` allows it, generate a key of `spec` and write the pair
/// with [`write_key_pair`].
pub fn keygen(
    dir: &Path,
    name: &str,
    spec: KeySpec,
    passphrase: Option<&Passphrase>,
    replace: Replace,
) -> Result<WrittenPair> {
    check_name(name)?;
    fsutil::create_private_dir_all(dir)?;
    if replace == Replace::Never {
        for ext in ["pem", "pub"] {
            fsutil::ensure_absent(&dir.join(format!("{name}.{ext}")))?;
        }
    }
    let key = generate(spec)?;
    write_key_pair(dir, name, &key, passphrase, replace)
}

/// A key name is a plain file name stem: no path separators, not hidden.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '+'));
    if ok {
        Ok(())
    } else {
        Err(Invalid::KeyName {
            name: name.to_string(),
        }
        .into())
    }
}

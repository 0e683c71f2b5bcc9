//! OpenSSH public keys: the one-line form of `authorized_keys` and
//! `allowed_signers` (`ssh-ed25519 AAAA... comment`), read and written
//! through the `ssh-key` crate's encoding (no cryptography of its own), for
//! `trust add` and SSH signatures.
#![forbid(unsafe_code)]

use std::path::Path;

use rsa::traits::PublicKeyParts as _;
use ssh_key::Mpint;
use ssh_key::public::{Ed25519PublicKey, KeyData, RsaPublicKey};

use crate::error::{Error, Result};
use crate::keys::PublicKey;

/// The OpenSSH form of a public key.
pub fn key_data(pk: &PublicKey) -> Result<KeyData> {
    let bad = |e: ssh_key::Error| Error::Encoding {
        what: "writing an OpenSSH public key",
        reason: e.to_string(),
    };
    match pk {
        PublicKey::Ed25519(k) => Ok(KeyData::Ed25519(Ed25519PublicKey(k.to_bytes()))),
        PublicKey::Rsa(k) => {
            let e = k.e().to_be_bytes();
            let n = k.n().to_be_bytes();
            Ok(KeyData::Rsa(RsaPublicKey {
                e: Mpint::from_positive_bytes(&e).map_err(bad)?,
                n: Mpint::from_positive_bytes(&n).map_err(bad)?,
            }))
        }
    }
}

/// pkgsign's form of an OpenSSH public key (Ed25519 or RSA).
pub fn public_key(kd: &KeyData, path: &Path) -> Result<PublicKey> {
    let unsupported = |what: &str| {
        Error::from(crate::error::KeyError::Unsupported {
            path: path.to_path_buf(),
            reason: format!("{what}: pkgsign uses Ed25519 and RSA keys"),
        })
    };
    match kd {
        KeyData::Ed25519(k) => ed25519_dalek::VerifyingKey::from_bytes(&k.0)
            .map(PublicKey::Ed25519)
            .map_err(|_| Error::key_malformed(path, "an Ed25519 key that does not decode")),
        KeyData::Rsa(k) => {
            let (Some(n), Some(e)) = (k.n.as_positive_bytes(), k.e.as_positive_bytes()) else {
                return Err(Error::key_malformed(
                    path,
                    "an RSA key with a negative number",
                ));
            };
            let bits = |b: &[u8]| u32::try_from(b.len().saturating_mul(8)).unwrap_or(u32::MAX);
            let n = rsa::BoxedUint::from_be_slice(n, bits(n))
                .map_err(|_| Error::key_malformed(path, "an RSA modulus that does not decode"))?;
            let e = rsa::BoxedUint::from_be_slice(e, bits(e).max(64))
                .map_err(|_| Error::key_malformed(path, "an RSA exponent that does not decode"))?;
            let key = rsa::PublicKey::new(n, e)
                .map_err(|e| Error::key_malformed(path, format!("an RSA key rsa refuses: {e}")))?;
            PublicKey::rsa(key, path)
        }
        other => Err(unsupported(other.algorithm().as_str())),
    }
}

/// `ssh-ed25519 AAAA... COMMENT`: the key as `authorized_keys` and
/// `allowed_signers` spell it.
pub fn openssh_public_key(pk: &PublicKey, comment: &str) -> Result<String> {
    ssh_key::PublicKey::new(key_data(pk)?, comment)
        .to_openssh()
        .map_err(|e| Error::Encoding {
            what: "writing an OpenSSH public key",
            reason: e.to_string(),
        })
}

/// Whether `text` looks like an OpenSSH public key line (or an
/// `allowed_signers` line) rather than PEM.
pub fn is_openssh_public_key(text: &str) -> bool {
    let line = text.trim();
    !line.starts_with("-----") && line.lines().count() == 1 && line.contains(" AAAA")
}

/// Parse an OpenSSH public key line (`ssh-ed25519 AAAA... [comment]`), or
/// an `allowed_signers` line (`principals [options] ssh-ed25519 AAAA...`):
/// exactly one key, Ed25519 or RSA.
pub fn parse_openssh_public_key(path: &Path, text: &str) -> Result<PublicKey> {
    let line = text.trim();
    if line.lines().count() != 1 {
        return Err(Error::key_malformed(
            path,
            "an OpenSSH public key is one line",
        ));
    }
    // The key type and its base64 are two consecutive fields; in an
    // allowed_signers line principals (and options) come first.
    let fields: Vec<&str> = line.split_whitespace().collect();
    let at = fields
        .iter()
        .position(|f| matches!(*f, "ssh-ed25519" | "ssh-rsa"))
        .ok_or_else(|| Error::key_malformed(path, "no ssh-ed25519 or ssh-rsa key on the line"))?;
    let key_text = fields
        .get(at..(at + 2).min(fields.len()))
        .unwrap_or_default()
        .join(" ");
    let parsed = ssh_key::PublicKey::from_openssh(&key_text)
        .map_err(|e| Error::key_malformed(path, format!("not an OpenSSH public key: {e}")))?;
    public_key(parsed.key_data(), path)
}

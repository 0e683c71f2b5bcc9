//! SSH signatures (OpenSSH's `PROTOCOL.sshsig`), as `ssh-keygen -Y sign`
//! makes them and `ssh-keygen -Y verify` checks them: an armored
//! `-----BEGIN SSH SIGNATURE-----` file holding the public key, a
//! namespace, the hash algorithm and the signature over
//! `"SSHSIG" || string(namespace) || string("") || string(hash) ||
//! string(H(message))`.
//!
//! The `ssh-key` crate parses and writes the armored file and OpenSSH
//! public keys (encoding only); hashing, signing and verifying are
//! pkgsign's own, through the one signer under [`Domain::SshSig`], so a key
//! on a token signs SSH signatures too, and every signature is checked.
#![forbid(unsafe_code)]

use std::path::Path;

use ssh_key::{Algorithm, HashAlg as SshHash, LineEnding, SshSig};

pub use crate::keys::openssh::{
    is_openssh_public_key, key_data, openssh_public_key, parse_openssh_public_key, public_key,
};

use crate::digest::HashAlg;
use crate::error::{Error, ParseError, Result};
use crate::keys::PublicKey;
use crate::sign::domain::Domain;

/// The namespace pkgsign signs under, and requires, unless told otherwise.
pub const DEFAULT_NAMESPACE: &str = "pkgsign";

/// The armor's first line.
pub const BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";

/// An SSH signature file, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSignature {
    /// The signer's public key (carried in the file; trusted only if the
    /// trusted keys say so).
    pub key: PublicKey,
    /// What the signature is for (`ssh-keygen -Y verify -n`).
    pub namespace: String,
    /// The hash of the message: SHA-512 or SHA-256.
    pub hash: HashAlg,
    /// `ssh-ed25519` or `rsa-sha2-512`.
    pub algorithm: &'static str,
    /// The bare signature.
    pub signature: Vec<u8>,
}

fn malformed(path: &Path, reason: impl Into<String>) -> Error {
    ParseError::SignatureMalformed {
        path: path.to_path_buf(),
        line: None,
        reason: reason.into(),
    }
    .into()
}

fn put_string(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(b);
}

/// What follows the `SSHSIG` magic in what is signed, for `namespace` and
/// the message's `hash` (made with `alg`).
pub fn signed_body(namespace: &str, alg: HashAlg, hash: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + namespace.len() + hash.len());
    put_string(&mut out, namespace.as_bytes());
    put_string(&mut out, b"");
    put_string(&mut out, alg.name().as_bytes());
    put_string(&mut out, hash);
    out
}

/// Parse an armored SSH signature.
pub fn parse(path: &Path, data: &[u8]) -> Result<SshSignature> {
    let sig = SshSig::from_pem(data)
        .map_err(|e| malformed(path, format!("not an SSH signature: {e}")))?;
    if !sig.reserved().is_empty() {
        return Err(malformed(path, "the reserved field is not empty"));
    }
    let key = public_key(sig.public_key(), path)?;
    let hash = match sig.hash_alg() {
        SshHash::Sha512 => HashAlg::Sha512,
        SshHash::Sha256 => HashAlg::Sha256,
        other => return Err(malformed(path, format!("hash {other} is not used"))),
    };
    let algorithm = match (sig.signature().algorithm(), &key) {
        (Algorithm::Ed25519, PublicKey::Ed25519(_)) => "ssh-ed25519",
        (
            Algorithm::Rsa {
                hash: Some(SshHash::Sha512),
            },
            PublicKey::Rsa(_),
        ) => "rsa-sha2-512",
        (a, _) => {
            return Err(malformed(
                path,
                format!(
                    "signature algorithm {a} is not accepted (pkgsign verifies ssh-ed25519 and rsa-sha2-512)"
                ),
            ));
        }
    };
    Ok(SshSignature {
        key,
        namespace: sig.namespace().to_string(),
        hash,
        algorithm,
        signature: sig.signature_bytes().to_vec(),
    })
}

/// The armored file of `signature`, made by `key` over the message whose
/// hash (with `hash`) is in the signed body, for `namespace`.
pub fn armor(key: &PublicKey, namespace: &str, hash: HashAlg, signature: &[u8]) -> Result<String> {
    let enc = |e: ssh_key::Error| Error::Encoding {
        what: "writing an SSH signature",
        reason: e.to_string(),
    };
    let algorithm = match key {
        PublicKey::Ed25519(_) => Algorithm::Ed25519,
        PublicKey::Rsa(_) => Algorithm::Rsa {
            hash: Some(SshHash::Sha512),
        },
    };
    let hash = match hash {
        HashAlg::Sha256 => SshHash::Sha256,
        _ => SshHash::Sha512,
    };
    let sig = ssh_key::Signature::new(algorithm, signature.to_vec()).map_err(enc)?;
    SshSig::new(key_data(key)?, namespace, hash, sig)
        .and_then(|s| s.to_pem(LineEnding::LF))
        .map_err(enc)
}

/// The domain SSH signatures are made and checked under.
pub const DOMAIN: Domain = Domain::SshSig;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeySource, KeySpec, LocalKey, generate};
    use crate::sign::Signer;
    use crate::sign::domain::{Message, verify};

    #[test]
    fn a_signature_written_reads_back_and_verifies_and_another_namespace_does_not() {
        for spec in [KeySpec::Ed25519, KeySpec::Rsa { bits: 2048 }] {
            let key = LocalKey::new(generate(spec).unwrap(), "k".into());
            let hash = [7u8; 64];
            let body = signed_body("pkgsign", HashAlg::Sha512, &hash);
            let sig = Signer::new(&key)
                .sign(DOMAIN, Message::Bytes(&body))
                .unwrap();
            let text = armor(key.public_key(), "pkgsign", HashAlg::Sha512, &sig).unwrap();
            assert!(text.starts_with(BEGIN));
            let parsed = parse(Path::new("s"), text.as_bytes()).unwrap();
            assert_eq!(&parsed.key, key.public_key());
            assert_eq!(parsed.namespace, "pkgsign");
            assert!(verify(
                DOMAIN,
                &parsed.key,
                Message::Bytes(&body),
                &parsed.signature
            ));
            let other = signed_body("file", HashAlg::Sha512, &hash);
            assert!(!verify(
                DOMAIN,
                &parsed.key,
                Message::Bytes(&other),
                &parsed.signature
            ));
            let line = openssh_public_key(key.public_key(), "me").unwrap();
            assert_eq!(
                &parse_openssh_public_key(Path::new("p"), &line).unwrap(),
                key.public_key()
            );
            let signers = format!("me@example namespaces=\"pkgsign\" {line}");
            assert_eq!(
                &parse_openssh_public_key(Path::new("p"), &signers).unwrap(),
                key.public_key()
            );
        }
    }
}

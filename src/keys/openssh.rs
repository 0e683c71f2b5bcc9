//! OpenSSH public keys: the one-line form of `authorized_keys` and
//! `allowed_signers` (`ssh-ed25519 AAAA... comment`), read and written
//! through the `ssh-key` crate's encoding (no cryptography of its own), for
//! `trust add` and SSH signatures.
#![forbid(unsafe_code)]

use std::path::Path;

use rsa::traits::PublicKeyParts as _;
use ssh_key::Mpint;
use ssh_key::public::{Ed25519PublicKey, KeyData, RsaPublicKey};
use zeroize::Zeroizing;

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

/// The most bcrypt-pbkdf rounds an encrypted OpenSSH key may ask for.
/// `ssh-keygen` uses 16 (`-a` sets it; 100 is generous); each round costs
/// milliseconds, so a file asking for millions is refused rather than
/// left to hang the signer.
pub const MAX_BCRYPT_ROUNDS: u32 = 1024;

/// Parse an OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`, as
/// `ssh-keygen` writes Ed25519 keys and, since OpenSSH 7.8, every key),
/// plain or encrypted with a passphrase (bcrypt-pbkdf; aes256-ctr, as
/// `ssh-keygen` does, or the other ciphers OpenSSH offers). Ed25519 or
/// RSA only, exactly one key; the private half must give the public half
/// the file states.
pub fn parse_openssh_private_key(
    path: &Path,
    text: &str,
    passphrase: Option<&super::encoding::Passphrase>,
) -> Result<super::PrivateKey> {
    use crate::error::KeyError;
    use ssh_key::private::KeypairData;
    let parsed = ssh_key::PrivateKey::from_openssh(text).map_err(|e| match e {
        // ECDSA, DSA and security keys: the crate is built for the two
        // key types pkgsign uses, so it reads no other.
        ssh_key::Error::AlgorithmUnknown | ssh_key::Error::AlgorithmUnsupported { .. } => {
            Error::from(KeyError::Unsupported {
                path: path.to_path_buf(),
                reason: "an OpenSSH key of a type pkgsign does not use (ECDSA, DSA or a security key): pkgsign uses Ed25519 and RSA keys".into(),
            })
        }
        e => Error::key_malformed(path, format!("not an OpenSSH private key: {e}")),
    })?;
    let decrypted;
    let key = if parsed.is_encrypted() {
        if let ssh_key::Kdf::Bcrypt { rounds, .. } = parsed.kdf()
            && *rounds > MAX_BCRYPT_ROUNDS
        {
            return Err(Error::key_unsupported(
                path,
                format!(
                    "the key asks for {rounds} bcrypt-pbkdf rounds (at most {MAX_BCRYPT_ROUNDS}); refusing to derive the key: re-encrypt it with `ssh-keygen -p -a 64 -f KEY`"
                ),
            ));
        }
        let Some(pass) = passphrase else {
            return Err(Error::Key(KeyError::PassphraseRequired {
                path: path.to_path_buf(),
            }));
        };
        decrypted = parsed
            .decrypt(pass.expose_secret_bytes())
            .map_err(|e| match e {
                // The check integers differ: the passphrase is wrong (an
                // authenticated cipher says so as a crypto error too).
                ssh_key::Error::Crypto => Error::Key(KeyError::PassphraseWrong {
                    path: path.to_path_buf(),
                }),
                other => Error::key_unsupported(
                    path,
                    format!(
                        "cannot decrypt this OpenSSH key ({other}); re-encrypt it with `ssh-keygen -p -f KEY`"
                    ),
                ),
            })?;
        &decrypted
    } else {
        &parsed
    };
    let stated = public_key(parsed.public_key().key_data(), path)?;
    let private = match key.key_data() {
        KeypairData::Ed25519(k) => {
            let seed = Zeroizing::new(k.private.to_bytes());
            super::PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))
        }
        KeypairData::Rsa(k) => {
            let int = |m: &Mpint, what: &str| -> Result<rsa::BoxedUint> {
                let b = m.as_positive_bytes().ok_or_else(|| {
                    Error::key_malformed(path, format!("an RSA {what} that is not positive"))
                })?;
                let bits = u32::try_from(b.len().saturating_mul(8)).unwrap_or(u32::MAX);
                rsa::BoxedUint::from_be_slice(b, bits.max(64)).map_err(|_| {
                    Error::key_malformed(path, format!("an RSA {what} that does not decode"))
                })
            };
            // `stated` checked the modulus size before this arithmetic.
            let key = rsa::PrivateKey::from_components(
                int(&k.public.n, "modulus")?,
                int(&k.public.e, "exponent")?,
                int(&k.private.d, "private exponent")?,
                vec![int(&k.private.p, "prime")?, int(&k.private.q, "prime")?],
            )
            .map_err(|e| {
                Error::key_malformed(path, format!("inconsistent RSA private key: {e}"))
            })?;
            super::PrivateKey::Rsa(Box::new(key))
        }
        KeypairData::Encrypted(_) => {
            return Err(Error::key_malformed(path, "the key is still encrypted"));
        }
        other => {
            return Err(Error::from(KeyError::Unsupported {
                path: path.to_path_buf(),
                reason: format!(
                    "{}: pkgsign uses Ed25519 and RSA keys",
                    other
                        .algorithm()
                        .map(|a| a.as_str().to_string())
                        .unwrap_or_else(|_| "an unknown key type".into())
                ),
            }));
        }
    };
    if private.public_key().fingerprint() != stated.fingerprint() {
        return Err(Error::key_malformed(
            path,
            "the private key does not match the public key the file states",
        ));
    }
    Ok(private)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;
    use ssh_key::private::{Ed25519Keypair, Ed25519PrivateKey, KeypairData};

    fn openssh_file(public_of: [u8; 32], seed: [u8; 32]) -> String {
        let public = ed25519_dalek::SigningKey::from_bytes(&public_of).verifying_key();
        let pair = Ed25519Keypair {
            public: Ed25519PublicKey(public.to_bytes()),
            private: Ed25519PrivateKey::from_bytes(&seed),
        };
        ssh_key::PrivateKey::new(KeypairData::Ed25519(pair), "t")
            .unwrap()
            .to_openssh(ssh_key::LineEnding::LF)
            .unwrap()
            .to_string()
    }

    #[test]
    fn an_ed25519_seed_must_give_the_public_key_the_file_states() {
        let path = Path::new("id_ed25519");
        let good = parse_openssh_private_key(path, &openssh_file([7; 32], [7; 32]), None).unwrap();
        assert_eq!(
            good.public_key().fingerprint(),
            PublicKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key())
                .fingerprint()
        );
        // The OpenSSH format stores the public key beside the seed, and
        // the ssh-key crate checks only that the two copies of the public
        // key agree: a seed of another key is found here.
        let err =
            parse_openssh_private_key(path, &openssh_file([7; 32], [8; 32]), None).unwrap_err();
        assert_eq!(err.code(), Code::KeyMalformed, "{err}");
        assert!(err.to_string().contains("does not match"), "{err}");
    }
}

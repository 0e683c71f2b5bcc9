//! Keys: public and private Ed25519 and RSA keys, fingerprints, and the
//! [`KeySource`] trait through which every private-key operation goes.
//!
//! Reading and writing key files lives in [`encoding`]; generating keys in
//! [`generate`].
#![forbid(unsafe_code)]

pub mod encoding;
pub mod generate;
pub mod openssh;
pub mod pkcs11;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use rsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::traits::PublicKeyParts;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, KeyError, Result};

pub use encoding::Passphrase;
pub use generate::{KeySpec, generate};

/// Smallest RSA modulus accepted, in bits.
pub const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits.
pub const RSA_MAX_BITS: usize = 8192;
/// RSA-PSS salt length used for pkgsign-format signatures (the SHA-256 length).
pub const RSA_PSS_SALT_LEN: usize = 32;

/// The kind of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// Ed25519.
    Ed25519,
    /// RSA with a modulus of `bits` bits.
    Rsa {
        /// Modulus size.
        bits: usize,
    },
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyAlgorithm::Ed25519 => f.write_str("ed25519"),
            KeyAlgorithm::Rsa { bits } => write!(f, "rsa-{bits}"),
        }
    }
}

/// `SHA256:` + unpadded standard base64 of the SHA-256 of the key's
/// SubjectPublicKeyInfo DER (the form OpenSSH prints).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// Fingerprint of a SubjectPublicKeyInfo DER encoding.
    pub fn of_spki_der(der: &[u8]) -> Self {
        let digest = Sha256::digest(der);
        Fingerprint(format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
        ))
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 8 hex digits of the digest, for file names.
    pub fn short_hex(&self) -> String {
        let b64 = self.0.strip_prefix("SHA256:").unwrap_or_default();
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(b64)
            .unwrap_or_default();
        hex::encode(bytes.get(..4).unwrap_or_default())
    }
}

/// Why a text is not a key fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FingerprintError {
    /// It does not start with `SHA256:`.
    #[error("a key fingerprint starts with SHA256:")]
    NoPrefix,
    /// What follows `SHA256:` is not 43 characters of canonical unpadded base64.
    #[error("a key fingerprint is SHA256: followed by 43 base64 characters")]
    BadDigest,
}

impl FromStr for Fingerprint {
    type Err = FingerprintError;
    /// Strict: `SHA256:` and exactly 43 characters of canonical unpadded base64.
    fn from_str(s: &str) -> Result<Self, FingerprintError> {
        let b64 = s
            .strip_prefix("SHA256:")
            .ok_or(FingerprintError::NoPrefix)?;
        match base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64) {
            Ok(bytes) if bytes.len() == 32 => Ok(Fingerprint(s.to_string())),
            _ => Err(FingerprintError::BadDigest),
        }
    }
}

impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A public key.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// Ed25519.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// RSA (2048..=8192 bits, checked on construction).
    Rsa(Box<rsa::PublicKey>),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({}, {})", self.algorithm(), self.fingerprint())
    }
}

impl PublicKey {
    /// Check an RSA public key's size and wrap it.
    pub fn rsa(key: rsa::PublicKey, path: &Path) -> Result<Self> {
        let bits = key.n().bit_width_vartime() as usize;
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
            return Err(Error::Key(KeyError::TooWeak {
                path: path.to_path_buf(),
                bits,
            }));
        }
        Ok(PublicKey::Rsa(Box::new(key)))
    }

    /// The kind of key.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            PublicKey::Ed25519(_) => KeyAlgorithm::Ed25519,
            PublicKey::Rsa(k) => KeyAlgorithm::Rsa {
                bits: k.n().bit_width_vartime() as usize,
            },
        }
    }

    /// Length in bytes of a signature made by this key.
    pub fn signature_len(&self) -> usize {
        match self {
            PublicKey::Ed25519(_) => ed25519_dalek::SIGNATURE_LENGTH,
            PublicKey::Rsa(k) => k.size(),
        }
    }

    /// SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> Vec<u8> {
        use spki::EncodePublicKey;
        let doc = match self {
            PublicKey::Ed25519(k) => k.to_public_key_der(),
            PublicKey::Rsa(k) => k.to_public_key_der(),
        };
        // Encoding a key we hold in memory cannot fail; an empty DER would
        // only produce a fingerprint matching nothing.
        doc.map(|d| d.as_bytes().to_vec()).unwrap_or_default()
    }

    /// The key's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_spki_der(&self.spki_der())
    }

    /// The name of the signature scheme this key uses for pkgsign-format
    /// statements (`ed25519` or `rsa-pss-sha256`).
    pub fn statement_scheme(&self) -> Scheme {
        match self {
            PublicKey::Ed25519(_) => SCHEME_ED25519,
            PublicKey::Rsa(_) => SCHEME_RSA_PSS_SHA256,
        }
    }

    /// Verify a pkgsign-format statement signature: Ed25519 (strict) over the
    /// message, or RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt.
    pub fn verify_statement(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            PublicKey::Ed25519(k) => ed25519_dalek::Signature::from_slice(signature)
                .map(|sig| k.verify_strict(message, &sig).is_ok())
                .unwrap_or(false),
            PublicKey::Rsa(k) => {
                let vk = rsa::pss::VerifyingKey::<Sha256>::new_with_salt_len(
                    (**k).clone(),
                    RSA_PSS_SALT_LEN,
                );
                rsa::pss::Signature::try_from(signature)
                    .map(|sig| vk.verify(message, &sig).is_ok())
                    .unwrap_or(false)
            }
        }
    }

    /// Verify a raw RSA PKCS#1 v1.5 signature over a SHA-256 digest (what
    /// `openssl dgst -sha256 -sign` makes). False for Ed25519 keys.
    pub fn verify_raw_rsa_sha256(&self, digest: &[u8], signature: &[u8]) -> bool {
        match self {
            PublicKey::Ed25519(_) => false,
            PublicKey::Rsa(k) => {
                let vk = rsa::pkcs1v15::VerifyingKey::<Sha256>::new((**k).clone());
                rsa::pkcs1v15::Signature::try_from(signature)
                    .map(|sig| vk.verify_prehash(digest, &sig).is_ok())
                    .unwrap_or(false)
            }
        }
    }

    /// Whether `signature` is this RSA key's PKCS#1 v1.5 SHA-512 signature
    /// over `message` (an SSH signature's `rsa-sha2-512`).
    pub fn verify_rsa_sha512(&self, message: &[u8], signature: &[u8]) -> bool {
        use rsa::signature::Verifier as _;
        match self {
            PublicKey::Ed25519(_) => false,
            PublicKey::Rsa(k) => {
                let vk = rsa::pkcs1v15::VerifyingKey::<sha2::Sha512>::new((**k).clone());
                rsa::pkcs1v15::Signature::try_from(signature)
                    .map(|sig| vk.verify(message, &sig).is_ok())
                    .unwrap_or(false)
            }
        }
    }

    /// Start a streaming verification of a raw (pure) Ed25519 signature over
    /// a whole package. None for RSA keys or a malformed signature.
    pub fn ed25519_stream(&self, signature: &[u8]) -> Option<ed25519_dalek::StreamVerifier> {
        match self {
            PublicKey::Ed25519(k) => {
                let sig = ed25519_dalek::Signature::from_slice(signature).ok()?;
                k.verify_stream(&sig).ok()
            }
            PublicKey::Rsa(_) => None,
        }
    }
}

/// The signature scheme of a pkgsign-format statement, as its `algorithm:`
/// line (and JSON output) spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[non_exhaustive]
pub enum Scheme {
    /// Ed25519 (strict verification).
    #[serde(rename = "ed25519")]
    Ed25519,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt.
    #[serde(rename = "rsa-pss-sha256")]
    RsaPssSha256,
}

impl Scheme {
    /// The name written in signature files (`ed25519`, `rsa-pss-sha256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Ed25519 => "ed25519",
            Scheme::RsaPssSha256 => "rsa-pss-sha256",
        }
    }

    /// The scheme of an `algorithm:` line; `None` for any other spelling.
    pub fn from_name(name: &str) -> Option<Scheme> {
        [Scheme::Ed25519, Scheme::RsaPssSha256]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Scheme> for serde_json::Value {
    fn from(s: Scheme) -> Self {
        serde_json::Value::from(s.as_str())
    }
}

/// Ed25519 statement signatures.
pub const SCHEME_ED25519: Scheme = Scheme::Ed25519;
/// RSA-PSS statement signatures.
pub const SCHEME_RSA_PSS_SHA256: Scheme = Scheme::RsaPssSha256;

/// A private key held in memory. It has no `Debug` that shows secrets, and
/// its key material is zeroized when dropped (by the underlying crates).
#[allow(clippy::large_enum_variant)] // A handful per process; boxing buys nothing.
pub enum PrivateKey {
    /// Ed25519.
    Ed25519(ed25519_dalek::SigningKey),
    /// RSA.
    Rsa(Box<rsa::PrivateKey>),
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PrivateKey({}, <redacted>)",
            self.public_key().fingerprint()
        )
    }
}

impl PrivateKey {
    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            PrivateKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
            PrivateKey::Rsa(k) => PublicKey::Rsa(Box::new(k.to_public_key())),
        }
    }
}

/// What a [`KeySource`] is asked to sign.
#[derive(Debug, Clone, Copy)]
pub enum SignRequest<'a> {
    /// A pkgsign-format statement: Ed25519 over the bytes, or RSA-PSS-SHA256
    /// over the bytes.
    Statement(&'a [u8]),
    /// Raw format, Ed25519: pure Ed25519 over the whole package.
    RawEd25519(&'a [u8]),
    /// Raw format, RSA: PKCS#1 v1.5 over this SHA-256 digest of the package.
    RawRsaSha256Digest(&'a [u8]),
    /// RSA PKCS#1 v1.5 with SHA-512 over these bytes (an SSH signature's
    /// `rsa-sha2-512`).
    RsaSha512(&'a [u8]),
}

/// The one interface to private-key operations.
///
/// The signer never touches key material directly: a key held in a file
/// ([`LocalKey`]), or later in an HSM over PKCS#11 or a cloud KMS, is used
/// through this trait only.
pub trait KeySource {
    /// The public key of this source.
    fn public_key(&self) -> &PublicKey;
    /// Where the key came from, for messages (a path, or a URI).
    fn describe(&self) -> String;
    /// Sign as requested; the result is the bare signature bytes.
    fn sign(&self, request: SignRequest<'_>) -> Result<Vec<u8>>;
}

/// A private key loaded from a file.
pub struct LocalKey {
    private: PrivateKey,
    public: PublicKey,
    path: PathBuf,
}

impl LocalKey {
    /// Wrap a private key.
    pub fn new(private: PrivateKey, path: PathBuf) -> Self {
        let public = private.public_key();
        LocalKey {
            private,
            public,
            path,
        }
    }

    /// The file the key was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The private key (for writing it out at generation time).
    pub fn private_key(&self) -> &PrivateKey {
        &self.private
    }
}

fn crypto(what: &'static str) -> impl Fn(rsa::signature::Error) -> Error {
    move |e| Error::Crypto {
        what,
        reason: e.to_string(),
    }
}

impl KeySource for LocalKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn sign(&self, request: SignRequest<'_>) -> Result<Vec<u8>> {
        match (&self.private, request) {
            (PrivateKey::Ed25519(k), SignRequest::Statement(m) | SignRequest::RawEd25519(m)) => {
                Ok(k.sign(m).to_bytes().to_vec())
            }
            (PrivateKey::Rsa(k), SignRequest::Statement(m)) => {
                let sk = rsa::pss::SigningKey::<Sha256>::new_with_salt_len(
                    (**k).clone(),
                    RSA_PSS_SALT_LEN,
                );
                let sig = sk.try_sign(m).map_err(crypto("RSA-PSS signing"))?;
                Ok(sig.to_vec())
            }
            (PrivateKey::Rsa(k), SignRequest::RawRsaSha256Digest(d)) => {
                let sk = rsa::pkcs1v15::SigningKey::<Sha256>::new((**k).clone());
                let sig = sk
                    .sign_prehash(d)
                    .map_err(crypto("RSA PKCS#1 v1.5 signing"))?;
                Ok(sig.to_vec())
            }
            (PrivateKey::Rsa(k), SignRequest::RsaSha512(m)) => {
                let sk = rsa::pkcs1v15::SigningKey::<sha2::Sha512>::new((**k).clone());
                let sig = sk
                    .try_sign(m)
                    .map_err(crypto("RSA PKCS#1 v1.5 SHA-512 signing"))?;
                Ok(sig.to_vec())
            }
            (
                PrivateKey::Ed25519(_),
                SignRequest::RawRsaSha256Digest(_) | SignRequest::RsaSha512(_),
            )
            | (PrivateKey::Rsa(_), SignRequest::RawEd25519(_)) => Err(Error::Crypto {
                what: "signing",
                reason: format!(
                    "{}: request does not match the key's algorithm {}",
                    self.path.display(),
                    self.public.algorithm()
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_parse_is_strict() {
        let fp = Fingerprint::of_spki_der(b"x");
        assert_eq!(fp.as_str().len(), 7 + 43);
        assert_eq!(fp.as_str().parse::<Fingerprint>().unwrap(), fp);
        assert!("sha256:abc".parse::<Fingerprint>().is_err());
        assert!(format!("{fp}=").parse::<Fingerprint>().is_err());
        assert!("SHA256:".parse::<Fingerprint>().is_err());
    }
}

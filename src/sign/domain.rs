//! Signature domains: what a signature is over, fixed by a byte prefix, so
//! that no signature made for one purpose is accepted for another.
//!
//! Every signature pkgsign makes goes through [`crate::sign::Signer`] and
//! every one it checks through [`verify`], both under a [`Domain`]: the
//! prefix is added on both sides, never by the caller. The table is in
//! `docs/signature-format.md` ("Domains").

use sha2::{Digest as _, Sha256};

use crate::keys::{PublicKey, SignRequest};

/// Every message pkgsign signs under a prefixed domain starts with this; a
/// raw Ed25519 signature over bytes that start so is neither made nor
/// accepted (it could be such a message's signature, replayed).
pub const RESERVED_PREFIX: &[u8] = b"pkgsign ";

/// The magic preamble of what an SSH signature signs (PROTOCOL.sshsig).
pub const SSHSIG_MAGIC: &[u8] = b"SSHSIG";

/// What a signature is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Domain {
    /// A pkgsign-format package statement (a `.sig` block, version 1).
    PackageStatement,
    /// A package statement with a release identity (name, version,
    /// expiry): a block of a version 2 `.sig` file.
    ReleaseStatement,
    /// A key lineage statement (endorsement, revocation, and their
    /// countersignatures and cosignatures).
    KeyStatement,
    /// The raw format: no prefix; the package bytes as they are (Ed25519)
    /// or their SHA-256 digest (RSA PKCS#1 v1.5), as openssl makes them.
    Raw,
    /// An SSH signature (OpenSSH's PROTOCOL.sshsig): the `SSHSIG` magic
    /// preamble, then the namespace, the hash algorithm and the message's
    /// hash; Ed25519, or RSA PKCS#1 v1.5 with SHA-512 (`rsa-sha2-512`).
    SshSig,
}

impl Domain {
    /// Every domain, for tests and documentation.
    pub const ALL: [Domain; 5] = [
        Domain::PackageStatement,
        Domain::ReleaseStatement,
        Domain::KeyStatement,
        Domain::Raw,
        Domain::SshSig,
    ];

    /// The bytes that precede the message in what is signed (empty for raw).
    pub const fn prefix(self) -> &'static [u8] {
        match self {
            Domain::PackageStatement => b"pkgsign package signature v1\0",
            Domain::ReleaseStatement => b"pkgsign package signature v2\0",
            Domain::KeyStatement => b"pkgsign key statement v2\0",
            Domain::Raw => b"",
            Domain::SshSig => SSHSIG_MAGIC,
        }
    }

    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Domain::PackageStatement => "package statement",
            Domain::ReleaseStatement => "release statement",
            Domain::KeyStatement => "key statement",
            Domain::Raw => "raw package",
            Domain::SshSig => "SSH signature",
        }
    }

    /// The prefix followed by `body`: the exact bytes a prefixed domain signs.
    pub fn framed(self, body: &[u8]) -> Vec<u8> {
        let p = self.prefix();
        let mut m = Vec::with_capacity(p.len() + body.len());
        m.extend_from_slice(p);
        m.extend_from_slice(body);
        m
    }
}

/// The message of a signature, without its domain prefix.
#[derive(Debug, Clone, Copy)]
pub enum Message<'a> {
    /// The bytes themselves: a statement's text, or a whole package.
    Bytes(&'a [u8]),
    /// The SHA-256 digest of a package (raw RSA signs the digest, as
    /// `openssl dgst -sha256 -sign` does). Only the raw domain takes it.
    Sha256(&'a [u8]),
}

/// Why a message cannot be signed or verified under a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfit {
    /// Raw Ed25519 over bytes starting with [`RESERVED_PREFIX`].
    Reserved,
    /// A digest where the domain needs the bytes (statements, raw Ed25519),
    /// or a digest that is not 32 bytes.
    NeedsBytes,
}

impl std::fmt::Display for Unfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unfit::Reserved => write!(
                f,
                "starts with {:?}, the prefix of pkgsign's own signed statements; a raw Ed25519 signature over it could be replayed as a pkgsign signature, so pkgsign refuses to make it",
                String::from_utf8_lossy(RESERVED_PREFIX)
            ),
            Unfit::NeedsBytes => {
                f.write_str("this signature needs the message itself, not a digest")
            }
        }
    }
}

/// Whether raw Ed25519 bytes are refused: they begin like one of pkgsign's
/// own prefixed messages, or like what an SSH signature signs (a raw
/// Ed25519 signature over them would be a valid SSH signature). `head` may
/// be just the first bytes.
pub fn raw_ed25519_reserved(head: &[u8]) -> bool {
    head.starts_with(RESERVED_PREFIX) || head.starts_with(SSHSIG_MAGIC)
}

/// The request a key source is given to sign `message` under `domain`, with
/// the owned framed bytes it borrows from. Shared by signing and verifying,
/// so the two sides cannot frame a message differently.
enum Framed<'a> {
    /// Prefix + bytes, signed as a pkgsign statement (Ed25519 or RSA-PSS).
    Statement(Vec<u8>),
    /// Raw Ed25519 over the bytes as they are.
    RawEd25519(&'a [u8]),
    /// Raw RSA PKCS#1 v1.5 over this SHA-256 digest.
    RawRsa(Vec<u8>),
    /// RSA PKCS#1 v1.5 with SHA-512 over prefix + bytes (`rsa-sha2-512`).
    RsaSha512(Vec<u8>),
}

fn frame<'a>(domain: Domain, key: &PublicKey, message: Message<'a>) -> Result<Framed<'a>, Unfit> {
    match (domain, key, message) {
        (
            Domain::PackageStatement | Domain::ReleaseStatement | Domain::KeyStatement,
            _,
            Message::Bytes(b),
        ) => Ok(Framed::Statement(domain.framed(b))),
        (
            Domain::PackageStatement | Domain::ReleaseStatement | Domain::KeyStatement,
            _,
            Message::Sha256(_),
        ) => Err(Unfit::NeedsBytes),
        (Domain::Raw, PublicKey::Ed25519(_), Message::Bytes(b)) => {
            if raw_ed25519_reserved(b) {
                Err(Unfit::Reserved)
            } else {
                Ok(Framed::RawEd25519(b))
            }
        }
        (Domain::Raw, PublicKey::Ed25519(_), Message::Sha256(_)) => Err(Unfit::NeedsBytes),
        (Domain::Raw, PublicKey::Rsa(_), Message::Bytes(b)) => {
            Ok(Framed::RawRsa(Sha256::digest(b).to_vec()))
        }
        (Domain::Raw, PublicKey::Rsa(_), Message::Sha256(d)) if d.len() == 32 => {
            Ok(Framed::RawRsa(d.to_vec()))
        }
        (Domain::Raw, PublicKey::Rsa(_), Message::Sha256(_)) => Err(Unfit::NeedsBytes),
        (Domain::SshSig, PublicKey::Ed25519(_), Message::Bytes(b)) => {
            Ok(Framed::Statement(domain.framed(b)))
        }
        (Domain::SshSig, PublicKey::Rsa(_), Message::Bytes(b)) => {
            Ok(Framed::RsaSha512(domain.framed(b)))
        }
        (Domain::SshSig, _, Message::Sha256(_)) => Err(Unfit::NeedsBytes),
    }
}

/// Sign `message` under `domain` with `sign` (the key source's operation)
/// for the key `key`. Internal to the signer: it verifies the result.
pub(crate) fn sign_with(
    domain: Domain,
    key: &PublicKey,
    message: Message<'_>,
    sign: impl FnOnce(SignRequest<'_>) -> crate::Result<Vec<u8>>,
) -> crate::Result<std::result::Result<Vec<u8>, Unfit>> {
    let framed = match frame(domain, key, message) {
        Ok(f) => f,
        Err(u) => return Ok(Err(u)),
    };
    let request = match &framed {
        Framed::Statement(m) => SignRequest::Statement(m),
        Framed::RawEd25519(b) => SignRequest::RawEd25519(b),
        Framed::RawRsa(d) => SignRequest::RawRsaSha256Digest(d),
        Framed::RsaSha512(m) => SignRequest::RsaSha512(m),
    };
    Ok(Ok(sign(request)?))
}

/// Whether `signature` is `key`'s signature over `message` under `domain`.
/// The one check of a signature's cryptography: pkgsign statements are
/// Ed25519 (strict) or RSASSA-PSS-SHA256 over prefix + message; raw is pure
/// Ed25519 over the bytes (refused when they start with [`RESERVED_PREFIX`])
/// or RSA PKCS#1 v1.5 over their SHA-256.
pub fn verify(domain: Domain, key: &PublicKey, message: Message<'_>, signature: &[u8]) -> bool {
    match frame(domain, key, message) {
        Ok(Framed::Statement(m)) => key.verify_statement(&m, signature),
        Ok(Framed::RawEd25519(b)) => match key {
            PublicKey::Ed25519(k) => ed25519_dalek::Signature::from_slice(signature)
                // The RFC 8032 check, as the streaming verifier of raw
                // signatures makes it (see `verify_raw_stream`).
                .map(|sig| {
                    k.verify_stream(&sig).is_ok_and(|mut v| {
                        v.update(b);
                        v.finalize_and_verify().is_ok()
                    })
                })
                .unwrap_or(false),
            PublicKey::Rsa(_) => false,
        },
        Ok(Framed::RawRsa(d)) => key.verify_raw_rsa_sha256(&d, signature),
        Ok(Framed::RsaSha512(m)) => key.verify_rsa_sha512(&m, signature),
        Err(_) => false,
    }
}

/// Start a streaming check of a raw Ed25519 signature over a whole package
/// (fed chunk by chunk; the caller applies [`raw_ed25519_reserved`] to its
/// first bytes). None for RSA keys or a malformed signature.
pub fn verify_raw_stream(
    key: &PublicKey,
    signature: &[u8],
) -> Option<ed25519_dalek::StreamVerifier> {
    key.ed25519_stream(signature)
}

#[cfg(test)]
pub(crate) mod tests;

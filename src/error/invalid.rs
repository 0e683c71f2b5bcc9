//! What was asked of the library does not make sense: the facts, with no
//! command-line flag in them. The `pkgsign` binary says the same in terms of
//! its own flags (`src/cli/error.rs`); a service says it in terms of its own
//! request fields.

use std::path::PathBuf;

/// Which kind of key directory a path was supposed to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyDirKind {
    /// A signing-keys directory: `.pem` private keys.
    SigningKeys,
    /// A trusted-keys directory: `.pub` public keys.
    TrustedKeys,
}

/// An invalid request (the contract's code `USAGE`, exit status 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Invalid {
    /// An SSH signature holds one signature, so exactly one key.
    #[error("an SSH signature holds exactly one signature: sign with one key")]
    SshSigNeedsOneKey,
    /// An SSH signature needs a namespace.
    #[error("an SSH signature needs a namespace (what the signature is for)")]
    SshSigNamespace,
    /// A rotation was asked to move a file key onto a token.
    #[error(
        "{name}: the current key is a key file; a rotation keeps the key where it is (a file, or a token): to move onto a token, make a new key with keygen --pkcs11 and trust it"
    )]
    KeyKindChange {
        /// The key's name.
        name: String,
    },
    /// Plain HTTP asked for on an address other than loopback.
    #[error(
        "{addr} is not a loopback address and no TLS certificate is configured: tokens and packages would cross the network in clear; configure [service.tls], or allow plain HTTP explicitly"
    )]
    PlainHttpNotLoopback {
        /// The address.
        addr: String,
    },
    /// The signature would be written over the package it signs.
    #[error("{}: the signature would replace the package it signs: write it elsewhere", .output.display())]
    OutputIsPackage {
        /// The output path, which is the package.
        output: PathBuf,
    },
    // Keys are named by their fingerprint's text: this module is below
    // `keys` (which uses it), so it cannot hold a `keys::Fingerprint`.
    /// The same key was given twice to sign one package.
    #[error("key {key} ({source_name}) is given twice; each key signs once")]
    KeyGivenTwice {
        /// The key.
        key: String,
        /// Where the second copy came from.
        source_name: String,
    },
    /// A hash algorithm that signatures never use (MD5, SHA-1, ...).
    #[error("{alg}: not accepted for signatures")]
    HashNotForSignatures {
        /// The algorithm's name.
        alg: String,
    },
    /// A signed comment breaks the comment rules.
    #[error("comment: {reason}")]
    Comment {
        /// What is wrong with it.
        reason: String,
    },
    /// A revocation reason breaks the comment rules.
    #[error("reason: {reason}")]
    Reason {
        /// What is wrong with it.
        reason: String,
    },
    /// A raw signature file holds one signature, so exactly one key.
    #[error("a raw signature holds exactly one signature: sign with one key")]
    RawNeedsOneKey,
    /// A raw signature always uses SHA-256 (RSA) or pure Ed25519.
    #[error(
        "a raw signature always uses SHA-256 (RSA) or pure Ed25519; another hash cannot be chosen"
    )]
    RawFixedHash,
    /// A raw signature carries no comment.
    #[error("a raw signature cannot carry a comment; use the pkgsign format")]
    RawNoComment,
    /// A raw signature carries no release identity.
    #[error(
        "a raw signature cannot carry a release name, version or expiry; use the pkgsign format"
    )]
    RawNoIdentity,
    /// A release name outside the allowed characters or length.
    #[error("{reason}")]
    ReleaseName {
        /// What is wrong with it.
        reason: String,
    },
    /// A signature file to take a release identity from that cannot give it.
    #[error("{}: {reason}", .path.display())]
    IdentityFrom {
        /// The signature file.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// An expiry that is not after the signing time.
    #[error(
        "the expiry {expires} is not after the signing time {signed_at}: the signature would never verify"
    )]
    ExpiresBeforeSigning {
        /// The expiry (RFC 3339).
        expires: String,
        /// The signing time (RFC 3339).
        signed_at: String,
    },
    /// The message cannot be signed in the domain asked for.
    #[error("{}{reason}", .path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    MessageUnfit {
        /// The file whose bytes were to be signed, when there is one.
        path: Option<PathBuf>,
        /// Why.
        reason: String,
    },
    /// A key directory is not a directory.
    #[error("{}: not a directory{}", .path.display(), match .kind { KeyDirKind::SigningKeys => " of .pem private keys", KeyDirKind::TrustedKeys => " of .pub files" })]
    NotAKeyDir {
        /// The path.
        path: PathBuf,
        /// What it was supposed to hold.
        kind: KeyDirKind,
    },
    /// A hash algorithm pkgsign does not know.
    #[error("unknown hash algorithm {name:?}; supported: {supported}")]
    UnknownHashAlg {
        /// The name given.
        name: String,
        /// The names pkgsign knows.
        supported: String,
    },
    /// An `ALGO:HEX` digest that does not parse.
    #[error("{0}")]
    MalformedDigest(String),
    /// A path that must lie in a directory does not.
    #[error("{}: not in {}", .path.display(), .dir.display())]
    NotInDir {
        /// The path.
        path: PathBuf,
        /// The directory.
        dir: PathBuf,
    },
    /// A cosignature by a key already party to the statement.
    #[error(
        "key {key} already signs this statement as its signer or subject; a cosignature must come from another lineage"
    )]
    CosignerIsParty {
        /// The key.
        key: String,
    },
    /// A second cosignature by the same key.
    #[error("key {key} has already cosigned this statement")]
    AlreadyCosigned {
        /// The key.
        key: String,
    },
    /// More cosignatures than a statement holds.
    #[error("a statement holds at most {max} cosignatures")]
    TooManyCosignatures {
        /// The limit.
        max: usize,
    },
    /// The key asked to sign a key statement is not one workers would
    /// accept it from.
    #[error("key {why} in {}; workers would refuse its statement: sign with the current key of its lineage", .dir.display())]
    StatementSignerRefused {
        /// Why, starting with the key's fingerprint ("… is revoked").
        why: String,
        /// The trusted-keys directory.
        dir: PathBuf,
    },
    /// A revoked key cannot be trusted again.
    #[error(
        "key {key} was revoked at {at} ({reason}); a revoked key is never trusted again: use a new key"
    )]
    RevokedKeyReadded {
        /// The key.
        key: String,
        /// When it was revoked (RFC 3339).
        at: String,
        /// Why.
        reason: String,
    },
    /// A validity window that ends before it begins.
    #[error("the end of the validity window (not after) is before its start (not before)")]
    WindowReversed,
    /// A threshold of zero signatures.
    #[error("the threshold must be at least 1")]
    ThresholdZero,
    /// A key that is not in the trusted-keys directory.
    #[error("key {key} is not in {}", .dir.display())]
    KeyNotInDir {
        /// The key.
        key: String,
        /// The directory.
        dir: PathBuf,
    },
    /// An empty passphrase.
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    /// An RSA size pkgsign does not generate.
    #[error("RSA keys of {bits} bits: pkgsign generates RSA keys of 2048, 3072 or 4096 bits")]
    RsaBits {
        /// The size asked for.
        bits: usize,
    },
    /// A key name outside the allowed characters or length.
    #[error(
        "key name {name:?}: a key name uses letters, digits and - _ . @ + only, does not start with a dot, and has at most 128 characters"
    )]
    KeyName {
        /// The name given.
        name: String,
    },
}

//! Signing packages: hash the whole package once and write a detached
//! signature in either format. Checking one is the job of the `verify`
//! module, a layer above.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::digest::{self, Digest, HashAlg, Progress};
use crate::error::{Error, FileError, Invalid, Result, TrustError};
use crate::fsutil::{self, Replace};
use crate::keys::{Fingerprint, KeySource, PublicKey};
use crate::sign::identity::Identity;
use crate::sign::sigfile::{self, Block, Statement};
use crate::sign::{Domain, Message, Signer};

pub use crate::sign::domain::RESERVED_PREFIX;

/// The release identity (name and version) of the signature file `sig`,
/// for signing the same release again with another key: after a key
/// rotation, an old release is re-signed with the current key rather than
/// its old key being trusted for old signing times (a stolen old key could
/// backdate). Refused unless a block of `sig` vouches for exactly this
/// `package` (its digest and size), so a tampered file is never re-signed;
/// the signature itself is not checked (its key may be retired). The
/// expiry is not carried over.
pub fn identity_from(sig: &Path, package: &Path) -> Result<Identity> {
    let refuse = |reason: String| -> Error {
        Invalid::IdentityFrom {
            path: sig.to_path_buf(),
            reason,
        }
        .into()
    };
    let blocks = match sigfile::read(sig)? {
        sigfile::SignatureFile::Pkgsign(blocks) => blocks,
        sigfile::SignatureFile::Raw(_) | sigfile::SignatureFile::SshSig(_) => {
            return Err(refuse("a raw or SSH signature names no release".into()));
        }
    };
    let Some(first) = blocks.first() else {
        return Err(refuse("the file holds no signature".into()));
    };
    let identity = Identity {
        expires: None,
        ..first.statement.identity.clone()
    };
    if identity.name.is_none() && identity.version.is_none() {
        return Err(refuse(
            "a version 1 signature names no release (no name, no version)".into(),
        ));
    }
    let algs = sigfile::hash_algs(&blocks);
    let (size, digests) = digest::hash_file_with(package, &algs, None)?;
    let vouched = blocks.iter().any(|b| {
        b.statement.size == size
            && digests
                .iter()
                .any(|d| d.alg() == b.statement.digest.alg() && d.ct_eq(&b.statement.digest))
    });
    if !vouched {
        return Err(refuse(format!(
            "it is not a signature of {}: its digest and size differ; re-sign only the very release it signed",
            package.display()
        )));
    }
    Ok(identity)
}

/// Which signature format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The pkgsign format (signed metadata, several signatures).
    #[default]
    Pkgsign,
    /// Bare base64 signature over the package bytes, as openssl makes it.
    Raw,
    /// An SSH signature (`ssh-keygen -Y sign`), under
    /// [`SignOptions::namespace`].
    SshSig,
}

/// How to sign.
#[derive(Debug, Clone)]
pub struct SignOptions {
    /// Output format.
    pub format: Format,
    /// Package hash for the pkgsign format.
    pub hash: HashAlg,
    /// Signed comment (pkgsign format).
    pub comment: Option<String>,
    /// The release identity to sign (pkgsign format; none: a version 1
    /// statement). An `expires` here is absolute.
    pub identity: Identity,
    /// The signing time.
    pub now: SystemTime,
    /// Told how far hashing has got.
    pub progress: Option<Progress>,
    /// The namespace of an SSH signature ([`Format::SshSig`]).
    pub namespace: String,
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions {
            format: Format::Pkgsign,
            hash: HashAlg::Sha256,
            comment: None,
            identity: Identity::default(),
            now: SystemTime::now(),
            progress: None,
            namespace: crate::sign::sshsig::DEFAULT_NAMESPACE.to_string(),
        }
    }
}

/// What a signing produced.
#[derive(Debug, Clone)]
pub struct Signed {
    /// Where the signature file was written.
    pub output: PathBuf,
    /// The package digest (SHA-256 for raw RSA; none for raw Ed25519).
    pub digest: Option<Digest>,
    /// The package size.
    pub size: u64,
    /// Fingerprints of the keys that signed.
    pub keys: Vec<Fingerprint>,
}

/// The signing time in whole seconds since the Unix epoch. A clock before
/// 1970 is refused: the format cannot write such a time, and writing
/// 1970-01-01T00:00:00Z instead would sign a time that is plainly false.
fn signing_secs(t: SystemTime) -> Result<u64> {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Ok(d.as_secs()),
        Err(e) => Err(Error::ClockWrong {
            seconds_before_1970: e.duration().as_secs().max(1),
        }),
    }
}

/// Sign `package` with every key and write the signature file to `output`
/// atomically. Nothing is written if any step fails.
pub fn sign_package(
    package: &Path,
    keys: &[&dyn KeySource],
    opts: &SignOptions,
    output: &Path,
) -> Result<Signed> {
    // The rename replaces a file or a symlink (never its target); renaming
    // over a device, FIFO or directory (`--output /dev/null` as root) is refused.
    if let Ok(meta) = std::fs::symlink_metadata(output)
        && !meta.is_file()
        && !meta.file_type().is_symlink()
    {
        return Err(Error::File(FileError::NotAFile {
            path: output.to_path_buf(),
        }));
    }
    if let (Ok(a), Ok(b)) = (std::fs::metadata(package), std::fs::metadata(output)) {
        use std::os::unix::fs::MetadataExt;
        if a.dev() == b.dev() && a.ino() == b.ino() {
            return Err(Invalid::OutputIsPackage {
                output: output.to_path_buf(),
            }
            .into());
        }
    }
    let (text, signed) = sign_to_string(package, keys, opts)?;
    fsutil::write_atomic(output, text.as_bytes(), 0o644, Replace::Allowed)?;
    Ok(Signed {
        output: output.to_path_buf(),
        ..signed
    })
}

/// Sign `package` and return the signature file's contents.
pub fn sign_to_string(
    package: &Path,
    keys: &[&dyn KeySource],
    opts: &SignOptions,
) -> Result<(String, Signed)> {
    if keys.is_empty() {
        return Err(Error::Trust(TrustError::NoKeys(
            crate::error::NoKeys::ToSign,
        )));
    }
    let mut seen = HashSet::new();
    for k in keys {
        if !seen.insert(k.public_key().fingerprint()) {
            return Err(Invalid::KeyGivenTwice {
                key: k.public_key().fingerprint().to_string(),
                source_name: k.describe(),
            }
            .into());
        }
    }
    if !opts.hash.fit_for_signatures() {
        return Err(Invalid::HashNotForSignatures {
            alg: opts.hash.to_string(),
        }
        .into());
    }
    if let Some(c) = &opts.comment {
        sigfile::check_comment(c).map_err(|reason| Invalid::Comment { reason })?;
    }
    if let Some(name) = &opts.identity.name {
        crate::sign::identity::check_name(name)
            .map_err(|reason| Invalid::ReleaseName { reason })?;
    }
    if let Some(expires) = opts.identity.expires {
        let signed_at = signing_secs(opts.now)?;
        if expires <= signed_at {
            return Err(Invalid::ExpiresBeforeSigning {
                expires: sigfile::format_time(expires),
                signed_at: sigfile::format_time(signed_at),
            }
            .into());
        }
    }
    match opts.format {
        Format::Pkgsign => sign_pkgsign(package, keys, opts),
        Format::Raw => sign_raw(package, keys, opts),
        Format::SshSig => sign_sshsig(package, keys, &opts.namespace, opts),
    }
}

/// An SSH signature: one key, SHA-512 of the package, under `namespace`.
fn sign_sshsig(
    package: &Path,
    keys: &[&dyn KeySource],
    namespace: &str,
    opts: &SignOptions,
) -> Result<(String, Signed)> {
    let [key] = keys else {
        return Err(Invalid::SshSigNeedsOneKey.into());
    };
    if namespace.is_empty() {
        return Err(Invalid::SshSigNamespace.into());
    }
    let alg = HashAlg::Sha512;
    let (size, digests) = digest::hash_file_with(package, &[alg], opts.progress.as_ref())?;
    let digest = digest::single(digests, package)?;
    let body = crate::sign::sshsig::signed_body(namespace, alg, digest.as_bytes());
    let signature = Signer::new(*key).sign(crate::sign::sshsig::DOMAIN, Message::Bytes(&body))?;
    let text = crate::sign::sshsig::armor(key.public_key(), namespace, alg, &signature)?;
    Ok((
        text,
        Signed {
            output: PathBuf::new(),
            digest: Some(digest),
            size,
            keys: vec![key.public_key().fingerprint()],
        },
    ))
}

fn sign_pkgsign(
    package: &Path,
    keys: &[&dyn KeySource],
    opts: &SignOptions,
) -> Result<(String, Signed)> {
    // The clock first: a wrong one stops the run before the package is read.
    let signed_at = signing_secs(opts.now)?;
    let (size, digests) = digest::hash_file_with(package, &[opts.hash], opts.progress.as_ref())?;
    let digest = digest::single(digests, package)?;
    let mut blocks = Vec::with_capacity(keys.len());
    for key in keys {
        let public = key.public_key();
        let statement = Statement {
            scheme: public.statement_scheme(),
            key: public.fingerprint(),
            digest: digest.clone(),
            size,
            signed_at,
            identity: opts.identity.clone(),
            comment: opts.comment.clone(),
        };
        // Checked before it is returned (see `Signer`): a faulty key
        // source never publishes a bad signature.
        let signature = Signer::new(*key).sign(
            statement.domain(),
            Message::Bytes(statement.canonical_text().as_bytes()),
        )?;
        blocks.push(Block {
            statement,
            signature,
        });
    }
    let keys = blocks.iter().map(|b| b.statement.key.clone()).collect();
    Ok((
        sigfile::to_pkgsign_text(&blocks),
        Signed {
            output: PathBuf::new(),
            digest: Some(digest),
            size,
            keys,
        },
    ))
}

fn sign_raw(
    package: &Path,
    keys: &[&dyn KeySource],
    opts: &SignOptions,
) -> Result<(String, Signed)> {
    let [key] = keys else {
        return Err(Invalid::RawNeedsOneKey.into());
    };
    if opts.hash != HashAlg::Sha256 {
        return Err(Invalid::RawFixedHash.into());
    }
    if !opts.identity.is_empty() {
        return Err(Invalid::RawNoIdentity.into());
    }
    if opts.comment.is_some() {
        return Err(Invalid::RawNoComment.into());
    }
    let public = key.public_key();
    let (signature, digest, size) = match public {
        PublicKey::Rsa(_) => {
            let (size, d) =
                digest::hash_file_with(package, &[HashAlg::Sha256], opts.progress.as_ref())?;
            let d = digest::single(d, package)?;
            let sig = Signer::new(*key).sign(Domain::Raw, Message::Sha256(d.as_bytes()))?;
            (sig, Some(d), size)
        }
        PublicKey::Ed25519(_) => {
            // Pure Ed25519 needs the whole message at once: map it rather
            // than copy it into memory.
            let file = fsutil::open_regular(package)?;
            let (sig, size) = crate::mapped::with_mapped(&file, package, |bytes| {
                // The raw domain refuses bytes that start like pkgsign's own
                // signed statements (see `domain::RESERVED_PREFIX`).
                Signer::new(*key)
                    .sign(Domain::Raw, Message::Bytes(bytes))
                    .map_err(|e| match e {
                        Error::Invalid(Invalid::MessageUnfit { path: None, reason }) => {
                            Invalid::MessageUnfit {
                                path: Some(package.to_path_buf()),
                                reason,
                            }
                            .into()
                        }
                        other => other,
                    })
            })?;
            (sig, None, size)
        }
    };
    Ok((
        sigfile::to_raw_text(&signature),
        Signed {
            output: PathBuf::new(),
            digest,
            size,
            keys: vec![public.fingerprint()],
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_contexts_start_with_the_reserved_prefix() {
        assert!(sigfile::CONTEXT.starts_with(RESERVED_PREFIX));
    }

    #[test]
    fn raw_ed25519_refuses_statement_lookalikes() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("evil");
        let mut data = sigfile::CONTEXT.to_vec();
        data.extend_from_slice(b"algorithm: ed25519\n");
        std::fs::write(&pkg, &data).unwrap();
        let key = crate::keys::LocalKey::new(
            crate::keys::generate(crate::keys::KeySpec::Ed25519).unwrap(),
            "mem".into(),
        );
        let opts = SignOptions {
            format: Format::Raw,
            ..SignOptions::default()
        };
        assert!(matches!(
            sign_to_string(&pkg, &[&key], &opts),
            Err(Error::Invalid(Invalid::MessageUnfit { .. }))
        ));
    }
}

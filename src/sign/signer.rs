//! The signer: the single place that hashes a package and makes or checks
//! signatures. Every subcommand goes through it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use crate::digest::cache::{Cache, hash_file_cached};
use crate::digest::{self, Digest, HashAlg, MultiHasher, Progress};
use crate::error::{Error, Result};
use crate::fsutil::{self, Replace};
use crate::keys::{Fingerprint, KeySource, PublicKey};
use crate::sign::domain;
use crate::sign::report::{
    ChecksumMatched, Package, Refusal, Report, SignatureResult, Verified, time_text,
};
use crate::sign::sigfile::{self, Block, SignatureFile, Statement};
use crate::sign::verifier::Verifier;
use crate::sign::{Domain, Message, Signer};
use crate::trust::{Decision, TrustStore, TrustedKey};

/// Which signature format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The pkgsign format (signed metadata, several signatures).
    #[default]
    Pkgsign,
    /// Bare base64 signature over the package bytes, as openssl makes it.
    Raw,
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
    /// The signing time.
    pub now: SystemTime,
    /// Told how far hashing has got.
    pub progress: Option<Progress>,
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions {
            format: Format::Pkgsign,
            hash: HashAlg::Sha256,
            comment: None,
            now: SystemTime::now(),
            progress: None,
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
        return Err(Error::NotAFile {
            path: output.to_path_buf(),
        });
    }
    if let (Ok(a), Ok(b)) = (std::fs::metadata(package), std::fs::metadata(output)) {
        use std::os::unix::fs::MetadataExt;
        if a.dev() == b.dev() && a.ino() == b.ino() {
            return Err(Error::Usage(format!(
                "--output {} is the package itself; the signature would replace it: write it elsewhere",
                output.display()
            )));
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
        return Err(Error::NoKeys(crate::error::NoKeys::ToSign));
    }
    let mut seen = HashSet::new();
    for k in keys {
        if !seen.insert(k.public_key().fingerprint()) {
            return Err(Error::Usage(format!(
                "key {} ({}) is given twice; each key signs once",
                k.public_key().fingerprint(),
                k.describe()
            )));
        }
    }
    if !opts.hash.fit_for_signatures() {
        return Err(Error::Usage(format!(
            "--hash {}: not accepted for signatures",
            opts.hash
        )));
    }
    if let Some(c) = &opts.comment {
        sigfile::check_comment(c).map_err(|e| Error::Usage(format!("--comment: {e}")))?;
    }
    match opts.format {
        Format::Pkgsign => sign_pkgsign(package, keys, opts),
        Format::Raw => sign_raw(package, keys, opts),
    }
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
            comment: opts.comment.clone(),
        };
        // Checked before it is returned (see `Signer`): a faulty key
        // source never publishes a bad signature.
        let signature = Signer::new(*key).sign(
            Domain::PackageStatement,
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
        return Err(Error::Usage(
            "--format raw holds exactly one signature: give one --private-key".into(),
        ));
    };
    if opts.hash != HashAlg::Sha256 {
        return Err(Error::Usage(
            "--format raw always uses SHA-256 (RSA) or pure Ed25519; drop --hash".into(),
        ));
    }
    if opts.comment.is_some() {
        return Err(Error::Usage(
            "--format raw cannot carry a comment; use the pkgsign format".into(),
        ));
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
            let (sig, size) = fsutil::with_mapped(&file, package, |bytes| {
                // The raw domain refuses bytes that start like pkgsign's own
                // signed statements (see `domain::RESERVED_PREFIX`).
                Signer::new(*key)
                    .sign(Domain::Raw, Message::Bytes(bytes))
                    .map_err(|e| match e {
                        Error::Usage(why) => Error::Usage(format!("{}: {why}", package.display())),
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

pub use crate::sign::domain::RESERVED_PREFIX;

/// How to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Distinct trusted keys required (at least 1).
    pub threshold: usize,
    /// Expected digest of the package, checked before the signatures count.
    pub checksum: Option<Digest>,
    /// The verifying machine's clock.
    pub now: SystemTime,
    /// Digests remembered by file stat signature: only hashing is skipped.
    pub cache: Option<Arc<Cache>>,
    /// Told how far hashing has got.
    pub progress: Option<Progress>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            threshold: 1,
            checksum: None,
            now: SystemTime::now(),
            cache: None,
            progress: None,
        }
    }
}

impl VerifyOptions {
    fn hash(&self, package: &Path, algs: &[HashAlg]) -> Result<(u64, Vec<Digest>)> {
        let (size, d, _) =
            hash_file_cached(package, algs, self.cache.as_deref(), self.progress.as_ref())?;
        Ok((size, d))
    }
}

/// A caller's reader: hands every byte, in order, to the sink it is given.
pub type Feed<'a> = dyn FnMut(&mut dyn FnMut(&[u8])) -> Result<()> + 'a;

/// Where the signed bytes come from.
pub enum Content<'a> {
    /// The file at this path, read when needed (the cache may supply its
    /// digests).
    File,
    /// Bytes the caller hands over in order, once, to the sink it is given
    /// (a checksum list read from a descriptor it holds): the digests the
    /// signatures are checked against are computed from exactly these bytes.
    Stream(&'a mut Feed<'a>),
}

impl Content<'_> {
    /// Feed every byte to `sink`, once.
    fn feed(
        &mut self,
        package: &Path,
        opts: &VerifyOptions,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<()> {
        match self {
            Content::File => {
                digest::stream_file(package, Progress::wrap(opts.progress.as_ref(), sink))?;
                Ok(())
            }
            Content::Stream(read) => read(sink),
        }
    }

    /// Size and digests of the content, with every algorithm of `algs`.
    fn hash(
        &mut self,
        package: &Path,
        opts: &VerifyOptions,
        algs: &[HashAlg],
    ) -> Result<(u64, Vec<Digest>)> {
        match self {
            Content::File => opts.hash(package, algs),
            Content::Stream(_) => {
                let mut hashers = MultiHasher::new(algs);
                let mut size = 0u64;
                self.feed(package, opts, &mut |chunk| {
                    size += chunk.len() as u64;
                    hashers.update(chunk);
                })?;
                Ok((size, hashers.finish()))
            }
        }
    }
}

/// Verify `package` against the signature file `signature`. Returns proof
/// on success; a refusal is [`Error::Refused`] carrying the per-signature
/// report. With no signature there is nothing that could give the proof:
/// [`verify_checksum`] checks a digest alone.
pub fn verify_package(
    package: &Path,
    signature: Option<&Path>,
    trust: &TrustStore,
    opts: &VerifyOptions,
) -> Result<Verified<Package>> {
    if opts.threshold == 0 {
        return Err(Error::Usage("--threshold must be at least 1".into()));
    }
    let Some(signature) = signature else {
        return Err(Error::NoKeys(crate::error::NoKeys::ToVerify));
    };
    // Make sure the package can be read before judging signatures, so a
    // missing package is "could not run" rather than a refusal.
    fsutil::open_regular(package)?;
    verify_content(package, Content::File, signature, trust, opts)
}

/// Verify `content` (named `package` in the report) against the signature
/// file `signature`, through the [`Verifier`] at `opts.now`.
pub fn verify_content(
    package: &Path,
    mut content: Content<'_>,
    signature: &Path,
    trust: &TrustStore,
    opts: &VerifyOptions,
) -> Result<Verified<Package>> {
    if opts.threshold == 0 {
        return Err(Error::Usage("--threshold must be at least 1".into()));
    }
    // The trusted-keys directory's own threshold is a floor: a caller's
    // `--threshold` may only raise it.
    let report = Report::new(package, opts.threshold.max(trust.threshold()));
    let verifier = Verifier::new(trust, opts.now);
    match sigfile::read(signature)? {
        SignatureFile::Pkgsign(blocks) => {
            verify_blocks(package, &mut content, &blocks, &verifier, opts, report)
        }
        SignatureFile::Raw(sig) => verify_raw(package, &mut content, &sig, &verifier, opts, report),
    }
}

/// Check only that `package`'s digest is `expected` (`--checksum` with no
/// key). The result says nothing about who made the package.
pub fn verify_checksum(
    package: &Path,
    expected: &Digest,
    opts: &VerifyOptions,
) -> Result<ChecksumMatched> {
    if opts.threshold == 0 {
        return Err(Error::Usage("--threshold must be at least 1".into()));
    }
    let (_, digests) = opts.hash(package, &[expected.alg()])?;
    let actual = check_checksum(package, expected, &digests)?;
    Ok(ChecksumMatched::new(package, actual.clone()))
}

fn check_checksum<'d>(
    package: &Path,
    expected: &Digest,
    digests: &'d [Digest],
) -> Result<&'d Digest> {
    let actual = digests
        .iter()
        .find(|d| d.alg() == expected.alg())
        .ok_or_else(|| Error::Crypto {
            what: "hashing",
            reason: "checksum digest was not computed".into(),
        })?;
    if actual.ct_eq(expected) {
        Ok(actual)
    } else {
        Err(Error::ChecksumMismatch {
            path: package.to_path_buf(),
            algorithm: expected.alg().name(),
            expected: expected.hex(),
            actual: actual.hex(),
        })
    }
}

fn finish(mut report: Report) -> Result<Verified<Package>> {
    let distinct = |f: fn(&SignatureResult) -> Option<&Fingerprint>| {
        report.valid().filter_map(f).collect::<HashSet<_>>().len()
    };
    let (keys, principals) = (
        distinct(|s| s.key.as_ref()),
        distinct(|s| s.principal.as_ref()),
    );
    report.valid_keys = keys;
    report.valid_principals = principals;
    if report.accepted() {
        Ok(Verified::new(report))
    } else {
        Err(Error::Refused(Box::new(report)))
    }
}

fn verify_blocks(
    package: &Path,
    content: &mut Content<'_>,
    blocks: &[Block],
    verifier: &Verifier<'_>,
    opts: &VerifyOptions,
    mut report: Report,
) -> Result<Verified<Package>> {
    // 1. Trust and statement signatures: cheap, before reading the package.
    let mut pending = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        let st = &block.statement;
        let mut result = SignatureResult {
            index: i + 1,
            key: Some(st.key.clone()),
            key_name: None,
            principal: None,
            algorithm: st.scheme.to_string(),
            signed_at: Some(time_text(st.signed_at)),
            comment: st.comment.clone(),
            refusal: None,
            reason: String::new(),
        };
        match verifier.check(
            Domain::PackageStatement,
            &st.key,
            Some(st.scheme),
            Message::Bytes(st.canonical_text().as_bytes()),
            &block.signature,
            Some(st.signed_at),
        ) {
            Decision::Refused(code, reason) => {
                // A trusted key whose signature is invalid is still named.
                if code == Refusal::SignatureInvalid
                    && let Some(k) = verifier.trust().get(&st.key)
                {
                    result.key_name = Some(k.name.clone());
                    result.principal = Some(k.principal().clone());
                }
                result.refusal = Some(code);
                result.reason = reason;
            }
            Decision::Accepted(key, why) => {
                result.key_name = Some(key.name.clone());
                result.principal = Some(key.principal().clone());
                result.reason = why;
                pending.push(report.signatures.len());
            }
        }
        report.signatures.push(result);
    }

    // 2. Hash the package once, with every algorithm needed.
    let mut algs: Vec<HashAlg> = pending
        .iter()
        .map(|&i| blocks[i].statement.digest.alg())
        .collect();
    if let Some(c) = &opts.checksum {
        algs.push(c.alg());
    }
    algs.sort();
    algs.dedup();
    if algs.is_empty() {
        return finish(report);
    }
    let (size, digests) = content.hash(package, opts, &algs)?;
    if let Some(c) = &opts.checksum {
        check_checksum(package, c, &digests)?;
    }
    if let Some(d) = digests.first() {
        report.set_hash(d);
    }

    // 3. Does the package match what each valid statement vouches for?
    for i in pending {
        let st = &blocks[i].statement;
        let actual = digests.iter().find(|d| d.alg() == st.digest.alg());
        let result = &mut report.signatures[i];
        let matches = actual.is_some_and(|d| d.ct_eq(&st.digest)) && size == st.size;
        if !matches {
            result.refusal = Some(Refusal::SignatureInvalid);
            result.reason = if size != st.size {
                format!(
                    "the package is {size} bytes but the signature is for {} bytes: it was modified, or the signature belongs to another package",
                    st.size
                )
            } else {
                format!(
                    "the package's {} digest differs from the signed one: it was modified, or the signature belongs to another package",
                    st.digest.alg()
                )
            };
        }
    }
    finish(report)
}

const RAW_ED25519: &str = "raw-ed25519";
const RAW_RSA: &str = "raw-rsa-pkcs1v15-sha256";

fn verify_raw(
    package: &Path,
    content: &mut Content<'_>,
    sig: &[u8],
    verifier: &Verifier<'_>,
    opts: &VerifyOptions,
    mut report: Report,
) -> Result<Verified<Package>> {
    // A raw signature does not name its key: try every trusted key of the
    // matching kind and size, in one pass over the package. Keys the trust
    // policy refuses are tried too, so that a signature by an expired or
    // revoked key is reported as such rather than as "invalid".
    let trust = verifier.trust();
    let mut candidates: Vec<&TrustedKey> = trust
        .keys()
        .filter(|k| k.public.signature_len() == sig.len())
        .collect();
    candidates.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
    let rsa_keys: Vec<&TrustedKey> = candidates
        .iter()
        .copied()
        .filter(|k| matches!(k.public, PublicKey::Rsa(_)))
        .collect();
    let mut ed_verifiers: Vec<_> = candidates
        .iter()
        .filter_map(|k| domain::verify_raw_stream(&k.public, sig).map(|v| (*k, v)))
        .collect();
    let algorithm = if sig.len() == 64 {
        RAW_ED25519
    } else {
        RAW_RSA
    };
    // SHA-256 always: RSA needs it, and the report names the package's digest.
    let mut algs = vec![HashAlg::Sha256];
    if let Some(c) = &opts.checksum {
        algs.push(c.alg());
    }
    algs.sort();
    algs.dedup();
    let mut hashers = MultiHasher::new(&algs);
    // The package's first bytes, for the domain rule below.
    let mut head: Vec<u8> = Vec::with_capacity(RESERVED_PREFIX.len());
    content.feed(package, opts, &mut |chunk| {
        let want = RESERVED_PREFIX.len().saturating_sub(head.len());
        head.extend(chunk.iter().take(want));
        hashers.update(chunk);
        for (_, v) in ed_verifiers.iter_mut() {
            v.update(chunk);
        }
    })?;
    let digests = hashers.finish();
    if let Some(c) = &opts.checksum {
        check_checksum(package, c, &digests)?;
    }
    if let Some(d) = digests.first() {
        report.set_hash(d);
    }
    // The raw domain's rule: pure Ed25519 signs the bytes as they are, so a
    // raw signature over bytes that begin like pkgsign's own signed
    // messages (a package statement, a key statement) may be such a
    // message's signature, replayed as a package signature. pkgsign never
    // makes one (see `Signer`) and never accepts one.
    let reserved = sig.len() == 64 && domain::raw_ed25519_reserved(&head);
    if reserved {
        ed_verifiers.clear();
    }
    let mut signer: Option<&TrustedKey> = None;
    if let Some(sha256) = digests.iter().find(|d| d.alg() == HashAlg::Sha256) {
        signer = rsa_keys.into_iter().find(|k| {
            domain::verify(
                Domain::Raw,
                &k.public,
                Message::Sha256(sha256.as_bytes()),
                sig,
            )
        });
    }
    if signer.is_none() {
        signer = ed_verifiers
            .into_iter()
            .find_map(|(k, v)| v.finalize_and_verify().is_ok().then_some(k));
    }
    let mut result = SignatureResult {
        index: 1,
        key: None,
        key_name: None,
        principal: None,
        algorithm: algorithm.to_string(),
        signed_at: None,
        comment: None,
        refusal: None,
        reason: String::new(),
    };
    match signer {
        Some(k) => {
            result.key = Some(k.fingerprint.clone());
            result.key_name = Some(k.name.clone());
            match verifier.decide(&k.fingerprint, None) {
                Decision::Accepted(_, why) => {
                    result.principal = Some(k.principal().clone());
                    result.reason = why;
                }
                Decision::Refused(code, why) => {
                    result.refusal = Some(code);
                    result.reason = why;
                }
            }
        }
        None if reserved => {
            result.refusal = Some(Refusal::SignatureInvalid);
            result.reason = format!(
                "the package starts with {:?}, the prefix reserved for pkgsign's own signed statements: a raw Ed25519 signature over it is never accepted, since it could be a statement's signature replayed as a package signature",
                String::from_utf8_lossy(RESERVED_PREFIX)
            );
        }
        None => {
            result.refusal = Some(Refusal::SignatureInvalid);
            result.reason = format!(
                "the {algorithm} signature does not verify with any of the {} trusted keys of that kind: the package was modified, or it was signed by a key you do not trust",
                candidates.len()
            );
        }
    }
    report.signatures.push(result);
    finish(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_contexts_start_with_the_reserved_prefix() {
        assert!(sigfile::CONTEXT.starts_with(RESERVED_PREFIX));
        assert!(crate::trust::lineage::CONTEXT.starts_with(RESERVED_PREFIX));
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
            Err(Error::Usage(_))
        ));
    }
}

#[cfg(test)]
mod proof_tests {
    use super::*;
    use crate::keys::{KeySource, KeySpec, LocalKey, generate};

    fn signed_package(dir: &Path, data: &[u8]) -> (PathBuf, PathBuf, TrustStore) {
        let pkg = dir.join("app.tar");
        std::fs::write(&pkg, data).unwrap();
        let key = LocalKey::new(generate(KeySpec::Ed25519).unwrap(), "mem".into());
        let sig = dir.join("app.tar.sig");
        sign_package(&pkg, &[&key], &SignOptions::default(), &sig).unwrap();
        let public = dir.join("k.pub");
        std::fs::write(
            &public,
            crate::keys::encoding::public_key_to_pem(key.public_key()).unwrap(),
        )
        .unwrap();
        let mut trust = TrustStore::new();
        trust.add_file(&public).unwrap();
        (pkg, sig, trust)
    }

    /// A digest check alone is a `ChecksumMatched`, never a
    /// `Verified<Package>` with zero signatures.
    #[test]
    fn a_checksum_only_run_is_not_a_verified_package() {
        let dir = tempfile::tempdir().unwrap();
        let (pkg, _, trust) = signed_package(dir.path(), b"release bytes");
        let digest = digest::hash_bytes(HashAlg::Sha256, b"release bytes");
        let opts = VerifyOptions {
            checksum: Some(digest.clone()),
            ..VerifyOptions::default()
        };
        assert!(matches!(
            verify_package(&pkg, None, &trust, &opts),
            Err(Error::NoKeys(_))
        ));
        let matched = verify_checksum(&pkg, &digest, &opts).unwrap();
        assert!(matched.digest().ct_eq(&digest));
        assert!(matched.report().signatures.is_empty());
        let other = digest::hash_bytes(HashAlg::Sha256, b"other bytes");
        assert!(matches!(
            verify_checksum(&pkg, &other, &opts),
            Err(Error::ChecksumMismatch { .. })
        ));
    }

    /// Streamed content is verified from the bytes handed over, never by
    /// reading the path again (a checksum list is hashed once).
    #[test]
    fn streamed_content_is_verified_from_the_bytes_handed_over() {
        let dir = tempfile::tempdir().unwrap();
        let (pkg, sig, trust) = signed_package(dir.path(), b"release bytes");
        std::fs::remove_file(&pkg).unwrap();
        let verify = |bytes: &'static [u8]| {
            let mut feed = |sink: &mut dyn FnMut(&[u8])| -> Result<()> {
                for chunk in bytes.chunks(3) {
                    sink(chunk);
                }
                Ok(())
            };
            verify_content(
                &pkg,
                Content::Stream(&mut feed),
                &sig,
                &trust,
                &VerifyOptions::default(),
            )
        };
        let v = verify(b"release bytes").unwrap();
        assert_eq!(v.signers().count(), 1);
        assert!(matches!(verify(b"release bytez"), Err(Error::Refused(_))));
    }
}

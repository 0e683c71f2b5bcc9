//! Verifying a package against a trust store: hash it once, check every
//! signature of its signature file through the [`Verifier`], and return a
//! typed proof ([`Verified<Package>`] or [`ChecksumMatched`]) or the report
//! of why it was refused ([`VerifyError::Refused`]).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use crate::digest::cache::{Cache, hash_file_cached};
use crate::digest::{self, Digest, HashAlg, MultiHasher, Progress};
use crate::error::{Error, Invalid, Result, TrustError};
use crate::fsutil;
use crate::keys::{Fingerprint, PublicKey};
use crate::sign::domain::{self, RESERVED_PREFIX};
use crate::sign::identity::{Identity, Version};
use crate::sign::report::{
    ChecksumMatched, Package, Refusal, Report, SignatureResult, Verified, time_text,
};
use crate::sign::sigfile::{self, Block, SignatureFile, Statement};
use crate::sign::{Domain, Message};
use crate::trust::{Decision, TrustStore, TrustedKey};
use crate::verify::{Verifier, VerifyError};

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
    /// A signature counts only if it names this package (format v2).
    pub name: Option<String>,
    /// A signature counts only if its release is at least this version,
    /// read in the statement's own version scheme (format v2).
    pub min_version: Option<String>,
    /// The namespace an SSH signature must carry (default `pkgsign`).
    pub namespace: Option<String>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            threshold: 1,
            checksum: None,
            now: SystemTime::now(),
            cache: None,
            progress: None,
            name: None,
            min_version: None,
            namespace: None,
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
/// on success; a refusal is [`VerifyError::Refused`] carrying the per-signature
/// report. With no signature there is nothing that could give the proof:
/// [`verify_checksum`] checks a digest alone.
pub fn verify_package(
    package: &Path,
    signature: Option<&Path>,
    trust: &TrustStore,
    opts: &VerifyOptions,
) -> Result<Verified<Package>, VerifyError> {
    if opts.threshold == 0 {
        return Err(Error::from(Invalid::ThresholdZero).into());
    }
    let Some(signature) = signature else {
        return Err(Error::Trust(TrustError::NoKeys(crate::error::NoKeys::ToVerify)).into());
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
    content: Content<'_>,
    signature: &Path,
    trust: &TrustStore,
    opts: &VerifyOptions,
) -> Result<Verified<Package>, VerifyError> {
    if opts.threshold == 0 {
        return Err(Error::from(Invalid::ThresholdZero).into());
    }
    let parsed = sigfile::read(signature)?;
    verify_parsed(package, content, &parsed, trust, opts)
}

/// Verify `content` (named `package` in the report) against a signature
/// file already parsed (one that came in a request rather than from a
/// file), through the [`Verifier`] at `opts.now`.
pub fn verify_parsed(
    package: &Path,
    mut content: Content<'_>,
    signature: &SignatureFile,
    trust: &TrustStore,
    opts: &VerifyOptions,
) -> Result<Verified<Package>, VerifyError> {
    if opts.threshold == 0 {
        return Err(Error::from(Invalid::ThresholdZero).into());
    }
    // The trusted-keys directory's own threshold is a floor: a caller's
    // `--threshold` may only raise it.
    let report = Report::new(package, opts.threshold.max(trust.threshold()));
    let verifier = Verifier::new(trust, opts.now);
    match signature {
        SignatureFile::Pkgsign(blocks) => {
            verify_blocks(package, &mut content, blocks, &verifier, opts, report)
        }
        SignatureFile::Raw(sig) => verify_raw(package, &mut content, sig, &verifier, opts, report),
        SignatureFile::SshSig(sig) => {
            verify_sshsig(package, &mut content, sig, &verifier, opts, report)
        }
    }
}

/// Check only that `package`'s digest is `expected` (`--checksum` with no
/// key). The result says nothing about who made the package.
pub fn verify_checksum(
    package: &Path,
    expected: &Digest,
    opts: &VerifyOptions,
) -> Result<ChecksumMatched, VerifyError> {
    if opts.threshold == 0 {
        return Err(Error::from(Invalid::ThresholdZero).into());
    }
    let (_, digests) = opts.hash(package, &[expected.alg()])?;
    let actual = check_checksum(package, expected, &digests)?;
    Ok(ChecksumMatched::new(package, actual.clone()))
}

fn check_checksum<'d>(
    package: &Path,
    expected: &Digest,
    digests: &'d [Digest],
) -> Result<&'d Digest, VerifyError> {
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
        Err(VerifyError::ChecksumMismatch {
            path: package.to_path_buf(),
            algorithm: expected.alg().name(),
            expected: expected.hex(),
            actual: actual.hex(),
        })
    }
}

fn finish(mut report: Report) -> Result<Verified<Package>, VerifyError> {
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
        Err(VerifyError::Refused(Box::new(report)))
    }
}

fn verify_blocks(
    package: &Path,
    content: &mut Content<'_>,
    blocks: &[Block],
    verifier: &Verifier<'_>,
    opts: &VerifyOptions,
    mut report: Report,
) -> Result<Verified<Package>, VerifyError> {
    // 1. Trust and statement signatures: cheap, before reading the package.
    // Each result, with the statement still to be checked against the
    // package when its key and signature were accepted.
    let mut results: Vec<(SignatureResult, Option<&Statement>)> = Vec::new();
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
            name: st.identity.name.clone(),
            version: st.identity.version.as_ref().map(ToString::to_string),
            expires: st.identity.expires.map(time_text),
            identity: st.identity.clone(),
            refusal: None,
            reason: String::new(),
        };
        match verifier.check(
            st.domain(),
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
                results.push((result, None));
            }
            Decision::Accepted(key, why) => {
                result.key_name = Some(key.name.clone());
                result.principal = Some(key.principal().clone());
                // A trusted signature over another release, or a stale one,
                // does not count.
                if let Some((refusal, reason)) =
                    identity_refusal(&st.identity, opts, verifier.now())
                {
                    result.refusal = Some(refusal);
                    result.reason = reason;
                    results.push((result, None));
                } else {
                    result.reason = why;
                    results.push((result, Some(st)));
                }
            }
        }
    }

    // 2. Hash the package once, with every algorithm needed.
    let mut algs: Vec<HashAlg> = results
        .iter()
        .filter_map(|(_, pending)| pending.map(|st| st.digest.alg()))
        .collect();
    if let Some(c) = &opts.checksum {
        algs.push(c.alg());
    }
    algs.sort();
    algs.dedup();
    if algs.is_empty() {
        report.signatures = results.into_iter().map(|(r, _)| r).collect();
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
    for (result, pending) in &mut results {
        let Some(st) = pending else { continue };
        let actual = digests.iter().find(|d| d.alg() == st.digest.alg());
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
    report.signatures = results.into_iter().map(|(r, _)| r).collect();
    finish(report)
}

/// Why a statement naming `id` does not count under `opts` at `now`.
fn identity_refusal(id: &Identity, opts: &VerifyOptions, now: u64) -> Option<(Refusal, String)> {
    if let Some(t) = id.expires.filter(|t| now > *t) {
        return Some((
            Refusal::SignatureExpired,
            format!(
                "the signature expired at {} (its signer set that expiry); it is now {}",
                time_text(t),
                time_text(now)
            ),
        ));
    }
    if let Some(want) = &opts.name {
        match &id.name {
            Some(n) if n == want => {}
            Some(n) => {
                return Some((
                    Refusal::NameMismatch,
                    format!("the signature is for package {n:?}, not {want:?}"),
                ));
            }
            None => {
                return Some((
                    Refusal::NameMismatch,
                    format!("the signature names no package, and {want:?} was asked for"),
                ));
            }
        }
    }
    if let Some(min) = &opts.min_version {
        let Some(version) = &id.version else {
            return Some((
                Refusal::Rollback,
                format!("the signature names no release version, and at least {min} was asked for"),
            ));
        };
        let ordering = Version::parse(min, version.scheme())
            .ok()
            .and_then(|m| version.compare(&m));
        match ordering {
            Some(std::cmp::Ordering::Less) => {
                return Some((
                    Refusal::Rollback,
                    format!("release {version} is older than the minimum {min}"),
                ));
            }
            Some(_) => {}
            None => {
                return Some((
                    Refusal::Rollback,
                    format!(
                        "release {version} ({} scheme) cannot be compared with the minimum {min:?}",
                        version.scheme()
                    ),
                ));
            }
        }
    }
    None
}

const RAW_ED25519: &str = "raw-ed25519";
const RAW_RSA: &str = "raw-rsa-pkcs1v15-sha256";

/// The one signature of a raw or SSH signature file, before it is judged:
/// no statement, so no time, comment or release.
fn unnamed_result(algorithm: String) -> SignatureResult {
    SignatureResult {
        index: 1,
        key: None,
        key_name: None,
        principal: None,
        algorithm,
        signed_at: None,
        comment: None,
        name: None,
        version: None,
        expires: None,
        identity: Identity::default(),
        refusal: None,
        reason: String::new(),
    }
}

/// An SSH signature: its namespace, the trust of the key it carries, then
/// its signature over the namespace and the package's hash. It names no
/// release, so `--name` and `--min-version` refuse it, as a raw signature.
fn verify_sshsig(
    package: &Path,
    content: &mut Content<'_>,
    sig: &crate::sign::sshsig::SshSignature,
    verifier: &Verifier<'_>,
    opts: &VerifyOptions,
    mut report: Report,
) -> Result<Verified<Package>, VerifyError> {
    let fp = sig.key.fingerprint();
    let mut result = SignatureResult {
        key: Some(fp.clone()),
        ..unnamed_result(format!("sshsig-{}", sig.algorithm))
    };
    let wanted = opts
        .namespace
        .as_deref()
        .unwrap_or(crate::sign::sshsig::DEFAULT_NAMESPACE);
    let mut pending = false;
    if sig.namespace != wanted {
        result.refusal = Some(Refusal::SignatureInvalid);
        result.reason = format!(
            "the SSH signature is for namespace {:?}, not {wanted:?}: it was made for another purpose",
            sig.namespace
        );
    } else if let Some((refusal, reason)) =
        identity_refusal(&Identity::default(), opts, verifier.now())
    {
        result.refusal = Some(refusal);
        result.reason = reason;
    } else {
        match verifier.decide(&fp, None) {
            Decision::Accepted(key, why) => {
                result.key_name = Some(key.name.clone());
                result.principal = Some(key.principal().clone());
                result.reason = why;
                pending = true;
            }
            Decision::Refused(code, reason) => {
                result.refusal = Some(code);
                result.reason = reason;
            }
        }
    }
    if pending {
        let mut algs = vec![sig.hash];
        if let Some(c) = &opts.checksum {
            algs.push(c.alg());
        }
        algs.sort();
        algs.dedup();
        let (_, digests) = content.hash(package, opts, &algs)?;
        if let Some(c) = &opts.checksum {
            check_checksum(package, c, &digests)?;
        }
        if let Some(d) = digests.first() {
            report.set_hash(d);
        }
        let hash = digests.iter().find(|d| d.alg() == sig.hash);
        let ok = hash.is_some_and(|h| {
            let body = crate::sign::sshsig::signed_body(&sig.namespace, sig.hash, h.as_bytes());
            domain::verify(
                crate::sign::sshsig::DOMAIN,
                &sig.key,
                Message::Bytes(&body),
                &sig.signature,
            )
        });
        if !ok {
            result.refusal = Some(Refusal::SignatureInvalid);
            result.reason = "the SSH signature does not match the package: it was modified, or the signature belongs to another package".into();
        }
    }
    report.signatures = vec![result];
    finish(report)
}

fn verify_raw(
    package: &Path,
    content: &mut Content<'_>,
    sig: &[u8],
    verifier: &Verifier<'_>,
    opts: &VerifyOptions,
    mut report: Report,
) -> Result<Verified<Package>, VerifyError> {
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
    let mut result = unnamed_result(algorithm.to_string());
    match signer {
        Some(k) => {
            result.key = Some(k.fingerprint.clone());
            result.key_name = Some(k.name.clone());
            match verifier.decide(&k.fingerprint, None) {
                Decision::Accepted(_, why) => {
                    result.principal = Some(k.principal().clone());
                    // A raw signature names no release: it cannot meet
                    // --name or --min-version.
                    match identity_refusal(&Identity::default(), opts, verifier.now()) {
                        Some((refusal, reason)) => {
                            result.refusal = Some(refusal);
                            result.reason = format!("a raw signature: {reason}");
                        }
                        None => result.reason = why,
                    }
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
mod proof_tests {
    use super::*;
    use crate::keys::{KeySource, KeySpec, LocalKey, generate};
    use crate::sign::signer::{SignOptions, sign_package};
    use std::path::PathBuf;

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
            Err(VerifyError::Failed(Error::Trust(TrustError::NoKeys(_))))
        ));
        let matched = verify_checksum(&pkg, &digest, &opts).unwrap();
        assert!(matched.digest().ct_eq(&digest));
        assert!(matched.report().signatures.is_empty());
        let other = digest::hash_bytes(HashAlg::Sha256, b"other bytes");
        assert!(matches!(
            verify_checksum(&pkg, &other, &opts),
            Err(VerifyError::ChecksumMismatch { .. })
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
        assert!(matches!(
            verify(b"release bytez"),
            Err(VerifyError::Refused(_))
        ));
    }
}

//! The outcome of a verification, per signature, and the proof value a
//! successful verification returns.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::digest::Digest;
use crate::error::Code;
use crate::keys::Fingerprint;
use crate::text::format_time;

pub use crate::sign::refusal::Refusal;

/// The result for one signature of the file.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureResult {
    /// Position in the file, from 1.
    pub index: usize,
    /// The key that made it (named in the signature, or, for a raw
    /// signature, the trusted key it verified with).
    pub key: Option<Fingerprint>,
    /// The trusted key's name, when known.
    pub key_name: Option<String>,
    /// The principal the key signs for (the first key of its lineage), when
    /// the key is trusted.
    pub principal: Option<Fingerprint>,
    /// Signature scheme (`ed25519`, `rsa-pss-sha256`, `raw-ed25519`, `raw-rsa-pkcs1v15-sha256`).
    pub algorithm: String,
    /// Signed time (pkgsign format only), RFC 3339.
    pub signed_at: Option<String>,
    /// Signed comment (pkgsign format only).
    pub comment: Option<String>,
    /// The signed package name (format v2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The signed release version (format v2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// When the signature stops verifying (format v2), RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// The same release identity, typed (what `name`, `version` and
    /// `expires` show).
    #[serde(skip)]
    pub identity: crate::sign::identity::Identity,
    /// `None` when valid.
    pub refusal: Option<Refusal>,
    /// One line explaining the decision.
    pub reason: String,
}

impl SignatureResult {
    /// Whether this signature counts.
    pub fn is_valid(&self) -> bool {
        self.refusal.is_none()
    }
}

/// The seed's name of a signature scheme (seed 004 names algorithms
/// `Ed25519`, `RSA-PSS-SHA256` and `RSA-SHA256`, for raw PKCS#1 v1.5
/// signatures): what the service's `algorithm` field and the audit log's
/// `signature_algorithm` field hold. `unknown` for any other name.
pub fn seed_algorithm(scheme: &str) -> &'static str {
    match scheme {
        "ed25519" | "raw-ed25519" | "sshsig-ssh-ed25519" => "Ed25519",
        "rsa-pss-sha256" => "RSA-PSS-SHA256",
        "raw-rsa-pkcs1v15-sha256" => "RSA-SHA256",
        "sshsig-rsa-sha2-512" => "RSA-SHA512",
        _ => "unknown",
    }
}

/// Everything a verification found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The package.
    pub package: PathBuf,
    /// The package's digest (the first algorithm computed), when it was hashed.
    pub package_hash: Option<String>,
    /// Per-signature results.
    pub signatures: Vec<SignatureResult>,
    /// Distinct trusted keys with a valid signature.
    pub valid_keys: usize,
    /// Distinct principals with a valid signature: a key and the keys it
    /// endorsed count once. The threshold counts these.
    pub valid_principals: usize,
    /// How many principals were required.
    pub threshold: usize,
}

impl Report {
    /// New, empty report.
    pub fn new(package: &Path, threshold: usize) -> Self {
        Report {
            package: package.to_path_buf(),
            package_hash: None,
            signatures: Vec::new(),
            valid_keys: 0,
            valid_principals: 0,
            threshold,
        }
    }

    /// Record the package digest.
    pub fn set_hash(&mut self, d: &Digest) {
        self.package_hash = Some(d.to_string());
    }

    /// Whether the threshold is met.
    pub fn accepted(&self) -> bool {
        self.valid_principals >= self.threshold
    }

    /// The code to report for a refused verification.
    pub fn code(&self) -> Code {
        if self.valid_keys > 0 {
            return Code::ThresholdNotMet;
        }
        self.signatures
            .iter()
            .filter_map(|s| s.refusal)
            .min_by_key(|r| r.priority())
            .map(Refusal::code)
            .unwrap_or(Code::SignatureInvalid)
    }

    /// The valid signatures.
    pub fn valid(&self) -> impl Iterator<Item = &SignatureResult> {
        self.signatures.iter().filter(|s| s.is_valid())
    }

    /// Who signed, for a person, one signer per line: for several keys,
    /// `N keys`, then one indented line per valid signature naming the key,
    /// when, with what comment (no final newline), so that `signed by {}`
    /// gives a header line and a line per key; for one key, its line alone.
    pub fn signers_block(&self) -> String {
        let lines: Vec<String> = self.valid().map(describe_signer).collect();
        if let [one] = lines.as_slice() {
            return one.clone();
        }
        let mut out = format!(
            "{} key{}",
            lines.len(),
            if lines.len() == 1 { "" } else { "s" }
        );
        for l in lines {
            out.push_str("\n  ");
            out.push_str(&l);
        }
        out
    }

    /// One line naming who signed, when, with what comment (for one-line
    /// messages and the release store's `release.json`).
    pub fn signers_line(&self) -> String {
        self.valid()
            .map(describe_signer)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn describe_signer(s: &SignatureResult) -> String {
    let mut out = match &s.key {
        Some(k) => k.to_string(),
        None => "unknown key".into(),
    };
    if let Some(n) = &s.key_name {
        out.push_str(&format!(" ({n}, {})", s.algorithm));
    } else {
        out.push_str(&format!(" ({})", s.algorithm));
    }
    if let Some(t) = &s.signed_at {
        out.push_str(&format!(" at {t}"));
    }
    match (&s.name, &s.version) {
        (Some(n), Some(v)) => out.push_str(&format!(" release {n} {v}")),
        (Some(n), None) => out.push_str(&format!(" release {n}")),
        (None, Some(v)) => out.push_str(&format!(" release version {v}")),
        (None, None) => {}
    }
    if let Some(t) = &s.expires {
        out.push_str(&format!(" expires {t}"));
    }
    if let Some(c) = &s.comment {
        out.push_str(&format!(" comment {c:?}"));
    }
    out
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pkg = self.package.display();
        if self.valid_keys > 0 {
            let lineage = if self.valid_keys > self.valid_principals {
                " (keys of one lineage, a key and the keys it endorsed, count once)"
            } else {
                ""
            };
            return write!(
                f,
                "{pkg}: only {} of the {} required independent signers signed it validly{lineage} ({}); get the package signed by more trusted keys of other lineages",
                self.valid_principals,
                self.threshold,
                self.signers_line()
            );
        }
        let reasons: Vec<String> = self
            .signatures
            .iter()
            .filter(|s| !s.is_valid())
            .map(|s| format!("signature {}: {}", s.index, s.reason))
            .collect();
        write!(
            f,
            "{pkg}: verification refused: {}",
            if reasons.is_empty() {
                "no signature".to_string()
            } else {
                reasons.join("; ")
            }
        )
    }
}

/// What a [`Verified`] proof is about, and what it carries.
pub trait Subject: sealed::Sealed {
    /// What the proof holds.
    type Evidence: fmt::Debug + Clone;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Package {}
    impl Sealed for super::KeyStatement {}
}

/// Marker: a package (or a signed checksum list) whose signatures met the threshold.
#[derive(Debug, Clone, Copy)]
pub enum Package {}

/// Marker: a key lineage statement whose signatures verified and whose
/// signer (and cosigners) may change the directory now.
#[derive(Debug, Clone, Copy)]
pub enum KeyStatement {}

impl Subject for Package {
    type Evidence = Report;
}

/// What a verified key statement was signed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementSigners {
    /// The signing key.
    pub signer: Fingerprint,
    /// The signer's principal (the first key of its lineage).
    pub principal: Fingerprint,
    /// The distinct principals that signed it (the signer's and cosigners').
    pub principals: Vec<Fingerprint>,
}

impl Subject for KeyStatement {
    type Evidence = StatementSigners;
}

/// Proof that something verified: made only by the verifier, when the
/// signatures and the trust decision allow it. Code that installs a
/// package requires a `Verified<Package>`; code that changes a trusted-keys
/// directory a `Verified<KeyStatement>`. A checksum-only check gives a
/// [`ChecksumMatched`] instead, which is not a proof of authenticity.
pub struct Verified<T: Subject = Package> {
    evidence: T::Evidence,
}

impl<T: Subject> fmt::Debug for Verified<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verified")
            .field("evidence", &self.evidence)
            .finish()
    }
}

impl<T: Subject> Clone for Verified<T> {
    fn clone(&self) -> Self {
        Verified {
            evidence: self.evidence.clone(),
        }
    }
}

impl<T: Subject> Verified<T> {
    pub(crate) fn new(evidence: T::Evidence) -> Self {
        Verified { evidence }
    }
}

impl Verified<Package> {
    /// The full report.
    pub fn report(&self) -> &Report {
        &self.evidence
    }

    /// The keys that signed validly.
    pub fn signers(&self) -> impl Iterator<Item = &SignatureResult> {
        self.evidence.valid()
    }

    /// The release the counted signatures name (every block of a file
    /// names the same one; empty for version 1 and raw signatures).
    pub fn identity(&self) -> crate::sign::identity::Identity {
        self.signers()
            .next()
            .map(|s| s.identity.clone())
            .unwrap_or_default()
    }
}

impl Verified<KeyStatement> {
    /// Who signed the statement.
    pub fn signers(&self) -> &StatementSigners {
        &self.evidence
    }
}

/// A package whose digest matched the one given (`--checksum` with no
/// key): it says the bytes are the expected ones, not who made them.
#[derive(Debug, Clone)]
pub struct ChecksumMatched {
    package: PathBuf,
    digest: Digest,
}

impl ChecksumMatched {
    pub(crate) fn new(package: &Path, digest: Digest) -> Self {
        ChecksumMatched {
            package: package.to_path_buf(),
            digest,
        }
    }

    /// The package.
    pub fn package(&self) -> &Path {
        &self.package
    }

    /// Its digest, equal to the expected one.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// For display: a report with no signature and no threshold.
    pub fn report(&self) -> Report {
        let mut r = Report::new(&self.package, 0);
        r.set_hash(&self.digest);
        r
    }
}

/// Format a signed time for a result.
pub fn time_text(secs: u64) -> String {
    format_time(secs)
}

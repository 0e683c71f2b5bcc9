//! Key lineage: signed statements that let a worker follow rotations and
//! revocations offline, from a key it already trusts.
//!
//! - An *endorsement* is signed by the old key and countersigned by the new
//!   one: "key NEW (this SPKI) takes over from me, valid from T; I retire at T2".
//! - A *revocation* is signed by a trusted key: "key X is revoked at T, because R".
//!
//! Every statement carries a sequence number: the position of the statement
//! in its lineage (the keys that descend from one first key, its
//! *principal*). Heads of other lineages may add cosignatures, so that a
//! directory that requires N principals for a package also requires N for a
//! change of its keys. The rules a worker applies them by are in
//! [`apply`] and `docs/rotation.md`.

use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::error::{Error, Invalid, ParseError, Result};
use crate::fsutil::{self, Replace};
use crate::keys::{Fingerprint, KeySource, PublicKey};
use crate::sign::Signer;
use crate::sign::domain::{self, Domain, Message};
use crate::text::fields::{FieldError, FieldResult, Fields};
use crate::text::{check_comment, format_time};

mod apply;

pub use apply::{Applied, Decision, MAX_STATEMENTS, update, why_not_current};

/// First line of a key statement file.
pub const HEADER: &str = "pkgsign-key-statement v2";
/// First line of the statements pkgsign 0.1 wrote (no sequence number):
/// read only to refuse them with a clear message.
pub const HEADER_V1: &str = "pkgsign-key-statement v1";
/// Domain separation for key statements.
pub const CONTEXT: &[u8] = crate::sign::Domain::KeyStatement.prefix();
/// File extension of statement files.
pub const EXT: &str = "stmt";
const LIMIT: u64 = 64 * 1024;
/// Longest base64 value (a key or signature) accepted in a statement.
const MAX_BASE64: usize = 2048;
/// Most cosignatures a statement may carry.
const MAX_COSIGNATURES: usize = 16;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// What a statement says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // A handful per run; boxing buys nothing.
pub enum Claim {
    /// The signer endorses a new key.
    Endorse {
        /// The new key.
        subject_key: PublicKey,
        /// Its name.
        subject_name: String,
        /// Its window start.
        not_before: u64,
        /// Its window end, if any.
        not_after: Option<u64>,
        /// When the signer itself retires (end of the grace window).
        signer_not_after: Option<u64>,
    },
    /// The signer revokes a key.
    Revoke {
        /// When.
        revoked_at: u64,
        /// Why.
        reason: String,
    },
}

/// A signed key statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Position in the signer's lineage: one more than the sequence of the
    /// statement that introduced the signer or that it signed last.
    pub sequence: u64,
    /// The key the statement is about.
    pub subject: Fingerprint,
    /// The claim.
    pub claim: Claim,
    /// When it was made (informational: no rule trusts it).
    pub issued_at: u64,
    /// The signing key.
    pub signer: Fingerprint,
    /// Signature by `signer`.
    pub signature: Vec<u8>,
    /// Countersignature by the subject key (endorsements only).
    pub countersignature: Option<Vec<u8>>,
    /// Signatures by the heads of other lineages, sorted by fingerprint.
    pub cosignatures: Vec<(Fingerprint, Vec<u8>)>,
}

impl Statement {
    /// The signed text (header through the `signer:` line).
    pub fn signed_text(&self) -> String {
        let mut s = format!("{HEADER}\n");
        let kind = match self.claim {
            Claim::Endorse { .. } => "endorse",
            Claim::Revoke { .. } => "revoke",
        };
        s.push_str(&format!("kind: {kind}\nsequence: {}\n", self.sequence));
        s.push_str(&format!("subject: {}\n", self.subject));
        match &self.claim {
            Claim::Endorse {
                subject_key,
                subject_name,
                not_before,
                not_after,
                signer_not_after,
            } => {
                s.push_str(&format!(
                    "subject-key: {}\n",
                    B64.encode(subject_key.spki_der())
                ));
                s.push_str(&format!("subject-name: {subject_name}\n"));
                s.push_str(&format!("not-before: {}\n", format_time(*not_before)));
                if let Some(t) = not_after {
                    s.push_str(&format!("not-after: {}\n", format_time(*t)));
                }
                if let Some(t) = signer_not_after {
                    s.push_str(&format!("signer-not-after: {}\n", format_time(*t)));
                }
            }
            Claim::Revoke { revoked_at, reason } => {
                s.push_str(&format!("revoked-at: {}\n", format_time(*revoked_at)));
                s.push_str(&format!("reason: {reason}\n"));
            }
        }
        s.push_str(&format!("issued-at: {}\n", format_time(self.issued_at)));
        s.push_str(&format!("signer: {}\n", self.signer));
        s
    }

    /// Whether `signature` is `key`'s over this statement, in the key
    /// statement domain.
    fn signed_by(&self, key: &PublicKey, signature: &[u8]) -> bool {
        domain::verify(
            Domain::KeyStatement,
            key,
            Message::Bytes(self.signed_text().as_bytes()),
            signature,
        )
    }

    /// `key`'s signature over this statement, checked before it is returned.
    fn sign_by(&self, key: &dyn KeySource) -> Result<Vec<u8>> {
        Signer::new(key).sign(
            Domain::KeyStatement,
            Message::Bytes(self.signed_text().as_bytes()),
        )
    }

    /// The whole file.
    pub fn to_text(&self) -> String {
        let mut s = self.signed_text();
        s.push_str(&format!("signature: {}\n", B64.encode(&self.signature)));
        if let Some(c) = &self.countersignature {
            s.push_str(&format!("countersignature: {}\n", B64.encode(c)));
        }
        for (fp, sig) in &self.cosignatures {
            s.push_str(&format!("cosignature: {fp} {}\n", B64.encode(sig)));
        }
        s
    }

    /// A file name that sorts by time, and names the sequence number, so
    /// that two statements about one key in the same second (a second
    /// revocation, say) never overwrite each other.
    pub fn file_name(&self) -> String {
        let kind = match self.claim {
            Claim::Endorse { .. } => "endorse",
            Claim::Revoke { .. } => "revoke",
        };
        let t = format_time(self.issued_at).replace([':', '-'], "");
        format!(
            "{t}-{kind}-{}-{}-{}.{EXT}",
            self.subject.short_hex(),
            self.signer.short_hex(),
            self.sequence
        )
    }

    /// Endorse `new` with `old`, countersigned by `new`; `sequence` is the
    /// next of `old`'s lineage.
    pub fn endorse(
        old: &dyn KeySource,
        new: &dyn KeySource,
        subject_name: &str,
        window: (u64, Option<u64>),
        issued_at: u64,
        sequence: u64,
    ) -> Result<Self> {
        let (not_before, signer_not_after) = window;
        let mut st = Statement {
            sequence,
            subject: new.public_key().fingerprint(),
            claim: Claim::Endorse {
                subject_key: new.public_key().clone(),
                subject_name: subject_name.to_string(),
                not_before,
                not_after: None,
                signer_not_after,
            },
            issued_at,
            signer: old.public_key().fingerprint(),
            signature: Vec::new(),
            countersignature: None,
            cosignatures: Vec::new(),
        };
        st.signature = st.sign_by(old)?;
        st.countersignature = Some(st.sign_by(new)?);
        Ok(st)
    }

    /// A revocation of `subject` signed by `signer`; `sequence` is the next
    /// of `signer`'s lineage.
    pub fn revoke(
        signer: &dyn KeySource,
        subject: &Fingerprint,
        revoked_at: u64,
        reason: &str,
        issued_at: u64,
        sequence: u64,
    ) -> Result<Self> {
        check_comment(reason).map_err(|reason| Invalid::Reason { reason })?;
        let mut st = Statement {
            sequence,
            subject: subject.clone(),
            claim: Claim::Revoke {
                revoked_at,
                reason: reason.to_string(),
            },
            issued_at,
            signer: signer.public_key().fingerprint(),
            signature: Vec::new(),
            countersignature: None,
            cosignatures: Vec::new(),
        };
        st.signature = st.sign_by(signer)?;
        Ok(st)
    }

    /// Add the cosignature of `key` (the head of another lineage).
    pub fn cosign(&mut self, key: &dyn KeySource) -> Result<()> {
        let fp = key.public_key().fingerprint();
        if fp == self.signer || fp == self.subject {
            return Err(Invalid::CosignerIsParty {
                key: fp.to_string(),
            }
            .into());
        }
        if self.cosignatures.iter().any(|(f, _)| f == &fp) {
            return Err(Invalid::AlreadyCosigned {
                key: fp.to_string(),
            }
            .into());
        }
        if self.cosignatures.len() >= MAX_COSIGNATURES {
            return Err(Invalid::TooManyCosignatures {
                max: MAX_COSIGNATURES,
            }
            .into());
        }
        let sig = self.sign_by(key)?;
        self.cosignatures.push((fp, sig));
        self.cosignatures.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(())
    }

    /// Check the signature with `signer` (and, for an endorsement, the
    /// countersignature with the subject key it carries).
    pub fn verify_with(&self, signer: &PublicKey) -> std::result::Result<(), String> {
        if signer.fingerprint() != self.signer {
            return Err("signer key mismatch".into());
        }
        if !self.signed_by(signer, &self.signature) {
            return Err(format!("the signature by {} does not verify", self.signer));
        }
        if let Claim::Endorse { subject_key, .. } = &self.claim {
            let ok = self
                .countersignature
                .as_ref()
                .is_some_and(|c| self.signed_by(subject_key, c));
            if !ok {
                return Err(format!(
                    "the countersignature by the new key {} does not verify",
                    self.subject
                ));
            }
        }
        Ok(())
    }

    /// Whether `key` made the cosignature it is named in.
    pub fn cosignature_verifies(&self, key: &PublicKey) -> bool {
        let fp = key.fingerprint();
        self.cosignatures
            .iter()
            .find(|(f, _)| f == &fp)
            .is_some_and(|(_, sig)| self.signed_by(key, sig))
    }

    /// One line: what the statement says.
    pub fn summary(&self) -> String {
        match &self.claim {
            Claim::Endorse { subject_name, .. } => format!(
                "statement {} of its lineage: {} endorses {} ({subject_name})",
                self.sequence, self.signer, self.subject
            ),
            Claim::Revoke { reason, .. } => format!(
                "statement {} of its lineage: {} revokes {} ({reason})",
                self.sequence, self.signer, self.subject
            ),
        }
    }

    /// Write into `dir` atomically.
    pub fn publish(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "creating directory", e))?;
        let path = dir.join(self.file_name());
        fsutil::write_atomic(&path, self.to_text().as_bytes(), 0o644, Replace::Allowed)?;
        Ok(path)
    }

    /// Read and parse a statement file.
    pub fn read(path: &Path) -> Result<Self> {
        let data = fsutil::read_bounded(path, LIMIT, "key statement")?;
        Self::parse(path, &data)
    }

    /// Parse the bytes `data` of the statement file `path` (see
    /// [`Statement::read`], which bounds the file's size first). A parsed
    /// statement's [`Statement::to_text`] is `data` again.
    pub fn parse(path: &Path, data: &[u8]) -> Result<Self> {
        if data.starts_with(format!("{HEADER_V1}\n").as_bytes()) {
            return Err(Error::Parse(ParseError::StatementOutdated {
                path: path.to_path_buf(),
            }));
        }
        parse(data).map_err(|FieldError { line, reason }| {
            Error::Parse(ParseError::SignatureMalformed {
                path: path.to_path_buf(),
                line,
                reason,
            })
        })
    }
}

fn parse(data: &[u8]) -> FieldResult<Statement> {
    let text = std::str::from_utf8(data).map_err(|_| FieldError::new(None, "not UTF-8 text"))?;
    let body = text.strip_suffix('\n').ok_or(FieldError::new(
        None,
        "the file does not end with a newline",
    ))?;
    let mut f = Fields::new(body);
    if f.line("the header")?.1 != HEADER {
        return Err(FieldError::new(
            Some(1),
            format!("the first line must be {HEADER:?}"),
        ));
    }
    let (kn, kind) = f.next("kind")?;
    let (sn, seq) = f.next("sequence")?;
    let sequence = seq
        .parse::<u64>()
        .ok()
        .filter(|n| *n >= 1 && n.to_string() == seq)
        .ok_or(FieldError::new(
            Some(sn),
            "sequence must be a whole number from 1",
        ))?;
    let subject = f.fingerprint("subject")?;
    let claim = match kind {
        "endorse" => {
            let (_, der) = f.base64("subject-key", MAX_BASE64)?;
            let subject_key =
                crate::keys::encoding::public_key_from_spki_der(Path::new("subject-key"), &der)
                    .map_err(|e| FieldError::new(None, e.to_string()))?;
            if subject_key.fingerprint() != subject {
                return Err(FieldError::new(
                    None,
                    "subject-key does not match the subject fingerprint",
                ));
            }
            let (nn, subject_name) = f.next("subject-name")?;
            crate::keys::generate::check_name(subject_name)
                .map_err(|e| FieldError::new(Some(nn), e.to_string()))?;
            let not_before = f.time("not-before")?;
            let not_after = f.optional_time("not-after")?;
            let signer_not_after = f.optional_time("signer-not-after")?;
            Claim::Endorse {
                subject_key,
                subject_name: subject_name.to_string(),
                not_before,
                not_after,
                signer_not_after,
            }
        }
        "revoke" => {
            let revoked_at = f.time("revoked-at")?;
            let (n, reason) = f.next("reason")?;
            check_comment(reason).map_err(|e| FieldError::new(Some(n), e))?;
            Claim::Revoke {
                revoked_at,
                reason: reason.to_string(),
            }
        }
        _ => return Err(FieldError::new(Some(kn), "kind must be endorse or revoke")),
    };
    let issued_at = f.time("issued-at")?;
    let signer = f.fingerprint("signer")?;
    let (_, signature) = f.base64("signature", MAX_BASE64)?;
    let countersignature = match claim {
        Claim::Endorse { .. } => Some(f.base64("countersignature", MAX_BASE64)?.1),
        Claim::Revoke { .. } => None,
    };
    let mut cosignatures = Vec::new();
    while let Some((n, v)) = f.optional("cosignature")? {
        if cosignatures.len() >= MAX_COSIGNATURES {
            return Err(FieldError::new(
                Some(n),
                format!("more than {MAX_COSIGNATURES} cosignatures"),
            ));
        }
        cosignatures.push(cosignature(n, v)?);
    }
    if f.has_more() {
        return Err(FieldError::new(
            Some(f.next_line_number()),
            "unexpected data after the last field",
        ));
    }
    let st = Statement {
        sequence,
        subject,
        claim,
        issued_at,
        signer,
        signature,
        countersignature,
        cosignatures,
    };
    // Canonical form only: what we would write must be what we read (this
    // also refuses cosignatures out of order or twice).
    let sorted = st
        .cosignatures
        .iter()
        .zip(st.cosignatures.iter().skip(1))
        .all(|(a, b)| a.0 < b.0);
    if !sorted || st.to_text() != text {
        return Err(FieldError::new(None, "not in canonical form"));
    }
    Ok(st)
}

/// `FINGERPRINT BASE64`, the value of a `cosignature:` line.
fn cosignature(n: usize, v: &str) -> FieldResult<(Fingerprint, Vec<u8>)> {
    let bad = || FieldError::new(Some(n), "cosignature must be \"FINGERPRINT BASE64\"");
    let (fp, sig) = v.split_once(' ').ok_or_else(bad)?;
    let fp: Fingerprint = fp
        .parse()
        .map_err(|e: crate::keys::FingerprintError| FieldError::new(Some(n), e.to_string()))?;
    match B64.decode(sig) {
        Ok(b) if b.len() <= MAX_BASE64 && B64.encode(&b) == sig => Ok((fp, b)),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests;

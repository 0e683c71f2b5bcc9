//! Key lineage: signed statements that let a worker follow rotations and
//! revocations offline, from a key it already trusts.
//!
//! - An *endorsement* is signed by the old key and countersigned by the new
//!   one: "key NEW (this SPKI) takes over from me, valid from T; I retire at T2".
//! - A *revocation* is signed by a trusted key: "key X is revoked at T, because R".
//!
//! `pkgsign trust update TDIR --from DIR` applies, in a loop until nothing
//! changes, every statement whose signer is already trusted (and was inside
//! its window when it signed), and refuses the rest. See `docs/rotation.md`.

use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::error::{Error, Result};
use crate::fields::{FieldResult, Fields};
use crate::fsutil::{self, Replace};
use crate::keys::{Fingerprint, KeySource, PublicKey, SignRequest};
use crate::sigfile::{check_comment, format_time};
use crate::trustdir::TrustDir;

/// First line of a key statement file.
pub const HEADER: &str = "pkgsign-key-statement v1";
/// Domain separation for key statements.
pub const CONTEXT: &[u8] = b"pkgsign key statement v1\0";
/// File extension of statement files.
pub const EXT: &str = "stmt";
const LIMIT: u64 = 64 * 1024;
/// Longest base64 value (a key or signature) accepted in a statement.
const MAX_BASE64: usize = 2048;
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
    /// The key the statement is about.
    pub subject: Fingerprint,
    /// The claim.
    pub claim: Claim,
    /// When it was made.
    pub issued_at: u64,
    /// The signing key.
    pub signer: Fingerprint,
    /// Signature by `signer`.
    pub signature: Vec<u8>,
    /// Countersignature by the subject key (endorsements only).
    pub countersignature: Option<Vec<u8>>,
}

impl Statement {
    /// The signed text (header through the `signer:` line).
    pub fn signed_text(&self) -> String {
        let mut s = format!("{HEADER}\n");
        match &self.claim {
            Claim::Endorse {
                subject_key,
                subject_name,
                not_before,
                not_after,
                signer_not_after,
            } => {
                s.push_str("kind: endorse\n");
                s.push_str(&format!("subject: {}\n", self.subject));
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
                s.push_str("kind: revoke\n");
                s.push_str(&format!("subject: {}\n", self.subject));
                s.push_str(&format!("revoked-at: {}\n", format_time(*revoked_at)));
                s.push_str(&format!("reason: {reason}\n"));
            }
        }
        s.push_str(&format!("issued-at: {}\n", format_time(self.issued_at)));
        s.push_str(&format!("signer: {}\n", self.signer));
        s
    }

    fn message(&self) -> Vec<u8> {
        let mut m = CONTEXT.to_vec();
        m.extend_from_slice(self.signed_text().as_bytes());
        m
    }

    /// The whole file.
    pub fn to_text(&self) -> String {
        let mut s = self.signed_text();
        s.push_str(&format!("signature: {}\n", B64.encode(&self.signature)));
        if let Some(c) = &self.countersignature {
            s.push_str(&format!("countersignature: {}\n", B64.encode(c)));
        }
        s
    }

    /// A file name that sorts by time.
    pub fn file_name(&self) -> String {
        let kind = match self.claim {
            Claim::Endorse { .. } => "endorse",
            Claim::Revoke { .. } => "revoke",
        };
        let t = format_time(self.issued_at).replace([':', '-'], "");
        format!("{t}-{kind}-{}.{EXT}", self.subject.short_hex())
    }

    /// Endorse `new` with `old`, countersigned by `new`.
    pub fn endorse(
        old: &dyn KeySource,
        new: &dyn KeySource,
        subject_name: &str,
        not_before: u64,
        signer_not_after: Option<u64>,
        issued_at: u64,
    ) -> Result<Self> {
        let mut st = Statement {
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
        };
        let m = st.message();
        st.signature = old.sign(SignRequest::Statement(&m))?;
        st.countersignature = Some(new.sign(SignRequest::Statement(&m))?);
        Ok(st)
    }

    /// A revocation of `subject` signed by `signer`.
    pub fn revoke(
        signer: &dyn KeySource,
        subject: &Fingerprint,
        revoked_at: u64,
        reason: &str,
        issued_at: u64,
    ) -> Result<Self> {
        check_comment(reason).map_err(|e| Error::Usage(format!("--reason: {e}")))?;
        let mut st = Statement {
            subject: subject.clone(),
            claim: Claim::Revoke {
                revoked_at,
                reason: reason.to_string(),
            },
            issued_at,
            signer: signer.public_key().fingerprint(),
            signature: Vec::new(),
            countersignature: None,
        };
        st.signature = signer.sign(SignRequest::Statement(&st.message()))?;
        Ok(st)
    }

    /// Check the signature with `signer` (and, for an endorsement, the
    /// countersignature with the subject key it carries).
    pub fn verify_with(&self, signer: &PublicKey) -> std::result::Result<(), String> {
        if signer.fingerprint() != self.signer {
            return Err("signer key mismatch".into());
        }
        let m = self.message();
        if !signer.verify_statement(&m, &self.signature) {
            return Err(format!("the signature by {} does not verify", self.signer));
        }
        if let Claim::Endorse { subject_key, .. } = &self.claim {
            let ok = self
                .countersignature
                .as_ref()
                .is_some_and(|c| subject_key.verify_statement(&m, c));
            if !ok {
                return Err(format!(
                    "the countersignature by the new key {} does not verify",
                    self.subject
                ));
            }
        }
        Ok(())
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
        parse(&data).map_err(|(line, reason)| Error::SignatureMalformed {
            path: path.to_path_buf(),
            line,
            reason,
        })
    }
}

fn parse(data: &[u8]) -> FieldResult<Statement> {
    let text = std::str::from_utf8(data).map_err(|_| (None, "not UTF-8 text".to_string()))?;
    let body = text
        .strip_suffix('\n')
        .ok_or((None, "the file does not end with a newline".to_string()))?;
    let mut f = Fields::new(body);
    if f.line("the header")?.1 != HEADER {
        return Err((Some(1), format!("the first line must be {HEADER:?}")));
    }
    let (kn, kind) = f.next("kind")?;
    let subject = f.fingerprint("subject")?;
    let claim = match kind {
        "endorse" => {
            let (_, der) = f.base64("subject-key", MAX_BASE64)?;
            let subject_key =
                crate::keys::encoding::public_key_from_spki_der(Path::new("subject-key"), &der)
                    .map_err(|e| (None, e.to_string()))?;
            if subject_key.fingerprint() != subject {
                return Err((
                    None,
                    "subject-key does not match the subject fingerprint".into(),
                ));
            }
            let (nn, subject_name) = f.next("subject-name")?;
            crate::keys::generate::check_name(subject_name)
                .map_err(|e| (Some(nn), e.to_string()))?;
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
            check_comment(reason).map_err(|e| (Some(n), e))?;
            Claim::Revoke {
                revoked_at,
                reason: reason.to_string(),
            }
        }
        _ => return Err((Some(kn), "kind must be endorse or revoke".into())),
    };
    let issued_at = f.time("issued-at")?;
    let signer = f.fingerprint("signer")?;
    let (_, signature) = f.base64("signature", MAX_BASE64)?;
    let countersignature = match claim {
        Claim::Endorse { .. } => Some(f.base64("countersignature", MAX_BASE64)?.1),
        Claim::Revoke { .. } => None,
    };
    if f.has_more() {
        return Err((
            Some(f.next_line_number()),
            "unexpected data after the last field".into(),
        ));
    }
    let st = Statement {
        subject,
        claim,
        issued_at,
        signer,
        signature,
        countersignature,
    };
    // Canonical form only: what we would write must be what we read.
    if st.to_text() != text {
        return Err((None, "not in canonical form".into()));
    }
    Ok(st)
}

/// What `trust update` did with one statement.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Applied {
    /// The statement file.
    pub file: PathBuf,
    /// `applied`, `already` (nothing to do) or `refused`.
    pub outcome: &'static str,
    /// One line.
    pub detail: String,
}

/// Apply the statements found in `from` to the trusted-keys directory.
pub fn update(tdir: &mut TrustDir, from: &Path, now: u64) -> Result<Vec<Applied>> {
    let rd = std::fs::read_dir(from).map_err(|e| Error::io(from, "listing", e))?;
    let mut files: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == EXT))
        .collect();
    files.sort();
    let mut pending: Vec<(PathBuf, Statement)> = Vec::new();
    let mut results = Vec::new();
    for p in files {
        match Statement::read(&p) {
            Ok(st) => pending.push((p, st)),
            Err(e) => results.push(Applied {
                file: p,
                outcome: "refused",
                detail: e.to_string(),
            }),
        }
    }
    pending.sort_by_key(|(_, s)| s.issued_at);
    loop {
        let mut progress = false;
        let mut still = Vec::new();
        for (p, st) in pending {
            match try_apply(tdir, &st, now)? {
                Step::Done(outcome, detail) => {
                    progress |= outcome == "applied";
                    results.push(Applied {
                        file: p,
                        outcome,
                        detail,
                    });
                }
                Step::Wait(why) => still.push((p, st, why)),
            }
        }
        if !progress || still.is_empty() {
            for (p, _, why) in still {
                results.push(Applied {
                    file: p,
                    outcome: "refused",
                    detail: why,
                });
            }
            break;
        }
        pending = still.into_iter().map(|(p, s, _)| (p, s)).collect();
    }
    Ok(results)
}

enum Step {
    Done(&'static str, String),
    Wait(String),
}

fn try_apply(tdir: &mut TrustDir, st: &Statement, _now: u64) -> Result<Step> {
    let store = tdir.store()?;
    // Is the signer trusted, and was it valid when it signed?
    let self_revocation = matches!(st.claim, Claim::Revoke { .. }) && st.subject == st.signer;
    let signer = match store.get(&st.signer) {
        Some(k) => k,
        None => {
            return Ok(Step::Wait(format!(
                "signed by {}, which is not a trusted key (and no trusted key endorses it)",
                st.signer
            )));
        }
    };
    if !self_revocation {
        if let Some((t, _)) = &signer.state.revoked {
            return Ok(Step::Wait(format!(
                "signed by {}, which was revoked at {}",
                st.signer,
                format_time(*t)
            )));
        }
        if !signer.state.in_window(st.issued_at) {
            return Ok(Step::Wait(format!(
                "signed by {} at {}, outside that key's validity window",
                st.signer,
                format_time(st.issued_at)
            )));
        }
    }
    if let Err(e) = st.verify_with(&signer.public) {
        return Ok(Step::Wait(e));
    }
    match &st.claim {
        Claim::Endorse {
            subject_key,
            subject_name,
            not_before,
            not_after,
            signer_not_after,
        } => {
            if let Some((t, _)) = store.state_of(&st.subject).and_then(|s| s.revoked.clone()) {
                return Ok(Step::Done(
                    "already",
                    format!(
                        "key {} is revoked since {}; endorsement ignored",
                        st.subject,
                        format_time(t)
                    ),
                ));
            }
            let known = store.get(&st.subject).is_some();
            let signer_fp = st.signer.clone();
            let retire =
                signer_not_after.filter(|t| signer.state.not_after.is_none_or(|na| *t < na));
            if known && retire.is_none() {
                return Ok(Step::Done(
                    "already",
                    format!("key {} is already trusted", st.subject),
                ));
            }
            if !known {
                tdir.add(subject_key, subject_name, Some(*not_before), *not_after)?;
            }
            if let Some(t) = retire {
                tdir.retire(&signer_fp, t)?;
            }
            Ok(Step::Done(
                "applied",
                format!(
                    "key {} ({subject_name}) trusted from {}, endorsed by {signer_fp}{}",
                    st.subject,
                    format_time(*not_before),
                    retire
                        .map(|t| format!(", which retires at {}", format_time(t)))
                        .unwrap_or_default()
                ),
            ))
        }
        Claim::Revoke { revoked_at, reason } => {
            if tdir.revoke(&st.subject, *revoked_at, reason)? {
                Ok(Step::Done(
                    "applied",
                    format!(
                        "key {} revoked at {} by {}: {reason}",
                        st.subject,
                        format_time(*revoked_at),
                        st.signer
                    ),
                ))
            } else {
                Ok(Step::Done(
                    "already",
                    format!("key {} is already revoked", st.subject),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeySpec, LocalKey, generate};

    const T: u64 = 1_800_000_000;
    const DAY: u64 = 86_400;

    fn key() -> LocalKey {
        LocalKey::new(generate(KeySpec::Ed25519).unwrap(), PathBuf::new())
    }

    /// A worker's trusted-keys directory that trusts `first` only.
    fn worker(first: &LocalKey) -> (tempfile::TempDir, TrustDir) {
        let d = tempfile::tempdir().unwrap();
        let mut t = TrustDir::open(&d.path().join("trusted")).unwrap();
        t.add(first.public_key(), "first", None, None).unwrap();
        (d, t)
    }

    fn publish(dir: &Path, sts: &[&Statement]) {
        for st in sts {
            st.publish(dir).unwrap();
        }
    }

    fn outcome<'a>(r: &'a [Applied], st: &Statement) -> &'a Applied {
        r.iter()
            .find(|a| a.file.file_name().unwrap().to_string_lossy() == st.file_name())
            .unwrap()
    }

    #[test]
    fn a_chain_is_followed_from_the_first_key_in_any_file_order() {
        let (a, b, c, d) = (key(), key(), key(), key());
        // All issued in the same second: the file names sort by the new
        // key's fingerprint, so the loop must retry until nothing changes.
        let ab = Statement::endorse(&a, &b, "k", T, Some(T + 30 * DAY), T).unwrap();
        let bc = Statement::endorse(&b, &c, "k", T, Some(T + 30 * DAY), T).unwrap();
        let cd = Statement::endorse(&c, &d, "k", T, Some(T + 30 * DAY), T).unwrap();
        let (tmp, mut t) = worker(&a);
        let from = tmp.path().join("lineage");
        publish(&from, &[&cd, &ab, &bc]);
        let r = update(&mut t, &from, T + DAY).unwrap();
        assert!(r.iter().all(|x| x.outcome == "applied"), "{r:?}");
        let store = t.store().unwrap();
        let dfp = d.public_key().fingerprint();
        assert!(store.get(&dfp).is_some());
        assert_eq!(store.get(&dfp).unwrap().state.not_before, Some(T));
        let afp = a.public_key().fingerprint();
        assert_eq!(
            store.get(&afp).unwrap().state.not_after,
            Some(T + 30 * DAY),
            "the endorser's window ends with its grace period"
        );
        // Idempotent.
        let r = update(&mut t, &from, T + DAY).unwrap();
        assert!(r.iter().all(|x| x.outcome == "already"), "{r:?}");
    }

    #[test]
    fn forged_and_stale_statements_are_refused() {
        let (a, b, x, y) = (key(), key(), key(), key());
        let (tmp, mut t) = worker(&a);
        let from = tmp.path().join("lineage");
        let afp = a.public_key().fingerprint();

        // An untrusted key endorsing its successor.
        let xy = Statement::endorse(&x, &y, "k", T, None, T).unwrap();
        // X's signature presented as A's.
        let mut xa = Statement::endorse(&x, &b, "k", T + 1, None, T + 1).unwrap();
        xa.signer = afp.clone();
        // A's endorsement of B with a countersignature by another key.
        let mut bad_counter = Statement::endorse(&a, &b, "k", T + 2, None, T + 2).unwrap();
        let by_y = Statement::endorse(&a, &y, "k", T + 2, None, T + 2).unwrap();
        bad_counter.countersignature = by_y.countersignature.clone();
        publish(&from, &[&xy, &xa, &bad_counter]);
        let r = update(&mut t, &from, T + DAY).unwrap();
        assert!(r.iter().all(|x| x.outcome == "refused"), "{r:?}");
        assert!(outcome(&r, &xy).detail.contains("not a trusted key"));
        assert!(outcome(&r, &xa).detail.contains("does not verify"));
        assert!(
            outcome(&r, &bad_counter)
                .detail
                .contains("countersignature")
        );
        let store = t.store().unwrap();
        for k in [&b, &x, &y] {
            assert!(store.get(&k.public_key().fingerprint()).is_none());
        }
        assert!(store.get(&afp).unwrap().state.not_after.is_none());

        // A statement issued after the signer's window closed.
        t.retire(&afp, T + DAY).unwrap();
        let late = Statement::endorse(&a, &b, "k", T + 2 * DAY, None, T + 2 * DAY).unwrap();
        let from2 = tmp.path().join("late");
        publish(&from2, &[&late]);
        let r = update(&mut t, &from2, T + 3 * DAY).unwrap();
        assert_eq!(r[0].outcome, "refused", "{r:?}");
        assert!(r[0].detail.contains("outside"), "{r:?}");
    }

    #[test]
    fn revocations_apply_and_win_over_endorsements() {
        let (a, b, c) = (key(), key(), key());
        let (tmp, mut t) = worker(&a);
        let afp = a.public_key().fingerprint();
        let bfp = b.public_key().fingerprint();
        // A endorses B, then revokes it; a later endorsement of B is ignored.
        let ab = Statement::endorse(&a, &b, "k", T, None, T).unwrap();
        let rb = Statement::revoke(&a, &bfp, T + 10, "leaked", T + 10).unwrap();
        let from = tmp.path().join("lineage");
        publish(&from, &[&ab, &rb]);
        update(&mut t, &from, T + DAY).unwrap();
        assert_eq!(
            t.store().unwrap().state_of(&bfp).unwrap().revoked,
            Some((T + 10, "leaked".into()))
        );
        let ab2 = Statement::endorse(&a, &b, "k2", T + 20, None, T + 20).unwrap();
        let from2 = tmp.path().join("again");
        publish(&from2, &[&ab2]);
        let r = update(&mut t, &from2, T + DAY).unwrap();
        assert_eq!(r[0].outcome, "already", "{r:?}");
        assert!(t.store().unwrap().state_of(&bfp).unwrap().revoked.is_some());
        // A revoked key's endorsements are refused ...
        t.revoke(&afp, T + 30, "gone").unwrap();
        let ac = Statement::endorse(&a, &c, "k", T + 40, None, T + 40).unwrap();
        // ... but its revocation of itself is always accepted.
        let ra = Statement::revoke(&a, &afp, T + 40, "self", T + 40).unwrap();
        let from3 = tmp.path().join("third");
        publish(&from3, &[&ac, &ra]);
        let r = update(&mut t, &from3, T + DAY).unwrap();
        assert_eq!(outcome(&r, &ac).outcome, "refused", "{r:?}");
        assert!(outcome(&r, &ac).detail.contains("revoked"), "{r:?}");
        assert_eq!(outcome(&r, &ra).outcome, "already", "{r:?}");
    }

    #[test]
    fn only_the_canonical_form_parses() {
        let (a, b) = (key(), key());
        let st = Statement::endorse(&a, &b, "k", T, Some(T + DAY), T).unwrap();
        let text = st.to_text();
        assert_eq!(parse(text.as_bytes()).unwrap(), st);
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.stmt");
        st.publish(d.path()).unwrap();
        assert_eq!(Statement::read(&d.path().join(st.file_name())).unwrap(), st);
        let bad = [
            format!("{text}\n"),
            text.replace('\n', "\r\n"),
            text.trim_end().to_string(),
            text.replace("kind: endorse", "kind: endorse "),
            text.replace("pkgsign-key-statement v1", "pkgsign-key-statement v2"),
            text.replace("subject-name: k\n", "subject-name: k\nextra: 1\n"),
            text.replace("signature: ", "signature:  "),
            // Fields swapped.
            {
                let mut lines: Vec<&str> = text.lines().collect();
                lines.swap(5, 6);
                lines.join("\n") + "\n"
            },
        ];
        for b in bad {
            std::fs::write(&p, &b).unwrap();
            assert!(
                matches!(Statement::read(&p), Err(Error::SignatureMalformed { .. })),
                "{b:?}"
            );
        }
        // Changing one byte of a signed field keeps it parseable but breaks
        // the signature.
        let tampered = parse(
            text.replace("subject-name: k", "subject-name: j")
                .as_bytes(),
        )
        .unwrap();
        assert!(tampered.verify_with(a.public_key()).is_err());
        st.verify_with(a.public_key()).unwrap();
    }
}

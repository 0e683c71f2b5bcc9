//! The rules by which a worker's trusted-keys directory follows key
//! statements (`pkgsign trust update`), after the root-rotation rules of a
//! TUF repository:
//!
//! 1. **The worker's clock, not the statement's.** The signer must be
//!    trusted, not revoked and inside its window *now*, in this directory.
//!    `issued-at` is chosen by whoever signs and is never trusted: a retired
//!    or expired key cannot sign a backdated statement that takes effect.
//! 2. **Only the head of a lineage speaks for it.** Once a key has endorsed
//!    a successor it has no more say over keys (it still signs packages
//!    through its grace window, and may still revoke itself).
//! 3. **In order.** Each statement carries the next sequence number of its
//!    signer's lineage; the directory records the last one applied, and a
//!    statement that does not extend the chain is refused.
//! 4. **Principals, not keys.** A key and the keys it endorsed are one
//!    principal. Adding a key needs as many principals (the signer plus
//!    cosigning heads of other lineages) as the directory's threshold
//!    requires for a package; so does revoking a key of another lineage.
//!    A principal may always revoke its own keys.
//!
//! The store is loaded once per run and written once at its end.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::{Claim, EXT, Statement};
use crate::error::{Error, ParseError, Result};
use crate::keys::{Fingerprint, PublicKey};
use crate::sign::report::{KeyStatement, StatementSigners, Verified};
use crate::text::format_time;
use crate::trust::dir::TrustDir;
use crate::trust::meta::KeyState;
use crate::trust::{Standing, TrustStore, standing};

/// Most statement files one `trust update` reads.
pub const MAX_STATEMENTS: usize = 10_000;

/// What `trust update` decided for one statement; its JSON spelling is the
/// lower-case name (`applied`, `already`, `refused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Decision {
    /// The statement changed the directory.
    Applied,
    /// The directory already said what the statement says: nothing to do.
    Already,
    /// The statement was not applied (forged, unreadable, or not chained to
    /// a key trusted now).
    Refused,
}

impl Decision {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Applied => "applied",
            Decision::Already => "already",
            Decision::Refused => "refused",
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares with the JSON spelling (`d == "applied"`).
impl PartialEq<&str> for Decision {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// What `trust update` did with one statement.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Applied {
    /// The statement file.
    pub file: PathBuf,
    /// What was decided.
    pub outcome: Decision,
    /// One line.
    pub detail: String,
    /// The key the statement is about, when it could be read.
    pub subject: Option<Fingerprint>,
    /// The key that signed it, when it could be read.
    pub signer: Option<Fingerprint>,
}

/// A statement read, and what is known of its signatures so far.
struct Pending {
    file: PathBuf,
    st: Statement,
    /// The signer's signature (and countersignature), once checked.
    checked: Option<std::result::Result<(), String>>,
    /// Why it was not applied in the last pass.
    why: String,
}

enum Step {
    Applied(String),
    Already(String),
    Wait(String),
}

/// Apply the statements found in `from` to the trusted-keys directory, at
/// the worker's clock `now`. Statements that cannot be applied are
/// reported as `refused`; the caller decides the exit status.
pub fn update(tdir: &mut TrustDir, from: &Path, now: u64) -> Result<Vec<Applied>> {
    let files = statement_files(from)?;
    let mut results = Vec::new();
    let mut pending = Vec::new();
    for file in files {
        match Statement::read(&file) {
            Ok(st) => pending.push(Pending {
                file,
                st,
                checked: None,
                why: String::new(),
            }),
            Err(e) => results.push(Applied {
                file,
                outcome: Decision::Refused,
                detail: e.to_string(),
                subject: None,
                signer: None,
            }),
        }
    }
    // The order of attempts only: no rule trusts issued-at. Coordinators
    // issue statements in causal order, so a lineage is followed in one pass.
    pending.sort_by(|a, b| {
        (a.st.issued_at, a.st.sequence, &a.file).cmp(&(b.st.issued_at, b.st.sequence, &b.file))
    });
    let store = tdir.store()?;
    let mut book = Book {
        threshold: tdir.meta().threshold().unwrap_or(1) as usize,
        tdir,
        store,
        added: HashMap::new(),
        now,
    };
    loop {
        let mut progress = false;
        let mut still = Vec::new();
        for mut p in pending {
            let (outcome, detail) = match book.judge(&mut p)? {
                Step::Applied(d) => {
                    progress = true;
                    (Decision::Applied, d)
                }
                Step::Already(d) => (Decision::Already, d),
                Step::Wait(why) => {
                    p.why = why;
                    still.push(p);
                    continue;
                }
            };
            results.push(Applied {
                outcome,
                detail,
                subject: Some(p.st.subject.clone()),
                signer: Some(p.st.signer.clone()),
                file: p.file,
            });
        }
        if !progress || still.is_empty() {
            results.extend(still.into_iter().map(|p| Applied {
                outcome: Decision::Refused,
                detail: p.why,
                subject: Some(p.st.subject),
                signer: Some(p.st.signer),
                file: p.file,
            }));
            break;
        }
        pending = still;
    }
    book.tdir.commit()?;
    Ok(results)
}

/// The `*.stmt` files of `from`, sorted, at most [`MAX_STATEMENTS`].
fn statement_files(from: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(from).map_err(|e| Error::io(from, "listing", e))?;
    let mut files = Vec::new();
    for entry in rd {
        let p = entry.map_err(|e| Error::io(from, "listing", e))?.path();
        if p.extension().is_some_and(|x| x == EXT) {
            if files.len() == MAX_STATEMENTS {
                return Err(Error::Parse(ParseError::TooManyStatements {
                    dir: from.to_path_buf(),
                    limit: MAX_STATEMENTS,
                }));
            }
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// Why the key `fp`, in state `st`, may not sign a statement that changes a
/// directory at `now` (revoked, outside its window, or no longer the head of
/// its lineage); None when it may. The one rule for `trust update` and for
/// the commands that sign statements.
pub fn why_not_current(fp: &Fingerprint, st: &KeyState, now: u64) -> Option<String> {
    // The same rule as for a package signature (`trust::standing`), with no
    // signed time: a statement's issued-at is never trusted.
    match standing(st, now, None) {
        Standing::Revoked { at, .. } => {
            return Some(format!("{fp} was revoked at {}", format_time(at)));
        }
        Standing::NotYetValid { from } => {
            return Some(format!(
                "{fp} is not valid here before {}",
                format_time(from)
            ));
        }
        Standing::Expired { at } => {
            return Some(format!(
                "{fp} expired here at {}: an expired key never changes the directory, whatever the statement's issued-at claims",
                format_time(at)
            ));
        }
        Standing::SignedBeforeWindow { .. }
        | Standing::SignedAfterWindow { .. }
        | Standing::Retiring { .. }
        | Standing::Unlimited => {}
    }
    if let Some(s) = &st.successor {
        return Some(format!(
            "{fp} already endorsed {s} as its successor: a key that has a successor has no more say over keys"
        ));
    }
    None
}

/// The directory being changed, with the keys it trusts, loaded once.
struct Book<'a> {
    tdir: &'a mut TrustDir,
    store: TrustStore,
    /// Keys added by this run.
    added: HashMap<Fingerprint, PublicKey>,
    threshold: usize,
    now: u64,
}

impl Book<'_> {
    fn public(&self, fp: &Fingerprint) -> Option<&PublicKey> {
        self.added
            .get(fp)
            .or_else(|| self.store.get(fp).map(|k| &k.public))
    }

    /// The key's entry (a key dropped in by hand has none: no window, its
    /// own principal, the head of its lineage).
    fn state(&self, fp: &Fingerprint) -> KeyState {
        self.tdir.meta().get(fp).cloned().unwrap_or_default()
    }

    fn known(&self, fp: &Fingerprint) -> bool {
        self.public(fp).is_some() || self.tdir.meta().get(fp).is_some()
    }

    fn not_current(&self, fp: &Fingerprint, st: &KeyState) -> Option<String> {
        why_not_current(fp, st, self.now)
    }

    /// Decide one statement, and apply it (in memory) if it may be.
    fn judge(&mut self, p: &mut Pending) -> Result<Step> {
        let Pending { st, checked, .. } = p;
        let st = &*st;
        let Some(signer_key) = self.public(&st.signer) else {
            return Ok(Step::Wait(format!(
                "signed by {}, which is not a trusted key here (and no statement applied so far endorses it)",
                st.signer
            )));
        };
        if let Err(e) = checked.get_or_insert_with(|| st.verify_with(signer_key)) {
            return Ok(Step::Wait(e.clone()));
        }
        let signer = self.state(&st.signer);
        let subject = self.state(&st.subject);

        // A key may always revoke itself, even when retired.
        if let Claim::Revoke { revoked_at, reason } = &st.claim
            && st.subject == st.signer
        {
            if let Some((t, _)) = &subject.revoked {
                return Ok(Step::Already(format!(
                    "key {} is already revoked since {}",
                    st.subject,
                    format_time(*t)
                )));
            }
            if let Some(na) = subject.not_after.filter(|na| self.now > *na) {
                return Ok(Step::Already(format!(
                    "key {} expired at {}; its revocation changes nothing",
                    st.subject,
                    format_time(na)
                )));
            }
            self.tdir.meta_mut().entry(&st.subject).revoked = Some((*revoked_at, reason.clone()));
            return Ok(Step::Applied(format!(
                "key {} revoked itself at {}: {reason}",
                st.subject,
                format_time(*revoked_at)
            )));
        }

        // Applied before (a second run over the same statements).
        if matches!(st.claim, Claim::Endorse { .. })
            && signer.successor.as_ref() == Some(&st.subject)
        {
            return Ok(Step::Already(format!(
                "key {} is already trusted as the successor of {}",
                st.subject, st.signer
            )));
        }
        if let Some((t, _)) = &subject.revoked {
            return Ok(Step::Already(format!(
                "key {} is revoked since {}; {} ignored",
                st.subject,
                format_time(*t),
                match st.claim {
                    Claim::Endorse { .. } => "endorsement",
                    Claim::Revoke { .. } => "revocation",
                }
            )));
        }

        // The signer: trusted, current now, head of its lineage.
        if let Some(why) = self.not_current(&st.signer, &signer) {
            return Ok(Step::Wait(format!("signed by {why}")));
        }
        // The chain: the next statement of the signer's lineage.
        if let Some(last) = signer.sequence {
            let next = last.saturating_add(1);
            if st.sequence != next {
                return Ok(Step::Wait(if st.sequence < next {
                    format!(
                        "sequence {} does not extend the chain of {}: statement {last} of its lineage is applied already (a replayed or forked statement)",
                        st.sequence, st.signer
                    )
                } else {
                    format!(
                        "sequence {} does not extend the chain of {}: the next is {next}, and no statement {next} was found",
                        st.sequence, st.signer
                    )
                }));
            }
        }

        // Principals: the signer's, and those of cosigning heads.
        let principal = self.tdir.principal_of(&st.signer);
        let (principals, notes) = self.principals(st, &principal);
        let own = self.known(&st.subject) && self.tdir.principal_of(&st.subject) == principal;
        let need = match st.claim {
            Claim::Revoke { .. } if own => 1,
            _ => self.threshold,
        };
        if principals.len() < need {
            let mut why = format!(
                "needs the signatures of {need} independent principals (this directory's threshold), has {}",
                principals.len()
            );
            if !notes.is_empty() {
                why.push_str(&format!(" ({})", notes.join("; ")));
            }
            why.push_str(
                "; have the heads of other lineages cosign it with `pkgsign trust cosign`",
            );
            return Ok(Step::Wait(why));
        }

        let proof = Verified::<KeyStatement>::new(StatementSigners {
            signer: st.signer.clone(),
            principal,
            principals,
        });
        self.apply(st, &proof)
    }

    /// Apply (in memory) a statement whose signatures, signer, sequence and
    /// principals were checked (a key revoking itself is applied in
    /// `judge`, by its own rule).
    fn apply(&mut self, st: &Statement, proof: &Verified<KeyStatement>) -> Result<Step> {
        let StatementSigners {
            principal,
            principals,
            ..
        } = proof.signers();
        match &st.claim {
            Claim::Endorse {
                subject_key,
                subject_name,
                not_before,
                not_after,
                signer_not_after,
            } => {
                if self.known(&st.subject) {
                    return Ok(Step::Wait(format!(
                        "key {} is already trusted here, in the lineage of {}: a key joins one lineage, once",
                        st.subject,
                        self.tdir.principal_of(&st.subject)
                    )));
                }
                self.tdir
                    .stage_key(subject_key, subject_name, Some(*not_before), *not_after)?;
                self.tdir
                    .link_successor(&st.signer, &st.subject, st.sequence);
                let retire = signer_not_after
                    .filter(|t| self.tdir.meta_mut().entry(&st.signer).retire_at(*t));
                self.added.insert(st.subject.clone(), subject_key.clone());
                Ok(Step::Applied(format!(
                    "key {} ({subject_name}) trusted from {}, endorsed by {} (statement {} of the lineage of {principal}, {} principal{}){}",
                    st.subject,
                    format_time(*not_before),
                    st.signer,
                    st.sequence,
                    principals.len(),
                    if principals.len() == 1 { "" } else { "s" },
                    retire
                        .map(|t| format!(", which retires at {}", format_time(t)))
                        .unwrap_or_default()
                )))
            }
            Claim::Revoke { revoked_at, reason } => {
                let meta = self.tdir.meta_mut();
                meta.entry(&st.subject).revoked = Some((*revoked_at, reason.clone()));
                meta.entry(&st.signer).sequence = Some(st.sequence);
                Ok(Step::Applied(format!(
                    "key {} revoked at {} by {} (statement {} of the lineage of {principal}): {reason}",
                    st.subject,
                    format_time(*revoked_at),
                    st.signer,
                    st.sequence
                )))
            }
        }
    }

    /// The distinct principals that sign `st`: the signer's, then each
    /// cosigner's that is the current head of another lineage and whose
    /// cosignature verifies; with a note for each cosignature that does not count.
    fn principals(
        &self,
        st: &Statement,
        signer_principal: &Fingerprint,
    ) -> (Vec<Fingerprint>, Vec<String>) {
        let mut seen: HashSet<Fingerprint> = HashSet::from([signer_principal.clone()]);
        let mut notes = Vec::new();
        for (fp, _) in &st.cosignatures {
            let Some(key) = self.public(fp) else {
                notes.push(format!("cosigner {fp} is not a trusted key here"));
                continue;
            };
            if let Some(why) = self.not_current(fp, &self.state(fp)) {
                notes.push(format!("cosigner {why}"));
                continue;
            }
            let principal = self.tdir.principal_of(fp);
            if seen.contains(&principal) {
                notes.push(format!(
                    "cosigner {fp} is of the lineage of {principal}, which already counts"
                ));
                continue;
            }
            if !st.cosignature_verifies(key) {
                notes.push(format!("the cosignature by {fp} does not verify"));
                continue;
            }
            seen.insert(principal);
        }
        let mut v: Vec<Fingerprint> = seen.into_iter().collect();
        v.sort();
        (v, notes)
    }
}

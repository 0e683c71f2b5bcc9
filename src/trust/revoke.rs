//! The `trust revoke` workflow: record a revocation in a trusted-keys
//! directory at once and, when a signing key is given, publish the signed
//! revocation statement workers follow with `trust update`.

use std::path::{Path, PathBuf};

use super::dir::TrustDir;
use super::lineage::{self, Statement};
use super::store::TrustStore;
use crate::error::{Invalid, Result};
use crate::keys::{Fingerprint, KeySource};

/// What a revocation did.
#[derive(Debug)]
pub struct Revoked {
    /// False when the key was revoked already.
    pub changed: bool,
    /// The signed statement published, if a signing key was given.
    pub statement: Option<PathBuf>,
    /// Things the user should know (e.g. the key is not in the directory).
    pub warnings: Vec<String>,
}

/// Revoke `fingerprint` in the trusted-keys directory `tdir` at `now`.
///
/// With `sign_with`, first check that workers would accept a statement by
/// that key ([`check_statement_signer`]), then sign a revocation with the
/// key's next sequence number and publish it in `publish_dir` (default
/// `tdir/lineage`) after the directory is committed. A key not in the
/// directory is revoked anyway (so it can never be trusted there), with a
/// warning.
pub fn revoke(
    tdir: &Path,
    fingerprint: &Fingerprint,
    reason: &str,
    sign_with: Option<&dyn KeySource>,
    publish_dir: Option<&Path>,
    now: u64,
) -> Result<Revoked> {
    let mut t = TrustDir::open(tdir)?;
    let store = t.store()?;
    let stmt = match sign_with {
        Some(key) => {
            let signer = key.public_key().fingerprint();
            check_statement_signer(&t, &store, &signer, fingerprint, now)?;
            let seq = t.next_sequence(&signer);
            let st = Statement::revoke(key, fingerprint, now, reason, now, seq)?;
            t.meta_mut().entry(&signer).sequence = Some(seq);
            Some(st)
        }
        None => None,
    };
    let mut warnings = Vec::new();
    if store.get(fingerprint).is_none() && t.meta().get(fingerprint).is_none() {
        warnings.push(format!(
            "key {fingerprint} is not in {}; recording its revocation anyway, so it can never be trusted there (check the fingerprint for a typo)",
            tdir.display()
        ));
    }
    drop(store);
    let changed = t.revoke(fingerprint, now, reason)?;
    t.commit()?; // the signer's sequence, even when nothing else changed
    let statement = match stmt {
        Some(st) => {
            Some(st.publish(&publish_dir.map_or_else(|| tdir.join("lineage"), Path::to_path_buf))?)
        }
        None => None,
    };
    Ok(Revoked {
        changed,
        statement,
        warnings,
    })
}

/// Refuse to sign a statement that workers would refuse: the signer must be
/// trusted here, current, and (unless it revokes itself) the head of its lineage.
pub fn check_statement_signer(
    t: &TrustDir,
    store: &TrustStore,
    signer: &Fingerprint,
    subject: &Fingerprint,
    at: u64,
) -> Result<()> {
    let refuse = |why: String| {
        Err(Invalid::StatementSignerRefused {
            why,
            dir: t.path().to_path_buf(),
        }
        .into())
    };
    let Some(k) = store.get(signer) else {
        return refuse(format!("{signer} is not trusted"));
    };
    // A key may revoke itself once it has a successor; never when revoked
    // or expired.
    let why = if signer == subject {
        super::standing(&k.state, at, None)
            .refusal()
            .map(|_| format!("{signer} is {}", k.describe_state(at)))
    } else {
        lineage::why_not_current(signer, &k.state, at)
    };
    match why {
        Some(why) => refuse(why),
        None => Ok(()),
    }
}

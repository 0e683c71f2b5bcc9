//! The worker's update path: verify a release once, over a private copy,
//! check it against the anti-rollback state, and only then hand the
//! verified copy to the caller to apply; record it in the state after it
//! was applied.
//!
//! ```text
//! prepare:  stage + verify (name required) -> identity -> state standing
//! (caller applies Ready::staged: writes it out, runs a command, ...)
//! commit:   record name, version, digest in the state
//! ```
#![forbid(unsafe_code)]

pub mod extract;
pub mod install;
pub mod state;

use std::path::Path;

use crate::digest::Digest;
use crate::error::{Code, Error};
use crate::sign::identity::Version;
use crate::sign::report::{Package, Verified};
use crate::trust::TrustStore;
use crate::verify::staged::{Source, Staged, stage_and_verify};
use crate::verify::{VerifyError, VerifyOptions};
use state::{Standing, StateDir};

/// What to apply.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Where the package comes from (read once).
    pub source: Source<'a>,
    /// Its name in messages.
    pub label: &'a Path,
    /// Its signature file.
    pub signature: &'a Path,
    /// The package name the signature must name.
    pub name: &'a str,
    /// Where the private copy is made (same file system as its destination).
    pub staging_dir: &'a Path,
    /// Most bytes accepted.
    pub max_size: u64,
    /// An older version the operator allows, exactly this one.
    pub allow_downgrade_to: Option<&'a Version>,
}

/// A verified release, staged and checked against the state, ready to be
/// applied.
#[derive(Debug)]
pub struct Ready {
    /// The proof.
    pub verified: Verified<Package>,
    /// The verified bytes (deleted on drop unless persisted).
    pub staged: Staged,
    /// The signed version.
    pub version: Version,
    /// The package's digest.
    pub digest: Digest,
    /// How it stands against what was applied before.
    pub standing: Standing,
}

/// Why a release is not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The verification refused it, or could not be made.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// Older than the release applied before.
    #[error(
        "{name} {offered} is older than {applied}, which was applied at {at}: refusing a rollback"
    )]
    Rollback {
        /// The package.
        name: String,
        /// The version offered.
        offered: String,
        /// The version applied.
        applied: String,
        /// When that was applied (RFC 3339).
        at: String,
    },
    /// The same version as applied before, with other bytes.
    #[error(
        "{name} {version} was applied before with digest {applied}, and this package has digest {offered}: a version is never reused for other bytes"
    )]
    VersionReused {
        /// The package.
        name: String,
        /// The version.
        version: String,
        /// The digest applied.
        applied: String,
        /// The digest offered.
        offered: String,
    },
    /// The signature names no version, so rollback cannot be checked.
    #[error(
        "the signature of {name} names no release version; only signed versions are applied (sign with --release-version)"
    )]
    NoVersion {
        /// The package.
        name: String,
    },
    /// The verified archive holds an entry that is not extracted, or more
    /// than the limits allow: nothing is switched.
    #[error("{label}: the archive is refused: {reason}")]
    Archive {
        /// The package.
        label: String,
        /// Why.
        reason: String,
    },
    /// Something could not be done.
    #[error(transparent)]
    Failed(#[from] Error),
}

impl ApplyError {
    /// The archive error of installing `label`.
    pub fn archive(label: &Path, e: extract::ArchiveError) -> Self {
        match e {
            extract::ArchiveError::Io(e) => ApplyError::Failed(e),
            other => ApplyError::Archive {
                label: label.display().to_string(),
                reason: other.to_string(),
            },
        }
    }
}

impl ApplyError {
    /// The contract's code.
    pub fn code(&self) -> Code {
        match self {
            ApplyError::Verify(v) => v.code(),
            ApplyError::Rollback { .. } | ApplyError::NoVersion { .. } => Code::Rollback,
            ApplyError::VersionReused { .. } => Code::VersionReused,
            ApplyError::Archive { .. } => Code::ArchiveRefused,
            ApplyError::Failed(e) => e.code(),
        }
    }
}

/// Stage and verify the release of `req`, requiring its signed name, and
/// check it against `state`.
pub fn prepare(
    state: &StateDir,
    req: &Request<'_>,
    trust: &TrustStore,
    opts: &VerifyOptions,
) -> Result<Ready, ApplyError> {
    let opts = VerifyOptions {
        name: Some(req.name.to_string()),
        cache: None,
        ..opts.clone()
    };
    let (verified, staged) = stage_and_verify(
        req.source,
        req.label,
        req.staging_dir,
        req.max_size,
        req.signature,
        trust,
        &opts,
    )?;
    let (version, digest, standing) = judge(state, req.name, &verified, req.allow_downgrade_to)?;
    Ok(Ready {
        verified,
        staged,
        version,
        digest,
        standing,
    })
}

/// How the verified release of `name` stands against `state`: its signed
/// version and digest, or why it is refused (no signed version, a
/// rollback, a version reused for other bytes).
pub fn judge(
    state: &StateDir,
    name: &str,
    verified: &Verified<Package>,
    allow_downgrade_to: Option<&Version>,
) -> Result<(Version, Digest, Standing), ApplyError> {
    let Some(version) = verified.identity().version else {
        return Err(ApplyError::NoVersion {
            name: name.to_string(),
        });
    };
    let digest = verified
        .report()
        .package_hash
        .as_deref()
        .and_then(|h| Digest::parse(h, false).ok())
        .ok_or_else(|| Error::Crypto {
            what: "applying",
            reason: "the verified package has no digest".into(),
        })?;
    let standing = state.standing(name, &version, &digest, allow_downgrade_to)?;
    match &standing {
        Standing::Rollback(a) => Err(ApplyError::Rollback {
            name: name.to_string(),
            offered: version.to_string(),
            applied: a.version.to_string(),
            at: crate::text::format_time(a.at),
        }),
        Standing::VersionReused(a) => Err(ApplyError::VersionReused {
            name: name.to_string(),
            version: version.to_string(),
            applied: a.digest.to_string(),
            offered: digest.to_string(),
        }),
        _ => Ok((version, digest, standing)),
    }
}

/// Record in `state` that `name` `version` (`digest`, from a [`Ready`])
/// was applied at `at`. Call it only once the release is in place: the
/// state never names a release that was not applied.
pub fn commit(
    state: &StateDir,
    name: &str,
    version: &Version,
    digest: &Digest,
    at: u64,
) -> Result<(), Error> {
    state.record(name, version, digest, at)
}

//! The release store: `STORE/NAME/VERSION/` holds an accepted package
//! (`package`), its signature (`package.sig`) and what was checked
//! (`release.json`). A release appears whole or not at all: it is built in
//! a private directory beside its destination, synced, and renamed into
//! place; only then is it recorded as the name's newest in `STORE/.state`
//! (the same anti-rollback state `pkgsign apply` keeps, under its lock).
//! Uploads are staged in `STORE/.staging`, emptied at start.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;

use crate::apply::state::{Standing, StateDir};
use crate::apply::{self, ApplyError};
use crate::error::{Code, Error, Result};
use crate::fsutil;
use crate::sign::identity::check_name;
use crate::sign::report::{Package, Verified};
use crate::verify::staged::Staged;

use super::reply::ApiError;
use super::request;

/// A release store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// What an upload became.
#[derive(Debug)]
pub struct Stored {
    /// The package name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its digest.
    pub digest: String,
    /// False when the same bytes were stored before (nothing changed).
    pub new: bool,
}

fn mkdir_private(dir: &Path) -> Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io(dir, "creating", e)),
    }
}

impl Store {
    /// Open (creating, mode 0700) the store at `root`, and delete uploads
    /// a previous run left half-staged.
    pub fn open(root: &Path) -> Result<Store> {
        mkdir_private(root)?;
        let store = Store {
            root: root.to_path_buf(),
        };
        let staging = store.staging();
        mkdir_private(&staging)?;
        let rd = std::fs::read_dir(&staging).map_err(|e| Error::io(&staging, "listing", e))?;
        for entry in rd.flatten() {
            let p = entry.path();
            let _ = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
        Ok(store)
    }

    /// Where uploads are staged.
    pub fn staging(&self) -> PathBuf {
        self.root.join(".staging")
    }

    fn state(&self) -> Result<StateDir> {
        StateDir::open(&self.root.join(".state"))
    }

    /// The directory of `name` `version`, if both are valid names.
    pub fn release_dir(&self, name: &str, version: &str) -> std::result::Result<PathBuf, ApiError> {
        request::check_name(name)?;
        request::check_version(version)?;
        Ok(self.root.join(name).join(version))
    }

    /// The newest version stored for `name`.
    pub fn latest(&self, name: &str) -> std::result::Result<Option<String>, ApiError> {
        request::check_name(name)?;
        Ok(self.state()?.get(name)?.map(|a| a.version.to_string()))
    }

    /// Keep a verified upload: refused if it names no package or version,
    /// is older than the newest stored for its name, or reuses a stored
    /// version for other bytes; the same bytes again change nothing.
    /// `abandoned` is set when the request was given up (its timeout):
    /// checked once the store's lock is held and again just before the
    /// release is moved into place, so that a request answered "nothing was
    /// kept" does not store a release afterwards, unaudited.
    pub fn commit(
        &self,
        verified: &Verified<Package>,
        staged: Staged,
        signature_text: &str,
        now: u64,
        abandoned: &AtomicBool,
    ) -> std::result::Result<Stored, ApiError> {
        let given_up = || {
            ApiError::new(
                Code::RequestTimeout,
                "the request took longer than the service's request timeout; nothing was kept",
            )
        };
        let identity = verified.identity();
        let Some(name) = identity.name.clone() else {
            return Err(ApiError::new(
                Code::NameMismatch,
                "the signature names no package: the store keeps releases by name and version (sign with --name and --release-version)",
            ));
        };
        check_name(&name).map_err(|e| ApiError::new(Code::NameMismatch, e))?;
        let state = self.state()?;
        if abandoned.load(Ordering::SeqCst) {
            return Err(given_up());
        }
        let (version, digest, standing) =
            apply::judge(&state, &name, verified, None).map_err(apply_error)?;
        let version_text = version.to_string();
        request::check_version(&version_text)?;
        let stored = |new| Stored {
            name: name.clone(),
            version: version_text.clone(),
            digest: digest.to_string(),
            new,
        };
        if matches!(standing, Standing::AlreadyApplied(_)) {
            return Ok(stored(false));
        }
        let name_dir = self.root.join(&name);
        mkdir_private(&name_dir)?;
        let dest = name_dir.join(&version_text);
        let build = tempfile::Builder::new()
            .prefix(".incoming-")
            .tempdir_in(&name_dir)
            .map_err(|e| Error::io(&name_dir, "creating a directory in", e))?;
        staged.persist(&build.path().join("package"), 0o600)?;
        let report = verified.report();
        let record = json!({
            "name": name,
            "version": version_text,
            "digest": digest.to_string(),
            "signers": report.signers_line(),
            "stored_at": crate::text::format_time(now),
        });
        fsutil::write_atomic(
            &build.path().join("package.sig"),
            signature_text.as_bytes(),
            0o600,
            fsutil::Replace::Never,
        )?;
        fsutil::write_atomic(
            &build.path().join("release.json"),
            format!("{record:#}\n").as_bytes(),
            0o600,
            fsutil::Replace::Never,
        )?;
        fsutil::sync_dir(build.path())?;
        if abandoned.load(Ordering::SeqCst) {
            return Err(given_up());
        }
        if dest.exists() {
            // Left by a run that stopped between the rename and the record:
            // the state never named it, so it is replaced.
            let old = name_dir.join(format!(".replaced-{version_text}"));
            let _ = std::fs::remove_dir_all(&old);
            std::fs::rename(&dest, &old).map_err(|e| Error::io(&dest, "moving aside", e))?;
            let _ = std::fs::remove_dir_all(&old);
        }
        let kept = build.keep();
        if let Err(e) = std::fs::rename(&kept, &dest) {
            let _ = std::fs::remove_dir_all(&kept);
            return Err(Error::io(&dest, "renaming the release to", e).into());
        }
        fsutil::sync_dir(&name_dir)?;
        state.record(&name, &version, &digest, now)?;
        Ok(stored(true))
    }
}

fn apply_error(e: ApplyError) -> ApiError {
    match e {
        ApplyError::Verify(v) => v.into(),
        ApplyError::Failed(e) => e.into(),
        other => ApiError::new(other.code(), other.to_string()),
    }
}

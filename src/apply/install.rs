//! `apply --install-dir DIR`: the verified archive is extracted into
//! `DIR/releases/.tmp-VERSION-PID`, synced, renamed to
//! `DIR/releases/VERSION`, and `DIR/current` is switched to it by renaming
//! a new symlink over the old one. A crash at any point leaves `current`
//! on the old release or the new one, never on a half-extracted tree;
//! leftovers are removed by the next run. The `keep` newest releases stay.

use std::os::fd::AsFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::apply::extract::{self, ArchiveError, Extracted, Limits};
use crate::error::Error;
use crate::fsutil;
use crate::sign::identity::Version;
use crate::verify::staged::Staged;

/// The name of the symlink to the live release.
pub const CURRENT: &str = "current";
/// The directory of the releases.
pub const RELEASES: &str = "releases";

/// What an installation did.
#[derive(Debug, Clone)]
pub struct Installed {
    /// The release directory `current` now points to.
    pub release: PathBuf,
    /// What was extracted (zero when the release was already in place).
    pub extracted: Extracted,
    /// Old releases removed.
    pub pruned: Vec<String>,
}

/// Where `DIR/current` points, relative (`releases/VERSION`), if anywhere.
pub fn current_target(dir: &Path) -> Option<PathBuf> {
    std::fs::read_link(dir.join(CURRENT)).ok()
}

/// Install the verified `staged` archive as `version` under `dir`.
pub fn install(
    staged: &Staged,
    dir: &Path,
    version: &Version,
    keep: usize,
    limits: Limits,
) -> Result<Installed, ArchiveError> {
    let releases = dir.join(RELEASES);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&releases)
        .map_err(|e| Error::io(&releases, "creating", e))?;
    fsutil::check_private_dir(dir, "the install directory")?;
    fsutil::check_private_dir(&releases, "the releases directory")?;
    remove_leftovers(dir, &releases)?;
    let name = version.to_string();
    let rel_target = Path::new(RELEASES).join(&name);
    let final_dir = releases.join(&name);
    // A run killed after the switch but before the state was written: the
    // release is complete and live; only the state is missing.
    if current_target(dir).as_deref() == Some(rel_target.as_path()) && final_dir.is_dir() {
        return Ok(Installed {
            release: final_dir,
            extracted: Extracted::default(),
            pruned: prune(&releases, &name, keep)?,
        });
    }
    let tmp = releases.join(format!(".tmp-{name}-{}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&tmp)
        .map_err(|e| Error::io(&tmp, "creating", e))?;
    let extracted = match extract::extract(staged.reopen()?, &tmp, limits) {
        Ok(x) => x,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    // Everything extracted reaches the disk before it can become live.
    let d = std::fs::File::open(&tmp).map_err(|e| Error::io(&tmp, "opening", e))?;
    rustix::fs::syncfs(d.as_fd()).map_err(|e| Error::io(&tmp, "syncing", e.into()))?;
    fsutil::crash_point(11);
    if final_dir.exists() {
        // Not live (checked above): a copy from an interrupted run.
        std::fs::remove_dir_all(&final_dir).map_err(|e| Error::io(&final_dir, "removing", e))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(|e| Error::io(&final_dir, "renaming to", e))?;
    fsutil::sync_dir(&releases)?;
    fsutil::crash_point(12);
    // The switch: a new symlink renamed over the old one, atomically.
    let link_tmp = dir.join(format!(".{CURRENT}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&link_tmp);
    std::os::unix::fs::symlink(&rel_target, &link_tmp)
        .map_err(|e| Error::io(&link_tmp, "creating", e))?;
    std::fs::rename(&link_tmp, dir.join(CURRENT))
        .map_err(|e| Error::io(&dir.join(CURRENT), "switching", e))?;
    fsutil::sync_dir(dir)?;
    // Switched, not yet recorded in the state.
    fsutil::crash_point(13);
    Ok(Installed {
        release: final_dir,
        extracted,
        pruned: prune(&releases, &name, keep)?,
    })
}

/// Remove what interrupted runs left: temporary release trees and links.
fn remove_leftovers(dir: &Path, releases: &Path) -> Result<(), Error> {
    for (parent, prefix) in [(releases, ".tmp-"), (dir, ".current.tmp-")] {
        let list = std::fs::read_dir(parent).map_err(|e| Error::io(parent, "listing", e))?;
        for e in list.flatten() {
            if e.file_name().to_string_lossy().starts_with(prefix) {
                let p = e.path();
                let res = if e.file_type().is_ok_and(|t| t.is_dir()) {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
                res.map_err(|err| Error::io(&p, "removing", err))?;
            }
        }
    }
    Ok(())
}

/// Keep the `keep` newest releases (by version precedence), always with
/// the live one; remove the others. Returns the names removed.
fn prune(releases: &Path, live: &str, keep: usize) -> Result<Vec<String>, Error> {
    let scheme = Version::parse(live, crate::sign::identity::VersionScheme::SemVer)
        .map(|v| v.scheme())
        .unwrap_or(crate::sign::identity::VersionScheme::Integer);
    let mut found: Vec<(Version, String)> = Vec::new();
    let list = std::fs::read_dir(releases).map_err(|e| Error::io(releases, "listing", e))?;
    for e in list.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        // Names that are no version of this scheme are not ours: left alone.
        if let Ok(v) = Version::parse(&name, scheme) {
            found.push((v, name));
        }
    }
    found.sort_by(|a, b| b.0.compare(&a.0).unwrap_or(std::cmp::Ordering::Equal));
    let mut removed = Vec::new();
    for (_, name) in found.into_iter().skip(keep.max(1)) {
        if name == live {
            continue;
        }
        let p = releases.join(&name);
        std::fs::remove_dir_all(&p).map_err(|e| Error::io(&p, "removing", e))?;
        removed.push(name);
    }
    Ok(removed)
}

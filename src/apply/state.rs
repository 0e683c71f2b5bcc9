//! The worker's anti-rollback state: per package name, the highest version
//! applied and its digest, in `STATE/NAME.json`. Changed under the state
//! directory's lock, written with temp + fsync + rename; a file that does
//! not parse stops the worker (never "start over", which would re-open the
//! door to every old release).

use std::cmp::Ordering;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, ParseError, Result};
use crate::fsutil::{self, DirLock, Replace};
use crate::sign::identity::{Version, VersionScheme};
use crate::text::{format_time, parse_time};

/// Largest state file read.
const STATE_LIMIT: u64 = 64 * 1024;

/// What the state says was applied last for one package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The version.
    pub version: Version,
    /// The digest of the package applied.
    pub digest: Digest,
    /// When, seconds since the epoch.
    pub at: u64,
}

/// The file's form.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    format: u32,
    name: String,
    version: String,
    version_scheme: String,
    digest: String,
    applied_at: String,
}

/// How an offered release stands against what was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Nothing was applied for this name yet.
    First,
    /// Newer than what was applied.
    Newer(Applied),
    /// The same version with the same digest: already applied.
    AlreadyApplied(Applied),
    /// Older, and the operator allowed exactly this version.
    AllowedDowngrade(Applied),
    /// Older than what was applied (or not comparable with it).
    Rollback(Applied),
    /// The same version with another digest: a version must never be
    /// reused for other bytes.
    VersionReused(Applied),
}

/// An open, locked state directory.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    _lock: DirLock,
}

impl StateDir {
    /// Open `dir` (created 0700 if missing) and take its lock, waiting for
    /// another worker that holds it.
    pub fn open(dir: &Path) -> Result<StateDir> {
        // Created if missing; another worker may create it at the same
        // moment, which is as good.
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(dir, "creating", e)),
        }
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::io(
                    dir,
                    "opening",
                    std::io::Error::other(
                        "the state directory is not a directory (a symlink is not followed)",
                    ),
                ));
            }
            Err(e) => return Err(Error::io(dir, "reading", e)),
        }
        crate::trust::perms::check_dir(dir, crate::trust::perms::KeyDir::Signing)?;
        let lock = fsutil::lock_dir(dir, true)?;
        Ok(StateDir {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// What was applied last for `name`, if anything. A file that does not
    /// parse is an error (`METADATA_INVALID`), never "nothing applied".
    pub fn get(&self, name: &str) -> Result<Option<Applied>> {
        let path = self.file(name);
        let data = match fsutil::read_bounded(&path, STATE_LIMIT, "state file") {
            Ok(d) => d,
            Err(Error::File(crate::error::FileError::NotFound { .. })) => return Ok(None),
            Err(e) => return Err(e),
        };
        parse(&path, name, &data).map(Some)
    }

    /// How `version` with `digest` stands for `name`; `allow_downgrade_to`
    /// lets exactly that older version through.
    pub fn standing(
        &self,
        name: &str,
        version: &Version,
        digest: &Digest,
        allow_downgrade_to: Option<&Version>,
    ) -> Result<Standing> {
        let Some(applied) = self.get(name)? else {
            return Ok(Standing::First);
        };
        Ok(match version.compare(&applied.version) {
            Some(Ordering::Greater) => Standing::Newer(applied),
            Some(Ordering::Equal) if version.to_string() == applied.version.to_string() => {
                if digest.ct_eq(&applied.digest) {
                    Standing::AlreadyApplied(applied)
                } else {
                    Standing::VersionReused(applied)
                }
            }
            // Equal precedence but another spelling (SemVer build
            // metadata): another release claiming the same place.
            Some(Ordering::Equal) => Standing::VersionReused(applied),
            _ if allow_downgrade_to == Some(version) => Standing::AllowedDowngrade(applied),
            _ => Standing::Rollback(applied),
        })
    }

    /// Record that `name` `version` (`digest`) was applied at `at`.
    pub fn record(&self, name: &str, version: &Version, digest: &Digest, at: u64) -> Result<()> {
        let text = encode(
            name,
            &Applied {
                version: version.clone(),
                digest: digest.clone(),
                at,
            },
        )?;
        fsutil::write_atomic(&self.file(name), text.as_bytes(), 0o600, Replace::Allowed)
    }
}

/// Parse the bytes `data` of the state file `path` of package `name` (see
/// [`StateDir::get`], which bounds the file's size first). A file that does
/// not parse, or is for another name, is an error.
pub fn parse(path: &Path, name: &str, data: &[u8]) -> Result<Applied> {
    let bad = |reason: String| {
        Error::Parse(ParseError::Metadata {
            path: path.to_path_buf(),
            reason,
        })
    };
    let r: Record = serde_json::from_slice(data).map_err(|e| bad(e.to_string()))?;
    if r.format != 1 {
        return Err(bad(format!("unknown state format {}", r.format)));
    }
    if r.name != name {
        return Err(bad(format!("the file is for {:?}, not {name:?}", r.name)));
    }
    let scheme = VersionScheme::from_name(&r.version_scheme)
        .ok_or_else(|| bad(format!("unknown version scheme {:?}", r.version_scheme)))?;
    Ok(Applied {
        version: Version::parse(&r.version, scheme).map_err(bad)?,
        digest: Digest::parse(&r.digest, false).map_err(|e| bad(e.to_string()))?,
        at: parse_time(&r.applied_at).ok_or_else(|| bad("applied_at is not a time".into()))?,
    })
}

/// The text of the state file of package `name` that says `applied` was
/// applied last: what [`StateDir::record`] writes, and what [`parse`]
/// reads back as `applied`.
pub fn encode(name: &str, applied: &Applied) -> Result<String> {
    let r = Record {
        format: 1,
        name: name.to_string(),
        version: applied.version.to_string(),
        version_scheme: applied.version.scheme().to_string(),
        digest: applied.digest.to_string(),
        applied_at: format_time(applied.at),
    };
    let mut text = serde_json::to_string_pretty(&r).map_err(|e| Error::Encoding {
        what: "writing the state file",
        reason: e.to_string(),
    })?;
    text.push('\n');
    Ok(text)
}

//! A release's signed identity: the package name, its version (SemVer 2.0
//! or a plain integer, the scheme said in the statement) and an expiry.
//! Signed inside the statement (format version 2), so that a signature for
//! one package cannot pass for another, an older release cannot be replayed
//! as the newest (`--min-version`), and a stale one stops verifying.

use std::cmp::Ordering;
use std::fmt;

/// Longest release name.
pub const NAME_MAX: usize = 128;
/// Longest version text.
pub const VERSION_MAX: usize = 128;

/// How a version is written and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionScheme {
    /// Semantic Versioning 2.0.0 (build metadata is ignored in comparisons,
    /// as SemVer says).
    SemVer,
    /// A decimal integer without leading zeros.
    Integer,
}

impl VersionScheme {
    /// The name written in the statement.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionScheme::SemVer => "semver",
            VersionScheme::Integer => "integer",
        }
    }

    /// The scheme of a `version-scheme:` value.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "semver" => Some(VersionScheme::SemVer),
            "integer" => Some(VersionScheme::Integer),
            _ => None,
        }
    }
}

impl fmt::Display for VersionScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A release version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// A SemVer 2.0.0 version.
    SemVer(semver::Version),
    /// An integer version.
    Integer(u64),
}

impl Version {
    /// Parse `text` under `scheme`; the text must be canonical (what
    /// printing the parsed version gives back), so that each version has
    /// one spelling in a signed statement.
    pub fn parse(text: &str, scheme: VersionScheme) -> Result<Version, String> {
        if text.is_empty() || text.len() > VERSION_MAX {
            return Err(format!("a version has 1 to {VERSION_MAX} characters"));
        }
        let v = match scheme {
            VersionScheme::SemVer => semver::Version::parse(text)
                .map(Version::SemVer)
                .map_err(|e| {
                    format!("{text:?} is not a SemVer 2.0 version ({e}); for a plain number use the integer scheme")
                })?,
            VersionScheme::Integer => text
                .parse::<u64>()
                .map(Version::Integer)
                .map_err(|_| format!("{text:?} is not an integer version (decimal digits)"))?,
        };
        if v.to_string() != text {
            return Err(format!(
                "{text:?} is not in canonical form (write {:?})",
                v.to_string()
            ));
        }
        Ok(v)
    }

    /// The scheme it is written in.
    pub fn scheme(&self) -> VersionScheme {
        match self {
            Version::SemVer(_) => VersionScheme::SemVer,
            Version::Integer(_) => VersionScheme::Integer,
        }
    }

    /// Compare with `other`; None when the schemes differ (two versions of
    /// different schemes say nothing about which is newer).
    pub fn compare(&self, other: &Version) -> Option<Ordering> {
        match (self, other) {
            (Version::SemVer(a), Version::SemVer(b)) => Some(a.cmp_precedence(b)),
            (Version::Integer(a), Version::Integer(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::SemVer(v) => write!(f, "{v}"),
            Version::Integer(n) => write!(f, "{n}"),
        }
    }
}

/// Check a release name: 1 to [`NAME_MAX`] characters of ASCII letters,
/// digits and `- _ . + @`, not starting with `.` or `-`.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= NAME_MAX
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "release name {name:?}: 1 to {NAME_MAX} ASCII letters, digits and - _ . + @, not starting with . or -"
        ))
    }
}

/// What a signature says the package is. Every field is optional; a
/// statement with none of them is a version 1 statement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The package name.
    pub name: Option<String>,
    /// The release version.
    pub version: Option<Version>,
    /// After this time (seconds since the epoch) the statement no longer
    /// verifies.
    pub expires: Option<u64>,
}

impl Identity {
    /// Whether it says nothing (a version 1 statement).
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.version.is_none() && self.expires.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_canonically_and_compare_within_their_scheme() {
        let s = |t: &str| Version::parse(t, VersionScheme::SemVer);
        let i = |t: &str| Version::parse(t, VersionScheme::Integer);
        assert!(s("1.2.3").is_ok() && s("1.0.0-rc.1+build.5").is_ok());
        for bad in ["1.2", "v1.2.3", "01.2.3", "1.2.3 ", "", "1.2.3\n"] {
            assert!(s(bad).is_err(), "{bad:?}");
        }
        for bad in ["012", "+1", "-1", "1.0", "", "18446744073709551616"] {
            assert!(i(bad).is_err(), "{bad:?}");
        }
        let cmp = |a: &str, b: &str| s(a).unwrap().compare(&s(b).unwrap());
        assert_eq!(cmp("1.10.0", "1.9.0"), Some(Ordering::Greater));
        assert_eq!(cmp("1.0.0-rc.1", "1.0.0"), Some(Ordering::Less));
        assert_eq!(cmp("1.0.0+a", "1.0.0+b"), Some(Ordering::Equal));
        assert_eq!(
            i("10").unwrap().compare(&i("9").unwrap()),
            Some(Ordering::Greater)
        );
        assert_eq!(s("1.0.0").unwrap().compare(&i("1").unwrap()), None);
    }

    #[test]
    fn release_names_are_plain() {
        assert!(check_name("app-a_1.x+y@z").is_ok());
        for bad in ["", ".app", "-app", "a b", "a/b", "é", &"a".repeat(129)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}

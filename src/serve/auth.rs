//! Bearer tokens and their roles. The tokens file holds, per line,
//! `NAME ROLE SHA256HEX`: a name for logs, one role, and the SHA-256 of the
//! token (never the token itself). A presented token is hashed and compared
//! with every entry in constant time, with no early exit.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, ParseError, Result};
use crate::fsutil;

/// A tokens file is small.
const MAX_SIZE: u64 = 1024 * 1024;

/// Longest token accepted in a header (longer is refused unhashed).
const MAX_TOKEN: usize = 4096;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Verify signatures and read stored releases.
    Verify,
    /// Upload signed releases and read stored releases.
    Upload,
    /// Generate keys and read stored releases.
    Admin,
}

impl Role {
    /// The spelling in the tokens file.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Verify => "verify",
            Role::Upload => "upload",
            Role::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        match s {
            "verify" => Some(Role::Verify),
            "upload" => Some(Role::Upload),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Who made a request: a token's name and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name (for logs and rate limits).
    pub name: String,
    /// Its role.
    pub role: Role,
}

#[derive(Debug)]
struct Entry {
    principal: Principal,
    hash: [u8; 32],
}

/// The tokens of a tokens file.
#[derive(Debug, Default)]
pub struct Tokens {
    entries: Vec<Entry>,
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization: Bearer` header.
    NoToken,
    /// A token no entry has.
    BadToken,
}

impl AuthFailure {
    /// The label in metrics and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::NoToken => "no_token",
            AuthFailure::BadToken => "bad_token",
        }
    }
}

impl Tokens {
    /// Read a tokens file. Any malformed line refuses the whole file: a
    /// service that cannot tell who may do what does not start.
    pub fn load(path: &Path) -> Result<Tokens> {
        let bad = |line: usize, reason: String| {
            Error::from(ParseError::Config {
                path: path.to_path_buf(),
                line: (line > 0).then_some(line),
                reason,
            })
        };
        let data = fsutil::read_bounded(path, MAX_SIZE, "tokens file")?;
        let mode = std::fs::metadata(path)
            .map_err(|e| Error::io(path, "reading", e))?
            .permissions()
            .mode();
        if mode & 0o022 != 0 {
            return Err(bad(
                0,
                format!(
                    "group or others may write the tokens file (mode {:o}): run `chmod go-w` on it",
                    mode & 0o777
                ),
            ));
        }
        Self::parse(path, &data)
    }

    /// Parse the bytes `data` of the tokens file `path` (see
    /// [`Tokens::load`], which bounds the file's size and checks its
    /// permissions first). Any malformed line refuses the whole file.
    pub fn parse(path: &Path, data: &[u8]) -> Result<Tokens> {
        let bad = |line: usize, reason: String| {
            Error::from(ParseError::Config {
                path: path.to_path_buf(),
                line: (line > 0).then_some(line),
                reason,
            })
        };
        let text = std::str::from_utf8(data).map_err(|_| bad(1, "not UTF-8 text".into()))?;
        let mut entries: Vec<Entry> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, role, hash] = fields.as_slice() else {
                return Err(bad(
                    n,
                    "a token line is `NAME ROLE SHA256HEX` (the SHA-256 of the token, never the token)".into(),
                ));
            };
            let role = Role::parse(role)
                .ok_or_else(|| bad(n, format!("role {role:?}: write verify, upload or admin")))?;
            let mut h = [0u8; 32];
            if hash.len() != 64 || hex::decode_to_slice(hash, &mut h).is_err() {
                return Err(bad(
                    n,
                    "the third field is the token's SHA-256 in 64 hex digits (`printf %s TOKEN | sha256sum`)".into(),
                ));
            }
            if entries.iter().any(|e| e.principal.name == *name) {
                return Err(bad(n, format!("token name {name:?} is used twice")));
            }
            if entries.iter().any(|e| bool::from(e.hash.ct_eq(&h))) {
                return Err(bad(n, "the same token is listed twice".into()));
            }
            entries.push(Entry {
                principal: Principal {
                    name: (*name).to_string(),
                    role,
                },
                hash: h,
            });
        }
        Ok(Tokens { entries })
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Who presents this `Authorization` header value, if anyone.
    pub fn authenticate(
        &self,
        header: Option<&[u8]>,
    ) -> std::result::Result<&Principal, AuthFailure> {
        let Some(value) = header else {
            return Err(AuthFailure::NoToken);
        };
        let token = match value.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer ") => {
                value.get(7..).unwrap_or_default().trim_ascii()
            }
            _ => return Err(AuthFailure::NoToken),
        };
        if token.is_empty() || token.len() > MAX_TOKEN {
            return Err(AuthFailure::BadToken);
        }
        let hash: [u8; 32] = Sha256::digest(token).into();
        let mut found: Option<&Principal> = None;
        for e in &self.entries {
            // Every entry is compared: the time taken does not say which
            // (or whether one) matched.
            let eq = bool::from(e.hash.ct_eq(&hash));
            if eq {
                found = Some(&e.principal);
            }
        }
        found.ok_or(AuthFailure::BadToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Result<Tokens> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokens");
        std::fs::write(&p, text).unwrap();
        Tokens::load(&p)
    }

    fn line(name: &str, role: &str, token: &str) -> String {
        format!("{name} {role} {}\n", hex::encode(Sha256::digest(token)))
    }

    #[test]
    fn a_token_is_known_by_its_hash_only() {
        let t = tokens(&(line("ci", "upload", "s3cret-token") + "# comment\n")).unwrap();
        let p = t.authenticate(Some(b"Bearer s3cret-token")).unwrap();
        assert_eq!((p.name.as_str(), p.role), ("ci", Role::Upload));
        assert_eq!(
            t.authenticate(Some(b"bearer s3cret-token")).unwrap().role,
            Role::Upload
        );
        assert_eq!(
            t.authenticate(Some(b"Bearer s3cret-tokem")),
            Err(AuthFailure::BadToken)
        );
        assert_eq!(t.authenticate(None), Err(AuthFailure::NoToken));
        assert_eq!(
            t.authenticate(Some(b"Basic czNjcmV0")),
            Err(AuthFailure::NoToken)
        );
        assert_eq!(t.authenticate(Some(b"Bearer ")), Err(AuthFailure::BadToken));
        // The hash itself is not a token.
        let hash = hex::encode(Sha256::digest("s3cret-token"));
        assert_eq!(
            t.authenticate(Some(format!("Bearer {hash}").as_bytes())),
            Err(AuthFailure::BadToken)
        );
    }

    #[test]
    fn a_malformed_tokens_file_is_refused_whole_naming_the_line() {
        for (text, want) in [
            ("ci upload\n", "line 1"),
            (&*(line("a", "verify", "x") + "b root 00\n"), "line 2"),
            (&*(line("a", "verify", "x") + "b admin abcd\n"), "64 hex"),
            (
                &*(line("a", "verify", "x") + &line("a", "admin", "y")),
                "twice",
            ),
            (
                &*(line("a", "verify", "x") + &line("b", "admin", "x")),
                "twice",
            ),
        ] {
            let e = tokens(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}

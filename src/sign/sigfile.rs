//! The two signature file formats: the pkgsign format (version 1, and
//! version 2 whose statements carry a release identity) and the `raw`
//! openssl-compatible format. See `docs/signature-format.md`.
//!
//! Parsing is strict: the file is capped at [`FILE_LIMIT`] bytes, fields
//! come in a fixed order with no duplicates and no unknown names, base64 is
//! canonical, lengths are exact and nothing may follow the last signature.
//! Because the representation is canonical, the statement a signature covers
//! is rebuilt from the parsed fields and is byte-for-byte what was signed.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use crate::digest::{Digest, HashAlg};
use crate::error::{Error, FileError, ParseError, Result};
use crate::keys::{Fingerprint, Scheme};
use crate::sign::identity::{self, Identity, Version, VersionScheme};
use crate::text::fields::{FieldError, FieldResult, Fields, shown};

/// First word of a pkgsign signature file.
pub const MAGIC: &str = "pkgsign-signature";
/// The first line of a version 1 file.
pub const HEADER_V1: &str = "pkgsign-signature v1";
/// The first line of a version 2 file: statements with a release identity.
pub const HEADER_V2: &str = "pkgsign-signature v2";
/// Domain-separation prefix of every version 1 statement: a signature over
/// it cannot be mistaken for a signature over anything else.
pub const CONTEXT: &[u8] = crate::sign::Domain::PackageStatement.prefix();
/// The prefix of every version 2 statement (with a release identity).
pub const CONTEXT_V2: &[u8] = crate::sign::Domain::ReleaseStatement.prefix();
/// Largest signature file accepted.
pub const FILE_LIMIT: u64 = 64 * 1024;
/// Most signatures in one file.
pub const MAX_SIGNATURES: usize = 32;
pub use crate::text::{COMMENT_MAX, check_comment, format_time, parse_time};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// What one signature vouches for. Every field is covered by the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Signature scheme (`ed25519` or `rsa-pss-sha256`).
    pub scheme: Scheme,
    /// Fingerprint of the signing key.
    pub key: Fingerprint,
    /// Digest of the whole package.
    pub digest: Digest,
    /// Size of the package in bytes.
    pub size: u64,
    /// Signing time, whole seconds since the Unix epoch.
    pub signed_at: u64,
    /// What the signer says the package is (empty: a version 1 statement).
    pub identity: Identity,
    /// Optional printable comment.
    pub comment: Option<String>,
}

impl Statement {
    /// The domain it is signed under: version 2 when it carries an identity.
    pub fn domain(&self) -> crate::sign::Domain {
        if self.identity.is_empty() {
            crate::sign::Domain::PackageStatement
        } else {
            crate::sign::Domain::ReleaseStatement
        }
    }

    /// The statement's lines as they appear in the file (each ending in `\n`).
    pub fn canonical_text(&self) -> String {
        let mut s = format!(
            "algorithm: {}\nkey: {}\ndigest: {}\nsize: {}\nsigned-at: {}\n",
            self.scheme,
            self.key,
            self.digest,
            self.size,
            format_time(self.signed_at)
        );
        let id = &self.identity;
        if let Some(n) = &id.name {
            s.push_str(&format!("name: {n}\n"));
        }
        if let Some(v) = &id.version {
            s.push_str(&format!("version: {v}\nversion-scheme: {}\n", v.scheme()));
        }
        if let Some(t) = id.expires {
            s.push_str(&format!("expires: {}\n", format_time(t)));
        }
        if let Some(c) = &self.comment {
            s.push_str("comment: ");
            s.push_str(c);
            s.push('\n');
        }
        s
    }

    /// The exact bytes that are signed: the domain's prefix ([`CONTEXT`] or
    /// [`CONTEXT_V2`]) then the canonical text.
    pub fn signed_message(&self) -> Vec<u8> {
        self.domain().framed(self.canonical_text().as_bytes())
    }

    /// The signing time as a `SystemTime`.
    pub fn signed_at_time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.signed_at)
    }
}

/// One signature of a pkgsign-format file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// What was signed.
    pub statement: Statement,
    /// The bare signature over [`Statement::signed_message`].
    pub signature: Vec<u8>,
}

/// A parsed signature file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureFile {
    /// pkgsign format, one block per signature.
    Pkgsign(Vec<Block>),
    /// Raw: one bare signature over the package bytes (RSA PKCS#1 v1.5
    /// SHA-256 or pure Ed25519), as openssl makes it.
    Raw(Vec<u8>),
    /// An SSH signature (`ssh-keygen -Y sign`).
    SshSig(Box<crate::sign::sshsig::SshSignature>),
}

/// Serialize blocks as a pkgsign file: version 2 when the statements carry
/// a release identity, else version 1 (which every pkgsign reads).
pub fn to_pkgsign_text(blocks: &[Block]) -> String {
    let v2 = blocks.iter().any(|b| !b.statement.identity.is_empty());
    let mut s = String::from(if v2 { HEADER_V2 } else { HEADER_V1 });
    s.push('\n');
    for b in blocks {
        s.push_str(&b.statement.canonical_text());
        s.push_str("signature: ");
        s.push_str(&B64.encode(&b.signature));
        s.push('\n');
    }
    s
}

/// Serialize a raw signature: standard base64 and a newline.
pub fn to_raw_text(signature: &[u8]) -> String {
    let mut s = B64.encode(signature);
    s.push('\n');
    s
}

fn scheme_from(s: &str) -> Option<Scheme> {
    Scheme::from_name(s)
}

/// Longest signature of any scheme: RSA-8192.
const MAX_SIGNATURE_LEN: usize = 1024;

fn sig_len_ok(scheme: Scheme, len: usize) -> bool {
    match scheme {
        Scheme::Ed25519 => len == 64,
        _ => (256..=MAX_SIGNATURE_LEN).contains(&len),
    }
}

/// Read and parse the signature file at `path`.
pub fn read(path: &Path) -> Result<SignatureFile> {
    let data =
        crate::fsutil::read_bounded(path, FILE_LIMIT, "signature file").map_err(|e| match e {
            Error::File(FileError::TooLarge { path, limit, .. }) => {
                Error::Parse(ParseError::SignatureMalformed {
                    path,
                    line: None,
                    reason: format!("the file is larger than {limit} bytes"),
                })
            }
            other => other,
        })?;
    parse(path, &data)
}

/// Parse signature file contents (either format).
pub fn parse(path: &Path, data: &[u8]) -> Result<SignatureFile> {
    let malformed = |line: Option<usize>, reason: String| {
        Error::Parse(ParseError::SignatureMalformed {
            path: path.to_path_buf(),
            line,
            reason,
        })
    };
    if data.is_empty() {
        return Err(malformed(None, "the file is empty".into()));
    }
    if data.len() as u64 > FILE_LIMIT {
        return Err(malformed(
            None,
            format!("the file is larger than {FILE_LIMIT} bytes"),
        ));
    }
    let text = std::str::from_utf8(data).map_err(|_| {
        malformed(
            None,
            "not text: a raw signature must be base64 (for a binary signature from openssl, run `base64 -w0 sig.bin > FILE.sig`)".into(),
        )
    })?;
    if text.trim_start().starts_with(crate::sign::sshsig::BEGIN) {
        return crate::sign::sshsig::parse(path, data).map(|s| SignatureFile::SshSig(Box::new(s)));
    }
    if text.starts_with(MAGIC) {
        parse_pkgsign(text).map_err(|(line, reason)| match reason {
            Failure::Version(version) => Error::Parse(ParseError::SignatureVersionUnsupported {
                path: path.to_path_buf(),
                version,
            }),
            Failure::Malformed(reason) => malformed(line, reason),
        })
    } else {
        parse_raw(text)
            .map(SignatureFile::Raw)
            .map_err(|reason| malformed(None, reason))
    }
}

enum Failure {
    Version(String),
    Malformed(String),
}

type ParseResult<T> = std::result::Result<T, (Option<usize>, Failure)>;

fn bad<T>(line: usize, reason: impl Into<String>) -> ParseResult<T> {
    Err((Some(line), Failure::Malformed(reason.into())))
}

fn parse_pkgsign(text: &str) -> ParseResult<SignatureFile> {
    // The version first: a file of another version may follow other rules.
    let first = text.split('\n').next().unwrap_or_default();
    if first != HEADER_V1
        && first != HEADER_V2
        && let Some(v) = first.strip_prefix("pkgsign-signature v")
        && !v.is_empty()
        && v.bytes().all(|b| b.is_ascii_digit())
    {
        return Err((Some(1), Failure::Version(v.to_string())));
    }
    let Some(body) = text.strip_suffix('\n') else {
        return Err((
            None,
            Failure::Malformed("the file does not end with a newline (truncated?)".into()),
        ));
    };
    let mut f = Fields::new(body);
    let (_, header) = f.line("the header").map_err(malformed)?;
    let v2 = header == HEADER_V2;
    if header != HEADER_V1 && !v2 {
        return match header.strip_prefix("pkgsign-signature v") {
            Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                Err((Some(1), Failure::Version(v.to_string())))
            }
            _ => bad(1, format!("bad header line {:?}", shown(header))),
        };
    }
    let mut blocks = Vec::new();
    while f.has_more() {
        if blocks.len() == MAX_SIGNATURES {
            return bad(
                f.next_line_number(),
                format!("more than {MAX_SIGNATURES} signatures"),
            );
        }
        let line = f.next_line_number();
        let block = parse_block(&mut f, v2).map_err(malformed)?;
        // One package, one identity: every block of a version 2 file names
        // the same release (each signer may choose its own expiry).
        if let Some(first) = blocks.first().map(|b: &Block| &b.statement.identity)
            && (first.name != block.statement.identity.name
                || first.version != block.statement.identity.version)
        {
            return bad(
                line,
                "the signatures name different releases (name or version)",
            );
        }
        blocks.push(block);
    }
    if blocks.is_empty() {
        return bad(1, "the file holds no signature");
    }
    Ok(SignatureFile::Pkgsign(blocks))
}

fn malformed(FieldError { line, reason }: FieldError) -> (Option<usize>, Failure) {
    (line, Failure::Malformed(reason))
}

/// The identity lines of a version 2 block, after `signed-at`.
fn parse_identity(f: &mut Fields<'_>) -> FieldResult<Identity> {
    let start = f.next_line_number();
    let name = match f.optional("name")? {
        Some((n, v)) => {
            identity::check_name(v).map_err(|e| FieldError::new(Some(n), e))?;
            Some(v.to_string())
        }
        None => None,
    };
    let version = match f.optional("version")? {
        Some((n, text)) => {
            let (sn, scheme) = f.next("version-scheme")?;
            let scheme = VersionScheme::from_name(scheme).ok_or_else(|| {
                FieldError::new(
                    Some(sn),
                    format!(
                        "unknown version scheme {:?} (known: semver, integer)",
                        shown(scheme)
                    ),
                )
            })?;
            Some(Version::parse(text, scheme).map_err(|e| FieldError::new(Some(n), e))?)
        }
        None => None,
    };
    let expires = f.optional_time("expires")?;
    let id = Identity {
        name,
        version,
        expires,
    };
    if id.is_empty() {
        return Err(FieldError::new(
            Some(start),
            "a version 2 signature names a release (name, version or expires); without one it is written as version 1",
        ));
    }
    Ok(id)
}

fn parse_block(f: &mut Fields<'_>, v2: bool) -> FieldResult<Block> {
    let (n, alg) = f.next("algorithm")?;
    let scheme = scheme_from(alg).ok_or_else(|| {
        FieldError::new(
            Some(n),
            format!(
                "unknown signature algorithm {:?} (known: ed25519, rsa-pss-sha256)",
                shown(alg)
            ),
        )
    })?;
    let key = f.fingerprint("key")?;
    let (n, digest_text) = f.next("digest")?;
    let digest = match Digest::parse(digest_text, false) {
        Ok(d) if d.alg().fit_for_signatures() => d,
        Ok(d) => {
            return Err(FieldError::new(
                Some(n),
                format!("{} is not accepted for signatures", d.alg()),
            ));
        }
        Err(e) => return Err(FieldError::new(Some(n), e.to_string())),
    };
    if digest.to_string() != digest_text {
        return Err(FieldError::new(Some(n), "digest hex must be lower case"));
    }
    let (n, size) = f.next("size")?;
    let size = match size.parse::<u64>() {
        Ok(s) if s.to_string() == size => s,
        _ => {
            return Err(FieldError::new(
                Some(n),
                "size must be a decimal number without leading zeros",
            ));
        }
    };
    let signed_at = f.time("signed-at")?;
    let identity = if v2 {
        parse_identity(f)?
    } else {
        Identity::default()
    };
    let comment = match f.optional("comment")? {
        Some((n, c)) => {
            check_comment(c).map_err(|e| FieldError::new(Some(n), e))?;
            Some(c.to_string())
        }
        None => None,
    };
    let (n, signature) = f.base64("signature", MAX_SIGNATURE_LEN)?;
    if !sig_len_ok(scheme, signature.len()) {
        return Err(FieldError::new(
            Some(n),
            format!(
                "{scheme} signatures are never {} bytes long",
                signature.len()
            ),
        ));
    }
    Ok(Block {
        statement: Statement {
            scheme,
            key,
            digest,
            size,
            signed_at,
            identity,
            comment,
        },
        signature,
    })
}

fn parse_raw(text: &str) -> std::result::Result<Vec<u8>, String> {
    let body = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    let mut joined = String::with_capacity(body.len());
    for line in body.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty()
            || !line
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        {
            return Err(
                "neither a pkgsign signature (first line \"pkgsign-signature v1\") nor a raw base64 signature"
                    .into(),
            );
        }
        joined.push_str(line);
    }
    let sig = match B64.decode(&joined) {
        Ok(s) if B64.encode(&s) == joined => s,
        _ => return Err("raw signature is not canonical base64".into()),
    };
    if sig.len() != 64 && !(256..=1024).contains(&sig.len()) {
        return Err(format!(
            "a raw signature is 64 bytes (Ed25519) or 256 to 1024 bytes (RSA), not {}",
            sig.len()
        ));
    }
    Ok(sig)
}

/// Hash algorithm named in a block, for callers that need to know which
/// hashes to compute before reading the package.
pub fn hash_algs(blocks: &[Block]) -> Vec<HashAlg> {
    let mut v: Vec<HashAlg> = blocks.iter().map(|b| b.statement.digest.alg()).collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests;

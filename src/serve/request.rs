//! What the service reads from a request besides its token
//! ([`super::auth`]): the signature header, the seed's claim headers, the
//! request id, the content type and length, the JSON body of a
//! verification by paths, and the release name and version of a path.
//! Each is parsed strictly and bounded here, apart from the handlers, so
//! that one fuzz target (`fuzz/fuzz_targets/serve_request.rs`) reaches all
//! of them.

use std::path::{Path, PathBuf};

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::Code;
use crate::sign::report::{Package, Verified, seed_algorithm};
use crate::sign::sigfile::{self, SignatureFile};

use super::reply::ApiError;

/// The signature header: the `.sig` file, base64.
pub const SIGNATURE_HEADER: &str = "x-pkgsign-signature";
/// The largest signature file accepted in a header (decoded).
pub const MAX_SIGNATURE: usize = 48 * 1024;
/// The longest request id kept for the audit log.
pub const MAX_REQUEST_ID: usize = 200;

/// The signature header: base64 of a `.sig` file, parsed strictly. Returns
/// the parsed file and its text (stored beside an upload as it came).
pub fn signature(headers: &HeaderMap) -> Result<(SignatureFile, String), ApiError> {
    let Some(v) = headers.get(SIGNATURE_HEADER) else {
        return Err(ApiError::new(
            Code::Usage,
            "send the package's signature file, base64-encoded, in the X-Pkgsign-Signature header",
        ));
    };
    if v.len() > MAX_SIGNATURE.div_ceil(3) * 4 + 8 {
        return Err(ApiError::new(
            Code::SignatureMalformed,
            "X-Pkgsign-Signature is larger than any signature file",
        ));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v.as_bytes().trim_ascii())
        .map_err(|e| {
            ApiError::new(
                Code::SignatureMalformed,
                format!("X-Pkgsign-Signature is not base64: {e}"),
            )
        })?;
    if bytes.len() > MAX_SIGNATURE {
        return Err(ApiError::new(
            Code::SignatureMalformed,
            "X-Pkgsign-Signature is larger than any signature file",
        ));
    }
    let label = Path::new("X-Pkgsign-Signature");
    let parsed = sigfile::parse(label, &bytes).map_err(ApiError::from)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        ApiError::new(
            Code::SignatureMalformed,
            "X-Pkgsign-Signature is not a text signature file",
        )
    })?;
    Ok((parsed, text))
}

/// The seed's `X-Signature-Algorithm` and `X-Public-Key-Fingerprint`: what
/// an uploader says signed the package. Read before the body is, so that a
/// malformed claim is refused before anything is staged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// `X-Signature-Algorithm`, trimmed.
    pub algorithm: Option<String>,
    /// `X-Public-Key-Fingerprint`, trimmed.
    pub fingerprint: Option<String>,
}

impl Claims {
    /// Read the claim headers: absent, or printable text.
    pub fn from_headers(headers: &HeaderMap) -> Result<Claims, ApiError> {
        let text = |name: &str| -> Result<Option<String>, ApiError> {
            headers
                .get(name)
                .map(|v| {
                    v.to_str().map(|s| s.trim().to_string()).map_err(|_| {
                        ApiError::new(Code::Usage, format!("{name} is not printable text"))
                    })
                })
                .transpose()
        };
        Ok(Claims {
            algorithm: text("x-signature-algorithm")?,
            fingerprint: text("x-public-key-fingerprint")?,
        })
    }

    /// The claims hold if one signature that counted has the algorithm and
    /// the key they name (an absent claim holds for any).
    pub fn check(&self, verified: &Verified<Package>) -> Result<(), ApiError> {
        let matches = verified.signers().any(|s| {
            let alg_ok = self.algorithm.as_deref().is_none_or(|a| {
                a.eq_ignore_ascii_case(seed_algorithm(&s.algorithm))
                    || a.eq_ignore_ascii_case(&s.algorithm)
            });
            let fp_ok = self
                .fingerprint
                .as_deref()
                .is_none_or(|f| s.key.as_ref().is_some_and(|k| k.as_str() == f));
            alg_ok && fp_ok
        });
        if matches {
            return Ok(());
        }
        Err(ApiError::new(
            Code::HeaderMismatch,
            format!(
                "no valid signature has{}{}: the headers do not describe this signature",
                self.algorithm
                    .as_ref()
                    .map(|a| format!(" algorithm {a}"))
                    .unwrap_or_default(),
                self.fingerprint
                    .as_ref()
                    .map(|f| format!(" key {f}"))
                    .unwrap_or_default()
            ),
        ))
    }
}

/// The client's `X-Request-Id`, for the audit log: kept if it is 1 to
/// [`MAX_REQUEST_ID`] characters of letters, digits and `- _ . : + = /`,
/// as request ids are; anything else is left out (it is a correlation id,
/// not a trust decision, so it never refuses a request).
pub fn request_id(headers: &HeaderMap) -> String {
    let Some(v) = headers.get("x-request-id") else {
        return String::new();
    };
    let b = v.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= MAX_REQUEST_ID
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.:+=/".contains(c));
    if ok {
        String::from_utf8_lossy(b).into_owned()
    } else {
        String::new()
    }
}

/// The `Content-Length`, if it is a number.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse().ok())
}

/// The two bodies the verification route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/json` naming files: [`VerifyRequest`].
    Json,
    /// `application/octet-stream`: the package, its signature in
    /// [`SIGNATURE_HEADER`].
    Package,
}

/// Which body the `Content-Type` announces.
pub fn body_kind(headers: &HeaderMap) -> Result<BodyKind, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ct.starts_with("application/json") {
        Ok(BodyKind::Json)
    } else if ct.starts_with("application/octet-stream") {
        Ok(BodyKind::Package)
    } else {
        Err(ApiError::new(
            Code::Usage,
            "send application/json naming the files, or the package as application/octet-stream with its signature in X-Pkgsign-Signature",
        ))
    }
}

/// A verification of files named by path (inside the service's allowed
/// directories, checked when they are opened).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The package.
    pub package_path: PathBuf,
    /// Its signature; by default the package's path with `.sig` added.
    pub signature_path: Option<PathBuf>,
    /// A trusted key the signature must be by (narrows, never widens).
    pub public_key_path: Option<PathBuf>,
}

impl VerifyRequest {
    /// Parse the JSON body.
    pub fn parse(bytes: &[u8]) -> Result<VerifyRequest, ApiError> {
        serde_json::from_slice(bytes).map_err(|e| {
            ApiError::new(
                Code::Usage,
                format!("the request is not the JSON this route takes ({e}): send package_path, and optionally signature_path and public_key_path"),
            )
        })
    }
}

/// A release version as a directory name: the characters of SemVer and of
/// dotted numbers only, 1 to 128 of them, never starting with `.`.
pub fn check_version(v: &str) -> Result<(), ApiError> {
    let ok = !v.is_empty()
        && v.len() <= 128
        && !v.starts_with('.')
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'_' | b'~'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            Code::Usage,
            format!("{v:?} is not a release version"),
        ))
    }
}

/// A release name of a path (`/api/v1/update/{name}/...`).
pub fn check_name(name: &str) -> Result<(), ApiError> {
    crate::sign::identity::check_name(name)
        .map_err(|e| ApiError::new(Code::Usage, format!("name: {e}")))
}

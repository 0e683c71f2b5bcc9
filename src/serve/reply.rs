//! Answers: JSON in and out; every error is
//! `{"ok":false,"code":CODE,"error":MESSAGE}` with the command line's
//! codes, and an HTTP status that says the same.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::{Code, Error, FileError};
use crate::verify::VerifyError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The contract's code.
    pub code: Code,
    /// One line: what happened and what to do.
    pub message: String,
    /// More fields for the JSON (a verification's report).
    pub extra: Option<Value>,
    /// Seconds to wait before trying again (429).
    pub retry_after: Option<u64>,
    /// Already in the audit log (each refusal is logged once).
    pub audited: bool,
}

impl ApiError {
    /// An error with the status its code implies.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            status: status_of(code),
            code,
            message: one_line(&message.into()),
            extra: None,
            retry_after: None,
            audited: false,
        }
    }

    /// Add fields to the JSON.
    pub fn with_extra(mut self, extra: Value) -> Self {
        self.extra = Some(extra);
        self
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// The HTTP status of a code.
pub fn status_of(code: Code) -> StatusCode {
    use Code::*;
    match code {
        Usage | NotAFile | EncodingError => StatusCode::BAD_REQUEST,
        Unauthorized => StatusCode::UNAUTHORIZED,
        Forbidden | PathRefused | KeyOutsideDir => StatusCode::FORBIDDEN,
        // Refused for trust: the key is not (or no longer) trusted.
        KeyNotTrusted | KeyExpired | KeyNotYetValid | KeyRevoked | ThresholdNotMet | NoKeys => {
            StatusCode::FORBIDDEN
        }
        FileNotFound | NotFound | KeyNotFound => StatusCode::NOT_FOUND,
        RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        AlreadyExists => StatusCode::CONFLICT,
        FileTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        // Refused for what the package or its signature is.
        SignatureInvalid
        | SignatureMalformed
        | SignatureVersionUnsupported
        | ChecksumMismatch
        | NameMismatch
        | Rollback
        | VersionReused
        | SignatureExpired
        | HeaderMismatch
        | WeakAlgorithm
        | KeyMalformed
        | KeyUnsupported
        | KeyTooWeak
        | ArchiveRefused => StatusCode::UNPROCESSABLE_ENTITY,
        RateLimited => StatusCode::TOO_MANY_REQUESTS,
        DiskFull => StatusCode::INSUFFICIENT_STORAGE,
        NotReady => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Whether an error is the disk (or quota) being full.
pub fn is_disk_full(e: &Error) -> bool {
    match e {
        Error::File(FileError::Io { source, .. }) => {
            source.kind() == std::io::ErrorKind::StorageFull
                || matches!(source.raw_os_error(), Some(28) | Some(122))
        }
        _ => false,
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        // The server's own paths (its store, its staging files) are not
        // the client's business: a failure reading or writing one is told
        // in general terms, and in full in the server's log.
        if is_disk_full(&e) {
            tracing::warn!("{e}");
            return ApiError::new(
                Code::DiskFull,
                "the server's disk is full; nothing was kept",
            );
        }
        if let Error::File(FileError::Io { action, source, .. }) = &e {
            tracing::warn!("{e}");
            return ApiError::new(
                Code::IoError,
                format!("the server failed {action} a file ({source}); nothing was kept"),
            );
        }
        ApiError::new(e.code(), e.to_string())
    }
}

impl From<VerifyError> for ApiError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Refused(report) => {
                let extra = serde_json::to_value(&*report).ok();
                let mut a = ApiError::new(report.code(), report.to_string());
                a.extra = extra;
                a
            }
            VerifyError::Failed(e) => e.into(),
            other => ApiError::new(other.code(), other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "ok": false, "code": self.code, "error": self.message });
        if let (Value::Object(map), Some(Value::Object(extra))) = (&mut body, self.extra) {
            for (k, v) in extra {
                map.entry(k).or_insert(v);
            }
        }
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

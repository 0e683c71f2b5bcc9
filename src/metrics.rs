//! Metrics of the service and of the rotation cron job, in the Prometheus
//! data model (`docs/metrics.md` names and explains every one).
//!
//! - [`Metrics`]: the counters, histograms and gauges of `pkgsign serve`;
//!   [`Metrics::encode`] gives the OpenMetrics text served at `/metrics`
//!   (content type [`CONTENT_TYPE`]).
//! - [`key_figures`]: the age of the current key and the grace window of
//!   the retired ones, read from a signing-keys directory.
//! - [`write_textfile`]: those figures, and when the rotation job last
//!   succeeded or failed, as `DIR/pkgsign.prom` in the Prometheus text
//!   format (0.0.4) that node_exporter's textfile collector reads.
//!
//! Label values come from small fixed sets (results, codes, route
//! templates, methods): a raw URL or any other unbounded input must never
//! become a label value, or every distinct request would make a new series.
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::error::{Code, Error, FileError, Result};
use crate::fsutil::{self, Replace};
use crate::trust::meta::{KEYS_FILE, Metadata};

/// The `Content-Type` of [`Metrics::encode`]'s text (OpenMetrics 1.0).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `Content-Type` of the textfile's format (Prometheus text 0.0.4).
pub const TEXTFILE_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The file [`write_textfile`] writes in its directory.
pub const TEXTFILE_NAME: &str = "pkgsign.prom";

/// Upper bounds (seconds) of the request duration histogram: 1 ms to 60 s.
pub const DURATION_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];

/// Largest previous textfile read back (it holds a dozen lines).
const TEXTFILE_LIMIT: u64 = 64 * 1024;

/// The outcome of a verification, label `result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyResult {
    /// Authentic and signed by enough keys trusted now (`verified`).
    Verified,
    /// Refused: bad signature, untrusted key, digest mismatch... (`refused`).
    Refused,
    /// Could not run: unreadable input, I/O error (`error`).
    Error,
}

impl VerifyResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyResult::Verified => "verified",
            VerifyResult::Refused => "refused",
            VerifyResult::Error => "error",
        }
    }
}

/// The outcome of an upload, label `result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadResult {
    /// Verified and stored (`stored`).
    Stored,
    /// The same bytes were stored before (`already_stored`).
    AlreadyStored,
    /// Refused: its verification or a policy refused it (`refused`).
    Refused,
    /// Could not be handled (`error`).
    Error,
}

impl UploadResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            UploadResult::Stored => "stored",
            UploadResult::AlreadyStored => "already_stored",
            UploadResult::Refused => "refused",
            UploadResult::Error => "error",
        }
    }
}

/// The `code` label: the contract's code, `OK` when there is none.
fn code_label(code: Option<Code>) -> &'static str {
    code.map_or("OK", Code::as_str)
}

/// The `method` label: a standard method, or `OTHER` (a client may send
/// any token as a method; each must not make a series).
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .iter()
        .find(|m| m.eq_ignore_ascii_case(method))
        .copied()
        .unwrap_or("OTHER")
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
    code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlgorithmLabels {
    algorithm: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UnauthorizedLabels {
    route: String,
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The figures of a signing-keys directory (see [`key_figures`]). `None`
/// is "unknown": its gauge is left out of the output, never written as 0.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyFigures {
    /// Age of the current key (the oldest, if several names are current).
    pub current_key_age_seconds: Option<f64>,
    /// Time left until the last grace window of a retired key ends.
    pub grace_remaining_seconds: Option<f64>,
    /// Retired keys still inside their grace window (they still sign).
    pub keys_in_grace: u64,
    /// When the newest current key was made (a rotation, or `--init`).
    pub last_rotation_timestamp_seconds: Option<f64>,
}

/// Write the gauges of `f` that are known.
fn encode_key_figures(f: &KeyFigures, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
    let seconds = Unit::Seconds;
    let timed = [
        (
            "pkgsign_key_age",
            "Age of the current signing key (the oldest current one, if several names)",
            f.current_key_age_seconds,
        ),
        (
            "pkgsign_key_grace_remaining",
            "Time until the last grace window of a retired key ends",
            f.grace_remaining_seconds,
        ),
        (
            "pkgsign_key_last_rotation_timestamp",
            "When the newest current signing key was made (rotation or --init), Unix time",
            f.last_rotation_timestamp_seconds,
        ),
    ];
    for (name, help, value) in timed {
        if let Some(v) = value {
            let g = ConstGauge::new(v);
            g.encode(encoder.encode_descriptor(name, help, Some(&seconds), g.metric_type())?)?;
        }
    }
    let g = ConstGauge::new(f.keys_in_grace);
    g.encode(encoder.encode_descriptor(
        "pkgsign_keys_in_grace",
        "Retired signing keys still inside their grace window (they still sign)",
        None,
        g.metric_type(),
    )?)
}

/// The key gauges of the service: absent until [`Metrics::set_key_figures`].
#[derive(Debug, Default)]
struct KeyGauges(Mutex<Option<KeyFigures>>);

impl Collector for KeyGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let figures = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match figures {
            Some(f) => encode_key_figures(&f, &mut encoder),
            None => Ok(()),
        }
    }
}

/// The metrics of `pkgsign serve`. Cheap to update from any thread.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    verifications: Family<ResultLabels, Counter>,
    signatures: Family<AlgorithmLabels, Counter>,
    uploads: Family<ResultLabels, Counter>,
    unauthorized: Family<UnauthorizedLabels, Counter>,
    rotations: Family<ActionLabels, Counter>,
    requests: Family<RequestLabels, Histogram, fn() -> Histogram>,
    keys: Arc<KeyGauges>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric registered, none with a sample yet.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let verifications = Family::<ResultLabels, Counter>::default();
        registry.register(
            "pkgsign_verifications",
            "Signature verifications, by result and contract code",
            verifications.clone(),
        );
        let signatures = Family::<AlgorithmLabels, Counter>::default();
        registry.register(
            "pkgsign_signatures",
            "Signatures made, by key algorithm",
            signatures.clone(),
        );
        let uploads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "pkgsign_uploads",
            "Signed update uploads, by result and contract code",
            uploads.clone(),
        );
        let unauthorized = Family::<UnauthorizedLabels, Counter>::default();
        registry.register(
            "pkgsign_unauthorized_attempts",
            "Requests refused for want of authorization, by route template and reason",
            unauthorized.clone(),
        );
        let rotations = Family::<ActionLabels, Counter>::default();
        registry.register(
            "pkgsign_key_rotations",
            "Key rotations done by this process, by action",
            rotations.clone(),
        );
        let requests: Family<RequestLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        registry.register_with_unit(
            "pkgsign_http_request_duration",
            "HTTP request durations, by route template, method and status",
            Unit::Seconds,
            requests.clone(),
        );
        let keys = Arc::new(KeyGauges::default());
        registry.register_collector(Box::new(Arc::clone(&keys)));
        Metrics {
            registry,
            verifications,
            signatures,
            uploads,
            unauthorized,
            rotations,
            requests,
            keys,
        }
    }

    /// One verification: `pkgsign_verifications_total{result, code}`
    /// (`code` is `OK` when `None`).
    pub fn verification(&self, result: VerifyResult, code: Option<Code>) {
        self.verifications
            .get_or_create(&ResultLabels {
                result: result.as_str(),
                code: code_label(code),
            })
            .inc();
    }

    /// One signature made: `pkgsign_signatures_total{algorithm}`.
    pub fn signature_made(&self, algorithm: &str) {
        self.signatures
            .get_or_create(&AlgorithmLabels {
                algorithm: algorithm.to_string(),
            })
            .inc();
    }

    /// One upload: `pkgsign_uploads_total{result, code}`.
    pub fn upload(&self, result: UploadResult, code: Option<Code>) {
        self.uploads
            .get_or_create(&ResultLabels {
                result: result.as_str(),
                code: code_label(code),
            })
            .inc();
    }

    /// One request refused for want of authorization:
    /// `pkgsign_unauthorized_attempts_total{route, reason}`. `route` is the
    /// matched route template, `reason` one of a fixed set (`no_token`,
    /// `bad_token`, `wrong_role`, `path_refused`, `bad_signature`, ...).
    pub fn unauthorized(&self, route: &str, reason: &str) {
        self.unauthorized
            .get_or_create(&UnauthorizedLabels {
                route: route.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// One rotation: `pkgsign_key_rotations_total{action}`.
    pub fn rotation(&self, action: &str) {
        self.rotations
            .get_or_create(&ActionLabels {
                action: action.to_string(),
            })
            .inc();
    }

    /// One HTTP request that took `seconds`:
    /// `pkgsign_http_request_duration_seconds{route, method, status}`.
    /// `route` must be the matched route template (`/api/v1/...`), never
    /// the request's path; a method outside the standard ones is `OTHER`.
    pub fn request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        // `max` also turns a NaN into 0.
        let seconds = seconds.max(0.0);
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method_label(method),
                status,
            })
            .observe(seconds);
    }

    /// The key gauges from now on (those that are `None` are left out).
    pub fn set_key_figures(&self, f: &KeyFigures) {
        *self.keys.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(f.clone());
    }

    /// Leave every key gauge out (the figures can no longer be read).
    pub fn clear_key_figures(&self) {
        *self.keys.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The OpenMetrics text exposition (ends with `# EOF`), to be served
    /// with [`CONTENT_TYPE`].
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail, and no metric of ours fails.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The figures of the signing-keys directory `keys_dir` at `now`, from its
/// `keys.toml` (as `key-rotate` keeps it):
/// - the current keys are the `*.pem` files that are not retired
///   (`NAME.retired-*.pem`) and not revoked; a key's age counts from its
///   `not_before` (the time it was made), or, for a key file with no
///   metadata, from the file's modification time, as `--if-older-than`
///   does; the age given is the oldest current key's;
/// - the keys in grace are those, not current and not revoked, whose
///   `not_after` is still ahead; the remaining time is to the latest one.
pub fn key_figures(keys_dir: &Path, now: u64) -> Result<KeyFigures> {
    let pems = crate::rotate::keystore::key_files(keys_dir)?;
    let meta = Metadata::load(keys_dir, KEYS_FILE)?;
    let file_name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let present: Vec<String> = pems.iter().map(|p| file_name(p)).collect();
    let is_current_file = |f: &str| present.iter().any(|p| p == f) && !f.contains(".retired-");

    let mut ages: Vec<u64> = Vec::new();
    let mut newest: Option<u64> = None;
    let mut in_grace = 0u64;
    let mut grace_end: Option<u64> = None;
    for st in meta.keys() {
        let current = st.file.as_deref().is_some_and(is_current_file);
        if st.revoked.is_some() {
            continue;
        }
        if current {
            if let Some(nb) = st.not_before {
                ages.push(now.saturating_sub(nb));
                newest = Some(newest.map_or(nb, |n| n.max(nb)));
            }
        } else if let Some(na) = st.not_after.filter(|na| *na > now) {
            in_grace += 1;
            grace_end = Some(grace_end.map_or(na, |g| g.max(na)));
        }
    }
    // Key files with no metadata entry (dropped in by hand): their age is
    // that of the file, as `key-rotate --if-older-than` counts it.
    for (path, name) in pems.iter().zip(&present) {
        let described = meta
            .keys()
            .iter()
            .any(|st| st.file.as_deref() == Some(name.as_str()));
        if described || name.contains(".retired-") {
            continue;
        }
        let mtime = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map_err(|e| Error::io(path, "reading", e))?;
        if let Ok(d) = mtime.duration_since(std::time::UNIX_EPOCH) {
            ages.push(now.saturating_sub(d.as_secs()));
        }
    }
    Ok(KeyFigures {
        current_key_age_seconds: ages.into_iter().max().map(|a| a as f64),
        grace_remaining_seconds: grace_end.map(|g| g.saturating_sub(now) as f64),
        keys_in_grace: in_grace,
        last_rotation_timestamp_seconds: newest.map(|n| n as f64),
    })
}

/// What the rotation job's run did, for [`write_textfile`].
#[derive(Debug)]
struct RunFigures {
    keys: Option<KeyFigures>,
    last_success: Option<f64>,
    last_failure: Option<f64>,
    last_action: Option<String>,
}

impl Collector for RunFigures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        if let Some(k) = &self.keys {
            encode_key_figures(k, &mut encoder)?;
        }
        let seconds = Unit::Seconds;
        for (name, help, value) in [
            (
                "pkgsign_key_rotation_last_success_timestamp",
                "When a key-rotate run last succeeded (rotated, created or not due), Unix time",
                self.last_success,
            ),
            (
                "pkgsign_key_rotation_last_failure_timestamp",
                "When a key-rotate run last failed, Unix time",
                self.last_failure,
            ),
        ] {
            if let Some(v) = value {
                let g = ConstGauge::new(v);
                g.encode(encoder.encode_descriptor(
                    name,
                    help,
                    Some(&seconds),
                    g.metric_type(),
                )?)?;
            }
        }
        if let Some(action) = &self.last_action {
            let mut m = encoder.encode_descriptor(
                "pkgsign_key_rotation_last_action",
                "The action of the last successful key-rotate run (always 1)",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            let labels = [("action", action.as_str())];
            ConstGauge::new(1u64).encode(m.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// A gauge value of the previous textfile: the line `NAME VALUE` (no
/// labels); a value that is not a finite number is ignored.
fn previous_value(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix(' ')?;
        rest.trim().parse::<f64>().ok().filter(|v| v.is_finite())
    })
}

/// The action of the previous textfile's `pkgsign_key_rotation_last_action`
/// line, if it is one `key-rotate` writes (lower case letters and `-`).
fn previous_action(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix("pkgsign_key_rotation_last_action{action=\"")?;
        let (action, tail) = rest.split_once('"')?;
        let ok = !action.is_empty()
            && action.len() <= 32
            && action.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
        (ok && tail.starts_with('}')).then(|| action.to_string())
    })
}

/// Write `dir/pkgsign.prom` (see [`TEXTFILE_NAME`]) atomically, mode 0644,
/// in the Prometheus text format for node_exporter's textfile collector:
/// the key gauges of `figures`, and `rotation`, the action the run just
/// did (`rotated`, `created`, `not-due`): the run succeeded at `now`. The
/// last failure time of an earlier run is kept from the file it replaces.
/// `rotation: None` records a run that failed at `now`, as
/// [`write_textfile_failure`] does (which also takes unknown figures).
pub fn write_textfile(
    dir: &Path,
    figures: &KeyFigures,
    rotation: Option<&str>,
    now: u64,
) -> Result<()> {
    match rotation {
        Some(action) => write_run(dir, Some(figures), Some(action), now),
        None => write_run(dir, Some(figures), None, now),
    }
}

/// Write `dir/pkgsign.prom` for a run that failed at `now`:
/// `pkgsign_key_rotation_last_failure_timestamp_seconds`, the key gauges
/// of `figures` when they could be read, and the last success time and
/// action kept from the file it replaces.
pub fn write_textfile_failure(dir: &Path, figures: Option<&KeyFigures>, now: u64) -> Result<()> {
    write_run(dir, figures, None, now)
}

/// `action`: `Some` for a run that succeeded, `None` for one that failed.
fn write_run(dir: &Path, keys: Option<&KeyFigures>, action: Option<&str>, now: u64) -> Result<()> {
    let dest = dir.join(TEXTFILE_NAME);
    let previous = match fsutil::read_bounded(&dest, TEXTFILE_LIMIT, "metrics textfile") {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(Error::File(FileError::NotFound { .. })) => String::new(),
        // An unreadable old file loses only the earlier run's times.
        Err(_) => String::new(),
    };
    let now_f = now as f64;
    let run = match action {
        Some(a) => RunFigures {
            keys: keys.cloned(),
            last_success: Some(now_f),
            last_failure: previous_value(
                &previous,
                "pkgsign_key_rotation_last_failure_timestamp_seconds",
            ),
            last_action: Some(a.to_string()),
        },
        None => RunFigures {
            keys: keys.cloned(),
            last_success: previous_value(
                &previous,
                "pkgsign_key_rotation_last_success_timestamp_seconds",
            ),
            last_failure: Some(now_f),
            last_action: previous_action(&previous),
        },
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(run));
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).map_err(|_| {
        Error::Encoding {
            what: "writing the metrics textfile",
            reason: "the Prometheus text encoder failed".into(),
        }
    })?;
    fsutil::write_atomic(&dest, text.as_bytes(), 0o644, Replace::Allowed)
}

#[cfg(test)]
mod tests;

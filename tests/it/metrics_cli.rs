//! Metrics, read by a real Prometheus parser (Python's `prometheus_client`,
//! `pip install prometheus-client`): the textfile `key-rotate
//! --metrics-textfile DIR` writes for node_exporter (Prometheus text 0.0.4),
//! and the OpenMetrics text `pkgsign serve` gives at `/metrics`. Each value
//! is checked against what the test did. A missing parser fails the tests.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use common::rotation::*;
use common::*;
use pkgsign::error::Code;
use pkgsign::metrics::{self, KeyFigures, Metrics, UploadResult, VerifyResult};
use serde_json::Value;

/// Parses stdin with prometheus_client's parser (argv[1]: `text` for the
/// Prometheus text format, `openmetrics` for OpenMetrics) and prints every
/// family as JSON: name -> {type, samples: [[name, labels, value]]}.
const PARSER: &str = r#"
import json, sys
try:
    if sys.argv[1] == "openmetrics":
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    else:
        from prometheus_client.parser import text_string_to_metric_families
except ImportError as e:
    sys.stderr.write("MISSING-PARSER: %s\n" % e)
    sys.exit(3)
out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    if fam.name in out:
        raise SystemExit("family %s given twice" % fam.name)
    out[fam.name] = {"type": fam.type, "samples": [[s.name, s.labels, float(s.value)] for s in fam.samples]}
print(json.dumps(out))
"#;

/// Families of `text`, as a real Prometheus parser reads them.
#[track_caller]
pub(crate) fn parse(text: &str, format: &str) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let cmd = tool_cmd(tmp.path(), "python3", ["-c", PARSER, format]);
    let r = capture(cmd, Some(text.as_bytes()), DEFAULT_TIMEOUT);
    assert!(
        !r.stderr.contains("MISSING-PARSER"),
        "Python's prometheus_client is not installed, and these tests need a real Prometheus parser: run `pip install prometheus-client` ({})",
        r.stderr.trim()
    );
    assert_eq!(
        r.code, 0,
        "the {format} parser refused the text:\n{text}\n{r:#?}"
    );
    serde_json::from_slice(&r.stdout).unwrap()
}

/// The families of `DIR/pkgsign.prom`, read as node_exporter reads them.
#[track_caller]
fn textfile(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join(metrics::TEXTFILE_NAME)).unwrap();
    parse(&text, "text")
}

/// The value of the one unlabelled sample of gauge `name`, if the family is there.
#[track_caller]
fn gauge(fams: &Value, name: &str) -> Option<f64> {
    let fam = fams.get(name)?;
    assert_eq!(fam["type"], "gauge", "{name}: {fam}");
    let samples = fam["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 1, "{name}: {fam}");
    assert_eq!(samples[0][0], name);
    assert_eq!(samples[0][1], serde_json::json!({}), "{name}: {fam}");
    Some(samples[0][2].as_f64().unwrap())
}

#[track_caller]
fn near(what: &str, got: Option<f64>, want: u64, slack: u64) {
    let got = got.unwrap_or_else(|| panic!("{what}: absent"));
    assert!(
        (got - want as f64).abs() <= slack as f64,
        "{what}: {got}, expected {want} ± {slack}"
    );
}

/// Samples of a counter family: labels -> value.
#[track_caller]
fn counter(fams: &Value, family: &str) -> BTreeMap<String, f64> {
    let fam = &fams[family];
    assert_eq!(fam["type"], "counter", "{family}: {fams}");
    fam["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s[0], format!("{family}_total"));
            (s[1].to_string(), s[2].as_f64().unwrap())
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let m: serde_json::Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    Value::Object(m).to_string()
}

/// Slack for a clock that runs (faketime keeps it running) and for a slow run.
const SLACK: u64 = 120;

/// A cron job of rotations, monitored through node_exporter: the textfile
/// says, after a rotation, that the key is new, that the old key has the
/// whole grace period ahead and still signs; after a run that was not due,
/// that the job ran; after a failed run, when it failed, while keeping
/// the last success and the key figures.
#[test]
fn key_rotate_textfile_tells_node_exporter_what_the_rotation_did() {
    let env = Env::new();
    let prom = env.path("textfile");
    std::fs::create_dir(&prom).unwrap();
    let prom_arg = prom.display().to_string();
    let t0 = now();
    run(ps_at(t0, env.rotate_args(&["--init"]))).ok();

    // Rotated 90 days later, grace 30 days.
    let t1 = t0 + 90 * DAY;
    let out = run(ps_at(
        t1,
        env.rotate_args(&["--grace-period", "30d", "--metrics-textfile", &prom_arg]),
    ))
    .ok()
    .json();
    assert_eq!(out["action"], "rotated", "{out}");
    let f = textfile(&prom);
    near("key age", gauge(&f, "pkgsign_key_age_seconds"), 0, SLACK);
    near(
        "grace remaining",
        gauge(&f, "pkgsign_key_grace_remaining_seconds"),
        30 * DAY,
        SLACK,
    );
    assert_eq!(gauge(&f, "pkgsign_keys_in_grace"), Some(1.0), "{f}");
    near(
        "last rotation",
        gauge(&f, "pkgsign_key_last_rotation_timestamp_seconds"),
        t1,
        SLACK,
    );
    near(
        "last success",
        gauge(&f, "pkgsign_key_rotation_last_success_timestamp_seconds"),
        t1,
        SLACK,
    );
    assert_eq!(
        gauge(&f, "pkgsign_key_rotation_last_failure_timestamp_seconds"),
        None,
        "{f}"
    );
    assert_eq!(
        f["pkgsign_key_rotation_last_action"]["samples"],
        serde_json::json!([["pkgsign_key_rotation_last_action", {"action": "rotated"}, 1.0]]),
        "{f}"
    );
    // node_exporter reads every *.prom: no temp file is left beside it.
    assert_eq!(files_with(&prom, ""), [prom.join("pkgsign.prom")]);

    // A day later the daily cron finds nothing due: it still reports.
    let t2 = t1 + DAY;
    let out = run(ps_at(
        t2,
        env.rotate_args(&["--if-older-than", "90d", "--metrics-textfile", &prom_arg]),
    ))
    .ok()
    .json();
    assert_eq!(out["action"], "not-due", "{out}");
    let f = textfile(&prom);
    near("key age", gauge(&f, "pkgsign_key_age_seconds"), DAY, SLACK);
    near(
        "grace remaining",
        gauge(&f, "pkgsign_key_grace_remaining_seconds"),
        29 * DAY,
        SLACK,
    );
    near(
        "last success",
        gauge(&f, "pkgsign_key_rotation_last_success_timestamp_seconds"),
        t2,
        SLACK,
    );
    near(
        "last rotation",
        gauge(&f, "pkgsign_key_last_rotation_timestamp_seconds"),
        t1,
        SLACK,
    );
    assert_eq!(
        f["pkgsign_key_rotation_last_action"]["samples"][0][1],
        serde_json::json!({"action": "not-due"}),
        "{f}"
    );

    // The next day it fails (a key name that does not exist): the failure
    // is recorded; the last success and the key figures stay.
    let t3 = t2 + DAY;
    run(ps_at(
        t3,
        env.rotate_args(&["--name", "signing-kye", "--metrics-textfile", &prom_arg]),
    ))
    .fails_with(2, "KEY_NOT_FOUND");
    let f = textfile(&prom);
    near(
        "last failure",
        gauge(&f, "pkgsign_key_rotation_last_failure_timestamp_seconds"),
        t3,
        SLACK,
    );
    near(
        "last success",
        gauge(&f, "pkgsign_key_rotation_last_success_timestamp_seconds"),
        t2,
        SLACK,
    );
    near(
        "key age",
        gauge(&f, "pkgsign_key_age_seconds"),
        2 * DAY,
        SLACK,
    );
    assert_eq!(gauge(&f, "pkgsign_keys_in_grace"), Some(1.0), "{f}");
}

/// A mistyped --metrics-textfile is refused before anything is rotated: a
/// rotation nobody monitors is not done.
#[test]
fn key_rotate_refuses_a_textfile_dir_that_is_not_there_before_rotating() {
    let env = Env::new();
    env.rotate(&["--init"]);
    let before = std::fs::read(env.current()).unwrap();
    let missing = env.path("no-such-dir").display().to_string();
    let r = run(ps(env.rotate_args(&["--metrics-textfile", &missing]))).fails_with(2, "USAGE");
    assert!(r.stderr.contains("--metrics-textfile"), "{r:#?}");
    assert_eq!(std::fs::read(env.current()).unwrap(), before);
}

/// What `/metrics` serves parses as OpenMetrics, with the counts made, the
/// request histogram's count, and the key gauges that are known (only).
#[test]
fn served_metrics_parse_as_openmetrics_with_the_counts_made() {
    let m = Metrics::new();
    for _ in 0..3 {
        m.verification(VerifyResult::Verified, None);
    }
    m.verification(VerifyResult::Refused, Some(Code::SignatureInvalid));
    m.verification(VerifyResult::Refused, Some(Code::KeyRevoked));
    m.verification(VerifyResult::Refused, Some(Code::KeyRevoked));
    m.signature_made("ed25519");
    m.upload(UploadResult::Stored, None);
    m.upload(UploadResult::Refused, Some(Code::Rollback));
    m.unauthorized("/api/v1/update/signed", "no_token");
    m.rotation("rotated");
    for s in [0.002, 0.2, 45.0] {
        m.request("/api/v1/security/verify-signature", "POST", 200, s);
    }
    m.set_key_figures(&KeyFigures {
        current_key_age_seconds: Some(3600.0),
        grace_remaining_seconds: None,
        keys_in_grace: 0,
        last_rotation_timestamp_seconds: Some(1_800_000_000.0),
    });
    let f = parse(&m.encode(), "openmetrics");

    let v = counter(&f, "pkgsign_verifications");
    assert_eq!(
        v,
        BTreeMap::from([
            (labels(&[("code", "OK"), ("result", "verified")]), 3.0),
            (
                labels(&[("code", "SIGNATURE_INVALID"), ("result", "refused")]),
                1.0
            ),
            (
                labels(&[("code", "KEY_REVOKED"), ("result", "refused")]),
                2.0
            ),
        ]),
        "{f}"
    );
    assert_eq!(
        counter(&f, "pkgsign_signatures"),
        BTreeMap::from([(labels(&[("algorithm", "ed25519")]), 1.0)])
    );
    assert_eq!(
        counter(&f, "pkgsign_uploads"),
        BTreeMap::from([
            (labels(&[("code", "OK"), ("result", "stored")]), 1.0),
            (labels(&[("code", "ROLLBACK"), ("result", "refused")]), 1.0),
        ])
    );
    assert_eq!(
        counter(&f, "pkgsign_unauthorized_attempts"),
        BTreeMap::from([(
            labels(&[("reason", "no_token"), ("route", "/api/v1/update/signed")]),
            1.0
        )])
    );
    assert_eq!(
        counter(&f, "pkgsign_key_rotations"),
        BTreeMap::from([(labels(&[("action", "rotated")]), 1.0)])
    );

    let h = &f["pkgsign_http_request_duration_seconds"];
    assert_eq!(h["type"], "histogram", "{f}");
    let sample = |suffix: &str, le: Option<&str>| -> f64 {
        h["samples"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                s[0] == format!("pkgsign_http_request_duration_seconds{suffix}")
                    && le.is_none_or(|le| s[1]["le"] == le)
            })
            .unwrap_or_else(|| panic!("{suffix} {le:?}: {h}"))[2]
            .as_f64()
            .unwrap()
    };
    assert_eq!(sample("_count", None), 3.0);
    assert!((sample("_sum", None) - 45.202).abs() < 1e-9);
    assert_eq!(sample("_bucket", Some("0.001")), 0.0);
    assert_eq!(sample("_bucket", Some("0.0025")), 1.0);
    assert_eq!(sample("_bucket", Some("0.25")), 2.0);
    assert_eq!(sample("_bucket", Some("30.0")), 2.0);
    assert_eq!(sample("_bucket", Some("60.0")), 3.0);
    assert_eq!(sample("_bucket", Some("+Inf")), 3.0);

    assert_eq!(gauge(&f, "pkgsign_key_age_seconds"), Some(3600.0));
    assert_eq!(gauge(&f, "pkgsign_keys_in_grace"), Some(0.0));
    assert_eq!(
        gauge(&f, "pkgsign_key_last_rotation_timestamp_seconds"),
        Some(1_800_000_000.0)
    );
    // Unknown: absent, not 0.
    assert_eq!(
        gauge(&f, "pkgsign_key_grace_remaining_seconds"),
        None,
        "{f}"
    );
}

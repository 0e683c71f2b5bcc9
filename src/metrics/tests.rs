use std::collections::BTreeMap;
use std::path::PathBuf;

use super::*;
use crate::rotate::{self, Options};

/// 2027-01-15T08:00:00Z.
const T: u64 = 1_800_000_000;
const DAY: u64 = 86_400;

/// The samples of an exposition: `name{labels}` -> value (comments skipped).
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse::<f64>().unwrap())
        })
        .collect()
}

/// The series whose value `act` changed, with the change.
fn changed(m: &Metrics, act: impl FnOnce(&Metrics)) -> BTreeMap<String, f64> {
    let before = samples(&m.encode());
    act(m);
    let after = samples(&m.encode());
    assert!(
        before.keys().all(|k| after.contains_key(k)),
        "a series disappeared"
    );
    after
        .into_iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(&k).copied().unwrap_or(0.0);
            (d != 0.0 || !before.contains_key(&k)).then_some((k, d))
        })
        .collect()
}

/// A call on the metrics.
type Action = Box<dyn Fn(&Metrics)>;

fn one(series: &str) -> BTreeMap<String, f64> {
    BTreeMap::from([(series.to_string(), 1.0)])
}

/// Each call moves its own counter, with its own labels, by one, and no
/// other series: a miscounted refusal would hide an attack from an alert.
#[test]
fn each_call_counts_exactly_its_own_series() {
    let m = Metrics::new();
    let cases: Vec<(Action, &str)> = vec![
        (
            Box::new(|m| m.verification(VerifyResult::Verified, None)),
            r#"pkgsign_verifications_total{result="verified",code="OK"}"#,
        ),
        (
            Box::new(|m| m.verification(VerifyResult::Refused, Some(Code::KeyRevoked))),
            r#"pkgsign_verifications_total{result="refused",code="KEY_REVOKED"}"#,
        ),
        (
            Box::new(|m| m.verification(VerifyResult::Error, Some(Code::IoError))),
            r#"pkgsign_verifications_total{result="error",code="IO_ERROR"}"#,
        ),
        (
            Box::new(|m| m.signature_made("ed25519")),
            r#"pkgsign_signatures_total{algorithm="ed25519"}"#,
        ),
        (
            Box::new(|m| m.upload(UploadResult::Stored, None)),
            r#"pkgsign_uploads_total{result="stored",code="OK"}"#,
        ),
        (
            Box::new(|m| m.upload(UploadResult::AlreadyStored, None)),
            r#"pkgsign_uploads_total{result="already_stored",code="OK"}"#,
        ),
        (
            Box::new(|m| m.upload(UploadResult::Refused, Some(Code::Rollback))),
            r#"pkgsign_uploads_total{result="refused",code="ROLLBACK"}"#,
        ),
        (
            Box::new(|m| m.upload(UploadResult::Error, Some(Code::IoError))),
            r#"pkgsign_uploads_total{result="error",code="IO_ERROR"}"#,
        ),
        (
            Box::new(|m| m.unauthorized("/api/v1/update/signed", "wrong_role")),
            r#"pkgsign_unauthorized_attempts_total{route="/api/v1/update/signed",reason="wrong_role"}"#,
        ),
        (
            Box::new(|m| m.rotation("rotated")),
            r#"pkgsign_key_rotations_total{action="rotated"}"#,
        ),
    ];
    // Twice: the second round increments series that exist already.
    for _ in 0..2 {
        for (act, series) in &cases {
            assert_eq!(changed(&m, act), one(series), "{series}");
        }
    }
}

/// A request lands in the buckets at and above its duration, in the count
/// and in the sum of its route template, method and status.
#[test]
fn a_request_fills_the_buckets_from_its_duration_up() {
    let m = Metrics::new();
    let d = changed(&m, |m| {
        m.request("/api/v1/security/verify-signature", "POST", 200, 0.003)
    });
    let labels = r#"route="/api/v1/security/verify-signature",method="POST",status="200""#;
    let mut want = BTreeMap::new();
    for le in DURATION_BUCKETS {
        let le_s = format!("{le:?}");
        want.insert(
            format!("pkgsign_http_request_duration_seconds_bucket{{le=\"{le_s}\",{labels}}}"),
            if le >= 0.003 { 1.0 } else { 0.0 },
        );
    }
    want.insert(
        format!("pkgsign_http_request_duration_seconds_bucket{{le=\"+Inf\",{labels}}}"),
        1.0,
    );
    want.insert(
        format!("pkgsign_http_request_duration_seconds_count{{{labels}}}"),
        1.0,
    );
    want.insert(
        format!("pkgsign_http_request_duration_seconds_sum{{{labels}}}"),
        0.003,
    );
    assert_eq!(d, want);
    // 1 ms and 60 s are bucket bounds: the range the service cares about.
    assert_eq!(DURATION_BUCKETS.first(), Some(&0.001));
    assert_eq!(DURATION_BUCKETS.last(), Some(&60.0));
}

/// A client can send any token as a method: a thousand made-up methods
/// must make one `OTHER` series, not a thousand.
#[test]
fn made_up_methods_share_one_series() {
    let m = Metrics::new();
    for i in 0..1000 {
        m.request("/healthz", &format!("X{i}"), 405, 0.0001);
    }
    m.request("/healthz", "get", 200, f64::NAN);
    let text = m.encode();
    let counts: Vec<_> = samples(&text)
        .into_iter()
        .filter(|(k, _)| k.starts_with("pkgsign_http_request_duration_seconds_count"))
        .collect();
    assert_eq!(
        counts,
        [
            (
                r#"pkgsign_http_request_duration_seconds_count{route="/healthz",method="GET",status="200"}"#
                    .to_string(),
                1.0
            ),
            (
                r#"pkgsign_http_request_duration_seconds_count{route="/healthz",method="OTHER",status="405"}"#
                    .to_string(),
                1000.0
            ),
        ]
    );
}

/// An unknown figure is left out, not written as 0 (a 0 would read as "the
/// key was just rotated" or "the grace window ends now"), and no key gauge
/// is there before the figures are set or after they are cleared.
#[test]
fn unknown_key_figures_are_absent_not_zero() {
    let m = Metrics::new();
    let key_series = |m: &Metrics| -> Vec<String> {
        samples(&m.encode())
            .into_keys()
            .filter(|k| k.starts_with("pkgsign_key"))
            .collect()
    };
    assert!(key_series(&m).is_empty(), "{:?}", key_series(&m));
    m.set_key_figures(&KeyFigures {
        current_key_age_seconds: Some(12.0),
        grace_remaining_seconds: None,
        keys_in_grace: 0,
        last_rotation_timestamp_seconds: None,
    });
    let s = samples(&m.encode());
    assert_eq!(s.get("pkgsign_key_age_seconds"), Some(&12.0));
    assert_eq!(s.get("pkgsign_keys_in_grace"), Some(&0.0));
    assert_eq!(key_series(&m).len(), 2, "{:?}", key_series(&m));
    m.set_key_figures(&KeyFigures {
        current_key_age_seconds: Some(1.0),
        grace_remaining_seconds: Some(3.0 * DAY as f64),
        keys_in_grace: 1,
        last_rotation_timestamp_seconds: Some(T as f64),
    });
    let s = samples(&m.encode());
    assert_eq!(
        s.get("pkgsign_key_grace_remaining_seconds"),
        Some(&(3.0 * DAY as f64))
    );
    assert_eq!(
        s.get("pkgsign_key_last_rotation_timestamp_seconds"),
        Some(&(T as f64))
    );
    assert_eq!(key_series(&m).len(), 4);
    m.clear_key_figures();
    assert!(key_series(&m).is_empty());
}

/// The served text is OpenMetrics: typed families, units, `# EOF` last.
#[test]
fn encode_is_openmetrics_ending_with_eof() {
    let m = Metrics::new();
    m.verification(VerifyResult::Verified, None);
    m.request("/healthz", "GET", 200, 0.01);
    let text = m.encode();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("# TYPE pkgsign_verifications counter\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE pkgsign_http_request_duration_seconds histogram\n")
            && text.contains("# UNIT pkgsign_http_request_duration_seconds seconds\n"),
        "{text}"
    );
}

fn opts(now: u64) -> Options<'static> {
    Options {
        grace: 30 * DAY,
        init: true,
        ..Options::new("signing-key", now)
    }
}

fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let keys = d.path().join("keys");
    let tdir = d.path().join("trusted");
    (d, keys, tdir)
}

/// The figures follow the keys directory through a rotation: the new
/// key's age counts from the rotation, the old key is in grace until its
/// window ends, and then in nothing.
#[test]
fn key_figures_follow_a_rotation_and_its_grace_window() {
    let (_d, keys, tdir) = dirs();
    rotate::rotate(&keys, &tdir, &opts(T)).unwrap();
    let f = key_figures(&keys, T + 100).unwrap();
    assert_eq!(
        f,
        KeyFigures {
            current_key_age_seconds: Some(100.0),
            grace_remaining_seconds: None,
            keys_in_grace: 0,
            last_rotation_timestamp_seconds: Some(T as f64),
        }
    );
    let t1 = T + 90 * DAY;
    rotate::rotate(&keys, &tdir, &opts(t1)).unwrap();
    let f = key_figures(&keys, t1 + 10).unwrap();
    assert_eq!(
        f,
        KeyFigures {
            current_key_age_seconds: Some(10.0),
            grace_remaining_seconds: Some((30 * DAY - 10) as f64),
            keys_in_grace: 1,
            last_rotation_timestamp_seconds: Some(t1 as f64),
        }
    );
    // After the window: nothing in grace, and no "grace remaining".
    let f = key_figures(&keys, t1 + 31 * DAY).unwrap();
    assert_eq!(f.keys_in_grace, 0);
    assert_eq!(f.grace_remaining_seconds, None);
    assert_eq!(f.current_key_age_seconds, Some((31 * DAY) as f64));
}

/// A key revoked in an emergency is not "in grace": it no longer signs.
#[test]
fn an_emergency_revoked_key_is_not_counted_in_grace() {
    let (_d, keys, tdir) = dirs();
    rotate::rotate(&keys, &tdir, &opts(T)).unwrap();
    let o = Options {
        emergency: true,
        ..opts(T + DAY)
    };
    rotate::rotate(&keys, &tdir, &o).unwrap();
    let f = key_figures(&keys, T + DAY + 5).unwrap();
    assert_eq!(f.keys_in_grace, 0);
    assert_eq!(f.grace_remaining_seconds, None);
    assert_eq!(f.current_key_age_seconds, Some(5.0));
}

/// A key file dropped in without metadata has the age of its file (as
/// `--if-older-than` counts it), so an old hand-made key is not hidden.
#[test]
fn a_key_without_metadata_is_aged_by_its_file() {
    let (_d, keys, _) = dirs();
    std::fs::create_dir(&keys).unwrap();
    let k = crate::keys::generate(crate::keys::KeySpec::Ed25519).unwrap();
    let pem = crate::keys::encoding::private_key_to_pem(&k, None).unwrap();
    let p = keys.join("hand.pem");
    fsutil::write_atomic(&p, pem.as_bytes(), 0o600, Replace::Never).unwrap();
    let mtime = std::fs::metadata(&p)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let f = key_figures(&keys, mtime + 400 * DAY).unwrap();
    assert_eq!(f.current_key_age_seconds, Some((400 * DAY) as f64));
    assert_eq!(f.last_rotation_timestamp_seconds, None);
    // No keys directory: an error, not figures of nothing.
    assert!(key_figures(&keys.join("missing"), T).is_err());
}

fn textfile_samples(dir: &Path) -> BTreeMap<String, f64> {
    samples(&std::fs::read_to_string(dir.join(TEXTFILE_NAME)).unwrap())
}

/// A failed run records its time and keeps the last success (time and
/// action) of the file it replaces; a later success keeps the failure time,
/// so an alert can compare the two.
#[test]
fn a_failed_run_keeps_the_last_success_and_a_success_keeps_the_last_failure() {
    let d = tempfile::tempdir().unwrap();
    let figures = KeyFigures {
        current_key_age_seconds: Some(0.0),
        grace_remaining_seconds: Some((30 * DAY) as f64),
        keys_in_grace: 1,
        last_rotation_timestamp_seconds: Some(T as f64),
    };
    write_textfile(d.path(), &figures, Some("rotated"), T).unwrap();
    let s = textfile_samples(d.path());
    assert_eq!(
        s.get("pkgsign_key_rotation_last_success_timestamp_seconds"),
        Some(&(T as f64))
    );
    assert!(!s.contains_key("pkgsign_key_rotation_last_failure_timestamp_seconds"));
    assert_eq!(
        s.get(r#"pkgsign_key_rotation_last_action{action="rotated"}"#),
        Some(&1.0)
    );

    // A failure with unreadable figures: no key gauge, old success kept.
    write_textfile_failure(d.path(), None, T + DAY).unwrap();
    let s = textfile_samples(d.path());
    assert_eq!(
        s,
        BTreeMap::from([
            (
                "pkgsign_key_rotation_last_success_timestamp_seconds".to_string(),
                T as f64
            ),
            (
                "pkgsign_key_rotation_last_failure_timestamp_seconds".to_string(),
                (T + DAY) as f64
            ),
            (
                r#"pkgsign_key_rotation_last_action{action="rotated"}"#.to_string(),
                1.0
            ),
        ])
    );

    write_textfile(d.path(), &figures, Some("not-due"), T + 2 * DAY).unwrap();
    let s = textfile_samples(d.path());
    assert_eq!(
        s.get("pkgsign_key_rotation_last_success_timestamp_seconds"),
        Some(&((T + 2 * DAY) as f64))
    );
    assert_eq!(
        s.get("pkgsign_key_rotation_last_failure_timestamp_seconds"),
        Some(&((T + DAY) as f64))
    );
    assert_eq!(
        s.get(r#"pkgsign_key_rotation_last_action{action="not-due"}"#),
        Some(&1.0)
    );
    assert_eq!(s.get("pkgsign_keys_in_grace"), Some(&1.0));
    // Only the file itself is left: no temp file for node_exporter to see.
    let names: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [TEXTFILE_NAME]);
}

/// A previous file with hostile lines (not a number, an injected label,
/// a newline in an action) carries nothing forward into the new file.
#[test]
fn a_garbled_previous_textfile_carries_nothing_forward() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join(TEXTFILE_NAME),
        "pkgsign_key_rotation_last_success_timestamp_seconds NaN\n\
         pkgsign_key_rotation_last_success_timestamp_seconds{x=\"1\"} 5\n\
         pkgsign_key_rotation_last_action{action=\"a\\\"}\nevil 1\"} 1\n\
         pkgsign_key_rotation_last_action{action=\"ROTATED\"} 1\n",
    )
    .unwrap();
    write_textfile_failure(d.path(), None, T).unwrap();
    let s = textfile_samples(d.path());
    assert_eq!(
        s,
        BTreeMap::from([(
            "pkgsign_key_rotation_last_failure_timestamp_seconds".to_string(),
            T as f64
        )])
    );
}

/// The service shares one `Metrics` between its tasks (in an `Arc`).
#[test]
fn metrics_can_be_shared_between_threads() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<Metrics>();
    let m = std::sync::Arc::new(Metrics::new());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let m = std::sync::Arc::clone(&m);
            std::thread::spawn(move || {
                for _ in 0..250 {
                    m.verification(VerifyResult::Verified, None);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        samples(&m.encode()).get(r#"pkgsign_verifications_total{result="verified",code="OK"}"#),
        Some(&1000.0)
    );
}

//! The audit log: several processes appending to one file at once, through
//! `--audit-log` and `PKGSIGN_AUDIT_LOG`. Every line must be there, be one
//! JSON object with the contract's fields, and hold no secret.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use common::rotation::*;
use common::*;
use serde_json::Value;

const PASS: &str = "correct-horse-battery-staple-7731";

fn read_log(path: &Path) -> (String, Vec<Value>) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.ends_with('\n'), "the log ends with a whole line");
    let lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {l:?}", i + 1))
        })
        .collect();
    (text, lines)
}

fn events<'a>(lines: &'a [Value], name: &str) -> Vec<&'a Value> {
    lines.iter().filter(|v| v["event"] == name).collect()
}

fn is_fp(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.parse::<pkgsign::keys::Fingerprint>()
            .is_ok_and(|f| f.as_str() == s)
    })
}

fn is_hash(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    })
}

/// Spawn all, then wait for all; every one must exit with `want`.
fn all_at_once(cmds: Vec<Command>, want: i32) {
    let children: Vec<_> = cmds
        .into_iter()
        .map(|mut c| {
            c.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(want),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn concurrent_processes_write_whole_lines_with_the_contract_fields() {
    let env = Env::new();
    let log = env.path("audit.jsonl");
    let log_s = log.to_str().unwrap().to_string();
    let with_pass = |mut c: Command| {
        c.env("PKGSIGN_PASSPHRASE", PASS);
        c
    };

    // Create A, rotate to B (both encrypted with the passphrase).
    let mut a = env.rotate_args(&["--audit-log", &log_s]);
    a.retain(|x| x != "--json");
    run(with_pass(ps(&a))).ok();
    run(with_pass(ps(&a))).ok();
    let (_, lines) = read_log(&log);
    assert_eq!(events(&lines, "key_generated").len(), 2);
    let done = events(&lines, "key_rotation_completed");
    assert_eq!(done.len(), 2);
    assert!(done[0]["old_key"].is_null());
    assert!(is_fp(&done[1]["old_key"]) && is_fp(&done[1]["key"]));
    assert!(done[1]["old_key_trusted_until"].is_string());

    // Round 1: eight sign-package at once, half through the flag, half
    // through the environment. Each signs with A and B.
    let pkgs: Vec<_> = (0..8).map(|i| env.package(&format!("p{i}.tar"))).collect();
    let cmds = pkgs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut args = env.sign_dir_args(p, None);
            let mut c = if i % 2 == 0 {
                args.extend(["--audit-log".into(), log_s.clone()]);
                ps(&args)
            } else {
                let mut c = ps(&args);
                c.env("PKGSIGN_AUDIT_LOG", &log);
                c
            };
            c.env("PKGSIGN_PASSPHRASE", PASS);
            c
        })
        .collect();
    all_at_once(cmds, 0);

    // Round 2: eight verify-package at once; two of the packages were
    // altered after signing.
    for p in &pkgs[6..] {
        let mut b = std::fs::read(p).unwrap();
        b[0] ^= 1;
        std::fs::write(p, b).unwrap();
    }
    let cmds = pkgs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut args = env.verify_args(p, None);
            if i % 2 == 0 {
                args.extend(["--audit-log".into(), log_s.clone()]);
                ps(&args)
            } else {
                let mut c = ps(&args);
                c.env("PKGSIGN_AUDIT_LOG", &log);
                c
            }
        })
        .collect::<Vec<_>>();
    let (good, bad): (Vec<_>, Vec<_>) = cmds.into_iter().enumerate().partition(|(i, _)| *i < 6);
    let children: Vec<(i32, Command)> = good
        .into_iter()
        .map(|(_, c)| (0, c))
        .chain(bad.into_iter().map(|(_, c)| (1, c)))
        .collect();
    let spawned: Vec<_> = children
        .into_iter()
        .map(|(want, mut c)| {
            (
                want,
                c.stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    for (want, c) in spawned {
        let out = c.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(want), "{out:?}");
    }

    // A verification that could not run (no signature file) is logged too.
    let lonely = env.package("lonely.tar");
    let mut args = env.verify_args(&lonely, None);
    args.extend(["--audit-log".into(), log_s.clone()]);
    run(ps(&args)).fails(2);

    // Emergency rotation, then a manual revocation of the key it made.
    let mut a = env.rotate_args(&[
        "--audit-log",
        &log_s,
        "--emergency",
        "--reason",
        "token leaked",
    ]);
    a.retain(|x| x != "--json");
    run(with_pass(ps(&a))).ok();
    let c = fp_of_pem(&env.current(), Some(PASS));
    run(ps([
        "trust",
        "revoke",
        env.trusted().to_str().unwrap(),
        c.as_str(),
        "--reason",
        "rotated by hand",
        "--audit-log",
        &log_s,
    ]))
    .ok();

    let (text, lines) = read_log(&log);
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for v in &lines {
        *count
            .entry(v["event"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    println!("audit log: {} lines: {count:?}", lines.len());
    let expect: BTreeMap<String, usize> = [
        ("key_generated", 3),
        ("key_rotation_completed", 3),
        ("package_signed", 16),
        ("signature_verification_success", 12),
        ("signature_verification_failure", 4 + 1),
        ("key_revoked", 2),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(count, expect, "every event of every process, once");

    // Fields.
    for v in &lines {
        let ts = v["timestamp"].as_str().expect("timestamp");
        assert!(humantime::parse_rfc3339(ts).is_ok(), "timestamp {ts:?}");
        assert!(
            v["host"].as_str().is_some_and(|h| !h.is_empty()),
            "host: {v}"
        );
        assert!(v["pid"].is_u64(), "pid: {v}");
    }
    let mut signed_pkgs = std::collections::BTreeSet::new();
    for v in events(&lines, "package_signed")
        .into_iter()
        .chain(events(&lines, "signature_verification_success"))
    {
        assert!(v["package"].is_string(), "{v}");
        assert!(is_hash(&v["package_hash"]), "{v}");
        assert_eq!(v["algorithm"], "ed25519", "{v}");
        assert!(is_fp(&v["key"]), "{v}");
        if v["event"] == "package_signed" {
            signed_pkgs.insert(v["package"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(signed_pkgs.len(), 8);
    let failures = events(&lines, "signature_verification_failure");
    for v in &failures[..] {
        assert!(v["package"].is_string() && v["code"].is_string(), "{v}");
    }
    let altered: Vec<_> = failures
        .iter()
        .filter(|v| v["code"] == "SIGNATURE_INVALID")
        .collect();
    assert_eq!(altered.len(), 4);
    for v in altered {
        assert!(is_fp(&v["key"]) && is_hash(&v["package_hash"]), "{v}");
        assert_eq!(v["algorithm"], "ed25519");
    }
    assert_eq!(
        failures
            .iter()
            .filter(|v| v["code"] == "FILE_NOT_FOUND")
            .count(),
        1
    );
    let revoked = events(&lines, "key_revoked");
    assert_eq!(revoked[0]["reason"], "token leaked");
    assert_eq!(revoked[1]["reason"], "rotated by hand");
    assert_eq!(revoked[1]["key"], c.to_string());
    assert!(is_fp(&revoked[0]["key"]));
    for v in events(&lines, "key_generated") {
        assert!(is_fp(&v["key"]) && v["algorithm"] == "ed25519", "{v}");
    }

    // No secret.
    assert!(!text.contains(PASS), "the passphrase is in the audit log");
    assert!(!text.contains("PRIVATE KEY") && !text.contains("-----BEGIN"));
}

#[test]
fn unwritable_audit_log_warns_but_does_not_fail_the_operation() {
    let env = Env::new();
    env.rotate(&[]);
    let pkg = env.package("app.tar");
    let mut args = env.sign_dir_args(&pkg, None);
    args.extend([
        "--audit-log".into(),
        env.path("no/such/dir/audit.log").display().to_string(),
    ]);
    let r = run(ps(&args)).ok();
    assert!(r.stderr.contains("warning"), "{r:#?}");
    run(ps(env.verify_args(&pkg, None))).verified();
}

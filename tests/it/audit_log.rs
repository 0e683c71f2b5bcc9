//! The audit log: several processes appending to one file at once, through
//! `--audit-log` and `PKGSIGN_AUDIT_LOG`. Every line must be there, be one
//! JSON object with the contract's fields, and hold no secret.

use crate::common;

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
    let mut init = env.rotate_args(&["--audit-log", &log_s, "--init"]);
    init.retain(|x| x != "--json");
    run(with_pass(ps(&init))).ok();
    let mut a = env.rotate_args(&["--audit-log", &log_s]);
    a.retain(|x| x != "--json");
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

/// Assert an `AUDIT_LOG_UNWRITABLE` failure (exit 2, one `error:` line
/// naming `log`, the JSON code) of a run with `--json`.
#[track_caller]
fn audit_refused(r: Run, log: &Path) -> Run {
    let r = r.fails_with(2, "AUDIT_LOG_UNWRITABLE");
    assert!(
        r.stderr.contains(log.to_str().unwrap()),
        "the error names the log: {r:#?}"
    );
    r
}

#[test]
fn unwritable_audit_log_stops_signing_before_it_signs() {
    let env = Env::new();
    env.rotate(&["--init"]);
    let pkg = env.package("app.tar");
    let sig = env.path("app.tar.sig");
    let missing = env.path("no/such/dir/audit.log");
    // Through the flag and through the environment.
    let mut args = env.sign_dir_args(&pkg, None);
    args.extend(["--audit-log".into(), missing.display().to_string()]);
    audit_refused(run(ps(&args)), &missing);
    assert!(
        !sig.exists(),
        "nothing is signed when the log cannot be written"
    );
    let mut c = ps(env.sign_dir_args(&pkg, None));
    c.env("PKGSIGN_AUDIT_LOG", &missing);
    audit_refused(run(c), &missing);
    assert!(!sig.exists());
    // A symlink planted at the log's name is not followed; a directory is
    // not a log.
    let target = env.write("elsewhere.txt", "precious\n");
    let link = env.path("audit.log");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for bad in [&link, &env.keys()] {
        let mut args = env.sign_dir_args(&pkg, None);
        args.extend(["--audit-log".into(), bad.display().to_string()]);
        audit_refused(run(ps(&args)), bad);
    }
    assert!(!sig.exists());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
}

#[test]
fn unwritable_audit_log_stops_verification_rotation_and_trust_changes() {
    let env = Env::new();
    env.rotate(&["--init"]);
    let pkg = env.package("app.tar");
    run(ps(env.sign_dir_args(&pkg, None))).ok();
    let missing = env.path("no/such/dir/audit.log");
    let m = missing.display().to_string();
    let with_log = |mut v: Vec<String>| {
        v.extend(["--audit-log".into(), m.clone()]);
        v
    };

    // A verification that would pass does not pass unlogged.
    let r = audit_refused(run(ps(with_log(env.verify_args(&pkg, None)))), &missing);
    assert_eq!(r.json()["verified"], false, "{r:#?}");
    // Same for verify-manifest.
    let list = env.write("SHA256SUMS", format!("{}  app.tar\n", sha256_of(&pkg)));
    run(ps(env.sign_dir_args(&list, None))).ok();
    let r = audit_refused(
        run(ps(with_log(vec![
            "verify-manifest".into(),
            list.display().to_string(),
            "--trusted-keys".into(),
            env.trusted().display().to_string(),
            "--json".into(),
        ]))),
        &missing,
    );
    assert_eq!(r.json()["verified"], false, "{r:#?}");

    // Rotation and trust changes: refused before they touch anything.
    let before = tree(&[env.keys(), env.trusted()]);
    audit_refused(run(ps(with_log(env.rotate_args(&[])))), &missing);
    let other = common::keygen(&env.path("other"), "other", Alg::Ed25519);
    let t = env.trusted().display().to_string();
    let cur = fp_of_pem(&env.current(), None).to_string();
    let lineage = env.trusted().join("lineage").display().to_string();
    for argv in [
        vec!["add", &t, other.public.to_str().unwrap()],
        vec!["revoke", &t, &cur],
        vec!["remove", &t, &cur],
        vec!["update", &t, "--from", &lineage],
    ] {
        let mut v = vec!["trust".to_string()];
        v.extend(argv.iter().map(|s| s.to_string()));
        v.push("--json".into());
        audit_refused(run(ps(with_log(v))), &missing);
    }
    assert_eq!(
        tree(&[env.keys(), env.trusted()]),
        before,
        "a refused command changed the key directories"
    );
}

fn sha256_of(p: &Path) -> String {
    let out = tool_ok(Path::new("/"), "sha256sum", [p]);
    String::from_utf8(out).unwrap()[..64].to_string()
}

/// `bash -c 'ulimit -f 4; trap "" XFSZ; exec pkgsign ARGS'`: pkgsign may
/// write files of up to 4 KiB, and a write beyond that fails with EFBIG
/// (the ignored SIGXFSZ is inherited through exec). An audit log already
/// larger than that opens fine and then cannot be appended to.
fn with_file_size_limit(args: &[String]) -> std::process::Command {
    let mut argv = vec![
        "-c".to_string(),
        "ulimit -f 4 && trap '' XFSZ && exec \"$0\" \"$@\"".to_string(),
        bin().display().to_string(),
    ];
    argv.extend(args.iter().cloned());
    tool_cmd(Path::new("/"), "bash", argv)
}

#[test]
fn audit_log_that_fails_after_the_act_still_fails_the_command() {
    let env = Env::new();
    env.rotate(&["--init"]);
    let pkg = env.package("app.tar");
    let sig = env.path("app.tar.sig");
    let log = env.path("audit.jsonl");
    let padding = format!(
        "{{\"event\":\"padding\",\"pad\":\"{}\"}}\n",
        "x".repeat(8000)
    );
    std::fs::write(&log, &padding).unwrap();
    let log_s = log.display().to_string();

    // Signing: the signature is made and stays, but the command fails and says so.
    let mut args = env.sign_dir_args(&pkg, None);
    args.extend(["--audit-log".into(), log_s.clone()]);
    let r = audit_refused(run(with_file_size_limit(&args)), &log);
    assert!(r.stderr.contains("was written and stays"), "{r:#?}");
    assert!(sig.exists());
    run(ps(env.verify_args(&pkg, None))).verified();

    // A verification that passed but could not be logged is not exit 0.
    let mut args = env.verify_args(&pkg, None);
    args.extend(["--audit-log".into(), log_s.clone()]);
    let r = audit_refused(run(with_file_size_limit(&args)), &log);
    assert_eq!(r.json()["verified"], false, "{r:#?}");
    assert!(r.stderr.contains("does not count"), "{r:#?}");

    // A rotation that was done but not logged says so.
    let r = audit_refused(
        run(with_file_size_limit(
            &env.rotate_args(&["--audit-log", &log_s]),
        )),
        &log,
    );
    assert!(r.stderr.contains("the rotation was done"), "{r:#?}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), padding);
}

#[test]
fn trust_changes_are_audited() {
    let env = Env::new();
    let log = env.path("audit.jsonl");
    let l = log.display().to_string();
    env.rotate(&["--init"]);
    let first_pub = env.path("first.pub");
    std::fs::copy(env.keys().join(format!("{NAME}.pub")), &first_pub).unwrap();
    env.rotate(&[]);
    let lineage = env.trusted().join("lineage");
    // A forged statement: another coordinator's own rotation.
    let evil = Env::new();
    evil.rotate(&["--init"]);
    evil.rotate(&[]);
    for f in files_with(&evil.trusted().join("lineage"), ".stmt") {
        std::fs::copy(&f, lineage.join(f.file_name().unwrap())).unwrap();
    }
    let worker = env.path("worker");
    let w = worker.display().to_string();
    let first_fp = fp_of_pub(&first_pub).to_string();
    let t = |argv: &[&str]| {
        let mut v = vec!["trust"];
        v.extend_from_slice(argv);
        v.extend(["--audit-log", &l]);
        run(ps(v))
    };
    t(&["add", &w, first_pub.to_str().unwrap()]).ok();
    t(&["update", &w, "--from", lineage.to_str().unwrap()]).code(1);
    let other = common::keygen(&env.path("other"), "other", Alg::Ed25519);
    t(&["add", &w, other.public.to_str().unwrap()]).ok();
    t(&["remove", &w, &other.fingerprint]).ok();
    t(&["revoke", &w, &first_fp]).ok();

    let (_, lines) = read_log(&log);
    let names: Vec<&str> = lines.iter().map(|v| v["event"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "key_trusted",
            "lineage_applied",
            "unauthorized_update_attempt",
            "key_trusted",
            "key_removed",
            "key_revoked",
        ],
        "{lines:#?}"
    );
    assert_eq!(lines[0]["key"], first_fp.as_str());
    assert_eq!(lines[3]["key"], other.fingerprint.as_str());
    assert_eq!(lines[4]["key"], other.fingerprint.as_str());
    assert_eq!(lines[5]["key"], first_fp.as_str());
    for v in &lines[1..3] {
        assert!(v["statement"].as_str().unwrap().ends_with(".stmt"), "{v}");
        assert!(v["detail"].is_string(), "{v}");
    }
}

/// A verification refused for the threshold, every signature of which is
/// valid, is logged as a failure: the log never shows only successes for a
/// package the command refused.
#[test]
fn a_threshold_refusal_is_logged_as_a_failure() {
    let env = Env::new();
    let log = env.path("audit.jsonl");
    let log_s = log.to_str().unwrap().to_string();
    // Two keys of one lineage (A, then B): they count once for a threshold.
    for extra in [&["--init"][..], &[][..]] {
        let mut a = env.rotate_args(extra);
        a.retain(|x| x != "--json");
        let mut c = ps(&a);
        c.env("PKGSIGN_PASSPHRASE", PASS);
        run(c).ok();
    }
    let pkg = env.package("app.tar");
    let mut c = ps(env.sign_dir_args(&pkg, None));
    c.env("PKGSIGN_PASSPHRASE", PASS);
    run(c).ok();
    let mut args = env.verify_args(&pkg, None);
    args.extend([
        "--threshold".into(),
        "2".into(),
        "--audit-log".into(),
        log_s,
    ]);
    run(ps(&args)).refused("THRESHOLD_NOT_MET");
    let (_, lines) = read_log(&log);
    let failures = events(&lines, "signature_verification_failure");
    assert!(
        failures.iter().any(|v| v["code"] == "THRESHOLD_NOT_MET"),
        "the refusal is in the log: {lines:#?}"
    );
}

/// Log pipelines built on seed 004's runbook query `worker_id`,
/// `signature_algorithm` and `public_key_fingerprint`: events that carried
/// only `host`, `algorithm` and `key` were invisible to them. Every event
/// carries `worker_id` (PKGSIGN_WORKER_ID, else `[worker] worker_id`, else
/// the host name), and every event with an algorithm or a key the seed's
/// names beside pkgsign's.
#[test]
fn every_event_carries_the_seed_field_names() {
    let env = Env::new();
    let log = env.path("audit.jsonl");
    let l = log.display().to_string();
    let ed = env.keygen("ed", Alg::Ed25519);
    let rsa = env.keygen("rsa", Alg::Rsa);
    let pkg = env.package("p.tar");
    let p = pkg.to_str().unwrap();
    let with_id = |argv: Vec<&str>, id: Option<&str>| {
        let mut v = argv;
        v.extend(["--audit-log", &l]);
        let mut c = ps(v);
        c.current_dir(env.dir.path());
        if let Some(id) = id {
            c.env("PKGSIGN_WORKER_ID", id);
        }
        run(c).ok()
    };
    let id = Some("worker-01");
    let (edk, rsak) = (ed.private.to_str().unwrap(), rsa.private.to_str().unwrap());
    let (edp, rsap) = (ed.public.to_str().unwrap(), rsa.public.to_str().unwrap());
    with_id(
        vec![
            "sign-package",
            "--package",
            p,
            "--private-key",
            edk,
            "--private-key",
            rsak,
        ],
        id,
    );
    with_id(
        vec![
            "verify-package",
            "--package",
            p,
            "--public-key",
            edp,
            "--public-key",
            rsap,
        ],
        id,
    );
    with_id(
        vec![
            "sign-package",
            "--package",
            p,
            "--private-key",
            rsak,
            "--format",
            "raw",
            "--output",
            "p.raw",
        ],
        id,
    );
    with_id(
        vec![
            "verify-package",
            "--package",
            p,
            "--signature",
            "p.raw",
            "--public-key",
            rsap,
        ],
        id,
    );
    with_id(vec!["trust", "add", "trusted", rsap], id);
    with_id(vec!["keygen", "--output-dir", "k3"], id);
    let (_, lines) = read_log(&log);
    assert_eq!(lines.len(), 8, "{lines:#?}");
    let want_alg = |alg: &str| match alg {
        "ed25519" | "raw-ed25519" => "Ed25519",
        "rsa-pss-sha256" | "rsa-2048" => "RSA-PSS-SHA256",
        "raw-rsa-pkcs1v15-sha256" => "RSA-SHA256",
        other => panic!("unexpected algorithm {other}"),
    };
    let mut seen = std::collections::BTreeSet::new();
    for v in &lines {
        assert_eq!(v["worker_id"], "worker-01", "{v}");
        assert!(v["host"].is_string(), "{v}");
        let alg = v["algorithm"].as_str().unwrap_or_else(|| panic!("{v}"));
        assert_eq!(v["signature_algorithm"], want_alg(alg), "{v}");
        seen.insert(want_alg(alg));
        assert!(is_fp(&v["key"]), "{v}");
        assert_eq!(v["public_key_fingerprint"], v["key"], "{v}");
    }
    assert_eq!(
        seen.len(),
        3,
        "Ed25519, RSA-PSS-SHA256 and RSA-SHA256 all seen"
    );

    // Without the variable: the configuration file's, else the host name.
    std::fs::remove_file(&log).unwrap();
    env.write("pkgsign.toml", "[worker]\nworker_id = \"cfg-7\"\n");
    with_id(
        vec!["keygen", "--output-dir", "k4", "--config", "pkgsign.toml"],
        None,
    );
    with_id(
        vec!["keygen", "--output-dir", "k5", "--config", "pkgsign.toml"],
        Some("env-wins"),
    );
    with_id(vec!["keygen", "--output-dir", "k6"], None);
    let (_, lines) = read_log(&log);
    assert_eq!(lines[0]["worker_id"], "cfg-7", "{lines:#?}");
    assert_eq!(lines[1]["worker_id"], "env-wins", "{lines:#?}");
    assert_eq!(lines[2]["worker_id"], lines[2]["host"], "{lines:#?}");
}

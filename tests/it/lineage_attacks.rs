//! The trust holes of the outside review, each as the attack that an
//! adversary runs against the real binary: key statements backdated by a
//! retired key, one stolen key of a threshold, a lineage counted twice, a
//! worker that was offline for months, and a statement's signature replayed
//! as a raw package signature. See docs/rotation.md for the rules.

use crate::common;

use std::path::{Path, PathBuf};

use common::rotation::*;
use common::*;
use pkgsign::keys::Fingerprint;
use serde_json::Value;

/// 2027-01-15T08:00:00Z.
const T0: u64 = 1_800_000_000;
/// 2020-06-01T00:00:00Z, inside the window of the retired key below.
const JUNE_2020: u64 = 1_590_969_600;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `pkgsign trust ARGS... --json` in `env`, at `at` (faketime) or now.
fn trust(at: Option<u64>, argv: &[&str]) -> Run {
    let mut v = vec!["trust"];
    v.extend_from_slice(argv);
    v.push("--json");
    match at {
        Some(t) => run(ps_at(t, v)),
        None => run(ps(v)),
    }
}

fn update(worker: &Path, from: &Path, at: Option<u64>) -> Run {
    trust(at, &["update", s(worker), "--from", s(from)])
}

/// The outcomes of `trust update --json`, as (outcome, detail).
fn outcomes(r: &Run) -> Vec<(String, String)> {
    r.json()["statements"]
        .as_array()
        .unwrap_or_else(|| panic!("{r:#?}"))
        .iter()
        .map(|x| {
            (
                x["outcome"].as_str().unwrap().to_string(),
                x["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A coordinator's keys directory whose current key (`signing-key.pem`) is
/// a copy of `pem`, with a trusted-keys directory that trusts it: what a
/// thief sets up with a stolen private key.
fn coordinator_from(env: &Env, dir: &str, pem: &Path, at: Option<u64>) -> (PathBuf, PathBuf) {
    let keys = env.path(format!("{dir}/keys"));
    let tdir = env.path(format!("{dir}/trusted"));
    std::fs::create_dir_all(&keys).unwrap();
    chmod(&keys, 0o700);
    let cur = keys.join(format!("{NAME}.pem"));
    std::fs::copy(pem, &cur).unwrap();
    chmod(&cur, 0o600);
    let public = pem.with_extension("pub");
    trust(at, &["add", s(&tdir), s(&public)]).ok();
    (keys, tdir)
}

/// `key-rotate` of `keys` into `tdir` at `at`, with EXTRA; its JSON.
fn rotate_at(keys: &Path, tdir: &Path, at: u64, extra: &[&str]) -> Value {
    let mut v = vec![
        "key-rotate",
        "--keys-dir",
        s(keys),
        "--trusted-keys",
        s(tdir),
        "--json",
    ];
    v.extend_from_slice(extra);
    run(ps_at(at, v)).ok().json()
}

fn sign_with(env: &Env, name: &str, keys: &[&Path]) -> PathBuf {
    let pkg = env.package(name);
    run(ps(sign_args(&pkg, keys, &["--json"]))).ok();
    pkg
}

fn verify_in(worker: &Path, pkg: &Path, extra: &[&str], at: Option<u64>) -> Run {
    let mut v = verify_args_in(worker, pkg, None);
    v.extend(extra.iter().map(|x| x.to_string()));
    match at {
        Some(t) => run(ps_at(t, v)),
        None => run(ps(v)),
    }
}

/// A key `old` and a worker directory `worker/` that trusts it within the
/// window of `window` (`--not-before`/`--not-after` flags of `trust add`).
fn worker_trusting_old(env: &Env, window: &[&str]) -> (Key, PathBuf) {
    let old = env.keygen_in("old", "old", Alg::Ed25519);
    let w = env.path("worker");
    let mut argv = vec!["add", s(&w), s(&old.public)];
    argv.extend_from_slice(window);
    trust(None, &argv).ok();
    (old, w)
}

fn fp_str(f: &Fingerprint) -> String {
    f.to_string()
}

#[test]
fn lineage_expired_signer_cannot_endorse() {
    let env = Env::new();
    // The worker trusted `old` for 2020 only.
    let (old, w) = worker_trusting_old(
        &env,
        &[
            "--not-before",
            "2020-01-01T00:00:00Z",
            "--not-after",
            "2021-01-01T00:00:00Z",
        ],
    );
    // Whoever holds the retired private key backdates a rotation into its window.
    let (keys, tdir) = coordinator_from(&env, "thief", &old.private, Some(JUNE_2020));
    let out = rotate_at(&keys, &tdir, JUNE_2020, &["--grace-period", "30d"]);
    let evil = out["current_key"].as_str().unwrap().to_string();
    let r = update(&w, &tdir.join("lineage"), None).fails(1);
    let o = outcomes(&r);
    assert_eq!(o.len(), 1, "{o:?}");
    assert_eq!(o[0].0, "refused", "{o:?}");
    assert!(
        o[0].1.contains("expired here at 2021-01-01T00:00:00Z"),
        "{o:?}"
    );
    assert!(!trust_fps(&w).iter().any(|f| fp_str(f) == evil));
    // The attacker's package is not trusted.
    let pkg = sign_with(&env, "evil.tar", &[&keys.join(format!("{NAME}.pem"))]);
    verify_in(&w, &pkg, &[], None).refused("KEY_NOT_TRUSTED");
}

#[test]
fn lineage_backdated_revocation_of_the_current_key_is_refused() {
    let env = Env::new();
    let (old, w) = worker_trusting_old(&env, &["--not-after", "2021-01-01T00:00:00Z"]);
    let cur = env.keygen_in("cur", "cur", Alg::Ed25519);
    trust(None, &["add", s(&w), s(&cur.public)]).ok();
    // A revocation of the current key, signed by the retired key, dated 2020.
    let (_, tdir) = coordinator_from(&env, "thief", &old.private, Some(JUNE_2020));
    trust(
        Some(JUNE_2020),
        &[
            "revoke",
            s(&tdir),
            &cur.fingerprint,
            "--sign-with",
            s(&old.private),
        ],
    )
    .ok();
    let r = update(&w, &tdir.join("lineage"), None).fails(1);
    assert_eq!(outcomes(&r)[0].0, "refused", "{r:#?}");
    let pkg = sign_with(&env, "app.tar", &[&cur.private]);
    verify_in(&w, &pkg, &[], None).verified();
}

#[test]
fn lineage_one_stolen_key_cannot_meet_a_threshold_of_two() {
    let env = Env::new();
    let alice = env.keygen_in("alice", "alice", Alg::Ed25519);
    let bob = env.keygen_in("bob", "bob", Alg::Ed25519);
    let w = env.path("worker");
    trust(None, &["add", s(&w), s(&alice.public)]).ok();
    trust(None, &["add", s(&w), s(&bob.public)]).ok();
    let r = trust(None, &["threshold", s(&w), "2"]).ok();
    assert_eq!(r.json()["threshold"], 2);
    // The thief endorses a key of their own with alice's key.
    let (keys, tdir) = coordinator_from(&env, "thief", &alice.private, None);
    let out = rotate_at(&keys, &tdir, now(), &["--grace-period", "3650d"]);
    let thief_key = keys.join(format!("{NAME}.pem"));
    let r = update(&w, &tdir.join("lineage"), None).fails(1);
    let o = outcomes(&r);
    assert_eq!(o[0].0, "refused", "{o:?}");
    assert!(o[0].1.contains("2 independent principals"), "{o:?}");
    let thief_fp = out["current_key"].as_str().unwrap();
    assert!(!trust_fps(&w).iter().any(|f| f.as_str() == thief_fp));
    // A package signed by alice and "her successor": refused, by the
    // directory's threshold and with an explicit --threshold 2.
    let pkg = sign_with(&env, "app.tar", &[&alice.private, &thief_key]);
    for extra in [&[][..], &["--threshold", "2"][..]] {
        let r = verify_in(&w, &pkg, extra, None).refused("THRESHOLD_NOT_MET");
        assert_eq!(r.json()["threshold"], 2, "{r:#?}");
    }

    // A worker with no threshold of its own applies the endorsement (alice is
    // trusted), but alice and her successor are still one principal.
    let w1 = env.path("worker1");
    trust(None, &["add", s(&w1), s(&alice.public)]).ok();
    trust(None, &["add", s(&w1), s(&bob.public)]).ok();
    let r = update(&w1, &tdir.join("lineage"), None).ok();
    assert_eq!(outcomes(&r)[0].0, "applied", "{r:#?}");
    let r = verify_in(&w1, &pkg, &["--threshold", "2"], None).refused("THRESHOLD_NOT_MET");
    let v = r.json();
    assert_eq!(
        (v["valid_keys"].as_u64(), v["valid_principals"].as_u64()),
        (Some(2), Some(1)),
        "{v}"
    );
    assert!(r.stderr.contains("count once"), "{r:#?}");
    verify_in(&w1, &pkg, &[], None).verified();
    // Alice and bob are two principals.
    let both = sign_with(&env, "both.tar", &[&thief_key, &bob.private]);
    verify_in(&w1, &both, &["--threshold", "2"], None).verified();
}

#[test]
fn lineage_cosigned_rotation_meets_a_threshold_of_two() {
    let env = Env::new();
    let alice = env.keygen_in("alice", "alice", Alg::Ed25519);
    let bob = env.keygen_in("bob", "bob", Alg::Rsa);
    let w = env.path("worker");
    for k in [&alice, &bob] {
        trust(None, &["add", s(&w), s(&k.public)]).ok();
    }
    trust(None, &["threshold", s(&w), "2"]).ok();
    // The coordinator rotates alice; bob, the head of the other lineage, cosigns.
    let (keys, tdir) = coordinator_from(&env, "coord", &alice.private, None);
    trust(None, &["add", s(&tdir), s(&bob.public)]).ok();
    rotate_at(&keys, &tdir, now(), &[]);
    let stmt = files_with(&tdir.join("lineage"), ".stmt");
    assert_eq!(stmt.len(), 1);
    let r = trust(None, &["cosign", s(&stmt[0]), "--key", s(&bob.private)]).ok();
    assert_eq!(r.json()["cosignatures"], 1, "{r:#?}");
    // Cosigning twice is refused; the file is unchanged.
    let before = std::fs::read(&stmt[0]).unwrap();
    trust(None, &["cosign", s(&stmt[0]), "--key", s(&bob.private)]).fails(2);
    assert_eq!(std::fs::read(&stmt[0]).unwrap(), before);
    let r = update(&w, &tdir.join("lineage"), None).ok();
    let o = outcomes(&r);
    assert_eq!(o[0].0, "applied", "{o:?}");
    assert!(o[0].1.contains("2 principals"), "{o:?}");
    let a2 = keys.join(format!("{NAME}.pem"));
    let pkg = sign_with(&env, "app.tar", &[&a2, &bob.private]);
    verify_in(&w, &pkg, &[], None).verified();
    let alone = sign_with(&env, "alone.tar", &[&a2]);
    verify_in(&w, &alone, &["--threshold", "1"], None).refused("THRESHOLD_NOT_MET");
}

#[test]
fn lineage_offline_worker_catches_up_after_two_rotations_and_three_grace_windows() {
    let env = Env::new();
    let first = env.keygen_in("first", "first", Alg::Ed25519);
    let (keys, tdir) = coordinator_from(&env, "coord", &first.private, Some(T0));
    let w = env.path("worker");
    trust(Some(T0), &["add", s(&w), s(&first.public)]).ok();
    let old_pkg = sign_with(&env, "old.tar", &[&first.private]);
    // Two rotations, 30 days of grace each, while the worker is offline.
    let t1 = T0 + 10 * DAY;
    let t2 = t1 + 40 * DAY;
    rotate_at(&keys, &tdir, t1, &["--grace-period", "30d"]);
    let out = rotate_at(&keys, &tdir, t2, &["--grace-period", "30d"]);
    let current = out["current_key"].as_str().unwrap().to_string();
    // It comes back three grace windows after the last rotation: every
    // signer of the chain has expired on the coordinator, yet each statement
    // was made while its signer was current, and each signer is current in
    // the worker's directory when its statement is applied.
    let back = t2 + 3 * 30 * DAY;
    let r = update(&w, &tdir.join("lineage"), Some(back)).ok();
    let o = outcomes(&r);
    assert_eq!(o.len(), 2, "{o:?}");
    assert!(o.iter().all(|(x, _)| x == "applied"), "{o:?}");
    let pkg = env.package("new.tar");
    run(ps_at(
        back,
        sign_args(&pkg, &[keys.join(format!("{NAME}.pem"))], &[]),
    ))
    .ok();
    let r = verify_in(&w, &pkg, &[], Some(back)).verified();
    assert_eq!(r.json()["signatures"][0]["key"], current.as_str());
    verify_in(&w, &old_pkg, &[], Some(back)).refused("KEY_EXPIRED");
    // The retired keys have no say any more, even replayed.
    let r = update(&w, &tdir.join("lineage"), Some(back)).ok();
    assert!(outcomes(&r).iter().all(|(x, _)| x == "already"), "{r:#?}");
}

#[test]
fn lineage_statement_of_the_old_format_is_refused_with_what_to_do() {
    let env = Env::new();
    let a = env.keygen_in("a", "a", Alg::Ed25519);
    let w = env.path("worker");
    trust(None, &["add", s(&w), s(&a.public)]).ok();
    let from = env.path("old-lineage");
    std::fs::create_dir(&from).unwrap();
    let v1 = format!(
        "pkgsign-key-statement v1\nkind: revoke\nsubject: {0}\nrevoked-at: 2026-01-01T00:00:00Z\nreason: x\nissued-at: 2026-01-01T00:00:00Z\nsigner: {0}\nsignature: AAAA\n",
        a.fingerprint
    );
    std::fs::write(from.join("old.stmt"), v1).unwrap();
    let r = update(&w, &from, None).fails(1);
    let o = outcomes(&r);
    assert_eq!(o[0].0, "refused", "{o:?}");
    assert!(
        o[0].1.contains("format v1") && o[0].1.contains("pkgsign key-rotate"),
        "{o:?}"
    );
}

#[test]
fn raw_ed25519_signature_over_a_statement_is_refused() {
    // Line 8 of the example signature is an Ed25519 signature over the
    // statement bytes of its first block; presented as a raw signature over
    // those very bytes, it verifies cryptographically.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-example");
    let sig_text = std::fs::read_to_string(root.join("example-package.tar.gz.sig")).unwrap();
    let line8 = sig_text.lines().nth(7).unwrap();
    let b64 = line8.strip_prefix("signature: ").unwrap();
    let blocks =
        match pkgsign::sign::sigfile::read(&root.join("example-package.tar.gz.sig")).unwrap() {
            pkgsign::sign::sigfile::SignatureFile::Pkgsign(b) => b,
            other => panic!("{other:?}"),
        };
    let env = Env::new();
    let stmt = env.write("statement.bin", blocks[0].statement.signed_message());
    let raw = env.write("statement.bin.sig", format!("{b64}\n"));
    let r = run(ps([
        "verify-package",
        "--package",
        s(&stmt),
        "--signature",
        s(&raw),
        "--public-key",
        s(&root.join("test-ed25519.pub")),
        "--json",
    ]))
    .refused("SIGNATURE_INVALID");
    let reason = r.json()["signatures"][0]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains("reserved"), "{reason}");
    // A genuine raw Ed25519 signature by the same key still verifies.
    let pkg = env.write("app.tar", b"release bytes");
    let pkg_sig = env.path("app.tar.sig");
    // A fresh clone leaves the example key readable by others: copy it 0600.
    let pem = env.write(
        "k.pem",
        std::fs::read(root.join("test-ed25519.pem")).unwrap(),
    );
    chmod(&pem, 0o600);
    run(ps([
        "sign-package",
        "--package",
        s(&pkg),
        "--private-key",
        s(&pem),
        "--format",
        "raw",
    ]))
    .ok();
    run(ps([
        "verify-package",
        "--package",
        s(&pkg),
        "--signature",
        s(&pkg_sig),
        "--public-key",
        s(&root.join("test-ed25519.pub")),
        "--json",
    ]))
    .verified();
}

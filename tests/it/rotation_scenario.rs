//! Key rotation end to end, in the style of tough's `rotated_root.rs`: key A
//! signs; A is rotated to B with a grace window; packages signed by A alone,
//! by A and B, and by B alone are checked inside the window and after it.
//!
//! The clock is injected twice: into the library (`rotate::Options::now`,
//! `SignOptions::now`, `VerifyOptions::now`, `TrustStore::decide`), and into
//! the real binary with `faketime`.

use crate::common;

use std::path::{Path, PathBuf};

use common::rotation::*;
use common::*;
use pkgsign::keys::{Fingerprint, KeySource, encoding};
use pkgsign::rotate::keystore;
use pkgsign::rotate::{self, Options};
use pkgsign::sign::report::Refusal;
use pkgsign::sign::signer::{self, SignOptions};
use pkgsign::trust::lineage::{Claim, Statement};
use pkgsign::trust::meta::KEYS_FILE;
use pkgsign::trust::{Decision, TrustStore};
use pkgsign::verify::{self, VerifyError, VerifyOptions};

// ---------------------------------------------------------------------------
// Library, with an injected clock.

/// 2027-01-15T08:00:00Z: far from the real clock on purpose.
const T0: u64 = 1_800_000_000;

fn opts(now: u64) -> Options<'static> {
    Options {
        grace: 30 * DAY,
        init: true,
        ..Options::new(NAME, now)
    }
}

/// Sign `package` at `at` with the keys `keys-dir` would use at `at`.
fn lib_sign_dir(keys: &Path, package: &Path, at: u64) -> (PathBuf, Vec<Fingerprint>) {
    let (ks, _) =
        keystore::active_keys(keys, at, None, &pkgsign::keys::pkcs11::Access::default()).unwrap();
    let srcs: Vec<&dyn KeySource> = ks.iter().map(|k| k.as_ref()).collect();
    let out = pkgsign::fsutil::sig_path_for(package);
    let so = SignOptions {
        now: sys(at),
        ..SignOptions::default()
    };
    let signed = signer::sign_package(package, &srcs, &so, &out).unwrap();
    (out, signed.keys)
}

fn lib_sign_key(key: &Path, package: &Path, out: &Path, at: u64) {
    let k = encoding::load_private_key(key, None).unwrap();
    let so = SignOptions {
        now: sys(at),
        ..SignOptions::default()
    };
    signer::sign_package(package, &[&k], &so, out).unwrap();
}

fn lib_verify(
    tdir: &Path,
    package: &Path,
    sig: &Path,
    at: u64,
    threshold: usize,
) -> Result<pkgsign::sign::report::Verified, VerifyError> {
    let trust = TrustStore::load_dir(tdir).unwrap();
    let vo = VerifyOptions {
        threshold,
        now: sys(at),
        ..VerifyOptions::default()
    };
    verify::verify_package(package, Some(sig), &trust, &vo)
}

#[track_caller]
fn refused(
    r: Result<pkgsign::sign::report::Verified, VerifyError>,
) -> Box<pkgsign::sign::report::Report> {
    match r {
        Err(VerifyError::Refused(rep)) => rep,
        Err(e) => panic!("expected a refusal, got the error {e}"),
        Ok(v) => panic!("expected a refusal, got acceptance: {:?}", v.report()),
    }
}

#[test]
fn library_rotation_inside_and_after_the_window() {
    let env = Env::new();
    let (keys, tdir) = (env.keys(), env.trusted());

    // A is created and signs.
    let out = rotate::rotate(&keys, &tdir, &opts(T0)).unwrap();
    assert_eq!(out.action, "created");
    let a = out.current_key.unwrap();
    let pkg_a = env.package("a.tar");
    let (sig_a, signers) = lib_sign_dir(&keys, &pkg_a, T0 + DAY);
    assert_eq!(signers, vec![a.clone()]);

    // Rotate at T1 with 30 days of grace.
    let t1 = T0 + 10 * DAY;
    let grace_end = t1 + 30 * DAY;
    let out = rotate::rotate(&keys, &tdir, &opts(t1)).unwrap();
    assert_eq!(out.action, "rotated");
    assert_eq!(out.old_key.as_ref(), Some(&a));
    assert_eq!(out.old_key_trusted_until, Some(rfc(grace_end)));
    let b = out.current_key.unwrap();
    assert_ne!(a, b);

    // During the window, keys-dir signs with both.
    let pkg_ab = env.package("ab.tar");
    let (sig_ab, mut signers) = lib_sign_dir(&keys, &pkg_ab, t1 + DAY);
    signers.sort();
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(signers, both, "sign-package --keys-dir signs with A and B");
    let pkg_b = env.package("b.tar");
    let sig_b = env.path("b.tar.sig");
    lib_sign_key(&env.current(), &pkg_b, &sig_b, t1 + DAY);

    // Inside the window: all three are accepted, A "retiring".
    let inside = t1 + 20 * DAY;
    for (p, s) in [(&pkg_a, &sig_a), (&pkg_ab, &sig_ab), (&pkg_b, &sig_b)] {
        let v = lib_verify(&tdir, p, s, inside, 1)
            .unwrap_or_else(|e| panic!("{} inside the window: {e}", p.display()));
        assert!(v.signers().count() >= 1);
    }
    let v = lib_verify(&tdir, &pkg_a, &sig_a, inside, 1).unwrap();
    let reason = &v.report().signatures[0].reason;
    assert!(
        reason.contains(&rfc(grace_end)),
        "A's acceptance should say until when it is trusted: {reason}"
    );
    // A and the key it endorsed are one principal: two signatures by one
    // lineage never meet a threshold of 2.
    let rep = refused(lib_verify(&tdir, &pkg_ab, &sig_ab, inside, 2));
    assert_eq!(rep.code(), "THRESHOLD_NOT_MET");
    assert_eq!((rep.valid_keys, rep.valid_principals), (2, 1));

    // After the window: A alone is refused as expired, naming the date.
    let after = grace_end + 1;
    let rep = refused(lib_verify(&tdir, &pkg_a, &sig_a, after, 1));
    assert_eq!(rep.code(), "KEY_EXPIRED");
    assert_eq!(rep.signatures[0].refusal, Some(Refusal::KeyExpired));
    assert!(
        rep.signatures[0].reason.contains(&rfc(grace_end)),
        "{}",
        rep.signatures[0].reason
    );
    lib_verify(&tdir, &pkg_b, &sig_b, after, 1).expect("B alone after the window");
    let v = lib_verify(&tdir, &pkg_ab, &sig_ab, after, 1).expect("A+B, threshold 1");
    assert_eq!(v.signers().count(), 1, "only B counts after the window");
    assert_eq!(v.signers().next().unwrap().key.as_ref(), Some(&b));
    let rep = refused(lib_verify(&tdir, &pkg_ab, &sig_ab, after, 2));
    assert_eq!(rep.code(), "THRESHOLD_NOT_MET");
    // Exactly at the end of the window A is still good (the window is inclusive).
    lib_verify(&tdir, &pkg_a, &sig_a, grace_end, 1).expect("A at not-after");

    // keys-dir stops using A after the window.
    let (ks, skipped) = keystore::active_keys(
        &keys,
        after,
        None,
        &pkgsign::keys::pkcs11::Access::default(),
    )
    .unwrap();
    assert_eq!(
        ks.iter()
            .map(|k| k.public_key().fingerprint())
            .collect::<Vec<_>>(),
        vec![b.clone()]
    );
    assert_eq!(skipped.len(), 1);

    // Trust decisions directly.
    let trust = TrustStore::load_dir(&tdir).unwrap();
    assert!(matches!(
        trust.decide(&a, inside, Some(t1)),
        Decision::Accepted(..)
    ));
    assert!(matches!(
        trust.decide(&a, after, Some(t1)),
        Decision::Refused(Refusal::KeyExpired, _)
    ));
    // A signature whose signed time is after A's not-after is refused even
    // though "now" is inside the window (a backdated clock or a stolen key).
    match trust.decide(&a, inside, Some(grace_end + DAY)) {
        Decision::Refused(Refusal::KeyExpired, why) => {
            assert!(why.contains(&rfc(grace_end + DAY)), "{why}");
            assert!(why.contains(&rfc(grace_end)), "{why}");
        }
        d => panic!("signed after not-after must be refused: {d:?}"),
    }
    // B before its window.
    assert!(matches!(
        trust.decide(&b, t1 - 1, None),
        Decision::Refused(Refusal::KeyNotYetValid, _)
    ));
    assert!(matches!(
        trust.decide(&b, inside, Some(t1 - DAY)),
        Decision::Refused(Refusal::KeyNotYetValid, _)
    ));

    // The same through verify_package: a package signed by A with a signed
    // time after its window, checked at an instant inside it.
    let pkg_late = env.package("late.tar");
    let sig_late = env.path("late.tar.sig");
    let retired = keys.join(
        pkgsign::trust::meta::Metadata::load(&keys, KEYS_FILE)
            .unwrap()
            .get(&a)
            .and_then(|s| s.file.clone())
            .unwrap(),
    );
    lib_sign_key(&retired, &pkg_late, &sig_late, grace_end + DAY);
    let rep = refused(lib_verify(&tdir, &pkg_late, &sig_late, inside, 1));
    assert_eq!(rep.code(), "KEY_EXPIRED", "{rep}");
}

// ---------------------------------------------------------------------------
// The binary, under faketime.

fn keys_toml_file(env: &Env, fp: &Fingerprint) -> Option<String> {
    meta(&env.keys(), KEYS_FILE)
        .get(fp)
        .and_then(|s| s.file.clone())
}

#[test]
fn cli_rotation_inside_and_after_the_window_with_faketime() {
    let env = Env::new();
    let created = env.rotate(&["--init"]);
    assert_eq!(created["action"], "created");
    let a: Fingerprint = created["current_key"].as_str().unwrap().parse().unwrap();

    let pkg_a = env.package("a.tar");
    let s = run(ps(env.sign_dir_args(&pkg_a, None))).ok().json();
    assert_eq!(s["keys"].as_array().unwrap().len(), 1);

    let rotated = env.rotate(&["--grace-period", "30d"]);
    assert_eq!(rotated["action"], "rotated");
    let b: Fingerprint = rotated["current_key"].as_str().unwrap().parse().unwrap();
    let until = rotated["old_key_trusted_until"]
        .as_str()
        .unwrap()
        .to_string();
    let grace_end = pkgsign::text::parse_time(&until).unwrap();
    assert!(grace_end >= now() + 30 * DAY - 60 && grace_end <= now() + 30 * DAY);

    let pkg_ab = env.package("ab.tar");
    let s = run(ps(env.sign_dir_args(&pkg_ab, None))).ok().json();
    assert_eq!(
        s["keys"].as_array().unwrap().len(),
        2,
        "inside the window keys-dir signs with A and B: {s}"
    );
    let pkg_b = env.package("b.tar");
    run(ps(sign_key_args(&pkg_b, &env.current(), None))).ok();
    assert_eq!(fp_of_pem(&env.current(), None), b);

    // Inside the window (now, and 20 days on): everything verifies.
    for at in [None, Some(now() + 20 * DAY)] {
        for p in [&pkg_a, &pkg_ab, &pkg_b] {
            let args = env.verify_args(p, None);
            let cmd = match at {
                None => ps(&args),
                Some(t) => ps_at(t, &args),
            };
            run(cmd).verified();
        }
    }

    // After the window.
    let after = grace_end + 2 * DAY;
    let r = run(ps_at(after, env.verify_args(&pkg_a, None))).refused("KEY_EXPIRED");
    assert!(
        r.stderr.contains(&until),
        "the refusal names the date A expired ({until}): {r:#?}"
    );
    run(ps_at(after, env.verify_args(&pkg_b, None))).verified();
    let v = run(ps_at(after, env.verify_args(&pkg_ab, None)))
        .verified()
        .json();
    assert_eq!(v["valid_keys"], 1, "{v}");
    let mut t2 = env.verify_args(&pkg_ab, None);
    t2.extend(["--threshold".into(), "2".into()]);
    run(ps_at(after, &t2)).refused("THRESHOLD_NOT_MET");
    // Text mode: exit 1 and the same date on the error line.
    let mut text = env.verify_args(&pkg_a, None);
    text.retain(|a| a != "--json");
    let r = run(ps_at(after, &text)).fails(1);
    assert!(
        r.stderr.contains("expired") && r.stderr.contains(&until),
        "{r:#?}"
    );

    // keys-dir after the window signs with B only and says why A is left out.
    let pkg_c = env.package("c.tar");
    let r = run(ps_at(after, env.sign_dir_args(&pkg_c, None))).ok();
    assert_eq!(r.json()["keys"].as_array().unwrap().len(), 1, "{r:#?}");
    assert!(r.stderr.contains(a.as_str()), "{r:#?}");
    // In the trust store's words: the one standing rule decides.
    assert!(
        r.stderr
            .contains(&format!("{} expired at {until}", a.as_str())),
        "{r:#?}"
    );

    // A signer whose clock is past A's window: the signed time is after A's
    // not-after, so the signature is refused even though "now" is inside.
    let retired = env.keys().join(keys_toml_file(&env, &a).unwrap());
    let pkg_late = env.package("late.tar");
    run(ps_at(after, sign_key_args(&pkg_late, &retired, None))).ok();
    let r = run(ps(env.verify_args(&pkg_late, None))).refused("KEY_EXPIRED");
    assert!(r.stderr.contains(&until), "{r:#?}");
    assert!(
        r.stderr.contains(&rfc(after)[..10]) || r.stderr.contains(&rfc(after + 600)[..10]),
        "the refusal names the signed time: {r:#?}"
    );
}

#[test]
fn if_older_than_rotates_only_when_due() {
    let env = Env::new();
    env.rotate(&["--init"]);
    let before = std::fs::read(env.current()).unwrap();
    let fp0 = fp_of_pem(&env.current(), None);

    let out = env.rotate(&["--if-older-than", "90d"]);
    assert_eq!(out["action"], "not-due", "{out}");
    assert_eq!(out["current_key"], fp0.to_string());
    assert_eq!(std::fs::read(env.current()).unwrap(), before);
    assert_eq!(trust_fps(&env.trusted()).len(), 1);
    assert!(!env.trusted().join("lineage").exists());

    // 89 days on: still not due.
    let r = run(ps_at(
        now() + 89 * DAY,
        env.rotate_args(&["--if-older-than", "90d"]),
    ))
    .ok();
    assert_eq!(r.json()["action"], "not-due");
    assert_eq!(std::fs::read(env.current()).unwrap(), before);

    // 91 days on: due.
    let r = run(ps_at(
        now() + 91 * DAY,
        env.rotate_args(&["--if-older-than", "90d"]),
    ))
    .ok();
    let out = r.json();
    assert_eq!(out["action"], "rotated", "{out}");
    assert_eq!(out["old_key"], fp0.to_string());
    let fp1 = fp_of_pem(&env.current(), None);
    assert_ne!(fp1, fp0);
    assert_eq!(out["current_key"], fp1.to_string());
    assert_eq!(trust_fps(&env.trusted()).len(), 2);

    // A key made by `keygen` (no keys.toml): its age is the file's mtime.
    let env2 = Env::new();
    run(ps([
        "keygen",
        "--output-dir",
        env2.keys().to_str().unwrap(),
    ]))
    .ok();
    let r = run(ps(env2.rotate_args(&["--if-older-than", "90d"]))).ok();
    assert_eq!(r.json()["action"], "not-due");
    let r = run(ps_at(
        now() + 91 * DAY,
        env2.rotate_args(&["--if-older-than", "90d"]),
    ))
    .ok();
    assert_eq!(r.json()["action"], "rotated");
}

#[test]
fn retired_private_key_is_deleted_after_the_window_never_the_current_one() {
    let env = Env::new();
    env.rotate(&["--init"]);
    let a = fp_of_pem(&env.current(), None);
    let out = env.rotate(&["--grace-period", "30d"]);
    let grace_end =
        pkgsign::text::parse_time(out["old_key_trusted_until"].as_str().unwrap()).unwrap();
    let b = fp_of_pem(&env.current(), None);
    let retired = env.keys().join(keys_toml_file(&env, &a).unwrap());
    assert!(retired.exists());
    assert_eq!(pem_fps(&env.keys(), None), [a.clone(), b.clone()].into());

    // Inside the window nothing is deleted.
    let r = run(ps_at(
        grace_end - DAY,
        env.rotate_args(&["--if-older-than", "90d"]),
    ))
    .ok();
    assert_eq!(r.json()["deleted"].as_array().unwrap().len(), 0);
    assert!(retired.exists());

    // The first run after the window deletes A's private key (even when the
    // rotation itself is not due), and keeps B.
    let r = run(ps_at(
        grace_end + DAY,
        env.rotate_args(&["--if-older-than", "90d"]),
    ))
    .ok();
    let out = r.json();
    assert_eq!(out["action"], "not-due");
    let deleted = out["deleted"].as_array().unwrap();
    assert_eq!(deleted.len(), 1, "{out}");
    assert_eq!(deleted[0][0], a.to_string());
    assert!(!retired.exists());
    assert_eq!(pem_fps(&env.keys(), None), [b.clone()].into());
    // Its public key stays in the trusted directory, as expired history.
    assert!(trust_fps(&env.trusted()).contains(&a));
    assert!(pub_fps(&env.trusted()).contains(&a));

    // The current key is never deleted, even if its own window has ended
    // (here: keys.toml says so, as after a hand edit).
    let mut m = meta(&env.keys(), KEYS_FILE);
    m.entry(&b).not_after = Some(now() - DAY);
    m.save().unwrap();
    let r = run(ps_at(
        now() + 200 * DAY,
        env.rotate_args(&["--if-older-than", "900d"]),
    ))
    .ok();
    assert_eq!(r.json()["deleted"].as_array().unwrap().len(), 0, "{r:#?}");
    assert!(env.current().exists());
    assert_eq!(fp_of_pem(&env.current(), None), b);
}

#[test]
fn emergency_rotation_revokes_at_once() {
    let env = Env::new();
    env.rotate(&["--init"]);
    let a = fp_of_pem(&env.current(), None);
    // A worker that pinned A.
    let worker = env.path("worker");
    run(ps([
        "trust",
        "add",
        worker.to_str().unwrap(),
        env.keys().join(format!("{NAME}.pub")).to_str().unwrap(),
    ]))
    .ok();
    let pkg_a = env.package("a.tar");
    run(ps(env.sign_dir_args(&pkg_a, None))).ok();
    run(ps(env.verify_args(&pkg_a, None))).verified();

    let out = env.rotate(&["--emergency", "--reason", "laptop stolen"]);
    assert_eq!(out["revoked"], true, "{out}");
    assert_eq!(out["old_key"], a.to_string());
    let b = fp_of_pem(&env.current(), None);
    assert_ne!(a, b);

    // A is revoked at once: no grace, the reason is shown.
    let r = run(ps(env.verify_args(&pkg_a, None))).refused("KEY_REVOKED");
    assert!(r.stderr.contains("laptop stolen"), "{r:#?}");
    assert!(
        r.json()["signatures"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("laptop stolen")
    );
    // A's private key is gone; B is the only key left.
    assert_eq!(pem_fps(&env.keys(), None), [b.clone()].into());
    // The new key works.
    let pkg_b = env.package("b.tar");
    let s = run(ps(env.sign_dir_args(&pkg_b, None))).ok().json();
    assert_eq!(s["keys"], serde_json::json!([b.to_string()]));
    run(ps(env.verify_args(&pkg_b, None))).verified();

    // A self-signed revocation statement was published.
    let stmts = files_with(&env.trusted().join("lineage"), ".stmt");
    let revokes: Vec<Statement> = stmts
        .iter()
        .map(|p| Statement::read(p).unwrap())
        .filter(|s| matches!(s.claim, Claim::Revoke { .. }))
        .collect();
    assert_eq!(revokes.len(), 1, "{stmts:?}");
    let st = &revokes[0];
    assert_eq!((&st.subject, &st.signer), (&a, &a));
    match &st.claim {
        Claim::Revoke { reason, .. } => assert_eq!(reason, "laptop stolen"),
        c => panic!("{c:?}"),
    }
    let a_pub = TrustStore::load_dir(&env.trusted())
        .unwrap()
        .get(&a)
        .unwrap()
        .public
        .clone();
    st.verify_with(&a_pub).unwrap();
    // No endorsement of B by the compromised key.
    assert!(
        stmts
            .iter()
            .all(|p| !matches!(Statement::read(p).unwrap().claim, Claim::Endorse { .. }))
    );

    // The worker applies the revocation and refuses A's packages too; it
    // does not learn B from the compromised key.
    let r = run(ps([
        "trust",
        "update",
        worker.to_str().unwrap(),
        "--from",
        env.trusted().join("lineage").to_str().unwrap(),
    ]))
    .ok();
    assert!(r.out().contains("applied"), "{r:#?}");
    run(ps(verify_args_in(&worker, &pkg_a, None))).refused("KEY_REVOKED");
    run(ps(verify_args_in(&worker, &pkg_b, None))).refused("KEY_NOT_TRUSTED");
}

// ---------------------------------------------------------------------------
// Lineage: a worker follows three rotations from the first key.

fn update(worker: &Path, from: &Path) -> Run {
    let r = run(ps([
        "trust",
        "update",
        worker.to_str().unwrap(),
        "--from",
        from.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(
        r.out().lines().count(),
        1,
        "--json prints one object: {r:#?}"
    );
    if r.code != 0 {
        assert_eq!(r.json()["code"], "STATEMENT_REFUSED", "{r:#?}");
        assert_eq!(r.json()["verified"], false, "{r:#?}");
    }
    r
}

fn outcomes(r: &Run) -> Vec<(String, String, String)> {
    r.json()["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                Path::new(s["file"].as_str().unwrap())
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                s["outcome"].as_str().unwrap().to_string(),
                s["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn new_worker(env: &Env, name: &str, first_pub: &Path) -> PathBuf {
    let w = env.path(name);
    run(ps([
        "trust",
        "add",
        w.to_str().unwrap(),
        first_pub.to_str().unwrap(),
    ]))
    .ok();
    w
}

#[test]
fn lineage_follows_three_rotations_and_refuses_forgeries() {
    let env = Env::new();
    env.rotate(&["--init"]);
    let first_pub = env.path("first.pub");
    std::fs::copy(env.keys().join(format!("{NAME}.pub")), &first_pub).unwrap();
    for _ in 0..3 {
        assert_eq!(env.rotate(&[])["action"], "rotated");
    }
    let d = fp_of_pem(&env.current(), None);
    let lineage = env.trusted().join("lineage");
    assert_eq!(files_with(&lineage, ".stmt").len(), 3);
    let pkg = env.package("app-1.9.tar");
    run(ps(sign_key_args(&pkg, &env.current(), None))).ok();

    // A worker that knows only the first key.
    let w = new_worker(&env, "worker", &first_pub);
    run(ps(verify_args_in(&w, &pkg, None))).refused("KEY_NOT_TRUSTED");
    let r = update(&w, &lineage).ok();
    let o = outcomes(&r);
    assert_eq!(o.len(), 3);
    assert!(o.iter().all(|(_, out, _)| out == "applied"), "{o:?}");
    assert!(trust_fps(&w).contains(&d));
    run(ps(verify_args_in(&w, &pkg, None))).verified();
    // Applying again changes nothing.
    let r = update(&w, &lineage).ok();
    assert!(outcomes(&r).iter().all(|(_, out, _)| out == "already"));

    // A forged endorsement: an untrusted key X endorses its successor Y (a
    // perfectly well-formed statement, from X's own rotation).
    let evil = Env::new();
    evil.rotate(&["--init"]);
    evil.rotate(&[]);
    let y = fp_of_pem(&evil.current(), None);
    let forged = files_with(&evil.trusted().join("lineage"), ".stmt");
    assert_eq!(forged.len(), 1);
    let mixed = env.path("mixed");
    copy_dir(&lineage, &mixed);
    let forged_name = forged[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    std::fs::copy(&forged[0], mixed.join(&forged_name)).unwrap();
    let evil_pkg = env.package("evil.tar");
    run(ps(sign_key_args(&evil_pkg, &evil.current(), None))).ok();

    let w2 = new_worker(&env, "worker2", &first_pub);
    let r = update(&w2, &mixed).fails(1);
    let o = outcomes(&r);
    let bad: Vec<_> = o.iter().filter(|(_, out, _)| out == "refused").collect();
    assert_eq!(bad.len(), 1, "{o:?}");
    assert_eq!(bad[0].0, forged_name);
    assert!(bad[0].2.contains("not a trusted key"), "{o:?}");
    assert_eq!(o.iter().filter(|(_, out, _)| out == "applied").count(), 3);
    assert!(!trust_fps(&w2).contains(&y));
    assert!(!pub_fps(&w2).contains(&y));
    run(ps(verify_args_in(&w2, &evil_pkg, None))).refused("KEY_NOT_TRUSTED");
    run(ps(verify_args_in(&w2, &pkg, None))).verified();
    // Text mode names the refused file on stdout and fails with one error line.
    let r = run(ps([
        "trust",
        "update",
        w2.to_str().unwrap(),
        "--from",
        mixed.to_str().unwrap(),
    ]))
    .fails(1);
    assert!(
        r.out().contains(&forged_name) && r.out().contains("refused"),
        "{r:#?}"
    );

    // A tampered statement (one byte changed): the first endorsement claims
    // another window start. It is refused, and so the chain stops there.
    let tampered = env.path("tampered");
    copy_dir(&lineage, &tampered);
    let first = files_with(&tampered, ".stmt")
        .into_iter()
        .find(|p| {
            Statement::read(p).unwrap().signer
                == encoding::load_public_key(&first_pub).unwrap().fingerprint()
        })
        .unwrap();
    let mut bytes = std::fs::read(&first).unwrap();
    let at = find(&bytes, b"not-before: 20").unwrap() + b"not-before: 20".len();
    bytes[at] = if bytes[at] == b'9' {
        b'8'
    } else {
        bytes[at] + 1
    };
    std::fs::write(&first, &bytes).unwrap();
    let w3 = new_worker(&env, "worker3", &first_pub);
    let r = update(&w3, &tampered).fails(1);
    let o = outcomes(&r);
    let name = first.file_name().unwrap().to_string_lossy().into_owned();
    let mine = o.iter().find(|(f, _, _)| *f == name).unwrap();
    assert_eq!(mine.1, "refused", "{o:?}");
    assert!(mine.2.contains("does not verify"), "{o:?}");
    assert_eq!(trust_fps(&w3).len(), 1, "nothing past the tampered link");
    run(ps(verify_args_in(&w3, &pkg, None))).refused("KEY_NOT_TRUSTED");

    // A statement damaged so that it no longer parses is refused too.
    let broken = env.path("broken");
    copy_dir(&lineage, &broken);
    let f = &files_with(&broken, ".stmt")[0];
    let mut bytes = std::fs::read(f).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(f, &bytes).unwrap();
    let w4 = new_worker(&env, "worker4", &first_pub);
    let r = update(&w4, &broken).fails(1);
    assert!(
        outcomes(&r)
            .iter()
            .any(|(_, out, d)| out == "refused" && d.contains("malformed")),
        "{r:#?}"
    );
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------
// Refusals: a typo in --name, a grace period too short.

#[test]
fn key_rotate_with_a_mistyped_name_creates_and_trusts_nothing() {
    let env = Env::new();
    // Nothing yet: without --init, nothing is created, not even the directories.
    let r = run(ps(env.rotate_args(&[]))).fails_with(2, "KEY_NOT_FOUND");
    assert!(r.stderr.contains("--init"), "{r:#?}");
    assert!(!env.keys().exists() && !env.trusted().exists());

    env.rotate(&["--init"]);
    let before = tree(&[env.keys(), env.trusted()]);
    let r = run(ps(env.rotate_args(&["--name", "signing-kye"]))).fails_with(2, "KEY_NOT_FOUND");
    assert!(
        r.stderr.contains("signing-kye") && r.stderr.contains(&format!("keys here: {NAME}")),
        "the error names the keys that exist: {r:#?}"
    );
    assert_eq!(tree(&[env.keys(), env.trusted()]), before);

    // A rotation keeps working without --init; --init on an existing key
    // rotates as usual but says it should go.
    assert_eq!(env.rotate(&[])["action"], "rotated");
    let r = run(ps(env.rotate_args(&["--init"]))).ok();
    assert_eq!(r.json()["action"], "rotated");
    assert!(r.stderr.starts_with("warning: --init"), "{r:#?}");
}

#[test]
fn grace_period_below_the_floor_is_refused_unless_emergency() {
    let env = Env::new();
    env.rotate(&["--init"]);
    let before = tree(&[env.keys(), env.trusted()]);
    for g in ["0s", "59m"] {
        let r = run(ps(env.rotate_args(&["--grace-period", g]))).fails_with(2, "USAGE");
        assert!(r.stderr.contains("floor of 1h"), "{r:#?}");
    }
    assert_eq!(tree(&[env.keys(), env.trusted()]), before);
    assert_eq!(env.rotate(&["--grace-period", "1h"])["action"], "rotated");
    let out = env.rotate(&["--grace-period", "0s", "--emergency"]);
    assert_eq!(out["revoked"], true);
}

//! `pkgsign trust`: add with windows, list, revoke (optionally publishing a
//! signed statement), remove; broken metadata and key files; a directory of
//! 1,000 keys.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::rotation::*;
use common::rotation::{HandKey as Key, hand_keygen as keygen};
use common::*;
use pkgsign::keys::{Fingerprint, KeySource, KeySpec, LocalKey, encoding, generate};
use pkgsign::trust::lineage::{Claim, Statement};
use serde_json::Value;

fn trust(args: &[&str]) -> Run {
    let mut v = vec!["trust"];
    v.extend_from_slice(args);
    run(ps(v))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Sign a fresh package with `key`; returns the package.
fn signed_by(env: &Env, key: &Key, name: &str) -> PathBuf {
    let pkg = env.package(name);
    run(ps(sign_key_args(&pkg, &key.pem, None))).ok();
    pkg
}

fn list_json(tdir: &Path) -> Vec<Value> {
    let r = trust(&["list", s(tdir), "--json"]).ok();
    r.json()["keys"].as_array().unwrap().clone()
}

fn state_of(list: &[Value], fp: &Fingerprint) -> String {
    list.iter()
        .find(|k| k["fingerprint"] == fp.to_string())
        .unwrap_or_else(|| panic!("{fp} not listed: {list:?}"))["state"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn revocation_wins_over_a_valid_window_and_shows_its_reason() {
    let env = Env::new();
    let t = env.trusted();
    let k = keygen(&env, "release");
    let past = rfc(now() - 10 * DAY);
    let future = rfc(now() + 300 * DAY);
    trust(&[
        "add",
        s(&t),
        s(&k.public),
        "--not-before",
        &past,
        "--not-after",
        &future,
    ])
    .ok();
    let pkg = signed_by(&env, &k, "app.tar");
    let v = run(ps(env.verify_args(&pkg, None))).verified().json();
    assert!(
        v["signatures"][0]["reason"]
            .as_str()
            .unwrap()
            .contains(&future)
    );
    assert_eq!(state_of(&list_json(&t), &k.fp), "retiring");

    let r = trust(&[
        "revoke",
        s(&t),
        k.fp.as_str(),
        "--reason",
        "compromised build host",
    ])
    .ok();
    assert!(r.out().contains("revoked"), "{r:#?}");
    let r = run(ps(env.verify_args(&pkg, None))).refused("KEY_REVOKED");
    assert!(r.stderr.contains("compromised build host"), "{r:#?}");
    assert_eq!(
        r.json()["signatures"][0]["refusal"],
        "KEY_REVOKED",
        "{r:#?}"
    );
    // Revocation is refused for a raw signature too.
    let raw = env.path("app.tar.raw");
    let mut a = sign_key_args(&pkg, &k.pem, Some(&raw));
    a.extend(["--format".into(), "raw".into()]);
    run(ps(a)).ok();
    run(ps(env.verify_args(&pkg, Some(&raw)))).refused("KEY_REVOKED");

    let l = list_json(&t);
    assert_eq!(state_of(&l, &k.fp), "revoked");
    let e = l
        .iter()
        .find(|x| x["fingerprint"] == k.fp.to_string())
        .unwrap();
    assert_eq!(e["revoked_reason"], "compromised build host");
    // Revoking twice is harmless; the first reason stays.
    let r = trust(&["revoke", s(&t), k.fp.as_str(), "--reason", "again"]).ok();
    assert!(r.out().contains("already revoked"), "{r:#?}");
    // A revoked key cannot be added back.
    trust(&["add", s(&t), s(&k.public)]).fails(2);
    assert_eq!(state_of(&list_json(&t), &k.fp), "revoked");
}

#[test]
fn revoke_with_sign_with_publishes_a_statement_workers_apply() {
    let env = Env::new();
    let t = env.trusted();
    let boss = keygen(&env, "boss");
    let second = keygen(&env, "second");
    let outsider = keygen(&env, "outsider");
    trust(&["add", s(&t), s(&boss.public)]).ok();
    trust(&["add", s(&t), s(&second.public)]).ok();
    let worker = env.path("worker");
    trust(&["add", s(&worker), s(&boss.public)]).ok();
    trust(&["add", s(&worker), s(&second.public)]).ok();
    let pkg = signed_by(&env, &second, "second.tar");
    run(ps(verify_args_in(&worker, &pkg, None))).verified();

    // An untrusted key cannot sign a revocation for this directory.
    trust(&[
        "revoke",
        s(&t),
        second.fp.as_str(),
        "--sign-with",
        s(&outsider.pem),
    ])
    .fails(2);
    assert_ne!(state_of(&list_json(&t), &second.fp), "revoked");

    let r = trust(&[
        "revoke",
        s(&t),
        second.fp.as_str(),
        "--reason",
        "left the company",
        "--sign-with",
        s(&boss.pem),
        "--json",
    ])
    .ok();
    let stmt_path = PathBuf::from(r.json()["statement"].as_str().unwrap());
    assert!(stmt_path.starts_with(t.join("lineage")), "{r:#?}");
    let st = Statement::read(&stmt_path).unwrap();
    assert_eq!(st.subject, second.fp);
    assert_eq!(st.signer, boss.fp);
    assert!(matches!(&st.claim, Claim::Revoke { reason, .. } if reason == "left the company"));
    st.verify_with(&encoding::load_public_key(&boss.public).unwrap())
        .unwrap();
    run(ps(env.verify_args(&pkg, None))).refused("KEY_REVOKED");

    // The worker applies it.
    let r = trust(&["update", s(&worker), "--from", s(&t.join("lineage"))]).ok();
    assert!(r.out().contains("applied"), "{r:#?}");
    let r = run(ps(verify_args_in(&worker, &pkg, None))).refused("KEY_REVOKED");
    assert!(r.stderr.contains("left the company"), "{r:#?}");
}

#[test]
fn remove_keeps_a_revoked_key_revoked_and_forgets_others() {
    let env = Env::new();
    let t = env.trusted();
    let bad = keygen(&env, "bad");
    let old = keygen(&env, "old");
    // A directory with no key left at all is "could not run" (exit 2); keep one.
    let keep = keygen(&env, "keep");
    trust(&["add", s(&t), s(&bad.public)]).ok();
    trust(&["add", s(&t), s(&old.public)]).ok();
    trust(&["add", s(&t), s(&keep.public)]).ok();
    let pkg_bad = signed_by(&env, &bad, "bad.tar");
    let pkg_old = signed_by(&env, &old, "old.tar");

    trust(&["revoke", s(&t), bad.fp.as_str(), "--reason", "leaked"]).ok();
    let r = trust(&["remove", s(&t), bad.fp.as_str(), "--json"]).ok();
    assert_eq!(r.json()["files_removed"], 1);
    assert!(!pub_fps(&t).contains(&bad.fp));
    // Still listed as revoked (a tombstone), and the key stays refused when
    // its .pub is dropped back in by hand, under any name.
    assert_eq!(state_of(&list_json(&t), &bad.fp), "revoked");
    std::fs::copy(&bad.public, t.join("dropped-back.pub")).unwrap();
    let r = run(ps(env.verify_args(&pkg_bad, None))).refused("KEY_REVOKED");
    assert!(r.stderr.contains("leaked"), "{r:#?}");
    // Even with the .pub gone, a signature by the key is reported as revoked.
    std::fs::remove_file(t.join("dropped-back.pub")).unwrap();
    run(ps(env.verify_args(&pkg_bad, None))).refused("KEY_REVOKED");

    // Removing a key that is not revoked forgets it.
    trust(&["remove", s(&t), old.fp.as_str()]).ok();
    assert!(!trust_fps(&t).contains(&old.fp));
    run(ps(env.verify_args(&pkg_old, None))).refused("KEY_NOT_TRUSTED");
    // Removing an unknown key is a usage error.
    trust(&["remove", s(&t), old.fp.as_str()]).fails(2);
}

#[test]
fn add_with_windows_and_list_shows_every_state() {
    let env = Env::new();
    let t = env.trusted();
    let by_hand = keygen(&env, "by-hand");
    let retiring = keygen(&env, "retiring");
    let expired = keygen(&env, "expired");
    let later = keygen(&env, "later");
    let revoked = keygen(&env, "revoked");
    std::fs::create_dir_all(&t).unwrap();
    std::fs::copy(&by_hand.public, t.join("by-hand.pub")).unwrap();
    let (n, past, far_past, future) = (
        now(),
        rfc(now() - 5 * DAY),
        rfc(now() - 50 * DAY),
        rfc(now() + 5 * DAY),
    );
    trust(&["add", s(&t), s(&retiring.public), "--not-after", &future]).ok();
    trust(&[
        "add",
        s(&t),
        s(&expired.public),
        "--name",
        "old-release",
        "--not-before",
        &far_past,
        "--not-after",
        &past,
    ])
    .ok();
    trust(&["add", s(&t), s(&later.public), "--not-before", &future]).ok();
    trust(&["add", s(&t), s(&revoked.public)]).ok();
    trust(&["revoke", s(&t), revoked.fp.as_str(), "--reason", "test"]).ok();
    // --not-after before --not-before is refused.
    let other = keygen(&env, "other");
    trust(&[
        "add",
        s(&t),
        s(&other.public),
        "--not-before",
        &future,
        "--not-after",
        &past,
    ])
    .fails(2);

    let l = list_json(&t);
    assert_eq!(l.len(), 5, "{l:?}");
    assert_eq!(state_of(&l, &by_hand.fp), "active");
    assert_eq!(state_of(&l, &retiring.fp), "retiring");
    assert_eq!(state_of(&l, &expired.fp), "expired");
    assert_eq!(state_of(&l, &later.fp), "not-yet-valid");
    assert_eq!(state_of(&l, &revoked.fp), "revoked");
    let e = l
        .iter()
        .find(|k| k["fingerprint"] == expired.fp.to_string())
        .unwrap();
    assert_eq!(e["name"], "old-release");
    assert_eq!(e["not_after"], past.as_str());
    assert_eq!(e["algorithm"], "ed25519");

    let text = trust(&["list", s(&t)]).ok().out();
    for (k, word) in [
        (&by_hand, "active".to_string()),
        (&retiring, format!("retiring until {future}")),
        (&expired, format!("expired at {past}")),
        (&later, format!("not valid before {future}")),
        (&revoked, "revoked at".to_string()),
    ] {
        let line = text
            .lines()
            .find(|l| l.contains(k.fp.as_str()))
            .unwrap_or_else(|| panic!("{} missing: {text}", k.fp));
        assert!(line.contains(&word), "{line:?} should say {word:?}");
    }

    // Verification follows the windows.
    let p = signed_by(&env, &by_hand, "hand.tar");
    run(ps(env.verify_args(&p, None))).verified();
    let p = signed_by(&env, &retiring, "retiring.tar");
    run(ps(env.verify_args(&p, None))).verified();
    let p = signed_by(&env, &expired, "expired.tar");
    let r = run(ps(env.verify_args(&p, None))).refused("KEY_EXPIRED");
    assert!(r.stderr.contains(&past), "{r:#?}");
    let p = signed_by(&env, &later, "later.tar");
    let r = run(ps(env.verify_args(&p, None))).refused("KEY_NOT_YET_VALID");
    assert!(r.stderr.contains(&future), "{r:#?}");
    // ... and once the clock reaches the window, `later` is accepted and
    // `retiring` has expired.
    let at = n + 10 * DAY;
    let p2 = signed_by(&env, &later, "later2.tar");
    run(ps_at(at, env.verify_args(&p2, None))).refused("KEY_NOT_YET_VALID");
    let p3 = env.package("later3.tar");
    run(ps_at(at, sign_key_args(&p3, &later.pem, None))).ok();
    run(ps_at(at, env.verify_args(&p3, None))).verified();
    let p = signed_by(&env, &retiring, "retiring2.tar");
    run(ps_at(at, env.verify_args(&p, None))).refused("KEY_EXPIRED");
}

#[test]
fn broken_trust_toml_is_exit_2_and_never_trust_everything() {
    let env = Env::new();
    let t = env.trusted();
    let k = keygen(&env, "k");
    trust(&["add", s(&t), s(&k.public)]).ok();
    let pkg = signed_by(&env, &k, "app.tar");
    run(ps(env.verify_args(&pkg, None))).verified();
    let good = std::fs::read_to_string(t.join("trust.toml")).unwrap();
    for bad in [
        "this is not toml [[[".to_string(),
        good.replace("version = 1", "version = 7"),
        good.replace("[[key]]", "[[key]]\ntrusted = \"always\""),
        good.replace("SHA256:", "SHA1:"),
        format!("{good}\n{}", &good[good.find("[[key]]").unwrap()..]),
        good.replace(
            "version = 1",
            "version = 1\n[[key]]\nfingerprint = \"x\"\nnot_after = \"soon\"",
        ),
    ] {
        std::fs::write(t.join("trust.toml"), &bad).unwrap();
        let r = run(ps(env.verify_args(&pkg, None))).fails(2);
        let v = r.json();
        assert_eq!(v["verified"], false, "{r:#?}");
        assert_eq!(v["code"], "METADATA_INVALID", "{r:#?}");
        assert!(r.stderr.contains("trust.toml"), "{r:#?}");
        trust(&["list", s(&t)]).fails(2);
        trust(&["add", s(&t), s(&k.public)]).fails(2);
    }
    // A trust.toml that is not UTF-8.
    std::fs::write(t.join("trust.toml"), b"version = 1\n\xff\xfe").unwrap();
    run(ps(env.verify_args(&pkg, None))).fails(2);
    std::fs::write(t.join("trust.toml"), good).unwrap();
    run(ps(env.verify_args(&pkg, None))).verified();
}

#[test]
fn unparseable_pub_is_reported_by_name_and_the_others_still_work() {
    let env = Env::new();
    let t = env.trusted();
    let k = keygen(&env, "k");
    trust(&["add", s(&t), s(&k.public)]).ok();
    std::fs::write(
        t.join("garbled-key.pub"),
        "-----BEGIN PUBLIC KEY-----\nnope\n",
    )
    .unwrap();
    std::fs::write(t.join("empty.pub"), "").unwrap();
    let pkg = signed_by(&env, &k, "app.tar");
    let r = run(ps(env.verify_args(&pkg, None))).verified();
    assert!(r.stderr.contains("garbled-key.pub"), "{r:#?}");
    assert!(r.stderr.contains("empty.pub"), "{r:#?}");
    let r = trust(&["list", s(&t)]).ok();
    assert!(r.stderr.contains("garbled-key.pub"), "{r:#?}");
    assert!(r.out().contains(k.fp.as_str()), "{r:#?}");
}

#[test]
fn a_thousand_trusted_keys() {
    let env = Env::new();
    let small = env.path("small");
    let big = env.path("big");
    let k = keygen(&env, "signer");
    trust(&["add", s(&small), s(&k.public)]).ok();
    trust(&["add", s(&big), s(&k.public)]).ok();
    for i in 0..999 {
        let key = LocalKey::new(generate(KeySpec::Ed25519).unwrap(), PathBuf::new());
        let pem = encoding::public_key_to_pem(key.public_key()).unwrap();
        std::fs::write(big.join(format!("key-{i:04}.pub")), pem).unwrap();
    }
    // Windows for a third of them, so that trust.toml is large too.
    let mut m = meta(&big, "trust.toml");
    for (i, p) in files_with(&big, ".pub").iter().enumerate().step_by(3) {
        let fp = fp_of_pub(p);
        let e = m.entry(&fp);
        e.not_after = Some(now() + (i as u64 + 1) * DAY);
    }
    m.save().unwrap();
    assert_eq!(pub_fps(&big).len(), 1000);
    let pkg = signed_by(&env, &k, "app.tar");

    let time = |dir: &Path| {
        let mut best = f64::MAX;
        for _ in 0..3 {
            let start = Instant::now();
            run(ps(verify_args_in(dir, &pkg, None))).verified();
            best = best.min(start.elapsed().as_secs_f64());
        }
        best
    };
    let t1 = time(&small);
    let t1000 = time(&big);
    println!(
        "verify-package: 1 trusted key {:.1} ms, 1000 trusted keys {:.1} ms ({:.1}x)",
        t1 * 1e3,
        t1000 * 1e3,
        t1000 / t1
    );
    // Not a benchmark: only catch something pathological (seconds).
    assert!(t1000 < 5.0, "verification with 1000 keys took {t1000:.2}s");
    // A key listed in a large directory is still refused after revocation.
    trust(&["revoke", s(&big), k.fp.as_str()]).ok();
    run(ps(verify_args_in(&big, &pkg, None))).refused("KEY_REVOKED");
}

// ---------------------------------------------------------------------------
// Fail closed: a mistyped directory, odd requests, loose permissions.

#[test]
fn list_of_a_missing_directory_is_not_found_and_creates_nothing() {
    let env = Env::new();
    let missing = env.path("nodir");
    let r = trust(&["list", s(&missing), "--json"]).fails_with(2, "FILE_NOT_FOUND");
    assert!(r.stderr.contains("nodir"), "{r:#?}");
    assert!(!missing.exists(), "trust list created the directory");
    let k = keygen(&env, "k");
    trust(&["remove", s(&missing), k.fp.as_str(), "--json"]).fails_with(2, "FILE_NOT_FOUND");
    let from = env.path("from");
    std::fs::create_dir(&from).unwrap();
    trust(&["update", s(&missing), "--from", s(&from), "--json"]).fails_with(2, "FILE_NOT_FOUND");
    assert!(!missing.exists());
}

#[test]
fn revoke_of_an_unknown_key_and_add_already_expired_warn_but_act() {
    let env = Env::new();
    let t = env.trusted();
    let held = keygen(&env, "held");
    trust(&["add", s(&t), s(&held.public)]).ok();
    let stranger = keygen(&env, "stranger");
    let r = trust(&["revoke", s(&t), stranger.fp.as_str(), "--json"]).ok();
    assert!(
        r.stderr.starts_with("warning: ") && r.stderr.contains("is not in"),
        "{r:#?}"
    );
    assert_eq!(r.json()["warnings"].as_array().unwrap().len(), 1, "{r:#?}");
    assert_eq!(state_of(&list_json(&t), &stranger.fp), "revoked");
    // Revoking a key the directory holds: no warning.
    let r = trust(&["revoke", s(&t), held.fp.as_str(), "--json"]).ok();
    assert_eq!(r.stderr, "", "{r:#?}");
    assert_eq!(r.json()["warnings"].as_array().unwrap().len(), 0);

    let late = keygen(&env, "late");
    let past = rfc(now() - DAY);
    let r = trust(&[
        "add",
        s(&t),
        s(&late.public),
        "--not-after",
        &past,
        "--json",
    ])
    .ok();
    assert!(
        r.stderr.starts_with("warning: ") && r.stderr.contains("in the past"),
        "{r:#?}"
    );
    assert_eq!(r.json()["warnings"].as_array().unwrap().len(), 1, "{r:#?}");
    assert_eq!(state_of(&list_json(&t), &late.fp), "expired");
}

#[test]
fn group_or_world_writable_trusted_keys_are_refused_unless_insecure_permissions() {
    let env = Env::new();
    let t = env.trusted();
    let k = keygen(&env, "release");
    trust(&["add", s(&t), s(&k.public)]).ok();
    let pkg = signed_by(&env, &k, "app.tar");
    run(ps(env.verify_args(&pkg, None))).verified();
    let toml = t.join("trust.toml");
    let pub_file = t.join("release.pub");
    let list = env.write("SHA256SUMS", "");
    let manifest = [
        "verify-manifest",
        s(&list),
        "--trusted-keys",
        s(&t),
        "--json",
    ];
    for (path, loose, tight) in [
        (&t, 0o775, 0o755),
        (&t, 0o1777, 0o755), // sticky, as /tmp: anyone may still add a key
        (&pub_file, 0o666, 0o644),
        (&toml, 0o664, 0o644),
    ] {
        chmod(path, loose);
        let r = run(ps(env.verify_args(&pkg, None))).fails_with(2, "KEY_PERMISSIONS");
        assert!(
            r.stderr.contains(&format!("chmod go-w {}", path.display())),
            "the error says what to run: {r:#?}"
        );
        assert_eq!(r.json()["verified"], false);
        run(ps(manifest)).fails_with(2, "KEY_PERMISSIONS");
        trust(&["list", s(&t), "--json"]).fails_with(2, "KEY_PERMISSIONS");
        let other = keygen(&env, "other");
        trust(&["add", s(&t), s(&other.public), "--json"]).fails_with(2, "KEY_PERMISSIONS");
        // Accepted when asked for.
        let mut v = env.verify_args(&pkg, None);
        v.push("--insecure-permissions".into());
        run(ps(v)).verified();
        trust(&["list", s(&t), "--insecure-permissions"]).ok();
        chmod(path, tight);
        std::fs::remove_file(&other.pem).unwrap();
        std::fs::remove_file(&other.public).unwrap();
    }
    run(ps(env.verify_args(&pkg, None))).verified();
}

#[test]
fn pub_symlink_out_of_the_trusted_directory_is_refused() {
    let env = Env::new();
    let t = env.trusted();
    let k = keygen(&env, "release");
    let pkg = signed_by(&env, &k, "app.tar");
    std::fs::create_dir(&t).unwrap();
    // A symlink to a file inside the directory is followed.
    std::fs::copy(&k.public, t.join("release.key")).unwrap();
    std::os::unix::fs::symlink("release.key", t.join("release.pub")).unwrap();
    run(ps(env.verify_args(&pkg, None))).verified();
    // One that leads out is refused, whatever the permissions flag says.
    std::fs::remove_file(t.join("release.pub")).unwrap();
    std::os::unix::fs::symlink(&k.public, t.join("release.pub")).unwrap();
    for extra in [None, Some("--insecure-permissions")] {
        let mut v = env.verify_args(&pkg, None);
        v.extend(extra.map(String::from));
        let r = run(ps(v)).fails_with(2, "KEY_OUTSIDE_DIR");
        assert!(r.stderr.contains("release.pub"), "{r:#?}");
    }
    // So is a dangling one (its target could appear later).
    std::fs::remove_file(t.join("release.pub")).unwrap();
    std::os::unix::fs::symlink(env.path("later.pub"), t.join("release.pub")).unwrap();
    run(ps(env.verify_args(&pkg, None))).fails_with(2, "KEY_OUTSIDE_DIR");
}

/// A key that is revoked or expired in the directory cannot sign a
/// revocation, not even of itself: workers would refuse the statement, so
/// the coordinator refuses to make it and changes nothing.
#[test]
fn revoked_or_expired_keys_cannot_sign_a_revocation_even_of_themselves() {
    let env = Env::new();
    let t = env.trusted();
    let gone = keygen(&env, "gone");
    let old = keygen(&env, "old");
    let other = keygen(&env, "other");
    trust(&["add", s(&t), s(&gone.public)]).ok();
    trust(&["add", s(&t), s(&other.public)]).ok();
    let past = rfc(now() - DAY);
    trust(&["add", s(&t), s(&old.public), "--not-after", &past]).ok();
    trust(&["revoke", s(&t), gone.fp.as_str()]).ok();
    for (signer, subject) in [
        (&gone, &gone),
        (&gone, &other),
        (&old, &old),
        (&old, &other),
    ] {
        let r = trust(&[
            "revoke",
            s(&t),
            subject.fp.as_str(),
            "--sign-with",
            s(&signer.pem),
        ])
        .fails(2);
        assert!(r.stderr.contains("workers would refuse"), "{r:#?}");
        assert!(!t.join("lineage").exists(), "{r:#?}");
    }
    assert_ne!(state_of(&list_json(&t), &other.fp), "revoked");
    assert_ne!(state_of(&list_json(&t), &old.fp), "revoked");
}

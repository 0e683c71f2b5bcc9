//! `key-rotate` killed at any moment, and run concurrently.
//!
//! The contract: "a run killed at any moment leaves DIR and TDIR as before it
//! or as after it, and no key is lost"; "concurrent runs wait for each other".
//!
//! Rotations are killed at each of the nine steps of the transaction
//! (`PKGSIGN_TEST_CRASH_AT=1..9`, which `abort()`s the process there), and
//! with a real SIGKILL at random instants. Right after each kill:
//! (a) no private key that existed before is gone (except the old key of an
//!     emergency rotation, which is meant to go);
//! (b) the key at DIR/NAME.pem is trusted by TDIR at that very instant;
//! (c) `sign-package --keys-dir` then `verify-package --trusted-keys` works;
//! (d) after that next run, no journal, staged key or temp file is left, and
//!     DIR and TDIR are both exactly in the "before" or the "after" state.

use crate::common;

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::rotation::*;
use common::*;
use pkgsign::keys::Fingerprint;
use pkgsign::rotate::{JOURNAL, STAGED};
use pkgsign::trust::lineage::{Claim, Statement};
use pkgsign::trust::meta::{KEYS_FILE, TRUST_FILE};

/// The state of both directories.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snap {
    pems: BTreeSet<Fingerprint>,
    trust: BTreeSet<Fingerprint>,
    current: Fingerprint,
}

fn snap(env: &Env) -> Snap {
    Snap {
        pems: pem_fps(&env.keys(), None),
        trust: trust_fps(&env.trusted()),
        current: fp_of_pem(&env.current(), None),
    }
}

/// A signing-keys and a trusted-keys directory where A was rotated to B
/// (A retired, inside its grace window).
fn template(extra_first: &[&str]) -> Env {
    let env = Env::new();
    let mut first = vec!["--init"];
    first.extend_from_slice(extra_first);
    assert_eq!(env.rotate(&first)["action"], "created");
    assert_eq!(env.rotate(&[])["action"], "rotated");
    env
}

fn trial_from(template: &Env) -> Env {
    let env = Env::new();
    copy_dir(&template.keys(), &env.keys());
    copy_dir(&template.trusted(), &env.trusted());
    env
}

/// Where the kill left the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Found {
    /// Nothing of the rotation is visible (killed early, before staging).
    Untouched,
    /// Only the staged key: not committed, must roll back.
    Staged,
    /// The journal: committed, must roll forward.
    Committed,
    /// The rotation had finished.
    Finished,
}

/// Check (a)-(d) after a rotation of `env` was killed. Returns what was
/// found right after the kill and whether the relaxed form of (b) applied.
fn check_after_kill(
    env: &Env,
    before: &Snap,
    emergency: bool,
    recover_with_rotate: bool,
    label: &str,
) -> (Found, bool) {
    let keys = env.keys();
    let tdir = env.trusted();
    let journal = keys.join(JOURNAL).exists();
    let staged = keys.join(STAGED).exists();

    // (a) No private key lost.
    let pems_now = pem_fps(&keys, None);
    for fp in &before.pems {
        if emergency && *fp == before.current {
            continue;
        }
        assert!(
            pems_now.contains(fp),
            "{label}: private key {fp} was lost right after the kill (journal: {journal}, staged: {staged}); now {pems_now:?}"
        );
    }
    assert!(
        env.current().exists(),
        "{label}: {NAME}.pem is missing right after the kill"
    );

    // (b) The key at NAME.pem is trusted now.
    let cur = fp_of_pem(&env.current(), None);
    let pkg = env.package(&format!("{label}-b.tar"));
    let sig = env.path(format!("{label}-b.tar.sig"));
    run(ps(sign_key_args(&pkg, &env.current(), Some(&sig)))).ok();
    let r = run(ps(env.verify_args(&pkg, Some(&sig))));
    let mut relaxed = false;
    if r.code != 0 {
        // The one accepted exception: an emergency rotation revokes the
        // compromised key in TDIR first (the safe order), so between that
        // step and the switch of NAME.pem the current file is the revoked
        // key. The journal is committed, and every user of DIR completes
        // it before signing (checked by (c)).
        assert!(
            emergency && journal && cur == before.current,
            "{label}: the key at {NAME}.pem ({cur}) is not trusted by TDIR right after the kill: {r:#?}"
        );
        r.refused("KEY_REVOKED");
        relaxed = true;
    }

    // (c) The next run completes or rolls back, and signing works.
    if recover_with_rotate {
        let r = run(ps(env.rotate_args(&["--if-older-than", "3650d"]))).ok();
        assert_eq!(r.json()["action"], "not-due", "{label}: {r:#?}");
        assert_eq!(r.json()["recovered"], journal || staged, "{label}: {r:#?}");
    }
    let pkg = env.package(&format!("{label}-c.tar"));
    let s = run(ps(env.sign_dir_args(&pkg, None))).ok().json();
    let v = run(ps(env.verify_args(&pkg, None))).verified().json();
    let signed: BTreeSet<String> = s["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        v["valid_keys"].as_u64().unwrap() as usize,
        signed.len(),
        "{label}: every key keys-dir signs with is trusted: {s} {v}"
    );

    // (d) Nothing left over; before or after, in both directories.
    let mut left = leftovers(&keys);
    left.extend(leftovers(&tdir));
    left.extend(leftovers_if_exists(&tdir.join("lineage")));
    assert!(
        left.is_empty(),
        "{label}: left over after recovery: {left:?}"
    );
    let after = snap(env);
    let found = if journal {
        Found::Committed
    } else if staged {
        Found::Staged
    } else if after.current != before.current {
        Found::Finished
    } else {
        Found::Untouched
    };
    if after == *before {
        assert!(
            found <= Found::Staged,
            "{label}: a committed rotation was rolled back ({found:?})"
        );
        return (found, relaxed);
    }
    assert!(
        found >= Found::Committed,
        "{label}: an uncommitted rotation was applied ({found:?})"
    );
    let new = after.current.clone();
    assert!(
        !before.trust.contains(&new) && !before.pems.contains(&new),
        "{label}: the current key changed to an old one"
    );
    let mut pems = before.pems.clone();
    if emergency {
        pems.remove(&before.current);
    }
    pems.insert(new.clone());
    assert_eq!(after.pems, pems, "{label}: DIR is neither before nor after");
    let mut trusted = before.trust.clone();
    trusted.insert(new.clone());
    assert_eq!(
        after.trust, trusted,
        "{label}: TDIR is neither before nor after"
    );
    assert!(
        pub_fps(&tdir).contains(&new),
        "{label}: the new .pub is missing"
    );
    assert!(
        pems.is_subset(&keys_fps(&keys)),
        "{label}: a private key without an entry in keys.toml"
    );
    let old_t = meta(&tdir, TRUST_FILE)
        .get(&before.current)
        .cloned()
        .unwrap();
    let old_k = meta(&keys, KEYS_FILE)
        .get(&before.current)
        .cloned()
        .unwrap();
    let stmts: Vec<Statement> = files_with(&tdir.join("lineage"), ".stmt")
        .iter()
        .map(|p| Statement::read(p).unwrap())
        .collect();
    if emergency {
        assert!(
            old_t.revoked.is_some() && old_k.revoked.is_some(),
            "{label}"
        );
        assert!(
            stmts.iter().any(|s| matches!(s.claim, Claim::Revoke { .. })
                && s.subject == before.current
                && s.signer == before.current),
            "{label}: no self-revocation published"
        );
    } else {
        assert!(
            old_t.revoked.is_none() && old_k.revoked.is_none(),
            "{label}"
        );
        let na = old_t.not_after.expect("the old key's grace window is set");
        assert_eq!(old_k.not_after, Some(na), "{label}");
        assert!(na > now() + 29 * DAY, "{label}");
        assert!(
            stmts
                .iter()
                .any(|s| matches!(s.claim, Claim::Endorse { .. })
                    && s.subject == new
                    && s.signer == before.current),
            "{label}: no endorsement of the new key published"
        );
    }
    (found, relaxed)
}

#[test]
fn killed_at_each_step_of_the_transaction() {
    let base = template(&[]);
    let mut relaxed = 0;
    let mut seen = Vec::new();
    for emergency in [false, true] {
        for step in 1..=9u32 {
            let env = trial_from(&base);
            let before = snap(&env);
            let mut extra = vec![];
            if emergency {
                extra.extend(["--emergency", "--reason", "crash test"]);
            }
            let mut cmd = ps(env.rotate_args(&extra));
            cmd.env(pkgsign::rotate::CRASH_ENV, step.to_string());
            let r = capture(cmd, None, DEFAULT_TIMEOUT);
            r.assert_no_panic();
            assert_eq!(
                r.signal,
                Some(6),
                "step {step}: the crash hook should abort the process: {r:#?}"
            );
            let label = format!("step{step}{}", if emergency { "-emergency" } else { "" });
            let (found, rel) = check_after_kill(&env, &before, emergency, step % 2 == 1, &label);
            let expect = if step == 1 {
                Found::Staged
            } else {
                Found::Committed
            };
            assert_eq!(found, expect, "{label}");
            relaxed += rel as u32;
            seen.push(label);
        }
    }
    println!(
        "crash points: {} aborted rotations checked ({}); {relaxed} emergency runs had the revoked key at {NAME}.pem until recovery",
        seen.len(),
        seen.join(" ")
    );
}

/// Run one rotation of a copy of `base` to completion; returns (total
/// time, time from the staged key's appearance to the exit).
fn calibrate(base: &Env) -> (Duration, Duration) {
    let env = trial_from(base);
    let start = Instant::now();
    let mut child = ps(env.rotate_args(&[]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let staged = env.keys().join(STAGED);
    let mut seen = None;
    loop {
        if seen.is_none() && staged.exists() {
            seen = Some(Instant::now());
        }
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success());
            break;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    let end = Instant::now();
    let apply = seen.map(|s| end - s).unwrap_or(Duration::from_millis(5));
    (end - start, apply)
}

#[test]
fn killed_with_sigkill_at_random_instants() {
    // RSA-2048 keys: generating one takes long enough to spread the kills.
    let base = template(&["--algorithm", "rsa", "--bits", "2048"]);
    let mut totals = Vec::new();
    let mut applies = Vec::new();
    for _ in 0..5 {
        let (t, a) = calibrate(&base);
        totals.push(t.as_micros() as u64);
        applies.push(a.as_micros() as u64);
    }
    totals.sort();
    applies.sort();
    // Windows for the delays, in microseconds; they shrink when a run
    // finishes before its kill (the machine is faster than calibrated).
    let mut total_win = totals[2].max(1_000);
    let mut apply_win = applies[2].max(500);
    let seed = Rng::from_os().next();
    let mut rng = Rng::seeded(seed);
    println!(
        "random kills: seed {seed}; a rotation takes {:.0} ms (median), {:.1} ms of it after staging",
        total_win as f64 / 1e3,
        apply_win as f64 / 1e3
    );
    // About 30 kills: stop after 30 runs that were really killed, or 60 runs.
    const KILLS: usize = 30;
    const MAX_RUNS: usize = 60;
    let mut counts = std::collections::BTreeMap::new();
    let mut killed = 0;
    let mut relaxed = 0;
    let mut runs = 0;
    while killed < KILLS && runs < MAX_RUNS {
        let i = runs;
        runs += 1;
        let env = trial_from(&base);
        let before = snap(&env);
        let emergency = i % 5 == 4;
        let extra: &[&str] = if emergency {
            &["--emergency", "--reason", "random kill"]
        } else {
            &[]
        };
        let mut child = ps(env.rotate_args(extra))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let targeted = i % 3 != 0;
        let delay_us = if !targeted {
            // Anywhere in the run.
            rng.below(total_win)
        } else {
            // Aim at the transaction: wait for the staged key, then a bit.
            let staged = env.keys().join(STAGED);
            let deadline = Instant::now() + Duration::from_secs(10);
            while !staged.exists()
                && Instant::now() < deadline
                && child.try_wait().unwrap().is_none()
            {
                std::thread::sleep(Duration::from_micros(50));
            }
            rng.below(apply_win)
        };
        std::thread::sleep(Duration::from_micros(delay_us));
        let _ = child.kill();
        let status = child.wait().unwrap();
        let was_killed = status.signal() == Some(9);
        if was_killed {
            killed += 1;
        } else {
            assert!(status.success(), "run {i}: {status:?}");
            if targeted {
                apply_win = (apply_win * 4 / 5).max(200);
            } else {
                total_win = (total_win * 4 / 5).max(1_000);
            }
        }
        let label = format!("kill{i}");
        let (found, rel) = check_after_kill(&env, &before, emergency, i % 4 == 0, &label);
        relaxed += rel as usize;
        let what = if was_killed {
            format!("killed/{found:?}")
        } else {
            "finished before the kill".to_string()
        };
        *counts.entry(what).or_insert(0) += 1;
    }
    println!(
        "random kills: {runs} rotations, {killed} killed by SIGKILL; state found right after the kill: {counts:?}; {relaxed} emergency runs had the revoked key at {NAME}.pem until recovery; invariants (a)-(d) held after every one"
    );
    assert!(
        killed >= KILLS / 2,
        "too few rotations were actually killed ({killed} of {runs}); the delays are off"
    );
}

#[test]
fn concurrent_rotations_wait_for_each_other() {
    let env = Env::new();
    env.rotate(&["--init"]);
    let first = fp_of_pem(&env.current(), None);
    let first_pub = env.path("first.pub");
    std::fs::copy(env.keys().join(format!("{NAME}.pub")), &first_pub).unwrap();

    let children: Vec<_> = (0..4)
        .map(|_| {
            ps(env.rotate_args(&[]))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let tdir = env.trusted();
    let keys = env.keys();
    let trusted = trust_fps(&tdir);
    assert_eq!(trusted.len(), 5, "1 + 4 rotations: {trusted:?}");
    assert_eq!(pub_fps(&tdir), trusted);
    let cur = fp_of_pem(&env.current(), None);
    assert!(trusted.contains(&cur) && trusted.contains(&first));
    // Every retired private key is still there, each under its own name.
    let pems = files_with(&keys, ".pem");
    assert_eq!(pems.len(), 5, "{pems:?}");
    assert_eq!(pem_fps(&keys, None), trusted);
    let km = meta(&keys, KEYS_FILE);
    assert_eq!(km.keys().len(), 5);
    let mut without_end = 0;
    for st in km.keys() {
        let fp = st.fingerprint.clone().unwrap();
        let file = st.file.clone().unwrap_or_else(|| panic!("{fp}: no file"));
        assert_eq!(fp_of_pem(&keys.join(&file), None), fp, "keys.toml: {file}");
        if st.not_after.is_none() {
            without_end += 1;
            assert_eq!(fp, cur);
            assert_eq!(file, format!("{NAME}.pem"));
        }
    }
    assert_eq!(
        without_end, 1,
        "exactly one key has no end: the current one"
    );
    let mut left = leftovers(&keys);
    left.extend(leftovers(&tdir));
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(files_with(&tdir.join("lineage"), ".stmt").len(), 4);

    // The current key is trusted; a worker that knows the first key follows
    // the four endorsements.
    let pkg = env.package("app.tar");
    run(ps(sign_key_args(&pkg, &env.current(), None))).ok();
    run(ps(env.verify_args(&pkg, None))).verified();
    let w = env.path("worker");
    run(ps([
        "trust",
        "add",
        w.to_str().unwrap(),
        first_pub.to_str().unwrap(),
    ]))
    .ok();
    run(ps([
        "trust",
        "update",
        w.to_str().unwrap(),
        "--from",
        tdir.join("lineage").to_str().unwrap(),
    ]))
    .ok();
    run(ps(verify_args_in(&w, &pkg, None))).verified();
}

#[test]
fn signing_while_rotating_always_verifies() {
    let env = Env::new();
    env.rotate(&["--init"]);
    let args = env.rotate_args(&[]);
    let rotations = 6;
    // Signatures checked so far: each next rotation waits for one more, so
    // that signing and rotating interleave however the machine schedules
    // them (a fixed pause between rotations did not ensure it).
    let checked = Arc::new(AtomicUsize::new(0));
    let rotator = {
        let checked = checked.clone();
        std::thread::spawn(move || {
            for _ in 0..rotations {
                let before = checked.load(Ordering::SeqCst);
                run(ps(&args)).ok();
                wait_for(
                    "a signature checked since the rotation began",
                    Duration::from_secs(60),
                    || checked.load(Ordering::SeqCst) > before,
                );
            }
        })
    };
    let (mut n, mut overlapped) = (0, 0);
    loop {
        let done = rotator.is_finished();
        if !done {
            overlapped += 1;
        }
        let pkg = env.package(&format!("p{n}.tar"));
        let sig = env.path(format!("p{n}.tar.sig"));
        let s = run(ps(env.sign_dir_args(&pkg, Some(&sig)))).ok().json();
        let v = run(ps(env.verify_args(&pkg, Some(&sig)))).verified().json();
        assert_eq!(
            v["valid_keys"].as_u64().unwrap() as usize,
            s["keys"].as_array().unwrap().len(),
            "every key of the signature is trusted: {s} {v}"
        );
        n += 1;
        checked.store(n, Ordering::SeqCst);
        if done && n >= 10 {
            break;
        }
    }
    rotator.join().unwrap();
    assert_eq!(trust_fps(&env.trusted()).len(), 1 + rotations);
    // The point of the test: signatures were made while rotations ran.
    assert!(
        overlapped >= 2,
        "only {overlapped} signatures overlapped a rotation"
    );
    println!(
        "signing while rotating: {n} signatures ({overlapped} during rotations), all verified"
    );
}

/// The crash hook is for tests only: the `test-crash-points` feature is off
/// by default and reaches only test builds (through the crate's own
/// dev-dependency on itself), so `cargo build --release` gives a binary that
/// ignores PKGSIGN_TEST_CRASH_AT. Checked here on the manifest (a release
/// build cannot be made from inside a test in reasonable time; see
/// SECURITY.md for the `strings` check by hand).
#[test]
fn crash_points_are_compiled_into_test_builds_only() {
    // This test build has them (else the crash tests above prove nothing).
    const { assert!(pkgsign::rotate::CRASH_POINTS) };
    let manifest: toml::Table =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap();
    let features = manifest["features"].as_table().expect("[features]");
    assert!(features.contains_key("test-crash-points"), "{features:?}");
    let default = features
        .get("default")
        .and_then(|d| d.as_array())
        .cloned()
        .unwrap_or_default();
    assert!(
        !default
            .iter()
            .any(|f| f.as_str() == Some("test-crash-points")),
        "test-crash-points must never be a default feature"
    );
    // Only the dev-dependency turns it on; no normal dependency or binary does.
    let dev = &manifest["dev-dependencies"]["pkgsign"];
    assert_eq!(dev["path"].as_str(), Some("."), "{dev:?}");
    assert!(
        dev["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str() == Some("test-crash-points"))
    );
    assert!(manifest["dependencies"].get("pkgsign").is_none());
    for bin in manifest
        .get("bin")
        .and_then(|b| b.as_array())
        .into_iter()
        .flatten()
    {
        assert!(bin.get("required-features").is_none(), "{bin:?}");
    }
}

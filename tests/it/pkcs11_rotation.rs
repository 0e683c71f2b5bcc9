//! `key-rotate` with keys on a PKCS#11 token (SoftHSM2): the first key made
//! on the token, rotations on the token with lineage statements signed
//! there, retired objects destroyed after the grace window, and a rotation
//! killed at every step (or by SIGKILL at random instants) completed or
//! rolled back with no key object left behind on the token.

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::token::{MODULE, PIN, Token};
use crate::common::{self, args};
use serde_json::Value;

/// `key-rotate --keys-dir keys --trusted-keys trusted --json EXTRA` with
/// the token's module and PIN.
fn rotate_argv(t: &Token, extra: &[&str]) -> Vec<std::ffi::OsString> {
    let mut v = args([
        "key-rotate",
        "--keys-dir",
        "keys",
        "--trusted-keys",
        "trusted",
        "--json",
    ]);
    v.extend(args(extra));
    v.extend(t.access());
    v
}

#[track_caller]
fn rotate(t: &Token, extra: &[&str]) -> Value {
    t.run(rotate_argv(t, extra)).ok().json()
}

fn init(t: &Token) -> Value {
    let uri = Token::uri("signing-key");
    rotate(t, &["--init", "--pkcs11", &uri])
}

/// Sign a fresh package with `--keys-dir keys` and verify it against
/// `trusted`: the directory is usable.
#[track_caller]
fn sign_and_verify(t: &Token, tag: &str) -> Value {
    let pkg = t
        .env
        .write(format!("pkg-{tag}.bin"), format!("release {tag}"));
    let mut argv = args(["sign-package", "--package"]);
    argv.push(pkg.clone().into());
    argv.extend(args(["--keys-dir", "keys", "--json"]));
    argv.extend(t.access());
    let signed = t.run(argv).ok().json();
    let mut v = args(["verify-package", "--package"]);
    v.push(pkg.into());
    v.extend(args(["--trusted-keys", "trusted"]));
    t.run(v).ok();
    signed
}

/// The labels of the private keys on the token.
fn token_private_labels(t: &Token) -> BTreeSet<String> {
    let out = t.tool_ok(
        "pkcs11-tool",
        [
            "--module",
            MODULE,
            "--token-label",
            "release",
            "--login",
            "--pin",
            PIN,
            "--list-objects",
            "--type",
            "privkey",
        ],
    );
    String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("label:"))
        .map(|l| l.trim().to_string())
        .collect()
}

/// The object labels the pointer files of `keys/` name (orphans included).
fn pointed_labels(t: &Token) -> BTreeSet<String> {
    std::fs::read_dir(t.path("keys"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".pkcs11"))
        .map(|e| {
            let text = std::fs::read_to_string(e.path()).unwrap();
            let uri = pkgsign::keys::pkcs11::Pkcs11Uri::parse(text.trim()).unwrap();
            uri.object.unwrap()
        })
        .collect()
}

fn file_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_token_key_rotates_on_its_token_and_its_retired_object_is_destroyed_after_the_grace_window() {
    let t = Token::new();
    assert_eq!(init(&t)["action"], "created");
    let keys = file_names(&t.path("keys"));
    assert!(
        keys.contains("signing-key.pkcs11") && keys.contains("signing-key.pub"),
        "{keys:?}"
    );
    assert!(
        !keys.iter().any(|f| f.ends_with(".pem")),
        "a token key leaves no private key file: {keys:?}"
    );
    assert_eq!(
        token_private_labels(&t),
        BTreeSet::from(["signing-key".to_string()])
    );
    let first = sign_and_verify(&t, "a");
    assert_eq!(first["keys"].as_array().unwrap().len(), 1);

    // A worker that trusts only the first key.
    let worker = t.path("worker");
    std::fs::create_dir(&worker).unwrap();
    let mut add = args(["trust", "add"]);
    add.push(worker.clone().into());
    add.push(t.path("keys/signing-key.pub").into());
    t.run(add).ok();

    let out = rotate(&t, &["--grace-period", "1h"]);
    assert_eq!(out["action"], "rotated", "{out}");
    let labels = token_private_labels(&t);
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert_eq!(
        labels,
        pointed_labels(&t),
        "every key on the token has its pointer"
    );
    // Both keys sign through the grace window.
    let both = sign_and_verify(&t, "b");
    assert_eq!(both["keys"].as_array().unwrap().len(), 2, "{both}");
    // The statement the old key signed on the token carries the worker over.
    let mut update = args(["trust", "update"]);
    update.push(worker.clone().into());
    update.extend(args(["--from", "trusted/lineage"]));
    t.run(update).ok();
    // Signed by the new key alone, through its URI.
    let pkg = t.env.write("pkg-new-only.bin", "new key only");
    let new_uri = std::fs::read_to_string(t.path("keys/signing-key.pkcs11")).unwrap();
    let mut sign = args(["sign-package", "--package"]);
    sign.push(pkg.clone().into());
    sign.extend(args(["--private-key", new_uri.trim()]));
    sign.extend(t.access());
    t.run(sign).ok();
    let mut verify = args(["verify-package", "--package"]);
    verify.push(pkg.into());
    verify.push("--trusted-keys".into());
    verify.push(worker.into());
    t.run(verify).ok();

    // After the grace window: the retired key is destroyed on the token.
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 2 * 3600;
    let mut later = common::rotation::ps_at(at, rotate_argv(&t, &["--grace-period", "1h"]));
    t.scope(&mut later);
    let after = common::run(later).ok().json();
    assert_eq!(after["deleted"].as_array().unwrap().len(), 1, "{after}");
    let labels = token_private_labels(&t);
    assert!(
        !labels.contains("signing-key"),
        "the retired object is gone: {labels:?}"
    );
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert_eq!(labels, pointed_labels(&t));
}

/// What must hold after a killed rotation, once the next runs are done:
/// signing with the directory works at once, and after the next rotation
/// every key object on the token has its pointer (no orphan).
#[track_caller]
fn check_after_kill(t: &Token, what: &str) {
    check_after_kill_with(t, what, false)
}

/// [`check_after_kill`]; with `in_token_call`, the kill may have landed
/// inside SoftHSM2's C_GenerateKeyPair, whose file store creates the
/// object's file before it writes the object's attributes: a SIGKILL there
/// leaves SoftHSM an object with no label and no id, which no pointer can
/// name (a hardware token creates the object whole). Such objects are
/// counted and allowed; every labelled object must still have its pointer.
#[track_caller]
fn check_after_kill_with(t: &Token, what: &str, in_token_call: bool) {
    sign_and_verify(t, "after-kill");
    let out = rotate(t, &["--grace-period", "1h"]);
    assert_eq!(out["action"], "rotated", "{what}: {out}");
    let names = file_names(&t.path("keys"));
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with(".pkgsign-") && n != ".pkgsign.lock"),
        "{what}: leftovers {names:?}"
    );
    let mut on_token = token_private_labels(t);
    if in_token_call {
        on_token.remove("");
    }
    assert_eq!(
        on_token,
        pointed_labels(t),
        "{what}: a key object on the token with no pointer, or a pointer with no key"
    );
    sign_and_verify(t, "after-next");
}

#[test]
fn a_token_rotation_killed_at_each_step_leaves_no_key_object_behind() {
    // (The test build has the crash points: rotation_crash.rs checks it.)
    // 14: the pointer is staged, the key not yet made on the token; 1: the
    // key is made, the journal not yet written; 2-9: the journal's steps.
    for step in [14, 1, 2, 3, 4, 5, 6, 7, 8, 9] {
        let t = Token::new();
        init(&t);
        let mut cmd = t.cmd(rotate_argv(&t, &["--grace-period", "1h"]));
        cmd.env(pkgsign::rotate::CRASH_ENV, step.to_string());
        let run = common::capture(cmd, None, Duration::from_secs(60));
        assert!(
            run.signal.is_some(),
            "step {step}: the rotation was not killed: {run:?}"
        );
        check_after_kill(&t, &format!("step {step}"));
    }
}

#[test]
fn a_token_rotation_killed_by_sigkill_at_random_instants_leaves_no_key_object_behind() {
    let t0 = Token::new();
    init(&t0);
    // How long a whole rotation takes here.
    let start = Instant::now();
    rotate(&t0, &["--grace-period", "1h"]);
    let whole = start.elapsed();
    let mut killed = 0;
    for i in 0..8u32 {
        let t = Token::new();
        init(&t);
        let mut cmd = t.cmd(rotate_argv(&t, &["--grace-period", "1h"]));
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = cmd.spawn().unwrap();
        // Once the transaction has begun (the staged pointer is there: the
        // key is about to be made on the token), kill at instants spread
        // over the rest of the run. Not earlier: SoftHSM2's file store
        // rewrites its token.object in place when a session logs in, and a
        // SIGKILL in that window leaves SoftHSM's own token unreadable (an
        // empty token.object) — a property of SoftHSM's store, not of the
        // rotation, and one a hardware token does not have (docs/hsm.md).
        let staged = t.path("keys").join(pkgsign::rotate::STAGED);
        let begun = Instant::now();
        while !staged.exists() && child.try_wait().unwrap().is_none() {
            assert!(
                begun.elapsed() < Duration::from_secs(30),
                "the rotation never began"
            );
            std::thread::yield_now();
        }
        std::thread::sleep(whole.mul_f64(f64::from(i) / 16.0));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.signal() == Some(9) {
            killed += 1;
        }
        check_after_kill_with(&t, &format!("SIGKILL after {i}/8 of {whole:?}"), true);
    }
    assert!(killed >= 3, "only {killed} of 8 runs were killed mid-way");
}

/// Wherever a private key is accepted, a token key is: `trust revoke
/// --sign-with URI` signs the revocation statement on the token, and
/// `trust cosign --key URI` cosigns a statement there; workers apply both.
#[test]
fn token_keys_sign_revocations_and_cosign_statements() {
    let t = Token::new();
    init(&t);
    let out = rotate(&t, &["--grace-period", "1h"]);
    let old_fp = out["old_key"].as_str().unwrap().to_string();
    let new_fp = out["current_key"].as_str().unwrap().to_string();
    // A second principal on the token cosigns the endorsement.
    let other = t.keygen("other", common::Alg::Ed25519);
    let stmt = std::fs::read_dir(t.path("trusted/lineage"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "stmt"))
        .unwrap();
    let before = std::fs::read_to_string(&stmt).unwrap();
    let mut cosign = args(["trust", "cosign"]);
    cosign.push(stmt.clone().into());
    cosign.extend(args(["--key", &Token::uri("other"), "--json"]));
    cosign.extend(t.access());
    let c = t.run(cosign).ok().json();
    assert_eq!(c["cosigner"], other.fingerprint.as_str(), "{c}");
    assert_ne!(std::fs::read_to_string(&stmt).unwrap(), before);
    // The current key, on the token, revokes the retired one; a worker
    // trusting the current key applies the signed revocation.
    let worker = t.path("worker");
    std::fs::create_dir(&worker).unwrap();
    let mut add = args(["trust", "add"]);
    add.push(worker.clone().into());
    add.push(t.path("keys/signing-key.pub").into());
    t.run(add).ok();
    let published = t.path("published");
    let mut revoke = args([
        "trust",
        "revoke",
        "trusted",
        &old_fp,
        "--reason",
        "retired early",
    ]);
    revoke.extend(args(["--sign-with"]));
    let cur_uri = std::fs::read_to_string(t.path("keys/signing-key.pkcs11")).unwrap();
    revoke.push(cur_uri.trim().into());
    revoke.push("--publish-dir".into());
    revoke.push(published.clone().into());
    revoke.extend(t.access());
    t.run(revoke).ok();
    let mut update = args(["trust", "update"]);
    update.push(worker.clone().into());
    update.push("--from".into());
    update.push(published.into());
    update.push("--json".into());
    let u = t.run(update).ok().json();
    assert_eq!(u["ok"], true, "{u}");
    let listed = {
        let mut l = args(["trust", "list"]);
        l.push(worker.into());
        l.push("--json".into());
        t.run(l).ok().json().to_string()
    };
    assert!(
        listed.contains(&old_fp) && listed.contains("revoked"),
        "{listed}"
    );
    assert!(listed.contains(&new_fp), "{listed}");
}

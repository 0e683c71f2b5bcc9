//! `pkgsign apply`: the worker's update path. Read once, verify over the
//! private copy, refuse rollbacks and reused versions against the state,
//! apply exactly the verified bytes, then record them.

use std::path::{Path, PathBuf};

use crate::common;
use common::{Alg, Env, Key, args, run};

/// A release `app` VERSION signed by `key`; returns the package path.
fn release(env: &Env, key: &Key, name: &str, version: &str, body: &str) -> PathBuf {
    let pkg = env.write(format!("{name}-{version}-{}.tar", body.len()), body);
    env.sign(
        &pkg,
        &[key],
        &["--name", name, "--release-version", version],
    )
    .ok();
    pkg
}

fn apply(env: &Env, key: &Key, pkg: &Path, extra: &[&str]) -> common::Run {
    let mut v = args(["apply", "--json", "--package"]);
    v.push(pkg.into());
    v.extend(args(["--public-key"]));
    v.push(key.public.clone().into());
    v.extend(args(["--name", "app", "--state-dir"]));
    v.push(env.path("state").into());
    v.extend(args(extra));
    env.run(v)
}

#[test]
fn a_release_is_applied_once_and_an_older_one_is_a_rollback() {
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let old = release(&env, &key, "app", "1.0.0", "old release\n");
    let new = release(&env, &key, "app", "1.1.0", "new release\n");
    let out = env.path("app.tar");
    let out_s = out.to_str().unwrap();
    let r = apply(&env, &key, &new, &["--output", out_s]).ok();
    assert_eq!(r.json()["applied"], true, "{r:#?}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "new release\n");
    // The same release again: a no-op, exit 0.
    let r = apply(&env, &key, &new, &["--output", out_s]).ok();
    assert_eq!(r.json()["already_applied"], true, "{r:#?}");
    // The older release, validly signed, renamed to look new: refused.
    let renamed = env.path("app-latest.tar");
    std::fs::copy(&old, &renamed).unwrap();
    std::fs::copy(
        old.with_extension("tar.sig"),
        env.path("app-latest.tar.sig"),
    )
    .unwrap();
    let r = apply(&env, &key, &renamed, &["--output", out_s]).refused("ROLLBACK");
    assert!(
        r.stderr.contains("1.0.0") && r.stderr.contains("1.1.0"),
        "{r:#?}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "new release\n");
    // An operator's deliberate downgrade, to exactly that version.
    apply(
        &env,
        &key,
        &renamed,
        &["--allow-downgrade-to", "1.0.1", "--output", out_s],
    )
    .refused("ROLLBACK");
    let r = apply(
        &env,
        &key,
        &renamed,
        &["--allow-downgrade-to", "1.0.0", "--output", out_s],
    )
    .ok();
    assert_eq!(r.json()["downgrade_from"], "1.1.0");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "old release\n");
}

#[test]
fn a_version_reused_for_other_bytes_is_refused() {
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let first = release(&env, &key, "app", "2.0.0", "first\n");
    let second = release(&env, &key, "app", "2.0.0", "second build\n");
    let out = env.path("app.tar");
    apply(&env, &key, &first, &["--output", out.to_str().unwrap()]).ok();
    apply(&env, &key, &second, &["--output", out.to_str().unwrap()]).refused("VERSION_REUSED");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "first\n");
}

#[test]
fn a_state_file_that_does_not_parse_stops_the_worker() {
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let pkg = release(&env, &key, "app", "1.0.0", "release\n");
    let out = env.path("app.tar");
    apply(&env, &key, &pkg, &["--output", out.to_str().unwrap()]).ok();
    std::fs::remove_file(&out).unwrap();
    for junk in ["", "{", "{\"format\":1}", "not json at all\n"] {
        std::fs::write(env.path("state/app.json"), junk).unwrap();
        apply(&env, &key, &pkg, &["--output", out.to_str().unwrap()])
            .fails_with(2, "METADATA_INVALID");
        assert!(
            !out.exists(),
            "nothing is applied when the state is unreadable"
        );
    }
}

#[test]
fn only_signed_versions_of_the_named_package_are_applied() {
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let out = env.path("out.tar");
    let out_s = out.to_str().unwrap();
    // Another package's release.
    let other = release(&env, &key, "other", "9.0.0", "other\n");
    apply(&env, &key, &other, &["--output", out_s]).refused("NAME_MISMATCH");
    // A version 1 signature: no name, no version.
    let plain = env.write("plain.tar", "plain\n");
    env.sign(&plain, &[&key], &[]).ok();
    apply(&env, &key, &plain, &["--output", out_s]).refused("NAME_MISMATCH");
    // Named, but no version: rollback cannot be checked.
    let unversioned = env.write("unversioned.tar", "u\n");
    env.sign(&unversioned, &[&key], &["--name", "app"]).ok();
    apply(&env, &key, &unversioned, &["--output", out_s]).refused("ROLLBACK");
    assert!(!out.exists());
}

#[test]
fn exec_runs_on_the_verified_copy_and_a_failure_is_not_recorded() {
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let pkg = release(&env, &key, "app", "3.1.4", "payload\n");
    let seen = env.path("seen.txt");
    let script = format!(
        "printf '%s %s %s %s\\n' \"$PKGSIGN_VERIFIED_NAME\" \"$PKGSIGN_VERIFIED_VERSION\" \"$PKGSIGN_VERIFIED_DIGEST\" \"$(cat \"$1\")\" > {}; exit \"$FAIL\"",
        seen.display()
    );
    let exec = |code: &str| {
        let mut v = args(["apply", "--json", "--package"]);
        v.push(pkg.clone().into());
        v.extend(args(["--public-key"]));
        v.push(key.public.clone().into());
        v.extend(args(["--name", "app", "--state-dir"]));
        v.push(env.path("state").into());
        v.extend(args(["--exec", "sh", "-c", &script, "sh"]));
        let mut c = common::ps(v);
        c.env("FAIL", code);
        run(c)
    };
    let r = exec("3").fails(2);
    assert!(r.stderr.contains("not recorded"), "{r:#?}");
    assert!(!env.path("state/app.json").exists());
    exec("0").ok();
    let line = std::fs::read_to_string(&seen).unwrap();
    assert!(line.starts_with("app 3.1.4 sha256:"), "{line}");
    assert!(line.ends_with(" payload\n"), "{line}");
    // The staged copy is gone after the command.
    assert_eq!(
        common::leftovers(&env.path("state/staging")),
        Vec::<String>::new()
    );
    exec("0").ok(); // already applied: the command does not run again
}

#[test]
fn standard_input_is_applied_and_a_bad_signature_is_an_unauthorized_attempt() {
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let pkg = release(&env, &key, "app", "1.0.0", "from a pipe\n");
    let sig = pkg.with_extension("tar.sig");
    let log = env.path("audit.jsonl");
    let out = env.path("app.tar");
    let cmd = || {
        let mut v = args(["apply", "--json", "--package", "-", "--signature"]);
        v.push(sig.clone().into());
        v.extend(args(["--public-key"]));
        v.push(key.public.clone().into());
        v.extend(args(["--name", "app", "--state-dir"]));
        v.push(env.path("state").into());
        v.extend(args(["--audit-log"]));
        v.push(log.clone().into());
        v.extend(args(["--output"]));
        v.push(out.clone().into());
        common::ps(v)
    };
    common::run_with(cmd(), Some(b"tampered bytes\n"), common::DEFAULT_TIMEOUT)
        .refused("SIGNATURE_INVALID");
    assert!(!out.exists());
    common::run_with(cmd(), Some(b"from a pipe\n"), common::DEFAULT_TIMEOUT).ok();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "from a pipe\n");
    let events: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].to_string())
        .collect();
    assert_eq!(
        events,
        ["\"unauthorized_update_attempt\"", "\"update_applied\""],
        "{events:?}"
    );
}

/// Several workers applying at once on one state directory: each decision
/// is made under the state's lock, so the state always parses and ends at
/// the highest version any of them applied.
#[test]
fn concurrent_applies_share_one_state_safely() {
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let versions = ["1.0.0", "1.1.0", "1.2.0", "2.0.0", "2.0.1", "2.1.0"];
    let pkgs: Vec<PathBuf> = versions
        .iter()
        .map(|v| release(&env, &key, "app", v, &format!("release {v}\n")))
        .collect();
    let children: Vec<_> = pkgs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut v = args(["apply", "--json", "--package"]);
            v.push(p.clone().into());
            v.extend(args(["--public-key"]));
            v.push(key.public.clone().into());
            v.extend(args(["--name", "app", "--state-dir"]));
            v.push(env.path("state").into());
            v.extend(args(["--output"]));
            v.push(env.path(format!("out-{i}.tar")).into());
            common::ps(v)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut applied = Vec::new();
    for (i, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        match out.status.code() {
            Some(0) => applied.push(versions[i]),
            Some(1) => {}
            other => panic!("{other:?}: {out:?}"),
        }
    }
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("state/app.json")).unwrap())
            .unwrap();
    let highest = applied.iter().max_by_key(|v| semver_key(v)).unwrap();
    assert_eq!(state["version"], *highest, "applied: {applied:?}");
}

fn semver_key(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap()).collect()
}

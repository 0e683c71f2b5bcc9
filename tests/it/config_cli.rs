//! `--config FILE` (or `PKGSIGN_CONFIG`) on every subcommand, and `pkgsign
//! config check`: the file fills the flags left unset, a flag always wins,
//! relative paths are read from the file's directory, and a broken file
//! stops the command (CONFIG_INVALID, naming key and line) before it acts.

use std::path::{Path, PathBuf};

use crate::common::rotation::{copy_dir, now, rfc};
use crate::common::{Alg, Env, Key, args, pkgsign, run};

/// The repository root (where `keys-example/` is).
fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A trusted-keys directory `dir` holding `key`'s public key.
fn trusted_dir(env: &Env, dir: &str, key: &Key) -> PathBuf {
    let d = env.path(dir);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::copy(&key.public, d.join("k.pub")).unwrap();
    d
}

/// A package signed by a fresh key, the key, and a key that did not sign it.
fn signed_package(env: &Env) -> (PathBuf, Key, Key) {
    let signer = env.keygen("signer", Alg::Ed25519);
    let other = env.keygen("other", Alg::Ed25519);
    let package = env.package("pkg.bin");
    env.sign(&package, &[&signer], &[]).ok();
    (package, signer, other)
}

/// A configuration file `rel` with `text`.
fn config(env: &Env, rel: &str, text: &str) -> PathBuf {
    env.write(rel, text)
}

/// A signed package and two configuration files: `good.toml`, whose
/// `[worker] trusted_keys` holds the signer's key, and `bad.toml`, whose
/// holds another key.
fn good_and_bad_configs(env: &Env) -> (PathBuf, PathBuf, PathBuf) {
    let (package, signer, other) = signed_package(env);
    trusted_dir(env, "good", &signer);
    trusted_dir(env, "bad", &other);
    let good = config(env, "good.toml", "[worker]\ntrusted_keys = \"good\"\n");
    let bad = config(env, "bad.toml", "[worker]\ntrusted_keys = \"bad\"\n");
    (package, good, bad)
}

/// `pkgsign verify-package --json --package PACKAGE`, to add to.
fn verify_cmd(env: &Env, package: &Path) -> std::process::Command {
    let mut cmd = env.cmd();
    cmd.args(["verify-package", "--json", "--package"])
        .arg(package);
    cmd
}

fn verify_with(env: &Env, cfg: &Path, package: &Path, extra: &[&str]) -> crate::common::Run {
    let mut a = args(["verify-package", "--json", "--config"]);
    a.push(cfg.into());
    a.push("--package".into());
    a.push(package.into());
    a.extend(args(extra));
    env.run(a)
}

#[test]
fn an_unknown_config_key_stops_the_command_naming_key_and_line() {
    let env = Env::new();
    let cfg = config(
        &env,
        "pkgsign.toml",
        "[signing]\nkeys_dir = \"keys\"\nkey_sise = 2048\n",
    );
    let r = env
        .run(args(["keygen", "--json", "--config", "pkgsign.toml"]))
        .fails_with(2, "CONFIG_INVALID");
    assert!(
        r.stderr.contains("key_sise")
            && r.stderr.contains("line 3")
            && r.stderr.contains("pkgsign.toml"),
        "the error names file, key and line: {r:#?}"
    );
    assert!(!env.path("keys").exists(), "nothing was done: {r:#?}");
    // The same file through the environment, on a command that reads no key.
    let mut cmd = env.cmd();
    cmd.args(["checksum", "--json", "pkgsign.toml"])
        .env("PKGSIGN_CONFIG", &cfg);
    run(cmd).fails_with(2, "CONFIG_INVALID");
}

#[test]
fn verify_package_with_only_config_and_package_uses_the_workers_trusted_keys() {
    let env = Env::new();
    let (package, good, bad) = good_and_bad_configs(&env);
    verify_with(&env, &good, &package, &[]).verified();
    // The file's keys are really what decides.
    verify_with(&env, &bad, &package, &[]).refused("KEY_NOT_TRUSTED");
    // [worker] public_keys too.
    let pubs = config(
        &env,
        "pubs.toml",
        "[worker]\npublic_keys = [\"keys/signer.pub\"]\n",
    );
    verify_with(&env, &pubs, &package, &[]).verified();
}

#[test]
fn a_key_flag_replaces_the_files_trusted_keys_instead_of_adding_to_them() {
    let env = Env::new();
    let (package, good, bad) = good_and_bad_configs(&env);
    // The flag wins over a file that would refuse...
    verify_with(&env, &bad, &package, &["--trusted-keys", "good"]).verified();
    // ...and over one that would accept: the file's keys are not added.
    verify_with(&env, &good, &package, &["--trusted-keys", "bad"]).refused("KEY_NOT_TRUSTED");
    verify_with(&env, &good, &package, &["--public-key", "keys/other.pub"])
        .refused("KEY_NOT_TRUSTED");
}

#[test]
fn pkgsign_config_in_the_environment_names_the_file() {
    let env = Env::new();
    let (package, signer, _) = signed_package(&env);
    trusted_dir(&env, "good", &signer);
    let cfg = config(&env, "good.toml", "[worker]\ntrusted_keys = \"good\"\n");
    let mut cmd = verify_cmd(&env, &package);
    cmd.env("PKGSIGN_CONFIG", &cfg);
    run(cmd).verified();
    // --config wins over the environment.
    trusted_dir(&env, "bad", &env.keygen("third", Alg::Ed25519));
    let bad = config(&env, "bad.toml", "[worker]\ntrusted_keys = \"bad\"\n");
    let mut cmd = verify_cmd(&env, &package);
    cmd.arg("--config").arg(&bad).env("PKGSIGN_CONFIG", &cfg);
    run(cmd).refused("KEY_NOT_TRUSTED");
}

#[test]
fn relative_paths_in_the_file_are_read_from_its_directory_not_the_cwd() {
    let env = Env::new();
    let (package, signer, other) = signed_package(&env);
    // etc/trusted holds the signer; ./trusted (the cwd's) another key.
    trusted_dir(&env, "etc/trusted", &signer);
    trusted_dir(&env, "trusted", &other);
    let cfg = config(
        &env,
        "etc/pkgsign.toml",
        "[worker]\ntrusted_keys = \"trusted\"\n",
    );
    verify_with(&env, &cfg, &package, &[]).verified();
    // From another directory, with the file named relatively.
    let mut a = args(["verify-package", "--json", "--config", "pkgsign.toml"]);
    a.push("--package".into());
    a.push(package.clone().into());
    pkgsign(&env.path("etc"), a).verified();
}

#[test]
fn keygen_takes_its_directory_name_algorithm_and_size_from_the_file_unless_flagged() {
    let env = Env::new();
    config(
        &env,
        "etc/pkgsign.toml",
        "[signing]\nkeys_dir = \"keys\"\nkey_name = \"coord\"\nalgorithm = \"rsa\"\nkey_size = 2048\n",
    );
    let r = env
        .run(args(["keygen", "--json", "--config", "etc/pkgsign.toml"]))
        .ok();
    let v = r.json();
    // RSA-2048: the file's algorithm and key_size, not ed25519 or 3072.
    assert_eq!(v["algorithm"], "rsa-2048", "{r:#?}");
    let pem = env.path("etc/keys/coord.pem");
    assert!(pem.is_file(), "in [signing] keys_dir/key_name: {r:#?}");
    // Flags win: another directory, name and algorithm.
    let r = env
        .run(args([
            "keygen",
            "--json",
            "--config",
            "etc/pkgsign.toml",
            "--output-dir",
            "mine",
            "--name",
            "k",
            "--algorithm",
            "ed25519",
        ]))
        .ok();
    assert_eq!(r.json()["algorithm"], "ed25519", "{r:#?}");
    assert!(env.path("mine/k.pem").is_file(), "{r:#?}");
}

#[test]
fn a_host_configured_once_rotates_signs_and_verifies_with_no_path_flags() {
    let env = Env::new();
    let cfg = config(
        &env,
        "etc/pkgsign.toml",
        "[signing]\nkeys_dir = \"keys\"\ntrusted_keys = \"trusted\"\ngrace_period = \"2d\"\nkey_name = \"release\"\n\n[worker]\ntrusted_keys = \"trusted\"\n",
    );
    let rotate = |extra: &[&str]| {
        let mut a = args(["key-rotate", "--json", "--config"]);
        a.push(cfg.clone().into());
        a.extend(args(extra));
        env.run(a).ok().json()
    };
    rotate(&["--init"]);
    assert!(env.path("etc/keys/release.pem").is_file());
    let before = now();
    let v = rotate(&[]);
    let until = v["old_key_trusted_until"]
        .as_str()
        .unwrap_or("")
        .to_string();
    // The file's 2d, not the default 30d.
    assert!(
        until >= rfc(before + 2 * 86_400) && until <= rfc(now() + 2 * 86_400),
        "grace period from the file: {v}"
    );
    // sign-package with no key flag signs with [signing] keys_dir: old
    // and new key, inside the grace window.
    let package = env.package("pkg.bin");
    let mut a = args(["sign-package", "--json", "--config"]);
    a.push(cfg.clone().into());
    a.push("--package".into());
    a.push(package.clone().into());
    let r = env.run(a).ok();
    assert_eq!(r.json()["keys"].as_array().map(Vec::len), Some(2), "{r:#?}");
    let r = verify_with(&env, &cfg, &package, &[]).verified();
    assert_eq!(r.json()["valid_keys"], 2, "{r:#?}");
    // A flag still wins: a grace period below the floor names the flag.
    let mut a = args(["key-rotate", "--json", "--config"]);
    a.push(cfg.clone().into());
    a.extend(args(["--grace-period", "10m"]));
    let r = env.run(a).fails_with(2, "USAGE");
    assert!(r.stderr.contains("--grace-period 600s"), "{r:#?}");
}

#[test]
fn a_required_flag_missing_from_both_flags_and_file_names_the_flag_and_the_key() {
    let env = Env::new();
    let r = env.run(args(["keygen", "--json"])).fails_with(2, "USAGE");
    assert!(
        r.stderr.contains("--output-dir") && r.stderr.contains("signing.keys_dir"),
        "{r:#?}"
    );
    let cfg = config(&env, "w.toml", "[worker]\ntrusted_keys = \"t\"\n");
    let mut a = args(["apply", "--json", "--package", "p", "--config"]);
    a.push(cfg.clone().into());
    a.extend(args(["--state-dir", "s", "--output", "o"]));
    let r = env.run(a).fails_with(2, "USAGE");
    assert!(
        r.stderr.contains("--name")
            && r.stderr.contains("worker.name")
            && r.stderr.contains("w.toml"),
        "{r:#?}"
    );
    let r = env
        .run(args(["key-rotate", "--json", "--keys-dir", "k"]))
        .fails_with(2, "USAGE");
    assert!(
        r.stderr.contains("--trusted-keys") && r.stderr.contains("signing.trusted_keys"),
        "{r:#?}"
    );
    assert!(!env.path("k").exists() && !env.path("s").exists(), "{r:#?}");
}

#[test]
fn the_audit_log_is_the_flag_else_the_environment_else_the_file() {
    let env = Env::new();
    let (package, signer, _) = signed_package(&env);
    trusted_dir(&env, "good", &signer);
    let cfg = config(
        &env,
        "c.toml",
        "audit_log = \"file.log\"\n[worker]\ntrusted_keys = \"good\"\n",
    );
    let verify = |flag: bool, environment: bool| {
        let mut cmd = verify_cmd(&env, &package);
        cmd.arg("--config").arg(&cfg);
        if flag {
            cmd.args(["--audit-log", "flag.log"]);
        }
        if environment {
            cmd.env("PKGSIGN_AUDIT_LOG", env.path("env.log"));
        }
        run(cmd).verified();
    };
    let lines = |name: &str| {
        std::fs::read_to_string(env.path(name))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    verify(false, false);
    assert_eq!(
        (lines("file.log"), lines("env.log"), lines("flag.log")),
        (1, 0, 0)
    );
    verify(false, true);
    assert_eq!(
        (lines("file.log"), lines("env.log"), lines("flag.log")),
        (1, 1, 0)
    );
    verify(true, true);
    assert_eq!(
        (lines("file.log"), lines("env.log"), lines("flag.log")),
        (1, 1, 1)
    );
}

#[test]
fn config_check_passes_the_example_and_names_each_missing_path() {
    pkgsign(
        repo(),
        ["config", "check", "--json", "keys-example/pkgsign.toml"],
    )
    .ok();
    let r = pkgsign(
        repo(),
        ["config", "check", "--json", "keys-example/pkgsign.toml"],
    );
    assert_eq!(r.json()["ok"], true, "{r:#?}");
    let env = Env::new();
    config(
        &env,
        "c.toml",
        "[service]\ntokens_file = \"no-tokens\"\n\n[worker]\ntrusted_keys = \"no-such-dir\"\n",
    );
    let r = env
        .run(args(["config", "check", "--json", "c.toml"]))
        .fails_with(2, "CONFIG_INVALID");
    assert!(
        r.stderr.contains("service.tokens_file (line 2)")
            && r.stderr.contains("worker.trusted_keys (line 5)")
            && r.stderr.contains("no-such-dir"),
        "each missing path, with its key and line: {r:#?}"
    );
    assert_eq!(r.json()["missing"].as_array().map(Vec::len), Some(2));
    // A file that does not parse fails the same way, naming the line.
    env.write("u.toml", "[worker]\n\ntrusted_kyes = \"x\"\n");
    let r = env.run(args(["config", "check", "u.toml"])).fails(2);
    assert!(
        r.stderr.contains("trusted_kyes") && r.stderr.contains("line 3"),
        "{r:#?}"
    );
}

#[test]
fn the_example_config_applies_the_example_release_from_any_directory() {
    let env = Env::new();
    copy_dir(&repo().join("keys-example"), &env.path("ex"));
    for d in ["worker-state", "install", "release-store", "signing-keys"] {
        let _ = std::fs::remove_dir_all(env.path("ex").join(d));
    }
    let r = pkgsign(
        &env.path("ex/release"),
        [
            "apply",
            "--json",
            "--config",
            "../pkgsign.toml",
            "--package",
            "../example-package.tar.gz",
            "--signature",
            "../example-package.tar.gz.v2.sig",
        ],
    )
    .ok();
    let v = r.json();
    assert_eq!(v["applied"], true, "{r:#?}");
    assert_eq!(v["name"], "example-package", "{r:#?}");
    assert!(
        env.path("ex/install/releases/1.0.0").is_dir() && env.path("ex/worker-state").is_dir(),
        "installed into [worker] install_dir, state in state_dir: {r:#?}"
    );
}

#[test]
fn the_public_test_tokens_match_the_digests_of_the_example_tokens_file() {
    use sha2::Digest as _;
    let dir = repo().join("keys-example");
    let env_file = std::fs::read_to_string(dir.join("test-tokens.env")).unwrap();
    let tokens_file = std::fs::read_to_string(dir.join("test-tokens")).unwrap();
    let mut roles = Vec::new();
    for line in env_file
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (role, token) = line.split_once('=').expect("ROLE=TOKEN");
        assert_eq!(token.len(), 64, "a 32-byte hex token: {line}");
        let digest = hex::encode(sha2::Sha256::digest(token.as_bytes()));
        let want = format!("test-{role} {role} {digest}");
        assert!(
            tokens_file.lines().any(|l| l == want),
            "test-tokens has no line {want:?}"
        );
        roles.push(role.to_string());
    }
    assert_eq!(roles, ["verify", "upload", "admin"]);
    assert_eq!(tokens_file.lines().count(), 3);
}

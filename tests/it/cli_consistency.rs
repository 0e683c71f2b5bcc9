//! One command line (issue 13): `-q/--quiet`, `--json` and `--audit-log`
//! mean the same on every subcommand that acts, and a verification by
//! several keys is shown one signer per line while `--json` stays as it was.

use crate::common;

use std::path::Path;

use common::*;

/// The repository root (where `keys-example/` and `README.md` are).
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[track_caller]
fn quiet_ok(env: &Env, argv: &[&str]) {
    let run = env.run(argv).ok();
    assert!(
        run.stdout.is_empty(),
        "-q printed on stdout on success: {run:#?}"
    );
}

/// A script that greps stdout after `-q` (or that runs it from cron and
/// mails any output) must get nothing from any subcommand that succeeded:
/// keygen, key-rotate, trust, apply and verify-manifest printed anyway, or
/// refused `-q` as a usage error.
#[test]
fn quiet_leaves_stdout_empty_on_every_subcommand_that_succeeds() {
    let env = Env::new();
    let key = env.keygen("a", Alg::Ed25519);
    let (private, public) = (key.private.to_str().unwrap(), key.public.to_str().unwrap());
    quiet_ok(&env, &["keygen", "-q", "--output-dir", "k2", "--name", "b"]);
    assert!(env.path("k2/b.pem").is_file() && env.path("k2/b.pub").is_file());
    quiet_ok(&env, &["trust", "add", "-q", "trusted", public]);
    quiet_ok(&env, &["trust", "list", "-q", "trusted"]);
    quiet_ok(&env, &["trust", "threshold", "-q", "trusted", "1"]);
    env.package("app.tar");
    quiet_ok(
        &env,
        &[
            "sign-package",
            "-q",
            "--package",
            "app.tar",
            "--private-key",
            private,
            "--name",
            "app",
            "--release-version",
            "1.0.0",
        ],
    );
    quiet_ok(
        &env,
        &[
            "verify-package",
            "-q",
            "--package",
            "app.tar",
            "--trusted-keys",
            "trusted",
        ],
    );
    let sums = tool_ok(env.dir.path(), "sha256sum", ["app.tar"]);
    env.write("SHA256SUMS", &sums);
    quiet_ok(&env, &["checksum", "-q", "--check", "SHA256SUMS"]);
    quiet_ok(
        &env,
        &[
            "sign-package",
            "-q",
            "--package",
            "SHA256SUMS",
            "--private-key",
            private,
        ],
    );
    quiet_ok(
        &env,
        &[
            "verify-manifest",
            "-q",
            "SHA256SUMS",
            "--trusted-keys",
            "trusted",
        ],
    );
    quiet_ok(
        &env,
        &[
            "apply",
            "-q",
            "--package",
            "app.tar",
            "--trusted-keys",
            "trusted",
            "--name",
            "app",
            "--state-dir",
            "state",
            "--output",
            "out.tar",
        ],
    );
    assert!(env.path("out.tar").is_file());
    quiet_ok(
        &env,
        &[
            "key-rotate",
            "-q",
            "--init",
            "--keys-dir",
            "rk",
            "--trusted-keys",
            "rt",
        ],
    );
    quiet_ok(
        &env,
        &[
            "key-rotate",
            "-q",
            "--keys-dir",
            "rk",
            "--trusted-keys",
            "rt",
            "--grace-period",
            "30d",
        ],
    );
    quiet_ok(
        &env,
        &["trust", "update", "-q", "rt", "--from", "rt/lineage"],
    );
    // Errors still reach stderr, and the exit code is the contract's.
    let run = env
        .run([
            "verify-package",
            "-q",
            "--package",
            "app.tar",
            "--public-key",
            "k2/b.pub",
        ])
        .fails(1);
    assert!(
        run.stdout.is_empty() && run.stderr.starts_with("error:"),
        "{run:#?}"
    );
}

/// Every subcommand that acts (writes keys, signatures, trust, state, or
/// makes a verification) takes `--json` and `--audit-log`.
#[test]
fn every_acting_subcommand_takes_json_and_audit_log() {
    let env = Env::new();
    let acting: &[&[&str]] = &[
        &["keygen"],
        &["sign-package"],
        &["verify-package"],
        &["verify-manifest"],
        &["key-rotate"],
        &["apply"],
        &["trust", "add"],
        &["trust", "revoke"],
        &["trust", "remove"],
        &["trust", "threshold"],
        &["trust", "cosign"],
        &["trust", "update"],
    ];
    for cmd in acting {
        let mut argv = cmd.to_vec();
        argv.push("--help");
        let help = env.run(&argv).ok().out();
        for flag in ["--json", "--audit-log <FILE>", "-q, --quiet"] {
            assert!(help.contains(flag), "{cmd:?} has no {flag}:\n{help}");
        }
    }
}

/// `keygen --audit-log` records the key it made, with the seed's fields.
#[test]
fn keygen_logs_the_key_it_generated() {
    let env = Env::new();
    let fp = env
        .run(["keygen", "--output-dir", "k", "--audit-log", "audit.log"])
        .ok()
        .out()
        .trim()
        .to_string();
    let log = std::fs::read_to_string(env.path("audit.log")).unwrap();
    let v: serde_json::Value = serde_json::from_str(log.trim()).unwrap();
    assert_eq!(v["event"], "key_generated", "{v}");
    assert_eq!(v["key"], fp.as_str());
    assert_eq!(v["public_key_fingerprint"], fp.as_str());
    assert_eq!(v["signature_algorithm"], "Ed25519");
}

/// Two signers used to be one long `;`-joined line, hard to read and to
/// grep: now a header, then one indented line per key.
#[test]
fn two_signers_are_shown_one_per_line_under_a_header() {
    let env = Env::new();
    let a = env.keygen("a", Alg::Ed25519);
    let b = env.keygen("b", Alg::Rsa);
    let pkg = env.package("p.tar");
    env.sign(&pkg, &[&a, &b], &["--comment", "release; two keys"])
        .ok();
    let mut argv = args(["verify-package", "--package", "p.tar"]);
    for k in [&a, &b] {
        argv.push("--public-key".into());
        argv.push(k.public.clone().into());
    }
    let out = env.run(argv).ok().out();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], "verified p.tar: signed by 2 keys");
    for (line, key, alg) in [(lines[1], &a, "ed25519"), (lines[2], &b, "rsa-pss-sha256")] {
        let want = format!("  {} (", key.fingerprint);
        assert!(line.starts_with(&want), "{line:?}");
        assert!(line.contains(alg), "{line:?}");
        assert!(
            line.ends_with(r#" comment "release; two keys""#),
            "{line:?}"
        );
    }
    // verify-manifest says the same on stderr: a header, a line per key.
    let sums = tool_ok(env.dir.path(), "sha256sum", ["p.tar"]);
    let list = env.write("SUMS", &sums);
    env.sign(&list, &[&a, &b], &[]).ok();
    let mut argv = args(["verify-manifest", "SUMS"]);
    for k in [&a, &b] {
        argv.push("--public-key".into());
        argv.push(k.public.clone().into());
    }
    let run = env.run(argv).ok();
    assert!(
        run.stderr
            .contains("SUMS: list signed by 2 keys; 1 of 1 files OK\n"),
        "{run:#?}"
    );
    assert!(
        run.stderr.contains(&format!("\n  {} (", b.fingerprint)),
        "{run:#?}"
    );
}

/// The README's first command prints what its first output block shows.
#[test]
fn readme_first_output_block_is_what_verify_package_prints() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let cmd = "cargo run --release -- verify-package --package keys-example/example-package.tar.gz --trusted-keys keys-example/trusted\n```\n\n```\n";
    let at = readme.find(cmd).expect("the README's first command") + cmd.len();
    let block = &readme[at..at + readme[at..].find("```").unwrap()];
    let run = pkgsign(
        root(),
        [
            "verify-package",
            "--package",
            "keys-example/example-package.tar.gz",
            "--trusted-keys",
            "keys-example/trusted",
        ],
    )
    .ok();
    assert_eq!(run.out(), block);
}

/// `--json` of a verification by two keys, pinned byte for byte: tools that
/// parse it are not touched by the human output's new layout. (The committed
/// example signature, so every byte is fixed; regenerate with the command
/// of the README if `keys-example/regenerate.sh` is run.)
#[test]
fn verify_json_of_two_signers_is_unchanged_byte_for_byte() {
    const PINNED: &str = concat!(
        r#"{"ok":true,"package":"keys-example/example-package.tar.gz","package_hash":"sha256:44f6cccecd1d9fd94cf9ec04173bc937fadd533434714e5d3273fc9401c9c507","#,
        r#""signatures":[{"algorithm":"ed25519","comment":"example-package 1.0.0 signed with PUBLIC TEST KEYS","index":1,"key":"SHA256:LKqJAnI0DHJMoNM9jADzzqf5iKM9RvNq4+BbsFqKj44","key_name":"test-ed25519","principal":"SHA256:LKqJAnI0DHJMoNM9jADzzqf5iKM9RvNq4+BbsFqKj44","reason":"key SHA256:LKqJAnI0DHJMoNM9jADzzqf5iKM9RvNq4+BbsFqKj44 (test-ed25519) is trusted with no time limit","refusal":null,"signed_at":"2026-11-22T03:41:35Z"},"#,
        r#"{"algorithm":"rsa-pss-sha256","comment":"example-package 1.0.0 signed with PUBLIC TEST KEYS","index":2,"key":"SHA256:2lDyZ/e8k110Vd48HBtxy1Uwu/CIECfv5MMaziqwSn0","key_name":"test-rsa","principal":"SHA256:2lDyZ/e8k110Vd48HBtxy1Uwu/CIECfv5MMaziqwSn0","reason":"key SHA256:2lDyZ/e8k110Vd48HBtxy1Uwu/CIECfv5MMaziqwSn0 (test-rsa) is trusted with no time limit","refusal":null,"signed_at":"2026-11-22T03:41:35Z"}],"#,
        r#""threshold":1,"valid_keys":2,"valid_principals":2,"verified":true}"#,
        "\n"
    );
    let run = pkgsign(
        root(),
        [
            "verify-package",
            "--json",
            "--package",
            "keys-example/example-package.tar.gz",
            "--trusted-keys",
            "keys-example/trusted",
        ],
    )
    .ok();
    assert_eq!(run.out(), PINNED);
}

//! Defects: every bad input gets the contract's exit code (1 refused, 2
//! could not run), one `error:` line, the right `--json` code, and never a
//! panic (checked by `common::run` on every run).

use crate::common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use common::{Alg, Env, Key, chmod, leftovers, mkfifo, mode, sig_blocks, tool_ok};

/// `tests/data/NAME`.
fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The committed fixtures (see tests/data/regenerate.sh) and the outcome
/// each must get when verifying tests/data/package.txt with the fixture key:
/// `None` is success.
const FIXTURES: &[(&str, Option<&str>)] = &[
    ("sig-valid", None),
    ("sig-same-key-twice", None),
    ("raw-valid", None),
    ("raw-wrapped", None),
    ("sig-empty", Some("SIGNATURE_MALFORMED")),
    ("sig-truncated", Some("SIGNATURE_MALFORMED")),
    ("sig-truncated-block", Some("SIGNATURE_MALFORMED")),
    ("sig-no-final-newline", Some("SIGNATURE_MALFORMED")),
    ("sig-garbled", Some("SIGNATURE_MALFORMED")),
    ("sig-binary", Some("SIGNATURE_MALFORMED")),
    ("sig-version-2", Some("SIGNATURE_MALFORMED")),
    ("sig-version-3", Some("SIGNATURE_VERSION_UNSUPPORTED")),
    ("sig-bad-header", Some("SIGNATURE_MALFORMED")),
    ("sig-duplicate-field", Some("SIGNATURE_MALFORMED")),
    ("sig-duplicate-comment", Some("SIGNATURE_MALFORMED")),
    ("sig-unknown-field", Some("SIGNATURE_MALFORMED")),
    ("sig-field-order", Some("SIGNATURE_MALFORMED")),
    ("sig-noncanonical-base64", Some("SIGNATURE_MALFORMED")),
    ("sig-base64-wrapped", Some("SIGNATURE_MALFORMED")),
    ("sig-signature-wrong-length", Some("SIGNATURE_MALFORMED")),
    ("sig-unknown-algorithm", Some("SIGNATURE_MALFORMED")),
    ("sig-algorithm-mismatch", Some("SIGNATURE_MALFORMED")),
    ("sig-md5-digest", Some("SIGNATURE_MALFORMED")),
    ("sig-uppercase-digest", Some("SIGNATURE_MALFORMED")),
    ("sig-size-leading-zero", Some("SIGNATURE_MALFORMED")),
    ("sig-bad-time", Some("SIGNATURE_MALFORMED")),
    ("sig-empty-comment", Some("SIGNATURE_MALFORMED")),
    ("sig-comment-control-char", Some("SIGNATURE_MALFORMED")),
    ("sig-crlf", Some("SIGNATURE_MALFORMED")),
    ("sig-trailing-data", Some("SIGNATURE_MALFORMED")),
    ("sig-trailing-blank-line", Some("SIGNATURE_MALFORMED")),
    ("sig-too-many-blocks", Some("SIGNATURE_MALFORMED")),
    ("sig-altered-comment", Some("SIGNATURE_INVALID")),
    ("sig-altered-size", Some("SIGNATURE_INVALID")),
    ("sig-altered-signed-at", Some("SIGNATURE_INVALID")),
    ("sig-altered-digest", Some("SIGNATURE_INVALID")),
    ("sig-altered-signature", Some("SIGNATURE_INVALID")),
    ("sig-other-package", Some("SIGNATURE_INVALID")),
    ("raw-noncanonical-base64", Some("SIGNATURE_MALFORMED")),
    ("raw-wrong-length", Some("SIGNATURE_MALFORMED")),
    ("raw-leading-space", Some("SIGNATURE_MALFORMED")),
    ("raw-altered", Some("SIGNATURE_INVALID")),
];

/// An RSA private key of `bits` bits made by `openssl genpkey`, written to
/// `out` in `dir` (PKCS#8 PEM).
fn openssl_rsa(dir: &Path, bits: u32, out: &str) {
    let bits = format!("rsa_keygen_bits:{bits}");
    tool_ok(
        dir,
        "openssl",
        [
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            &bits,
            "-out",
            out,
        ],
    );
}

/// A fresh environment with an Ed25519 key `key` made by `pkgsign keygen`
/// and a package `package`.
fn ed25519_env(key: &str, package: &str) -> (Env, Key, PathBuf) {
    let env = Env::new();
    let k = env.keygen(key, Alg::Ed25519);
    let p = env.package(package);
    (env, k, p)
}

fn fixture_key() -> Key {
    Key {
        private: data("fixture-ed25519.pem"),
        public: data("fixture-ed25519.pub"),
        fingerprint: String::new(),
    }
}

#[test]
fn every_fixture_gets_its_outcome() {
    let env = Env::new();
    let key = fixture_key();
    let pkg = data("package.txt");
    // Every fixture file is listed, and every listed fixture exists.
    let mut on_disk: Vec<String> = std::fs::read_dir(data(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("sig-") || n.starts_with("raw-"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = FIXTURES.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "tests/data and FIXTURES disagree");

    for (name, outcome) in FIXTURES {
        let run = env.verify_sig(&pkg, &data(name), &[&key]);
        match outcome {
            None => {
                run.verified();
            }
            Some(code) => {
                let v = run.refused(code).json();
                // A file that does not parse is named in the message.
                if code.starts_with("SIGNATURE_MALFORMED") || code.contains("VERSION") {
                    assert!(
                        v["error"].as_str().unwrap().contains(name),
                        "{name}: the message names the file: {v}"
                    );
                }
            }
        }
    }
    // The same key's block twice counts once.
    env.verify(
        &pkg,
        &[&key],
        &[
            "--signature",
            data("sig-same-key-twice").to_str().unwrap(),
            "--threshold",
            "2",
        ],
    )
    .refused("THRESHOLD_NOT_MET");
}

#[test]
fn oversized_signature_file_is_refused() {
    let env = Env::new();
    let key = fixture_key();
    let valid = std::fs::read_to_string(data("sig-valid")).unwrap();
    // A valid file padded past 64 KiB with comment-like junk lines.
    let mut big = valid.clone();
    while big.len() <= 64 * 1024 {
        big.push_str("x: yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\n");
    }
    let sig = env.write("big.sig", &big);
    env.verify_sig(&data("package.txt"), &sig, &[&key])
        .refused("SIGNATURE_MALFORMED");
    // One huge line (no newline at all) too.
    let sig = env.write("huge.sig", vec![b'A'; 200 * 1024]);
    env.verify_sig(&data("package.txt"), &sig, &[&key])
        .refused("SIGNATURE_MALFORMED");
}

/// Flip one byte at `at` (or append one when `at` is the length).
fn change_byte(p: &Path, at: usize) {
    let mut data = std::fs::read(p).unwrap();
    if at == data.len() {
        data.push(0);
    } else {
        data[at] ^= 0x20;
    }
    std::fs::write(p, data).unwrap();
}

#[test]
fn a_changed_byte_anywhere_in_the_package_is_refused() {
    let env = Env::new();
    let ed = env.keygen("ed", Alg::Ed25519);
    let rsa = env.keygen("rsa", Alg::Rsa);
    let original = std::fs::read(env.package("orig")).unwrap();
    let len = original.len();
    for (key, format) in [
        (&ed, "pkgsign"),
        (&rsa, "pkgsign"),
        (&ed, "raw"),
        (&rsa, "raw"),
    ] {
        for at in [0, len / 2, len - 1, len] {
            let pkg = env.write("p.tar.gz", &original);
            env.sign(&pkg, &[key], &["--format", format]).ok();
            env.verify(&pkg, &[key], &[]).verified();
            change_byte(&pkg, at);
            env.verify(&pkg, &[key], &[]).refused("SIGNATURE_INVALID");
        }
        // Truncated by one byte.
        let pkg = env.write("p.tar.gz", &original);
        env.sign(&pkg, &[key], &["--format", format]).ok();
        env.write("p.tar.gz", &original[..len - 1]);
        env.verify(&pkg, &[key], &[]).refused("SIGNATURE_INVALID");
    }
}

#[test]
fn signature_for_another_package_is_refused() {
    let env = Env::new();
    let k = env.keygen("k", Alg::Rsa);
    let a = env.package("a.tgz");
    let b = env.package("b.tgz");
    env.sign(&a, &[&k], &[]).ok();
    env.sign(&b, &[&k], &["--format", "raw"]).ok();
    env.verify_sig(&b, &env.path("a.tgz.sig"), &[&k])
        .refused("SIGNATURE_INVALID");
    env.verify_sig(&a, &env.path("b.tgz.sig"), &[&k])
        .refused("SIGNATURE_INVALID");
}

#[test]
fn wrong_key_and_key_of_the_other_algorithm() {
    let env = Env::new();
    let ed = env.keygen("ed", Alg::Ed25519);
    let ed2 = env.keygen("ed2", Alg::Ed25519);
    let rsa = env.keygen("rsa", Alg::Rsa);
    let rsa2 = env.keygen("rsa2", Alg::Rsa);
    let pkg = env.package("p");
    env.sign(&pkg, &[&ed], &["--output", "ed.sig"]).ok();
    env.sign(&pkg, &[&rsa], &["--output", "rsa.sig"]).ok();
    env.sign(&pkg, &[&ed], &["--output", "ed.raw", "--format", "raw"])
        .ok();
    env.sign(&pkg, &[&rsa], &["--output", "rsa.raw", "--format", "raw"])
        .ok();
    let sig = |n: &str| env.path(n);

    // pkgsign format: the block names a key that is not trusted.
    for (s, k) in [
        ("ed.sig", &ed2),
        ("ed.sig", &rsa),
        ("rsa.sig", &rsa2),
        ("rsa.sig", &ed),
    ] {
        let v = env
            .verify_sig(&pkg, &sig(s), &[k])
            .refused("KEY_NOT_TRUSTED");
        let v = v.json();
        assert_eq!(v["signatures"][0]["refusal"], "KEY_NOT_TRUSTED", "{v}");
    }
    // Raw format names no key: no trusted key verifies it.
    for (s, k) in [
        ("ed.raw", &ed2),
        ("ed.raw", &rsa),
        ("rsa.raw", &rsa2),
        ("rsa.raw", &ed),
    ] {
        env.verify_sig(&pkg, &sig(s), &[k])
            .refused("SIGNATURE_INVALID");
    }
}

/// Replace the value of `field` in every block of a signature text.
fn set_field(text: &str, field: &str, value: &str) -> String {
    text.lines()
        .map(|l| match l.split_once(": ") {
            Some((f, _)) if f == field => format!("{field}: {value}\n"),
            _ => format!("{l}\n"),
        })
        .collect()
}

#[test]
fn a_block_naming_key_b_but_made_by_key_a_is_refused() {
    let env = Env::new();
    let pkg = env.package("p");
    for alg in [Alg::Ed25519, Alg::Rsa] {
        let a = env.keygen(&format!("a-{alg:?}"), alg);
        let b = env.keygen(&format!("b-{alg:?}"), alg);
        env.sign(&pkg, &[&a], &["--output", "a.sig"]).ok();
        let text = std::fs::read_to_string(env.path("a.sig")).unwrap();
        assert!(text.contains(&a.fingerprint));
        // The forged block: A's signature, B's name.
        let forged = set_field(&text, "key", &b.fingerprint);
        env.write("forged.sig", &forged);
        let v = env
            .verify_sig(&pkg, &env.path("forged.sig"), &[&a, &b])
            .refused("SIGNATURE_INVALID")
            .json();
        assert_eq!(v["valid_keys"], 0);

        // A's genuine block plus the forged one: A counts once, B not at all.
        let (header, genuine) = sig_blocks(&text);
        let (_, forged_blocks) = sig_blocks(&forged);
        env.write(
            "both.sig",
            format!("{header}\n{}{}", genuine[0], forged_blocks[0]),
        );
        env.verify(&pkg, &[&a, &b], &["--signature", "both.sig"])
            .verified();
        let v = env
            .verify(
                &pkg,
                &[&a, &b],
                &["--signature", "both.sig", "--threshold", "2"],
            )
            .refused("THRESHOLD_NOT_MET")
            .json();
        assert_eq!(v["valid_keys"], 1);
        assert_eq!(v["signatures"][1]["refusal"], "SIGNATURE_INVALID");
    }

    // A block whose algorithm does not match the named key's kind.
    let ed = env.keygen("ed", Alg::Ed25519);
    let rsa = env.keygen("rsa", Alg::Rsa);
    env.sign(&pkg, &[&rsa], &["--output", "rsa.sig"]).ok();
    let text = std::fs::read_to_string(env.path("rsa.sig")).unwrap();
    env.write("mixed.sig", set_field(&text, "key", &ed.fingerprint));
    env.verify_sig(&pkg, &env.path("mixed.sig"), &[&ed, &rsa])
        .refused("SIGNATURE_INVALID");
}

#[test]
fn weak_rsa_key_is_refused_on_sign_and_verify() {
    let env = Env::new();
    let dir = env.dir.path();
    openssl_rsa(dir, 1024, "weak.pem");
    chmod(&env.path("weak.pem"), 0o600);
    tool_ok(
        dir,
        "openssl",
        ["pkey", "-in", "weak.pem", "-pubout", "-out", "weak.pub"],
    );
    let pkg = env.package("p");
    let weak = Key {
        private: env.path("weak.pem"),
        public: env.path("weak.pub"),
        fingerprint: String::new(),
    };
    let run = env
        .sign(&pkg, &[&weak], &["--json"])
        .fails_with(2, "KEY_TOO_WEAK");
    assert!(run.stderr.contains("1024"), "{run:#?}");
    assert!(!env.path("p.sig").exists());

    let good = env.keygen("good", Alg::Ed25519);
    env.sign(&pkg, &[&good], &[]).ok();
    env.verify(&pkg, &[&weak], &[])
        .fails_with(2, "KEY_TOO_WEAK");
    // PKCS#1 form of the weak public key too.
    tool_ok(
        dir,
        "openssl",
        [
            "rsa",
            "-in",
            "weak.pem",
            "-RSAPublicKey_out",
            "-out",
            "weak1.pub",
        ],
    );
    let weak1 = Key {
        public: env.path("weak1.pub"),
        ..weak.clone()
    };
    env.verify(&pkg, &[&weak1], &[])
        .fails_with(2, "KEY_TOO_WEAK");
}

#[test]
fn loose_private_key_permissions_are_refused() {
    let (env, a, pkg) = ed25519_env("a", "p");
    for m in [0o644, 0o640, 0o604, 0o660] {
        chmod(&a.private, m);
        let run = env
            .sign(&pkg, &[&a], &["--json"])
            .fails_with(2, "KEY_PERMISSIONS");
        assert!(run.stderr.contains("chmod 600"), "{run:#?}");
        assert!(!env.path("p.sig").exists());
    }
    chmod(&a.private, 0o400);
    env.sign(&pkg, &[&a], &[]).ok();
}

#[test]
fn encrypted_keys_and_passphrases() {
    let env = Env::new();
    env.write("pass.txt", "correct horse\n");
    env.write("wrong.txt", "battery staple\n");
    env.write("empty.txt", "");
    // keygen with --passphrase-file writes an encrypted key.
    let run = env
        .run([
            "keygen",
            "--output-dir",
            "keys",
            "--name",
            "enc",
            "--passphrase-file",
            "pass.txt",
            "--json",
        ])
        .ok();
    assert_eq!(run.json()["encrypted"], true);
    let enc = Key {
        private: env.path("keys/enc.pem"),
        public: env.path("keys/enc.pub"),
        fingerprint: run.json()["fingerprint"].as_str().unwrap().to_string(),
    };
    assert!(
        std::fs::read_to_string(&enc.private)
            .unwrap()
            .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    );
    assert_eq!(mode(&enc.private), 0o600);
    let pkg = env.package("p");

    // No passphrase.
    env.sign(&pkg, &[&enc], &["--json"])
        .fails_with(2, "PASSPHRASE_REQUIRED");
    // Wrong passphrase, from a file and from the environment.
    env.sign(&pkg, &[&enc], &["--passphrase-file", "wrong.txt", "--json"])
        .fails_with(2, "PASSPHRASE_WRONG");
    let mut c = env.cmd();
    c.env("PKGSIGN_PASSPHRASE", "battery staple")
        .args(["sign-package", "--package", "p", "--json", "--private-key"])
        .arg(&enc.private);
    common::run(c).fails_with(2, "PASSPHRASE_WRONG");
    // An empty passphrase file is a usage error; a missing one, not found.
    env.sign(&pkg, &[&enc], &["--passphrase-file", "empty.txt", "--json"])
        .fails_with(2, "USAGE");
    env.sign(&pkg, &[&enc], &["--passphrase-file", "nope.txt", "--json"])
        .fails_with(2, "FILE_NOT_FOUND");
    assert!(!env.path("p.sig").exists());

    // The right passphrase, from a file ...
    env.sign(&pkg, &[&enc], &["--passphrase-file", "pass.txt"])
        .ok();
    env.verify(&pkg, &[&enc], &[]).verified();
    std::fs::remove_file(env.path("p.sig")).unwrap();
    // ... and from PKGSIGN_PASSPHRASE.
    let mut c = env.cmd();
    c.env("PKGSIGN_PASSPHRASE", "correct horse")
        .args(["sign-package", "--package", "p", "--private-key"])
        .arg(&enc.private);
    common::run(c).ok();
    env.verify(&pkg, &[&enc], &[]).verified();

    // keygen with PKGSIGN_PASSPHRASE encrypts as well.
    let mut c = env.cmd();
    c.env("PKGSIGN_PASSPHRASE", "from env").args([
        "keygen",
        "--output-dir",
        "keys",
        "--name",
        "enc2",
    ]);
    common::run(c).ok();
    assert!(
        std::fs::read_to_string(env.path("keys/enc2.pem"))
            .unwrap()
            .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    );
}

#[test]
fn missing_files_are_not_found_exit_2() {
    let (env, a, pkg) = ed25519_env("a", "p");
    env.sign(&pkg, &[&a], &[]).ok();
    let missing = Key {
        private: env.path("nope.pem"),
        public: env.path("nope.pub"),
        fingerprint: String::new(),
    };
    let gone = env.path("gone.tgz");

    env.sign(&gone, &[&a], &["--json"])
        .fails_with(2, "FILE_NOT_FOUND");
    assert!(!env.path("gone.tgz.sig").exists());
    env.sign(&pkg, &[&missing], &["--output", "x.sig", "--json"])
        .fails_with(2, "FILE_NOT_FOUND");
    env.verify(&gone, &[&a], &[])
        .fails_with(2, "FILE_NOT_FOUND");
    env.verify(&pkg, &[&missing], &[])
        .fails_with(2, "FILE_NOT_FOUND");
    env.verify(&pkg, &[&a], &["--signature", "nope.sig"])
        .fails_with(2, "FILE_NOT_FOUND");
    env.verify(&pkg, &[], &["--trusted-keys", "no-such-dir"])
        .fails_with(2, "FILE_NOT_FOUND");
    env.run([
        "sign-package",
        "--package",
        "p",
        "--keys-dir",
        "no-such-dir",
        "--output",
        "y.sig",
        "--json",
    ])
    .fails_with(2, "FILE_NOT_FOUND");
    let run = env.verify(&pkg, &[&a], &["--signature", "nope.sig"]);
    assert_eq!(run.json()["verified"], false);
    // A package whose .sig is missing.
    let unsigned = env.package("unsigned");
    env.verify(&unsigned, &[&a], &[])
        .fails_with(2, "FILE_NOT_FOUND");
    assert!(!env.path("x.sig").exists() && !env.path("y.sig").exists());
}

#[test]
fn a_directory_where_a_file_is_expected() {
    let (env, a, pkg) = ed25519_env("a", "p");
    env.sign(&pkg, &[&a], &[]).ok();
    let d = env.path("adir");
    std::fs::create_dir(&d).unwrap();
    chmod(&d, 0o755);
    let dkey = Key {
        private: d.clone(),
        public: d.clone(),
        fingerprint: String::new(),
    };
    env.sign(&d, &[&a], &["--json"]).fails_with(2, "NOT_A_FILE");
    env.sign(&pkg, &[&dkey], &["--output", "x.sig", "--json"])
        .fails_with(2, "NOT_A_FILE");
    env.verify(&d, &[&a], &["--signature", "p.sig"])
        .fails_with(2, "NOT_A_FILE");
    env.verify(&pkg, &[&a], &["--signature", "adir"])
        .fails_with(2, "NOT_A_FILE");
    env.verify(&pkg, &[&dkey], &[]).fails_with(2, "NOT_A_FILE");
    // --output naming a directory: refused, the directory is untouched.
    env.sign(&pkg, &[&a], &["--output", "adir", "--json"])
        .fails_with(2, "NOT_A_FILE");
    assert!(d.is_dir());
    // A file where a directory is expected.
    env.verify(&pkg, &[], &["--trusted-keys", "p"])
        .fails_with(2, "USAGE");
    let run = env
        .run([
            "sign-package",
            "--package",
            "p",
            "--keys-dir",
            "p",
            "--json",
        ])
        .fails(2);
    assert_eq!(run.json()["ok"], false);
}

#[test]
fn output_onto_a_fifo_is_refused_not_renamed_over() {
    let (env, a, pkg) = ed25519_env("a", "p");
    mkfifo(&env.path("fifo.sig"));
    env.sign(&pkg, &[&a], &["--output", "fifo.sig", "--json"])
        .fails_with(2, "NOT_A_FILE");
    let ft = std::fs::symlink_metadata(env.path("fifo.sig"))
        .unwrap()
        .file_type();
    use std::os::unix::fs::FileTypeExt;
    assert!(ft.is_fifo(), "the FIFO was replaced");
}

#[test]
fn keys_given_the_wrong_way_round() {
    let (env, a, pkg) = ed25519_env("a", "p");
    env.sign(&pkg, &[&a], &[]).ok();
    let swapped = Key {
        private: a.public.clone(),
        public: a.private.clone(),
        fingerprint: String::new(),
    };
    chmod(&a.public, 0o600);
    env.sign(&pkg, &[&swapped], &["--output", "x.sig", "--json"])
        .fails_with(2, "KEY_MALFORMED");
    env.verify(&pkg, &[&swapped], &[])
        .fails_with(2, "KEY_MALFORMED");
    // Not a key at all.
    env.write("junk.pem", "hello\n");
    chmod(&env.path("junk.pem"), 0o600);
    let junk = Key {
        private: env.path("junk.pem"),
        public: env.path("junk.pem"),
        fingerprint: String::new(),
    };
    env.sign(&pkg, &[&junk], &["--output", "x.sig", "--json"])
        .fails_with(2, "KEY_MALFORMED");
    env.verify(&pkg, &[&junk], &[])
        .fails_with(2, "KEY_MALFORMED");
    assert!(!env.path("x.sig").exists());
}

#[test]
fn odd_file_names_and_empty_packages() {
    let env = Env::new();
    let ed = env.keygen("ed", Alg::Ed25519);
    let rsa = env.keygen("rsa", Alg::Rsa);
    for name in [
        "päckage ünïcode.tar.gz",
        "with spaces -- and dashes.zip",
        "日本語.deb",
        "-leading-dash",
    ] {
        let pkg = env.package(name);
        env.sign(&pkg, &[&ed, &rsa], &[]).ok();
        assert!(env.path(format!("{name}.sig")).is_file());
        env.verify(&pkg, &[&ed, &rsa], &["--threshold", "2"])
            .verified();
    }
    // Empty packages, both formats, both algorithms.
    for (k, format) in [
        (&ed, "pkgsign"),
        (&rsa, "pkgsign"),
        (&ed, "raw"),
        (&rsa, "raw"),
    ] {
        let pkg = env.write("empty", "");
        env.sign(&pkg, &[k], &["--format", format]).ok();
        env.verify(&pkg, &[k], &[]).verified();
        env.write("empty", "x");
        env.verify(&pkg, &[k], &[]).refused("SIGNATURE_INVALID");
    }
}

#[test]
fn keygen_never_overwrites_without_force() {
    let env = Env::new();
    let first = env.keygen("k", Alg::Ed25519);
    let pem = std::fs::read(&first.private).unwrap();
    let public = std::fs::read(&first.public).unwrap();
    env.run(["keygen", "--output-dir", "keys", "--name", "k", "--json"])
        .fails_with(2, "ALREADY_EXISTS");
    assert_eq!(std::fs::read(&first.private).unwrap(), pem);
    assert_eq!(std::fs::read(&first.public).unwrap(), public);
    // Only the .pub existing is refused too, and writes no .pem.
    std::fs::remove_file(&first.private).unwrap();
    env.run(["keygen", "--output-dir", "keys", "--name", "k", "--json"])
        .fails_with(2, "ALREADY_EXISTS");
    assert!(!first.private.exists());
    std::fs::write(&first.private, &pem).unwrap();
    chmod(&first.private, 0o600);

    // --force replaces both, atomically, with the right modes.
    let run = env
        .run(["keygen", "--output-dir", "keys", "--name", "k", "--force"])
        .ok();
    let out = run.out();
    let new_fp = out.trim();
    assert_ne!(new_fp, first.fingerprint);
    assert_ne!(std::fs::read(&first.private).unwrap(), pem);
    assert_eq!(mode(&first.private), 0o600);
    assert_eq!(mode(&first.public), 0o644);
    let pkg = env.package("p");
    env.sign(&pkg, &[&first], &[]).ok();
    let v = env.verify(&pkg, &[&first], &[]).verified().json();
    assert_eq!(v["signatures"][0]["key"].as_str(), Some(new_fp));
    assert!(leftovers(&env.path("keys")).is_empty());
}

#[test]
fn keygen_never_writes_through_a_symlink() {
    let env = Env::new();
    std::fs::create_dir(env.path("keys")).unwrap();
    let target = env.write("elsewhere/important", "do not touch\n");
    let link = env.path("keys/k.pem");
    symlink(&target, &link).unwrap();
    // Without --force: refused, nothing written anywhere.
    env.run(["keygen", "--output-dir", "keys", "--name", "k", "--json"])
        .fails_with(2, "ALREADY_EXISTS");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "do not touch\n");
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    assert!(!env.path("keys/k.pub").exists());
    // A dangling symlink is refused too.
    let dangling = env.path("keys/d.pub");
    symlink(env.path("elsewhere/nothing"), &dangling).unwrap();
    env.run(["keygen", "--output-dir", "keys", "--name", "d", "--json"])
        .fails_with(2, "ALREADY_EXISTS");
    assert!(!env.path("elsewhere/nothing").exists());

    // With --force: the link is replaced by a regular file; its target is untouched.
    env.run(["keygen", "--output-dir", "keys", "--name", "k", "--force"])
        .ok();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "do not touch\n");
    let meta = std::fs::symlink_metadata(&link).unwrap();
    assert!(meta.is_file() && !meta.is_symlink());
    assert_eq!(mode(&link), 0o600);
    assert_eq!(mode(&target), 0o644, "the target's mode is untouched");
    env.run(["keygen", "--output-dir", "keys", "--name", "d", "--force"])
        .ok();
    assert!(!env.path("elsewhere/nothing").exists());
    assert!(leftovers(&env.path("keys")).is_empty());
}

#[test]
fn a_failed_signing_writes_no_sig_and_keeps_the_old_one() {
    let env = Env::new();
    let good = env.keygen("good", Alg::Ed25519);
    let good2 = env.keygen("good2", Alg::Rsa);
    let loose = env.keygen("loose", Alg::Ed25519);
    chmod(&loose.private, 0o644);
    env.write(
        "junk.pem",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    chmod(&env.path("junk.pem"), 0o600);
    let junk = Key {
        private: env.path("junk.pem"),
        public: env.path("junk.pem"),
        fingerprint: String::new(),
    };
    let pkg = env.package("p.tgz");
    let sig = env.path("p.tgz.sig");

    // One bad key among several: no .sig at all.
    for bad in [&loose, &junk] {
        let run = env.sign(&pkg, &[&good, bad, &good2], &["--json"]);
        assert_eq!(run.code, 2, "{run:#?}");
        run.assert_one_error_line();
        assert!(!sig.exists());
        assert!(leftovers(env.dir.path()).is_empty());
    }

    // An existing .sig is left exactly as it was.
    env.sign(&pkg, &[&good], &[]).ok();
    let before = std::fs::read(&sig).unwrap();
    for bad in [&loose, &junk] {
        let run = env.sign(&pkg, &[&good2, bad], &[]);
        assert_eq!(run.code, 2, "{run:#?}");
        assert_eq!(std::fs::read(&sig).unwrap(), before);
    }
    // Also when the failure comes late: a second signing that fails on the
    // raw format's one-key rule, and a package that vanished.
    env.sign(&pkg, &[&good, &good2], &["--format", "raw"]);
    assert_eq!(std::fs::read(&sig).unwrap(), before);
    env.sign(&env.path("gone"), &[&good], &["--output", "p.tgz.sig"])
        .fails(2);
    assert_eq!(std::fs::read(&sig).unwrap(), before);
    env.verify(&pkg, &[&good], &[]).verified();
    assert!(leftovers(env.dir.path()).is_empty());

    // A successful re-signing replaces it (atomically: no temp file left).
    env.sign(&pkg, &[&good, &good2], &[]).ok();
    assert_ne!(std::fs::read(&sig).unwrap(), before);
    env.verify(&pkg, &[&good, &good2], &["--threshold", "2"])
        .verified();
    assert!(leftovers(env.dir.path()).is_empty());
}

#[test]
fn sig_output_replaces_a_symlink_not_its_target() {
    let (env, a, pkg) = ed25519_env("a", "p");
    let target = env.write("elsewhere/t", "keep\n");
    symlink(&target, env.path("p.sig")).unwrap();
    env.sign(&pkg, &[&a], &[]).ok();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep\n");
    assert!(
        !std::fs::symlink_metadata(env.path("p.sig"))
            .unwrap()
            .is_symlink()
    );
    env.verify(&pkg, &[&a], &[]).verified();
}

/// A raw Ed25519 signature is over the bare bytes: if pkgsign raw-signed a
/// "package" that is a pkgsign statement, the signature would verify as a
/// pkgsign-format signature of another package. pkgsign refuses to make it.
#[test]
fn raw_ed25519_refuses_to_sign_a_statement() {
    let (env, k, victim) = ed25519_env("k", "victim.tar.gz");
    let data = std::fs::read(&victim).unwrap();
    use sha2::Digest as _;
    let statement = format!(
        "pkgsign package signature v1\0algorithm: ed25519\nkey: {}\ndigest: sha256:{}\nsize: {}\nsigned-at: 2026-01-01T00:00:00Z\n",
        k.fingerprint,
        hex::encode(sha2::Sha256::digest(&data)),
        data.len()
    );
    let bait = env.write("bait.bin", &statement);
    env.sign(&bait, &[&k], &["--format", "raw", "--json"])
        .fails_with(2, "USAGE");
    assert!(!env.path("bait.bin.sig").exists());
    // The pkgsign format signs such a file like any other.
    env.sign(&bait, &[&k], &[]).ok();
    env.verify(&bait, &[&k], &[]).verified();
}

#[test]
fn output_naming_the_package_is_refused() {
    let (env, k, pkg) = ed25519_env("k", "p.tar.gz");
    let before = std::fs::read(&pkg).unwrap();
    let run = env.sign(&pkg, &[&k], &["--output", pkg.to_str().unwrap(), "--json"]);
    assert_eq!(run.code, 2, "{run:#?}");
    run.assert_one_error_line();
    assert_eq!(std::fs::read(&pkg).unwrap(), before);
}

/// A FIFO renamed in and out over the package path (an atomic exchange with
/// a regular file, in a loop) while verify-package runs many times: every
/// run ends quickly, either verified (it got the file) or refused as not a
/// regular file. Before the open was made non-blocking and judged on the
/// descriptor, about 1 run in 400 opened the FIFO and waited for a writer
/// that never came.
#[test]
fn package_swapped_with_a_fifo_never_hangs_verification() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;
    let (env, key, pkg) = ed25519_env("k", "pkg");
    env.sign(&pkg, &[&key], &[]).ok();
    let fifo = env.path("swap");
    mkfifo(&fifo);
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, dir) = (stop.clone(), env.dir.path().to_path_buf());
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::SeqCst) {
                rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    dir.join("pkg"),
                    rustix::fs::CWD,
                    dir.join("swap"),
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .expect("renameat2(RENAME_EXCHANGE)");
                swaps += 1;
            }
            swaps
        })
    };
    let (mut verified, mut refused) = (0, 0);
    for _ in 0..300 {
        let mut argv = common::args(["verify-package", "--json", "--package"]);
        argv.push(pkg.clone().into());
        argv.extend(common::args(["--signature"]));
        argv.push(env.path("pkg.sig").into());
        argv.extend(common::args(["--public-key"]));
        argv.push(key.public.clone().into());
        // A hang is a test failure: capture kills and panics after 10 s.
        let run = common::pkgsign_t(env.dir.path(), argv, None, Duration::from_secs(10));
        match run.code {
            0 => verified += 1,
            2 => {
                assert_eq!(run.json()["code"], "NOT_A_FILE", "{run:#?}");
                refused += 1;
            }
            _ => panic!("unexpected outcome: {run:#?}"),
        }
    }
    stop.store(true, Ordering::SeqCst);
    let swaps = swapper.join().unwrap();
    assert!(swaps > 300, "the swap loop barely ran ({swaps} swaps)");
    assert!(
        verified > 0 && refused > 0,
        "{verified} verified, {refused} refused"
    );
}

/// Users name packages through symlinks (`current.tar.gz ->
/// app-1.2.tar.gz`), as they do with sha256sum and openssl: followed.
#[test]
fn package_named_through_a_symlink_still_verifies() {
    let (env, key, pkg) = ed25519_env("k", "app-1.2.tar.gz");
    symlink("app-1.2.tar.gz", env.path("current.tar.gz")).unwrap();
    env.sign(&env.path("current.tar.gz"), &[&key], &[]).ok();
    env.verify(&env.path("current.tar.gz"), &[&key], &[])
        .verified();
    let sig = env.path("current.tar.gz.sig");
    env.verify_sig(&pkg, &sig, &[&key]).verified();
}

/// A dangling symlink planted at a directory's lock file would make
/// pkgsign (often run as root) create its target: any file anywhere. The
/// lock is opened with O_NOFOLLOW: refused (exit 2, a clear message), and
/// the target is never created.
#[test]
fn dangling_symlink_at_the_lock_file_is_refused_and_its_target_not_created() {
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let tdir = env.path("trusted");
    std::fs::create_dir(&tdir).unwrap();
    chmod(&tdir, 0o755);
    let victim = env.path("victim-created-by-pkgsign");
    symlink(&victim, tdir.join(".pkgsign.lock")).unwrap();
    let mut argv = common::args(["trust", "add"]);
    argv.push(tdir.clone().into());
    argv.push(key.public.clone().into());
    argv.push("--json".into());
    let run = env.run(argv).fails_with(2, "IO_ERROR");
    assert!(run.stderr.contains("symlink"), "{run:#?}");
    assert!(
        std::fs::symlink_metadata(&victim).is_err(),
        "pkgsign created the symlink's target"
    );
    assert!(
        std::fs::symlink_metadata(tdir.join(".pkgsign.lock"))
            .unwrap()
            .is_symlink()
    );
}

/// `--private-key KEY.pub` is a mix-up of the two files, not a permissions
/// problem: say so and name KEY.pem, instead of asking for `chmod 600` on a
/// public key.
#[test]
fn public_key_given_as_private_key_is_named_as_such() {
    let (env, ed, pkg) = ed25519_env("ed", "p");
    let swapped = Key {
        private: ed.public.clone(),
        ..ed.clone()
    };
    assert_eq!(mode(&ed.public), 0o644);
    let run = env
        .sign(&pkg, &[&swapped], &["--json"])
        .fails_with(2, "KEY_MALFORMED");
    assert!(run.stderr.contains("holds a public key"), "{run:#?}");
    assert!(run.stderr.contains("ed.pem"), "{run:#?}");
    assert!(!run.stderr.contains("chmod"), "{run:#?}");
    // PKCS#1 RSA public keys and OpenSSH public key lines too.
    let dir = env.dir.path();
    openssl_rsa(dir, 2048, "r.pem");
    tool_ok(
        dir,
        "openssl",
        ["rsa", "-in", "r.pem", "-RSAPublicKey_out", "-out", "r.pub"],
    );
    chmod(&env.path("r.pub"), 0o644);
    env.write("s.pub", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMh9d9jm0qbKQXUvJnm6EUmS2Ur2cTf5FbpXQyqv2XfK user@host\n");
    for name in ["r.pub", "s.pub"] {
        let k = Key {
            private: env.path(name),
            ..ed.clone()
        };
        let run = env.sign(&pkg, &[&k], &[]).code(2);
        assert!(
            run.stderr.contains("holds a public key"),
            "{name}: {run:#?}"
        );
    }
    assert!(!env.path("p.sig").exists());
}

/// Comments are shown to whoever verifies: every character must display.
/// Invisible and blank ones (tags, soft hyphen, Hangul fillers, zero-width
/// and bidirectional controls, BOM, variation selectors, odd spaces,
/// private use, unassigned) could make two different comments look alike.
/// Refused when signing (exit 2) and when reading a signature file
/// (SIGNATURE_MALFORMED, exit 1, before any signature is checked).
#[test]
fn invisible_characters_in_comments_are_refused() {
    let (env, key, pkg) = ed25519_env("k", "p");
    env.sign(&pkg, &[&key], &["--comment", "release X 1.0"])
        .ok();
    let signed = std::fs::read_to_string(env.path("p.sig")).unwrap();
    let invisible = [
        '\u{E0041}',
        '\u{E0001}',
        '\u{E007F}',
        '\u{00AD}',
        '\u{3164}',
        '\u{115F}',
        '\u{1160}',
        '\u{FFA0}',
        '\u{2800}',
        '\u{200B}',
        '\u{200C}',
        '\u{200D}',
        '\u{200E}',
        '\u{200F}',
        '\u{202A}',
        '\u{202E}',
        '\u{2066}',
        '\u{2069}',
        '\u{FEFF}',
        '\u{FE0F}',
        '\u{E0100}',
        '\u{034F}',
        '\u{180E}',
        '\u{2060}',
        '\u{00A0}',
        '\u{2003}',
        '\u{3000}',
        '\u{2028}',
        '\u{2029}',
        '\u{E000}',
        '\u{F0000}',
        '\u{0378}',
        '\u{1D173}',
    ];
    for c in invisible {
        let comment = format!("release {c} 1.0");
        let run = env.sign(
            &pkg,
            &[&key],
            &["--json", "--comment", &comment, "--output", "bad.sig"],
        );
        let run = run.fails_with(2, "USAGE");
        assert!(
            run.stderr.contains("does not display"),
            "U+{:04X}: {run:#?}",
            c as u32
        );
        assert!(!env.path("bad.sig").exists());
        // The same character in a signature file someone else wrote.
        let forged = signed.replace("release X 1.0", &comment);
        let sig = env.write("forged.sig", forged);
        env.verify_sig(&pkg, &sig, &[&key])
            .refused("SIGNATURE_MALFORMED");
    }
    // A combining mark with nothing to combine with is refused; after a
    // letter, it is text (e + U+0301 is é).
    env.sign(&pkg, &[&key], &["--comment", "\u{0301}x"]).code(2);
    env.sign(&pkg, &[&key], &["--comment", "a \u{0301}x"])
        .code(2);
    for ok in [
        "cafe\u{0301} 1.0",
        "版本 1.0 — ünïcode ✓",
        "Ελληνικά, עברית, हिन्दी",
    ] {
        env.sign(&pkg, &[&key], &["--comment", ok]).ok();
        env.verify(&pkg, &[&key], &[]).verified();
    }
}

/// RSA keys outside 2048..=8192 bits are KEY_TOO_WEAK, as the docs promise,
/// in every encoding (PKCS#8 and PKCS#1 private, SPKI and PKCS#1 public),
/// also when the rsa crate's own decoder would refuse them first (512 bits,
/// and more than 8192 bits), which used to say KEY_MALFORMED.
#[test]
fn rsa_keys_of_512_and_over_8192_bits_are_too_weak_in_every_encoding() {
    use base64::Engine as _;
    let env = Env::new();
    let dir = env.dir.path();
    let good = env.keygen("good", Alg::Ed25519);
    let pkg = env.package("p");
    env.sign(&pkg, &[&good], &[]).ok();
    openssl_rsa(dir, 512, "w8.pem");
    tool_ok(
        dir,
        "openssl",
        ["rsa", "-in", "w8.pem", "-traditional", "-out", "w1.pem"],
    );
    tool_ok(
        dir,
        "openssl",
        ["pkey", "-in", "w8.pem", "-pubout", "-out", "w8.pub"],
    );
    tool_ok(
        dir,
        "openssl",
        [
            "rsa",
            "-in",
            "w8.pem",
            "-RSAPublicKey_out",
            "-out",
            "w1.pub",
        ],
    );
    // A 8200-bit public key (SPKI and PKCS#1) and a PKCS#1 private key of
    // that size, built from made-up numbers: the size alone must refuse them.
    let n = format!("0x{}", "F".repeat(2050));
    env.write(
        "big-spki.cnf",
        format!("asn1=SEQUENCE:spki\n[spki]\nalg=SEQUENCE:alg\nkey=BITWRAP,SEQUENCE:rsakey\n[alg]\noid=OID:rsaEncryption\nnull=NULL\n[rsakey]\nn=INTEGER:{n}\ne=INTEGER:65537\n"),
    );
    env.write(
        "big-pkcs1.cnf",
        format!("asn1=SEQUENCE:rsakey\n[rsakey]\nn=INTEGER:{n}\ne=INTEGER:65537\n"),
    );
    env.write(
        "big-private.cnf",
        format!("asn1=SEQUENCE:k\n[k]\nv=INTEGER:0\nn=INTEGER:{n}\ne=INTEGER:65537\nd=INTEGER:{n}\np=INTEGER:{n}\nq=INTEGER:{n}\ndp=INTEGER:{n}\ndq=INTEGER:{n}\nqi=INTEGER:{n}\n"),
    );
    for (cnf, label, out) in [
        ("big-spki.cnf", "PUBLIC KEY", "big8.pub"),
        ("big-pkcs1.cnf", "RSA PUBLIC KEY", "big1.pub"),
        ("big-private.cnf", "RSA PRIVATE KEY", "big1.pem"),
    ] {
        tool_ok(
            dir,
            "openssl",
            ["asn1parse", "-genconf", cnf, "-noout", "-out", "key.der"],
        );
        let der = std::fs::read(env.path("key.der")).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        env.write(
            out,
            format!(
                "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
                lines.join("\n")
            ),
        );
    }
    for (private, bits) in [("w8.pem", "512"), ("w1.pem", "512"), ("big1.pem", "8200")] {
        chmod(&env.path(private), 0o600);
        let k = Key {
            private: env.path(private),
            ..good.clone()
        };
        let run = env
            .sign(&pkg, &[&k], &["--json", "--output", "x.sig"])
            .fails_with(2, "KEY_TOO_WEAK");
        assert!(run.stderr.contains(bits), "{private}: {run:#?}");
    }
    for (public, bits) in [
        ("w8.pub", "512"),
        ("w1.pub", "512"),
        ("big8.pub", "8200"),
        ("big1.pub", "8200"),
    ] {
        let k = Key {
            public: env.path(public),
            ..good.clone()
        };
        let run = env.verify(&pkg, &[&k], &[]).fails_with(2, "KEY_TOO_WEAK");
        assert!(run.stderr.contains(bits), "{public}: {run:#?}");
    }
}

#[test]
fn a_block_that_did_not_count_beside_a_valid_one_is_warned_about() {
    let env = Env::new();
    let a = env.keygen("a", Alg::Ed25519);
    let b = env.keygen("b", Alg::Ed25519);
    let pkg = env.package("p");
    env.sign(&pkg, &[&a, &b], &[]).ok();
    // Only A is trusted: the package verifies, and B's block is named.
    let run = env.verify(&pkg, &[&a], &[]).verified();
    let want = format!(
        "warning: {}: signature 2 of 2 (key {}) did not count: ",
        pkg.display(),
        b.fingerprint
    );
    assert!(run.stderr.starts_with(&want), "{run:#?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:#?}");
    assert_eq!(run.json()["signatures"][1]["refusal"], "KEY_NOT_TRUSTED");
    // Both trusted: nothing to warn about.
    let run = env.verify(&pkg, &[&a, &b], &[]).verified();
    assert_eq!(run.stderr, "", "{run:#?}");

    // The same for the signature over a checksum list.
    let digest = String::from_utf8(tool_ok(env.dir.path(), "sha256sum", ["p"])).unwrap();
    let list = env.write("SHA256SUMS", digest);
    env.sign(&list, &[&a, &b], &[]).ok();
    let run = env
        .run([
            "verify-manifest",
            list.to_str().unwrap(),
            "--public-key",
            a.public.to_str().unwrap(),
            "--quiet",
        ])
        .ok();
    let want = format!(
        "warning: {}: signature 2 of 2 (key {}) did not count: ",
        list.display(),
        b.fingerprint
    );
    assert!(run.stderr.starts_with(&want), "{run:#?}");
}

#[test]
fn group_or_world_writable_signing_keys_are_refused_unless_insecure_permissions() {
    let env = Env::new();
    env.rotate(&["--init"]);
    let pkg = env.package("p");
    let sig = env.path("p.sig");
    let keys = env.keys();
    let keys_toml = keys.join(pkgsign::trust::meta::KEYS_FILE);
    assert!(keys_toml.exists());
    for (path, loose, tight) in [
        (&keys, 0o777, 0o700),
        (&keys, 0o1777, 0o700),
        (&keys_toml, 0o666, 0o644),
    ] {
        chmod(path, loose);
        let run = env
            .run(env.sign_dir_args(&pkg, None))
            .fails_with(2, "KEY_PERMISSIONS");
        assert!(
            run.stderr
                .contains(&format!("chmod go-w {}", path.display())),
            "{run:#?}"
        );
        assert!(!sig.exists());
        env.run(env.rotate_args(&[]))
            .fails_with(2, "KEY_PERMISSIONS");
        let mut args = env.sign_dir_args(&pkg, None);
        args.push("--insecure-permissions".into());
        env.run(args).ok();
        std::fs::remove_file(&sig).unwrap();
        chmod(path, tight);
    }
    env.run(env.sign_dir_args(&pkg, None)).ok();
}

//! Scenario tests of the real binary: keygen, sign-package and
//! verify-package round trips, as the contract describes them.

use crate::common;

use std::path::Path;

use base64::Engine as _;
use common::{Alg, Env, Key, leftovers, mode, sig_blocks};
use serde_json::Value;
use sha2::Digest as _;

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

fn sha256_hex(p: &Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(p).unwrap()))
}

/// The `key` fields of the valid signatures of a verify `--json` report.
fn valid_keys(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v["signatures"]
        .as_array()
        .expect("a signatures array")
        .iter()
        .filter(|s| s["refusal"].is_null())
        .map(|s| s["key"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    keys
}

fn round_trip(alg: Alg) {
    let env = Env::new();
    let key = env.keygen("release", alg);
    let pkg = env.package("x.tar.gz");
    let run = env.sign(&pkg, &[&key], &[]).ok();
    // x.tar.gz signs to x.tar.gz.sig: the suffix is appended, never replaced.
    let sig = env.path("x.tar.gz.sig");
    assert!(sig.is_file(), "{run:#?}");
    assert!(!env.path("x.tar.sig").exists() && !env.path("x.sig").exists());
    assert!(run.out().contains(&key.fingerprint), "{run:#?}");

    let text = read(&sig);
    let (header, blocks) = sig_blocks(&text);
    assert_eq!(header, "pkgsign-signature v1");
    assert_eq!(blocks.len(), 1);
    let scheme = match alg {
        Alg::Ed25519 => "ed25519",
        Alg::Rsa => "rsa-pss-sha256",
    };
    assert!(blocks[0].starts_with(&format!("algorithm: {scheme}\n")));
    assert!(blocks[0].contains(&format!("key: {}\n", key.fingerprint)));
    assert!(blocks[0].contains(&format!("digest: sha256:{}\n", sha256_hex(&pkg))));
    let size = std::fs::metadata(&pkg).unwrap().len();
    assert!(blocks[0].contains(&format!("size: {size}\n")));

    let v = env.verify(&pkg, &[&key], &[]).verified().json();
    assert_eq!(valid_keys(&v), vec![key.fingerprint.clone()]);
    assert_eq!(
        v["package_hash"].as_str(),
        Some(format!("sha256:{}", sha256_hex(&pkg)).as_str())
    );

    // Without --json: exit 0 and one line naming the key.
    let mut c = env.cmd();
    c.args(["verify-package", "--package"])
        .arg(&pkg)
        .arg("--public-key")
        .arg(&key.public);
    let run = common::run(c).ok();
    assert_eq!(run.out().lines().count(), 1, "{run:#?}");
    assert!(run.out().contains(&key.fingerprint), "{run:#?}");
    assert!(leftovers(env.dir.path()).is_empty());
}

#[test]
fn ed25519_round_trip() {
    round_trip(Alg::Ed25519);
}

#[test]
fn rsa_round_trip() {
    round_trip(Alg::Rsa);
}

#[test]
fn several_private_keys_give_one_sig_with_one_block_each() {
    let env = Env::new();
    let ed = env.keygen("ed", Alg::Ed25519);
    let rsa = env.keygen("rsa", Alg::Rsa);
    let ed2 = env.keygen("ed2", Alg::Ed25519);
    let pkg = env.package("app-1.0.tar.gz");
    env.sign(&pkg, &[&ed, &rsa, &ed2], &["--json"]).ok();
    let sig = env.path("app-1.0.tar.gz.sig");
    let (_, blocks) = sig_blocks(&read(&sig));
    assert_eq!(blocks.len(), 3);
    for (b, k) in blocks.iter().zip([&ed, &rsa, &ed2]) {
        assert!(b.contains(&format!("key: {}\n", k.fingerprint)), "{b}");
    }

    // Each key alone verifies its own block; the others are not trusted.
    for k in [&ed, &rsa, &ed2] {
        let v = env.verify(&pkg, &[k], &[]).verified().json();
        assert_eq!(valid_keys(&v), vec![k.fingerprint.clone()]);
        assert_eq!(v["valid_keys"], 1);
    }
    // All three: threshold 3 met, 4 not.
    env.verify(&pkg, &[&ed, &rsa, &ed2], &["--threshold", "3"])
        .verified();
    let v = env
        .verify(&pkg, &[&ed, &rsa, &ed2], &["--threshold", "4"])
        .refused("THRESHOLD_NOT_MET")
        .json();
    assert_eq!(v["valid_keys"], 3);
    assert_eq!(v["threshold"], 4);
}

#[test]
fn keys_dir_signs_with_every_key() {
    let env = Env::new();
    let a = env.keygen_in("kd", "a", Alg::Ed25519);
    let b = env.keygen_in("kd", "b", Alg::Rsa);
    let pkg = env.package("p.bin");
    env.run(["sign-package", "--package", "p.bin", "--keys-dir", "kd"])
        .ok();
    let (_, blocks) = sig_blocks(&read(&env.path("p.bin.sig")));
    assert_eq!(blocks.len(), 2);
    env.verify(&pkg, &[&a, &b], &["--threshold", "2"])
        .verified();

    // An empty keys directory is an error (exit 2), and writes nothing.
    std::fs::create_dir(env.path("empty")).unwrap();
    env.package("q.bin");
    env.run([
        "sign-package",
        "--package",
        "q.bin",
        "--keys-dir",
        "empty",
        "--json",
    ])
    .fails_with(2, "NO_KEYS");
    assert!(!env.path("q.bin.sig").exists());
}

#[test]
fn public_key_repeated_and_trusted_keys_dir() {
    let env = Env::new();
    let a = env.keygen("a", Alg::Ed25519);
    let b = env.keygen("b", Alg::Rsa);
    let c = env.keygen("c", Alg::Ed25519);
    let pkg = env.package("p.tgz");
    env.sign(&pkg, &[&a, &b], &[]).ok();

    // --public-key repeated: all of them count.
    let v = env
        .verify(&pkg, &[&a, &b, &c], &["--threshold", "2"])
        .verified()
        .json();
    assert_eq!(valid_keys(&v), {
        let mut k = vec![a.fingerprint.clone(), b.fingerprint.clone()];
        k.sort();
        k
    });
    // Only c trusted: refused, the signers are unknown.
    env.verify(&pkg, &[&c], &[]).refused("KEY_NOT_TRUSTED");

    // --trusted-keys DIR: every *.pub in it.
    let tdir = env.path("trusted");
    std::fs::create_dir(&tdir).unwrap();
    for k in [&a, &b, &c] {
        std::fs::copy(&k.public, tdir.join(k.public.file_name().unwrap())).unwrap();
    }
    let v = env
        .verify(
            &pkg,
            &[],
            &["--trusted-keys", "trusted", "--threshold", "2"],
        )
        .verified()
        .json();
    assert_eq!(v["valid_keys"], 2);
    env.verify(
        &pkg,
        &[],
        &["--trusted-keys", "trusted", "--threshold", "3"],
    )
    .refused("THRESHOLD_NOT_MET");

    // A trusted-keys directory without the signers' keys refuses.
    let other = env.path("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::copy(&c.public, other.join("c.pub")).unwrap();
    env.verify(&pkg, &[], &["--trusted-keys", "other"])
        .refused("KEY_NOT_TRUSTED");
}

#[test]
fn threshold_counts_distinct_keys_only() {
    let env = Env::new();
    let a = env.keygen("a", Alg::Ed25519);
    let r = env.keygen("r", Alg::Rsa);
    let pkg = env.package("p.tar");
    // Two signature files over the same package by the same key, with
    // different comments so that the blocks differ.
    env.sign(&pkg, &[&a], &["--output", "one.sig", "--comment", "first"])
        .ok();
    env.sign(&pkg, &[&a], &["--output", "two.sig", "--comment", "second"])
        .ok();
    let (header, one) = sig_blocks(&read(&env.path("one.sig")));
    let (_, two) = sig_blocks(&read(&env.path("two.sig")));
    assert_ne!(one[0], two[0]);
    let twice = format!("{header}\n{}{}", one[0], two[0]);
    let twice = env.write("twice.sig", twice);

    // Each block alone is valid ...
    let v = env.verify_sig(&pkg, &twice, &[&a]).verified().json();
    assert_eq!(v["signatures"].as_array().unwrap().len(), 2);
    assert!(
        v["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["refusal"].is_null())
    );
    assert_eq!(v["valid_keys"], 1);
    // ... but one key counts once.
    let run = env.verify(
        &pkg,
        &[&a],
        &["--signature", "twice.sig", "--threshold", "2"],
    );
    let v = run.refused("THRESHOLD_NOT_MET").json();
    assert_eq!(v["valid_keys"], 1);

    // The same key listed twice as trusted does not count twice either.
    env.verify(
        &pkg,
        &[&a, &a],
        &["--signature", "twice.sig", "--threshold", "2"],
    )
    .refused("THRESHOLD_NOT_MET");

    // A second, distinct key reaches the threshold.
    env.sign(&pkg, &[&r], &["--output", "r.sig"]).ok();
    let (_, rb) = sig_blocks(&read(&env.path("r.sig")));
    env.write(
        "three.sig",
        format!("{header}\n{}{}{}", one[0], two[0], rb[0]),
    );
    env.verify(
        &pkg,
        &[&a, &r],
        &["--signature", "three.sig", "--threshold", "2"],
    )
    .verified();

    // Signing with the same key twice is refused (exit 2), nothing written.
    env.sign(&pkg, &[&a, &a], &["--output", "dup.sig", "--json"])
        .fails_with(2, "USAGE");
    assert!(!env.path("dup.sig").exists());
}

#[test]
fn threshold_zero_is_a_usage_error() {
    let env = Env::new();
    let a = env.keygen("a", Alg::Ed25519);
    let pkg = env.package("p");
    env.sign(&pkg, &[&a], &[]).ok();
    let run = env.verify(&pkg, &[&a], &["--threshold", "0"]).fails(2);
    assert_eq!(run.json()["verified"], false);
}

#[test]
fn comment_is_signed_and_shown_on_one_line() {
    let env = Env::new();
    let a = env.keygen("a", Alg::Ed25519);
    let pkg = env.package("p.deb");
    let comment = "release 2.4.1 — built by CI job #881";
    env.sign(&pkg, &[&a], &["--comment", comment]).ok();
    assert!(read(&env.path("p.deb.sig")).contains(&format!("\ncomment: {comment}\n")));

    let mut c = env.cmd();
    c.args(["verify-package", "--package", "p.deb", "--public-key"])
        .arg(&a.public);
    let run = common::run(c).ok();
    assert_eq!(run.out().lines().count(), 1, "{run:#?}");
    assert!(run.out().contains(comment), "{run:#?}");
    assert!(run.out().contains(&a.fingerprint), "{run:#?}");

    let v = env.verify(&pkg, &[&a], &[]).verified().json();
    assert_eq!(v["signatures"][0]["comment"].as_str(), Some(comment));

    // Comments that could disguise what is shown are refused at signing.
    for bad in [
        "two\nlines",
        "bell\u{7}",
        "evil \u{202E}gpj.exe",
        " padded",
        "",
    ] {
        env.sign(
            &pkg,
            &[&a],
            &["--comment", bad, "--output", "bad.sig", "--json"],
        )
        .fails_with(2, "USAGE");
        assert!(!env.path("bad.sig").exists());
    }
}

/// `--hash`: the digest written is the package's (computed here with the
/// hash crates directly), it verifies, and it still catches a change.
#[test]
fn hash_sha512_and_other_signature_hashes() {
    let env = Env::new();
    type HashFn = fn(&[u8]) -> String;
    let cases: [(&str, HashFn); 3] = [
        ("sha512", |d| hex::encode(sha2::Sha512::digest(d))),
        ("blake3", |d| blake3::hash(d).to_hex().to_string()),
        ("sha3-256", |d| hex::encode(sha3::Sha3_256::digest(d))),
    ];
    for alg in [Alg::Ed25519, Alg::Rsa] {
        let k = env.keygen(&format!("{alg:?}"), alg);
        for (hash, f) in cases {
            let name = format!("{alg:?}-{hash}.pkg");
            let pkg = env.package(&name);
            env.sign(&pkg, &[&k], &["--hash", hash]).ok();
            let expected = f(&std::fs::read(&pkg).unwrap());
            let text = read(&env.path(format!("{name}.sig")));
            assert!(
                text.contains(&format!("\ndigest: {hash}:{expected}\n")),
                "{text}"
            );
            env.verify(&pkg, &[&k], &[]).verified();
            let mut data = std::fs::read(&pkg).unwrap();
            data[100] ^= 1;
            std::fs::write(&pkg, data).unwrap();
            env.verify(&pkg, &[&k], &[]).refused("SIGNATURE_INVALID");
        }
    }
    // Broken hashes are never used for a signature.
    let k = env.keygen("k", Alg::Ed25519);
    let pkg = env.package("weak.pkg");
    for hash in ["md5", "sha1", "crc32"] {
        env.sign(&pkg, &[&k], &["--hash", hash, "--json"])
            .fails_with(2, "USAGE");
        assert!(!env.path("weak.pkg.sig").exists());
    }
}

#[test]
fn json_reports_verified_true_and_false() {
    let env = Env::new();
    let a = env.keygen("a", Alg::Ed25519);
    let b = env.keygen("b", Alg::Ed25519);
    let pkg = env.package("p");
    let v = env.sign(&pkg, &[&a], &["--json"]).ok().json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["keys"][0].as_str(), Some(a.fingerprint.as_str()));
    assert_eq!(
        v["package_hash"].as_str(),
        Some(format!("sha256:{}", sha256_hex(&pkg)).as_str())
    );

    let v = env.verify(&pkg, &[&a], &[]).verified().json();
    assert_eq!(v["verified"], Value::Bool(true));
    let v = env
        .verify(&pkg, &[&b], &[])
        .refused("KEY_NOT_TRUSTED")
        .json();
    assert_eq!(v["verified"], Value::Bool(false));
    assert_eq!(v["signatures"][0]["refusal"], "KEY_NOT_TRUSTED");
}

#[test]
fn raw_format_round_trips() {
    let env = Env::new();
    for alg in [Alg::Ed25519, Alg::Rsa] {
        let k = env.keygen(&format!("{alg:?}"), alg);
        let other = env.keygen(&format!("{alg:?}-other"), alg);
        let pkg = env.package(&format!("{alg:?}.tar.gz"));
        env.sign(&pkg, &[&k], &["--format", "raw"]).ok();
        let sig = env.path(format!("{alg:?}.tar.gz.sig"));
        let text = read(&sig);
        // Base64 of the bare signature and a newline, nothing else.
        let body = text.strip_suffix('\n').expect("ends with a newline");
        assert!(!body.contains(['\n', '\r', ' ']));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        assert_eq!(bytes.len(), if alg == Alg::Ed25519 { 64 } else { 256 });

        let v = env.verify(&pkg, &[&other, &k], &[]).verified().json();
        assert_eq!(valid_keys(&v), vec![k.fingerprint.clone()]);
        env.verify(&pkg, &[&other], &[])
            .refused("SIGNATURE_INVALID");
    }
    // Raw holds one signature only.
    let a = env.keygen("a", Alg::Ed25519);
    let b = env.keygen("b", Alg::Ed25519);
    let pkg = env.package("two");
    env.sign(&pkg, &[&a, &b], &["--format", "raw", "--json"])
        .fails_with(2, "USAGE");
    assert!(!env.path("two.sig").exists());
}

#[test]
fn checksum_option() {
    let env = Env::new();
    let a = env.keygen("a", Alg::Ed25519);
    let pkg = env.package("p");
    env.sign(&pkg, &[&a], &[]).ok();
    let hex = sha256_hex(&pkg);
    let good = format!("sha256:{hex}");
    let wrong = format!("sha256:{}", "0".repeat(64));

    env.verify(&pkg, &[&a], &["--checksum", &good]).verified();
    env.verify(&pkg, &[&a], &["--checksum", &hex]).verified();
    env.verify(&pkg, &[&a], &["--checksum", &wrong])
        .refused("CHECKSUM_MISMATCH");
    // With no key, only the digest is checked.
    env.verify(&pkg, &[], &["--checksum", &good]).verified();
    env.verify(&pkg, &[], &["--checksum", &wrong])
        .refused("CHECKSUM_MISMATCH");
    // A malformed checksum is a usage error.
    env.verify(&pkg, &[], &["--checksum", "sha256:abc"])
        .fails_with(2, "USAGE");
    // Nothing to verify against.
    env.verify(&pkg, &[], &[]).fails_with(2, "USAGE");
}

#[test]
fn keygen_writes_pkcs8_0600_and_spki_0644() {
    let env = Env::new();
    for alg in [Alg::Ed25519, Alg::Rsa] {
        let k = env.keygen(&format!("{alg:?}"), alg);
        assert_eq!(mode(&k.private), 0o600);
        assert_eq!(mode(&k.public), 0o644);
        assert!(read(&k.private).starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(read(&k.public).starts_with("-----BEGIN PUBLIC KEY-----\n"));
    }
    // The directory is created private; the default name is signing-key.
    let run = env
        .run(["keygen", "--output-dir", "fresh/sub", "--json"])
        .ok();
    let v = run.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["algorithm"], "ed25519");
    assert_eq!(v["encrypted"], false);
    assert!(env.path("fresh/sub/signing-key.pem").is_file());
    assert_eq!(mode(&env.path("fresh/sub")), 0o700);
    // The default RSA size is 3072 bits.
    // (Not generated here: it is slow; --bits outside the list is refused.)
    env.run([
        "keygen",
        "--output-dir",
        "k",
        "--algorithm",
        "rsa",
        "--bits",
        "1024",
        "--json",
    ])
    .fails_with(2, "USAGE");
    env.run(["keygen", "--output-dir", "k", "--bits", "2048", "--json"])
        .fails_with(2, "USAGE");
    for bad in ["../escape", ".hidden", "a/b", ""] {
        env.run(["keygen", "--output-dir", "k", "--name", bad, "--json"])
            .fails_with(2, "USAGE");
    }
    assert!(!env.path("escape.pem").exists());
}

#[test]
fn fingerprint_printed_by_keygen_is_the_one_in_signatures() {
    let env = Env::new();
    let k: Key = env.keygen("k", Alg::Ed25519);
    let pkg = env.package("p");
    env.sign(&pkg, &[&k], &[]).ok();
    assert!(read(&env.path("p.sig")).contains(&format!("\nkey: {}\n", k.fingerprint)));
}

#[test]
fn usage_errors_are_one_line_with_exit_2() {
    let env = Env::new();
    env.package("p");
    for args in [
        vec!["sign-package", "--private-key", "k.pem"],
        vec!["verify-package", "--package", "p", "--threshold", "many"],
        vec![
            "sign-package",
            "--package",
            "p",
            "--private-key",
            "k",
            "--format",
            "xml",
        ],
        vec!["no-such-command"],
        vec!["keygen"],
        vec!["verify-package", "--package", "p", "--no-such-flag"],
    ] {
        env.run(&args).fails(2);
        // With --json, also one JSON object.
        let mut args = args.clone();
        args.push("--json");
        let run = env.run(&args).fails_with(2, "USAGE");
        if args[0] == "verify-package" {
            assert_eq!(run.json()["verified"], false);
        }
    }
    // --help works for every subcommand.
    for sub in ["keygen", "sign-package", "verify-package"] {
        let run = env.run([sub, "--help"]).ok();
        assert!(run.out().contains("Usage"), "{run:#?}");
    }
}

/// A signer whose clock is before 1970 used to write `signed-at:
/// 1970-01-01T00:00:00Z`, a false signed time. Refused: exit 2,
/// CLOCK_WRONG, a message about the clock, and no `.sig`.
#[test]
fn signing_with_a_clock_before_1970_is_refused() {
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let pkg = env.package("p");
    let mut cmd = common::tool_cmd(env.dir.path(), "faketime", ["1969-12-31 00:00:00"]);
    cmd.arg(common::bin());
    cmd.args(common::sign_args(&pkg, &[&key.private], &["--json"]));
    let run = common::run(cmd).fails_with(2, "CLOCK_WRONG");
    assert!(run.stderr.contains("clock"), "{run:#?}");
    assert!(!env.path("p.sig").exists());
    // The same command with a sane fake clock signs (faketime works here).
    let mut cmd = common::tool_cmd(env.dir.path(), "faketime", ["2030-01-01 00:00:00"]);
    cmd.arg(common::bin());
    cmd.args(common::sign_args(&pkg, &[&key.private], &[]));
    common::run(cmd).ok();
    assert!(read(&env.path("p.sig")).contains("signed-at: 2030-01-01T00:00:"));
}

/// `docs/signature-format.md`, the section a second implementation is
/// written from.
fn format_doc() -> String {
    read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/signature-format.md"))
}

/// The rows `| `NAME` | ... | HEX-DIGITS |` of the digest table (§1.5).
fn doc_digest_rows(doc: &str) -> Vec<(String, usize)> {
    let start = doc
        .find("### 1.5 Digest algorithms")
        .expect("the doc has a section 1.5 Digest algorithms");
    let section = &doc[start..];
    let end = section[4..].find("\n#").map_or(section.len(), |e| e + 4);
    section[..end]
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let name = cells[0].trim_end_matches('`').to_string();
            let hex: usize = cells
                .iter()
                .rev()
                .find(|c| !c.is_empty())
                .and_then(|c| c.parse().ok())
                .expect("the last column gives the hex digits");
            (name, hex)
        })
        .collect()
}

/// A second implementation written from the spec must accept every
/// signature pkgsign writes: the digest algorithms the doc lists are exactly
/// those the code accepts for signatures, and for each one the binary
/// writes `digest: NAME:HEX` with the documented number of hex digits and
/// verifies it.
#[test]
fn signature_format_doc_lists_exactly_the_digests_pkgsign_signs_with() {
    use pkgsign::digest::HashAlg;
    let rows = doc_digest_rows(&format_doc());
    let mut documented: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
    documented.sort();
    let mut accepted: Vec<&str> = HashAlg::ALL
        .iter()
        .filter(|a| a.fit_for_signatures())
        .map(|a| a.name())
        .collect();
    accepted.sort();
    assert_eq!(
        documented, accepted,
        "docs/signature-format.md §1.5 vs the code"
    );
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let pkg = env.package("p");
    for (name, hex_len) in &rows {
        env.sign(&pkg, &[&key], &["--hash", name]).ok();
        let text = read(&env.path("p.sig"));
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("digest: "))
            .expect("a digest line");
        let hex = line
            .strip_prefix(&format!("{name}:"))
            .unwrap_or_else(|| panic!("--hash {name} wrote {line}"));
        assert_eq!(hex.len(), *hex_len, "{name}: {line}");
        assert!(
            hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "{line}"
        );
        env.verify(&pkg, &[&key], &[]).verified();
    }
    // The insecure ones stay out of signatures.
    for name in ["md5", "sha1"] {
        env.sign(&pkg, &[&key], &["--hash", name]).code(2);
    }
}

/// The worked example of the doc (§7) is the committed signature, byte for
/// byte, and it verifies with the example's trusted keys.
#[test]
fn signature_format_doc_worked_example_verifies() {
    let doc = format_doc();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let marker = "This is the committed `keys-example/example-package.tar.gz.sig`, verbatim";
    let after = &doc[doc.find(marker).expect("the worked example")..];
    let block = after.split("```\n").nth(1).expect("a code block after it");
    assert_eq!(
        block,
        read(&root.join("keys-example/example-package.tar.gz.sig")),
        "the doc's example is not the committed signature"
    );
    let env = Env::new();
    let mut argv = common::args(["verify-package", "--json", "--package"]);
    argv.push(root.join("keys-example/example-package.tar.gz").into());
    argv.push("--trusted-keys".into());
    argv.push(root.join("keys-example/trusted").into());
    let run = env.run(argv).verified();
    assert_eq!(run.json()["valid_keys"], 2, "{run:#?}");
}

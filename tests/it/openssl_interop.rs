//! Interoperability with the real `openssl` binary (3.0 or later). These
//! tests fail, never skip, when openssl is missing: interop is part of the
//! contract.
//!
//! Besides keys and raw signatures in both directions, they check that the
//! pkgsign format is implementable by a second implementation: openssl
//! verifies pkgsign's statement signatures, and a `.sig` assembled here with
//! openssl alone (no pkgsign code) verifies with `pkgsign verify-package`.

use crate::common;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use common::{Alg, Env, Key, OPENSSL_PSS_OPTS, Run, chmod, sign_args, tool, tool_ok};
use sha2::Digest as _;

const PASS: &str = "open sesame 42";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The statement prefix from docs/signature-format.md.
const CONTEXT: &[u8] = b"pkgsign package signature v1\0";

fn openssl(env: &Env, args: &[&str]) -> Vec<u8> {
    tool_ok(env.dir.path(), "openssl", args)
}

fn openssl_ok(env: &Env, args: &[&str]) -> bool {
    tool(env.dir.path(), "openssl", args).code == 0
}

/// `openssl pkeyutl -verify` of the Ed25519 signature file `sig` (raw
/// bytes) over `file` with the public key `public`: true when it verifies.
fn openssl_verifies_ed25519(env: &Env, public: &Path, sig: &str, file: &str) -> bool {
    openssl_ok(
        env,
        &[
            "pkeyutl",
            "-verify",
            "-rawin",
            "-pubin",
            "-inkey",
            public.to_str().unwrap(),
            "-sigfile",
            sig,
            "-in",
            file,
        ],
    )
}

/// A package `p.tar.gz` and the pkgsign keys `rsa` (RSA) and `ed` (Ed25519).
fn package_and_keys(env: &Env) -> (PathBuf, Key, Key) {
    let pkg = env.package("p.tar.gz");
    let rsa = env.keygen("rsa", Alg::Rsa);
    let ed = env.keygen("ed", Alg::Ed25519);
    (pkg, rsa, ed)
}

/// `SHA256:` + unpadded base64 of the SHA-256 of the SPKI DER, computed
/// with openssl from a public key file, independently of pkgsign.
fn openssl_fingerprint(env: &Env, public: &Path) -> String {
    let p = public.to_str().unwrap();
    let mut args = vec![
        "pkey", "-pubin", "-in", p, "-outform", "DER", "-out", "spki.der",
    ];
    if std::fs::read_to_string(public)
        .unwrap()
        .contains("BEGIN RSA PUBLIC KEY")
    {
        // openssl pkey reads PKCS#1 public keys through `rsa`.
        args = vec![
            "rsa",
            "-RSAPublicKey_in",
            "-in",
            p,
            "-pubout",
            "-outform",
            "DER",
            "-out",
            "spki.der",
        ];
    }
    openssl(env, &args);
    let hash = openssl(env, &["dgst", "-sha256", "-binary", "spki.der"]);
    assert_eq!(hash.len(), 32);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash)
    )
}

/// Write a private key made by openssl (mode 0600) and its SPKI public key.
fn openssl_key(env: &Env, name: &str, gen_args: &[&str], passin: Option<&str>) -> Key {
    let private = env.path(format!("{name}.pem"));
    let public = env.path(format!("{name}.pub"));
    // `-out` right after the command: openssl stops reading options at the
    // first operand (the bit count of genrsa).
    let mut args: Vec<&str> = vec![gen_args[0], "-out", private.to_str().unwrap()];
    args.extend(&gen_args[1..]);
    openssl(env, &args);
    chmod(&private, 0o600);
    let pass_arg = passin.map(|p| format!("pass:{p}"));
    let mut args = vec!["pkey", "-in", private.to_str().unwrap(), "-pubout"];
    if let Some(p) = &pass_arg {
        args.extend(["-passin", p]);
    }
    args.extend(["-out", public.to_str().unwrap()]);
    openssl(env, &args);
    let fingerprint = openssl_fingerprint(env, &public);
    Key {
        private,
        public,
        fingerprint,
    }
}

fn first_line(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string()
}

/// sign-package with `PKGSIGN_PASSPHRASE` set when `pass` is given.
fn sign_with(env: &Env, pkg: &Path, key: &Key, pass: Option<&str>, extra: &[&str]) -> Run {
    let mut c = env.cmd();
    if let Some(p) = pass {
        c.env("PKGSIGN_PASSPHRASE", p);
    }
    c.args(sign_args(pkg, &[&key.private], extra));
    common::run(c)
}

#[test]
fn openssl_private_keys_load_and_sign() {
    let env = Env::new();
    let pkg = env.package("p.tar.gz");
    let enc = ["-aes-256-cbc", "-pass"];
    let pass_arg = format!("pass:{PASS}");
    let cases: Vec<(&str, Vec<&str>, &str, bool)> = vec![
        (
            "ed",
            vec!["genpkey", "-algorithm", "ed25519"],
            "-----BEGIN PRIVATE KEY-----",
            false,
        ),
        (
            "rsa",
            vec![
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
            "-----BEGIN PRIVATE KEY-----",
            false,
        ),
        (
            "ed-enc",
            vec![
                "genpkey",
                "-algorithm",
                "ed25519",
                enc[0],
                enc[1],
                &pass_arg,
            ],
            "-----BEGIN ENCRYPTED PRIVATE KEY-----",
            true,
        ),
        (
            "rsa-enc",
            vec![
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                enc[0],
                enc[1],
                &pass_arg,
            ],
            "-----BEGIN ENCRYPTED PRIVATE KEY-----",
            true,
        ),
    ];
    let mut keys = Vec::new();
    for (name, args, label, encrypted) in &cases {
        let pass = encrypted.then_some(PASS);
        let key = openssl_key(&env, name, args, pass);
        assert_eq!(&first_line(&key.private), label);
        keys.push((key, pass));
    }

    // PKCS#1 (`openssl genrsa -traditional`), and PKCS#8 encrypted from it
    // and from an Ed25519 key with `openssl pkcs8 -topk8 -v2 aes-256-cbc`.
    let pkcs1 = openssl_key(&env, "rsa-pkcs1", &["genrsa", "-traditional", "2048"], None);
    assert_eq!(
        first_line(&pkcs1.private),
        "-----BEGIN RSA PRIVATE KEY-----"
    );
    for (from, to) in [("rsa-pkcs1", "rsa-topk8"), ("ed", "ed-topk8")] {
        openssl(
            &env,
            &[
                "pkcs8",
                "-topk8",
                "-v2",
                "aes-256-cbc",
                "-in",
                &format!("{from}.pem"),
                "-passout",
                &pass_arg,
                "-out",
                &format!("{to}.pem"),
            ],
        );
        chmod(&env.path(format!("{to}.pem")), 0o600);
        assert_eq!(
            first_line(&env.path(format!("{to}.pem"))),
            "-----BEGIN ENCRYPTED PRIVATE KEY-----"
        );
        let source = keys
            .iter()
            .map(|(k, _)| k)
            .chain([&pkcs1])
            .find(|k| k.private.ends_with(format!("{from}.pem")))
            .unwrap()
            .clone();
        keys.push((
            Key {
                private: env.path(format!("{to}.pem")),
                ..source
            },
            Some(PASS),
        ));
    }
    keys.push((pkcs1, None));

    for (i, (key, pass)) in keys.iter().enumerate() {
        let out = format!("{i}.sig");
        sign_with(&env, &pkg, key, *pass, &["--output", &out]).ok();
        let text = std::fs::read_to_string(env.path(&out)).unwrap();
        // The key named in the signature is the fingerprint openssl computes.
        assert!(
            text.contains(&format!("\nkey: {}\n", key.fingerprint)),
            "{}: {text}",
            key.private.display()
        );
        env.verify_sig(&pkg, &env.path(&out), &[key]).verified();
        if let Some(p) = pass {
            let wrong = format!("{p}-not");
            sign_with(
                &env,
                &pkg,
                key,
                Some(&wrong),
                &["--output", "x.sig", "--json"],
            )
            .fails_with(2, "PASSPHRASE_WRONG");
            sign_with(&env, &pkg, key, None, &["--output", "x.sig", "--json"])
                .fails_with(2, "PASSPHRASE_REQUIRED");
            assert!(!env.path("x.sig").exists());
        }
    }
}

#[test]
fn legacy_encrypted_keys_are_refused_with_exit_2() {
    let env = Env::new();
    let pkg = env.package("p");
    let pass_arg = format!("pass:{PASS}");
    // Legacy PEM encryption (Proc-Type: 4,ENCRYPTED).
    openssl(
        &env,
        &[
            "genrsa",
            "-traditional",
            "-aes256",
            "-passout",
            &pass_arg,
            "-out",
            "legacy.pem",
            "2048",
        ],
    );
    // PBES1-era PKCS#12 PBE (3DES, SHA-1).
    openssl(
        &env,
        &["genpkey", "-algorithm", "ed25519", "-out", "ed.pem"],
    );
    openssl(
        &env,
        &[
            "pkcs8",
            "-topk8",
            "-v1",
            "PBE-SHA1-3DES",
            "-in",
            "ed.pem",
            "-passout",
            &pass_arg,
            "-out",
            "pbes1.pem",
        ],
    );
    for name in ["legacy.pem", "pbes1.pem"] {
        chmod(&env.path(name), 0o600);
        let key = Key {
            private: env.path(name),
            public: env.path(name),
            fingerprint: String::new(),
        };
        let run = sign_with(&env, &pkg, &key, Some(PASS), &["--json"]).fails(2);
        let code = run.json()["code"].as_str().unwrap().to_string();
        assert_eq!(code, "KEY_UNSUPPORTED", "{name}: {run:#?}");
        assert!(
            run.stderr.contains("openssl pkcs8 -topk8 -v2 aes-256-cbc"),
            "{name}: the error says how to convert the key: {run:#?}"
        );
        assert!(!env.path("p.sig").exists());
    }
}

#[test]
fn pkcs1_public_key_loads_for_verify() {
    let env = Env::new();
    let pkg = env.package("p");
    let key = env.keygen("k", Alg::Rsa);
    openssl(
        &env,
        &[
            "rsa",
            "-in",
            key.private.to_str().unwrap(),
            "-RSAPublicKey_out",
            "-out",
            "pkcs1.pub",
        ],
    );
    assert_eq!(
        first_line(&env.path("pkcs1.pub")),
        "-----BEGIN RSA PUBLIC KEY-----"
    );
    let pkcs1 = Key {
        public: env.path("pkcs1.pub"),
        ..key.clone()
    };
    // Same key, same fingerprint, whatever the encoding.
    assert_eq!(openssl_fingerprint(&env, &pkcs1.public), key.fingerprint);
    env.sign(&pkg, &[&key], &["--output", "p.sig"]).ok();
    env.sign(&pkg, &[&key], &["--output", "p.raw", "--format", "raw"])
        .ok();
    let v = env
        .verify_sig(&pkg, &env.path("p.sig"), &[&pkcs1])
        .verified()
        .json();
    assert_eq!(
        v["signatures"][0]["key"].as_str(),
        Some(key.fingerprint.as_str())
    );
    env.verify_sig(&pkg, &env.path("p.raw"), &[&pkcs1])
        .verified();
    // In a trusted-keys directory too.
    std::fs::create_dir(env.path("trusted")).unwrap();
    std::fs::copy(&pkcs1.public, env.path("trusted/pkcs1.pub")).unwrap();
    env.verify(
        &pkg,
        &[],
        &["--signature", "p.sig", "--trusted-keys", "trusted"],
    )
    .verified();
}

#[test]
fn raw_signatures_made_by_openssl_verify() {
    let env = Env::new();
    let (pkg, rsa, ed) = package_and_keys(&env);
    let p = pkg.to_str().unwrap();

    openssl(
        &env,
        &[
            "dgst",
            "-sha256",
            "-sign",
            rsa.private.to_str().unwrap(),
            "-out",
            "rsa.bin",
            p,
        ],
    );
    openssl(
        &env,
        &[
            "pkeyutl",
            "-sign",
            "-rawin",
            "-inkey",
            ed.private.to_str().unwrap(),
            "-in",
            p,
            "-out",
            "ed.bin",
        ],
    );
    for (bin, key, other) in [("rsa.bin", &rsa, &ed), ("ed.bin", &ed, &rsa)] {
        let sig = std::fs::read(env.path(bin)).unwrap();
        // One line of base64 (base64 -w0 and a newline) ...
        let one = env.write(format!("{bin}.sig"), format!("{}\n", B64.encode(&sig)));
        // ... or as `openssl base64` wraps it, 64 columns.
        openssl(
            &env,
            &["base64", "-in", bin, "-out", &format!("{bin}.wrapped")],
        );
        let wrapped = env.path(format!("{bin}.wrapped"));
        for s in [&one, &wrapped] {
            let v = env.verify_sig(&pkg, s, &[other, key]).verified().json();
            assert_eq!(
                v["signatures"][0]["key"].as_str(),
                Some(key.fingerprint.as_str())
            );
            env.verify_sig(&pkg, s, &[other])
                .refused("SIGNATURE_INVALID");
        }
    }
    // A changed package no longer verifies.
    let mut data = std::fs::read(&pkg).unwrap();
    data[10] ^= 1;
    std::fs::write(&pkg, data).unwrap();
    env.verify_sig(&pkg, &env.path("rsa.bin.sig"), &[&rsa])
        .refused("SIGNATURE_INVALID");
    env.verify_sig(&pkg, &env.path("ed.bin.sig"), &[&ed])
        .refused("SIGNATURE_INVALID");
}

#[test]
fn raw_signatures_made_by_pkgsign_verify_in_openssl() {
    let env = Env::new();
    let (pkg, rsa, ed) = package_and_keys(&env);
    let p = pkg.to_str().unwrap();
    for (k, out) in [(&rsa, "rsa.sig"), (&ed, "ed.sig")] {
        env.sign(&pkg, &[k], &["--format", "raw", "--output", out])
            .ok();
        let text = std::fs::read_to_string(env.path(out)).unwrap();
        let bin = B64.decode(text.trim_end_matches('\n')).unwrap();
        std::fs::write(env.path(format!("{out}.bin")), bin).unwrap();
    }
    let rsa_verify = |file: &str| {
        openssl_ok(
            &env,
            &[
                "dgst",
                "-sha256",
                "-verify",
                rsa.public.to_str().unwrap(),
                "-signature",
                "rsa.sig.bin",
                file,
            ],
        )
    };
    let ed_verify = |file: &str| openssl_verifies_ed25519(&env, &ed.public, "ed.sig.bin", file);
    assert!(rsa_verify(p), "openssl rejects pkgsign's raw RSA signature");
    assert!(
        ed_verify(p),
        "openssl rejects pkgsign's raw Ed25519 signature"
    );
    // The checks can fail: openssl refuses them over other bytes.
    let other = env.package("other");
    assert!(!rsa_verify(other.to_str().unwrap()));
    assert!(!ed_verify(other.to_str().unwrap()));
}

#[test]
fn keys_written_by_pkgsign_open_in_openssl() {
    let env = Env::new();
    let ed = env.keygen("ed", Alg::Ed25519);
    let rsa = env.keygen("rsa", Alg::Rsa);
    let mut c = env.cmd();
    c.env("PKGSIGN_PASSPHRASE", PASS)
        .args(["keygen", "--output-dir", "keys", "--name", "enc"]);
    let enc_fp = common::run(c).ok().out().trim().to_string();
    let mut c = env.cmd();
    c.env("PKGSIGN_PASSPHRASE", PASS).args([
        "keygen",
        "--output-dir",
        "keys",
        "--name",
        "enc-rsa",
        "--algorithm",
        "rsa",
        "--bits",
        "2048",
    ]);
    let enc_rsa_fp = common::run(c).ok().out().trim().to_string();
    let pass_arg = format!("pass:{PASS}");

    for (name, fp, encrypted) in [
        ("ed", ed.fingerprint.as_str(), false),
        ("rsa", rsa.fingerprint.as_str(), false),
        ("enc", enc_fp.as_str(), true),
        ("enc-rsa", enc_rsa_fp.as_str(), true),
    ] {
        let private = format!("keys/{name}.pem");
        let public = format!("keys/{name}.pub");
        let mut args = vec!["pkey", "-in", private.as_str(), "-pubout"];
        if encrypted {
            args.extend(["-passin", pass_arg.as_str()]);
            // The wrong passphrase does not open it, and fails in decryption
            // (not, say, because the file is unreadable): usually the CBC
            // padding is wrong ("bad decrypt"); about one time in 256 the
            // garbage ends in valid padding and the DER parse fails instead
            // (an ASN.1 error). The same case pkgsign maps to
            // PASSPHRASE_WRONG (`a_wrong_passphrase_is_wrong_even_when_the_padding_happens_to_fit`).
            let wrong = tool(
                env.dir.path(),
                "openssl",
                ["pkey", "-in", &private, "-noout", "-passin", "pass:wrong"],
            );
            assert_ne!(wrong.code, 0, "{wrong:#?}");
            let lower = wrong.stderr.to_ascii_lowercase();
            assert!(
                lower.contains("bad decrypt") || lower.contains("asn1"),
                "{wrong:#?}"
            );
            assert!(
                !lower.contains("no such file") && !lower.contains("permission denied"),
                "{wrong:#?}"
            );
        }
        // openssl derives from the private key exactly the public key file
        // pkgsign wrote.
        let derived = openssl(&env, &args);
        let written = std::fs::read(env.path(&public)).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&derived),
            String::from_utf8_lossy(&written),
            "{name}"
        );
        // The public key opens as SPKI.
        openssl(&env, &["pkey", "-pubin", "-in", &public, "-noout"]);
        // And the fingerprint keygen printed is openssl's.
        assert_eq!(openssl_fingerprint(&env, &env.path(&public)), fp, "{name}");
    }
}

/// The statement lines of the first block of a pkgsign `.sig`: from
/// `algorithm:` through `signed-at:` or `comment:`, and the signature bytes.
fn statement_and_signature(sig_text: &str) -> (Vec<u8>, Vec<u8>) {
    let mut stmt = CONTEXT.to_vec();
    let mut signature = None;
    for line in sig_text.lines().skip(1) {
        if let Some(b64) = line.strip_prefix("signature: ") {
            signature = Some(B64.decode(b64).unwrap());
            break;
        }
        stmt.extend_from_slice(line.as_bytes());
        stmt.push(b'\n');
    }
    (stmt, signature.expect("a signature line"))
}

#[test]
fn pkgsign_statement_signatures_verify_in_openssl() {
    let env = Env::new();
    let (pkg, rsa, ed) = package_and_keys(&env);
    for (k, name) in [(&rsa, "rsa"), (&ed, "ed")] {
        env.sign(
            &pkg,
            &[k],
            &[
                "--output",
                &format!("{name}.sig"),
                "--comment",
                "v1.2.3 nightly",
            ],
        )
        .ok();
        let text = std::fs::read_to_string(env.path(format!("{name}.sig"))).unwrap();
        let (stmt, sig) = statement_and_signature(&text);
        assert!(stmt.ends_with(b"comment: v1.2.3 nightly\n"));
        std::fs::write(env.path(format!("{name}.stmt")), &stmt).unwrap();
        std::fs::write(env.path(format!("{name}.stmt.bin")), &sig).unwrap();
        let mut altered = stmt.clone();
        let last = altered.len() - 2;
        altered[last] ^= 1;
        std::fs::write(env.path(format!("{name}.altered")), &altered).unwrap();
    }
    let pubkey = rsa.public.to_str().unwrap();
    let pss_pkeyutl = |file: &str| {
        let mut argv = vec!["pkeyutl", "-verify", "-pubin", "-inkey", pubkey, "-rawin"];
        argv.extend(OPENSSL_PSS_OPTS);
        argv.extend(["-in", file, "-sigfile", "rsa.stmt.bin"]);
        openssl_ok(&env, &argv)
    };
    let pss_dgst = |file: &str| {
        openssl_ok(
            &env,
            &[
                "dgst",
                "-sha256",
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:32",
                "-sigopt",
                "rsa_mgf1_md:sha256",
                "-verify",
                pubkey,
                "-signature",
                "rsa.stmt.bin",
                file,
            ],
        )
    };
    let ed_pkeyutl = |file: &str| openssl_verifies_ed25519(&env, &ed.public, "ed.stmt.bin", file);
    assert!(pss_pkeyutl("rsa.stmt"), "RSA-PSS statement (pkeyutl)");
    assert!(pss_dgst("rsa.stmt"), "RSA-PSS statement (dgst)");
    assert!(ed_pkeyutl("ed.stmt"), "Ed25519 statement (pkeyutl)");
    assert!(!pss_pkeyutl("rsa.altered"));
    assert!(!pss_dgst("rsa.altered"));
    assert!(!ed_pkeyutl("ed.altered"));
    // A different salt length is not what pkgsign makes.
    assert!(!openssl_ok(
        &env,
        &[
            "dgst",
            "-sha256",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:20",
            "-verify",
            pubkey,
            "-signature",
            "rsa.stmt.bin",
            "rsa.stmt",
        ],
    ));
}

/// Build a pkgsign `.sig` with openssl alone, from the format description.
fn second_implementation_sig(env: &Env, pkg: &Path, key: &Key, rsa: bool, comment: &str) -> String {
    let data = std::fs::read(pkg).unwrap();
    let mut text = format!(
        "algorithm: {}\nkey: {}\ndigest: sha256:{}\nsize: {}\nsigned-at: 2026-03-04T05:06:07Z\n",
        if rsa { "rsa-pss-sha256" } else { "ed25519" },
        key.fingerprint,
        hex::encode(sha2::Sha256::digest(&data)),
        data.len()
    );
    text.push_str(&format!("comment: {comment}\n"));
    let mut stmt = CONTEXT.to_vec();
    stmt.extend_from_slice(text.as_bytes());
    std::fs::write(env.path("second.stmt"), &stmt).unwrap();
    let k = key.private.to_str().unwrap();
    let mut args = vec!["pkeyutl", "-sign", "-inkey", k, "-rawin"];
    if rsa {
        args.extend(OPENSSL_PSS_OPTS);
    }
    args.extend(["-in", "second.stmt", "-out", "second.bin"]);
    openssl(env, &args);
    let sig = std::fs::read(env.path("second.bin")).unwrap();
    format!("{text}signature: {}\n", B64.encode(sig))
}

#[test]
fn a_sig_made_by_a_second_implementation_verifies() {
    let env = Env::new();
    let pkg = env.package("p.tar.gz");
    let rsa = openssl_key(
        &env,
        "rsa",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
        None,
    );
    let ed = openssl_key(&env, "ed", &["genpkey", "-algorithm", "ed25519"], None);
    let rsa_block = second_implementation_sig(&env, &pkg, &rsa, true, "built elsewhere");
    let ed_block = second_implementation_sig(&env, &pkg, &ed, false, "built elsewhere");
    let sig = env.write(
        "p.tar.gz.sig",
        format!("pkgsign-signature v1\n{rsa_block}{ed_block}"),
    );
    let v = env
        .verify(&pkg, &[&rsa, &ed], &["--threshold", "2"])
        .verified()
        .json();
    assert_eq!(v["valid_keys"], 2);
    assert_eq!(v["signatures"][0]["comment"], "built elsewhere");
    assert_eq!(v["signatures"][0]["signed_at"], "2026-03-04T05:06:07Z");

    // The same blocks with one changed field are refused: pkgsign checks
    // exactly the statement the format describes.
    let text = std::fs::read_to_string(&sig).unwrap();
    env.write(
        "altered.sig",
        text.replacen("comment: built elsewhere", "comment: built elsewherE", 1),
    );
    let v = env
        .verify(&pkg, &[&rsa, &ed], &["--signature", "altered.sig"])
        .verified()
        .json();
    assert_eq!(v["valid_keys"], 1);
    assert_eq!(v["signatures"][0]["refusal"], "SIGNATURE_INVALID");
}

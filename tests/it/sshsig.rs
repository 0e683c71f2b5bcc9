//! SSH signatures against the real OpenSSH `ssh-keygen -Y`, both ways:
//! what pkgsign signs (`--format sshsig`) ssh-keygen verifies, and what
//! ssh-keygen signs pkgsign verifies against its trusted keys, with the
//! namespace, the package's bytes and the key's trust each checked.

use std::path::{Path, PathBuf};

use crate::common::{self, Alg, Env, args};

fn ssh_keygen(env: &Env, argv: &[&str], stdin_file: Option<&Path>) -> common::Run {
    let cmd = common::tool_cmd(env.dir.path(), "ssh-keygen", argv);
    let input = stdin_file.map(|f| std::fs::read(f).unwrap());
    common::capture(cmd, input.as_deref(), std::time::Duration::from_secs(60))
}

/// `NAME OPENSSH-KEY` for ssh-keygen's allowed_signers, from pkgsign.
fn allowed_signers(env: &Env, key: &Path) -> PathBuf {
    let mut a = args(["public-key"]);
    a.push(key.into());
    a.push("--openssh".into());
    let line = env.run(a).ok().out().trim().to_string();
    assert!(line.starts_with("ssh-"), "{line}");
    env.write("allowed_signers", format!("signer {line}\n"))
}

fn sign_sshsig(env: &Env, pkg: &Path, key: &Path, extra: &[&str]) -> common::Run {
    let mut a = args(["sign-package", "--package"]);
    a.push(pkg.into());
    a.push("--private-key".into());
    a.push(key.into());
    a.extend(args(["--format", "sshsig"]));
    a.extend(args(extra));
    env.run(a)
}

fn verify(env: &Env, pkg: &Path, sig: &Path, tdir: &Path, extra: &[&str]) -> common::Run {
    let mut a = args(["verify-package", "--package"]);
    a.push(pkg.into());
    a.push("--signature".into());
    a.push(sig.into());
    a.push("--trusted-keys".into());
    a.push(tdir.into());
    a.extend(args(extra));
    env.run(a)
}

#[test]
fn ssh_keygen_verifies_what_pkgsign_signs_and_the_namespace_is_bound() {
    for alg in [Alg::Ed25519, Alg::Rsa] {
        let env = Env::new();
        let key = env.keygen("k", alg);
        let pkg = env.write("app.tar.gz", vec![7u8; 300_000]);
        sign_sshsig(&env, &pkg, &key.private, &[]).ok();
        let sig = common::serve::sig_of(&pkg);
        assert!(
            std::fs::read_to_string(&sig)
                .unwrap()
                .starts_with("-----BEGIN SSH SIGNATURE-----")
        );
        let signers = allowed_signers(&env, &key.public);
        let s = signers.display().to_string();
        let sigs = sig.display().to_string();
        let ok = ssh_keygen(
            &env,
            &[
                "-Y", "verify", "-f", &s, "-I", "signer", "-n", "pkgsign", "-s", &sigs,
            ],
            Some(&pkg),
        );
        assert_eq!(ok.code, 0, "{alg:?}: {ok:?}");
        let nv = ssh_keygen(
            &env,
            &["-Y", "check-novalidate", "-n", "pkgsign", "-s", &sigs],
            Some(&pkg),
        );
        assert_eq!(nv.code, 0, "{nv:?}");
        // Another namespace, or other bytes: ssh-keygen refuses.
        let other_ns = ssh_keygen(
            &env,
            &[
                "-Y", "verify", "-f", &s, "-I", "signer", "-n", "file", "-s", &sigs,
            ],
            Some(&pkg),
        );
        assert_ne!(other_ns.code, 0);
        let bad = env.write("bad.tar.gz", vec![8u8; 300_000]);
        let tampered = ssh_keygen(
            &env,
            &[
                "-Y", "verify", "-f", &s, "-I", "signer", "-n", "pkgsign", "-s", &sigs,
            ],
            Some(&bad),
        );
        assert_ne!(tampered.code, 0);
        // A namespace of one's own.
        sign_sshsig(
            &env,
            &pkg,
            &key.private,
            &["--namespace", "release@example.com", "--output", "ns.sig"],
        )
        .ok();
        let ns = ssh_keygen(
            &env,
            &[
                "-Y",
                "verify",
                "-f",
                &s,
                "-I",
                "signer",
                "-n",
                "release@example.com",
                "-s",
                "ns.sig",
            ],
            Some(&pkg),
        );
        assert_eq!(ns.code, 0, "{ns:?}");
    }
}

#[test]
fn pkgsign_verifies_what_ssh_keygen_signs_against_its_trusted_keys() {
    for (kind, bits) in [("ed25519", None), ("rsa", Some("2048"))] {
        let env = Env::new();
        let mut keygen = vec!["-q", "-t", kind, "-N", "", "-f", "id", "-C", "me"];
        if let Some(b) = bits {
            keygen.extend(["-b", b]);
        }
        assert_eq!(ssh_keygen(&env, &keygen, None).code, 0);
        let pkg = env.write("app.tar.gz", b"release bytes".repeat(1000));
        let s = ssh_keygen(
            &env,
            &["-Y", "sign", "-f", "id", "-n", "pkgsign", "app.tar.gz"],
            None,
        );
        assert_eq!(s.code, 0, "{s:?}");
        let sig = env.path("app.tar.gz.sig");
        // Trusted through `trust add` of the OpenSSH public key.
        let tdir = env.path("trusted");
        std::fs::create_dir(&tdir).unwrap();
        let mut add = args(["trust", "add"]);
        add.push(tdir.clone().into());
        add.push(env.path("id.pub").into());
        env.run(add).ok();
        let v = verify(&env, &pkg, &sig, &tdir, &["--json"]).ok().json();
        assert_eq!(v["verified"], true, "{v}");
        // The wrong namespace, other bytes, an untrusted key: refused.
        verify(&env, &pkg, &sig, &tdir, &["--namespace", "file", "--json"])
            .refused("SIGNATURE_INVALID");
        let bad = env.write("bad.tar.gz", b"release bytez".repeat(1000));
        verify(&env, &bad, &sig, &tdir, &["--json"]).refused("SIGNATURE_INVALID");
        let empty = env.path("empty");
        std::fs::create_dir(&empty).unwrap();
        let other = env.keygen("other", Alg::Ed25519);
        let mut add = args(["trust", "add"]);
        add.push(empty.clone().into());
        add.push(other.public.into());
        env.run(add).ok();
        verify(&env, &pkg, &sig, &empty, &["--json"]).refused("KEY_NOT_TRUSTED");
        // An SSH signature names no release: --name refuses it.
        verify(&env, &pkg, &sig, &tdir, &["--name", "app", "--json"]).refused("NAME_MISMATCH");
    }
}

#[test]
fn trust_add_takes_an_allowed_signers_line_and_a_revoked_ssh_key_is_refused() {
    let env = Env::new();
    assert_eq!(
        ssh_keygen(
            &env,
            &["-q", "-t", "ed25519", "-N", "", "-f", "id", "-C", "me"],
            None
        )
        .code,
        0
    );
    let line = std::fs::read_to_string(env.path("id.pub")).unwrap();
    let signers = env.write(
        "allowed_signers",
        format!("ops@example.com namespaces=\"pkgsign\" {line}"),
    );
    let tdir = env.path("trusted");
    std::fs::create_dir(&tdir).unwrap();
    let mut add = args(["trust", "add"]);
    add.push(tdir.clone().into());
    add.push(signers.into());
    add.extend(args(["--name", "ops", "--json"]));
    let added = env.run(add).ok().json();
    let fp = added["fingerprint"]
        .as_str()
        .or_else(|| added["key"].as_str())
        .unwrap_or_else(|| panic!("{added}"))
        .to_string();
    // The stored key is PEM, as every trusted key.
    let stored = std::fs::read_to_string(tdir.join("ops.pub")).unwrap();
    assert!(stored.starts_with("-----BEGIN PUBLIC KEY-----"), "{stored}");
    let pkg = env.write("app.tar.gz", b"x".repeat(5000));
    assert_eq!(
        ssh_keygen(
            &env,
            &["-Y", "sign", "-f", "id", "-n", "pkgsign", "app.tar.gz"],
            None
        )
        .code,
        0
    );
    let sig = env.path("app.tar.gz.sig");
    verify(&env, &pkg, &sig, &tdir, &[]).ok();
    let mut revoke = args(["trust", "revoke"]);
    revoke.push(tdir.clone().into());
    revoke.push(fp.into());
    env.run(revoke).ok();
    verify(&env, &pkg, &sig, &tdir, &["--json"]).refused("KEY_REVOKED");
    // Garbage that looks like an OpenSSH key is a clear error, exit 2.
    let junk = env.write("junk.pub", "ssh-ed25519 AAAAnotbase64!!! me\n");
    let mut add = args(["trust", "add"]);
    add.push(tdir.into());
    add.push(junk.into());
    add.push("--json".into());
    env.run(add).fails_with(2, "KEY_MALFORMED");
}

#[test]
fn raw_ed25519_never_signs_bytes_that_read_as_an_ssh_signature() {
    // A raw Ed25519 signature over bytes starting with "SSHSIG" would be a
    // valid SSH signature over whatever those bytes say: refused.
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let pkg = env.write("evil.bin", b"SSHSIG\x00\x00\x00\x07pkgsign and more");
    let mut a = args(["sign-package", "--package"]);
    a.push(pkg.into());
    a.push("--private-key".into());
    a.push(key.private.into());
    a.extend(args(["--format", "raw", "--json"]));
    let r = env.run(a);
    assert_eq!(r.code, 2, "{r:?}");
}

/// A user's own SSH key signs as it is: `ssh-keygen` writes Ed25519 keys
/// only in the OpenSSH format (`-m PKCS8` does not convert them), so
/// pkgsign reads that format, plain and passphrase-encrypted, Ed25519 and
/// RSA. What it signs `ssh-keygen -Y verify` accepts (SSH signatures), and
/// `verify-package` accepts against the key's `.pub` (pkgsign format).
/// Refused, each with its code: no passphrase, a wrong one, a KDF cost
/// that would hang the signer, and the key types pkgsign does not use.
#[test]
fn openssh_private_keys_from_ssh_keygen_sign_in_both_formats() {
    let env = Env::new();
    let pkg = env.write("app.tar.gz", b"release bytes".repeat(500));
    let pass = env.write("pass", "correct horse\n");
    common::chmod(&pass, 0o600);
    let cases: [(&str, &[&str], bool); 3] = [
        ("ed", &["-t", "ed25519"], false),
        ("edpw", &["-t", "ed25519", "-N", "correct horse"], true),
        ("rsa", &["-t", "rsa", "-b", "2048"], false),
    ];
    for (name, kind, encrypted) in cases {
        let mut argv = vec!["-q", "-f", name, "-C", "me"];
        argv.extend_from_slice(kind);
        if !encrypted {
            argv.extend(["-N", ""]);
        }
        assert_eq!(ssh_keygen(&env, &argv, None).code, 0);
        let key = env.path(name);
        assert!(
            std::fs::read_to_string(&key)
                .unwrap()
                .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
        );
        let extra: &[&str] = if encrypted {
            &["--passphrase-file", "pass"]
        } else {
            &[]
        };
        // SSH signature, checked by ssh-keygen.
        let sig = format!("{name}.sshsig");
        let mut e = vec!["--output", sig.as_str()];
        e.extend_from_slice(extra);
        sign_sshsig(&env, &pkg, &key, &e).ok();
        let signers = env.write(
            "allowed_signers",
            format!(
                "signer {}",
                std::fs::read_to_string(env.path(format!("{name}.pub"))).unwrap()
            ),
        );
        let ok = ssh_keygen(
            &env,
            &[
                "-Y",
                "verify",
                "-f",
                signers.to_str().unwrap(),
                "-I",
                "signer",
                "-n",
                "pkgsign",
                "-s",
                &sig,
            ],
            Some(&pkg),
        );
        assert_eq!(ok.code, 0, "{name}: {ok:?}");
        // pkgsign format, verified against the OpenSSH .pub.
        let mut a = args(["sign-package", "--package"]);
        a.push(pkg.clone().into());
        a.push("--private-key".into());
        a.push(key.clone().into());
        a.extend(args(["--output", "p.sig"]));
        a.extend(args(extra));
        env.run(a).ok();
        let mut v = args(["verify-package", "--package"]);
        v.push(pkg.clone().into());
        v.extend(args(["--signature", "p.sig", "--json", "--public-key"]));
        v.push(env.path(format!("{name}.pub")).into());
        let json = env.run(v).ok().json();
        assert_eq!(json["verified"], true, "{name}: {json}");
        if encrypted {
            sign_sshsig(&env, &pkg, &key, &["--output", "x.sig", "--json"])
                .fails_with(2, "PASSPHRASE_REQUIRED");
            let wrong = env.write("wrong", "incorrect horse\n");
            common::chmod(&wrong, 0o600);
            sign_sshsig(
                &env,
                &pkg,
                &key,
                &["--output", "x.sig", "--json", "--passphrase-file", "wrong"],
            )
            .fails_with(2, "PASSPHRASE_WRONG");
        }
    }
    assert!(!env.path("x.sig").exists());

    // A KDF cost of 5000 bcrypt rounds (ssh-keygen's default is 16; making
    // such a key takes ssh-keygen a minute, so the rounds of a cheap one
    // are raised) is refused before any round is run; ECDSA is not a
    // pkgsign key type.
    assert_eq!(
        ssh_keygen(
            &env,
            &["-q", "-t", "ed25519", "-N", "x", "-f", "slow"],
            None
        )
        .code,
        0
    );
    set_bcrypt_rounds(&env.path("slow"), 5000);
    assert_eq!(
        ssh_keygen(&env, &["-q", "-t", "ecdsa", "-N", "", "-f", "ec"], None).code,
        0
    );
    for (key, code, words) in [
        ("slow", "KEY_UNSUPPORTED", "5000 bcrypt-pbkdf rounds"),
        ("ec", "KEY_UNSUPPORTED", "ECDSA"),
    ] {
        let start = std::time::Instant::now();
        let r = sign_sshsig(
            &env,
            &pkg,
            &env.path(key),
            &["--output", "x.sig", "--json", "--passphrase-file", "pass"],
        )
        .fails_with(2, code);
        assert!(r.json()["error"].as_str().unwrap().contains(words), "{r:?}");
        assert!(
            start.elapsed().as_secs() < 5,
            "{key}: refused only after {:?}",
            start.elapsed()
        );
    }
}

/// Rewrite the bcrypt-pbkdf rounds of an encrypted OpenSSH private key
/// (PROTOCOL.key: magic, cipher name, KDF name, then the KDF options: the
/// salt and the rounds, big-endian).
fn set_bcrypt_rounds(key: &Path, rounds: u32) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let text = std::fs::read_to_string(key).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut bin = b64.decode(body).unwrap();
    let magic = b"openssh-key-v1\0";
    assert!(bin.starts_with(magic));
    let mut at = magic.len();
    let string = |at: &mut usize| {
        let len = u32::from_be_bytes(bin[*at..*at + 4].try_into().unwrap()) as usize;
        let s = bin[*at + 4..*at + 4 + len].to_vec();
        *at += 4 + len;
        s
    };
    assert_eq!(string(&mut at), b"aes256-ctr");
    assert_eq!(string(&mut at), b"bcrypt");
    let _options_len = &bin[at..at + 4];
    at += 4;
    let _salt = string(&mut at);
    bin[at..at + 4].copy_from_slice(&rounds.to_be_bytes());
    let wrapped: Vec<String> = b64
        .encode(&bin)
        .as_bytes()
        .chunks(70)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    std::fs::write(
        key,
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            wrapped.join("\n")
        ),
    )
    .unwrap();
}

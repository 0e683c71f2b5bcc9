//! Keys that never leave a PKCS#11 token, against a real SoftHSM2 token
//! (one per test, see [`common::token`]): `keygen --pkcs11` makes a
//! sensitive, never-extractable key and writes only `NAME.pub` and the
//! `NAME.pkcs11` pointer; `sign-package --private-key pkcs11:...` makes
//! signatures that pkgsign and openssl verify and that cannot be told from
//! a file key's; every way of not reaching the key is an exit 2 with a
//! stable code and a message that says what exists instead, and the PIN
//! appears nowhere.

use crate::common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use base64::Engine as _;
use common::token::{LABEL, MODULE, PIN, Token};
use common::{Alg, OPENSSL_PSS_OPTS, Run, args, chmod};
use serde_json::Value;
use sha2::Digest as _;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The statement prefix from docs/signature-format.md.
const CONTEXT: &[u8] = b"pkgsign package signature v1\0";

/// `SHA256:` + unpadded base64 of the SHA-256 of the SPKI DER, with the
/// DER made by openssl, independently of pkgsign.
fn openssl_fingerprint(t: &Token, public: &Path) -> String {
    let der = t.tool_ok(
        "openssl",
        args([
            "pkey".as_ref(),
            "-pubin".as_ref(),
            "-in".as_ref(),
            public.as_os_str(),
            "-outform".as_ref(),
            "DER".as_ref(),
        ]),
    );
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(sha2::Sha256::digest(&der))
    )
}

/// The blocks of `pkcs11-tool --list-objects`: a header line
/// (`Private Key Object; RSA`) and its indented lines.
fn objects(listing: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    for line in listing.lines() {
        if line.starts_with(char::is_whitespace) {
            if let Some(b) = blocks.last_mut() {
                b.push_str(line);
                b.push('\n');
            }
        } else if !line.is_empty() {
            blocks.push(format!("{line}\n"));
        }
    }
    blocks
}

/// The `--list-objects` blocks of the private keys labelled `label`.
fn private_keys_labelled(t: &Token, label: &str) -> Vec<String> {
    objects(&t.list_objects())
        .into_iter()
        .filter(|b| {
            b.starts_with("Private Key Object")
                && b.lines()
                    .any(|l| l.trim() == format!("label:      {label}"))
        })
        .collect()
}

/// The sorted names of the files in `dir`.
fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The field names of a pkgsign `.sig`, in order (`algorithm`, `key`, ...),
/// after its header line.
fn fields(sig: &str) -> (String, Vec<String>) {
    let mut lines = sig.lines();
    let header = lines.next().unwrap_or_default().to_string();
    let names = lines
        .map(|l| l.split_once(": ").map_or(l, |(n, _)| n).to_string())
        .collect();
    (header, names)
}

/// The statement of the first signature of a pkgsign `.sig` (the context
/// prefix and the lines before `signature:`) and its signature bytes.
fn statement_and_signature(sig: &str) -> (Vec<u8>, Vec<u8>) {
    let mut stmt = CONTEXT.to_vec();
    for line in sig.lines().skip(1) {
        if let Some(b64) = line.strip_prefix("signature: ") {
            return (stmt, B64.decode(b64).unwrap());
        }
        stmt.extend_from_slice(line.as_bytes());
        stmt.push(b'\n');
    }
    panic!("no signature line in {sig:?}");
}

/// openssl verifies the statement signature of `sig` with `public`: pure
/// Ed25519, or RSA-PSS (SHA-256, MGF1-SHA-256, salt 32).
fn openssl_verifies_statement(t: &Token, sig: &Path, public: &Path, alg: Alg) -> bool {
    let (stmt, bytes) = statement_and_signature(&std::fs::read_to_string(sig).unwrap());
    let stmt_file = t.env.write("stmt", &stmt);
    let bin = t.env.write("stmt.bin", &bytes);
    let mut argv = args(["pkeyutl", "-verify", "-rawin", "-pubin", "-inkey"]);
    argv.push(public.into());
    if alg == Alg::Rsa {
        argv.extend(args(OPENSSL_PSS_OPTS));
    }
    argv.extend(args(["-sigfile".as_ref(), bin.as_os_str()]));
    argv.extend(args(["-in".as_ref(), stmt_file.as_os_str()]));
    t.tool("openssl", argv).code == 0
}

/// `sign-package` of `pkg` with `key` (a URI) and `extra` arguments but no
/// module or PIN (each test adds its own), with `--json`.
fn sign_bare(t: &Token, pkg: &Path, key: &str, extra: &[&str]) -> Run {
    let mut argv = common::sign_args(pkg, &[key], extra);
    argv.push("--json".into());
    t.run(argv)
}

/// `--pin-file FILE` alone.
fn pin_file(t: &Token) -> Vec<std::ffi::OsString> {
    let mut v = args(["--pin-file"]);
    v.push(t.pin_file.clone().into());
    v
}

/// Assert that `needle` appears in none of `runs`' streams nor in `files`.
#[track_caller]
fn nowhere(needle: &str, runs: &[&Run], files: &[&Path]) {
    for r in runs {
        assert!(!r.out().contains(needle), "{needle:?} on stdout: {r:#?}");
        assert!(!r.stderr.contains(needle), "{needle:?} on stderr: {r:#?}");
    }
    for f in files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        assert!(!text.contains(needle), "{needle:?} in {}", f.display());
    }
}

#[test]
fn token_keygen_makes_never_extractable_keys_and_writes_no_private_key_file() {
    let t = Token::new();
    for (name, alg, kind) in [("ed", Alg::Ed25519, "EC_EDWARDS"), ("rsa", Alg::Rsa, "RSA")] {
        let key = t.keygen(name, alg);
        let privates = private_keys_labelled(&t, name);
        assert_eq!(privates.len(), 1, "one private key {name}: {privates:?}");
        let block = &privates[0];
        assert!(
            block.starts_with(&format!("Private Key Object; {kind}")),
            "{block}"
        );
        let access = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("Access:"))
            .unwrap_or_else(|| panic!("no Access line: {block}"));
        let flags: BTreeSet<&str> = access.split(',').map(str::trim).collect();
        assert!(flags.contains("never extractable"), "{block}");
        assert!(flags.contains("sensitive"), "{block}");
        assert!(!flags.contains("extractable"), "{block}");
        // Sign-only: no decrypt, unwrap or derive on the private key.
        let usage = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("Usage:"))
            .unwrap_or_else(|| panic!("no Usage line: {block}"));
        assert_eq!(usage.trim(), "sign", "{block}");
        // The fingerprint keygen printed is the one openssl computes from
        // the .pub, and the .pkcs11 pointer holds the URI and nothing else.
        assert_eq!(openssl_fingerprint(&t, &key.public), key.fingerprint);
        assert_eq!(
            std::fs::read_to_string(t.path(format!("keys/{name}.pkcs11"))).unwrap(),
            format!("{}\n", Token::uri(name))
        );
    }
    assert_eq!(
        names(&t.path("keys")),
        ["ed.pkcs11", "ed.pub", "rsa.pkcs11", "rsa.pub"]
            .map(String::from)
            .into(),
        "only the public keys and the pointers are written"
    );
    for f in names(&t.path("keys")) {
        let text = std::fs::read_to_string(t.path("keys").join(&f)).unwrap();
        assert!(!text.contains("PRIVATE KEY"), "{f}: {text}");
        assert!(!text.contains(PIN), "{f}: {text}");
    }
}

#[test]
fn token_signatures_verify_and_match_file_signatures_in_format() {
    let t = Token::new();
    let pkg = t.env.package("p.tar.gz");
    for (name, alg) in [("ed", Alg::Ed25519), ("rsa", Alg::Rsa)] {
        let token_key = t.keygen(name, alg);
        let file_key = t.env.keygen_in("files", name, alg);
        let token_sig = t.path(format!("{name}.token.sig"));
        let file_sig = t.path(format!("{name}.file.sig"));
        t.sign(
            &pkg,
            &[&token_key],
            &["--output", token_sig.to_str().unwrap()],
        )
        .ok();
        t.env
            .sign(
                &pkg,
                &[&file_key],
                &["--output", file_sig.to_str().unwrap()],
            )
            .ok();

        let by_token = t.env.verify_sig(&pkg, &token_sig, &[&token_key]).verified();
        let by_file = t.env.verify_sig(&pkg, &file_sig, &[&file_key]).verified();
        let sigs = |r: &Run| r.json()["signatures"].as_array().cloned().unwrap();
        let (ts, fs) = (sigs(&by_token), sigs(&by_file));
        assert_eq!(ts.len(), 1, "{by_token:#?}");
        assert_eq!(ts[0]["key"].as_str(), Some(token_key.fingerprint.as_str()));
        assert_eq!(ts[0]["algorithm"], fs[0]["algorithm"], "{name}");
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&ts[0]), keys(&fs[0]), "{name}: same JSON fields");
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert_eq!(
            fields(&read(&token_sig)),
            fields(&read(&file_sig)),
            "{name}: same header and fields"
        );
        // Not only pkgsign: openssl checks the token's statement signature.
        assert!(
            openssl_verifies_statement(&t, &token_sig, &token_key.public, alg),
            "{name}: openssl refuses the token's statement signature"
        );
        // The token key's signature is not the file key's.
        t.env
            .verify_sig(&pkg, &token_sig, &[&file_key])
            .refused("KEY_NOT_TRUSTED");

        // A token key and a file key in one .sig: two signatures, both valid.
        let both = t.path(format!("{name}.both.sig"));
        let mut argv = common::sign_args(
            &pkg,
            &[&token_key.private, &file_key.private],
            &["--output", both.to_str().unwrap()],
        );
        argv.extend(t.access());
        t.run(argv).ok();
        t.env
            .verify(
                &pkg,
                &[&token_key, &file_key],
                &["--signature", both.to_str().unwrap(), "--threshold", "2"],
            )
            .verified();
    }
}

#[test]
fn raw_rsa_token_signature_verifies_in_openssl_dgst() {
    let t = Token::new();
    let pkg = t.env.package("p.tar.gz");
    let key = t.keygen("rsa", Alg::Rsa);
    t.sign(&pkg, &[&key], &["--format", "raw", "--output", "p.raw"])
        .ok();
    let text = std::fs::read_to_string(t.path("p.raw")).unwrap();
    let b64 = text.strip_suffix('\n').expect("one line and a newline");
    assert!(!b64.contains('\n'), "only the signature: {text:?}");
    let bin = t.env.write("p.raw.bin", B64.decode(b64).unwrap());
    let dgst = |file: &Path| {
        t.tool(
            "openssl",
            args([
                "dgst".as_ref(),
                "-sha256".as_ref(),
                "-verify".as_ref(),
                key.public.as_os_str(),
                "-signature".as_ref(),
                bin.as_os_str(),
                file.as_os_str(),
            ]),
        )
    };
    let ok = dgst(&pkg);
    assert_eq!(ok.code, 0, "{ok:#?}");
    assert!(ok.out().contains("Verified OK"), "{ok:#?}");
    let mut altered = std::fs::read(&pkg).unwrap();
    altered[10] ^= 1;
    let other = t.env.write("altered", altered);
    assert_ne!(dgst(&other).code, 0, "openssl accepts an altered package");
    t.env.verify_sig(&pkg, &t.path("p.raw"), &[&key]).verified();
}

#[test]
fn raw_ed25519_with_a_token_key_is_refused_and_writes_no_sig() {
    let t = Token::new();
    let pkg = t.env.package("p.tar.gz");
    let key = t.keygen("ed", Alg::Ed25519);
    let mut argv = common::sign_args(&pkg, &[&key.private], &["--format", "raw", "--json"]);
    argv.extend(t.access());
    t.run(argv).fails_with(2, "TOKEN_MECHANISM");
    assert!(!t.path("p.tar.gz.sig").exists(), "a .sig was written");
    assert_eq!(common::leftovers(t.env.dir.path()), Vec::<String>::new());
}

#[test]
fn wrong_pin_is_refused_and_never_echoed() {
    const WRONG: &str = "wrong-pin-5520917";
    let t = Token::new();
    let pkg = t.env.package("p.tar.gz");
    let key = t.keygen("ed", Alg::Ed25519);
    let wrong = t.env.write("hsm/wrong-pin", format!("{WRONG}\n"));
    chmod(&wrong, 0o600);
    let log = t.path("audit.log");
    let mut argv = common::sign_args(&pkg, &[&key.private], &["--json", "--audit-log"]);
    argv.push(log.clone().into());
    argv.extend(args(["--pkcs11-module", MODULE, "--pin-file"]));
    argv.push(wrong.into());
    let refused = t.run(argv).fails_with(2, "PASSPHRASE_WRONG");
    assert!(!t.path("p.tar.gz.sig").exists());
    // The same through the environment.
    let mut c = t.cmd(common::sign_args(
        &pkg,
        &[&key.private],
        &[
            "--json",
            "--pkcs11-module",
            MODULE,
            "--audit-log",
            "audit.log",
        ],
    ));
    c.env("PKGSIGN_PKCS11_PIN", WRONG);
    let by_env = common::run(c).fails_with(2, "PASSPHRASE_WRONG");
    // And a run that works writes its event without the PIN either.
    let mut argv = common::sign_args(&pkg, &[&key.private], &["--audit-log", "audit.log"]);
    argv.extend(t.access());
    let signed = t.run(argv).ok();
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("package_signed")
    );
    nowhere(
        WRONG,
        &[&refused, &by_env, &signed],
        &[&log, &t.path("p.tar.gz.sig")],
    );
    nowhere(
        PIN,
        &[&refused, &by_env, &signed],
        &[&log, &t.path("p.tar.gz.sig")],
    );
}

#[test]
fn missing_object_is_token_key_not_found_and_lists_the_keys() {
    let t = Token::new();
    let pkg = t.env.package("p.tar.gz");
    t.keygen("release-2026", Alg::Ed25519);
    t.keygen("legacy-rsa", Alg::Rsa);
    let mut argv = common::sign_args(&pkg, &[Token::uri("release-2025")], &["--json"]);
    argv.extend(t.access());
    let r = t.run(argv).fails_with(2, "TOKEN_KEY_NOT_FOUND");
    assert!(r.stderr.contains("release-2025"), "{r:#?}");
    assert!(r.stderr.contains("\"release-2026\""), "{r:#?}");
    assert!(r.stderr.contains("\"legacy-rsa\""), "{r:#?}");
    assert!(!t.path("p.tar.gz.sig").exists());
}

#[test]
fn unknown_token_label_is_token_key_not_found_and_lists_the_tokens() {
    let t = Token::new();
    let pkg = t.env.package("p.tar.gz");
    t.keygen("k", Alg::Ed25519);
    let mut argv = common::sign_args(&pkg, &["pkcs11:token=staging;object=k"], &["--json"]);
    argv.extend(t.access());
    let r = t.run(argv).fails_with(2, "TOKEN_KEY_NOT_FOUND");
    assert!(r.stderr.contains("\"staging\""), "{r:#?}");
    assert!(r.stderr.contains(&format!("\"{LABEL}\"")), "{r:#?}");
}

#[test]
fn a_missing_or_non_pkcs11_module_is_token_unavailable() {
    let t = Token::new();
    let pkg = t.env.package("p.tar.gz");
    let key = t.keygen("k", Alg::Ed25519);
    let text = t.env.write("not-a-module.so", "just text\n");
    let missing = t.path("no-such-module.so");
    for (module, says) in [
        (missing.as_path(), "no such file"),
        (text.as_path(), "does not load"),
    ] {
        let mut argv = common::sign_args(&pkg, &[&key.private], &["--json", "--pkcs11-module"]);
        argv.push(module.into());
        argv.extend(pin_file(&t));
        let r = t.run(argv).fails_with(2, "TOKEN_UNAVAILABLE");
        assert!(r.stderr.contains(module.to_str().unwrap()), "{r:#?}");
        assert!(r.stderr.contains(says), "{r:#?}");
    }
    // No module named anywhere.
    let mut argv = common::sign_args(&pkg, &[&key.private], &["--json"]);
    argv.extend(pin_file(&t));
    let r = t.run(argv).fails_with(2, "TOKEN_UNAVAILABLE");
    assert!(r.stderr.contains("module"), "{r:#?}");
    assert!(!t.path("p.tar.gz.sig").exists());
}

/// `--pkcs11-module libsofthsm2.so` names the file of that name in the
/// working directory (here: not a module). Handed as it is to dlopen, a name
/// without a slash is searched for in the library path instead, and a
/// library other than the one checked would be loaded and trusted with the
/// PIN.
#[test]
fn a_relative_module_path_loads_that_file_not_a_library_path_match() {
    let t = Token::new();
    let pkg = t.env.package("p.tar.gz");
    let key = t.keygen("k", Alg::Ed25519);
    t.env.write("libsofthsm2.so", "not a module\n");
    let softhsm_dir = Path::new(MODULE).parent().unwrap();
    let mut c = t.cmd(common::sign_args(
        &pkg,
        &[&key.private],
        &["--json", "--pkcs11-module", "libsofthsm2.so"],
    ));
    c.args(pin_file(&t)).env("LD_LIBRARY_PATH", softhsm_dir);
    let r = common::run(c).fails_with(2, "TOKEN_UNAVAILABLE");
    assert!(r.stderr.contains("does not load"), "{r:#?}");
    assert!(!t.path("p.tar.gz.sig").exists());
}

#[test]
fn no_pin_is_passphrase_required() {
    let t = Token::new();
    let pkg = t.env.package("p.tar.gz");
    t.keygen("k", Alg::Ed25519);
    sign_bare(&t, &pkg, &Token::uri("k"), &["--pkcs11-module", MODULE])
        .fails_with(2, "PASSPHRASE_REQUIRED");
    assert!(!t.path("p.tar.gz.sig").exists());
}

#[test]
fn pin_value_in_the_uri_is_refused_and_not_echoed() {
    let t = Token::new();
    let pkg = t.env.package("p.tar.gz");
    t.keygen("k", Alg::Ed25519);
    for uri in [
        format!("{}?pin-value={PIN}", Token::uri("k")),
        format!("{}?module-path={MODULE}&pin-value={PIN}", Token::uri("k")),
    ] {
        let r = sign_bare(&t, &pkg, &uri, &["--pkcs11-module", MODULE]).fails_with(2, "USAGE");
        assert!(r.stderr.contains("pin-value"), "{r:#?}");
        nowhere(PIN, &[&r], &[]);
        assert!(!t.path("p.tar.gz.sig").exists());
    }
}

#[test]
fn pin_from_the_environment_or_the_uris_pin_source_signs() {
    let t = Token::new();
    let pkg = t.env.package("p.tar.gz");
    let key = t.keygen("k", Alg::Ed25519);
    // PKGSIGN_PKCS11_PIN.
    let mut c = t.cmd(common::sign_args(
        &pkg,
        &[&key.private],
        &["--pkcs11-module", MODULE, "--output", "env.sig"],
    ));
    c.env("PKGSIGN_PKCS11_PIN", PIN);
    common::run(c).ok();
    // ?pin-source=FILE (and ?pin-source=file:FILE).
    for (out, source) in [
        ("src.sig", t.pin_file.display().to_string()),
        ("src-uri.sig", format!("file:{}", t.pin_file.display())),
    ] {
        let uri = format!("{}?pin-source={source}", Token::uri("k"));
        sign_bare(
            &t,
            &pkg,
            &uri,
            &["--pkcs11-module", MODULE, "--output", out],
        )
        .ok();
    }
    // --pin-file comes before PKGSIGN_PKCS11_PIN.
    let mut argv = common::sign_args(&pkg, &[&key.private], &["--output", "flag.sig"]);
    argv.extend(t.access());
    let mut c = t.cmd(argv);
    c.env("PKGSIGN_PKCS11_PIN", "wrong-pin-0000");
    common::run(c).ok();
    for sig in ["env.sig", "src.sig", "src-uri.sig", "flag.sig"] {
        t.env.verify_sig(&pkg, &t.path(sig), &[&key]).verified();
    }
}

#[test]
fn module_from_the_environment_or_the_config_file_signs() {
    let t = Token::new();
    let pkg = t.env.package("p.tar.gz");
    let key = t.keygen("k", Alg::Rsa);
    // PKGSIGN_PKCS11_MODULE.
    let mut argv = common::sign_args(&pkg, &[&key.private], &["--output", "env.sig"]);
    argv.extend(pin_file(&t));
    let mut c = t.cmd(argv);
    c.env("PKGSIGN_PKCS11_MODULE", MODULE);
    common::run(c).ok();
    // [signing] pkcs11_module in --config.
    let config = t.env.write(
        "pkgsign.toml",
        format!("[signing]\npkcs11_module = {MODULE:?}\n"),
    );
    let mut argv = args(["--config".as_ref(), config.as_os_str()]);
    argv.extend(common::sign_args(
        &pkg,
        &[&key.private],
        &["--output", "config.sig"],
    ));
    argv.extend(pin_file(&t));
    t.run(argv).ok();
    // --pkcs11-module comes before both.
    let mut argv = args(["--config".as_ref(), config.as_os_str()]);
    argv.extend(common::sign_args(
        &pkg,
        &[&key.private],
        &["--output", "flag.sig"],
    ));
    argv.extend(t.access());
    let mut c = t.cmd(argv);
    c.env("PKGSIGN_PKCS11_MODULE", "/nonexistent/module.so");
    common::run(c).ok();
    // The operator's module wins over a URI's module-path (a pointer file
    // in --keys-dir cannot redirect which library is loaded), and the URI's
    // wins over the config file's.
    let mut argv = args(["--config".as_ref(), config.as_os_str()]);
    let redirected = format!("{}?module-path=/nonexistent/evil.so", key.private.display());
    argv.extend(common::sign_args(
        &pkg,
        &[Path::new(&redirected)],
        &["--output", "operator.sig"],
    ));
    argv.extend(t.access());
    t.run(argv).ok();
    let mut argv = args(["--config".as_ref(), config.as_os_str()]);
    argv.extend(common::sign_args(
        &pkg,
        &[Path::new(&redirected)],
        &["--json"],
    ));
    argv.extend(pin_file(&t));
    let r = t.run(argv).fails_with(2, "TOKEN_UNAVAILABLE");
    assert!(r.stderr.contains("/nonexistent/evil.so"), "{r:?}");
    for sig in ["env.sig", "config.sig", "flag.sig", "operator.sig"] {
        t.env.verify_sig(&pkg, &t.path(sig), &[&key]).verified();
    }
}

#[test]
fn token_keygen_refuses_an_existing_object_label_and_writes_nothing() {
    let t = Token::new();
    let first = t.keygen("k", Alg::Ed25519);
    for alg in [Alg::Ed25519, Alg::Rsa] {
        // Another directory and file name, the same label on the token.
        let mut argv = args([
            "keygen",
            "--output-dir",
            "other",
            "--name",
            "k2",
            "--pkcs11",
        ]);
        argv.push(Token::uri("k").into());
        if alg == Alg::Rsa {
            argv.extend(args(["--algorithm", "rsa", "--bits", "2048"]));
        }
        argv.push("--json".into());
        argv.extend(t.access());
        let r = t.run(argv).fails_with(2, "ALREADY_EXISTS");
        // --force replaces files, never a key on a token: not suggested.
        assert!(!r.stderr.contains("--force"), "{r:?}");
        let other = t.path("other");
        assert!(
            !other.exists() || names(&other).is_empty(),
            "files written: {:?}",
            names(&other)
        );
    }
    assert_eq!(
        private_keys_labelled(&t, "k").len(),
        1,
        "{}",
        t.list_objects()
    );
    assert_eq!(
        objects(&t.list_objects()).len(),
        2,
        "one pair on the token: {}",
        t.list_objects()
    );
    // The first key is untouched: it still signs as itself.
    let pkg = t.env.package("p.tar.gz");
    t.sign(&pkg, &[&first], &[]).ok();
    t.env.verify(&pkg, &[&first], &[]).verified();
    assert_eq!(openssl_fingerprint(&t, &first.public), first.fingerprint);
}

/// SoftHSM2 (like a card reader with a blank card) always shows a slot
/// with an uninitialised token. A URI without `token=` names the one
/// initialised token, not "two tokens match".
#[test]
fn a_uri_without_token_ignores_uninitialised_tokens() {
    let t = Token::new();
    let pkg = t.env.package("p.tar.gz");
    let key = t.keygen("k", Alg::Ed25519);
    let mut argv = common::sign_args(&pkg, &["pkcs11:object=k"], &["--json"]);
    argv.extend(t.access());
    t.run(argv).ok();
    t.env.verify(&pkg, &[&key], &[]).verified();
}

/// The pointer `keygen --pkcs11` writes is what a user passes next: for
/// `sign-package --private-key`, `public-key` and `trust cosign --key`,
/// `keys/NAME.pkcs11` means the token key it points to. The pointer holds
/// no secret, so its mode 0644 is fine; the private key stays on the token.
#[test]
fn the_pointer_keygen_wrote_signs_as_its_uri_does() {
    let t = Token::new();
    let pkg = t.env.package("p.tar.gz");
    let key = t.keygen("ptr", Alg::Ed25519);
    let pointer = t.path("keys/ptr.pkcs11");
    assert_eq!(
        std::fs::metadata(&pointer).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let sig = t.path("p.sig");
    let mut argv = common::sign_args(
        &pkg,
        &[pointer.as_path()],
        &["--output", sig.to_str().unwrap()],
    );
    argv.extend(t.access());
    t.run(argv).ok();
    t.env.verify_sig(&pkg, &sig, &[&key]).verified();

    let mut argv = args(["public-key".as_ref(), pointer.as_os_str()]);
    argv.extend(t.access());
    let run = t.run(argv).ok();
    assert_eq!(
        run.out(),
        std::fs::read_to_string(&key.public).unwrap(),
        "public-key of the pointer is the key's .pub"
    );

    // A pointer that is not one line of a pkcs11: URI is refused, naming
    // the file, before any token is opened.
    std::fs::write(&pointer, "/etc/passwd\n").unwrap();
    let mut argv = common::sign_args(&pkg, &[pointer.as_path()], &[]);
    argv.extend(t.access());
    let run = t.run(argv);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("ptr.pkcs11"), "{run:#?}");
}

/// The token goes away while pkgsign runs: the key was found and the
/// session opened before the package is hashed, then (the process
/// stopped, so that this is not a race) the token is deleted; when
/// signing resumes, the token's refusal is TOKEN_UNAVAILABLE, exit 2, a
/// message saying what happened and that nothing was written, and no
/// `.sig` or temporary file is left.
#[test]
fn a_token_lost_mid_run_is_token_unavailable_and_writes_nothing() {
    let t = Token::new();
    t.keygen("lost", Alg::Ed25519);
    // Large enough that hashing is still going when the process is
    // stopped; sparse, so it costs no disk.
    let pkg = t.path("big.bin");
    std::fs::File::create(&pkg)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let mut argv = common::sign_args(&pkg, &[Path::new(&Token::uri("lost"))], &["--json"]);
    argv.extend(t.access());
    let mut cmd = t.cmd(argv);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id().to_string();
    // Hashing has begun once the process has read a MiB: its keys were
    // loaded before (sign-package opens every key first).
    let read = || {
        std::fs::read_to_string(format!("/proc/{pid}/io"))
            .ok()
            .and_then(|io| {
                io.lines()
                    .find_map(|l| l.strip_prefix("rchar: ").map(|n| n.parse::<u64>().unwrap()))
            })
            .unwrap_or(0)
    };
    let start = std::time::Instant::now();
    while read() < 1 << 20 {
        assert!(
            start.elapsed().as_secs() < 30,
            "pkgsign never started hashing"
        );
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    t.tool_ok("kill", ["-STOP", pid.as_str()]);
    assert!(
        read() < 1 << 30,
        "hashing finished before the process stopped"
    );
    t.tool_ok("softhsm2-util", ["--delete-token", "--token", LABEL]);
    t.tool_ok("kill", ["-CONT", pid.as_str()]);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["code"], "TOKEN_UNAVAILABLE", "{json}");
    let msg = json["error"].as_str().unwrap();
    assert!(msg.contains("pkcs11:token=release;object=lost"), "{msg}");
    assert!(msg.contains("nothing was written"), "{msg}");
    assert_eq!(
        names(&t.path("")),
        ["big.bin", "hsm", "keys"].map(String::from).into(),
        "no .sig and no temporary file"
    );
    assert!(!stderr.contains(PIN) && !msg.contains(PIN));
}

/// Attack: a pointer given as `--private-key` that others can write could
/// be redirected to another key on the same token (a retired key, another
/// team's), and pkgsign would sign with it. As a pointer in a signing-keys
/// directory is, it is refused when group or others may write it
/// (KEY_PERMISSIONS, nothing signed), unless `--insecure-permissions`.
#[test]
fn a_pointer_others_can_write_is_refused_as_in_a_keys_dir() {
    let t = Token::new();
    let pkg = t.env.package("p.tar.gz");
    t.keygen("mine", Alg::Ed25519);
    let other = t.keygen("theirs", Alg::Ed25519);
    let pointer = t.path("keys/mine.pkcs11");
    std::fs::write(&pointer, format!("{}\n", Token::uri("theirs"))).unwrap();
    chmod(&pointer, 0o666);
    let sig = t.path("p.sig");
    let sign = |extra: &[&str]| {
        let mut e = vec!["--output", sig.to_str().unwrap(), "--json"];
        e.extend_from_slice(extra);
        let mut argv = common::sign_args(&pkg, &[pointer.as_path()], &e);
        argv.extend(t.access());
        t.run(argv)
    };
    let refused = sign(&[]).fails_with(2, "KEY_PERMISSIONS");
    assert!(
        refused.json()["error"]
            .as_str()
            .unwrap()
            .contains("mine.pkcs11"),
        "{refused:?}"
    );
    assert!(!sig.exists(), "nothing signed");
    // The operator's explicit choice, as everywhere else.
    sign(&["--insecure-permissions"]).ok();
    t.env.verify_sig(&pkg, &sig, &[&other]).verified();
}

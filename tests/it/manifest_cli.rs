//! `pkgsign verify-manifest` on lists made by the real `sha256sum` & co. and
//! signed with `sign-package`; and several `--package` on `verify-package`.
//!
//! Every run goes through `common`: a panic, an exit code other than
//! 0/1/2, a hang or a missing peer tool fails the test.

use crate::common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::manifest::*;
use common::*;
use serde_json::Value;

/// A release directory: files (one in a subdirectory, odd names), the list
/// `SHA256SUMS` written by the real `sha256sum` inside it, signed by `key`.
struct Release {
    _env: Env,
    root: PathBuf,
    rel: PathBuf,
    keys: PathBuf,
    a: Key,
    b: Key,
}

const FILES: &[(&[u8], &[u8])] = &[
    (b"app.tar", b"the application\n"),
    (b"sub/lib.so", b"a library\n"),
    (b"sp ace.txt", b"spaces\n"),
    (b"\xc3\xbcn\xc3\xafc\xc3\xb6d\xc3\xa9", b"utf-8\n"),
    (b"back\\slash", b"backslash\n"),
    (b"new\nline", b"newline\n"),
    (b"-dash", b"dash\n"),
    (b"empty", b""),
];

fn names() -> Vec<OsString> {
    FILES.iter().map(|(n, _)| os(n)).collect()
}

fn release() -> Release {
    let env = Env::new();
    let root = env.dir.path().to_path_buf();
    let rel = root.join("release");
    let keys = root.join("keys");
    std::fs::create_dir_all(rel.join("sub")).unwrap();
    std::fs::create_dir_all(&keys).unwrap();
    for (n, data) in FILES {
        std::fs::write(rel.join(os(n)), data).unwrap();
    }
    let mut a = args(["--"]);
    a.extend(names());
    let list = tool_ok(&rel, "sha256sum", &a);
    std::fs::write(rel.join("SHA256SUMS"), list).unwrap();
    let ka = keygen(&keys, "a", Alg::Ed25519);
    let kb = keygen(&keys, "b", Alg::Ed25519);
    sign(&rel.join("SHA256SUMS"), &[&ka]);
    Release {
        _env: env,
        root,
        rel,
        keys,
        a: ka,
        b: kb,
    }
}

impl Release {
    /// `verify-manifest LIST --public-key a.pub [extra]`, run from the root
    /// (not the list's directory: names are relative to the list).
    fn verify(&self, list: &str, extra: &[&str]) -> Run {
        let mut a: Vec<OsString> = args(["verify-manifest"]);
        a.push(self.rel.join(list).into());
        a.push("--public-key".into());
        a.push(self.a.public.clone().into());
        a.extend(args(extra));
        pkgsign(&self.root, a)
    }

    fn verify_json(&self, list: &str, extra: &[&str], code: i32) -> Value {
        let mut e = extra.to_vec();
        e.push("--json");
        self.verify(list, &e).code(code).json()
    }
}

fn files_of(j: &Value) -> Vec<Value> {
    j["files"].as_array().cloned().unwrap_or_default()
}

fn file_named<'a>(files: &'a [Value], name: &str) -> &'a Value {
    files
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no result for {name:?} in {files:#?}"))
}

#[test]
fn a_sha256sum_list_signed_with_sign_package_verifies() {
    let r = release();
    let out = r.verify("SHA256SUMS", &[]).ok();
    let text = out.out();
    for n in [
        "app.tar: OK",
        "sub/lib.so: OK",
        "sp ace.txt: OK",
        "empty: OK",
    ] {
        assert!(text.contains(n), "{n}: {text}");
    }
    // One line per file; a name holding a newline is escaped as
    // `sha256sum --check` escapes it, a mere backslash is not.
    assert_eq!(text.lines().count(), FILES.len(), "{text}");
    assert!(text.contains("\\new\\nline: OK\n"), "{text}");
    assert!(text.contains("\nback\\slash: OK\n"), "{text}");
    let j = r.verify_json("SHA256SUMS", &[], 0);
    assert_eq!(j["verified"], true, "{j}");
    let files = files_of(&j);
    assert_eq!(files.len(), FILES.len(), "{j}");
    assert!(files.iter().all(|f| f["ok"] == true), "{j}");
    assert_eq!(file_named(&files, "new\nline")["ok"], true);
    assert_eq!(j["failed"], 0);

    // From inside the directory, with a relative list path; and with a
    // trusted-keys directory instead of --public-key.
    let tdir = r.root.join("trusted");
    std::fs::create_dir(&tdir).unwrap();
    std::fs::copy(&r.a.public, tdir.join("a.pub")).unwrap();
    pkgsign(
        &r.rel,
        [
            OsString::from("verify-manifest"),
            "SHA256SUMS".into(),
            "--trusted-keys".into(),
            tdir.clone().into(),
        ],
    )
    .ok();

    // Other list forms, each signed: --tag (BSD), sha512sum, binary mode,
    // and pkgsign's own BLAKE3 --tag list.
    let lists: &[(&str, &str, &[&str])] = &[
        ("TAGGED", "sha256sum", &["--tag"]),
        ("SHA512SUMS", "sha512sum", &[]),
        ("BINARY", "sha256sum", &["--binary"]),
    ];
    for (list, prog, flags) in lists {
        let mut a = args(*flags);
        a.push("--".into());
        a.extend(names());
        std::fs::write(r.rel.join(list), tool_ok(&r.rel, prog, &a)).unwrap();
        sign(&r.rel.join(list), &[&r.a]);
        let j = r.verify_json(list, &[], 0);
        assert_eq!(files_of(&j).len(), FILES.len(), "{list}: {j}");
    }
    let mut a = args(["checksum", "-a", "blake3", "--tag", "--"]);
    a.extend(names());
    let b3 = pkgsign(&r.rel, &a).ok().stdout;
    std::fs::write(r.rel.join("B3TAGGED"), b3).unwrap();
    sign(&r.rel.join("B3TAGGED"), &[&r.a]);
    r.verify_json("B3TAGGED", &[], 0);
}

#[test]
fn tampered_and_missing_files_are_named() {
    let r = release();
    // Same size, other bytes.
    std::fs::write(r.rel.join("app.tar"), b"THE application\n").unwrap();
    let out = r.verify("SHA256SUMS", &[]).code(1);
    assert!(out.out().contains("app.tar: FAILED"), "{out:#?}");
    assert!(out.out().contains("sub/lib.so: OK"), "{out:#?}");
    let j = r.verify_json("SHA256SUMS", &[], 1);
    assert_eq!(j["verified"], false, "{j}");
    assert_eq!(j["code"], "CHECKSUM_MISMATCH", "{j}");
    assert_eq!(j["failed"], 1, "{j}");
    let files = files_of(&j);
    let bad = file_named(&files, "app.tar");
    assert_eq!(bad["ok"], false);
    assert_eq!(bad["code"], "CHECKSUM_MISMATCH");
    assert_eq!(bad["line"], 1);
    for f in files.iter().filter(|f| f["name"] != "app.tar") {
        assert_eq!(f["ok"], true, "{f}");
    }

    // A tampered file whose name holds a newline and mimics an OK line
    // cannot print a line that reads as OK.
    let evil = "x: OK\ny";
    std::fs::write(r.rel.join(evil), b"evil").unwrap();
    std::fs::write(r.rel.join("EVILNAME"), tool_ok(&r.rel, "sha256sum", [evil])).unwrap();
    sign(&r.rel.join("EVILNAME"), &[&r.a]);
    std::fs::write(r.rel.join(evil), b"EVIL").unwrap();
    let text = r.verify("EVILNAME", &[]).code(1).out();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("\\x: OK\\ny: FAILED ("), "{text}");

    // A missing file fails too.
    std::fs::write(r.rel.join("app.tar"), b"the application\n").unwrap();
    std::fs::remove_file(r.rel.join("sub/lib.so")).unwrap();
    let out = r.verify("SHA256SUMS", &[]).code(1);
    assert!(out.out().contains("sub/lib.so: FAILED"), "{out:#?}");
    let j = r.verify_json("SHA256SUMS", &[], 1);
    assert_eq!(j["code"], "FILE_NOT_FOUND", "{j}");
    assert_eq!(
        file_named(&files_of(&j), "sub/lib.so")["code"],
        "FILE_NOT_FOUND"
    );
    assert_eq!(file_named(&files_of(&j), "app.tar")["ok"], true);

    // A directory where a file is listed.
    std::fs::create_dir(r.rel.join("sub/lib.so")).unwrap();
    let j = r.verify_json("SHA256SUMS", &[], 1);
    assert_eq!(file_named(&files_of(&j), "sub/lib.so")["ok"], false, "{j}");
}

/// Names that are absolute or climb out of the list's directory, directly or
/// through a symlink, are refused with PATH_REFUSED and never opened: the
/// outside targets are FIFOs watched for readers (and a plain file whose
/// digest is the listed one, which would pass if it were read).
#[test]
fn traversal_is_refused_and_never_opened() {
    let r = release();
    let outside = r.root.join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"secret\n").unwrap();
    let secret_hex = sha256_hex_of(&outside, "secret");
    let fifos: Vec<FifoWatch> = ["f1", "f2", "f3", "f4", "f5"]
        .iter()
        .map(|n| FifoWatch::new(&outside.join(n)))
        .collect();
    std::os::unix::fs::symlink("../outside/secret", r.rel.join("link-secret")).unwrap();
    std::os::unix::fs::symlink(outside.join("f4"), r.rel.join("link-fifo")).unwrap();
    std::os::unix::fs::symlink(&outside, r.rel.join("linkdir")).unwrap();
    std::fs::create_dir(r.rel.join("a")).unwrap();
    let abs = |n: &str| outside.join(n).to_str().unwrap().to_string();
    let zero = "0".repeat(64);
    let entries: Vec<(String, &str)> = vec![
        ("../outside/secret".into(), &secret_hex),
        (abs("secret"), &secret_hex),
        ("a/../../outside/secret".into(), &secret_hex),
        ("./../outside/secret".into(), &secret_hex),
        ("link-secret".into(), &secret_hex),
        ("linkdir/secret".into(), &secret_hex),
        ("../outside/f1".into(), &zero),
        (abs("f2"), &zero),
        ("a/../../outside/f3".into(), &zero),
        ("link-fifo".into(), &zero),
        ("linkdir/f5".into(), &zero),
        ("/etc/passwd".into(), &zero),
        ("..".into(), &zero),
    ];
    let mut list = tool_ok(&r.rel, "sha256sum", ["app.tar"]);
    for (name, hex) in &entries {
        list.extend_from_slice(format!("{hex}  {name}\n").as_bytes());
    }
    std::fs::write(r.rel.join("EVIL"), &list).unwrap();
    sign(&r.rel.join("EVIL"), &[&r.a]);

    let mut a: Vec<OsString> = args(["verify-manifest"]);
    a.push(r.rel.join("EVIL").into());
    a.push("--public-key".into());
    a.push(r.a.public.clone().into());
    a.push("--json".into());
    let out = pkgsign_t(&r.root, &a, None, Duration::from_secs(10)).code(1);
    for (i, f) in fifos.iter().enumerate() {
        assert!(!f.was_opened(), "outside FIFO f{} was opened", i + 1);
    }
    let j = out.json();
    assert_eq!(j["code"], "PATH_REFUSED", "{j}");
    let files = files_of(&j);
    assert_eq!(files.len(), entries.len() + 1);
    assert_eq!(file_named(&files, "app.tar")["ok"], true);
    for (name, _) in &entries {
        let f = file_named(&files, name);
        assert_eq!(f["ok"], false, "{f}");
        assert_eq!(f["code"], "PATH_REFUSED", "{name}: {f}");
    }
    // Text output names them too, and the run is the same with --jobs 1.
    let mut a2 = a.clone();
    a2.pop();
    a2.extend(args(["--jobs", "1"]));
    let out = pkgsign_t(&r.root, &a2, None, Duration::from_secs(10)).code(1);
    assert!(out.out().contains("../outside/secret: FAILED"), "{out:#?}");
    assert!(out.out().contains("/etc/passwd: FAILED"), "{out:#?}");
    for (i, f) in fifos.iter().enumerate() {
        assert!(!f.was_opened(), "outside FIFO f{} was opened", i + 1);
    }
}

/// An md5 (or sha1) list in a signed manifest is refused as WEAK_ALGORITHM,
/// file by file; the SHA-256 lines of a mixed list still pass.
#[test]
fn weak_algorithms_in_a_signed_list_are_refused() {
    let r = release();
    for (list, prog, flags) in [
        ("MD5SUMS", "md5sum", &[][..]),
        ("SHA1TAGGED", "sha1sum", &["--tag"][..]),
    ] {
        let mut a = args(flags);
        a.extend(args(["app.tar", "empty"]));
        std::fs::write(r.rel.join(list), tool_ok(&r.rel, prog, &a)).unwrap();
        sign(&r.rel.join(list), &[&r.a]);
        let j = r.verify_json(list, &[], 1);
        assert_eq!(j["code"], "WEAK_ALGORITHM", "{j}");
        let files = files_of(&j);
        assert_eq!(files.len(), 2);
        assert!(files.iter().all(|f| f["code"] == "WEAK_ALGORITHM"), "{j}");
        let out = r.verify(list, &[]).code(1);
        assert!(out.out().contains("app.tar: FAILED"), "{out:#?}");
    }
    let mut mixed = tool_ok(&r.rel, "sha256sum", ["app.tar"]);
    mixed.extend(tool_ok(&r.rel, "md5sum", ["empty"]));
    std::fs::write(r.rel.join("MIXED"), mixed).unwrap();
    sign(&r.rel.join("MIXED"), &[&r.a]);
    let j = r.verify_json("MIXED", &[], 1);
    let files = files_of(&j);
    assert_eq!(file_named(&files, "app.tar")["ok"], true, "{j}");
    assert_eq!(file_named(&files, "empty")["code"], "WEAK_ALGORITHM", "{j}");
}

/// A huge sparse file: hashing it would take far longer than the timeout,
/// so finishing in time proves it was never hashed.
fn huge_sparse(path: &Path) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(64 << 30).unwrap();
}

/// The list's signature is checked before any file: an untrusted key, a
/// signature over other bytes, a list changed after signing, or too few
/// signers refuse the list without checking a single file.
#[test]
fn an_unauthentic_list_is_refused_before_any_file_is_checked() {
    let r = release();
    huge_sparse(&r.rel.join("huge.iso"));
    let mut list = std::fs::read(r.rel.join("SHA256SUMS")).unwrap();
    list.extend_from_slice(format!("{}  huge.iso\n", "0".repeat(64)).as_bytes());
    std::fs::write(r.rel.join("LIST"), &list).unwrap();
    let quick = Duration::from_secs(10);
    let run = |keys: &[&Path], extra: &[&str]| {
        let mut a: Vec<OsString> = args(["verify-manifest"]);
        a.push(r.rel.join("LIST").into());
        for k in keys {
            a.push("--public-key".into());
            a.push(k.into());
        }
        a.extend(args(extra));
        a.push("--json".into());
        let out = pkgsign_t(&r.root, &a, None, quick);
        let j = out.json();
        (out, j)
    };
    let assert_no_files = |out: &Run, j: &Value| {
        assert!(j.get("files").is_none(), "files were checked: {j}");
        assert!(!out.out().contains(": OK"), "{out:#?}");
        assert!(!out.out().contains("app.tar"), "{out:#?}");
    };

    // Signed by b; only a trusted.
    sign(&r.rel.join("LIST"), &[&r.b]);
    let (out, j) = run(&[&r.a.public], &[]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(j["code"], "KEY_NOT_TRUSTED", "{j}");
    assert_eq!(j["verified"], false, "{j}");
    assert_no_files(&out, &j);
    // Same in text mode: no per-file line.
    let mut a: Vec<OsString> = args(["verify-manifest"]);
    a.push(r.rel.join("LIST").into());
    a.extend(args(["--public-key", r.a.public.to_str().unwrap()]));
    let out = pkgsign_t(&r.root, &a, None, quick).code(1);
    assert!(out.stdout.is_empty(), "{out:#?}");

    // Signed by a, then the list changed: the signature no longer matches.
    sign(&r.rel.join("LIST"), &[&r.a]);
    let mut changed = list.clone();
    changed.extend_from_slice(format!("{}  app.tar\n", "1".repeat(64)).as_bytes());
    std::fs::write(r.rel.join("LIST"), &changed).unwrap();
    let (out, j) = run(&[&r.a.public], &[]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(j["code"], "SIGNATURE_INVALID", "{j}");
    assert_no_files(&out, &j);

    // The signature of another list.
    std::fs::write(r.rel.join("LIST"), &list).unwrap();
    std::fs::copy(r.rel.join("SHA256SUMS.sig"), r.rel.join("LIST.sig")).unwrap();
    let (out, j) = run(&[&r.a.public], &[]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert_no_files(&out, &j);

    // No signature at all: could not run.
    std::fs::remove_file(r.rel.join("LIST.sig")).unwrap();
    let (out, j) = run(&[&r.a.public], &[]);
    assert_eq!(out.code, 2, "{out:#?}");
    assert_no_files(&out, &j);

    // --threshold 2: one signer is not enough, even if both keys are trusted.
    sign(&r.rel.join("LIST"), &[&r.a]);
    let (out, j) = run(&[&r.a.public, &r.b.public], &["--threshold", "2"]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(j["code"], "THRESHOLD_NOT_MET", "{j}");
    assert_no_files(&out, &j);
    // Both signed, but only one of them trusted.
    sign(&r.rel.join("LIST"), &[&r.a, &r.b]);
    let (out, j) = run(&[&r.a.public], &["--threshold", "2"]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert_no_files(&out, &j);
}

#[test]
fn threshold_two_is_honoured() {
    let r = release();
    sign(&r.rel.join("SHA256SUMS"), &[&r.a, &r.b]);
    let mut a: Vec<OsString> = args(["verify-manifest"]);
    a.push(r.rel.join("SHA256SUMS").into());
    a.extend(args([
        "--public-key",
        r.a.public.to_str().unwrap(),
        "--public-key",
        r.b.public.to_str().unwrap(),
        "--threshold",
        "2",
        "--json",
    ]));
    let j = pkgsign(&r.root, &a).ok().json();
    assert_eq!(j["signers"].as_array().map(Vec::len), Some(2), "{j}");
    assert_eq!(files_of(&j).len(), FILES.len());
    // --threshold 3 with two signers: refused.
    let n = a.len();
    a[n - 2] = "3".into();
    let j = pkgsign(&r.root, &a).code(1).json();
    assert_eq!(j["code"], "THRESHOLD_NOT_MET", "{j}");
    // --threshold 0 is a usage error.
    a[n - 2] = "0".into();
    pkgsign(&r.root, &a).code(2);
    // A trusted-keys directory holding both keys, threshold 2.
    let tdir = r.keys.join("trusted");
    std::fs::create_dir(&tdir).unwrap();
    std::fs::copy(&r.a.public, tdir.join("a.pub")).unwrap();
    std::fs::copy(&r.b.public, tdir.join("b.pub")).unwrap();
    let mut a: Vec<OsString> = args(["verify-manifest"]);
    a.push(r.rel.join("SHA256SUMS").into());
    a.push("--trusted-keys".into());
    a.push(tdir.into());
    a.extend(args(["--threshold", "2"]));
    pkgsign(&r.root, &a).ok();
}

/// `--jobs 1`, `--jobs 2`, `--jobs 7` and the default give the same results,
/// in list order, on a list mixing passes, mismatches, missing files and
/// refused names.
#[test]
fn jobs_do_not_change_results() {
    let r = release();
    let many = r.rel.join("many");
    std::fs::create_dir(&many).unwrap();
    let mut names = Vec::new();
    for i in 0..120 {
        let n = format!("many/f{i:03}");
        std::fs::write(r.rel.join(&n), format!("file {i}\n").repeat(i % 7 + 1)).unwrap();
        names.push(n);
    }
    let mut list = tool_ok(&r.rel, "sha256sum", &names);
    list.extend_from_slice(format!("{}  ../escape\n", "0".repeat(64)).as_bytes());
    list.extend_from_slice(format!("{}  many/gone\n", "0".repeat(64)).as_bytes());
    std::fs::write(r.rel.join("MANY"), list).unwrap();
    sign(&r.rel.join("MANY"), &[&r.a]);
    for i in [3, 50, 119] {
        std::fs::write(r.rel.join(format!("many/f{i:03}")), b"changed").unwrap();
    }
    let strip = |j: &Value| -> Vec<(String, bool, Value)> {
        files_of(j)
            .iter()
            .map(|f| {
                (
                    f["name"].as_str().unwrap().to_string(),
                    f["ok"].as_bool().unwrap(),
                    f["code"].clone(),
                )
            })
            .collect()
    };
    let default = r.verify_json("MANY", &[], 1);
    let base = strip(&default);
    assert_eq!(base.len(), 122);
    assert_eq!(default["failed"], 5, "{default}");
    let order: Vec<&String> = base.iter().map(|(n, _, _)| n).collect();
    assert_eq!(order[..120], names.iter().collect::<Vec<_>>()[..]);
    for jobs in ["1", "2", "7"] {
        let j = r.verify_json("MANY", &["--jobs", jobs], 1);
        assert_eq!(strip(&j), base, "--jobs {jobs}");
        assert_eq!(j["code"], default["code"]);
        let text = r.verify("MANY", &["--jobs", jobs]).code(1).stdout;
        assert_eq!(text, r.verify("MANY", &[]).code(1).stdout, "--jobs {jobs}");
    }
}

/// Several `--package`: each is reported, exit 0 only when all pass, and
/// `--json` has one entry per package.
#[test]
fn several_packages_are_each_reported() {
    let env = Env::new();
    let dir = env.dir.path();
    let key = keygen(dir, "k", Alg::Ed25519);
    let other = keygen(dir, "other", Alg::Ed25519);
    let pkgs = ["p1.tar", "p2.tar", "p3.tar", "p4.tar"];
    for p in pkgs {
        std::fs::write(dir.join(p), format!("package {p}\n")).unwrap();
        sign(&dir.join(p), &[&key]);
    }
    let pubs = key.public.to_str().unwrap();
    let verify = |packages: &[&str], extra: &[&str]| {
        let mut a = args(["verify-package", "--public-key", pubs]);
        for p in packages {
            a.extend(args(["--package", p]));
        }
        a.extend(args(extra));
        pkgsign(dir, a)
    };
    let out = verify(&pkgs, &[]).ok();
    for p in pkgs {
        assert!(out.out().contains(&format!("verified {p}")), "{out:#?}");
    }
    let j = verify(&pkgs, &["--json"]).ok().json();
    assert_eq!(j["verified"], true, "{j}");
    let entries = j["packages"].as_array().expect("packages");
    assert_eq!(entries.len(), pkgs.len());
    for (e, p) in entries.iter().zip(pkgs) {
        assert_eq!(e["package"], p, "{j}");
        assert_eq!(e["verified"], true, "{j}");
        assert!(e["package_hash"].as_str().unwrap().starts_with("sha256:"));
    }

    // p2 tampered, p3 signed by an untrusted key.
    std::fs::write(dir.join("p2.tar"), b"PACKAGE p2.tar\n").unwrap();
    sign(&dir.join("p3.tar"), &[&other]);
    for jobs in [None, Some("1")] {
        let extra: Vec<&str> = jobs.map(|n| vec!["--jobs", n]).unwrap_or_default();
        let out = verify(&pkgs, &extra).code(1);
        let text = out.out();
        assert!(text.contains("verified p1.tar"), "{text}");
        assert!(text.contains("FAILED p2.tar"), "{text}");
        assert!(text.contains("FAILED p3.tar"), "{text}");
        assert!(text.contains("verified p4.tar"), "{text}");
        let mut e = extra.clone();
        e.push("--json");
        let j = verify(&pkgs, &e).code(1).json();
        assert_eq!(j["verified"], false, "{j}");
        assert_eq!(j["code"], "SIGNATURE_INVALID", "{j}");
        let entries = j["packages"].as_array().expect("packages");
        let by: Vec<(&str, bool, &str)> = entries
            .iter()
            .map(|e| {
                (
                    e["package"].as_str().unwrap(),
                    e["verified"].as_bool().unwrap(),
                    e["code"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            by,
            [
                ("p1.tar", true, ""),
                ("p2.tar", false, "SIGNATURE_INVALID"),
                ("p3.tar", false, "KEY_NOT_TRUSTED"),
                ("p4.tar", true, ""),
            ]
        );
    }
    // A package with no signature at all: could not run (exit 2 wins).
    std::fs::write(dir.join("p5.tar"), b"unsigned").unwrap();
    let j = verify(&["p1.tar", "p5.tar"], &["--json"]).code(2).json();
    let entries = j["packages"].as_array().expect("packages");
    assert_eq!(entries[0]["verified"], true);
    assert_eq!(entries[1]["verified"], false);
    assert_eq!(entries[1]["code"], "FILE_NOT_FOUND", "{j}");
    // Only the good ones: exit 0.
    verify(&["p1.tar", "p4.tar"], &[]).ok();
    // --checksum or --signature with several packages is a usage error.
    verify(&["p1.tar", "p4.tar"], &["--signature", "p1.tar.sig"]).code(2);
}

/// A FIFO or a device given as the list, its signature or the cache makes
/// verify-manifest fail (or ignore the cache), never hang or read forever.
#[test]
fn special_files_never_hang() {
    let r = release();
    let fifo = r.root.join("fifo");
    let watch = FifoWatch::new(&fifo);
    let quick = Duration::from_secs(10);
    let key = r.a.public.clone();
    let run = |argv: Vec<OsString>| pkgsign_t(&r.root, &argv, None, quick);
    for list in [fifo.clone(), PathBuf::from("/dev/zero")] {
        let mut a: Vec<OsString> = args(["verify-manifest"]);
        a.push(list.into());
        a.push("--public-key".into());
        a.push(key.clone().into());
        let out = run(a).code(2);
        assert!(out.stderr.contains("not a regular file"), "{out:#?}");
    }
    let mut a: Vec<OsString> = args(["verify-manifest"]);
    a.push(r.rel.join("SHA256SUMS").into());
    a.push("--public-key".into());
    a.push(key.clone().into());
    let mut with_sig = a.clone();
    with_sig.push("--signature".into());
    with_sig.push(fifo.clone().into());
    run(with_sig).code(2);
    let mut with_sig = a.clone();
    with_sig.push("--signature".into());
    with_sig.push("/dev/zero".into());
    run(with_sig).code(2);
    assert!(!watch.was_opened(), "the FIFO was opened");
    // A cache that is a FIFO is ignored, never opened.
    let cache_fifo = r.root.join("cache-fifo");
    let cache_watch = FifoWatch::new(&cache_fifo);
    let mut with_cache = a.clone();
    with_cache.push("--cache".into());
    with_cache.push(cache_fifo.clone().into());
    run(with_cache).ok();
    assert!(!cache_watch.was_opened(), "the cache FIFO was opened");
}

/// The example release in keys-example/ verifies as its README says, and a
/// changed copy of it names the changed file.
#[test]
fn the_example_release_verifies() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ok = pkgsign(
        repo,
        [
            "verify-manifest",
            "keys-example/release/SHA256SUMS",
            "--trusted-keys",
            "keys-example/trusted",
            "--threshold",
            "2",
        ],
    )
    .code(0);
    assert!(ok.out().contains("VERSION: OK\n"), "{ok:#?}");
    assert!(ok.stderr.contains("3 of 3 files OK"), "{ok:#?}");

    let env = Env::new();
    let copy = env.dir.path().join("release");
    std::fs::create_dir(&copy).unwrap();
    for f in [
        "SHA256SUMS",
        "SHA256SUMS.sig",
        "example-package.tar.gz",
        "NOTES.txt",
        "VERSION",
    ] {
        std::fs::copy(repo.join("keys-example/release").join(f), copy.join(f)).unwrap();
    }
    std::fs::write(copy.join("VERSION"), "1.0.1\n").unwrap();
    let trusted = repo.join("keys-example/trusted");
    let bad = pkgsign(
        env.dir.path(),
        [
            OsString::from("verify-manifest"),
            copy.join("SHA256SUMS").into(),
            "--trusted-keys".into(),
            trusted.into(),
        ],
    )
    .code(1);
    assert!(bad.out().contains("VERSION: FAILED"), "{bad:#?}");
    assert!(bad.out().contains("NOTES.txt: OK"), "{bad:#?}");
}

/// Write `text` as the list `name` in the release and sign it with key a.
fn signed_list(r: &Release, name: &str, text: &[u8]) {
    std::fs::write(r.rel.join(name), text).unwrap();
    sign(&r.rel.join(name), &[&r.a]);
}

/// A signed list is a promise about every line: a line that is not a
/// checksum entry (junk, a bad digest, a blank or comment line) refuses the
/// whole list, before any file is checked, naming the lines. Before, such
/// lines were skipped with a warning and the other files decided the
/// outcome (`sha256:0000  b` beside a good line printed `1 of 1 files OK`).
#[test]
fn manifest_with_malformed_line_is_refused() {
    let r = release();
    let good = tool_ok(&r.rel, "sha256sum", ["app.tar"]);
    let good = String::from_utf8(good).unwrap();
    let good = good.trim_end();
    let cases: Vec<(String, Vec<usize>)> = vec![
        (format!("{good}\nsha256:0000  b\n"), vec![2]),
        (format!("sha256:0000  b\n{good}\n"), vec![1]),
        (
            format!("{good}\nnot a line\n{good}\nnor this\n"),
            vec![2, 4],
        ),
        (format!("{good}\n\n{good}\n"), vec![2]),
        (format!("# made by hand\n{good}\n"), vec![1]),
        (format!("{good}\n\n"), vec![2]),
        (format!("{}  app.tar\n", "0".repeat(63)), vec![1]),
        (format!("{good}\n{}  \n", "0".repeat(64)), vec![2]),
        (format!("{good}\n\\{}  a\\qb\n", "0".repeat(64)), vec![2]),
    ];
    for (text, lines) in &cases {
        signed_list(&r, "BAD", text.as_bytes());
        let out = r.verify("BAD", &[]).fails(1);
        assert!(out.stdout.is_empty(), "no file is checked: {out:#?}");
        let named = if lines.len() == 1 {
            format!("line {}", lines[0])
        } else {
            format!(
                "lines {}",
                lines
                    .iter()
                    .map(|l| l.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        assert!(out.stderr.contains(&named), "{text:?}: {named}: {out:#?}");
        let j = r
            .verify("BAD", &["--json"])
            .refused("MANIFEST_MALFORMED")
            .json();
        let got: Vec<usize> = j["malformed_lines"]
            .as_array()
            .unwrap_or_else(|| panic!("malformed_lines: {j}"))
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(&got, lines, "{text:?}: {j}");
        assert!(j.get("files").is_none(), "files were checked: {j}");
    }
    // The same good line alone, with or without its final newline, or with
    // a CRLF line end (as coreutils reads it), verifies.
    for text in [format!("{good}\n"), good.to_string(), format!("{good}\r\n")] {
        signed_list(&r, "GOOD", text.as_bytes());
        let out = r.verify("GOOD", &[]).ok();
        assert_eq!(out.out(), "app.tar: OK\n", "{text:?}");
        assert!(out.stderr.contains("1 of 1 files OK"), "{out:#?}");
    }
}

/// A signed list that names no file at all (empty, or nothing but a
/// newline) promises nothing: refused, never `0 of 0 files OK`.
#[test]
fn signed_empty_list_is_refused() {
    let r = release();
    for text in [&b""[..], b"\n"] {
        signed_list(&r, "EMPTY", text);
        let out = r.verify("EMPTY", &[]).fails(1);
        assert!(out.stdout.is_empty(), "{out:#?}");
        assert!(!out.stderr.contains("0 of 0"), "{out:#?}");
        let j = r
            .verify("EMPTY", &["--json"])
            .refused("MANIFEST_MALFORMED")
            .json();
        assert!(j.get("files").is_none(), "{j}");
    }
    // And one of junk only.
    signed_list(&r, "JUNK", b"junk\nmore junk\n");
    let out = r.verify("JUNK", &[]).fails(1);
    assert!(out.stderr.contains("lines 1, 2"), "{out:#?}");
    r.verify("JUNK", &["--json"]).refused("MANIFEST_MALFORMED");
}

/// A list larger than the cap is refused from its size alone: its bytes are
/// never read (before, 256 MiB of it were buffered first).
#[test]
fn oversized_list_is_refused_without_being_read() {
    let r = release();
    let list = r.rel.join("HUGE");
    std::fs::File::create(&list)
        .unwrap()
        .set_len(pkgsign::release::manifest::LIST_LIMIT + 1)
        .unwrap();
    std::fs::copy(r.rel.join("SHA256SUMS.sig"), r.rel.join("HUGE.sig")).unwrap();
    let watch = ReadWatch::new(&list);
    let out = r.verify("HUGE", &[]).fails(2);
    assert!(out.stderr.contains("larger than"), "{out:#?}");
    assert!(!watch.was_read(), "the oversized list was read");
    let j = r.verify("HUGE", &["--json"]).code(2).json();
    assert_eq!(j["code"], "FILE_TOO_LARGE", "{j}");
    assert_eq!(j["verified"], false, "{j}");
    assert!(!watch.was_read(), "the oversized list was read");
}

//! `pkgsign serve`, the real binary on an ephemeral loopback port, driven
//! by the real `curl` (and a raw socket where a test needs a slow or
//! vanishing client): every route, every role where it does not belong,
//! bad tokens, path escapes, limits, slow and vanishing clients, SIGTERM
//! mid-upload, a full disk, the anti-rollback rules of the release store,
//! revocation without restart, and `/metrics` as a real Prometheus parser
//! reads it. TLS and mutual TLS: `serve_tls.rs`.

use crate::common;

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use common::serve::*;
use common::{args, run_with, wait_for};
use serde_json::{Value, json};

/// Every route answers what it should to the role it is for: health,
/// readiness, metrics without a token; verify-signature by path and by
/// body; a signed upload stored whole; its download by any role (latest,
/// by version, its signature); key generation into a configured directory.
/// Shared with the TLS test.
pub(crate) fn every_endpoint_works(s: &Server) {
    s.get("/healthz", None).status(200);
    let ready = s.get("/readyz", None);
    ready.status(200);
    assert_eq!(ready.json()["trusted_keys"], 1, "{:?}", ready.json());
    let m = s.get("/metrics", None);
    m.status(200);
    assert!(
        m.header("content-type")
            .is_some_and(|c| c.starts_with("application/openmetrics-text")),
        "{m:?}"
    );

    // verify-signature, files named by path inside allowed_dirs.
    let (pkg, sig) = s
        .setup
        .release_in(Path::new("allowed"), "app", "1.0.0", &bytes(1, 70_000));
    let v = s.verify_paths(Some(VERIFY_TOKEN), &pkg, None);
    v.status(200);
    let j = v.json();
    assert_eq!(
        (&j["ok"], &j["verified"]),
        (&json!(true), &json!(true)),
        "{j}"
    );
    assert_eq!(j["algorithm"], "Ed25519", "{j}");
    let v = s.verify_paths(Some(VERIFY_TOKEN), &pkg, Some(&sig));
    v.status(200);
    // ... and the package as the body.
    let v = s.verify_body(Some(VERIFY_TOKEN), &pkg, &sig);
    v.status(200);
    assert_eq!(v.json()["verified"], true);

    // A signed upload, stored whole.
    let data = bytes(2, 300_000);
    let (pkg, sig) = s.setup.release("app", "1.1.0", &data);
    let up = s.upload(Some(UPLOAD_TOKEN), &pkg, &sig);
    up.status(201);
    let j = up.json();
    assert_eq!(
        (
            &j["stored"],
            &j["already_stored"],
            &j["name"],
            &j["version"]
        ),
        (&json!(true), &json!(false), &json!("app"), &json!("1.1.0")),
        "{j}"
    );
    let dir = s.setup.store().join("app/1.1.0");
    assert_eq!(std::fs::read(dir.join("package")).unwrap(), data);
    assert_eq!(
        std::fs::read(dir.join("package.sig")).unwrap(),
        std::fs::read(&sig).unwrap()
    );
    let rec: Value =
        serde_json::from_slice(&std::fs::read(dir.join("release.json")).unwrap()).unwrap();
    assert_eq!(
        (&rec["name"], &rec["version"]),
        (&json!("app"), &json!("1.1.0"))
    );
    assert_eq!(rec["digest"], j["digest"]);
    assert_eq!(s.staging(), Vec::<String>::new());

    // Downloads, by every role.
    for token in [VERIFY_TOKEN, UPLOAD_TOKEN, ADMIN_TOKEN] {
        for path in ["/api/v1/update/app/latest", "/api/v1/update/app/1.1.0"] {
            let r = s.get(path, Some(token));
            r.status(200);
            assert!(r.body == data, "{path}: not the bytes uploaded");
            assert_eq!(r.header("x-pkgsign-version"), Some("1.1.0"));
            assert_eq!(
                r.header("x-pkgsign-signature"),
                Some(b64_file(&sig).as_str())
            );
        }
        let r = s.get("/api/v1/update/app/1.1.0/signature", Some(token));
        r.status(200);
        assert_eq!(r.body, std::fs::read(&sig).unwrap());
    }
    s.get("/api/v1/update/app/9.9.9", Some(VERIFY_TOKEN))
        .refused(404, "NOT_FOUND");
    s.get("/api/v1/update/nothing/latest", Some(VERIFY_TOKEN))
        .refused(404, "NOT_FOUND");

    // Key generation, into a configured key directory only.
    let kd = s.setup.keydir();
    let g = s.post_json(
        GENERATE,
        Some(ADMIN_TOKEN),
        &json!({"output_dir": kd, "name": "made"}).to_string(),
    );
    g.status(201);
    let j = g.json();
    assert!(
        kd.join("made.pem").is_file() && kd.join("made.pub").is_file(),
        "{j}"
    );
    assert_eq!(common::mode(&kd.join("made.pem")), 0o600);
    assert!(
        j["fingerprint"].as_str().unwrap().starts_with("SHA256:"),
        "{j}"
    );
    // Never over an existing key.
    let before = std::fs::read(kd.join("made.pem")).unwrap();
    s.post_json(
        GENERATE,
        Some(ADMIN_TOKEN),
        &json!({"output_dir": kd, "name": "made"}).to_string(),
    )
    .refused(409, "ALREADY_EXISTS");
    assert_eq!(std::fs::read(kd.join("made.pem")).unwrap(), before);

    // Every success is in the audit log.
    assert!(!s.audit_of("update_stored").is_empty(), "{:?}", s.audit());
    assert!(!s.audit_of("key_generated").is_empty(), "{:?}", s.audit());
    assert!(
        !s.audit_of("signature_verification_success").is_empty(),
        "{:?}",
        s.audit()
    );
}

#[test]
fn every_endpoint_answers_over_plain_http_on_loopback() {
    let s = Setup::new().start();
    assert!(
        s.first_line.starts_with("listening on http://127.0.0.1:"),
        "{}",
        s.first_line
    );
    every_endpoint_works(&s);
}

/// A token is refused wherever its role does not belong, and each refusal
/// is audited (an upload's as `unauthorized_update_attempt`).
#[test]
fn each_role_is_refused_where_it_does_not_belong() {
    let s = Setup::new().start();
    let (pkg, sig) = s
        .setup
        .release_in(Path::new("allowed"), "app", "1.0.0", b"x");
    for token in [UPLOAD_TOKEN, ADMIN_TOKEN] {
        s.verify_paths(Some(token), &pkg, None)
            .refused(403, "FORBIDDEN");
        s.verify_body(Some(token), &pkg, &sig)
            .refused(403, "FORBIDDEN");
    }
    for token in [VERIFY_TOKEN, ADMIN_TOKEN] {
        s.upload(Some(token), &pkg, &sig).refused(403, "FORBIDDEN");
    }
    let body = json!({"output_dir": s.setup.keydir(), "name": "k"}).to_string();
    for token in [VERIFY_TOKEN, UPLOAD_TOKEN] {
        s.post_json(GENERATE, Some(token), &body)
            .refused(403, "FORBIDDEN");
    }
    assert!(!s.setup.keydir().join("k.pem").exists());
    assert_eq!(s.kept(), Vec::<String>::new());
    assert_eq!(s.audit_of("unauthorized_update_attempt").len(), 2);
    assert_eq!(s.audit_of("access_denied").len(), 6, "{:?}", s.audit());
}

/// No token, a wrong one, another scheme, the token's hash (what the
/// tokens file holds) and a token of garbage bytes: 401 everywhere a token
/// is needed, and nothing done.
#[test]
fn a_missing_or_bad_token_is_401_on_every_guarded_route() {
    let s = Setup::new().start();
    let (pkg, sig) = s
        .setup
        .release_in(Path::new("allowed"), "app", "1.0.0", b"y");
    s.upload(Some(UPLOAD_TOKEN), &pkg, &sig).status(201);
    let hash = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(VERIFY_TOKEN))
    };
    let bad: Vec<Vec<std::ffi::OsString>> = vec![
        vec![],
        auth(Some("not-a-token")),
        auth(Some(&hash)),
        auth(Some(&format!("{VERIFY_TOKEN}x"))),
        args(["-H", &format!("Authorization: Basic {VERIFY_TOKEN}")]),
        args(["-H", &format!("Authorization: {VERIFY_TOKEN}")]),
        args(["-H", "Authorization: Bearer "]),
        args(["-H", &format!("Authorization: Bearer {}", "A".repeat(5000))]),
    ];
    let verify = json!({"package_path": pkg}).to_string();
    let generate = json!({"output_dir": s.setup.keydir()}).to_string();
    for a in bad {
        let with = |more: &[&str]| {
            let mut v = a.clone();
            v.extend(args(more));
            v
        };
        for path in [
            "/api/v1/update/app/latest",
            "/api/v1/update/app/1.0.0",
            "/api/v1/update/app/1.0.0/signature",
        ] {
            s.curl(path, a.clone()).refused(401, "UNAUTHORIZED");
        }
        let json_post = |body: &str| {
            with(&[
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                body,
            ])
        };
        s.curl(VERIFY, json_post(&verify))
            .refused(401, "UNAUTHORIZED");
        s.curl(GENERATE, json_post(&generate))
            .refused(401, "UNAUTHORIZED");
        let mut up = a.clone();
        up.extend(octet_args(None, &pkg, &sig, &[]));
        s.curl(UPLOAD, up).refused(401, "UNAUTHORIZED");
    }
    assert!(!s.setup.keydir().join("signing-key.pem").exists());
    assert_eq!(s.audit_of("unauthorized_update_attempt").len(), 8);
    assert_eq!(s.audit_of("access_denied").len(), 8 * 5);
    // The token itself never reaches the audit log.
    let log = std::fs::read_to_string(s.setup.audit_log()).unwrap();
    assert!(!log.contains(VERIFY_TOKEN) && !log.contains(UPLOAD_TOKEN));
}

/// Files named in a request must be inside `allowed_dirs`: `..`, a
/// symlink out, an absolute path elsewhere, a relative path, are refused
/// before anything is read (a missing file outside is refused the same,
/// so its existence does not leak); keys are generated only into a
/// directory of `key_dirs`; release names and versions cannot climb out.
#[test]
fn a_path_escape_is_refused_and_leaks_nothing() {
    let s = Setup::new().start();
    let allowed = s.setup.allowed();
    let (pkg, _) = s
        .setup
        .release_in(Path::new("allowed"), "app", "1.0.0", b"z");
    // A signed package outside, its signature too.
    let (outside, outside_sig) = s.setup.release("app", "1.0.1", b"outside");
    std::os::unix::fs::symlink(&outside, allowed.join("link.bin")).unwrap();
    std::os::unix::fs::symlink(&outside_sig, allowed.join("link.bin.sig")).unwrap();
    let up = format!("{}/../app-1.0.1.bin", allowed.display());
    for (package, sig) in [
        (up.clone(), None),
        (outside.display().to_string(), None),
        (allowed.join("link.bin").display().to_string(), None),
        ("allowed/app-1.0.0.bin".into(), None),
        (format!("{}/../nothing-here", allowed.display()), None),
        ("/etc/passwd".into(), None),
        (
            pkg.display().to_string(),
            Some(outside_sig.display().to_string()),
        ),
    ] {
        let mut j = json!({ "package_path": package });
        if let Some(sg) = sig {
            j["signature_path"] = json!(sg);
        }
        s.post_json(VERIFY, Some(VERIFY_TOKEN), &j.to_string())
            .refused(403, "PATH_REFUSED");
    }
    let j = json!({"package_path": pkg, "public_key_path": s.setup.key.public});
    s.post_json(VERIFY, Some(VERIFY_TOKEN), &j.to_string())
        .refused(403, "PATH_REFUSED");
    // A missing file inside is an honest 404.
    s.verify_paths(Some(VERIFY_TOKEN), &allowed.join("missing"), None)
        .refused(404, "FILE_NOT_FOUND");

    let kd = s.setup.keydir();
    for dir in [
        s.setup.env.path("elsewhere").display().to_string(),
        format!("{}/../keydir", kd.display()),
        format!("{}/sub", kd.display()),
        "keydir".into(),
        "/tmp".into(),
    ] {
        s.post_json(
            GENERATE,
            Some(ADMIN_TOKEN),
            &json!({"output_dir": dir, "name": "esc"}).to_string(),
        )
        .refused(403, "PATH_REFUSED");
    }
    assert!(!s.setup.env.path("elsewhere").exists());
    assert!(!Path::new("/tmp/esc.pem").exists());
    assert_eq!(std::fs::read_dir(&kd).unwrap().count(), 0);

    for path in [
        "/api/v1/update/%2e%2e/latest",
        "/api/v1/update/..%2F..%2Fetc/passwd",
        "/api/v1/update/app/%2e%2e",
        "/api/v1/update/app/..%2F..%2F..%2Ftrusted/signature",
        "/api/v1/update/%2e%2e/store/signature",
    ] {
        let r = s.get(path, Some(VERIFY_TOKEN));
        assert!(r.status == 400 || r.status == 404, "{path}: {r:?}");
        assert_eq!(r.json()["ok"], false);
    }
    assert_eq!(s.audit_of("access_denied").len(), 8 + 5, "{:?}", s.audit());
}

/// Bodies over the route's limit are 413, with or without a Content-Length,
/// and nothing of them is kept.
#[test]
fn a_body_over_the_limit_is_413_and_nothing_is_kept() {
    let s = Setup::new()
        .limit("max_upload_size", "\"64K\"")
        .limit("max_verify_size", "\"32K\"")
        .limit("max_json_size", "\"1K\"")
        .start();
    let (pkg, sig) = s.setup.release("big", "1.0.0", &bytes(3, 100_000));
    s.upload(Some(UPLOAD_TOKEN), &pkg, &sig)
        .refused(413, "FILE_TOO_LARGE");
    // Chunked: no length announced, the limit is found while reading.
    s.upload_with(
        Some(UPLOAD_TOKEN),
        &pkg,
        &sig,
        &["Transfer-Encoding: chunked"],
    )
    .refused(413, "FILE_TOO_LARGE");
    s.verify_body(Some(VERIFY_TOKEN), &pkg, &sig)
        .refused(413, "FILE_TOO_LARGE");
    let a = octet_args(
        Some(VERIFY_TOKEN),
        &pkg,
        &sig,
        &["Transfer-Encoding: chunked"],
    );
    s.curl(VERIFY, a).refused(413, "FILE_TOO_LARGE");
    let long = json!({"package_path": format!("/{}", "a".repeat(2000))}).to_string();
    s.post_json(VERIFY, Some(VERIFY_TOKEN), &long)
        .refused(413, "FILE_TOO_LARGE");
    let long = json!({"output_dir": format!("/{}", "a".repeat(2000))}).to_string();
    let r = s.post_json(GENERATE, Some(ADMIN_TOKEN), &long);
    r.status(413);
    assert_eq!(s.kept(), Vec::<String>::new());
    // Under the limit, the same route takes it.
    let (small, small_sig) = s.setup.release("big", "1.0.1", &bytes(4, 60_000));
    s.upload(Some(UPLOAD_TOKEN), &small, &small_sig).status(201);
}

/// Malformed requests are 4xx with the JSON error, never a crash or a 5xx:
/// bad JSON, unknown fields, wrong types, a missing or wrong content type,
/// a signature header that is not base64 or not a signature, a header
/// claim that is not text, and garbage on the wire.
#[test]
fn malformed_json_and_headers_are_refused_cleanly() {
    let s = Setup::new().start();
    let (pkg, sig) = s
        .setup
        .release_in(Path::new("allowed"), "app", "1.0.0", b"m");
    for body in [
        "{",
        "[]",
        "null",
        "{\"package_path\": 5}",
        "{\"package_path\": \"/x\", \"extra\": 1}",
        "{\"signature_path\": \"/x\"}",
        "\u{1}\u{2}garbage",
    ] {
        s.post_json(VERIFY, Some(VERIFY_TOKEN), body)
            .refused(400, "USAGE");
    }
    for body in [
        "{",
        "{\"output_dir\": 1}",
        "{\"output_dir\":\"/x\",\"evil\":1}",
    ] {
        s.post_json(GENERATE, Some(ADMIN_TOKEN), body)
            .refused(400, "USAGE");
    }
    let mut a = auth(Some(VERIFY_TOKEN));
    a.extend(args([
        "-H",
        "Content-Type: text/plain",
        "--data-binary",
        "{}",
    ]));
    s.curl(VERIFY, a).refused(400, "USAGE");
    // The signature header: missing, not base64, base64 of garbage.
    let mut a = auth(Some(UPLOAD_TOKEN));
    a.extend(args([
        "-H".as_ref(),
        "Content-Type: application/octet-stream".as_ref(),
        "--data-binary".as_ref(),
        std::ffi::OsString::from(format!("@{}", pkg.display())).as_os_str(),
    ]));
    s.curl(UPLOAD, a.clone()).refused(400, "USAGE");
    for header in [
        "X-Pkgsign-Signature: !!!not base64!!!",
        "X-Pkgsign-Signature: aGVsbG8gd29ybGQ=",
    ] {
        let mut b = a.clone();
        b.extend(args(["-H", header]));
        s.curl(UPLOAD, b.clone())
            .refused(422, "SIGNATURE_MALFORMED");
        let mut v = auth(Some(VERIFY_TOKEN));
        v.extend(b.into_iter().skip(2));
        s.curl(VERIFY, v).refused(422, "SIGNATURE_MALFORMED");
    }
    // A claim header of bytes that are not text.
    let mut b = octet_args(Some(UPLOAD_TOKEN), &pkg, &sig, &[]);
    b.push("-H".into());
    b.push(std::os::unix::ffi::OsStringExt::from_vec(
        b"X-Signature-Algorithm: \xff\xfe".to_vec(),
    ));
    let r = s.curl(UPLOAD, b);
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(s.kept(), Vec::<String>::new());

    // Garbage on the wire: a 400 (or a close), never a crash.
    for raw in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
        b"POST /api/v1/update/signed HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /api/v1/update/signed HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"GET /healthz HTTP/9.9\r\n\r\n",
    ] {
        let mut t = s.tcp();
        let _ = send(&mut t, raw);
        let (status, text) = read_answer(&mut t);
        assert!(
            matches!(status, None | Some(400) | Some(505)),
            "{:?} got {text:?}",
            String::from_utf8_lossy(raw)
        );
    }
    let mut t = s.tcp();
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    let _ = send(&mut t, huge.as_bytes());
    let (status, text) = read_answer(&mut t);
    assert!(
        matches!(status, None | Some(431) | Some(400)),
        "a 200 KB header: {}",
        &text[..text.len().min(200)]
    );
    s.get("/healthz", None).status(200);
    s.get("/no/such/route", None).refused(404, "NOT_FOUND");
    let mut a = auth(Some(VERIFY_TOKEN));
    a.extend(args(["-X", "DELETE"]));
    s.curl(VERIFY, a).refused(405, "USAGE");
}

/// A tampered upload (one byte changed after signing) is refused, nothing
/// of it is kept, and it is audited as an unauthorized update attempt. So
/// is an upload whose headers claim another key, and one by an untrusted
/// key.
#[test]
fn a_tampered_upload_is_refused_deleted_and_audited() {
    let s = Setup::new().start();
    let (pkg, sig) = s.setup.release("app", "2.0.0", &bytes(5, 200_000));
    let mut data = std::fs::read(&pkg).unwrap();
    data[100_000] ^= 1;
    std::fs::write(&pkg, &data).unwrap();
    let r = s.upload(Some(UPLOAD_TOKEN), &pkg, &sig);
    assert!(matches!(r.status, 403 | 422), "{r:?}");
    assert_eq!(r.code(), "SIGNATURE_INVALID", "{r:?}");
    assert_eq!(r.json()["ok"], false);
    assert_eq!(s.kept(), Vec::<String>::new());
    let attempts = s.audit_of("unauthorized_update_attempt");
    assert_eq!(attempts.len(), 1, "{:?}", s.audit());
    assert_eq!(attempts[0]["code"], "SIGNATURE_INVALID", "{attempts:?}");
    assert_eq!(attempts[0]["token"], "uploader", "{attempts:?}");
    s.get("/api/v1/update/app/latest", Some(VERIFY_TOKEN))
        .refused(404, "NOT_FOUND");

    // Good bytes, but a header naming another key.
    let (pkg, sig) = s.setup.release("app", "2.0.1", &bytes(6, 1000));
    let other = s.setup.env.keygen("other", common::Alg::Ed25519);
    s.upload_with(
        Some(UPLOAD_TOKEN),
        &pkg,
        &sig,
        &[&format!("X-Public-Key-Fingerprint: {}", other.fingerprint)],
    )
    .refused(422, "HEADER_MISMATCH");
    s.upload_with(
        Some(UPLOAD_TOKEN),
        &pkg,
        &sig,
        &["X-Signature-Algorithm: RSA-SHA256"],
    )
    .refused(422, "HEADER_MISMATCH");
    // Signed by a key the server does not trust.
    let rogue = s.setup.env.path("rogue.bin");
    std::fs::write(&rogue, b"rogue").unwrap();
    s.setup
        .env
        .sign(
            &rogue,
            &[&other],
            &["--name", "app", "--release-version", "3.0.0"],
        )
        .ok();
    s.upload(Some(UPLOAD_TOKEN), &rogue, &sig_of(&rogue))
        .refused(403, "KEY_NOT_TRUSTED");
    // Signed, but with no release identity: the store keeps by name.
    let plain = s.setup.env.path("plain.bin");
    std::fs::write(&plain, b"plain").unwrap();
    s.setup.env.sign(&plain, &[&s.setup.key], &[]).ok();
    s.upload(Some(UPLOAD_TOKEN), &plain, &sig_of(&plain))
        .refused(422, "NAME_MISMATCH");
    assert_eq!(s.kept(), Vec::<String>::new());
    assert_eq!(s.audit_of("unauthorized_update_attempt").len(), 5);
    // The claims, when true, are accepted.
    s.upload_with(
        Some(UPLOAD_TOKEN),
        &pkg,
        &sig,
        &[
            &format!("X-Public-Key-Fingerprint: {}", s.setup.key.fingerprint),
            "X-Signature-Algorithm: Ed25519",
        ],
    )
    .status(201);
}

/// The store's anti-rollback rules: an older version after a newer one is
/// ROLLBACK; the same version with other bytes is VERSION_REUSED; the same
/// upload again is 200 `already_stored`, with nothing changed.
#[test]
fn rollback_and_version_reuse_are_refused_and_a_repeat_is_already_stored() {
    let s = Setup::new().start();
    let (new_pkg, new_sig) = s.setup.release("app", "1.2.0", &bytes(7, 5000));
    s.upload(Some(UPLOAD_TOKEN), &new_pkg, &new_sig).status(201);
    let tree = s.store_tree();
    let stored = std::fs::read(s.setup.store().join("app/1.2.0/release.json")).unwrap();

    let (old_pkg, old_sig) = s.setup.release("app", "1.1.9", &bytes(8, 5000));
    s.upload(Some(UPLOAD_TOKEN), &old_pkg, &old_sig)
        .refused(422, "ROLLBACK");

    s.setup.env.write("other/x", b"");
    let (re_pkg, re_sig) = s
        .setup
        .release_in(Path::new("other"), "app", "1.2.0", &bytes(9, 5000));
    s.upload(Some(UPLOAD_TOKEN), &re_pkg, &re_sig)
        .refused(422, "VERSION_REUSED");

    let again = s.upload(Some(UPLOAD_TOKEN), &new_pkg, &new_sig);
    again.status(200);
    let j = again.json();
    assert_eq!(
        (&j["ok"], &j["already_stored"], &j["version"]),
        (&json!(true), &json!(true), &json!("1.2.0")),
        "{j}"
    );
    assert_eq!(s.store_tree(), tree);
    assert_eq!(
        std::fs::read(s.setup.store().join("app/1.2.0/release.json")).unwrap(),
        stored
    );
    let latest = s.get("/api/v1/update/app/latest", Some(VERIFY_TOKEN));
    latest.status(200);
    assert_eq!(latest.header("x-pkgsign-version"), Some("1.2.0"));
    assert!(latest.body == std::fs::read(&new_pkg).unwrap());
    let refusals: Vec<Value> = s
        .audit_of("unauthorized_update_attempt")
        .into_iter()
        .map(|e| e["code"].clone())
        .collect();
    assert_eq!(refusals, vec![json!("ROLLBACK"), json!("VERSION_REUSED")]);
    // A newer version still goes in.
    let (next, next_sig) = s.setup.release("app", "1.10.0", &bytes(10, 10));
    s.upload(Some(UPLOAD_TOKEN), &next, &next_sig).status(201);
}

/// Uploads of one version with different bytes, at once: exactly one is
/// stored, the others are VERSION_REUSED, and what is stored is the bytes
/// of the one accepted, matching its recorded digest.
#[test]
fn concurrent_uploads_of_one_version_store_exactly_one() {
    let s = Setup::new().start();
    let uploads: Vec<_> = (0..4u8)
        .map(|i| {
            s.setup.env.write(format!("c{i}/x"), b"");
            s.setup.release_in(
                Path::new(&format!("c{i}")),
                "app",
                "3.0.0",
                &bytes(20 + i, 400_000),
            )
        })
        .collect();
    let answers: Vec<Resp> = std::thread::scope(|sc| {
        let hs: Vec<_> = uploads
            .iter()
            .map(|(p, g)| sc.spawn(|| s.upload(Some(UPLOAD_TOKEN), p, g)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let stored: Vec<usize> = (0..4).filter(|i| answers[*i].status == 201).collect();
    assert_eq!(stored.len(), 1, "{answers:#?}");
    for (i, a) in answers.iter().enumerate() {
        if i != stored[0] {
            a.refused(422, "VERSION_REUSED");
        }
    }
    let winner = &uploads[stored[0]];
    let dir = s.setup.store().join("app/3.0.0");
    assert!(std::fs::read(dir.join("package")).unwrap() == std::fs::read(&winner.0).unwrap());
    assert_eq!(
        std::fs::read(dir.join("package.sig")).unwrap(),
        std::fs::read(&winner.1).unwrap()
    );
    let rec: Value =
        serde_json::from_slice(&std::fs::read(dir.join("release.json")).unwrap()).unwrap();
    assert_eq!(rec["digest"], answers[stored[0]].json()["digest"]);
    assert_eq!(
        s.kept(),
        vec![
            "app/",
            "app/3.0.0/",
            "app/3.0.0/package",
            "app/3.0.0/package.sig",
            "app/3.0.0/release.json"
        ]
    );
}

/// `pkgsign trust revoke` takes effect on the very next request, with no
/// restart: verification and upload both refuse the key.
#[test]
fn a_key_revoked_is_refused_on_the_next_request() {
    let s = Setup::new().start();
    let (pkg, sig) = s
        .setup
        .release_in(Path::new("allowed"), "app", "1.0.0", b"r");
    s.verify_paths(Some(VERIFY_TOKEN), &pkg, None).status(200);
    s.upload(Some(UPLOAD_TOKEN), &pkg, &sig).status(201);
    let trusted = s.setup.trusted();
    s.setup
        .env
        .run(args([
            "trust".as_ref(),
            "revoke".as_ref(),
            trusted.as_os_str(),
            s.setup.key.fingerprint.as_ref(),
        ]))
        .ok();
    let r = s.verify_paths(Some(VERIFY_TOKEN), &pkg, None);
    r.refused(403, "KEY_REVOKED");
    assert_eq!(r.json()["verified"], false);
    s.verify_body(Some(VERIFY_TOKEN), &pkg, &sig)
        .refused(403, "KEY_REVOKED");
    let (p2, s2) = s.setup.release("app", "1.0.1", b"r2");
    s.upload(Some(UPLOAD_TOKEN), &p2, &s2)
        .refused(403, "KEY_REVOKED");
    assert!(!s.setup.store().join("app/1.0.1").exists());
}

/// Plain HTTP on an address other than loopback, without TLS and without
/// `--insecure-plain-http`, does not start (exit 2, one error line); with
/// the flag (and every path given as flags, no configuration file) it does.
#[test]
fn plain_http_on_a_non_loopback_address_refuses_to_start() {
    let setup = Setup::new();
    let flags = |listen: &str| {
        let mut a = args(["serve", "--listen", listen]);
        for (flag, p) in [
            ("--tokens-file", setup.env.path("tokens")),
            ("--trusted-keys", setup.trusted()),
            ("--release-store", setup.store()),
            ("--audit-log", setup.audit_log()),
        ] {
            a.push(flag.into());
            a.push(p.into());
        }
        a
    };
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let mut c = common::ps(flags(listen));
        c.current_dir(setup.env.dir.path());
        let r = run_with(c, None, Duration::from_secs(20)).fails(2);
        assert!(
            r.stderr.contains("TLS") || r.stderr.contains("loopback"),
            "{r:#?}"
        );
    }
    assert!(!setup.store().exists(), "nothing was set up");
    let mut a = flags("0.0.0.0:0");
    a.push("--insecure-plain-http".into());
    let s = Server::spawn(setup, a);
    assert!(
        s.first_line.starts_with("listening on http://0.0.0.0:"),
        "{}",
        s.first_line
    );
    s.get("/healthz", None).status(200);
    let (pkg, sig) = s.setup.release("app", "1.0.0", b"f");
    s.upload(Some(UPLOAD_TOKEN), &pkg, &sig).status(201);
}

/// A token over its upload rate gets 429 with Retry-After, audited; the
/// limit is per token.
#[test]
fn an_upload_over_the_rate_is_429_with_retry_after() {
    let s = Setup::new()
        .limit("uploads_per_minute", "1")
        .limit("upload_burst", "1")
        .start();
    let (a, a_sig) = s.setup.release("app", "1.0.0", b"1");
    let (b, b_sig) = s.setup.release("app", "1.0.1", b"2");
    s.upload(Some(UPLOAD_TOKEN), &a, &a_sig).status(201);
    let r = s.upload(Some(UPLOAD_TOKEN), &b, &b_sig);
    r.refused(429, "RATE_LIMITED");
    let wait: u64 = r
        .header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After: {r:?}"))
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert!(!s.setup.store().join("app/1.0.1").exists());
    let last = s.audit_of("unauthorized_update_attempt");
    assert_eq!(last.len(), 1);
    assert_eq!(last[0]["code"], "RATE_LIMITED");
    // Another token has its own allowance.
    s.upload(Some(UPLOAD2_TOKEN), &b, &b_sig).status(201);
}

/// SIGTERM while an upload is arriving slowly: the server stops accepting
/// connections at once, lets the upload finish, stores it whole, answers
/// it, and exits 0.
#[test]
fn sigterm_during_a_slow_upload_lets_it_finish_then_exits_0() {
    let mut s = Setup::new().start();
    let data = bytes(11, 600_000);
    let (pkg, sig) = s.setup.release("app", "4.0.0", &data);
    let mut t = s.tcp();
    send(
        &mut t,
        upload_head(UPLOAD_TOKEN, &sig, data.len()).as_bytes(),
    )
    .unwrap();
    let pieces: Vec<&[u8]> = data.chunks(data.len() / 4 + 1).collect();
    send(&mut t, pieces[0]).unwrap();
    wait_for("the upload to be staged", Duration::from_secs(10), || {
        !s.staging().is_empty()
    });
    s.sigterm();
    wait_for("the server to see SIGTERM", Duration::from_secs(10), || {
        s.stderr().contains("shutting down")
    });
    // No new connection is taken.
    wait_for("the listener to close", Duration::from_secs(5), || {
        std::net::TcpStream::connect(s.addr).is_err()
    });
    for p in &pieces[1..] {
        std::thread::sleep(Duration::from_millis(300));
        send(&mut t, p).unwrap();
    }
    let (status, text) = read_answer(&mut t);
    assert_eq!(status, Some(201), "{text}");
    assert_eq!(
        std::fs::read(s.setup.store().join("app/4.0.0/package")).unwrap(),
        data
    );
    assert_eq!(s.staging(), Vec::<String>::new());
    drop(t);
    let status = s.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{status:?}: {}", s.stderr());
    let _ = pkg;
}

/// A client that goes away mid-upload leaves no staged file and no release.
#[test]
fn a_disconnect_mid_upload_leaves_nothing() {
    let s = Setup::new().start();
    let data = bytes(12, 500_000);
    let (_, sig) = s.setup.release("app", "5.0.0", &data);
    let mut t = s.tcp();
    send(
        &mut t,
        upload_head(UPLOAD_TOKEN, &sig, data.len()).as_bytes(),
    )
    .unwrap();
    send(&mut t, &data[..200_000]).unwrap();
    wait_for("the upload to be staged", Duration::from_secs(10), || {
        !s.staging().is_empty()
    });
    t.shutdown(std::net::Shutdown::Both).unwrap();
    drop(t);
    wait_for(
        "the staged part to be deleted",
        Duration::from_secs(10),
        || s.staging().is_empty(),
    );
    assert_eq!(s.kept(), Vec::<String>::new());
    s.get("/healthz", None).status(200);
}

/// A client sending its request head a byte at a time, slower than
/// `header_timeout` (1 s) in all, is cut off, and gets no answer to it.
#[test]
fn a_slow_client_sending_headers_byte_by_byte_is_cut_off() {
    let s = Setup::new().start();
    let mut t = s.tcp();
    // About 3 s of trickle at 50 ms a byte.
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(25)
    );
    let start = Instant::now();
    let mut cut_after = None;
    for b in head.as_bytes() {
        if send(&mut t, &[*b]).is_err() {
            cut_after = Some(start.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Whatever was sent: the server has closed the connection, without
    // serving the request (a 408 may say why).
    t.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut got = Vec::new();
    let closed = loop {
        let mut buf = [0u8; 4096];
        match common::serve::read_some(&mut t, &mut buf) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(e) => panic!(
                "the connection of a client that trickled its head for {:?} is still open ({e}); got {:?}",
                start.elapsed(),
                String::from_utf8_lossy(&got)
            ),
        }
    };
    let text = String::from_utf8_lossy(&got);
    assert!(closed);
    assert!(
        got.is_empty() || text.starts_with("HTTP/1.1 408"),
        "a slow head was served: {text}"
    );
    if let Some(at) = cut_after {
        assert!(at < Duration::from_secs(3), "cut off only after {at:?}");
    }
    s.get("/healthz", None).status(200);
}

/// A body that stalls longer than the idle timeout is answered 408 (or the
/// connection is closed), and nothing of it is kept.
#[test]
fn a_stalled_body_is_408_and_nothing_is_kept() {
    let s = Setup::new().start();
    let data = bytes(13, 300_000);
    let (_, sig) = s.setup.release("app", "6.0.0", &data);
    let mut t = s.tcp();
    send(
        &mut t,
        upload_head(UPLOAD_TOKEN, &sig, data.len()).as_bytes(),
    )
    .unwrap();
    send(&mut t, &data[..100_000]).unwrap();
    wait_for("the upload to be staged", Duration::from_secs(10), || {
        !s.staging().is_empty()
    });
    let start = Instant::now();
    let (status, text) = read_answer(&mut t);
    assert!(
        matches!(status, None | Some(408)),
        "a stalled body: {status:?} {text}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
    wait_for(
        "the staged part to be deleted",
        Duration::from_secs(10),
        || s.staging().is_empty(),
    );
    assert_eq!(s.kept(), Vec::<String>::new());
    let _ = t.write_all(&data[100_000..]);
    // The same on verify-signature's body.
    let mut t = s.tcp();
    let head = upload_head(VERIFY_TOKEN, &sig, data.len()).replacen(UPLOAD, VERIFY, 1);
    send(&mut t, head.as_bytes()).unwrap();
    send(&mut t, &data[..100_000]).unwrap();
    let (status, text) = read_answer(&mut t);
    assert!(
        matches!(status, None | Some(408)),
        "a stalled body to verify: {status:?} {text}"
    );
    // A small body (read whole before it is verified) that stalls.
    let small = bytes(17, 10_000);
    let (_, small_sig) = s.setup.release("small", "1.0.0", &small);
    let mut t = s.tcp();
    let head = upload_head(VERIFY_TOKEN, &small_sig, small.len()).replacen(UPLOAD, VERIFY, 1);
    send(&mut t, head.as_bytes()).unwrap();
    send(&mut t, &small[..5_000]).unwrap();
    let start = Instant::now();
    let (status, text) = read_answer(&mut t);
    assert!(
        matches!(status, None | Some(408)),
        "a stalled small body to verify: {status:?} {text}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
}

/// A small body whose signature file holds many signatures (verified off
/// the async workers) verifies like any other; one changed byte is refused.
#[test]
fn a_small_body_with_many_signatures_verifies_and_a_changed_byte_is_refused() {
    let s = Setup::new().start();
    let pkg = s
        .setup
        .env
        .write("many.bin", b"small release with many signers");
    let others: Vec<_> = (0..5)
        .map(|i| {
            s.setup
                .env
                .keygen(&format!("other{i}"), common::Alg::Ed25519)
        })
        .collect();
    let mut keys = vec![&s.setup.key];
    keys.extend(others.iter());
    s.setup.env.sign(&pkg, &keys, &[]).ok();
    let sig = sig_of(&pkg);
    let r = s.verify_body(Some(VERIFY_TOKEN), &pkg, &sig);
    r.status(200);
    assert_eq!(r.json()["signatures"].as_array().unwrap().len(), 6);
    let bad = s
        .setup
        .env
        .write("many-bad.bin", b"small release with many signerz");
    s.verify_body(Some(VERIFY_TOKEN), &bad, &sig).status(422);
}

/// A body that keeps trickling (each piece within the idle timeout) past
/// `request_timeout` is ended with 408, and nothing of it is kept.
#[test]
fn an_upload_slower_than_the_request_timeout_is_408_and_nothing_is_kept() {
    let s = Setup::new().limit("request_timeout", "\"2s\"").start();
    let data = bytes(17, 100_000);
    let (_, sig) = s.setup.release("app", "8.0.0", &data);
    let mut t = s.tcp();
    send(
        &mut t,
        upload_head(UPLOAD_TOKEN, &sig, data.len()).as_bytes(),
    )
    .unwrap();
    let start = Instant::now();
    // The whole body would take 6 s: 20 pieces, 300 ms apart.
    let mut w = t.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        for p in data.chunks(5_000) {
            if send(&mut w, p).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let (status, text) = read_answer(&mut t);
    let at = start.elapsed();
    assert_eq!(status, Some(408), "a request past its timeout: {text}");
    assert!(at < Duration::from_millis(4500), "answered after {at:?}");
    drop(t);
    writer.join().unwrap();
    wait_for(
        "the staged part to be deleted",
        Duration::from_secs(10),
        || s.staging().is_empty(),
    );
    assert_eq!(s.kept(), Vec::<String>::new());
}

/// An upload verified but kept waiting for the store's lock (another
/// writer holds it) past `request_timeout` is answered 408 "nothing was
/// kept", and then nothing is kept: the release does not appear behind
/// the client's back, unaudited, once the lock is free.
#[test]
fn an_upload_timed_out_waiting_for_the_store_is_not_stored_afterwards() {
    let s = Setup::new().limit("request_timeout", "\"2s\"").start();
    // The store's state (and its lock) exist once anything asks for it.
    s.get("/api/v1/update/app/latest", Some(VERIFY_TOKEN))
        .refused(404, "NOT_FOUND");
    let lock = s.setup.store().join(".state/.pkgsign.lock");
    assert!(lock.is_file());
    // Another writer of the store (as `pkgsign apply` would be) holds it.
    let holder = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lock)
        .unwrap();
    holder.lock().unwrap();
    let (pkg, sig) = s.setup.release("app", "1.0.0", &bytes(18, 50_000));
    let start = Instant::now();
    let r = s.upload(Some(UPLOAD_TOKEN), &pkg, &sig);
    r.refused(408, "REQUEST_TIMEOUT");
    assert!(
        start.elapsed() < Duration::from_millis(4500),
        "{:?}",
        start.elapsed()
    );
    drop(holder);
    // Another upload goes through the lock; the first must not follow it.
    let (p2, s2) = s.setup.release("other", "1.0.0", b"o");
    s.upload(Some(UPLOAD2_TOKEN), &p2, &s2).status(201);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !s.setup.store().join("app/1.0.0").exists(),
        "told 408 `nothing was kept`, yet stored; audited: {:?}",
        s.audit_of("update_stored")
    );
    assert_eq!(s.staging(), Vec::<String>::new());
    // And the client's retry is a normal first upload.
    s.upload(Some(UPLOAD_TOKEN), &pkg, &sig).status(201);
}

/// A full disk while an upload is staged: 507 DISK_FULL, nothing half
/// written left in the store, and the service works again once there is
/// room. Needs root (a 2 MiB tmpfs as the store).
#[test]
fn a_full_disk_is_507_and_leaves_nothing_half_written() {
    let mut setup = Setup::new();
    setup.mount_store_tmpfs("2m");
    let s = setup.start();
    let used = || -> u64 {
        let df = common::tool_ok(
            Path::new("/"),
            "df",
            args([
                "--output=used".as_ref(),
                "-B1".as_ref(),
                s.setup.store().as_os_str(),
            ]),
        );
        let text = String::from_utf8_lossy(&df).into_owned();
        text.lines().nth(1).unwrap().trim().parse().unwrap()
    };
    // Twice the disk: full while staging. The answer names no path of the
    // server's (its store, its staging files).
    let (pkg, sig) = s.setup.release("app", "7.0.0", &bytes(14, 4 << 20));
    let r = s.upload(Some(UPLOAD_TOKEN), &pkg, &sig);
    r.refused(507, "DISK_FULL");
    let store = s.setup.store().display().to_string();
    assert!(
        !String::from_utf8_lossy(&r.body).contains(&store),
        "the answer shows the server's paths: {r:?}"
    );
    assert_eq!(s.kept(), Vec::<String>::new());
    assert!(used() < 64 * 1024, "{} bytes still used", used());
    let attempt = s.audit_of("unauthorized_update_attempt");
    assert_eq!(attempt.len(), 1);
    assert_eq!(attempt[0]["code"], "DISK_FULL");
    // Exactly the disk: staged whole, then full while the release is put
    // together (its signature, its record) beside its destination.
    let (pkg, sig) = s.setup.release("app", "7.0.0", &bytes(16, 2 << 20));
    s.upload(Some(UPLOAD_TOKEN), &pkg, &sig)
        .refused(507, "DISK_FULL");
    let kept = s.kept();
    assert!(
        kept.is_empty() || kept == ["app/"],
        "a release that did not fit left {kept:?}"
    );
    assert!(used() < 64 * 1024, "{} bytes still used", used());
    s.get("/api/v1/update/app/latest", Some(VERIFY_TOKEN))
        .refused(404, "NOT_FOUND");
    // Room again: the service works.
    let (small, small_sig) = s.setup.release("app", "7.0.1", &bytes(15, 100_000));
    s.upload(Some(UPLOAD_TOKEN), &small, &small_sig).status(201);
}

/// `/metrics`, read by Python's prometheus_client OpenMetrics parser,
/// counts exactly what the test did.
#[test]
fn metrics_count_what_was_done_as_prometheus_reads_them() {
    let s = Setup::new().start();
    let (pkg, sig) = s
        .setup
        .release_in(Path::new("allowed"), "app", "1.0.0", b"metrics");
    // 2 verified, 1 refused (tampered), 1 path refused, 1 bad token.
    s.verify_paths(Some(VERIFY_TOKEN), &pkg, None).status(200);
    s.verify_body(Some(VERIFY_TOKEN), &pkg, &sig).status(200);
    let bad = s.setup.env.write("allowed/bad.bin", b"metricz");
    let r = s.verify_paths(Some(VERIFY_TOKEN), &bad, Some(&sig));
    let refused_code = r.code();
    assert_eq!(r.status, 422, "{r:?}");
    s.verify_paths(Some(VERIFY_TOKEN), Path::new("/etc/passwd"), None)
        .status(403);
    s.verify_paths(Some("wrong"), &pkg, None).status(401);
    // Uploads: stored, already stored, a rollback, a wrong role.
    let (p1, s1) = s.setup.release("app", "2.0.0", b"u1");
    let (p0, s0) = s.setup.release("app", "1.5.0", b"u0");
    s.upload(Some(UPLOAD_TOKEN), &p1, &s1).status(201);
    s.upload(Some(UPLOAD_TOKEN), &p1, &s1).status(200);
    s.upload(Some(UPLOAD_TOKEN), &p0, &s0).status(422);
    s.upload(Some(VERIFY_TOKEN), &p1, &s1).status(403);
    for _ in 0..3 {
        s.get("/healthz", None).status(200);
    }
    s.get("/api/v1/update/app/2.0.0", Some(ADMIN_TOKEN))
        .status(200);
    s.get("/no/such/thing", None).status(404);

    let m = s.get("/metrics", None);
    m.status(200);
    let text = String::from_utf8(m.body.clone()).unwrap();
    let fams = crate::metrics_cli::parse(&text, "openmetrics");
    let count = |family: &str, sample: &str, want: &[(&str, &str)]| -> f64 {
        fams[family]["samples"]
            .as_array()
            .unwrap_or_else(|| panic!("{family} absent:\n{text}"))
            .iter()
            .filter(|s| s[0] == sample)
            .filter(|s| want.iter().all(|(k, v)| s[1][*k] == *v))
            .map(|s| s[2].as_f64().unwrap())
            .sum()
    };
    let v = "pkgsign_verifications";
    let vt = "pkgsign_verifications_total";
    assert_eq!(
        count(v, vt, &[("result", "verified"), ("code", "OK")]),
        2.0,
        "{text}"
    );
    assert_eq!(
        count(v, vt, &[("result", "refused"), ("code", &refused_code)]),
        1.0,
        "{text}"
    );
    assert_eq!(count(v, vt, &[]), 3.0, "{text}");
    let u = "pkgsign_uploads";
    let ut = "pkgsign_uploads_total";
    assert_eq!(count(u, ut, &[("result", "stored")]), 1.0, "{text}");
    assert_eq!(count(u, ut, &[("result", "already_stored")]), 1.0, "{text}");
    assert_eq!(
        count(u, ut, &[("result", "refused"), ("code", "ROLLBACK")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        count(u, ut, &[("result", "refused"), ("code", "FORBIDDEN")]),
        1.0,
        "{text}"
    );
    assert_eq!(count(u, ut, &[]), 4.0, "{text}");
    let a = "pkgsign_unauthorized_attempts";
    let at = "pkgsign_unauthorized_attempts_total";
    assert_eq!(
        count(a, at, &[("route", UPLOAD), ("reason", "wrong_role")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        count(a, at, &[("route", VERIFY), ("reason", "bad_token")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        count(a, at, &[("route", VERIFY), ("reason", "path_refused")]),
        1.0,
        "{text}"
    );
    assert_eq!(count(a, at, &[]), 3.0, "{text}");
    let h = "pkgsign_http_request_duration_seconds";
    let hc = "pkgsign_http_request_duration_seconds_count";
    assert_eq!(fams[h]["type"], "histogram");
    assert_eq!(
        count(
            h,
            hc,
            &[("route", "/healthz"), ("method", "GET"), ("status", "200")]
        ),
        3.0,
        "{text}"
    );
    assert_eq!(count(h, hc, &[("route", VERIFY)]), 5.0, "{text}");
    assert_eq!(count(h, hc, &[("route", VERIFY), ("status", "200")]), 2.0);
    assert_eq!(count(h, hc, &[("route", UPLOAD)]), 4.0, "{text}");
    assert_eq!(
        count(h, hc, &[("route", "/api/v1/update/{name}/{version}")]),
        1.0,
        "{text}"
    );
    assert_eq!(count(h, hc, &[("route", "unmatched")]), 1.0, "{text}");
    assert_eq!(count(h, hc, &[]), 3.0 + 5.0 + 4.0 + 1.0 + 1.0, "{text}");
    // Labels never carry a raw path.
    assert!(
        !text.contains("2.0.0") && !text.contains("/no/such"),
        "{text}"
    );
}

/// A client's `X-Request-Id` reaches every audit entry of its request when
/// it looks like a request id; one that is too long or carries other bytes
/// (a forged JSON fragment, a megabyte of padding) is left out instead of
/// being copied into every audit line, and the request is served the same.
#[test]
fn only_request_ids_that_look_like_request_ids_reach_the_audit_log() {
    let s = Setup::new().start();
    let (pkg, sig) = s
        .setup
        .release_in(Path::new("allowed"), "app", "1.0.0", b"r");
    let long = "a".repeat(201);
    let cases = [
        ("req-42_a.b:c+d=/e", true),
        (long.as_str(), false),
        ("x\",\"verified\":true,\"y\":\"", false),
        ("two words", false),
    ];
    for (id, kept) in cases {
        let before = s.audit().len();
        let header = format!("X-Request-Id: {id}");
        s.upload_with(Some(UPLOAD_TOKEN), &pkg, &sig, &[&header])
            .status(if before == 0 { 201 } else { 200 });
        let new = &s.audit()[before..];
        assert!(!new.is_empty());
        for e in new {
            let want = if kept { id } else { "" };
            assert_eq!(e["request_id"], want, "{e}");
        }
    }
}

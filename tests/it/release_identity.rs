//! Signed release identity (signature format v2): a signature names its
//! package, version and expiry, and `verify-package`/`verify-manifest`
//! refuse another package's signature (`--name`), an older release
//! (`--min-version`) and an expired statement, while version 1 signatures
//! keep verifying where no such check is asked for.

use crate::common;
use common::rotation::{now, ps_at, rfc};
use common::{Alg, Env, args, run};

const DAY: u64 = 86_400;

fn signed(env: &Env, name: &str, extra: &[&str]) -> (std::path::PathBuf, common::Key) {
    let key = env.keygen("k", Alg::Ed25519);
    let pkg = env.package(name);
    env.sign(&pkg, &[&key], extra).ok();
    (pkg, key)
}

#[test]
fn a_release_signature_names_its_package_version_and_expiry() {
    let env = Env::new();
    let (pkg, key) = signed(
        &env,
        "app-1.4.2.tar",
        &[
            "--name",
            "app",
            "--release-version",
            "1.4.2",
            "--expires",
            "30d",
        ],
    );
    let sig = std::fs::read_to_string(pkg.with_extension("tar.sig")).unwrap();
    assert!(sig.starts_with("pkgsign-signature v2\n"), "{sig}");
    assert!(sig.contains("\nname: app\nversion: 1.4.2\nversion-scheme: semver\nexpires: "));
    let r = env
        .verify(&pkg, &[&key], &["--name", "app", "--min-version", "1.4.0"])
        .verified();
    let s = &r.json()["signatures"][0];
    assert_eq!(
        (s["name"].as_str(), s["version"].as_str()),
        (Some("app"), Some("1.4.2"))
    );
    assert!(s["expires"].is_string(), "{s}");
    // The same version is not older than itself.
    env.verify(&pkg, &[&key], &["--min-version", "1.4.2"])
        .verified();
}

#[test]
fn another_packages_signature_is_name_mismatch() {
    let env = Env::new();
    let (pkg, key) = signed(
        &env,
        "app-a.tar",
        &["--name", "app-a", "--release-version", "2.0.0"],
    );
    let r = env
        .verify(&pkg, &[&key], &["--name", "app-b"])
        .refused("NAME_MISMATCH");
    assert!(r.stderr.contains("\"app-a\""), "{r:#?}");
    // A version 1 signature names no package: it cannot pass for one.
    let (old, key1) = {
        let env1 = &env;
        let p = env1.package("plain.tar");
        env1.sign(&p, &[&key], &[]).ok();
        (p, &key)
    };
    env.verify(&old, &[key1], &["--name", "app-a"])
        .refused("NAME_MISMATCH");
    // ...and still verifies where no name is asked for.
    env.verify(&old, &[key1], &[]).verified();
}

#[test]
fn an_older_release_is_a_rollback() {
    let env = Env::new();
    let (pkg, key) = signed(
        &env,
        "app.tar",
        &["--name", "app", "--release-version", "1.9.0"],
    );
    // 1.10.0 > 1.9.0 in SemVer precedence (not as text).
    let r = env
        .verify(&pkg, &[&key], &["--min-version", "1.10.0"])
        .refused("ROLLBACK");
    assert!(
        r.stderr.contains("1.9.0") && r.stderr.contains("1.10.0"),
        "{r:#?}"
    );
    // A pre-release is older than its release.
    env.verify(&pkg, &[&key], &["--min-version", "1.9.0-rc.1"])
        .verified();
    // A signature naming no version cannot meet a minimum.
    let plain = env.package("plain.tar");
    env.sign(&plain, &[&key], &["--name", "app"]).ok();
    env.verify(&plain, &[&key], &["--min-version", "0.0.1"])
        .refused("ROLLBACK");
}

#[test]
fn integer_versions_compare_as_numbers_and_semver_is_checked() {
    let env = Env::new();
    let (pkg, key) = signed(
        &env,
        "app.tar",
        &[
            "--release-version",
            "20261201",
            "--version-scheme",
            "integer",
        ],
    );
    env.verify(&pkg, &[&key], &["--min-version", "9999999"])
        .verified();
    env.verify(&pkg, &[&key], &["--min-version", "20261202"])
        .refused("ROLLBACK");
    // Not SemVer and no integer scheme: refused before signing.
    let other = env.package("other.tar");
    let r = env.sign(&other, &[&key], &["--release-version", "1.2", "--json"]);
    r.fails_with(2, "USAGE");
    assert!(!other.with_extension("tar.sig").exists());
}

/// The identity is signed: editing the version of an old release's
/// signature to pass a minimum breaks the signature.
#[test]
fn an_edited_version_line_breaks_the_signature() {
    let env = Env::new();
    let (pkg, key) = signed(
        &env,
        "app.tar",
        &["--name", "app", "--release-version", "1.0.0"],
    );
    let sig = pkg.with_extension("tar.sig");
    let text = std::fs::read_to_string(&sig).unwrap();
    std::fs::write(&sig, text.replace("version: 1.0.0\n", "version: 9.0.0\n")).unwrap();
    env.verify(&pkg, &[&key], &["--min-version", "2.0.0"])
        .refused("SIGNATURE_INVALID");
}

#[test]
fn an_expired_signature_is_refused_with_its_time() {
    let env = Env::new();
    let (pkg, key) = signed(&env, "app.tar", &["--name", "app", "--expires", "1d"]);
    // Inside the window it verifies; two days later it is refused.
    let mut v = args(["verify-package", "--json", "--package"]);
    v.push(pkg.clone().into());
    v.extend(args(["--public-key"]));
    v.push(key.public.clone().into());
    run(ps_at(now() + DAY / 2, &v)).verified();
    let later = run(ps_at(now() + 2 * DAY, &v)).refused("SIGNATURE_EXPIRED");
    let expires = later.json()["signatures"][0]["expires"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(later.stderr.contains(&expires), "{later:#?}");
    // An expiry that is already past is refused when signing.
    let p2 = env.package("b.tar");
    env.sign(&p2, &[&key], &["--expires", &rfc(now() - DAY), "--json"])
        .fails_with(2, "USAGE");
}

#[test]
fn raw_signatures_carry_no_identity() {
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let pkg = env.package("app.tar");
    env.sign(
        &pkg,
        &[&key],
        &["--format", "raw", "--name", "app", "--json"],
    )
    .fails_with(2, "USAGE");
    env.sign(&pkg, &[&key], &["--format", "raw"]).ok();
    env.verify(&pkg, &[&key], &["--name", "app"])
        .refused("NAME_MISMATCH");
}

#[test]
fn verify_manifest_checks_the_lists_release_identity() {
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let file = env.write("rel/a.bin", b"a\n");
    let sums = env.write(
        "rel/SHA256SUMS",
        format!(
            "{}  a.bin\n",
            common::tool_ok(file.parent().unwrap(), "sha256sum", ["a.bin"])
                .split(|b| *b == b' ')
                .next()
                .map(|h| String::from_utf8_lossy(h).into_owned())
                .unwrap()
        ),
    );
    env.sign(
        &sums,
        &[&key],
        &["--name", "rel", "--release-version", "3.0.0"],
    )
    .ok();
    let manifest = |extra: &[&str]| {
        let mut v = args(["verify-manifest", "--json", "--public-key"]);
        v.push(key.public.clone().into());
        v.extend(args(extra));
        v.push(sums.clone().into());
        env.run(v)
    };
    manifest(&["--name", "rel", "--min-version", "3.0.0"]).ok();
    manifest(&["--name", "other"]).refused("NAME_MISMATCH");
    manifest(&["--min-version", "3.0.1"]).refused("ROLLBACK");
}

/// `docs/signature-format.md` §10.4: the example in the doc is the
/// committed `keys-example/example-package.tar.gz.v2.sig`, byte for byte,
/// and it verifies with the checks the doc shows, and fails the others.
#[test]
fn the_v2_worked_example_is_the_committed_file_and_verifies() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/signature-format.md")).unwrap();
    let section = &doc[doc.find("### 10.4 Worked example").expect("§10.4")..];
    let start = section
        .find("```\npkgsign-signature v2\n")
        .expect("the example")
        + 4;
    let end = start + section[start..].find("```").expect("its end");
    let example = &section[start..end];
    let committed_path = root.join("keys-example/example-package.tar.gz.v2.sig");
    let committed = std::fs::read_to_string(&committed_path).unwrap();
    assert_eq!(example, committed, "the doc shows the committed file");
    let verify = |extra: &[&str]| {
        let mut v = args(["verify-package", "--json", "--package"]);
        v.push(root.join("keys-example/example-package.tar.gz").into());
        v.extend(args(["--signature"]));
        v.push(committed_path.clone().into());
        v.extend(args(["--trusted-keys"]));
        v.push(root.join("keys-example/trusted").into());
        v.extend(args(extra));
        run(common::ps(v))
    };
    let ok = verify(&["--name", "example-package", "--min-version", "1.0.0"]).verified();
    assert_eq!(ok.json()["signatures"][0]["version"], "1.0.0");
    verify(&["--name", "other"]).refused("NAME_MISMATCH");
    verify(&["--min-version", "1.0.1"]).refused("ROLLBACK");
    let mut late = args(["verify-package", "--json", "--package"]);
    late.push(root.join("keys-example/example-package.tar.gz").into());
    late.extend(args(["--signature"]));
    late.push(committed_path.into());
    late.extend(args(["--trusted-keys"]));
    late.push(root.join("keys-example/trusted").into());
    run(ps_at(
        pkgsign::text::parse_time("2036-01-01T00:00:01Z").unwrap(),
        late,
    ))
    .refused("SIGNATURE_EXPIRED");
}

/// `verify-package --package -` reads standard input once, and `--output`
/// writes exactly the verified bytes, atomically; refused bytes write
/// nothing, and an oversized input is refused (`--max-size`).
#[test]
fn standard_input_is_verified_once_and_output_is_what_was_verified() {
    let env = Env::new();
    let (pkg, key) = signed(&env, "app.tar", &["--name", "app"]);
    let sig = pkg.with_extension("tar.sig");
    let data = std::fs::read(&pkg).unwrap();
    let out = env.path("out/app.tar");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let cmd = |extra: &[&str]| {
        let mut v = args(["verify-package", "--json", "--package", "-", "--signature"]);
        v.push(sig.clone().into());
        v.extend(args(["--public-key"]));
        v.push(key.public.clone().into());
        v.extend(args(extra));
        common::ps(v)
    };
    let out_s = out.to_str().unwrap();
    common::run_with(
        cmd(&["--name", "app", "--output", out_s]),
        Some(&data),
        common::DEFAULT_TIMEOUT,
    )
    .verified();
    assert_eq!(std::fs::read(&out).unwrap(), data);
    // Altered bytes on stdin: refused, and the earlier output is untouched.
    let mut evil = data.clone();
    evil[10] ^= 1;
    std::fs::write(&out, b"previous").unwrap();
    common::run_with(
        cmd(&["--output", out_s]),
        Some(&evil),
        common::DEFAULT_TIMEOUT,
    )
    .refused("SIGNATURE_INVALID");
    assert_eq!(std::fs::read(&out).unwrap(), b"previous");
    assert_eq!(
        common::leftovers(out.parent().unwrap()),
        Vec::<String>::new()
    );
    common::run_with(
        cmd(&["--max-size", "100"]),
        Some(&data),
        common::DEFAULT_TIMEOUT,
    )
    .fails_with(2, "FILE_TOO_LARGE");
    // Standard input needs its signature named.
    let mut v = args(["verify-package", "--json", "--package", "-", "--public-key"]);
    v.push(key.public.clone().into());
    common::run_with(common::ps(v), Some(&data), common::DEFAULT_TIMEOUT).fails_with(2, "USAGE");
}

/// The swap attack on verify-then-copy: in 400 runs, half of them
/// `verify-package --output` and half `apply --output`, another process
/// keeps replacing the package path with another validly signed package.
/// What is written is always the package the signature is for, never the
/// other one.
#[test]
fn a_package_swapped_during_verification_is_never_what_is_written() {
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let a = env.package("a.tar");
    let b = env.package("b.tar");
    env.sign(
        &a,
        &[&key],
        &["--name", "app-a", "--release-version", "1.0.0"],
    )
    .ok();
    env.sign(
        &b,
        &[&key],
        &["--name", "app-b", "--release-version", "1.0.0"],
    )
    .ok();
    let (da, db) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let target = env.path("incoming.tar");
    std::fs::copy(&a, &target).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, target, a, b) = (stop.clone(), target.clone(), a.clone(), b.clone());
        std::thread::spawn(move || {
            let tmp = target.with_extension("swap");
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::fs::copy(if i.is_multiple_of(2) { &b } else { &a }, &tmp).unwrap();
                std::fs::rename(&tmp, &target).unwrap();
                i += 1;
            }
        })
    };
    let out = env.path("installed.tar");
    let (mut written, mut refused) = (0, 0);
    for i in 0..400u32 {
        let _ = std::fs::remove_file(&out);
        // Half the runs through verify-package, half through apply (each
        // with a state of its own, so that every one applies).
        let mut v = if i.is_multiple_of(2) {
            args(["verify-package", "--json", "--package"])
        } else {
            args(["apply", "--json", "--package"])
        };
        v.push(target.clone().into());
        v.extend(args(["--signature"]));
        v.push(a.with_extension("tar.sig").into());
        v.extend(args(["--public-key"]));
        v.push(key.public.clone().into());
        v.extend(args(["--name", "app-a", "--output"]));
        v.push(out.clone().into());
        if !i.is_multiple_of(2) {
            v.extend(args(["--state-dir"]));
            v.push(env.path(format!("state-{i}")).into());
        }
        let r = run(common::ps(v));
        if r.code == 0 {
            let got = std::fs::read(&out).unwrap();
            assert_eq!(got, da, "what was written is the verified package");
            assert_ne!(got, db);
            written += 1;
        } else {
            assert_eq!(r.code, 1, "{r:#?}");
            assert!(!out.exists(), "nothing is written when refused");
            refused += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    println!("swap loop: {written} verified and written, {refused} refused");
    assert!(written > 0, "some runs read the right package");
}

/// After a rotation, an old release is signed again by the current key,
/// with the release identity taken from its old signature
/// (`--identity-from`); a file the old signature does not vouch for is
/// never re-signed.
#[test]
fn an_old_release_is_re_signed_with_the_current_key_and_its_identity() {
    let env = Env::new();
    let old_key = env.keygen("old", Alg::Ed25519);
    let current = env.keygen("current", Alg::Rsa);
    let pkg = env.package("app-1.2.0.tar");
    env.sign(
        &pkg,
        &[&old_key],
        &["--name", "app", "--release-version", "1.2.0"],
    )
    .ok();
    let sig = pkg.with_extension("tar.sig");
    let sig_s = sig.to_str().unwrap().to_string();
    // Workers trust only the current key now.
    env.verify(&pkg, &[&current], &["--name", "app"])
        .refused("KEY_NOT_TRUSTED");
    env.sign(
        &pkg,
        &[&current],
        &["--identity-from", &sig_s, "--output", &sig_s],
    )
    .ok();
    let r = env
        .verify(
            &pkg,
            &[&current],
            &["--name", "app", "--min-version", "1.2.0"],
        )
        .verified();
    assert_eq!(r.json()["signatures"][0]["version"], "1.2.0");
    // Another file is never re-signed under that identity.
    let evil = env.package("evil.tar");
    let evil_sig = env.path("evil.tar.sig");
    let r = env.sign(&evil, &[&current], &["--identity-from", &sig_s, "--json"]);
    r.fails_with(2, "USAGE");
    assert!(!evil_sig.exists());
    // A version 1 signature names no release to take.
    let plain = env.package("plain.tar");
    env.sign(&plain, &[&old_key], &[]).ok();
    let plain_sig = env.path("plain.tar.sig");
    env.sign(
        &plain,
        &[&current],
        &["--identity-from", plain_sig.to_str().unwrap(), "--json"],
    )
    .fails_with(2, "USAGE");
}

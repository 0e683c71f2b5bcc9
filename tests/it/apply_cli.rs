//! `pkgsign apply`: the worker's update path. Read once, verify over the
//! private copy, refuse rollbacks and reused versions against the state,
//! apply exactly the verified bytes, then record them.

use std::path::{Path, PathBuf};

use crate::common;
use common::{Alg, Env, Key, args, run};

/// A release `app` VERSION signed by `key`; returns the package path.
fn release(env: &Env, key: &Key, name: &str, version: &str, body: &str) -> PathBuf {
    let pkg = env.write(format!("{name}-{version}-{}.tar", body.len()), body);
    env.sign(
        &pkg,
        &[key],
        &["--name", name, "--release-version", version],
    )
    .ok();
    pkg
}

/// `pkgsign apply` of `pkg` as `app` with `key` trusted and the state in
/// `STATE`, then `extra`.
fn apply_cmd(env: &Env, key: &Key, pkg: &Path, extra: &[&str]) -> std::process::Command {
    let mut v = args(["apply", "--json", "--package"]);
    v.push(pkg.into());
    v.extend(args(["--public-key"]));
    v.push(key.public.clone().into());
    v.extend(args(["--name", "app", "--state-dir"]));
    v.push(env.path("state").into());
    v.extend(args(extra));
    let mut c = common::ps(v);
    c.current_dir(env.dir.path());
    c
}

fn apply(env: &Env, key: &Key, pkg: &Path, extra: &[&str]) -> common::Run {
    run(apply_cmd(env, key, pkg, extra))
}

#[test]
fn a_release_is_applied_once_and_an_older_one_is_a_rollback() {
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let old = release(&env, &key, "app", "1.0.0", "old release\n");
    let new = release(&env, &key, "app", "1.1.0", "new release\n");
    let out = env.path("app.tar");
    let out_s = out.to_str().unwrap();
    let r = apply(&env, &key, &new, &["--output", out_s]).ok();
    assert_eq!(r.json()["applied"], true, "{r:#?}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "new release\n");
    // The same release again: a no-op, exit 0.
    let r = apply(&env, &key, &new, &["--output", out_s]).ok();
    assert_eq!(r.json()["already_applied"], true, "{r:#?}");
    // The older release, validly signed, renamed to look new: refused.
    let renamed = env.path("app-latest.tar");
    std::fs::copy(&old, &renamed).unwrap();
    std::fs::copy(
        old.with_extension("tar.sig"),
        env.path("app-latest.tar.sig"),
    )
    .unwrap();
    let r = apply(&env, &key, &renamed, &["--output", out_s]).refused("ROLLBACK");
    assert!(
        r.stderr.contains("1.0.0") && r.stderr.contains("1.1.0"),
        "{r:#?}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "new release\n");
    // An operator's deliberate downgrade, to exactly that version.
    apply(
        &env,
        &key,
        &renamed,
        &["--allow-downgrade-to", "1.0.1", "--output", out_s],
    )
    .refused("ROLLBACK");
    let r = apply(
        &env,
        &key,
        &renamed,
        &["--allow-downgrade-to", "1.0.0", "--output", out_s],
    )
    .ok();
    assert_eq!(r.json()["downgrade_from"], "1.1.0");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "old release\n");
}

#[test]
fn a_version_reused_for_other_bytes_is_refused() {
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let first = release(&env, &key, "app", "2.0.0", "first\n");
    let second = release(&env, &key, "app", "2.0.0", "second build\n");
    let out = env.path("app.tar");
    apply(&env, &key, &first, &["--output", out.to_str().unwrap()]).ok();
    apply(&env, &key, &second, &["--output", out.to_str().unwrap()]).refused("VERSION_REUSED");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "first\n");
}

#[test]
fn a_state_file_that_does_not_parse_stops_the_worker() {
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let pkg = release(&env, &key, "app", "1.0.0", "release\n");
    let out = env.path("app.tar");
    apply(&env, &key, &pkg, &["--output", out.to_str().unwrap()]).ok();
    std::fs::remove_file(&out).unwrap();
    for junk in ["", "{", "{\"format\":1}", "not json at all\n"] {
        std::fs::write(env.path("state/app.json"), junk).unwrap();
        apply(&env, &key, &pkg, &["--output", out.to_str().unwrap()])
            .fails_with(2, "METADATA_INVALID");
        assert!(
            !out.exists(),
            "nothing is applied when the state is unreadable"
        );
    }
}

#[test]
fn only_signed_versions_of_the_named_package_are_applied() {
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let out = env.path("out.tar");
    let out_s = out.to_str().unwrap();
    // Another package's release.
    let other = release(&env, &key, "other", "9.0.0", "other\n");
    apply(&env, &key, &other, &["--output", out_s]).refused("NAME_MISMATCH");
    // A version 1 signature: no name, no version.
    let plain = env.write("plain.tar", "plain\n");
    env.sign(&plain, &[&key], &[]).ok();
    apply(&env, &key, &plain, &["--output", out_s]).refused("NAME_MISMATCH");
    // Named, but no version: rollback cannot be checked.
    let unversioned = env.write("unversioned.tar", "u\n");
    env.sign(&unversioned, &[&key], &["--name", "app"]).ok();
    apply(&env, &key, &unversioned, &["--output", out_s]).refused("ROLLBACK");
    assert!(!out.exists());
}

#[test]
fn exec_runs_on_the_verified_copy_and_a_failure_is_not_recorded() {
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let pkg = release(&env, &key, "app", "3.1.4", "payload\n");
    let seen = env.path("seen.txt");
    let script = format!(
        "printf '%s %s %s %s\\n' \"$PKGSIGN_VERIFIED_NAME\" \"$PKGSIGN_VERIFIED_VERSION\" \"$PKGSIGN_VERIFIED_DIGEST\" \"$(cat \"$1\")\" > {}; exit \"$FAIL\"",
        seen.display()
    );
    let exec = |code: &str| {
        let mut c = apply_cmd(&env, &key, &pkg, &["--exec", "sh", "-c", &script, "sh"]);
        c.env("FAIL", code);
        run(c)
    };
    let r = exec("3").fails(2);
    assert!(r.stderr.contains("not recorded"), "{r:#?}");
    assert!(!env.path("state/app.json").exists());
    exec("0").ok();
    let line = std::fs::read_to_string(&seen).unwrap();
    assert!(line.starts_with("app 3.1.4 sha256:"), "{line}");
    assert!(line.ends_with(" payload\n"), "{line}");
    // The staged copy is gone after the command.
    assert_eq!(
        common::leftovers(&env.path("state/staging")),
        Vec::<String>::new()
    );
    exec("0").ok(); // already applied: the command does not run again
}

#[test]
fn standard_input_is_applied_and_a_bad_signature_is_an_unauthorized_attempt() {
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let pkg = release(&env, &key, "app", "1.0.0", "from a pipe\n");
    let sig = pkg.with_extension("tar.sig");
    let log = env.path("audit.jsonl");
    let out = env.path("app.tar");
    let cmd = || {
        let mut v = args(["apply", "--json", "--package", "-", "--signature"]);
        v.push(sig.clone().into());
        v.extend(args(["--public-key"]));
        v.push(key.public.clone().into());
        v.extend(args(["--name", "app", "--state-dir"]));
        v.push(env.path("state").into());
        v.extend(args(["--audit-log"]));
        v.push(log.clone().into());
        v.extend(args(["--output"]));
        v.push(out.clone().into());
        common::ps(v)
    };
    common::run_with(cmd(), Some(b"tampered bytes\n"), common::DEFAULT_TIMEOUT)
        .refused("SIGNATURE_INVALID");
    assert!(!out.exists());
    common::run_with(cmd(), Some(b"from a pipe\n"), common::DEFAULT_TIMEOUT).ok();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "from a pipe\n");
    let events: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].to_string())
        .collect();
    assert_eq!(
        events,
        ["\"unauthorized_update_attempt\"", "\"update_applied\""],
        "{events:?}"
    );
}

/// Several workers applying at once on one state directory: each decision
/// is made under the state's lock, so the state always parses and ends at
/// the highest version any of them applied.
#[test]
fn concurrent_applies_share_one_state_safely() {
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let versions = ["1.0.0", "1.1.0", "1.2.0", "2.0.0", "2.0.1", "2.1.0"];
    let pkgs: Vec<PathBuf> = versions
        .iter()
        .map(|v| release(&env, &key, "app", v, &format!("release {v}\n")))
        .collect();
    let children: Vec<_> = pkgs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let out = format!("out-{i}.tar");
            apply_cmd(&env, &key, p, &["--output", &out])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut applied = Vec::new();
    for (i, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        match out.status.code() {
            Some(0) => applied.push(versions[i]),
            Some(1) => {}
            other => panic!("{other:?}: {out:?}"),
        }
    }
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("state/app.json")).unwrap())
            .unwrap();
    let highest = applied.iter().max_by_key(|v| semver_key(v)).unwrap();
    assert_eq!(state["version"], *highest, "applied: {applied:?}");
}

fn semver_key(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap()).collect()
}

// ---------------------------------------------------------------------------
// --install-dir

/// One archive entry: path, kind, data (or link target).
type TarEntry<'a> = (&'a str, tar::EntryType, &'a [u8]);

/// A tar archive built entry by entry.
fn tarball(entries: &[TarEntry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, data) in entries {
        let mut h = tar::Header::new_gnu();
        // Written raw, so that the archive can hold what a careful writer
        // would refuse (absolute paths, `..`).
        let name = &mut h.as_old_mut().name;
        name.fill(0);
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(0o4755);
        if kind.is_symlink() || kind.is_hard_link() {
            h.set_link_name(std::str::from_utf8(data).unwrap()).unwrap();
            h.set_size(0);
            h.set_cksum();
            b.append(&h, std::io::empty()).unwrap();
        } else {
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
    }
    b.into_inner().unwrap()
}

fn gz(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn install(env: &Env, key: &Key, version: &str, archive: &[u8], extra: &[&str]) -> common::Run {
    let pkg = release_bytes(env, key, version, archive);
    let mut e = vec!["--install-dir", "inst"];
    e.extend_from_slice(extra);
    apply(env, key, &pkg, &e)
}

fn release_bytes(env: &Env, key: &Key, version: &str, archive: &[u8]) -> PathBuf {
    let pkg = env.write(format!("app-{version}-{}.tar.gz", archive.len()), archive);
    env.sign(
        &pkg,
        &[key],
        &["--name", "app", "--release-version", version],
    )
    .ok();
    pkg
}

#[test]
fn install_dir_extracts_switches_current_and_keeps_n() {
    use tar::EntryType as T;
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    for (i, v) in ["1.0.0", "1.1.0", "2.0.0"].iter().enumerate() {
        let body = format!("version {v}\n");
        let archive = gz(&tarball(&[
            ("bin/", T::Directory, b""),
            ("bin/app", T::Regular, body.as_bytes()),
            ("bin/app-link", T::Symlink, b"app"),
        ]));
        let r = install(&env, &key, v, &archive, &["--keep", "2"]).ok();
        assert_eq!(r.json()["entries"], 3, "{r:#?}");
        assert_eq!(
            std::fs::read_link(env.path("inst/current")).unwrap(),
            Path::new("releases").join(v)
        );
        assert_eq!(
            std::fs::read_to_string(env.path("inst/current/bin/app-link")).unwrap(),
            body
        );
        // setuid and setgid bits are dropped.
        assert_eq!(
            common::mode(&env.path("inst/current/bin/app")) & 0o7777,
            0o755
        );
        if i == 2 {
            assert_eq!(r.json()["pruned"], serde_json::json!(["1.0.0"]));
        }
    }
    let mut left: Vec<String> = std::fs::read_dir(env.path("inst/releases"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["1.1.0", "2.0.0"]);
}

/// Each entry that could reach outside the release, or is not plain
/// content, is refused: nothing is switched, nothing is recorded, and no
/// file appears outside the install directory.
#[test]
fn install_dir_refuses_every_escaping_or_special_entry() {
    use tar::EntryType as T;
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let good = gz(&tarball(&[("app", T::Regular, b"good\n")]));
    install(&env, &key, "1.0.0", &good, &[]).ok();
    let outside = env.path("escaped");
    let abs = format!("{}", outside.display());
    let cases: Vec<(&str, Vec<TarEntry<'_>>)> = vec![
        ("absolute path", vec![(abs.as_str(), T::Regular, b"x")]),
        ("dot-dot", vec![("../escaped", T::Regular, b"x")]),
        (
            "dot-dot inside",
            vec![("a/../../escaped", T::Regular, b"x")],
        ),
        ("symlink out", vec![("l", T::Symlink, b"../..")]),
        ("absolute symlink", vec![("l", T::Symlink, abs.as_bytes())]),
        (
            "through a symlink",
            vec![("l", T::Symlink, b"."), ("l/x", T::Symlink, b"..")],
        ),
        (
            "hard link",
            vec![("a", T::Regular, b"a"), ("b", T::Link, b"a")],
        ),
        ("fifo", vec![("f", T::Fifo, b"")]),
        ("char device", vec![("d", T::Char, b"")]),
        ("block device", vec![("d", T::Block, b"")]),
        (
            "same path twice",
            vec![("a", T::Regular, b"1"), ("a", T::Regular, b"2")],
        ),
    ];
    for (i, (what, entries)) in cases.iter().enumerate() {
        let archive = gz(&tarball(entries));
        let r = install(&env, &key, &format!("2.0.{i}"), &archive, &[]).refused("ARCHIVE_REFUSED");
        assert!(r.stderr.contains("refused"), "{what}: {r:#?}");
        assert_eq!(
            std::fs::read_link(env.path("inst/current")).unwrap(),
            Path::new("releases/1.0.0"),
            "{what}: current is not switched"
        );
        assert!(!outside.exists(), "{what}: nothing outside");
        let state = std::fs::read_to_string(env.path("state/app.json")).unwrap();
        assert!(state.contains("\"1.0.0\""), "{what}: not recorded");
        let leftovers: Vec<_> = std::fs::read_dir(env.path("inst/releases"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["1.0.0"], "{what}");
    }
}

/// A gzip bomb (a few KiB expanding far beyond the limit) and an archive
/// of too many entries are refused before they fill the disk.
#[test]
fn install_dir_bounds_size_and_entries() {
    use tar::EntryType as T;
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let zeros = vec![0u8; 64 << 20];
    let bomb = gz(&tarball(&[("big", T::Regular, &zeros)]));
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    install(&env, &key, "1.0.0", &bomb, &["--max-extract-size", "16M"]).refused("ARCHIVE_REFUSED");
    assert!(!env.path("inst/current").exists());
    let many: Vec<(String, T, &[u8])> = (0..50)
        .map(|i| (format!("f{i}"), T::Regular, &b"x"[..]))
        .collect();
    let many: Vec<(&str, T, &[u8])> = many.iter().map(|(p, k, d)| (p.as_str(), *k, *d)).collect();
    install(
        &env,
        &key,
        "1.0.1",
        &gz(&tarball(&many)),
        &["--max-entries", "10"],
    )
    .refused("ARCHIVE_REFUSED");
    install(
        &env,
        &key,
        "1.0.2",
        &gz(&tarball(&many)),
        &["--max-entries", "50"],
    )
    .ok();
}

/// A release of `files` files, each naming the version, and a last file
/// `zz-complete`: a release directory is complete when all are there.
fn big_release(version: &str, files: usize) -> Vec<u8> {
    let bodies: Vec<(String, String)> = (0..files)
        .map(|i| (format!("d{}/f{i}", i % 20), format!("{version} {i}\n")))
        .chain(std::iter::once((
            "zz-complete".to_string(),
            version.to_string(),
        )))
        .collect();
    let entries: Vec<TarEntry<'_>> = bodies
        .iter()
        .map(|(p, b)| (p.as_str(), tar::EntryType::Regular, b.as_bytes()))
        .collect();
    gz(&tarball(&entries))
}

/// Whether `dir` holds the whole release `version` of `files` files.
fn complete(dir: &Path, version: &str, files: usize) -> bool {
    std::fs::read_to_string(dir.join("zz-complete")).is_ok_and(|v| v == version)
        && (0..files).all(|i| {
            std::fs::read_to_string(dir.join(format!("d{}/f{i}", i % 20)))
                .is_ok_and(|b| b == format!("{version} {i}\n"))
        })
}

/// kill -9 at random instants of `apply --install-dir`: `current` always
/// points to a complete release, the state never names a release newer
/// than the one `current` points to, and the next run cleans up and works.
#[test]
fn install_dir_survives_sigkill_at_random_instants() {
    use std::hash::{BuildHasher, Hasher};
    const FILES: usize = 300;
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let first = release_bytes(&env, &key, "1.0.0", &big_release("1.0.0", FILES));
    let start = std::time::Instant::now();
    apply(&env, &key, &first, &["--install-dir", "inst"]).ok();
    let full = start.elapsed();
    let mut seed = std::collections::hash_map::RandomState::new().build_hasher();
    let (mut killed, mut finished) = (0, 0);
    for i in 0..20 {
        let v = format!("2.0.{i}");
        let pkg = release_bytes(&env, &key, &v, &big_release(&v, FILES));
        let mut child = apply_cmd(&env, &key, &pkg, &["--install-dir", "inst"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        seed.write_usize(i);
        let delay = full.mul_f64((seed.finish() % 1000) as f64 / 1000.0);
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.success() {
            finished += 1;
        } else {
            killed += 1;
        }
        // `current` is a complete release.
        let target = std::fs::read_link(env.path("inst/current")).unwrap();
        let live = target.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            complete(&env.path("inst").join(&target), &live, FILES),
            "run {i}: current -> {target:?} is not complete"
        );
        // The state names the live release or an older one.
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(env.path("state/app.json")).unwrap())
                .unwrap();
        let recorded = state["version"].as_str().unwrap().to_string();
        let patch = |s: &str| -> (u64, u64) {
            let p: Vec<u64> = s.split('.').map(|x| x.parse().unwrap()).collect();
            (p[0], p[2])
        };
        assert!(
            patch(&recorded) <= patch(&live),
            "run {i}: state {recorded}, live {live}"
        );
    }
    println!("kill loop: {killed} killed, {finished} finished");
    // The next run after all that: applied, and nothing left behind.
    let last = release_bytes(&env, &key, "3.0.0", &big_release("3.0.0", FILES));
    apply(&env, &key, &last, &["--install-dir", "inst"]).ok();
    assert!(complete(&env.path("inst/current"), "3.0.0", FILES));
    let junk: Vec<String> = std::fs::read_dir(env.path("inst/releases"))
        .unwrap()
        .chain(std::fs::read_dir(env.path("inst")).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert_eq!(junk, Vec::<String>::new());
    assert!(killed > 0, "some runs were killed");
}

/// zstd- and xz-compressed tar archives install as gzip ones do, and the
/// same refusals and bounds apply to what they hold.
#[test]
fn install_dir_reads_zstd_and_xz_archives() {
    use tar::EntryType as T;
    let zst = |d: &[u8]| {
        ruzstd::encoding::compress_to_vec(d, ruzstd::encoding::CompressionLevel::Fastest)
    };
    let xz = |d: &[u8]| {
        let mut out = Vec::new();
        lzma_rs::xz_compress(&mut std::io::BufReader::new(d), &mut out).unwrap();
        out
    };
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    for (i, (kind, compress)) in [("zstd", &zst as &dyn Fn(&[u8]) -> Vec<u8>), ("xz", &xz)]
        .iter()
        .enumerate()
    {
        let v = format!("1.{i}.0");
        let body = format!("{kind} release\n");
        let archive = compress(&tarball(&[
            ("bin/app", T::Regular, body.as_bytes()),
            ("bin/link", T::Symlink, b"app"),
        ]));
        install(&env, &key, &v, &archive, &[]).ok();
        assert_eq!(
            std::fs::read_to_string(env.path("inst/current/bin/link")).unwrap(),
            body,
            "{kind}"
        );
        let evil = compress(&tarball(&[("../escaped", T::Regular, b"x")]));
        install(&env, &key, &format!("2.{i}.0"), &evil, &[]).refused("ARCHIVE_REFUSED");
        let zeros = vec![0u8; 32 << 20];
        let bomb = compress(&tarball(&[("big", T::Regular, &zeros)]));
        install(
            &env,
            &key,
            &format!("3.{i}.0"),
            &bomb,
            &["--max-extract-size", "1M"],
        )
        .refused("ARCHIVE_REFUSED");
        assert_eq!(
            std::fs::read_link(env.path("inst/current")).unwrap(),
            Path::new("releases").join(&v),
            "{kind}: nothing switched"
        );
    }
    assert!(!env.path("escaped").exists());
}

/// The verified copy is staged beside `--output`, and `--install-dir`
/// extracts under its directory: in a directory others may write (and
/// without the sticky bit), another user could rename their own file over
/// the staged copy between the check and the rename. Refused
/// (`PATH_REFUSED`, exit 2); a sticky directory like /tmp is fine.
#[test]
fn output_and_install_dirs_others_can_write_are_refused() {
    use tar::EntryType as T;
    let env = Env::new();
    let key = env.keygen("k", Alg::Ed25519);
    let pkg = release_bytes(
        &env,
        &key,
        "1.0.0",
        &gz(&tarball(&[("a", T::Regular, b"a")])),
    );
    let open = env.path("open");
    std::fs::create_dir(&open).unwrap();
    common::chmod(&open, 0o777);
    apply(&env, &key, &pkg, &["--output", "open/app.tar.gz"]).fails_with(2, "PATH_REFUSED");
    assert!(!open.join("app.tar.gz").exists());
    apply(&env, &key, &pkg, &["--install-dir", "open"]).fails_with(2, "PATH_REFUSED");
    assert!(!open.join("current").exists());
    let mut v = args(["verify-package", "--json", "--package"]);
    v.push(pkg.clone().into());
    v.extend(args(["--public-key"]));
    v.push(key.public.clone().into());
    v.extend(args(["--output"]));
    v.push(open.join("copy").into());
    run(common::ps(v)).fails_with(2, "PATH_REFUSED");
    // Sticky (as /tmp): others cannot rename over our files.
    common::chmod(&open, 0o1777);
    apply(&env, &key, &pkg, &["--output", "open/app.tar.gz"]).ok();
}

/// A crash at each step of `--install-dir` (test builds abort at the step
/// `PKGSIGN_TEST_CRASH_AT` names): after extraction (11), after the rename
/// into `releases/` (12), and after the switch but before the state is
/// written (13). `current` stays on the old release until the switch, the
/// state never names the new release before it is live, and the next run
/// completes the update and leaves nothing behind.
#[test]
fn install_dir_crash_at_each_step_leaves_a_consistent_state() {
    use tar::EntryType as T;
    const { assert!(pkgsign::rotate::CRASH_POINTS) };
    for step in [11u32, 12, 13] {
        let env = Env::new();
        let key = env.keygen("k", Alg::Ed25519);
        let old = release_bytes(
            &env,
            &key,
            "1.0.0",
            &gz(&tarball(&[("v", T::Regular, b"1\n")])),
        );
        apply(&env, &key, &old, &["--install-dir", "inst"]).ok();
        let new = release_bytes(
            &env,
            &key,
            "2.0.0",
            &gz(&tarball(&[("v", T::Regular, b"2\n")])),
        );
        let mut c = apply_cmd(&env, &key, &new, &["--install-dir", "inst"]);
        c.env(pkgsign::rotate::CRASH_ENV, step.to_string());
        let r = common::capture(c, None, common::DEFAULT_TIMEOUT);
        assert_eq!(r.signal, Some(6), "step {step}: aborted there: {r:#?}");
        let live = std::fs::read_to_string(env.path("inst/current/v")).unwrap();
        let state = std::fs::read_to_string(env.path("state/app.json")).unwrap();
        assert!(
            state.contains("\"1.0.0\""),
            "step {step}: the state names the old release"
        );
        assert_eq!(live, if step == 13 { "2\n" } else { "1\n" }, "step {step}");
        // The next run finishes the update, and cleans up.
        let r = apply(&env, &key, &new, &["--install-dir", "inst"]).ok();
        assert_eq!(r.json()["applied"], true, "step {step}: {r:#?}");
        assert_eq!(
            std::fs::read_to_string(env.path("inst/current/v")).unwrap(),
            "2\n"
        );
        let state = std::fs::read_to_string(env.path("state/app.json")).unwrap();
        assert!(state.contains("\"2.0.0\""), "step {step}");
        let dots: Vec<String> = std::fs::read_dir(env.path("inst/releases"))
            .unwrap()
            .chain(std::fs::read_dir(env.path("inst")).unwrap())
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert_eq!(dots, Vec::<String>::new(), "step {step}");
    }
}

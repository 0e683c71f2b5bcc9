//! A trusted-keys directory of 1,000 keys, through the cache that lets a
//! verification read only the key its signature names
//! (`TDIR/.cache/pkgsign-trust-index`, src/trustindex.rs): the cache is
//! built and used, and every way of making it lie or go stale still gives
//! the full scan's answer.

use crate::common;

use std::path::{Path, PathBuf};

use common::rotation::*;
use common::rotation::{HandKey as Key, hand_keygen as keygen};
use common::*;
use pkgsign::keys::{Fingerprint, KeySource, KeySpec, LocalKey, encoding, generate};

const INDEX: &str = ".cache/pkgsign-trust-index";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn trust(args: &[&str]) -> Run {
    let mut v = vec!["trust"];
    v.extend_from_slice(args);
    run(ps(v))
}

fn signed_by(env: &Env, key: &Key, name: &str) -> PathBuf {
    let pkg = env.package(name);
    run(ps(sign_key_args(&pkg, &key.pem, None))).ok();
    pkg
}

fn verify(tdir: &Path, pkg: &Path) -> Run {
    run(ps(verify_args_in(tdir, pkg, None)))
}

/// A public key PEM of a fresh Ed25519 key.
fn fresh_pub() -> String {
    let key = LocalKey::new(generate(KeySpec::Ed25519).unwrap(), PathBuf::new());
    encoding::public_key_to_pem(key.public_key()).unwrap()
}

/// `dir` with `signer` and 999 other keys: listed in trust.toml (`listed`)
/// or dropped in by hand.
fn thousand(env: &Env, dir: &str, signer: &Key, listed: bool) -> PathBuf {
    let t = env.path(dir);
    trust(&["add", s(&t), s(&signer.public)]).ok();
    let mut m = meta(&t, "trust.toml");
    for i in 0..999 {
        let name = format!("key-{i:04}.pub");
        std::fs::write(t.join(&name), fresh_pub()).unwrap();
        if listed {
            // As `trust add` writes it.
            let e = m.entry(&fp_of_pub(&t.join(&name)));
            e.file = Some(name);
            e.name = Some(format!("key-{i:04}"));
        }
    }
    m.save().unwrap();
    assert_eq!(pub_fps(&t).len(), 1000);
    t
}

/// Verify until the cache exists (the first full scan makes its
/// directory, the next writes it) and is used; returns its text.
fn build_cache(tdir: &Path, pkg: &Path, expect_ok: bool) -> String {
    for _ in 0..2 {
        let r = verify(tdir, pkg);
        if expect_ok {
            r.verified();
        } else {
            r.fails(1);
        }
    }
    std::fs::read_to_string(tdir.join(INDEX))
        .unwrap_or_else(|e| panic!("no cache in {}: {e}", tdir.display()))
}

/// Rewrite a file in place (same inode, so the directory does not change).
fn rewrite_in_place(path: &Path, data: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap();
    f.write_all(data).unwrap();
}

#[test]
fn cached_verify_reads_only_the_key_the_signature_names() {
    let env = Env::new();
    let k = keygen(&env, "signer");
    let t = thousand(&env, "hand", &k, false);
    std::fs::remove_file(t.join("trust.toml")).unwrap();
    let pkg = signed_by(&env, &k, "app.tar");
    let index = build_cache(&t, &pkg, true);
    assert!(index.contains(k.fp.as_str()), "{index}");
    // An unrelated key file garbled in place is not read (a full scan
    // would warn about it); the signer's key is.
    rewrite_in_place(&t.join("key-0500.pub"), b"garbage");
    let r = verify(&t, &pkg).verified();
    assert!(!r.stderr.contains("key-0500.pub"), "{r:#?}");
    rewrite_in_place(&t.join("key-0500.pub"), fresh_pub().as_bytes());
    rewrite_in_place(&k_file(&t), fresh_pub().as_bytes());
    verify(&t, &pkg).refused("KEY_NOT_TRUSTED");
}

/// The signer's file in a directory made by [`thousand`].
fn k_file(t: &Path) -> PathBuf {
    t.join("signer.pub")
}

#[test]
fn revoked_key_among_a_thousand_listed_is_refused_after_the_cache_is_built() {
    let env = Env::new();
    let k = keygen(&env, "signer");
    let t = thousand(&env, "listed", &k, true);
    let pkg = signed_by(&env, &k, "app.tar");
    build_cache(&t, &pkg, true);
    trust(&["revoke", s(&t), k.fp.as_str()]).ok();
    verify(&t, &pkg).refused("KEY_REVOKED");
    // Through the cache rebuilt for the new trust.toml, too.
    build_cache(&t, &pkg, false);
    verify(&t, &pkg).refused("KEY_REVOKED");
}

#[test]
fn trust_toml_edited_in_place_after_indexing_is_read_again() {
    let env = Env::new();
    let k = keygen(&env, "signer");
    let t = thousand(&env, "listed", &k, true);
    let pkg = signed_by(&env, &k, "app.tar");
    build_cache(&t, &pkg, true);
    let toml = t.join("trust.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let entry = format!("fingerprint = \"{}\"\n", k.fp);
    assert!(text.contains(&entry), "{text}");
    // Same inode, same directory: only the content says it changed.
    for (extra, code) in [
        ("not_after = \"2001-01-01T00:00:00Z\"\n", "KEY_EXPIRED"),
        (
            "not_before = \"2099-01-01T00:00:00Z\"\n",
            "KEY_NOT_YET_VALID",
        ),
        (
            "revoked_at = \"2001-01-01T00:00:00Z\"\nrevoked_reason = \"leaked\"\n",
            "KEY_REVOKED",
        ),
    ] {
        let edited = text.replace(&entry, &format!("{entry}{extra}"));
        rewrite_in_place(&toml, edited.as_bytes());
        verify(&t, &pkg).refused(code);
        rewrite_in_place(&toml, text.as_bytes());
        verify(&t, &pkg).verified();
    }
    // A threshold added by hand applies at once.
    rewrite_in_place(
        &toml,
        text.replacen("version = 1", "version = 2\nthreshold = 2", 1)
            .as_bytes(),
    );
    verify(&t, &pkg).fails(1);
}

#[test]
fn pub_file_replaced_after_indexing_is_read_again() {
    let env = Env::new();
    let k = keygen(&env, "signer");
    let t = thousand(&env, "hand", &k, false);
    std::fs::remove_file(t.join("trust.toml")).unwrap();
    let pkg = signed_by(&env, &k, "app.tar");
    build_cache(&t, &pkg, true);
    // The same size (every Ed25519 PEM is 113 bytes), in place.
    let other = fresh_pub();
    assert_eq!(
        other.len() as u64,
        std::fs::metadata(k_file(&t)).unwrap().len()
    );
    rewrite_in_place(&k_file(&t), other.as_bytes());
    verify(&t, &pkg).refused("KEY_NOT_TRUSTED");
    // Put back: trusted again.
    std::fs::copy(&k.public, k_file(&t)).unwrap();
    verify(&t, &pkg).verified();
    // Made group-writable after indexing: refused as by a full scan.
    chmod(&k_file(&t), 0o664);
    verify(&t, &pkg).fails_with(2, "KEY_PERMISSIONS");
}

#[test]
fn duplicate_fingerprints_in_two_files_survive_either_one_going() {
    let env = Env::new();
    let k = keygen(&env, "signer");
    let t = thousand(&env, "hand", &k, false);
    std::fs::copy(&k.public, t.join("a-copy.pub")).unwrap();
    let pkg = signed_by(&env, &k, "app.tar");
    let index = build_cache(&t, &pkg, true);
    assert_eq!(index.matches(k.fp.as_str()).count(), 1, "{index}");
    for gone in ["a-copy.pub", "signer.pub"] {
        let kept = if gone == "signer.pub" {
            "a-copy.pub"
        } else {
            "signer.pub"
        };
        std::fs::rename(t.join(gone), env.path(gone)).unwrap();
        build_cache(&t, &pkg, true);
        assert!(t.join(kept).exists());
        std::fs::rename(env.path(gone), t.join(gone)).unwrap();
    }
}

#[test]
fn key_only_listed_as_revoked_stays_refused_when_its_file_comes_back() {
    let env = Env::new();
    let k = keygen(&env, "signer");
    let t = thousand(&env, "listed", &k, true);
    let pkg = signed_by(&env, &k, "app.tar");
    trust(&["revoke", s(&t), k.fp.as_str()]).ok();
    trust(&["remove", s(&t), k.fp.as_str()]).ok();
    assert!(!k_file(&t).exists());
    // Dropped back in by hand, under another name, with a cache built.
    std::fs::copy(&k.public, t.join("innocent.pub")).unwrap();
    build_cache(&t, &pkg, false);
    verify(&t, &pkg).refused("KEY_REVOKED");
}

#[test]
fn key_dropped_in_after_indexing_is_found() {
    let env = Env::new();
    let k = keygen(&env, "signer");
    let t = thousand(&env, "hand", &k, false);
    let pkg = signed_by(&env, &k, "app.tar");
    build_cache(&t, &pkg, true);
    let late = keygen(&env, "late");
    let pkg2 = signed_by(&env, &late, "late.tar");
    verify(&t, &pkg2).refused("KEY_NOT_TRUSTED");
    std::fs::copy(&late.public, t.join("late.pub")).unwrap();
    verify(&t, &pkg2).verified();
    // A key file modified in place to hold a key (the directory does not
    // change): a lookup the cache cannot answer is a full scan.
    let later = keygen(&env, "later");
    let pkg3 = signed_by(&env, &later, "later.tar");
    build_cache(&t, &pkg, true);
    rewrite_in_place(
        &t.join("key-0007.pub"),
        &std::fs::read(&later.public).unwrap(),
    );
    verify(&t, &pkg3).verified();
}

/// The cache's line for `fp`: `k FP SPAN FILE STAMP`.
fn cache_line(index: &str, fp: &Fingerprint) -> String {
    index
        .lines()
        .find(|l| l.starts_with(&format!("k {fp} ")))
        .unwrap_or_else(|| panic!("{fp} not in {index}"))
        .to_string()
}

#[test]
fn a_cache_that_lies_is_not_believed() {
    let env = Env::new();
    let k = keygen(&env, "signer");
    let t = thousand(&env, "listed", &k, true);
    let pkg = signed_by(&env, &k, "app.tar");
    trust(&["revoke", s(&t), k.fp.as_str()]).ok();
    let index = build_cache(&t, &pkg, false);
    let toml = std::fs::read_to_string(t.join("trust.toml")).unwrap();
    let line = cache_line(&index, &k.fp);
    let span = line.split(' ').nth(2).unwrap();
    let (a, b) = span.split_once('-').unwrap();
    let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
    let revoked_at = a + toml[a..b]
        .find("revoked_at")
        .expect("the entry says revoked");
    let other = keygen(&env, "other");
    let other_pub = t.join("key-0001.pub");
    let other_line = cache_line(&index, &fp_of_pub(&other_pub));
    let lies = [
        // The entry cut short before its revocation.
        index.replace(&line, &line.replace(span, &format!("{a}-{revoked_at}"))),
        // No entry at all for the key.
        index.replace(&line, &line.replace(span, "-")),
        // The span of another key's entry.
        index.replace(
            &line,
            &line.replace(span, other_line.split(' ').nth(2).unwrap()),
        ),
        // Garbage, a cut-short cache, an empty one.
        "garbage".into(),
        index[..index.len() / 2].into(),
        String::new(),
    ];
    for lie in lies {
        std::fs::write(t.join(INDEX), &lie).unwrap();
        let r = verify(&t, &pkg).refused("KEY_REVOKED");
        assert_eq!(r.json()["verified"], false);
    }
    // A cache that names, for a trusted key, a file holding another key.
    let pkg_other = signed_by(&env, &other, "other.tar");
    let index = build_cache(&t, &pkg_other, false);
    let forged = format!(
        "{}k {} - {}",
        index
            .trim_end_matches("end\n")
            .rsplit_once("\nk ")
            .unwrap()
            .0,
        other.fp,
        cache_line(&index, &fp_of_pub(&other_pub))
            .splitn(4, ' ')
            .nth(3)
            .unwrap()
    ) + "\nend\n";
    std::fs::write(t.join(INDEX), forged).unwrap();
    verify(&t, &pkg_other).refused("KEY_NOT_TRUSTED");
}

#[test]
fn a_cache_cut_above_the_threshold_is_not_believed() {
    let env = Env::new();
    let k = keygen(&env, "signer");
    let t = thousand(&env, "listed", &k, true);
    let pkg = signed_by(&env, &k, "app.tar");
    trust(&["threshold", s(&t), "2"]).ok();
    let index = build_cache(&t, &pkg, false);
    let toml_line = index.lines().find(|l| l.starts_with("toml ")).unwrap();
    let toml = std::fs::read_to_string(t.join("trust.toml")).unwrap();
    let cut = toml.find("threshold").unwrap();
    let (hash, _) = toml_line["toml ".len()..].split_once(' ').unwrap();
    let lie = index.replace(toml_line, &format!("toml {hash} {cut}"));
    std::fs::write(t.join(INDEX), lie).unwrap();
    verify(&t, &pkg).fails(1);
}

#[test]
fn a_foreign_or_loose_cache_is_ignored() {
    let env = Env::new();
    let k = keygen(&env, "signer");
    let t = thousand(&env, "listed", &k, true);
    let pkg = signed_by(&env, &k, "app.tar");
    build_cache(&t, &pkg, true);
    // A copy of the directory revokes the key; its cache is then copied
    // back over the original's: it describes another directory.
    let copy = env.path("copy");
    copy_dir(&t, &copy);
    trust(&["revoke", s(&copy), k.fp.as_str()]).ok();
    build_cache(&copy, &pkg, false);
    std::fs::copy(copy.join(INDEX), t.join(INDEX)).unwrap();
    verify(&t, &pkg).verified();
    std::fs::copy(t.join(INDEX), copy.join(INDEX)).unwrap();
    verify(&copy, &pkg).refused("KEY_REVOKED");
    // A cache directory others may write is neither read nor written.
    let index = build_cache(&copy, &pkg, false);
    chmod(&copy.join(".cache"), 0o777);
    let (pre, _) = index.split_once("\nk ").unwrap();
    std::fs::write(copy.join(INDEX), format!("{pre}\nend\n")).unwrap();
    verify(&copy, &pkg).refused("KEY_REVOKED");
    // Where the cache cannot be written, verification works as before.
    let ro = env.path("ro");
    copy_dir(&t, &ro);
    std::fs::remove_dir_all(ro.join(".cache")).unwrap();
    std::fs::write(ro.join(".cache"), "not a directory").unwrap();
    for _ in 0..3 {
        verify(&ro, &pkg).verified();
    }
    assert!(ro.join(".cache").is_file());
}

#[test]
fn symlinked_key_files_get_no_cache() {
    let env = Env::new();
    let k = keygen(&env, "signer");
    let t = env.path("t");
    std::fs::create_dir(&t).unwrap();
    std::fs::copy(&k.public, t.join("signer.key")).unwrap();
    std::os::unix::fs::symlink("signer.key", t.join("signer.pub")).unwrap();
    let pkg = signed_by(&env, &k, "app.tar");
    for _ in 0..3 {
        verify(&t, &pkg).verified();
    }
    assert!(!t.join(INDEX).exists());
}

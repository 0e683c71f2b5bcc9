//! Unit tests of `manifest`: opening beneath the list's directory, names,
//! and the two reads of a signed list.

use super::*;
use crate::error::ParseError;

/// The open itself refuses a way out, so a symlink swapped in after the
/// path check cannot lead outside.
#[cfg(target_os = "linux")]
#[test]
fn open_beneath_refuses_an_escaping_symlink() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"x").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ok"), b"y").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link")).unwrap();
    let handle = std::fs::File::open(dir.path()).unwrap();
    assert!(open_beneath(&handle, Path::new("ok")).is_ok());
    let err = open_beneath(&handle, Path::new("link")).unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(rustix::io::Errno::XDEV.raw_os_error())
    );
    assert!(is_refusal(&err));
}

/// The walk used where openat2 is missing never follows a symlink, in
/// the last component or on the way, and finds what is really there.
#[test]
fn open_no_follow_refuses_every_symlink() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir(outside.path().join("d")).unwrap();
    std::fs::write(outside.path().join("d/secret"), b"x").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
    std::fs::write(dir.path().join("a/b/f"), b"inside").unwrap();
    std::os::unix::fs::symlink(outside.path().join("d/secret"), dir.path().join("a/l")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("d"), dir.path().join("a/dl")).unwrap();
    std::os::unix::fs::symlink("b", dir.path().join("a/inner")).unwrap();
    let handle = std::fs::File::open(dir.path()).unwrap();
    let mut got = String::new();
    std::io::Read::read_to_string(
        &mut open_no_follow(&handle, Path::new("a/b/f")).unwrap(),
        &mut got,
    )
    .unwrap();
    assert_eq!(got, "inside");
    for refused in ["a/l", "a/dl/secret", "a/inner/f"] {
        let err = open_no_follow(&handle, Path::new(refused)).unwrap_err();
        assert!(is_refusal(&err), "{refused}: {err}");
    }
    let err = open_no_follow(&handle, Path::new("a/missing")).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

/// A list signed by a fresh key, and the trust store holding that key.
fn signed_list(dir: &Path, text: &[u8]) -> (PathBuf, PathBuf, TrustStore) {
    use crate::keys::{self, KeySource};
    let list = dir.join("SUMS");
    std::fs::write(&list, text).unwrap();
    let key = keys::LocalKey::new(
        keys::generate(keys::KeySpec::Ed25519).unwrap(),
        "mem".into(),
    );
    let sig = dir.join("SUMS.sig");
    crate::sign::signer::sign_package(
        &list,
        &[&key],
        &crate::sign::signer::SignOptions::default(),
        &sig,
    )
    .unwrap();
    let public = dir.join("k.pub");
    std::fs::write(
        &public,
        keys::encoding::public_key_to_pem(key.public_key()).unwrap(),
    )
    .unwrap();
    let mut trust = TrustStore::new();
    trust.add_file(&public).unwrap();
    (list, sig, trust)
}

fn options() -> Options<'static> {
    Options {
        jobs: 2,
        cache: None,
        verify: VerifyOptions::default(),
        progress: None,
        on_total: None,
    }
}

/// The list is read twice from one descriptor; a change made in place
/// between the reads (in the second 1 MiB piece, or a truncation at a
/// piece boundary) is refused, and no result is handed on for a line
/// of a piece that changed.
#[test]
fn a_list_changed_between_its_reads_is_refused_before_its_lines_are_used() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = Vec::new();
    let mut n = 0;
    while text.len() < CHUNK + CHUNK / 2 {
        text.extend_from_slice(format!("{}  f{n}\n", "0".repeat(64)).as_bytes());
        n += 1;
    }
    let first_line_of_piece_two = text[..CHUNK].iter().filter(|b| **b == b'\n').count() + 1;
    let (list, sig, trust) = signed_list(dir.path(), &text);
    let opts = options();

    // Unchanged: every line, in order.
    let signed = SignedList::open(&list, &sig, &trust, &opts).unwrap();
    assert_eq!(signed.entries(), n);
    let mut seen = 0;
    let (_, summary) = signed
        .check_files(&opts, |r| {
            seen += 1;
            assert_eq!(r.line, seen);
            Ok(())
        })
        .unwrap();
    assert_eq!((seen, summary.total, summary.failed), (n, n, n));

    type Tamper = fn(&Path);
    let tampers: [Tamper; 2] = [
        |p| {
            use std::os::unix::fs::FileExt;
            let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            f.write_at(b"1", CHUNK as u64 + 100).unwrap();
        },
        |p| {
            let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            f.set_len(CHUNK as u64).unwrap();
        },
    ];
    for tamper in tampers {
        std::fs::write(&list, &text).unwrap();
        let signed = SignedList::open(&list, &sig, &trust, &opts).unwrap();
        tamper(&list);
        let mut last = 0;
        let err = signed
            .check_files(&opts, |r| {
                last = r.line;
                Ok(())
            })
            .unwrap_err();
        assert!(err.to_string().contains("changed"), "{err}");
        assert!(last < first_line_of_piece_two, "line {last} was used");
    }
    // Changed before the first read: the digest is not the signed one.
    std::fs::write(&list, &text[..text.len() - 1]).unwrap();
    assert!(SignedList::open(&list, &sig, &trust, &opts).is_err());
}

/// Malformed lines are counted exactly and the first ones named.
#[test]
fn malformed_lines_are_counted_and_the_first_named() {
    let dir = tempfile::tempdir().unwrap();
    let text = "junk\n".repeat(MALFORMED_SHOWN + 5);
    let (list, sig, trust) = signed_list(dir.path(), text.as_bytes());
    match SignedList::open(&list, &sig, &trust, &options()) {
        Err(crate::verify::VerifyError::Failed(Error::Parse(ParseError::ManifestMalformed {
            lines,
            count,
            ..
        }))) => {
            assert_eq!(count, MALFORMED_SHOWN + 5);
            assert_eq!(lines, (1..=MALFORMED_SHOWN).collect::<Vec<_>>());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn traversal_is_refused() {
    for bad in [
        &b"/etc/passwd"[..],
        b"../x",
        b"a/../../x",
        b"a/..",
        b"",
        b"a\0b",
        b".",
    ] {
        assert!(safe_relative(bad).is_none(), "{bad:?}");
    }
    assert_eq!(safe_relative(b"./a/b").unwrap(), PathBuf::from("a/b"));
    assert_eq!(
        safe_relative(b"sp ace/f").unwrap(),
        PathBuf::from("sp ace/f")
    );
}

//! `pkgsign checksum` against the real `sha256sum` & co. (coreutils) and
//! `b3sum`, byte for byte, in both directions; `verify-package --checksum`;
//! `sign-package --hash`.
//!
//! Every run goes through `common`, which fails the test on a panic,
//! on an exit code other than 0/1/2, on a hang, and on a missing peer tool.

use crate::common;

use std::ffi::OsString;
use std::path::Path;
use std::time::Instant;

use common::manifest::*;
use common::*;

/// File names that need care: spaces, non-ASCII, backslash, newline,
/// carriage return, a leading dash, a trailing space, a name that looks like
/// a BSD line, and contents including an empty file and one large enough to
/// take the threaded reader.
fn odd_names() -> Vec<(Vec<u8>, Vec<u8>)> {
    let big: Vec<u8> = (0..3 * 1024 * 1024 + 17)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    vec![
        (b"plain.txt".to_vec(), b"plain\n".to_vec()),
        (b"sp ace".to_vec(), b"a file with a space\n".to_vec()),
        (
            "\u{fc}n\u{ef}c\u{f6}d\u{e9} \u{2713}".as_bytes().to_vec(),
            b"utf8".to_vec(),
        ),
        (b"back\\slash".to_vec(), b"backslash".to_vec()),
        (b"new\nline".to_vec(), b"newline".to_vec()),
        (b"cr\rret".to_vec(), b"carriage return".to_vec()),
        (b"both\\and\nnl\r".to_vec(), b"all three".to_vec()),
        (b"-dash".to_vec(), b"leading dash".to_vec()),
        (b"trailing ".to_vec(), b"trailing space".to_vec()),
        (
            b"SHA256 (x) = y".to_vec(),
            b"looks like a BSD line".to_vec(),
        ),
        (b"empty".to_vec(), Vec::new()),
        (b"big.bin".to_vec(), big),
    ]
}

fn make_files(dir: &Path) -> Vec<OsString> {
    let mut names = Vec::new();
    for (name, data) in odd_names() {
        let n = os(&name);
        std::fs::write(dir.join(&n), data).unwrap();
        names.push(n);
    }
    names
}

/// `-- names...`
fn dashdash(names: &[OsString]) -> Vec<OsString> {
    let mut v = vec![OsString::from("--")];
    v.extend(names.iter().cloned());
    v
}

const COREUTILS: &[(&str, &str)] = &[
    ("sha256", "sha256sum"),
    ("sha512", "sha512sum"),
    ("sha224", "sha224sum"),
    ("sha384", "sha384sum"),
    ("md5", "md5sum"),
    ("sha1", "sha1sum"),
];

#[test]
fn checksum_prints_what_coreutils_and_b3sum_print() {
    let env = Env::new();
    let dir = env.dir.path();
    let names = make_files(dir);

    for (alg, prog) in COREUTILS {
        for tag in [false, true] {
            let mut targs: Vec<OsString> = Vec::new();
            let mut pargs: Vec<OsString> = args(["checksum", "-a", alg]);
            if tag {
                targs.push("--tag".into());
                pargs.push("--tag".into());
            }
            targs.extend(dashdash(&names));
            pargs.extend(dashdash(&names));
            let theirs = tool_ok(dir, prog, &targs);
            let ours = pkgsign(dir, &pargs).ok();
            assert_same_bytes(
                &format!("pkgsign checksum -a {alg} (tag: {tag}) vs {prog}"),
                &ours.stdout,
                &theirs,
            );
            assert_eq!(
                ours.stdout.iter().filter(|b| **b == b'\n').count(),
                names.len()
            );
            let warned = ours.stderr.to_lowercase().contains("insecure");
            if *alg == "md5" || *alg == "sha1" {
                assert!(warned, "{alg} must warn that it is insecure: {ours:#?}");
            } else {
                assert!(
                    !ours.stderr.contains("warning"),
                    "{alg} must not warn: {ours:#?}"
                );
            }
        }
    }

    // The long option and the default algorithm.
    let mut pargs = args(["checksum"]);
    pargs.extend(dashdash(&names));
    let theirs = tool_ok(dir, "sha256sum", dashdash(&names));
    assert_same_bytes(
        "default algorithm vs sha256sum",
        &pkgsign(dir, &pargs).ok().stdout,
        &theirs,
    );
    let mut pargs = args(["checksum", "--algorithm", "sha256"]);
    pargs.extend(dashdash(&names));
    assert_same_bytes(
        "--algorithm sha256 vs sha256sum",
        &pkgsign(dir, &pargs).ok().stdout,
        &theirs,
    );

    // BLAKE3: what b3sum prints (GNU form; b3sum has no --tag).
    let mut pargs = args(["checksum", "-a", "blake3"]);
    pargs.extend(dashdash(&names));
    let theirs = tool_ok(dir, "b3sum", dashdash(&names));
    let ours = pkgsign(dir, &pargs).ok();
    assert_same_bytes("pkgsign checksum -a blake3 vs b3sum", &ours.stdout, &theirs);
    assert!(!ours.stderr.contains("warning"), "{ours:#?}");

    // Standard input as `-`.
    let data = b"from standard input\n";
    let ours = pkgsign_t(dir, ["checksum", "-"], Some(data), DEFAULT_TIMEOUT).ok();
    let theirs = capture(
        tool_cmd(dir, "sha256sum", ["-"]),
        Some(data),
        DEFAULT_TIMEOUT,
    );
    assert_eq!(theirs.code, 0, "{theirs:#?}");
    assert_same_bytes("stdin", &ours.stdout, &theirs.stdout);
}

/// A name that is not UTF-8: coreutils writes its bytes as they are, and so
/// does pkgsign, for every algorithm. (b3sum 1.2 alone replaces such bytes by
/// U+FFFD, which makes its own list unusable; pkgsign deliberately keeps the
/// bytes, so its BLAKE3 list still names the file and checks.)
#[test]
fn non_utf8_names_are_written_as_bytes() {
    let env = Env::new();
    let dir = env.dir.path();
    let name = os(b"\xff\xfe-latin1 \xe9t\xe9");
    std::fs::write(dir.join(&name), b"bytes").unwrap();
    for (alg, prog) in COREUTILS {
        for tag in [false, true] {
            let mut targs: Vec<OsString> = if tag { args(["--tag"]) } else { vec![] };
            targs.extend(dashdash(std::slice::from_ref(&name)));
            let mut pargs = args(["checksum", "-a", alg]);
            if tag {
                pargs.push("--tag".into());
            }
            pargs.extend(dashdash(std::slice::from_ref(&name)));
            assert_same_bytes(
                &format!("{prog} non-UTF-8 name"),
                &pkgsign(dir, &pargs).ok().stdout,
                &tool_ok(dir, prog, &targs),
            );
        }
    }
    let mut pargs = args(["checksum", "-a", "blake3"]);
    pargs.extend(dashdash(std::slice::from_ref(&name)));
    let list = pkgsign(dir, &pargs).ok().stdout;
    assert!(
        list.ends_with(b"  \xff\xfe-latin1 \xe9t\xe9\n"),
        "{}",
        show(&list)
    );
    std::fs::write(dir.join("B3"), &list).unwrap();
    let check = pkgsign(dir, ["checksum", "-a", "blake3", "--check", "B3"]).ok();
    assert_eq!(check.stdout, b"\xff\xfe-latin1 \xe9t\xe9: OK\n");
}

/// (list name, writer program, writer flags, pkgsign --check flags, checker program)
type ListCase = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static str,
);

/// Lists written by the real tools, read by `pkgsign checksum --check`; where
/// the tool can check the same list, stdout must be identical.
#[test]
fn check_reads_lists_written_by_the_real_tools() {
    let env = Env::new();
    let dir = env.dir.path();
    let names = make_files(dir);

    let cases: &[ListCase] = &[
        ("gnu256", "sha256sum", &[], &[], "sha256sum"),
        ("bsd256", "sha256sum", &["--tag"], &[], "sha256sum"),
        ("bin256", "sha256sum", &["--binary"], &[], "sha256sum"),
        ("gnu512", "sha512sum", &[], &[], "sha512sum"),
        ("bsd512", "sha512sum", &["--tag"], &[], "sha512sum"),
        ("gnu224", "sha224sum", &[], &[], "sha224sum"),
        ("bsd384", "sha384sum", &["--tag"], &[], "sha384sum"),
        ("gnumd5", "md5sum", &[], &[], "md5sum"),
        ("bsdsha1", "sha1sum", &["--tag"], &[], "sha1sum"),
        ("b3", "b3sum", &[], &["-a", "blake3"], "b3sum"),
    ];
    for (list, writer, wflags, pflags, checker) in cases {
        let mut wargs = args(*wflags);
        wargs.extend(dashdash(&names));
        let text = tool_ok(dir, writer, &wargs);
        if *list == "bin256" {
            assert!(
                text.windows(2).any(|w| w == b" *"),
                "binary mode lines: {}",
                show(&text)
            );
        }
        std::fs::write(dir.join(list), &text).unwrap();
        let mut pargs = args(["checksum"]);
        pargs.extend(args(*pflags));
        pargs.extend(args(["--check", list]));
        let ours = pkgsign(dir, &pargs).ok();
        let ok_lines = ours
            .stdout
            .split(|b| *b == b'\n')
            .filter(|l| l.ends_with(b": OK"))
            .count();
        assert_eq!(ok_lines, names.len(), "{list}: {}", show(&ours.stdout));
        let theirs = tool(dir, checker, ["--check", list]);
        assert_eq!(theirs.code, 0, "{checker} --check {list}: {theirs:#?}");
        // b3sum prints check lines in its own way for escaped names; the
        // contract promises coreutils' lines.
        if *checker != "b3sum" {
            assert_same_bytes(
                &format!("--check {list} vs {checker} --check"),
                &ours.stdout,
                &theirs.stdout,
            );
        }
        if list.contains("md5") || list.contains("sha1") {
            assert!(
                ours.stderr.to_lowercase().contains("insecure"),
                "{list}: {ours:#?}"
            );
        }
    }

    // signify-style lines (`signify -C` reads and writes `SHA256 (f) = hex`,
    // with no escaping) and pkgsign lines (`sha256:HEX  name`), written by
    // hand from sha256sum's digests, mixed with a SHA-512 line.
    let plain = ["plain.txt", "sp ace", "-dash", "empty", "big.bin"];
    let mut signify = Vec::new();
    let mut pkgsign_style = Vec::new();
    for n in plain {
        let hex = sha256_hex_of(dir, n);
        signify.extend_from_slice(format!("SHA256 ({n}) = {hex}\n").as_bytes());
        pkgsign_style.extend_from_slice(format!("sha256:{hex}  {n}\n").as_bytes());
    }
    let h512 = tool_ok(dir, "sha512sum", ["plain.txt"]);
    signify.extend_from_slice(format!("SHA512 (plain.txt) = {}\n", show(&h512[..128])).as_bytes());
    pkgsign_style
        .extend_from_slice(format!("sha512:{}  plain.txt\n", show(&h512[..128])).as_bytes());
    let b3 = tool_ok(dir, "b3sum", ["plain.txt"]);
    pkgsign_style.extend_from_slice(format!("blake3:{}  plain.txt\n", show(&b3[..64])).as_bytes());
    for (list, text, n) in [
        ("SIGNIFY", &signify, plain.len() + 1),
        ("PKGSIGN", &pkgsign_style, plain.len() + 2),
    ] {
        std::fs::write(dir.join(list), text).unwrap();
        let ours = pkgsign(dir, ["checksum", "--check", list]).ok();
        let expected: String = plain
            .iter()
            .chain(std::iter::repeat_n(&"plain.txt", n - plain.len()))
            .map(|n| format!("{n}: OK\n"))
            .collect();
        assert_eq!(ours.out(), expected, "{list}");
    }
    // sha256sum reads the signify list too (its SHA256 lines): same stdout
    // for a list of SHA256 lines only.
    let only256: Vec<u8> = signify
        .split_inclusive(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"SHA256 "))
        .flatten()
        .copied()
        .collect();
    std::fs::write(dir.join("SIGNIFY256"), &only256).unwrap();
    assert_same_bytes(
        "signify list vs sha256sum --check",
        &pkgsign(dir, ["checksum", "--check", "SIGNIFY256"])
            .ok()
            .stdout,
        &tool_ok(dir, "sha256sum", ["--check", "SIGNIFY256"]),
    );
    // And a list with Windows line ends.
    let crlf: Vec<u8> = only256
        .split_inclusive(|b| *b == b'\n')
        .flat_map(|l| {
            let mut v = l[..l.len() - 1].to_vec();
            v.extend_from_slice(b"\r\n");
            v
        })
        .collect();
    std::fs::write(dir.join("CRLF"), &crlf).unwrap();
    let ours = pkgsign(dir, ["checksum", "--check", "CRLF"]).ok();
    assert_eq!(ours.out().matches(": OK\n").count(), plain.len());
}

/// `NAME: OK` / `NAME: FAILED` / `NAME: FAILED open or read`, exit 1 on any
/// failure or missing file, and the same stdout as `sha256sum --check`.
#[test]
fn check_failures_match_coreutils() {
    let env = Env::new();
    let dir = env.dir.path();
    let names = make_files(dir);
    let mut list = tool_ok(dir, "sha256sum", dashdash(&names));
    list.extend_from_slice(format!("{}  missing file\n", "0".repeat(64)).as_bytes());
    std::fs::write(dir.join("SUMS"), &list).unwrap();
    let tagged = tool_ok(dir, "sha256sum", {
        let mut v = args(["--tag"]);
        v.extend(dashdash(&names));
        v
    });
    std::fs::write(dir.join("TAGGED"), &tagged).unwrap();
    // Tamper with three files, keeping their sizes.
    std::fs::write(dir.join("sp ace"), b"A file with a space\n").unwrap();
    std::fs::write(dir.join(os(b"new\nline")), b"NEWLINE").unwrap();
    std::fs::write(dir.join("empty"), b"x").unwrap();

    for l in ["SUMS", "TAGGED"] {
        let ours = pkgsign(dir, ["checksum", "--check", l]).code(1);
        let theirs = tool(dir, "sha256sum", ["--check", l]);
        assert_eq!(theirs.code, 1, "{theirs:#?}");
        assert_same_bytes(&format!("{l} with failures"), &ours.stdout, &theirs.stdout);
        let out = ours.out();
        assert!(out.contains("sp ace: FAILED\n"), "{out}");
        assert!(out.contains("\\new\\nline: FAILED\n"), "{out}");
        assert!(out.contains("empty: FAILED\n"), "{out}");
        assert!(out.contains("plain.txt: OK\n"), "{out}");
        if l == "SUMS" {
            assert!(out.contains("missing file: FAILED open or read\n"), "{out}");
        }
        assert!(ours.stderr.contains("did NOT match"), "{ours:#?}");
    }

    // Only a missing file: still exit 1.
    std::fs::write(
        dir.join("MISSING"),
        format!("{}  nowhere\n", "0".repeat(64)),
    )
    .unwrap();
    let ours = pkgsign(dir, ["checksum", "--check", "MISSING"]).code(1);
    assert_eq!(ours.out(), "nowhere: FAILED open or read\n");
    let theirs = tool(dir, "sha256sum", ["--check", "MISSING"]);
    assert_eq!(theirs.code, 1);
    assert_same_bytes("missing only", &ours.stdout, &theirs.stdout);
    let json = pkgsign(dir, ["checksum", "--check", "MISSING", "--json"])
        .code(1)
        .json();
    assert_eq!(json["ok"], false, "{json}");
    assert_eq!(json["missing"], 1, "{json}");

    // --json per-file results for the tampered list.
    let json = pkgsign(dir, ["checksum", "--check", "SUMS", "--json"])
        .code(1)
        .json();
    let files = json["files"].as_array().expect("files");
    assert_eq!(files.len(), names.len() + 1);
    let failed: Vec<&str> = files
        .iter()
        .filter(|f| f["ok"] == false)
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["sp ace", "new\nline", "empty", "missing file"]);

    // A list with nothing usable in it: could not run.
    std::fs::write(dir.join("JUNK"), "not a checksum line\n").unwrap();
    let junk = pkgsign(dir, ["checksum", "--check", "JUNK"]).code(2);
    assert!(junk.stderr.contains("no properly formatted"), "{junk:#?}");
    // A missing list: could not run.
    pkgsign(dir, ["checksum", "--check", "NO-SUCH-LIST"]).code(2);
}

/// Pipes, standard input and FIFOs, read as `sha256sum` reads them; a FIFO
/// without a writer never hangs.
#[test]
fn pipes_stdin_and_fifos_read_like_sha256sum() {
    let env = Env::new();
    let dir = env.dir.path();
    let names = make_files(dir);
    let list = tool_ok(dir, "sha256sum", dashdash(&names));
    std::fs::write(dir.join("SUMS"), &list).unwrap();

    // Process substitution hands over a pipe named /dev/fd/N. `$0` is the
    // program: pkgsign checksum, or sha256sum.
    let ours_prog = format!("{} checksum", bin().display());
    for args_text in ["--check <(cat SUMS)", "<(printf 'through a pipe')"] {
        let script = |prog: &str| format!("{prog} {args_text}");
        let ours = tool(dir, "bash", ["-c", &script(&ours_prog)]);
        let theirs = tool(dir, "bash", ["-c", &script("sha256sum")]);
        assert_eq!(ours.code, 0, "{ours:#?}");
        assert_eq!(theirs.code, 0, "{theirs:#?}");
        assert!(!ours.stderr.contains("panicked"), "{ours:#?}");
        assert_same_bytes(args_text, &ours.stdout, &theirs.stdout);
    }

    // The list on standard input.
    let ours = pkgsign_t(
        dir,
        ["checksum", "--check", "-"],
        Some(&list),
        std::time::Duration::from_secs(30),
    )
    .code(0);
    let theirs = capture(
        tool_cmd(dir, "sha256sum", ["--check", "-"]),
        Some(&list),
        std::time::Duration::from_secs(30),
    );
    assert_eq!(theirs.code, 0, "{theirs:#?}");
    assert_same_bytes("list on stdin", &ours.stdout, &theirs.stdout);

    // A named FIFO whose writer is waiting: read, blocking for data. pkgsign
    // never waits for a writer (a run before the writer opens the FIFO reads
    // nothing), so the run starts once the writer thread is blocked in its
    // open, waiting for a reader.
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    let writer = spawn_waiting_fifo_writer(&fifo, list.clone());
    let through_fifo = pkgsign(dir, ["checksum", "--check", "fifo"]).code(0);
    writer.join().unwrap();
    assert_same_bytes("list through a FIFO", &through_fifo.stdout, &theirs.stdout);

    // No writer: no hang; an empty list is a usage error, an empty stream
    // has the digest of nothing.
    let started = Instant::now();
    let empty = pkgsign(dir, ["checksum", "--check", "fifo"]).code(2);
    assert!(empty.stderr.contains("no properly formatted"), "{empty:#?}");
    let nothing = pkgsign(dir, ["checksum", "fifo"]).code(0);
    assert_eq!(
        nothing.out(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  fifo\n"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    // Directories and devices stay refused.
    pkgsign(dir, ["checksum", "--check", "."]).code(2);
    pkgsign(dir, ["checksum", "/dev/null"]).code(2);
}

/// Lists written by pkgsign, read by `sha256sum --check` and `b3sum --check`.
#[test]
fn real_tools_read_lists_written_by_pkgsign() {
    let env = Env::new();
    let dir = env.dir.path();
    let names = make_files(dir);
    for (alg, prog) in COREUTILS {
        for tag in [false, true] {
            let mut pargs = args(["checksum", "-a", alg]);
            if tag {
                pargs.push("--tag".into());
            }
            pargs.extend(dashdash(&names));
            let list = pkgsign(dir, &pargs).ok().stdout;
            let file = format!("{alg}-{tag}.list");
            std::fs::write(dir.join(&file), &list).unwrap();
            let theirs = tool(dir, prog, ["--check", "--strict", &file]);
            assert_eq!(theirs.code, 0, "{prog} --check {file}: {theirs:#?}");
            assert_eq!(
                theirs.out().matches(": OK\n").count(),
                names.len(),
                "{theirs:#?}"
            );
            // And pkgsign's own --check agrees with the tool's stdout.
            assert_same_bytes(
                &format!("pkgsign --check {file}"),
                &pkgsign(dir, ["checksum", "--check", &file]).ok().stdout,
                &theirs.stdout,
            );
        }
    }
    let mut pargs = args(["checksum", "-a", "blake3"]);
    pargs.extend(dashdash(&names));
    let list = pkgsign(dir, &pargs).ok().stdout;
    std::fs::write(dir.join("B3SUMS"), &list).unwrap();
    let theirs = tool(dir, "b3sum", ["--check", "B3SUMS"]);
    assert_eq!(theirs.code, 0, "b3sum --check: {theirs:#?}");
    assert_eq!(
        theirs.out().matches(": OK\n").count(),
        names.len(),
        "{theirs:#?}"
    );
    // A tampered file is caught by both tools reading pkgsign's list.
    std::fs::write(dir.join("plain.txt"), b"PLAIN\n").unwrap();
    let theirs = tool(dir, "b3sum", ["--check", "B3SUMS"]);
    assert_eq!(theirs.code, 1, "{theirs:#?}");
    assert!(theirs.out().contains("plain.txt: FAILED"), "{theirs:#?}");
    let theirs = tool(dir, "sha256sum", ["--check", "sha256-false.list"]);
    assert_eq!(theirs.code, 1, "{theirs:#?}");
    let ours = pkgsign(dir, ["checksum", "--check", "sha256-false.list"]).code(1);
    assert_same_bytes("after tampering", &ours.stdout, &theirs.stdout);
}

/// 100,000 entries naming 200 small files: checks, and says the same as
/// sha256sum. The time is printed, not asserted (beyond the timeout).
#[test]
fn a_list_of_100000_entries_checks() {
    let env = Env::new();
    let dir = env.dir.path();
    let files: Vec<String> = (0..200).map(|i| format!("f{i:03}")).collect();
    for (i, f) in files.iter().enumerate() {
        std::fs::write(dir.join(f), format!("small file {i}\n")).unwrap();
    }
    let block = tool_ok(dir, "sha256sum", &files);
    let mut list = Vec::with_capacity(block.len() * 500);
    for _ in 0..500 {
        list.extend_from_slice(&block);
    }
    std::fs::write(dir.join("BIG"), &list).unwrap();
    let ours = pkgsign_t(
        dir,
        ["checksum", "--check", "BIG"],
        None,
        std::time::Duration::from_secs(40),
    )
    .ok();
    let t0 = Instant::now();
    let theirs = tool_ok(dir, "sha256sum", ["--check", "BIG"]);
    let tool_time = t0.elapsed();
    eprintln!(
        "100000-entry list: pkgsign checksum --check {:?}, sha256sum --check {:?}",
        ours.elapsed, tool_time
    );
    assert_eq!(ours.out().matches(": OK\n").count(), 100_000);
    assert_same_bytes("100000 entries", &ours.stdout, &theirs);
    // One mismatching entry among them is found.
    list.extend_from_slice(format!("{}  f000\n", "1".repeat(64)).as_bytes());
    std::fs::write(dir.join("BIG"), &list).unwrap();
    let ours = pkgsign_t(
        dir,
        ["checksum", "--quiet", "--check", "BIG"],
        None,
        std::time::Duration::from_secs(40),
    )
    .code(1);
    assert_eq!(ours.out(), "f000: FAILED\n");
}

/// An unknown algorithm or a malformed `ALGO:HEX` is a usage error (exit 2)
/// naming the supported algorithms.
#[test]
fn unknown_algorithms_and_malformed_digests_are_usage_errors() {
    let env = Env::new();
    let dir = env.dir.path();
    std::fs::write(dir.join("pkg"), b"package\n").unwrap();
    let public = keygen(dir, "k", Alg::Ed25519).public;
    let supported = "sha256, sha224, sha384, sha512, sha3-256, sha3-512, blake3, md5, sha1";
    for alg in ["md4", "SHA-256", "sha", "", "blake2b", "sha256 "] {
        let out = pkgsign(dir, ["checksum", "-a", alg, "pkg"]).code(2);
        assert!(out.stderr.contains(supported), "-a {alg:?}: {out:#?}");
        assert!(out.stdout.is_empty(), "{out:#?}");
    }
    let hex = sha256_hex_of(dir, "pkg");
    let pubs = public.to_str().unwrap();
    for bad in [
        format!("md4:{hex}"),
        format!(":{hex}"),
        format!("SHA256:{hex}"),
        format!("sha-256:{hex}"),
    ] {
        for with_key in [false, true] {
            let mut a = args(["verify-package", "--package", "pkg", "--checksum", &bad]);
            if with_key {
                a.extend(args(["--public-key", pubs]));
            }
            let out = pkgsign(dir, &a).code(2);
            assert!(out.stderr.contains(supported), "{bad}: {out:#?}");
            let json = {
                a.push("--json".into());
                pkgsign(dir, &a).code(2).json()
            };
            assert_eq!(json["code"], "USAGE", "{json}");
        }
    }
    for bad in [
        "sha256:abcd".to_string(),
        format!("sha256:{}", &hex[..63]),
        format!("sha256:{hex}0"),
        format!("sha256:{}g", &hex[..63]),
        format!("sha512:{hex}"),
        format!("sha256: {hex}"),
        "sha256:".into(),
        "sha256".into(),
        "".into(),
        format!("{hex}:sha256"),
    ] {
        let out = pkgsign(
            dir,
            ["verify-package", "--package", "pkg", "--checksum", &bad],
        )
        .code(2);
        assert!(
            out.stderr.contains("malformed") || out.stderr.contains("unknown hash algorithm"),
            "{bad:?}: {out:#?}"
        );
    }
}

/// `verify-package --checksum`: checked even when the signature is valid;
/// with no key, only the digest is checked.
#[test]
fn verify_package_checksum() {
    let env = Env::new();
    let dir = env.dir.path();
    std::fs::write(dir.join("pkg"), b"the package\n").unwrap();
    let key = keygen(dir, "k", Alg::Ed25519);
    sign(&dir.join("pkg"), &[&key]);
    let pubs = key.public.to_str().unwrap();
    let hex = sha256_hex_of(dir, "pkg");
    let other = sha256_hex_of(dir, "k.pub");
    let h512 = show(&tool_ok(dir, "sha512sum", ["pkg"])[..128]);
    let b3 = show(&tool_ok(dir, "b3sum", ["pkg"])[..64]);

    let verify = |checksum: &str, key: bool, json: bool| {
        let mut a = args(["verify-package", "--package", "pkg", "--checksum", checksum]);
        if key {
            a.extend(args(["--public-key", pubs]));
        }
        if json {
            a.push("--json".into());
        }
        pkgsign(dir, a)
    };
    for good in [
        format!("sha256:{hex}"),
        hex.clone(),
        hex.to_uppercase(),
        format!("sha512:{h512}"),
        format!("blake3:{b3}"),
    ] {
        for key in [true, false] {
            let j = verify(&good, key, true).ok().json();
            assert_eq!(j["verified"], true, "{good} key={key}: {j}");
        }
    }
    for bad in [
        format!("sha256:{other}"),
        other.clone(),
        format!("blake3:{other}"),
    ] {
        for key in [true, false] {
            let out = verify(&bad, key, false).code(1);
            assert!(out.stderr.contains("error:"), "{out:#?}");
            let j = verify(&bad, key, true).code(1).json();
            assert_eq!(j["code"], "CHECKSUM_MISMATCH", "{bad} key={key}: {j}");
            assert_eq!(j["verified"], false, "{j}");
        }
    }
    // The signature is valid: the mismatch alone refuses the package.
    pkgsign(
        dir,
        ["verify-package", "--package", "pkg", "--public-key", pubs],
    )
    .ok();

    // With no key, the .sig is not consulted at all: a broken one is ignored,
    // and no .sig is needed.
    std::fs::write(dir.join("pkg.sig"), b"garbage").unwrap();
    verify(&hex, false, false).ok();
    verify(&hex, true, false).code(1);
    std::fs::remove_file(dir.join("pkg.sig")).unwrap();
    let out = verify(&hex, false, false).ok();
    assert!(out.out().contains("matches"), "{out:#?}");
    verify(&other, false, false).code(1);
    // With a key and no .sig: could not run.
    verify(&hex, true, false).code(2);

    // An md5 checksum is checked, with a warning that it proves nothing.
    let md5 = show(&tool_ok(dir, "md5sum", ["pkg"])[..32]);
    let out = verify(&format!("md5:{md5}"), false, false).ok();
    assert!(out.stderr.to_lowercase().contains("insecure"), "{out:#?}");
}

/// `sign-package --hash`: md5 and sha1 are refused (and no .sig is left);
/// blake3 and the SHA-3s sign and verify, and the signed digest is the one
/// the real tools compute.
#[test]
fn sign_package_hash_choices() {
    let env = Env::new();
    let dir = env.dir.path();
    std::fs::write(dir.join("pkg"), b"a package to sign\n").unwrap();
    let key = keygen(dir, "k", Alg::Ed25519);
    let (privs, pubs) = (key.private.to_str().unwrap(), key.public.to_str().unwrap());
    // sign-package [EXTRA] --package pkg --private-key K --hash ALG
    let sign_hash = |extra: &[&str], alg: &str| {
        let mut a = args(["sign-package"]);
        a.extend(args(extra));
        a.extend(args([
            "--package",
            "pkg",
            "--private-key",
            privs,
            "--hash",
            alg,
        ]));
        pkgsign(dir, a)
    };
    // verify-package --package pkg --public-key K [EXTRA]
    let verify_pkg = |extra: &[&str]| {
        let mut a = args(["verify-package", "--package", "pkg", "--public-key", pubs]);
        a.extend(args(extra));
        pkgsign(dir, a)
    };
    for weak in ["md5", "sha1"] {
        let out = sign_hash(&[], weak).code(2);
        assert!(out.stderr.contains(weak), "{out:#?}");
        assert!(
            !dir.join("pkg.sig").exists(),
            "--hash {weak} left a .sig behind"
        );
    }
    sign_hash(&[], "md4").code(2);
    let b3 = show(&tool_ok(dir, "b3sum", ["pkg"])[..64]);
    let s512 = show(&tool_ok(dir, "sha512sum", ["pkg"])[..128]);
    for (alg, expected) in [
        ("blake3", Some(b3)),
        ("sha3-256", None),
        ("sha3-512", None),
        ("sha512", Some(s512)),
        ("sha384", None),
    ] {
        sign_hash(&["-q"], alg).ok();
        let sig = std::fs::read_to_string(dir.join("pkg.sig")).unwrap();
        assert!(sig.contains(alg), "the signature names {alg}: {sig}");
        let j = verify_pkg(&["--json"]).ok().json();
        let hash = j["package_hash"].as_str().unwrap_or_default().to_string();
        assert!(hash.starts_with(&format!("{alg}:")), "{j}");
        if let Some(e) = expected {
            assert_eq!(hash, format!("{alg}:{e}"));
        }
        // --checksum in another algorithm than the signature's.
        let hex = sha256_hex_of(dir, "pkg");
        verify_pkg(&["--checksum", &hex]).ok();
    }
    // Tampering (same size) is caught with a sha3-256 signature.
    sign_hash(&["-q"], "sha3-256").ok();
    std::fs::write(dir.join("pkg"), b"A package to sign\n").unwrap();
    let j = verify_pkg(&["--json"]).code(1).json();
    assert_eq!(j["code"], "SIGNATURE_INVALID", "{j}");
}

/// `--check` with `--quiet`, `--status`, `--strict` and `--ignore-missing`,
/// alone and together (`--quiet` and `--status` override each other, the
/// last one winning, as in coreutils), on lists mixing passes, a mismatch,
/// a missing file, a directory and a malformed line: stdout and the exit
/// code are `sha256sum --check`'s. The one intended difference: pkgsign
/// exits 2 (could not run) where GNU exits 1 for a list with no properly
/// formatted line at all; and on any failure pkgsign's stderr ends with the
/// one `error:` line of its contract.
#[test]
fn check_flags_match_sha256sum() {
    let env = Env::new();
    let dir = env.dir.path();
    let names = make_files(dir);
    std::fs::create_dir(dir.join("a dir")).unwrap();
    let good = tool_ok(dir, "sha256sum", dashdash(&names));
    let zero = "0".repeat(64);
    let mut bad = good.clone();
    bad.extend_from_slice(format!("{zero}  missing file\n").as_bytes());
    bad.extend_from_slice(b"not a checksum line\n\n# a comment\n");
    let lists: Vec<(&str, Vec<u8>)> = vec![
        ("GOOD", good.clone()),
        ("MALFORMED", {
            let mut v = good.clone();
            v.extend_from_slice(b"not a checksum line\n");
            v
        }),
        ("MISSING", bad.clone()),
        (
            "ONLY-MISSING",
            format!("{zero}  gone\n{zero}  also gone\n").into_bytes(),
        ),
        ("DIR", {
            let mut v = tool_ok(dir, "sha256sum", ["plain.txt"]);
            v.extend_from_slice(format!("{zero}  a dir\n{zero}  gone\n").as_bytes());
            v
        }),
        ("MISMATCH", {
            let mut v = good.clone();
            v.extend_from_slice(format!("{zero}  plain.txt\n").as_bytes());
            v
        }),
    ];
    let flag_sets: &[&[&str]] = &[
        &[],
        &["--quiet"],
        &["--status"],
        &["--strict"],
        &["--ignore-missing"],
        &["--strict", "--ignore-missing"],
        &["--status", "--ignore-missing"],
        &["--quiet", "--ignore-missing"],
        &["--status", "--quiet"],
        &["--quiet", "--status"],
        &["--strict", "--status"],
    ];
    for (list, text) in &lists {
        std::fs::write(dir.join(list), text).unwrap();
        for flags in flag_sets {
            let mut a = args(*flags);
            a.extend(args(["--check", list]));
            let theirs = tool(dir, "sha256sum", &a);
            let mut p = args(["checksum"]);
            p.extend(a.clone());
            let ours = pkgsign(dir, &p);
            let what = format!("{flags:?} --check {list}");
            assert_eq!(ours.code, theirs.code, "{what}: {ours:#?} vs {theirs:#?}");
            assert_same_bytes(&what, &ours.stdout, &theirs.stdout);
            let status = flags.iter().rposition(|f| *f == "--status")
                > flags.iter().rposition(|f| *f == "--quiet");
            if status {
                assert!(ours.stdout.is_empty(), "{what}: {ours:#?}");
                assert!(!ours.stderr.contains("WARNING"), "{what}: {ours:#?}");
                assert!(!ours.stderr.contains(" OK"), "{what}: {ours:#?}");
            }
        }
    }
    // Where each flag makes the difference, to be sure the runs above
    // exercise it: --strict fails a list that passes without it,
    // --ignore-missing passes a list that fails without it, and with every
    // listed file missing nothing was verified: exit 1.
    pkgsign(dir, ["checksum", "--check", "MALFORMED"]).ok();
    let strict = pkgsign(dir, ["checksum", "--strict", "--check", "MALFORMED"]).code(1);
    assert!(
        strict.stderr.contains("improperly formatted"),
        "{strict:#?}"
    );
    let j = pkgsign(
        dir,
        ["checksum", "--strict", "--check", "MALFORMED", "--json"],
    )
    .code(1)
    .json();
    assert_eq!(j["code"], "MANIFEST_MALFORMED", "{j}");
    assert_eq!(j["ok"], false, "{j}");
    let mut only_missing = good.clone();
    only_missing.extend_from_slice(format!("{zero}  missing file\n").as_bytes());
    std::fs::write(dir.join("SOME-MISSING"), &only_missing).unwrap();
    pkgsign(dir, ["checksum", "--check", "SOME-MISSING"]).code(1);
    let ignored = pkgsign(
        dir,
        ["checksum", "--ignore-missing", "--check", "SOME-MISSING"],
    )
    .ok();
    assert!(!ignored.out().contains("missing file"), "{ignored:#?}");
    assert!(!ignored.stderr.contains("missing file"), "{ignored:#?}");
    let j = pkgsign(
        dir,
        [
            "checksum",
            "--ignore-missing",
            "--check",
            "SOME-MISSING",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(
        j["files"].as_array().map(Vec::len),
        Some(names.len()),
        "{j}"
    );
    let none = pkgsign(
        dir,
        ["checksum", "--ignore-missing", "--check", "ONLY-MISSING"],
    )
    .code(1);
    assert!(none.stderr.contains("no file was verified"), "{none:#?}");
    // --status prints nothing but the contract's error line on failure.
    let quiet = pkgsign(dir, ["checksum", "--status", "--check", "MISMATCH"]).code(1);
    assert!(quiet.stdout.is_empty(), "{quiet:#?}");
    quiet.assert_one_error_line();
    pkgsign(dir, ["checksum", "--status", "--check", "GOOD"]).ok();
    // The flags mean something only with --check.
    for flag in ["--strict", "--status", "--ignore-missing"] {
        pkgsign(dir, ["checksum", flag, "plain.txt"]).code(2);
    }
}

/// `checksum --json DIR`: a directory is NOT_A_FILE, not FILE_NOT_FOUND;
/// a missing file stays FILE_NOT_FOUND.
#[test]
fn checksum_json_of_a_directory_is_not_a_file() {
    let env = Env::new();
    let dir = env.dir.path();
    std::fs::create_dir(dir.join("d")).unwrap();
    std::fs::write(dir.join("f"), b"file\n").unwrap();
    // (Each file's own error is on stderr first, as sha256sum prints it.)
    let run = pkgsign(dir, ["checksum", "--json", "d"]).code(2);
    assert!(run.stderr.contains("not a regular file"), "{run:#?}");
    assert_eq!(run.json()["code"], "NOT_A_FILE", "{run:#?}");
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    let run = pkgsign(dir, ["checksum", "--json", "nowhere"]).code(2);
    assert_eq!(run.json()["code"], "FILE_NOT_FOUND", "{run:#?}");
    // The first failure's code stands for the run; the good file is listed.
    let j = pkgsign(dir, ["checksum", "--json", "f", "d", "nowhere"])
        .code(2)
        .json();
    assert_eq!(j["code"], "NOT_A_FILE", "{j}");
    assert_eq!(j["files"].as_array().map(Vec::len), Some(1), "{j}");
}

/// `some-producer | pkgsign checksum` was a usage error (a FILE was
/// required), where `sha256sum` and `b3sum` hash standard input and print
/// `HASH  -`; `pkgsign checksum -c < SUMS` likewise, where `sha256sum -c`
/// reads the list from standard input.
#[test]
fn no_file_reads_standard_input_as_sha256sum_and_b3sum_do() {
    let env = Env::new();
    let dir = env.dir.path();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 253) as u8).collect();
    let t = std::time::Duration::from_secs(30);
    for (ours, theirs, targs) in [
        (vec!["checksum"], "sha256sum", vec![]),
        (vec!["checksum", "-"], "sha256sum", vec!["-"]),
        (vec!["checksum", "--tag"], "sha256sum", vec!["--tag"]),
        (vec!["checksum", "-a", "sha512"], "sha512sum", vec![]),
        (vec!["checksum", "-a", "blake3"], "b3sum", vec![]),
    ] {
        let o = pkgsign_t(dir, &ours, Some(&data), t).code(0);
        let th = capture(tool_cmd(dir, theirs, &targs), Some(&data), t);
        assert_eq!(th.code, 0, "{th:#?}");
        assert!(
            o.out().ends_with("  -\n") || o.out().contains("(-)"),
            "{o:#?}"
        );
        assert_same_bytes(&format!("{ours:?}"), &o.stdout, &th.stdout);
    }
    // The list from standard input, with no LIST: as `sha256sum -c`.
    let names = make_files(dir);
    let list = tool_ok(dir, "sha256sum", dashdash(&names));
    for flag in ["-c", "--check"] {
        let ours = pkgsign_t(dir, ["checksum", flag], Some(&list), t).code(0);
        let theirs = capture(tool_cmd(dir, "sha256sum", [flag]), Some(&list), t);
        assert_eq!(theirs.code, 0, "{theirs:#?}");
        assert_same_bytes("list on stdin, no LIST", &ours.stdout, &theirs.stdout);
    }
    // A tampered file is still caught through a list read from stdin.
    let first = dir.join(&names[0]);
    std::fs::write(&first, b"tampered").unwrap();
    pkgsign_t(dir, ["checksum", "-c"], Some(&list), t).code(1);
}

//! Unit tests of the signature file formats, and proptest round trips:
//! serialize/parse is the identity, the pkgsign format has exactly one text
//! per meaning, and parsing never panics, whatever the bytes.

use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::digest::{Digest, HashAlg};
use crate::error::{FileError, ParseError};
use crate::keys::{Fingerprint, SCHEME_ED25519, SCHEME_RSA_PSS_SHA256};
use crate::sign::identity::{Identity, Version, VersionScheme};
use crate::text::is_displayable;

fn p() -> &'static Path {
    Path::new("test.sig")
}

fn ed_block(comment: Option<&str>) -> Block {
    Block {
        statement: Statement {
            scheme: SCHEME_ED25519,
            key: Fingerprint::of_spki_der(b"ed key"),
            digest: Digest::new(HashAlg::Sha256, vec![0xab; 32]).unwrap(),
            size: 1234,
            signed_at: 1_767_225_600, // 2026-01-01T00:00:00Z
            identity: Identity::default(),
            comment: comment.map(str::to_string),
        },
        signature: vec![7; 64],
    }
}

fn rsa_block() -> Block {
    Block {
        statement: Statement {
            scheme: SCHEME_RSA_PSS_SHA256,
            key: Fingerprint::of_spki_der(b"rsa key"),
            digest: Digest::new(HashAlg::Sha512, vec![0x01; 64]).unwrap(),
            size: 0,
            signed_at: 0,
            identity: Identity::default(),
            comment: None,
        },
        signature: vec![0xff; 384],
    }
}

fn parse_err(text: &str) -> Error {
    parse(p(), text.as_bytes()).expect_err(text)
}

/// The line an error blames, asserting it is a malformed-signature error.
fn malformed_line(text: &str) -> Option<usize> {
    match parse_err(text) {
        Error::Parse(ParseError::SignatureMalformed { line, .. }) => line,
        other => panic!("expected SignatureMalformed for {text:?}, got {other:?}"),
    }
}

fn valid_text() -> String {
    to_pkgsign_text(&[ed_block(Some("release 1.0"))])
}

#[test]
fn canonical_text_known_answer() {
    let b = ed_block(Some("release 1.0"));
    let expected = format!(
        "algorithm: ed25519\nkey: {}\ndigest: sha256:{}\nsize: 1234\nsigned-at: 2026-01-01T00:00:00Z\ncomment: release 1.0\n",
        b.statement.key,
        "ab".repeat(32)
    );
    assert_eq!(b.statement.canonical_text(), expected);
    let mut msg = b"pkgsign package signature v1\0".to_vec();
    msg.extend_from_slice(expected.as_bytes());
    assert_eq!(b.statement.signed_message(), msg);
    let file = to_pkgsign_text(std::slice::from_ref(&b));
    assert_eq!(
        file,
        format!(
            "pkgsign-signature v1\n{expected}signature: {}\n",
            B64.encode([7u8; 64])
        )
    );
    // Without a comment, there is no comment line at all.
    assert!(
        !ed_block(None)
            .statement
            .canonical_text()
            .contains("comment")
    );
}

#[test]
fn round_trip_of_several_blocks() {
    let blocks = vec![ed_block(Some("a: b — ü")), rsa_block(), ed_block(None)];
    let text = to_pkgsign_text(&blocks);
    assert_eq!(
        parse(p(), text.as_bytes()).unwrap(),
        SignatureFile::Pkgsign(blocks)
    );
    let raw = to_raw_text(&[9u8; 64]);
    assert_eq!(
        parse(p(), raw.as_bytes()).unwrap(),
        SignatureFile::Raw(vec![9; 64])
    );
}

#[test]
fn empty_oversized_and_binary_files_are_malformed() {
    assert_eq!(malformed_line(""), None);
    let big = "A".repeat(FILE_LIMIT as usize + 1);
    assert_eq!(malformed_line(&big), None);
    assert!(matches!(
        parse(p(), &[0xff, 0xfe, b'\n']),
        Err(Error::Parse(ParseError::SignatureMalformed { .. }))
    ));
    // read() caps the file before parsing it.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("big.sig");
    let mut data = valid_text().into_bytes();
    data.resize(FILE_LIMIT as usize + 1, b'\n');
    std::fs::write(&f, &data).unwrap();
    assert!(matches!(
        read(&f),
        Err(Error::Parse(ParseError::SignatureMalformed { .. }))
    ));
    assert!(matches!(
        read(dir.path()),
        Err(Error::File(FileError::NotAFile { .. }))
    ));
    assert!(matches!(
        read(&dir.path().join("missing")),
        Err(Error::File(FileError::NotFound { .. }))
    ));
}

/// Identity lines: only in version 2, in their fixed place, canonical, and
/// the same release in every block.
#[test]
fn version_2_identity_lines_are_strict() {
    let mut b = ed_block(None);
    b.statement.identity = Identity {
        name: Some("app".into()),
        version: Some(Version::parse("1.4.2", VersionScheme::SemVer).unwrap()),
        expires: Some(1_800_000_000),
    };
    let text = to_pkgsign_text(std::slice::from_ref(&b));
    assert!(text.starts_with("pkgsign-signature v2\n"));
    assert!(text.contains(
        "signed-at: 2026-01-01T00:00:00Z\nname: app\nversion: 1.4.2\nversion-scheme: semver\nexpires: 2027-01-15T08:00:00Z\nsignature: "
    ));
    assert_eq!(
        parse(p(), text.as_bytes()).unwrap(),
        SignatureFile::Pkgsign(vec![b.clone()])
    );
    // The statement is signed under the version 2 domain.
    assert!(b.statement.signed_message().starts_with(CONTEXT_V2));
    for (from, to) in [
        ("pkgsign-signature v2", "pkgsign-signature v1"), // identity in v1
        ("version: 1.4.2\n", "version: 01.4.2\n"),        // not canonical
        ("version-scheme: semver", "version-scheme: calver"),
        ("version-scheme: semver\n", ""), // scheme missing
        ("name: app\n", "name: ../app\n"),
        (
            "name: app\nversion: 1.4.2\nversion-scheme: semver\n",
            "version: 1.4.2\nversion-scheme: semver\nname: app\n",
        ),
        (
            "expires: 2027-01-15T08:00:00Z",
            "expires: 2027-01-15 08:00:00",
        ),
    ] {
        let edited = text.replacen(from, to, 1);
        assert_ne!(edited, text, "{from:?}");
        assert!(
            matches!(
                parse_err(&edited),
                Error::Parse(ParseError::SignatureMalformed { .. })
            ),
            "{to:?}"
        );
    }
    // Two blocks naming different releases: refused.
    let mut other = b.clone();
    other.statement.identity.version = Some(Version::Integer(7));
    let two = to_pkgsign_text(&[b.clone(), other]);
    assert!(matches!(
        parse_err(&two),
        Error::Parse(ParseError::SignatureMalformed { .. })
    ));
    // Different expiries are fine.
    let mut later = b.clone();
    later.statement.identity.expires = Some(1_900_000_000);
    assert!(parse(p(), to_pkgsign_text(&[b, later]).as_bytes()).is_ok());
}

#[test]
fn versions() {
    let v1 = valid_text();
    // Version 2 is read, but its blocks must name a release: a version 1
    // block under a version 2 header is not canonical.
    assert!(matches!(
        parse_err(&v1.replacen(HEADER_V1, HEADER_V2, 1)),
        Error::Parse(ParseError::SignatureMalformed { .. })
    ));
    for (header, version) in [
        ("pkgsign-signature v3", "3"),
        ("pkgsign-signature v10", "10"),
    ] {
        let text = v1.replacen(HEADER_V1, header, 1);
        match parse_err(&text) {
            Error::Parse(ParseError::SignatureVersionUnsupported { version: v, .. }) => {
                assert_eq!(v, version)
            }
            other => panic!("{header}: {other:?}"),
        }
    }
    for header in [
        "pkgsign-signature v",
        "pkgsign-signature vX",
        "pkgsign-signature v1 ",
        "pkgsign-signature v-1",
        "pkgsign-signature",
        "pkgsign-signatures v1",
    ] {
        let text = v1.replacen(HEADER_V1, header, 1);
        assert_eq!(malformed_line(&text), Some(1), "{header}");
    }
}

#[test]
fn field_defects_name_their_line() {
    let text = valid_text();
    let lines: Vec<&str> = text.lines().collect();
    let join = |ls: &[&str]| ls.iter().map(|l| format!("{l}\n")).collect::<String>();
    // Duplicate key (line 3) -> line 4 is wrong.
    let mut dup = lines.clone();
    dup.insert(3, lines[2]);
    assert_eq!(malformed_line(&join(&dup)), Some(4));
    // Unknown field before the signature.
    let mut unknown = lines.clone();
    unknown.insert(7, "note: hi");
    assert_eq!(malformed_line(&join(&unknown)), Some(8));
    // Unknown field in place of a known one.
    let mut renamed = lines.clone();
    renamed[4] = "bytes: 1234";
    assert_eq!(malformed_line(&join(&renamed)), Some(5));
    // Missing ": " separator, and an empty value.
    let mut nosep = lines.clone();
    nosep[4] = "size 1234";
    assert_eq!(malformed_line(&join(&nosep)), Some(5));
    let mut empty = lines.clone();
    empty[4] = "size: ";
    assert_eq!(malformed_line(&join(&empty)), Some(5));
    // Trailing data after the last signature.
    let mut trailing = lines.clone();
    trailing.push("x");
    assert_eq!(malformed_line(&join(&trailing)), Some(9));
    let mut blank = lines.clone();
    blank.push("");
    assert_eq!(malformed_line(&join(&blank)), Some(9));
    // Truncated: no final newline, or a block cut short.
    assert_eq!(malformed_line(text.trim_end_matches('\n')), None);
    assert!(malformed_line(&join(&lines[..7])).is_none());
    assert!(malformed_line(&join(&lines[..1])).is_some());
}

#[test]
fn values_must_be_canonical() {
    let text = valid_text();
    let sig_b64 = B64.encode([7u8; 64]);
    let cases: Vec<(String, String)> = vec![
        ("algorithm: ed25519".into(), "algorithm: Ed25519".into()),
        (
            "algorithm: ed25519".into(),
            "algorithm: rsa-pss-sha256".into(),
        ),
        ("size: 1234".into(), "size: 01234".into()),
        ("size: 1234".into(), "size: +1234".into()),
        ("size: 1234".into(), "size: 1234 ".into()),
        ("size: 1234".into(), "size: 18446744073709551616".into()),
        (
            "signed-at: 2026-01-01T00:00:00Z".into(),
            "signed-at: 2026-01-01T00:00:00.000Z".into(),
        ),
        (
            "signed-at: 2026-01-01T00:00:00Z".into(),
            "signed-at: 2026-01-01T00:00:00+00:00".into(),
        ),
        (
            "signed-at: 2026-01-01T00:00:00Z".into(),
            "signed-at: 1767225600".into(),
        ),
        ("digest: sha256:ab".into(), "digest: SHA256:ab".into()),
        ("digest: sha256:abab".into(), "digest: sha256:ABAB".into()),
        ("digest: sha256:ab".into(), "digest: sha512:ab".into()),
        (
            format!("key: {}", ed_block(None).statement.key),
            "key: SHA256:abc".into(),
        ),
        (
            format!("signature: {sig_b64}"),
            format!("signature: {}", sig_b64.trim_end_matches('=')),
        ),
        (
            format!("signature: {sig_b64}"),
            format!("signature:  {sig_b64}"),
        ),
        (
            format!("signature: {sig_b64}"),
            format!("signature: {sig_b64} "),
        ),
        // Non-zero trailing bits: decodes to the same bytes, not canonical.
        (
            format!("signature: {sig_b64}"),
            format!("signature: {}", sig_b64.replacen("Bw==", "Bx==", 1)),
        ),
        (
            format!("signature: {sig_b64}"),
            format!("signature: {}", B64.encode([7u8; 65])),
        ),
        (
            "comment: release 1.0".into(),
            "comment:  release 1.0".into(),
        ),
        (
            "comment: release 1.0".into(),
            "comment: release\t1.0".into(),
        ),
        (
            "comment: release 1.0".into(),
            "comment: release \u{202E}1.0".into(),
        ),
    ];
    for (from, to) in cases {
        assert!(text.contains(&from), "{from:?} not in {text}");
        let bad = text.replacen(&from, &to, 1);
        assert_ne!(bad, text);
        assert!(malformed_line(&bad).is_some(), "{to:?} was accepted");
    }
    // CRLF line endings are not the canonical form.
    assert!(matches!(
        parse(p(), text.replace('\n', "\r\n").as_bytes()),
        Err(Error::Parse(ParseError::SignatureMalformed { .. }))
    ));
}

#[test]
fn signature_count_is_capped() {
    let ok = vec![ed_block(None); MAX_SIGNATURES];
    assert!(parse(p(), to_pkgsign_text(&ok).as_bytes()).is_ok());
    let too_many = vec![ed_block(None); MAX_SIGNATURES + 1];
    assert!(malformed_line(&to_pkgsign_text(&too_many)).is_some());
    // A header and nothing else holds no signature.
    assert_eq!(malformed_line("pkgsign-signature v1\n"), Some(1));
}

#[test]
fn raw_format() {
    for len in [64usize, 256, 384, 512, 1024] {
        let sig: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let text = to_raw_text(&sig);
        assert_eq!(text.matches('\n').count(), 1);
        assert_eq!(
            parse(p(), text.as_bytes()).unwrap(),
            SignatureFile::Raw(sig.clone())
        );
        // Wrapped at 64 columns (as `openssl base64` writes), CRLF, or no final newline.
        let b64 = B64.encode(&sig);
        let wrapped: Vec<String> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        for variant in [
            format!("{}\n", wrapped.join("\n")),
            format!("{}\r\n", wrapped.join("\r\n")),
            b64.clone(),
        ] {
            assert_eq!(
                parse(p(), variant.as_bytes()).unwrap(),
                SignatureFile::Raw(sig.clone())
            );
        }
    }
    for len in [0usize, 1, 63, 65, 128, 255, 1025] {
        let text = to_raw_text(&vec![1u8; len]);
        assert_eq!(malformed_line(&text), None, "length {len}");
    }
    for bad in [
        " AAAA\n",
        "AAAA AAAA\n",
        "\n",
        "\n\n",
        "AA==\n\n",
        "-----BEGIN SIGNATURE-----\n",
        "pkgsign\n",
    ] {
        assert!(parse(p(), bad.as_bytes()).is_err(), "{bad:?}");
    }
}

#[test]
fn comments() {
    assert!(check_comment("release 1.0 — ünïcode ✓").is_ok());
    assert!(check_comment(&"x".repeat(COMMENT_MAX)).is_ok());
    assert!(check_comment(&"x".repeat(COMMENT_MAX + 1)).is_err());
    for bad in [
        "",
        " lead",
        "trail ",
        "new\nline",
        "cr\rx",
        "tab\tx",
        "esc\x1b[31m",
        "nul\0",
        "rtl \u{202E}override",
        "isolate \u{2066}x",
        "zero\u{200B}width",
        "bom\u{FEFF}",
        "del\u{7f}",
        "c1\u{85}",
    ] {
        assert!(check_comment(bad).is_err(), "{bad:?}");
    }
}

/// Only characters that display: by general category, with the blank
/// letters and symbols, variation selectors and stray marks refused too.
#[test]
fn comments_hold_only_characters_that_display() {
    for ok in [
        "Ünïcode ✓ 版本 1.0 — ok",
        "cafe\u{0301}",
        "\u{0928}\u{093F}",  // Devanagari letter + spacing mark
        "x\u{0301}\u{0302}", // stacked marks on one base
        "emoji 🎉 ok",
        "a: b: c",
    ] {
        assert!(check_comment(ok).is_ok(), "{ok:?}");
    }
    for c in [
        '\u{00AD}',
        '\u{E0001}',
        '\u{E0041}',
        '\u{E007F}',
        '\u{3164}',
        '\u{115F}',
        '\u{1160}',
        '\u{FFA0}',
        '\u{2800}',
        '\u{200B}',
        '\u{200F}',
        '\u{202A}',
        '\u{202E}',
        '\u{2066}',
        '\u{2069}',
        '\u{FEFF}',
        '\u{FE00}',
        '\u{FE0F}',
        '\u{E0100}',
        '\u{E01EF}',
        '\u{034F}',
        '\u{17B4}',
        '\u{180B}',
        '\u{180E}',
        '\u{061C}',
        '\u{2060}',
        '\u{2064}',
        '\u{00A0}',
        '\u{2000}',
        '\u{200A}',
        '\u{202F}',
        '\u{205F}',
        '\u{3000}',
        '\u{1680}',
        '\u{2028}',
        '\u{2029}',
        '\u{E000}',
        '\u{F8FF}',
        '\u{F0000}',
        '\u{10FFFD}',
        '\u{0378}',
        '\u{FFFF}',
        '\u{1D173}',
        '\u{FFF9}',
        '\u{0085}',
        '\u{0009}',
    ] {
        assert!(!is_displayable(c), "U+{:04X}", c as u32);
        assert!(
            check_comment(&format!("a{c}b")).is_err(),
            "U+{:04X}",
            c as u32
        );
        // The parser refuses it too (it calls the same check).
        let text = to_pkgsign_text(&[ed_block(Some("aXb"))]).replace("aXb", &format!("a{c}b"));
        assert!(parse(p(), text.as_bytes()).is_err(), "U+{:04X}", c as u32);
    }
    // A combining mark needs a base before it.
    assert!(check_comment("\u{0301}x").is_err());
    assert!(check_comment("a \u{0301}x").is_err());
}

#[test]
fn times() {
    for (secs, text) in [
        (0u64, "1970-01-01T00:00:00Z"),
        (1_767_225_600, "2026-01-01T00:00:00Z"),
        (253_402_300_799, "9999-12-31T23:59:59Z"),
    ] {
        assert_eq!(format_time(secs), text);
        assert_eq!(parse_time(text), Some(secs));
    }
    for bad in [
        "2026-01-01T00:00:00",
        "2026-01-01T00:00:00.0Z",
        "2026-01-01t00:00:00z",
        "2026-01-01 00:00:00Z",
        "2026-02-30T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "",
    ] {
        assert_eq!(parse_time(bad), None, "{bad:?}");
    }
}

#[test]
fn hash_algs_are_deduplicated() {
    let blocks = vec![ed_block(None), rsa_block(), ed_block(Some("x"))];
    assert_eq!(hash_algs(&blocks), vec![HashAlg::Sha256, HashAlg::Sha512]);
}

// ---- proptest ----

fn arb_comment() -> impl Strategy<Value = Option<String>> {
    prop::option::of(
        prop_oneof![
            "[!-~]([ -~]{0,60}[!-~])?",
            "\\PC{1,40}",
            Just("a: b: c".to_string()),
            Just("signature: AAAA".to_string()),
        ]
        .prop_filter("a signable comment", |c| check_comment(c).is_ok()),
    )
}

fn arb_digest() -> impl Strategy<Value = Digest> {
    let algs: Vec<HashAlg> = HashAlg::ALL
        .iter()
        .copied()
        .filter(|a| a.fit_for_signatures())
        .collect();
    prop::sample::select(algs).prop_flat_map(|alg| {
        prop::collection::vec(any::<u8>(), alg.len())
            .prop_map(move |bytes| Digest::new(alg, bytes).unwrap())
    })
}

fn arb_block() -> impl Strategy<Value = Block> {
    let scheme_and_sig = prop_oneof![
        prop::collection::vec(any::<u8>(), 64).prop_map(|s| (SCHEME_ED25519, s)),
        prop::collection::vec(any::<u8>(), 256..=1024).prop_map(|s| (SCHEME_RSA_PSS_SHA256, s)),
    ];
    (
        scheme_and_sig,
        prop::collection::vec(any::<u8>(), 0..64),
        arb_digest(),
        any::<u64>(),
        0u64..=253_402_300_799,
        arb_comment(),
    )
        .prop_map(
            |((scheme, signature), spki, digest, size, signed_at, comment)| Block {
                statement: Statement {
                    scheme,
                    key: Fingerprint::of_spki_der(&spki),
                    digest,
                    size,
                    signed_at,
                    identity: Identity::default(),
                    comment,
                },
                signature,
            },
        )
}

/// One edit of a byte string: overwrite, insert or delete a byte, or cut.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn apply(data: &mut Vec<u8>, edit: &Edit) {
    let n = data.len();
    match *edit {
        Edit::Set(i, b) if n > 0 => data[i % n] = b,
        Edit::Insert(i, b) => data.insert(i % (n + 1), b),
        Edit::Delete(i) if n > 0 => {
            data.remove(i % n);
        }
        Edit::Truncate(i) => data.truncate(i % (n + 1)),
        _ => {}
    }
}

fn arb_edit() -> impl Strategy<Value = Edit> {
    // Bytes that matter to the grammar are chosen more often.
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(b"\n\r :=+/0aAZz-".to_vec()),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

/// A release identity (or none: a version 1 file), the same for every block.
fn arb_identity() -> impl Strategy<Value = Identity> {
    let version = prop_oneof![
        (0u64..1000, 0u64..1000, 0u64..1000).prop_map(|(a, b, c)| Version::parse(
            &format!("{a}.{b}.{c}"),
            VersionScheme::SemVer
        )
        .unwrap()),
        (0u64..1000).prop_map(
            |n| Version::parse(&format!("{n}-rc.1+b.7"), VersionScheme::SemVer)
                .unwrap_or(Version::Integer(n))
        ),
        any::<u64>().prop_map(Version::Integer),
    ];
    (
        prop::option::of("[a-z][a-z0-9._+@-]{0,20}"),
        prop::option::of(version),
        prop::option::of(0u64..=253_402_300_799),
    )
        .prop_map(|(name, version, expires)| Identity {
            name,
            version,
            expires,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// parse(serialize(blocks)) == blocks, and serializing again gives the
    /// same text; with or without a release identity (versions 2 and 1).
    #[test]
    fn pkgsign_round_trip(
        mut blocks in prop::collection::vec(arb_block(), 1..=4),
        identity in arb_identity(),
    ) {
        for b in &mut blocks {
            b.statement.identity = identity.clone();
        }
        let v2 = !identity.is_empty();
        let header = if v2 { HEADER_V2 } else { HEADER_V1 };
        prop_assert!(to_pkgsign_text(&blocks).starts_with(header));
        let text = to_pkgsign_text(&blocks);
        let parsed = parse(p(), text.as_bytes()).unwrap();
        prop_assert_eq!(&parsed, &SignatureFile::Pkgsign(blocks.clone()));
        // The signed message is rebuilt from the parsed fields, byte for byte.
        if let SignatureFile::Pkgsign(parsed) = parsed {
            for (a, b) in parsed.iter().zip(&blocks) {
                prop_assert_eq!(a.statement.signed_message(), b.statement.signed_message());
            }
            prop_assert_eq!(to_pkgsign_text(&parsed), text);
        }
    }

    #[test]
    fn raw_round_trip(sig in prop_oneof![
        prop::collection::vec(any::<u8>(), 64),
        prop::collection::vec(any::<u8>(), 256..=1024),
    ]) {
        let text = to_raw_text(&sig);
        prop_assert_eq!(parse(p(), text.as_bytes()).unwrap(), SignatureFile::Raw(sig));
    }

    /// Arbitrary bytes never make the parser panic.
    #[test]
    fn parse_never_panics_on_bytes(data in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = parse(p(), &data);
    }

    /// Nor do text-like inputs close to the grammar.
    #[test]
    fn parse_never_panics_on_near_text(
        text in "(pkgsign-signature v[0-9]{0,3}\n)?((algorithm|key|digest|size|signed-at|comment|signature|x)(: ?)[ -~]{0,90}\r?\n){0,16}"
    ) {
        let _ = parse(p(), text.as_bytes());
    }

    /// Edited valid files never panic the parser, and an edited file that
    /// still parses is exactly the canonical serialization of what it
    /// parsed to: the format has one text per meaning, so a signature file
    /// cannot be altered without changing what is checked.
    #[test]
    fn edited_files_parse_strictly(
        blocks in prop::collection::vec(arb_block(), 1..=3),
        edits in prop::collection::vec(arb_edit(), 1..=4),
    ) {
        let mut data = to_pkgsign_text(&blocks).into_bytes();
        for e in &edits {
            apply(&mut data, e);
        }
        if let Ok(SignatureFile::Pkgsign(parsed)) = parse(p(), &data) {
            prop_assert_eq!(to_pkgsign_text(&parsed).into_bytes(), data);
        }
    }

    /// The same for raw files, whose only accepted variations are line
    /// breaks: what parses decodes to the bytes of the base64 it holds.
    #[test]
    fn edited_raw_files_never_panic(
        sig in prop::collection::vec(any::<u8>(), 64),
        edits in prop::collection::vec(arb_edit(), 1..=4),
    ) {
        let mut data = to_raw_text(&sig).into_bytes();
        for e in &edits {
            apply(&mut data, e);
        }
        if let Ok(SignatureFile::Raw(parsed)) = parse(p(), &data) {
            let compact: Vec<u8> = data.iter().copied().filter(|b| !b"\r\n".contains(b)).collect();
            prop_assert_eq!(B64.encode(&parsed).into_bytes(), compact);
        }
    }
}

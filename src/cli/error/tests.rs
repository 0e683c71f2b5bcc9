//! The contract's mapping, pinned: every library error a command can meet
//! gives the same `code`, exit status and `error:` text as before the
//! library's errors lost their command-line hints.

use std::path::PathBuf;

use super::*;
use pkgsign::error::{FileError, KeyError, ParseError, TrustError};

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

fn io(kind: std::io::ErrorKind) -> std::io::Error {
    std::io::Error::new(kind, "denied")
}

#[test]
fn every_library_error_keeps_its_contract_code_exit_and_message() {
    let table: Vec<(Error, &str, u8, &str)> = vec![
        (
            Error::File(FileError::NotFound { path: p("a") }),
            "FILE_NOT_FOUND",
            2,
            "a: no such file; check the path",
        ),
        (
            Error::File(FileError::NotAFile { path: p("d") }),
            "NOT_A_FILE",
            2,
            "d: is a directory or special file, not a regular file; pass the path of a file",
        ),
        (
            Error::File(FileError::Io {
                path: p("f"),
                action: "reading",
                source: io(std::io::ErrorKind::PermissionDenied),
            }),
            "IO_ERROR",
            2,
            "f: reading failed: denied; check that the path is correct and accessible",
        ),
        (
            Error::Key(KeyError::Permissions {
                path: p("k.pem"),
                mode: 0o644,
            }),
            "KEY_PERMISSIONS",
            2,
            "k.pem: private key is accessible by group or others (mode 0644); run `chmod 600 k.pem` and keep it private",
        ),
        (
            Error::Key(KeyError::PassphraseRequired { path: p("k.pem") }),
            "PASSPHRASE_REQUIRED",
            2,
            "k.pem: the private key is encrypted and no passphrase was given; give its passphrase with --passphrase-file FILE or the PKGSIGN_PASSPHRASE environment variable",
        ),
        (
            Error::Key(KeyError::PassphraseWrong { path: p("k.pem") }),
            "PASSPHRASE_WRONG",
            2,
            "k.pem: wrong passphrase, or the encrypted key is damaged; check --passphrase-file / PKGSIGN_PASSPHRASE",
        ),
        (
            Error::File(FileError::AlreadyExists { path: p("k.pem") }),
            "ALREADY_EXISTS",
            2,
            "k.pem: already exists; pkgsign never overwrites a key silently: choose another --name or --output-dir, or pass --force to replace it",
        ),
        (
            Error::Key(KeyError::TooWeak {
                path: p("r.pub"),
                bits: 1024,
            }),
            "KEY_TOO_WEAK",
            2,
            "r.pub: RSA key of 1024 bits refused: pkgsign accepts 2048 to 8192 bits; generate a new key with `pkgsign keygen --algorithm rsa --bits 3072`",
        ),
        (
            Error::Parse(ParseError::SignatureMalformed {
                path: p("x.sig"),
                line: Some(2),
                reason: "bad".into(),
            }),
            "SIGNATURE_MALFORMED",
            1,
            "x.sig: malformed signature file (line 2): bad; re-create it with `pkgsign sign-package`, or fetch it again",
        ),
        (
            Error::Parse(ParseError::SignatureVersionUnsupported {
                path: p("x.sig"),
                version: "9".into(),
            }),
            "SIGNATURE_VERSION_UNSUPPORTED",
            1,
            "x.sig: signature format version \"9\" is not supported by this pkgsign (it reads version 1); upgrade pkgsign",
        ),
        (
            Error::Parse(ParseError::ManifestMalformed {
                path: p("SUMS"),
                lines: vec![3],
                count: 1,
            }),
            "MANIFEST_MALFORMED",
            1,
            "SUMS: line 3 is not a checksum line; the list is refused: re-create it (for example `sha256sum FILES > LIST`), and sign it again if it is signed (a signed list holds checksum lines only: no blank or comment line)",
        ),
        (
            Error::Parse(ParseError::StatementOutdated { path: p("s.stmt") }),
            "STATEMENT_OUTDATED",
            1,
            "",
        ),
        (
            Error::Trust(TrustError::NoKeys(NoKeys::ToSign)),
            "NO_KEYS",
            2,
            "no signing key: give --private-key KEY or --keys-dir DIR",
        ),
        (
            Error::Trust(TrustError::NoKeys(NoKeys::ToVerify)),
            "NO_KEYS",
            2,
            "nothing to verify: give --public-key, --trusted-keys or --checksum",
        ),
        (
            Error::Trust(TrustError::NoKeys(NoKeys::InWindow { dir: p("keys") })),
            "NO_KEYS",
            2,
            "keys: no private key inside its validity window; create one with `pkgsign keygen --output-dir keys` or `pkgsign key-rotate --init`",
        ),
        (
            Error::AuditLogUnwritable {
                path: p("a.log"),
                action: "opening",
                source: io(std::io::ErrorKind::PermissionDenied),
                done: "nothing was done".into(),
            },
            "AUDIT_LOG_UNWRITABLE",
            2,
            "a.log: cannot write the audit log (opening: denied); nothing was done; fix the path or its permissions (the log must be a regular file, not a symlink, in an existing directory), or run without --audit-log and PKGSIGN_AUDIT_LOG",
        ),
        (
            Error::Trust(TrustError::InsecurePermissions {
                path: p("/t"),
                what: "trusted-keys directory",
                mode: 0o777,
                all: vec![p("/t"), p("/t/a b.pub")],
            }),
            "KEY_PERMISSIONS",
            2,
            "/t: trusted-keys directory is writable by group or others (mode 0777) and so is 1 other path, so another user could choose the keys pkgsign trusts or signs with; run `chmod go-w /t '/t/a b.pub'` (or pass --insecure-permissions to accept the risk)",
        ),
        (
            Error::Trust(TrustError::NoCurrentKey {
                dir: p("keys"),
                name: "sk".into(),
                existing: vec![],
            }),
            "KEY_NOT_FOUND",
            2,
            "keys: no current key named \"sk\" (keys here: none); check --name for a typo, or pass --init to create the first key of \"sk\"",
        ),
        (
            Error::Crypto {
                what: "signing",
                reason: "r".into(),
            },
            "CRYPTO_ERROR",
            2,
            "signing failed: r",
        ),
        (
            Error::Encoding {
                what: "writing the rotation journal",
                reason: "r".into(),
            },
            "ENCODING_ERROR",
            2,
            "writing the rotation journal failed: r",
        ),
    ];
    let table = table.into_iter().chain([(
        Error::File(FileError::WritableByOthers {
            path: p("out"),
            what: "the directory of the verified copy",
            mode: 0o777,
        }),
        "PATH_REFUSED",
        2,
        "out: the directory of the verified copy is writable by group or others (mode 0777) and not sticky, so another user could replace the verified copy before it is used; use a directory only you can write",
    )]);
    for (e, code, exit, text) in table {
        let shown = message(&e);
        let e = CliError::from(e);
        assert_eq!(e.code().as_str(), code, "{e:?}");
        assert_eq!(e.exit_code(), exit, "{e:?}");
        if !text.is_empty() {
            assert_eq!(shown, text);
            assert_eq!(e.to_string(), text);
        }
    }
}

#[test]
fn library_messages_name_no_flag() {
    let errors = [
        Error::Key(KeyError::PassphraseRequired { path: p("k") }),
        Error::Key(KeyError::PassphraseWrong { path: p("k") }),
        Error::File(FileError::AlreadyExists { path: p("k") }),
        Error::Trust(TrustError::NoKeys(NoKeys::ToSign)),
        Error::Trust(TrustError::NoKeys(NoKeys::ToVerify)),
        Error::Trust(TrustError::NoCurrentKey {
            dir: p("d"),
            name: "n".into(),
            existing: vec![],
        }),
        Error::Trust(TrustError::InsecurePermissions {
            path: p("d"),
            what: "dir",
            mode: 0o777,
            all: vec![p("d")],
        }),
        Error::AuditLogUnwritable {
            path: p("a"),
            action: "opening",
            source: io(std::io::ErrorKind::Other),
            done: "x".into(),
        },
    ];
    for e in errors {
        let m = e.to_string();
        assert!(!m.contains("--") && !m.contains("PKGSIGN_"), "{m}");
    }
}

#[test]
fn command_line_errors_keep_their_codes_and_exits() {
    let items = CliError::ItemsFailed {
        failed: 1,
        total: 3,
        what: "files",
        code: Code::ChecksumMismatch,
        exit: 1,
    };
    assert_eq!(
        (items.code().as_str(), items.exit_code()),
        ("CHECKSUM_MISMATCH", 1)
    );
    assert_eq!(
        items.to_string(),
        "1 of 3 files failed; see the lines above"
    );
    let st = CliError::StatementsRefused(2);
    assert_eq!(
        (st.code().as_str(), st.exit_code()),
        ("STATEMENT_REFUSED", 1)
    );
    let u = CliError::Usage("bad".into());
    assert_eq!((u.code().as_str(), u.exit_code()), ("USAGE", 2));
    let n = CliError::NoTrustedKey;
    assert_eq!((n.code().as_str(), n.exit_code()), ("NO_KEYS", 2));
}

/// Every invalid request: the command line says it with its flags, exactly
/// as before the library's errors were typed (code `USAGE`, exit 2); the
/// library's own text names no flag and no environment variable.
#[test]
fn invalid_requests_keep_their_command_line_text_and_the_library_names_no_flag() {
    let key = pkgsign::keys::generate(pkgsign::keys::KeySpec::Ed25519)
        .unwrap()
        .public_key()
        .fingerprint()
        .to_string();
    let table: Vec<(Invalid, String)> = vec![
        (
            Invalid::OutputIsPackage { output: p("app") },
            "--output app is the package itself; the signature would replace it: write it elsewhere"
                .into(),
        ),
        (
            Invalid::KeyGivenTwice {
                key: key.clone(),
                source_name: "k.pem".into(),
            },
            format!("key {key} (k.pem) is given twice; each key signs once"),
        ),
        (
            Invalid::HashNotForSignatures { alg: "md5".into() },
            "--hash md5: not accepted for signatures".into(),
        ),
        (
            Invalid::Comment { reason: "r".into() },
            "--comment: r".into(),
        ),
        (Invalid::Reason { reason: "r".into() }, "--reason: r".into()),
        (
            Invalid::RawNeedsOneKey,
            "--format raw holds exactly one signature: give one --private-key".into(),
        ),
        (
            Invalid::RawFixedHash,
            "--format raw always uses SHA-256 (RSA) or pure Ed25519; drop --hash".into(),
        ),
        (
            Invalid::RawNoIdentity,
            "--format raw cannot carry --name, --release-version or --expires; use the pkgsign format".into(),
        ),
        (
            Invalid::ReleaseName { reason: "r".into() },
            "--name: r".into(),
        ),
        (
            Invalid::IdentityFrom {
                path: p("old.sig"),
                reason: "r".into(),
            },
            "--identity-from old.sig: r".into(),
        ),
        (
            Invalid::ExpiresBeforeSigning {
                expires: "2026-01-01T00:00:00Z".into(),
                signed_at: "2026-12-01T00:00:00Z".into(),
            },
            "--expires 2026-01-01T00:00:00Z is not after the signing time 2026-12-01T00:00:00Z: the signature would never verify".into(),
        ),
        (
            Invalid::RawNoComment,
            "--format raw cannot carry a comment; use the pkgsign format".into(),
        ),
        (
            Invalid::MessageUnfit {
                path: Some(p("evil")),
                reason: "starts with x".into(),
            },
            "evil: starts with x".into(),
        ),
        (
            Invalid::NotAKeyDir {
                path: p("f"),
                kind: KeyDirKind::SigningKeys,
            },
            "f: --keys-dir needs a directory of .pem private keys".into(),
        ),
        (
            Invalid::NotAKeyDir {
                path: p("f"),
                kind: KeyDirKind::TrustedKeys,
            },
            "f: --trusted-keys needs a directory of .pub files".into(),
        ),
        (
            Invalid::UnknownHashAlg {
                name: "x".into(),
                supported: "sha256".into(),
            },
            "unknown hash algorithm \"x\"; supported: sha256".into(),
        ),
        (
            Invalid::MalformedDigest("malformed digest \"x\"".into()),
            "malformed digest \"x\"".into(),
        ),
        (
            Invalid::NotInDir {
                path: p("a/b"),
                dir: p("c"),
            },
            "a/b: not in c".into(),
        ),
        (
            Invalid::CosignerIsParty { key: key.clone() },
            format!("key {key} already signs this statement as its signer or subject; a cosignature must come from another lineage"),
        ),
        (
            Invalid::AlreadyCosigned { key: key.clone() },
            format!("key {key} has already cosigned this statement"),
        ),
        (
            Invalid::TooManyCosignatures { max: 16 },
            "a statement holds at most 16 cosignatures".into(),
        ),
        (
            Invalid::StatementSignerRefused {
                why: format!("{key} is revoked"),
                dir: p("t"),
            },
            format!("--sign-with key {key} is revoked in t; workers would refuse its statement: sign with the current key of its lineage"),
        ),
        (
            Invalid::RevokedKeyReadded {
                key: key.clone(),
                at: "2026-12-01T00:00:00Z".into(),
                reason: "lost".into(),
            },
            format!("key {key} was revoked at 2026-12-01T00:00:00Z (lost); a revoked key is never trusted again: use a new key"),
        ),
        (
            Invalid::WindowReversed,
            "--not-after is before --not-before".into(),
        ),
        (
            Invalid::ThresholdZero,
            "--threshold must be at least 1".into(),
        ),
        (
            Invalid::KeyNotInDir {
                key: key.clone(),
                dir: p("t"),
            },
            format!("key {key} is not in t; see `pkgsign trust list t`"),
        ),
        (
            Invalid::EmptyPassphrase,
            "the passphrase is empty; put a non-empty passphrase in the file or PKGSIGN_PASSPHRASE"
                .into(),
        ),
        (
            Invalid::RsaBits { bits: 1024 },
            "--bits 1024: pkgsign generates RSA keys of 2048, 3072 or 4096 bits".into(),
        ),
        (
            Invalid::KeyName { name: ".x".into() },
            "--name \".x\": a key name uses letters, digits and - _ . @ + only, does not start with a dot, and has at most 128 characters".into(),
        ),
    ];
    for (invalid, text) in table {
        let library = invalid.to_string();
        assert!(
            !library.contains("--") && !library.contains("PKGSIGN_"),
            "{library}"
        );
        let e = CliError::from(Error::from(invalid));
        assert_eq!((e.code().as_str(), e.exit_code()), ("USAGE", 2), "{e:?}");
        assert_eq!(e.to_string(), text);
    }
}

/// A digest that differs is the verify layer's refusal: code, exit 1 and
/// text as before.
#[test]
fn a_checksum_mismatch_keeps_its_code_exit_and_message() {
    let e = CliError::from(pkgsign::verify::VerifyError::ChecksumMismatch {
        path: p("pkg"),
        algorithm: "sha256",
        expected: "aa".into(),
        actual: "bb".into(),
    });
    assert_eq!((e.code().as_str(), e.exit_code()), ("CHECKSUM_MISMATCH", 1));
    assert_eq!(
        e.to_string(),
        "pkg: sha256 digest is bb, expected aa: the package is corrupt or was replaced; do not use it"
    );
    // A verification that could not be made stays the library's error.
    let failed = CliError::from(pkgsign::verify::VerifyError::Failed(Error::Invalid(
        Invalid::ThresholdZero,
    )));
    assert!(matches!(failed, CliError::Lib(_)));
}

/// The refusals of `apply` and of a staged package over `--max-size` say
/// what to do next in this command line's terms.
#[test]
fn apply_refusals_and_oversized_packages_say_what_to_do() {
    let big = CliError::from(Error::File(FileError::TooLarge {
        path: p("-"),
        what: "package",
        limit: 100,
    }));
    assert_eq!(
        (big.code().as_str(), big.exit_code()),
        ("FILE_TOO_LARGE", 2)
    );
    assert!(big.to_string().ends_with("raise --max-size"), "{big}");
    let archive = CliError::from(pkgsign::apply::ApplyError::Archive {
        label: "app.tar.gz".into(),
        reason: "entry \"../x\": a `..` in the path".into(),
    });
    assert_eq!(
        (archive.code().as_str(), archive.exit_code()),
        ("ARCHIVE_REFUSED", 1)
    );
    assert!(
        archive.to_string().contains("nothing was installed"),
        "{archive}"
    );
}

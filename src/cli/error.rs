//! The command line's errors: the library's errors plus those only a
//! command line has (usage, several items failed), each mapped to the
//! contract's exit status and `code`, and shown with what to do next in
//! terms of this command line's flags (as rage's binary does over age).

use std::fmt;
use std::path::PathBuf;

use pkgsign::apply::ApplyError;
use pkgsign::error::{
    Code, Error, FileError, Invalid, KeyDirKind, KeyError, NoKeys, ParseError, TrustError,
};
use pkgsign::sign::report::Report;
use pkgsign::verify::VerifyError;

/// Everything a subcommand can fail with.
#[derive(Debug)]
pub enum CliError {
    /// A library error.
    Lib(Error),
    /// A verification ran and refused the package: its signatures (the
    /// report says why, per signature) or its digest. Never
    /// [`VerifyError::Failed`], which is [`CliError::Lib`].
    Verify(VerifyError),
    /// The command line was inconsistent.
    Usage(String),
    /// Neither `--public-key` nor a `--trusted-keys` directory gave a usable key.
    NoTrustedKey,
    /// Some items of a command over many files failed; each was reported
    /// on its own line.
    ItemsFailed {
        /// How many failed.
        failed: usize,
        /// How many there were.
        total: usize,
        /// What they are ("files", "packages").
        what: &'static str,
        /// The code to report.
        code: Code,
        /// The exit code (1 refused, 2 could not run).
        exit: u8,
    },
    /// `apply` refused a release for what the worker's state says (a
    /// rollback, a reused version, no version).
    Refusal {
        /// The contract's code.
        code: Code,
        /// What happened, and what to do.
        message: String,
    },
    /// `trust update` refused some statements (forged, or not chained to a
    /// trusted key).
    StatementsRefused(usize),
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        CliError::Lib(e)
    }
}

impl From<VerifyError> for CliError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Failed(e) => CliError::Lib(e),
            refused => CliError::Verify(refused),
        }
    }
}

impl From<ApplyError> for CliError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Verify(v) => v.into(),
            ApplyError::Failed(e) => CliError::Lib(e),
            other => CliError::Refusal {
                code: other.code(),
                message: apply_message(&other),
            },
        }
    }
}

/// An `apply` refusal's message, with what to do next.
pub fn apply_message(e: &ApplyError) -> String {
    match e {
        ApplyError::Verify(VerifyError::Refused(r)) => refused_message(r),
        ApplyError::Verify(VerifyError::Failed(e)) | ApplyError::Failed(e) => message(e),
        ApplyError::Rollback { .. } => format!(
            "{e}; do not install it: fetch the current release (an operator who means to go back passes --allow-downgrade-to VERSION)"
        ),
        ApplyError::Archive { .. } => format!(
            "{e}; nothing was installed: if the release is genuine and only large, raise --max-extract-size or --max-entries; otherwise ask the publisher for an archive of plain files, directories and symlinks inside it"
        ),
        ApplyError::VersionReused { .. } => {
            format!("{e}; do not install it: ask the publisher why two packages carry one version")
        }
        other => other.to_string(),
    }
}

impl CliError {
    /// The stable upper-case code of the contract.
    pub fn code(&self) -> Code {
        match self {
            CliError::Lib(e) => e.code(),
            CliError::Verify(v) => v.code(),
            CliError::Refusal { code, .. } => *code,
            CliError::Usage(_) => Code::Usage,
            CliError::NoTrustedKey => Code::NoKeys,
            CliError::ItemsFailed { code, .. } => *code,
            CliError::StatementsRefused(_) => Code::StatementRefused,
        }
    }

    /// The process exit code of the contract: 1 when a verification was
    /// refused, 2 when the command could not run.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Lib(e) => exit_code(e),
            CliError::ItemsFailed { exit, .. } => *exit,
            CliError::Verify(_) | CliError::Refusal { .. } | CliError::StatementsRefused(_) => 1,
            CliError::Usage(_) | CliError::NoTrustedKey => 2,
        }
    }

    /// The verification report, when a verification was refused.
    pub fn report(&self) -> Option<&Report> {
        match self {
            CliError::Verify(VerifyError::Refused(r)) => Some(r),
            _ => None,
        }
    }
}

/// The exit status of a library error: 1 when a verification was refused
/// (a bad, malformed or unknown signature, a digest that differs, a refused
/// statement), 2 when the command could not run.
pub fn exit_code(e: &Error) -> u8 {
    match e {
        Error::Parse(ParseError::SignatureMalformed { .. })
        | Error::Parse(ParseError::SignatureVersionUnsupported { .. })
        | Error::Parse(ParseError::ManifestMalformed { .. })
        | Error::Parse(ParseError::StatementOutdated { .. }) => 1,
        _ => 2,
    }
}

/// What to do next, in this command line's terms, appended to the
/// library's message (with its separator), or "" when the message says it.
fn hint(e: &Error) -> String {
    match e {
        Error::Key(KeyError::Permissions { path, .. }) => {
            format!("; run `chmod 600 {}` and keep it private", path.display())
        }
        Error::Key(KeyError::PassphraseRequired { .. }) => {
            "; give its passphrase with --passphrase-file FILE or the PKGSIGN_PASSPHRASE environment variable".into()
        }
        Error::Key(KeyError::PassphraseWrong { .. }) => "; check --passphrase-file / PKGSIGN_PASSPHRASE".into(),
        Error::File(FileError::AlreadyExists { .. }) => {
            "; pkgsign never overwrites a key silently: choose another --name or --output-dir, or pass --force to replace it".into()
        }
        Error::Parse(ParseError::SignatureMalformed { .. }) => {
            "; re-create it with `pkgsign sign-package`, or fetch it again".into()
        }
        Error::File(FileError::TooLarge { what: "package", .. }) => {
            "; if the package is genuine and only large, raise --max-size".into()
        }
        Error::Key(KeyError::TooWeak { .. }) => {
            "; generate a new key with `pkgsign keygen --algorithm rsa --bits 3072`".into()
        }
        Error::AuditLogUnwritable { .. } => {
            "; fix the path or its permissions (the log must be a regular file, not a symlink, in an existing directory), or run without --audit-log and PKGSIGN_AUDIT_LOG".into()
        }
        Error::Trust(TrustError::InsecurePermissions { all, .. }) => format!(
            "; run `chmod go-w {}` (or pass --insecure-permissions to accept the risk)",
            shell_words(all)
        ),
        Error::Trust(TrustError::NoCurrentKey { name, .. }) => format!(
            "; check --name for a typo, or pass --init to create the first key of {name:?}"
        ),
        Error::Trust(TrustError::NoKeys(NoKeys::ToSign)) => ": give --private-key KEY or --keys-dir DIR".into(),
        Error::Trust(TrustError::NoKeys(NoKeys::ToVerify)) => {
            ": give --public-key, --trusted-keys or --checksum".into()
        }
        Error::Trust(TrustError::NoKeys(NoKeys::InWindow { dir })) => format!(
            "; create one with `pkgsign keygen --output-dir {}` or `pkgsign key-rotate --init`",
            dir.display()
        ),
        _ => String::new(),
    }
}

/// What to do about a refused verification, by its code.
fn refused_hint(report: &Report) -> &'static str {
    match report.code() {
        // The report's message already says what to do.
        Code::ThresholdNotMet => "",
        Code::KeyNotTrusted => {
            "; if you trust the signer, add its .pub with --public-key or to the trusted-keys directory"
        }
        Code::KeyExpired | Code::KeyNotYetValid => {
            "; ask the publisher for a package signed by a currently valid key"
        }
        Code::KeyRevoked => "; the key was revoked: do not install this package",
        Code::NameMismatch => {
            "; the signature is for another package: do not install this file under this name"
        }
        Code::Rollback => {
            "; an older release than you asked for: do not install it (a rollback), fetch the current release"
        }
        Code::SignatureExpired => {
            "; the publisher's signature has expired: fetch a freshly signed release"
        }
        _ => "; do not install this package; fetch it and its .sig again from the publisher",
    }
}

/// A refused verification's message with what to do next.
pub fn refused_message(report: &Report) -> String {
    format!("{report}{}", refused_hint(report))
}

/// A library error's message with what to do next: what `error:` prints.
pub fn message(e: &Error) -> String {
    match e {
        Error::Invalid(i) => invalid_message(i),
        _ => format!("{e}{}", hint(e)),
    }
}

/// An invalid request, said in terms of this command line's flags (the
/// library says it in terms of the facts).
fn invalid_message(i: &Invalid) -> String {
    match i {
        Invalid::OutputIsPackage { output } => format!(
            "--output {} is the package itself; the signature would replace it: write it elsewhere",
            output.display()
        ),
        Invalid::HashNotForSignatures { alg } => {
            format!("--hash {alg}: not accepted for signatures")
        }
        Invalid::Comment { reason } => format!("--comment: {reason}"),
        Invalid::Reason { reason } => format!("--reason: {reason}"),
        Invalid::RawNeedsOneKey => {
            "--format raw holds exactly one signature: give one --private-key".into()
        }
        Invalid::RawFixedHash => {
            "--format raw always uses SHA-256 (RSA) or pure Ed25519; drop --hash".into()
        }
        Invalid::RawNoIdentity => {
            "--format raw cannot carry --name, --release-version or --expires; use the pkgsign format".into()
        }
        Invalid::ReleaseName { reason } => format!("--name: {reason}"),
        Invalid::IdentityFrom { path, reason } => {
            format!("--identity-from {}: {reason}", path.display())
        }
        Invalid::ExpiresBeforeSigning { expires, signed_at } => format!(
            "--expires {expires} is not after the signing time {signed_at}: the signature would never verify"
        ),
        Invalid::RawNoComment => {
            "--format raw cannot carry a comment; use the pkgsign format".into()
        }
        Invalid::NotAKeyDir {
            path,
            kind: KeyDirKind::SigningKeys,
        } => format!(
            "{}: --keys-dir needs a directory of .pem private keys",
            path.display()
        ),
        Invalid::NotAKeyDir { path, .. } => format!(
            "{}: --trusted-keys needs a directory of .pub files",
            path.display()
        ),
        Invalid::StatementSignerRefused { why, dir } => format!(
            "--sign-with key {why} in {}; workers would refuse its statement: sign with the current key of its lineage",
            dir.display()
        ),
        Invalid::WindowReversed => "--not-after is before --not-before".into(),
        Invalid::ThresholdZero => "--threshold must be at least 1".into(),
        Invalid::KeyNotInDir { key, dir } => format!(
            "key {key} is not in {}; see `pkgsign trust list {}`",
            dir.display(),
            dir.display()
        ),
        Invalid::EmptyPassphrase => {
            "the passphrase is empty; put a non-empty passphrase in the file or PKGSIGN_PASSPHRASE"
                .into()
        }
        Invalid::RsaBits { bits } => {
            format!("--bits {bits}: pkgsign generates RSA keys of 2048, 3072 or 4096 bits")
        }
        Invalid::KeyName { name } => format!(
            "--name {name:?}: a key name uses letters, digits and - _ . @ + only, does not start with a dot, and has at most 128 characters"
        ),
        // The library's text names no flag: the command line says the same.
        other => other.to_string(),
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Lib(e) => f.write_str(&message(e)),
            CliError::Verify(VerifyError::Refused(r)) => f.write_str(&refused_message(r)),
            CliError::Verify(v) => write!(f, "{v}"),
            CliError::Refusal { message, .. } => f.write_str(message),
            CliError::Usage(m) => f.write_str(m),
            CliError::NoTrustedKey => f.write_str(
                "no usable trusted key: give --public-key PUB or a --trusted-keys DIR holding .pub files",
            ),
            CliError::ItemsFailed {
                failed,
                total,
                what,
                ..
            } => write!(f, "{failed} of {total} {what} failed; see the lines above"),
            CliError::StatementsRefused(n) => write!(
                f,
                "{n} key statement(s) refused: they are not signed by a key this directory trusts; check where they came from"
            ),
        }
    }
}

/// Paths as shell words: single-quoted unless plainly safe.
fn shell_words(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| {
            let s = p.display().to_string();
            let plain = !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@,=".contains(&b));
            if plain {
                s
            } else {
                format!("'{}'", s.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;

//! Reading and writing key files.
//!
//! Read: PKCS#8 (`PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`), PKCS#1 RSA
//! (`RSA PRIVATE KEY`, `RSA PUBLIC KEY`) and SubjectPublicKeyInfo
//! (`PUBLIC KEY`) PEM, as openssl writes them. Write: PKCS#8 v1 private keys
//! (openssl 3.0 cannot read the v2 Ed25519 form) and SPKI public keys.
//!
//! One PEM reader for all armoured input: `pem_block` finds and checks
//! the one block of a key file, and the `pem` crate decodes it; the DER then
//! goes to the pkcs8 / spki / pkcs1 decoders. PEM is written by the
//! pkcs8 / spki encoders (`der`'s PEM writer), the form openssl writes.
//!
//! Every buffer that holds private key material is zeroized on drop.

use std::path::Path;

use pkcs8::der::pem::LineEnding;
use pkcs8::der::{Decode, SecretDocument};
use pkcs8::pkcs5::pbes2;
use pkcs8::{EncodePrivateKey, EncryptedPrivateKeyInfoRef, ObjectIdentifier, PrivateKeyInfoRef};
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use spki::{EncodePublicKey, SubjectPublicKeyInfoRef};
use zeroize::Zeroizing;

use super::{LocalKey, PrivateKey, PublicKey};
use crate::error::{Error, KeyError, Result};
use crate::fsutil;

/// Largest key file accepted (an 8192-bit RSA key in PEM is about 6.5 KiB).
pub const KEY_FILE_LIMIT: u64 = 64 * 1024;

const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// scrypt cost used when writing encrypted keys: N = 2^14, r = 8 needs
/// 16 MiB, inside the 32 MiB openssl 3.0 allows by default; p = 4 quadruples
/// the work without more memory.
const SCRYPT_LOG_N: u8 = 14;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 4;
/// Largest key-derivation cost accepted when reading an encrypted key, so a
/// hostile key file cannot make pkgsign allocate gigabytes or spin for hours.
const SCRYPT_MAX_MEMORY: u64 = 256 * 1024 * 1024;
const PBKDF2_MAX_ITERATIONS: u32 = 10_000_000;

/// A passphrase, zeroized on drop. Never printed.
pub struct Passphrase(Zeroizing<Vec<u8>>);

impl Passphrase {
    /// Wrap passphrase bytes.
    pub fn new(bytes: Vec<u8>) -> Result<Self> {
        let bytes = Zeroizing::new(bytes);
        if bytes.is_empty() {
            return Err(crate::error::Invalid::EmptyPassphrase.into());
        }
        Ok(Passphrase(bytes))
    }

    /// Read the first line of `path` (as `openssl -passin file:` does).
    pub fn from_file(path: &Path) -> Result<Self> {
        let data = fsutil::read_bounded(path, 64 * 1024, "passphrase file")?;
        let line = data.split(|b| *b == b'\n').next().unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        Passphrase::new(line.to_vec())
    }

    /// The secret bytes.
    pub fn expose_secret_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// Load a private key file: checks its permissions, then parses it.
pub fn load_private_key(path: &Path, passphrase: Option<&Passphrase>) -> Result<LocalKey> {
    // Read first, so that a directory is "not a file", not a permissions problem.
    let data = fsutil::read_bounded(path, KEY_FILE_LIMIT, "key file")?;
    // A public key given where the private key belongs is world-readable
    // by design: say what it is rather than ask for `chmod 600` on it.
    if holds_public_key(&data) {
        return Err(public_key_given(path));
    }
    fsutil::check_private_permissions(path)?;
    let private = parse_private_key(path, &data, passphrase)?;
    Ok(LocalKey::new(private, path.to_path_buf()))
}

/// Whether `data` is a public key file pkgsign or OpenSSH writes: PEM
/// `PUBLIC KEY` (SubjectPublicKeyInfo) or `RSA PUBLIC KEY` (PKCS#1), or an
/// OpenSSH public key line.
fn holds_public_key(data: &[u8]) -> bool {
    if let Ok(block) = pem_block(data) {
        return matches!(block.label, "PUBLIC KEY" | "RSA PUBLIC KEY");
    }
    let start = data.trim_ascii_start();
    [
        &b"ssh-ed25519 "[..],
        b"ssh-rsa ",
        b"ecdsa-sha2-",
        b"sk-ssh-ed25519@",
    ]
    .iter()
    .any(|p| start.starts_with(p))
}

/// The error for a public key where a private key is needed, naming the
/// private key file keygen writes beside it (`KEY.pub` -> `KEY.pem`).
fn public_key_given(path: &Path) -> Error {
    let private = if path.extension().is_some_and(|e| e == "pub") {
        path.with_extension("pem").display().to_string()
    } else {
        "the .pem file written by keygen".into()
    };
    Error::key_malformed(
        path,
        format!("it holds a public key; signing needs the private key ({private})"),
    )
}

/// The one PEM block of a key file, or why it is not one.
fn pem_of<'a>(path: &Path, data: &'a [u8]) -> Result<PemBlock<'a>> {
    pem_block(data).map_err(|refusal| match refusal {
        PemRefusal::NotPem => Error::key_malformed(
            path,
            "not a PEM key file (expected a line like -----BEGIN PRIVATE KEY----- or -----BEGIN PUBLIC KEY-----)",
        ),
        PemRefusal::Bad(why) => Error::key_malformed(path, format!("bad PEM encoding: {why}")),
    })
}

/// The DER inside a key file's PEM block, zeroized on drop.
fn der_of(path: &Path, block: &PemBlock<'_>) -> Result<Zeroizing<Vec<u8>>> {
    block
        .decode()
        .map_err(|e| Error::key_malformed(path, format!("bad PEM encoding: {e}")))
}

/// Parse private key PEM text.
pub fn parse_private_key(
    path: &Path,
    data: &[u8],
    passphrase: Option<&Passphrase>,
) -> Result<PrivateKey> {
    let text =
        std::str::from_utf8(data).map_err(|_| Error::key_malformed(path, "not a PEM text file"))?;
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(Error::key_unsupported(
            path,
            "legacy openssl-encrypted PEM (Proc-Type: 4,ENCRYPTED) is not supported; convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in OLD -out NEW`",
        ));
    }
    let block = pem_of(path, text.as_bytes())?;
    match block.label {
        "PRIVATE KEY" => from_pkcs8_der(path, &der_of(path, &block)?),
        "ENCRYPTED PRIVATE KEY" => {
            let der = der_of(path, &block)?;
            let enc = EncryptedPrivateKeyInfoRef::from_der(&der).map_err(|e| {
                match outer_algorithm(&der) {
                    // Well formed, but encrypted with a scheme the pkcs5
                    // crate does not even parse (PKCS#12 PBE, PBES1).
                    Some(oid) if is_legacy_pbe(&oid) => Error::key_unsupported(
                        path,
                        format!("{LEGACY_PBE} (algorithm {oid}); {RE_ENCRYPT}"),
                    ),
                    Some(oid) if oid != PBES2_OID => Error::key_unsupported(
                        path,
                        format!("unknown key encryption scheme {oid}; {RE_ENCRYPT}"),
                    ),
                    _ => Error::key_malformed(path, format!("bad encrypted PKCS#8 structure: {e}")),
                }
            })?;
            check_kdf_cost(path, &enc.encryption_algorithm)?;
            let Some(pass) = passphrase else {
                return Err(Error::Key(KeyError::PassphraseRequired {
                    path: path.to_path_buf(),
                }));
            };
            let plain = enc
                .decrypt(pass.expose_secret_bytes())
                .map_err(|e| match e {
                    // Bad padding, or (about once in 256 wrong passphrases)
                    // good padding around garbage that is not DER.
                    pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::DecryptFailed)
                    | pkcs8::Error::Asn1(_) => Error::Key(KeyError::PassphraseWrong {
                        path: path.to_path_buf(),
                    }),
                    other => Error::key_unsupported(
                        path,
                        format!(
                            "cannot decrypt this key ({other}); pkgsign reads PBES2 keys (scrypt or PBKDF2-HMAC-SHA2 with AES): {RE_ENCRYPT}"
                        ),
                    ),
                })?;
            // A wrong passphrase may also "decrypt" to garbage with valid padding.
            from_pkcs8_der(path, plain.as_bytes()).map_err(|_| {
                Error::Key(KeyError::PassphraseWrong {
                    path: path.to_path_buf(),
                })
            })
        }
        "RSA PRIVATE KEY" => {
            let der = der_of(path, &block)?;
            check_rsa_size(path, rsa_private_bits(&der))?;
            let key = rsa::PrivateKey::from_pkcs1_der(&der).map_err(|e| {
                Error::key_malformed(path, format!("bad PKCS#1 RSA private key: {e}"))
            })?;
            rsa_private(path, key)
        }
        "PUBLIC KEY" | "RSA PUBLIC KEY" => Err(public_key_given(path)),
        "OPENSSH PRIVATE KEY" => super::openssh::parse_openssh_private_key(path, text, passphrase),
        "EC PRIVATE KEY" => Err(Error::key_unsupported(
            path,
            "ECDSA keys are not supported; use Ed25519 or RSA",
        )),
        other => Err(Error::key_unsupported(
            path,
            format!(
                "PEM label {:?} is not a private key pkgsign reads",
                printable(other)
            ),
        )),
    }
}

fn check_kdf_cost(path: &Path, scheme: &pkcs8::pkcs5::EncryptionScheme) -> Result<()> {
    use pkcs8::pkcs5::EncryptionScheme;
    let too_costly = |what: String| {
        Err(Error::key_unsupported(
            path,
            format!("{what}; refusing to derive the key (re-encrypt it with cheaper parameters)"),
        ))
    };
    match scheme {
        EncryptionScheme::Pbes2(params) => match &params.kdf {
            pbes2::Kdf::Scrypt(s) => {
                let n = s.cost_parameter;
                if n < 2 || !n.is_power_of_two() {
                    return Err(Error::key_malformed(path, "invalid scrypt cost parameter"));
                }
                let memory = 128u64
                    .saturating_mul(u64::from(s.block_size))
                    .saturating_mul(n)
                    .saturating_add(
                        128u64
                            .saturating_mul(u64::from(s.block_size))
                            .saturating_mul(u64::from(s.parallelization)),
                    );
                if memory > SCRYPT_MAX_MEMORY || s.parallelization > 64 {
                    return too_costly(format!("scrypt parameters need {memory} bytes of memory"));
                }
                Ok(())
            }
            pbes2::Kdf::Pbkdf2(p) => {
                if p.iteration_count > PBKDF2_MAX_ITERATIONS {
                    return too_costly(format!("PBKDF2 with {} iterations", p.iteration_count));
                }
                Ok(())
            }
            _ => Err(Error::key_unsupported(
                path,
                format!("unknown key-derivation function; {RE_ENCRYPT}"),
            )),
        },
        EncryptionScheme::Pbes1(_) => Err(Error::key_unsupported(
            path,
            format!("{LEGACY_PBE}; {RE_ENCRYPT}"),
        )),
        _ => Err(Error::key_unsupported(
            path,
            format!("unknown key encryption scheme; {RE_ENCRYPT}"),
        )),
    }
}

fn from_pkcs8_der(path: &Path, der: &[u8]) -> Result<PrivateKey> {
    let info = PrivateKeyInfoRef::from_der(der)
        .map_err(|e| Error::key_malformed(path, format!("bad PKCS#8 structure: {e}")))?;
    let oid = info.algorithm.oid;
    if oid == OID_ED25519 {
        let key = ed25519_dalek::SigningKey::try_from(info)
            .map_err(|e| Error::key_malformed(path, format!("bad Ed25519 private key: {e}")))?;
        Ok(PrivateKey::Ed25519(key))
    } else if oid == OID_RSA {
        check_rsa_size(path, rsa_private_bits(info.private_key.as_bytes()))?;
        let key = rsa::PrivateKey::try_from(info)
            .map_err(|e| Error::key_malformed(path, format!("bad RSA private key: {e}")))?;
        rsa_private(path, key)
    } else {
        Err(Error::key_unsupported(
            path,
            format!("key algorithm {oid} is not supported; use Ed25519 or RSA"),
        ))
    }
}

fn rsa_private(path: &Path, key: rsa::PrivateKey) -> Result<PrivateKey> {
    // Size check through the public half.
    PublicKey::rsa(key.to_public_key(), path)?;
    key.validate()
        .map_err(|e| Error::key_malformed(path, format!("inconsistent RSA private key: {e}")))?;
    Ok(PrivateKey::Rsa(Box::new(key)))
}

/// Load a public key file.
pub fn load_public_key(path: &Path) -> Result<PublicKey> {
    let data = fsutil::read_bounded(path, KEY_FILE_LIMIT, "key file")?;
    parse_public_key(path, &data)
}

/// Parse a public key: PEM text (SPKI or PKCS#1 RSA), or an OpenSSH
/// public key line (`ssh-ed25519 AAAA...`, also as an `allowed_signers`
/// line).
pub fn parse_public_key(path: &Path, data: &[u8]) -> Result<PublicKey> {
    if let Ok(text) = std::str::from_utf8(data)
        && super::openssh::is_openssh_public_key(text)
    {
        return super::openssh::parse_openssh_public_key(path, text);
    }
    let block = pem_of(path, data)?;
    match block.label {
        "PUBLIC KEY" => public_key_from_spki_der(path, &der_of(path, &block)?),
        "RSA PUBLIC KEY" => {
            let der = der_of(path, &block)?;
            check_rsa_size(path, rsa_public_bits(&der))?;
            let key = rsa::PublicKey::from_pkcs1_der(&der).map_err(|e| {
                Error::key_malformed(path, format!("bad PKCS#1 RSA public key: {e}"))
            })?;
            PublicKey::rsa(key, path)
        }
        "PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" | "RSA PRIVATE KEY" => Err(Error::key_malformed(
            path,
            "this is a private key; verification needs the public key (the .pub file); never ship private keys to verifiers",
        )),
        other => Err(Error::key_unsupported(
            path,
            format!(
                "PEM label {:?} is not a public key pkgsign reads",
                printable(other)
            ),
        )),
    }
}

/// The one PEM block of a key file, found and checked but not yet decoded.
///
/// Every armoured key pkgsign reads goes through [`pem_block`] and then
/// [`PemBlock::decode`]: the `pem` crate decodes, and the layout around it
/// is checked here first, because `pem::parse` alone is lenient (it skips
/// any text before a block, ignores anything after it, takes RFC 1421
/// headers, and drops any whitespace inside the base64).
struct PemBlock<'a> {
    /// The label of the `-----BEGIN LABEL-----` line.
    label: &'a str,
    /// From the BEGIN line to the end of the END line.
    text: &'a [u8],
}

/// Why a file is not one PEM block.
enum PemRefusal {
    /// No `-----BEGIN ` at the start of a line: not PEM at all.
    NotPem,
    /// A PEM block, wrongly framed.
    Bad(&'static str),
}

const PEM_BEGIN: &[u8] = b"-----BEGIN ";
const PEM_END: &[u8] = b"-----END ";
const PEM_DASHES: &[u8] = b"-----";

/// Find the one PEM block in `data`, read by RFC 7468's standard grammar
/// (its Figure 1, "what most extant parsers accept"):
/// - text before the BEGIN line is allowed (openssl writes "Bag Attributes"
///   there) but no NUL byte, and the BEGIN line starts a line;
/// - the label is RFC 7468's: printable ASCII but `-`, single spaces inside;
/// - blank lines may follow the BEGIN line; then lines of base64 of any
///   width, each ended by LF, CRLF or CR, with blanks allowed only at the
///   end of a line: no header, no blank line, no blank inside a line;
/// - an END line with the same label, then nothing but whitespace: a second
///   block or any other text after the first is refused.
fn pem_block(data: &[u8]) -> std::result::Result<PemBlock<'_>, PemRefusal> {
    use PemRefusal::{Bad, NotPem};
    if data.len() as u64 > KEY_FILE_LIMIT {
        return Err(Bad("larger than any key file"));
    }
    let start = if data.starts_with(PEM_BEGIN) {
        0
    } else {
        data.windows(PEM_BEGIN.len() + 1)
            .position(|w| w.split_first() == Some((&b'\n', PEM_BEGIN)))
            .map(|i| i + 1)
            .ok_or(NotPem)?
    };
    let (before, block) = data.split_at_checked(start).ok_or(NotPem)?;
    if before.contains(&0) {
        return Err(NotPem);
    }
    let mut lines = PemLines(block);
    let label = lines
        .next()
        .map(trim_blanks_end)
        .and_then(|l| l.strip_prefix(PEM_BEGIN))
        .and_then(|l| l.strip_suffix(PEM_DASHES))
        .filter(|l| is_pem_label(l))
        .and_then(|l| std::str::from_utf8(l).ok())
        .ok_or(NotPem)?;
    let mut base64_lines = 0usize;
    let end_line = loop {
        let line = trim_blanks_end(lines.next().ok_or(Bad("the PEM block has no END line"))?);
        if line.starts_with(PEM_END) {
            break line;
        }
        if line.is_empty() {
            if base64_lines == 0 {
                continue;
            }
            return Err(Bad("a blank line inside the PEM block"));
        }
        if line.contains(&b':') {
            return Err(Bad("a header inside the PEM block (RFC 7468 allows none)"));
        }
        if !line
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        {
            return Err(Bad("a character that is not base64 inside the PEM block"));
        }
        base64_lines += 1;
    };
    if end_line
        .strip_prefix(PEM_END)
        .and_then(|l| l.strip_suffix(PEM_DASHES))
        != Some(label.as_bytes())
    {
        return Err(Bad("the END line does not match the BEGIN line"));
    }
    if base64_lines == 0 {
        return Err(Bad("the PEM block is empty"));
    }
    let rest = lines.0;
    if !rest.iter().all(u8::is_ascii_whitespace) {
        return Err(Bad(
            if rest.windows(PEM_BEGIN.len()).any(|w| w == PEM_BEGIN) {
                "more than one PEM block in one key file"
            } else {
                "text after the END line of the PEM block"
            },
        ));
    }
    // `rest` is what follows the END line: the block is all before it.
    let text = block
        .get(..block.len().saturating_sub(rest.len()))
        .ok_or(NotPem)?;
    Ok(PemBlock { label, text })
}

/// A line without the blanks (spaces, tabs) at its end.
fn trim_blanks_end(mut line: &[u8]) -> &[u8] {
    while let Some((b' ' | b'\t', kept)) = line.split_last() {
        line = kept;
    }
    line
}

/// RFC 7468's label: printable ASCII but `-`, with single spaces inside.
fn is_pem_label(label: &[u8]) -> bool {
    label
        .iter()
        .all(|b| matches!(b, 0x21..=0x2c | 0x2e..=0x7e | b' '))
        && !label.starts_with(b" ")
        && !label.ends_with(b" ")
        && !label.windows(2).any(|w| w == b"  ")
}

/// Lines ended by LF, CRLF or CR (RFC 7468); the last may have no end.
struct PemLines<'a>(&'a [u8]);

impl<'a> Iterator for PemLines<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.0.is_empty() {
            return None;
        }
        let end = self
            .0
            .iter()
            .position(|b| matches!(b, b'\n' | b'\r'))
            .unwrap_or(self.0.len());
        let (line, rest) = self.0.split_at(end);
        let rest = rest
            .strip_prefix(b"\r\n")
            .or_else(|| rest.strip_prefix(b"\n"))
            .or_else(|| rest.strip_prefix(b"\r"))
            .unwrap_or(rest);
        self.0 = rest;
        Some(line)
    }
}

impl PemBlock<'_> {
    /// The DER inside, decoded by the `pem` crate. Zeroized on drop: it may
    /// be a private key.
    fn decode(&self) -> std::result::Result<Zeroizing<Vec<u8>>, String> {
        let parsed = pem::parse(self.text).map_err(|e| e.to_string())?;
        // [`pem_block`] left pem nothing to choose (one block, no headers);
        // should the two ever disagree, refuse.
        let agrees = parsed.tag() == self.label && parsed.headers().iter().next().is_none();
        // Moved, not copied, into the zeroizing buffer.
        let der = Zeroizing::new(parsed.into_contents());
        if !agrees {
            return Err("the PEM block does not decode as framed".into());
        }
        Ok(der)
    }
}

/// Parse a SubjectPublicKeyInfo DER encoding (Ed25519 or RSA).
pub fn public_key_from_spki_der(path: &Path, der: &[u8]) -> Result<PublicKey> {
    let spki = SubjectPublicKeyInfoRef::from_der(der)
        .map_err(|e| Error::key_malformed(path, format!("bad SubjectPublicKeyInfo: {e}")))?;
    let oid = spki.algorithm.oid;
    if oid == OID_ED25519 {
        let key = ed25519_dalek::VerifyingKey::try_from(spki)
            .map_err(|e| Error::key_malformed(path, format!("bad Ed25519 public key: {e}")))?;
        if key.is_weak() {
            // A small-order key "verifies" forged signatures.
            return Err(Error::key_malformed(
                path,
                "weak (small-order) Ed25519 public key; no honest key generator makes one",
            ));
        }
        Ok(PublicKey::Ed25519(key))
    } else if oid == OID_RSA {
        check_rsa_size(path, rsa_public_bits(spki.subject_public_key.raw_bytes()))?;
        let key = rsa::PublicKey::try_from(spki)
            .map_err(|e| Error::key_malformed(path, format!("bad RSA public key: {e}")))?;
        PublicKey::rsa(key, path)
    } else {
        Err(Error::key_unsupported(
            path,
            format!("key algorithm {oid} is not supported; use Ed25519 or RSA"),
        ))
    }
}

/// Refuse an RSA key whose modulus has `bits` outside 2048..=8192 with
/// [`Error::Key(KeyError::TooWeak)`], before the rsa crate decodes it: its decoder
/// refuses keys outside its own limits (1024..=8192) as merely "malformed",
/// which would hide why. `None` (the structure does not even parse) is left
/// to the decoder's own error.
fn check_rsa_size(path: &Path, bits: Option<usize>) -> Result<()> {
    match bits {
        Some(bits) if !(super::RSA_MIN_BITS..=super::RSA_MAX_BITS).contains(&bits) => {
            Err(Error::Key(KeyError::TooWeak {
                path: path.to_path_buf(),
                bits,
            }))
        }
        _ => Ok(()),
    }
}

/// The modulus size of a PKCS#1 `RSAPublicKey` DER (SPKI's key bits).
fn rsa_public_bits(der: &[u8]) -> Option<usize> {
    rsa::pkcs1::RsaPublicKeyRef::try_from(der)
        .ok()
        .map(|k| uint_bits(k.modulus.as_bytes()))
}

/// The modulus size of a PKCS#1 `RSAPrivateKey` DER (PKCS#8's key bytes).
fn rsa_private_bits(der: &[u8]) -> Option<usize> {
    rsa::pkcs1::RsaPrivateKeyRef::try_from(der)
        .ok()
        .map(|k| uint_bits(k.modulus.as_bytes()))
}

/// Bit length of a big-endian unsigned integer.
fn uint_bits(bytes: &[u8]) -> usize {
    let first_set = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let bytes = bytes.get(first_set..).unwrap_or_default();
    match bytes.first() {
        Some(first) => (bytes.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
        None => 0,
    }
}

fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// How to fix a key encrypted in a way pkgsign does not read.
const RE_ENCRYPT: &str = "re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`";

/// Why a PBES1 or PKCS#12-PBE key is refused.
const LEGACY_PBE: &str = "PBES1 / PKCS#12 PBE key encryption (DES, RC2, 3DES with MD5 or SHA-1) is weak and not supported";

/// PBES2 (PKCS#5 v2), the one scheme pkgsign reads.
const PBES2_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
/// The PKCS#5 arc: PBES1 schemes are its arcs 1 to 11.
const PKCS5_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5");
/// The PKCS#12 password-based encryption arc.
const PKCS12_PBE_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1");

/// The encryption algorithm named by an EncryptedPrivateKeyInfo, read
/// without interpreting its parameters.
fn outer_algorithm(der: &[u8]) -> Option<ObjectIdentifier> {
    use pkcs8::der::asn1::OctetStringRef;
    use pkcs8::der::{Reader, SliceReader};
    let mut reader = SliceReader::new(der).ok()?;
    let oid = reader
        .sequence(|r| {
            let alg = spki::AlgorithmIdentifierRef::decode(r)?;
            <&OctetStringRef>::decode(r)?;
            Ok::<_, pkcs8::der::Error>(alg.oid)
        })
        .ok()?;
    reader.finish().ok()?;
    Some(oid)
}

/// PKCS#5 v1.5 PBES1 (`1.2.840.113549.1.5.1..11`, below PBES2's 13) and
/// PKCS#12 PBE (`1.2.840.113549.1.12.1.*`) schemes.
fn is_legacy_pbe(oid: &ObjectIdentifier) -> bool {
    (oid.parent() == Some(PKCS5_OID) && oid.arcs().last().is_some_and(|a| a <= 11))
        || oid.parent() == Some(PKCS12_PBE_OID)
}

/// Encode a private key as PKCS#8 v1 PEM, encrypted (PBES2: scrypt +
/// AES-256-CBC) when a passphrase is given.
pub fn private_key_to_pem(
    key: &PrivateKey,
    passphrase: Option<&Passphrase>,
) -> Result<Zeroizing<String>> {
    let der: SecretDocument = match key {
        PrivateKey::Ed25519(k) => {
            // v1: no embedded public key, which openssl 3.0 cannot read.
            let kp = ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: k.to_bytes(),
                public_key: None,
            };
            kp.to_pkcs8_der()
        }
        PrivateKey::Rsa(k) => k.to_pkcs8_der(),
    }
    .map_err(|e| Error::Crypto {
        what: "encoding the private key",
        reason: e.to_string(),
    })?;
    let enc_err = |e: pkcs8::Error| Error::Crypto {
        what: "encrypting the private key",
        reason: e.to_string(),
    };
    let (label, doc) = match passphrase {
        None => ("PRIVATE KEY", der),
        Some(pass) => {
            let mut salt = [0u8; 16];
            let mut iv = [0u8; 16];
            getrandom::fill(&mut salt).map_err(|e| Error::Crypto {
                what: "reading the system random generator",
                reason: e.to_string(),
            })?;
            getrandom::fill(&mut iv).map_err(|e| Error::Crypto {
                what: "reading the system random generator",
                reason: e.to_string(),
            })?;
            let params = pkcs8::pkcs5::scrypt::Params::new(SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P)
                .map_err(|e| Error::Crypto {
                    what: "scrypt parameters",
                    reason: e.to_string(),
                })?;
            let pbes2 = pbes2::Parameters::generate_scrypt_aes256cbc(params, &salt, iv)
                .map_err(|e| enc_err(pkcs8::Error::EncryptedPrivateKey(e)))?;
            let info = PrivateKeyInfoRef::from_der(der.as_bytes()).map_err(|e| Error::Crypto {
                what: "re-reading the private key",
                reason: e.to_string(),
            })?;
            let enc = info
                .encrypt_with_params(pbes2, pass.expose_secret_bytes())
                .map_err(enc_err)?;
            ("ENCRYPTED PRIVATE KEY", enc)
        }
    };
    doc.to_pem(label, LineEnding::LF)
        .map_err(|e| Error::Crypto {
            what: "PEM-encoding the private key",
            reason: e.to_string(),
        })
}

/// Encode a public key as SubjectPublicKeyInfo PEM.
pub fn public_key_to_pem(key: &PublicKey) -> Result<String> {
    let res = match key {
        PublicKey::Ed25519(k) => k.to_public_key_pem(LineEnding::LF),
        PublicKey::Rsa(k) => k.to_public_key_pem(LineEnding::LF),
    };
    res.map_err(|e| Error::Crypto {
        what: "PEM-encoding the public key",
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use base64::Engine as _;

    /// One key in each PEM form pkgsign reads: (name, label, DER, private).
    fn pem_forms() -> Vec<(&'static str, &'static str, Vec<u8>, bool)> {
        use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
        let ed = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let der = ed.to_pkcs8_der().unwrap();
        let params =
            pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(1, &[1u8; 16], [2u8; 16]).unwrap();
        let enc = PrivateKeyInfoRef::try_from(der.as_bytes())
            .unwrap()
            .encrypt_with_params(params, b"right")
            .unwrap();
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        let rsa = rsa::PrivateKey::new(&mut rng, 2048).unwrap();
        vec![
            ("pkcs8", "PRIVATE KEY", der.as_bytes().to_vec(), true),
            (
                "encrypted",
                "ENCRYPTED PRIVATE KEY",
                enc.as_bytes().to_vec(),
                true,
            ),
            (
                "pkcs1 private",
                "RSA PRIVATE KEY",
                rsa.to_pkcs1_der().unwrap().as_bytes().to_vec(),
                true,
            ),
            (
                "spki ed25519",
                "PUBLIC KEY",
                ed.verifying_key()
                    .to_public_key_der()
                    .unwrap()
                    .as_bytes()
                    .to_vec(),
                false,
            ),
            (
                "spki rsa",
                "PUBLIC KEY",
                rsa.to_public_key()
                    .to_public_key_der()
                    .unwrap()
                    .as_bytes()
                    .to_vec(),
                false,
            ),
            (
                "pkcs1 public",
                "RSA PUBLIC KEY",
                rsa.to_public_key()
                    .to_pkcs1_der()
                    .unwrap()
                    .as_bytes()
                    .to_vec(),
                false,
            ),
        ]
    }

    /// `der` as PEM with base64 lines of `width` characters.
    fn armour(label: &str, der: &[u8], width: usize) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(width)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    /// An edge case made from a key's canonical PEM.
    type Edge = fn(&str, &[u8], &str) -> String;

    /// "OK", or the error code of reading `text` as the kind of key it is.
    fn outcome(text: &str, private: bool) -> &'static str {
        let path = Path::new("k");
        let right = Passphrase::new(b"right".to_vec()).unwrap();
        let res = if private {
            parse_private_key(path, text.as_bytes(), Some(&right)).map(|_| ())
        } else {
            parse_public_key(path, text.as_bytes()).map(|_| ())
        };
        match res {
            Ok(()) => "OK",
            Err(e) => e.code().as_str(),
        }
    }

    /// Check every edge against every key form: (name, edge, outcome for a
    /// private key, outcome for a public key).
    fn check_edges(edges: &[(&str, Edge, &str, &str)]) {
        for (form, label, der, private) in pem_forms() {
            let canonical = armour(label, &der, 64);
            for (name, edge, want_private, want_public) in edges {
                let text = edge(label, &der, &canonical);
                let want = if private { want_private } else { want_public };
                assert_eq!(outcome(&text, private), *want, "{form}, {name}:\n{text}");
            }
        }
    }

    /// `canonical` with `what` put after the BEGIN line.
    fn after_begin(label: &str, canonical: &str, what: &str) -> String {
        let begin = format!("{label}-----\n");
        canonical.replacen(&begin, &format!("{begin}{what}"), 1)
    }

    /// `canonical` with `what` put after the first base64 character.
    fn inside_first_line(label: &str, canonical: &str, what: &str) -> String {
        let mut text = canonical.to_string();
        text.insert_str(format!("-----BEGIN {label}-----\nM").len(), what);
        text
    }

    const MAL: &str = "KEY_MALFORMED";
    const UNS: &str = "KEY_UNSUPPORTED";

    /// The PEM edges that read as they did before `pem` became the one
    /// reader (pinned against the code that used pkcs8's reader for private
    /// keys and both readers for public keys).
    #[test]
    fn pem_edges_that_one_reader_left_unchanged() {
        check_edges(&[
            ("canonical", |_, _, c| c.into(), "OK", "OK"),
            (
                "CRLF line ends",
                |_, _, c| c.replace('\n', "\r\n"),
                "OK",
                "OK",
            ),
            ("CR line ends", |_, _, c| c.replace('\n', "\r"), "OK", "OK"),
            (
                "no final newline",
                |_, _, c| c.trim_end().into(),
                "OK",
                "OK",
            ),
            (
                "text before the block",
                |_, _, c| format!("Bag Attributes\n    friendlyName: k\n{c}"),
                "OK",
                "OK",
            ),
            (
                "blank lines before the block",
                |_, _, c| format!("\n\r\n{c}"),
                "OK",
                "OK",
            ),
            (
                "text after the block",
                |_, _, c| format!("{c}junk\n"),
                MAL,
                MAL,
            ),
            (
                "text after the END line",
                |_, _, c| format!("{}junk", c.trim_end()),
                MAL,
                MAL,
            ),
            ("BEGIN indented", |_, _, c| format!("  {c}"), MAL, MAL),
            ("BEGIN inside a line", |_, _, c| format!("x{c}"), MAL, MAL),
            (
                "NUL before the block",
                |_, _, c| format!("a\0\n{c}"),
                MAL,
                MAL,
            ),
            (
                "header without blank line",
                |l, _, c| after_begin(l, c, "Comment: k\n"),
                MAL,
                MAL,
            ),
            (
                "END label differs",
                |l, _, c| c.replace(&format!("END {l}"), "END X"),
                MAL,
                MAL,
            ),
            (
                "END label empty",
                |l, _, c| c.replace(&format!("END {l}"), "END "),
                MAL,
                MAL,
            ),
            (
                "no END line",
                |l, _, c| c.replace(&format!("-----END {l}-----\n"), ""),
                MAL,
                MAL,
            ),
            (
                "lowercase label",
                |l, _, c| c.replace(l, &l.to_lowercase()),
                UNS,
                UNS,
            ),
            (
                "unknown label",
                |l, _, c| c.replace(l, "CERTIFICATE"),
                UNS,
                UNS,
            ),
            (
                "label with two spaces",
                |l, _, c| c.replace(l, &l.replace(' ', "  ")),
                MAL,
                MAL,
            ),
            (
                "label with a hyphen",
                |l, _, c| c.replace(l, "X-Y"),
                MAL,
                MAL,
            ),
            (
                "empty block",
                |l, _, _| format!("-----BEGIN {l}-----\n-----END {l}-----\n"),
                MAL,
                MAL,
            ),
            (
                "not base64",
                |l, _, c| c.replacen(&format!("{l}-----\nM"), &format!("{l}-----\n!"), 1),
                MAL,
                MAL,
            ),
            (
                "base64url",
                |l, d, _| armour(l, d, 64).replace('+', "-").replace('/', "_"),
                MAL,
                MAL,
            ),
            (
                "DER with a byte after it",
                |l, d, _| armour(l, &[d, &[0]].concat(), 64),
                MAL,
                MAL,
            ),
        ]);
    }

    /// Stricter than before, for public keys (the `pem` crate alone took
    /// them, and a verifier read whatever it made of them): a second
    /// block, RFC 1421 headers, blanks or other whitespace inside a base64
    /// line. Also for private keys: a blank line before END. And input over
    /// the key file limit, whoever passes it in.
    #[test]
    fn two_pem_blocks_headers_and_blanks_inside_the_base64_are_refused() {
        check_edges(&[
            ("two blocks", |_, _, c| format!("{c}{c}"), MAL, MAL),
            (
                "two blocks, blank line between",
                |_, _, c| format!("{c}\n{c}"),
                MAL,
                MAL,
            ),
            (
                "header and blank line",
                |l, _, c| after_begin(l, c, "Comment: k\n\n"),
                MAL,
                MAL,
            ),
            (
                "Proc-Type header",
                |l, _, c| after_begin(l, c, "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n"),
                UNS,
                MAL,
            ),
            (
                "space inside a line",
                |l, _, c| inside_first_line(l, c, " "),
                MAL,
                MAL,
            ),
            (
                "tab inside a line",
                |l, _, c| inside_first_line(l, c, "\t"),
                MAL,
                MAL,
            ),
            (
                "no-break space inside a line",
                |l, _, c| inside_first_line(l, c, "\u{a0}"),
                MAL,
                MAL,
            ),
            (
                "blank line before END",
                |_, _, c| c.replace("\n-----END", "\n\n-----END"),
                MAL,
                MAL,
            ),
            (
                "over the key file limit",
                |_, _, c| format!("{}\n{c}", "x".repeat(KEY_FILE_LIMIT as usize)),
                MAL,
                MAL,
            ),
        ]);
    }

    /// Looser than before, for private keys (pkcs8's reader wanted lines of
    /// exactly 64 characters and nothing after the END line but one line
    /// end), as RFC 7468's standard grammar and openssl allow: whitespace
    /// after the block, blanks at the end of lines, blank lines after BEGIN,
    /// other line widths. Whitespace after the block is new for public keys
    /// too. None of it carries data: the DER decoded is the same.
    #[test]
    fn whitespace_around_the_base64_and_other_line_widths_are_read() {
        check_edges(&[
            (
                "blank line after the block",
                |_, _, c| format!("{c}\n"),
                "OK",
                "OK",
            ),
            (
                "blanks after the block",
                |_, _, c| format!("{c}  \t\r\n\n"),
                "OK",
                "OK",
            ),
            (
                "blanks at line ends",
                |_, _, c| c.replace('\n', " \t\n"),
                "OK",
                "OK",
            ),
            (
                "blank lines after BEGIN",
                |l, _, c| after_begin(l, c, "\n \n"),
                "OK",
                "OK",
            ),
            ("76 per line", |l, d, _| armour(l, d, 76), "OK", "OK"),
            ("one line", |l, d, _| armour(l, d, 100_000), "OK", "OK"),
            ("4 per line", |l, d, _| armour(l, d, 4), "OK", "OK"),
        ]);
    }

    /// The DER handed to the key decoders is exactly what was armoured,
    /// in a zeroizing buffer, and only the PEM block's own text is decoded.
    #[test]
    fn pem_block_decodes_to_the_armoured_der() {
        for (form, label, der, _) in pem_forms() {
            let text = format!("note\n{}\n", armour(label, &der, 64));
            let block = pem_block(text.as_bytes()).unwrap_or_else(|_| panic!("{form}"));
            assert_eq!(block.label, label);
            assert!(block.text.starts_with(b"-----BEGIN "));
            let decoded: Zeroizing<Vec<u8>> = block.decode().unwrap();
            assert_eq!(*decoded, der, "{form}");
        }
    }

    #[test]
    fn legacy_pbe_schemes_are_recognised() {
        for legacy in [
            "1.2.840.113549.1.5.3",    // pbeWithMD5AndDES-CBC
            "1.2.840.113549.1.5.10",   // pbeWithSHA1AndDES-CBC
            "1.2.840.113549.1.12.1.3", // pbeWithSHA1And3-KeyTripleDES-CBC
            "1.2.840.113549.1.12.1.6", // pbeWithSHA1And40BitRC2-CBC
        ] {
            let oid = ObjectIdentifier::new_unwrap(legacy);
            assert!(is_legacy_pbe(&oid), "{legacy}");
        }
        for other in [
            "1.2.840.113549.1.5.13", // PBES2
            "1.2.840.113549.1.5.12", // PBKDF2 (a KDF, not a scheme)
            "1.2.840.113549.1.12.10.1.2",
            "1.3.101.112",
        ] {
            let oid = ObjectIdentifier::new_unwrap(other);
            assert!(!is_legacy_pbe(&oid), "{other}");
        }
    }

    /// AES-CBC with a wrong key yields valid PKCS#7 padding about once in
    /// 256 tries; the garbage then fails to parse as DER. That must still
    /// read "wrong passphrase", never "unsupported key" (a CI run hit it).
    #[test]
    fn a_wrong_passphrase_is_wrong_even_when_the_padding_happens_to_fit() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let der = key.to_pkcs8_der().unwrap();
        let params =
            pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(1, &[1u8; 16], [2u8; 16]).unwrap();
        let enc = PrivateKeyInfoRef::try_from(der.as_bytes())
            .unwrap()
            .encrypt_with_params(params, b"right")
            .unwrap();
        let pem = enc.to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF).unwrap();
        let path = Path::new("k.pem");
        let right = Passphrase::new(b"right".to_vec()).unwrap();
        assert!(parse_private_key(path, pem.as_bytes(), Some(&right)).is_ok());
        let info = EncryptedPrivateKeyInfoRef::from_der(enc.as_bytes()).unwrap();
        let mut padding_fitted = 0;
        for i in 0..2048 {
            let wrong = format!("wrong-{i}").into_bytes();
            if !matches!(
                info.decrypt(&wrong),
                Err(pkcs8::Error::EncryptedPrivateKey(
                    pkcs8::pkcs5::Error::DecryptFailed
                ))
            ) {
                padding_fitted += 1;
            }
            let wrong = Passphrase::new(wrong).unwrap();
            let err = parse_private_key(path, pem.as_bytes(), Some(&wrong)).unwrap_err();
            assert!(
                matches!(err, Error::Key(KeyError::PassphraseWrong { .. })),
                "passphrase wrong-{i}: {err}"
            );
        }
        // The loop is deterministic (fixed salt, IV and passphrases); make
        // sure it covers the case it is about.
        assert!(padding_fitted > 0);
    }

    #[test]
    fn outer_algorithm_reads_only_the_scheme() {
        // SEQUENCE { SEQUENCE { OID 1.2.840.113549.1.12.1.3, SEQUENCE {
        // OCTET STRING (salt), INTEGER 2048 } }, OCTET STRING (data) }
        let der: &[u8] = &[
            0x30, 0x20, 0x30, 0x18, 0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c,
            0x01, 0x03, 0x30, 0x0a, 0x04, 0x04, 1, 2, 3, 4, 0x02, 0x02, 0x08, 0x00, 0x04, 0x04, 9,
            9, 9, 9,
        ];
        assert_eq!(
            outer_algorithm(der),
            Some(ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.3"))
        );
        assert_eq!(outer_algorithm(&der[..der.len() - 1]), None);
        let mut trailing = der.to_vec();
        trailing.push(0);
        assert_eq!(outer_algorithm(&trailing), None);
    }
}

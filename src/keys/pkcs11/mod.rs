//! Keys that never leave a PKCS#11 token (an HSM, a smart card, a cloud KMS
//! gateway, SoftHSM2): one more [`KeySource`] behind the one signer.
//!
//! pkgsign hashes the package itself; only the signed statement (a few
//! hundred bytes) or, for the raw RSA format, the SHA-256 digest goes to the
//! token:
//!
//! - Ed25519: `CKM_EDDSA` over the statement;
//! - RSA, pkgsign format: `CKM_SHA256_RSA_PKCS_PSS` (MGF1-SHA-256, salt 32)
//!   over the statement;
//! - RSA, raw format: `CKM_RSA_PKCS` over the DER `DigestInfo` of the
//!   package's SHA-256 (what `CKM_SHA256_RSA_PKCS` would compute, without
//!   sending the package to the token);
//! - Ed25519, raw format: refused (pure Ed25519 signs the whole package).
//!
//! The public key is read from the token; its fingerprint is the usual
//! `SHA256:` one, and the signer verifies every signature it makes, so a
//! token signature is indistinguishable from a file-key signature.
//!
//! The module is loaded once per process and path (several keys share it,
//! and it is finalised when the last one is dropped). A PIN is held in a
//! zeroized buffer only as long as the login takes, and is never in a
//! message.
#![forbid(unsafe_code)]

pub mod uri;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use super::{KeySource, KeySpec, PublicKey, SignRequest};
use crate::error::{Error, Result, TokenError};

pub use uri::Pkcs11Uri;

/// Environment variable naming the module when neither the URI nor the
/// command line does.
pub const MODULE_ENV: &str = "PKGSIGN_PKCS11_MODULE";
/// Environment variable holding the user PIN.
pub const PIN_ENV: &str = "PKGSIGN_PKCS11_PIN";

/// A PIN file is one short line.
const MAX_PIN_FILE: u64 = 1024;

/// How to reach a token: the module and the PIN. One rule for both: what
/// the operator gives on the command line or in the environment wins over
/// the URI's own `module-path` and `pin-source`, which win over the
/// configuration file's default module.
#[derive(Default)]
pub struct Access {
    /// The PKCS#11 module the operator named (`--pkcs11-module`,
    /// `PKGSIGN_PKCS11_MODULE`): it wins over the URI's `module-path`.
    pub module: Option<PathBuf>,
    /// The module to use when neither the operator nor the URI names one
    /// (`[signing] pkcs11_module`).
    pub default_module: Option<PathBuf>,
    /// The user PIN (`--pin-file`, `PKGSIGN_PKCS11_PIN`).
    pub pin: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("module", &self.module)
            .field("default_module", &self.default_module)
            .field("pin", &self.pin.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Read a PIN from the first line of `path` (never echoed anywhere).
pub fn read_pin_file(path: &Path) -> Result<Zeroizing<String>> {
    let data = crate::fsutil::read_bounded(path, MAX_PIN_FILE, "PIN file")?;
    let text = std::str::from_utf8(&data).map_err(|_| {
        Error::from(TokenError::Failed {
            uri: path.display().to_string(),
            action: "reading the PIN file",
            reason: "it is not UTF-8 text".into(),
        })
    })?;
    let line = text.lines().next().unwrap_or("");
    Ok(Zeroizing::new(line.trim_end_matches('\r').to_string()))
}

/// The modules loaded by this process, by path.
fn modules() -> &'static Mutex<HashMap<PathBuf, Pkcs11>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    MODULES.get_or_init(|| Mutex::new(HashMap::new()))
}

fn load_module(path: &Path) -> Result<Pkcs11> {
    // dlopen searches the library path for a name without a slash: made
    // absolute, the file checked below is the file loaded.
    let path = &std::path::absolute(path).map_err(|e| Error::io(path, "resolving", e))?;
    let mut map = modules().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(m) = map.get(path) {
        return Ok(m.clone());
    }
    let shown = path.display().to_string();
    let unusable = |reason: String| {
        Error::from(TokenError::Module {
            module: shown.clone(),
            reason,
        })
    };
    if !path.is_file() {
        return Err(unusable(
            "no such file; install the token's PKCS#11 module (SoftHSM2: apt install softhsm2) and give its path".into(),
        ));
    }
    let ctx = Pkcs11::new(path).map_err(|e| {
        unusable(format!(
            "it does not load as a PKCS#11 module ({e}); give the path of the token's .so"
        ))
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(unusable(format!("C_Initialize failed: {e}"))),
    }
    map.insert(path.to_path_buf(), ctx.clone());
    Ok(ctx)
}

fn failed<'a>(uri: &'a Pkcs11Uri, action: &'static str) -> impl Fn(CkError) -> Error + 'a {
    move |e| {
        let reason = match &e {
            CkError::Pkcs11(
                RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::DeviceError,
                _,
            ) => format!(
                "the session with the token was lost ({e}): check that the token is connected and its service running, then run the command again (nothing was written)"
            ),
            // The object found when the key was opened is gone: the token
            // was reset or replaced, or the key deleted, while we ran.
            CkError::Pkcs11(RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid, _) => {
                format!(
                    "the key is no longer on the token ({e}): the token was removed, reset or re-initialised, or the key deleted, while pkgsign ran; check with `pkcs11-tool --list-objects`, then run the command again (nothing was written)"
                )
            }
            _ => e.to_string(),
        };
        TokenError::Failed {
            uri: uri.text.clone(),
            action,
            reason,
        }
        .into()
    }
}

/// The slot of the one token the URI names.
fn find_slot(ctx: &Pkcs11, uri: &Pkcs11Uri) -> Result<Slot> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(failed(uri, "listing the slots"))?;
    let mut found = Vec::new();
    let mut seen = Vec::new();
    for slot in slots {
        let info = ctx
            .get_token_info(slot)
            .map_err(failed(uri, "reading a token's information"))?;
        // A blank token (SoftHSM2's spare slot, a reader's new card) holds
        // no key: never a match, never listed.
        if !info.token_initialized() {
            continue;
        }
        let label = info.label().trim().to_string();
        seen.push(format!("{label:?}"));
        let matches = uri.token.as_deref().is_none_or(|t| t == label)
            && uri
                .serial
                .as_deref()
                .is_none_or(|s| s == info.serial_number().trim())
            && uri
                .manufacturer
                .as_deref()
                .is_none_or(|m| m == info.manufacturer_id().trim())
            && uri
                .model
                .as_deref()
                .is_none_or(|m| m == info.model().trim())
            && uri.slot_id.is_none_or(|id| id == slot.id());
        if matches {
            found.push(slot);
        }
    }
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(TokenError::NotFound {
            uri: uri.text.clone(),
            what: match &uri.token {
                Some(t) => format!("token {t:?}"),
                None => "a token".into(),
            },
            available: if seen.is_empty() {
                "the module sees no token (initialise one, e.g. softhsm2-util --init-token)".into()
            } else {
                format!("tokens present: {}", seen.join(", "))
            },
        }
        .into()),
        many => Err(TokenError::Ambiguous {
            uri: uri.text.clone(),
            count: many.len(),
            what: "tokens",
            how: "token=, serial= or slot-id=",
            available: format!("tokens present: {}", seen.join(", ")),
        }
        .into()),
    }
}

/// Log in as the user, mapping a refused PIN to what the token says of its
/// lockout counter.
fn login(
    ctx: &Pkcs11,
    slot: Slot,
    session: &Session,
    uri: &Pkcs11Uri,
    access: &Access,
) -> Result<()> {
    let pin = match (&access.pin, &uri.pin_source) {
        (Some(p), _) => p.clone(),
        (None, Some(file)) => read_pin_file(file)?,
        (None, None) => {
            return Err(TokenError::PinRequired {
                uri: uri.text.clone(),
            }
            .into());
        }
    };
    let secret = AuthPin::from(pin.as_str());
    match session.login(UserType::User, Some(&secret)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(TokenError::PinLocked {
            uri: uri.text.clone(),
        }
        .into()),
        Err(CkError::Pkcs11(
            RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange,
            _,
        )) => {
            let counter = match ctx.get_token_info(slot) {
                Ok(i) if i.user_pin_locked() => {
                    return Err(TokenError::PinLocked {
                        uri: uri.text.clone(),
                    }
                    .into());
                }
                Ok(i) if i.user_pin_final_try() => {
                    "; the next wrong PIN locks the token".to_string()
                }
                Ok(i) if i.user_pin_count_low() => {
                    "; the token reports few tries left before it locks".to_string()
                }
                _ => String::new(),
            };
            Err(TokenError::PinWrong {
                uri: uri.text.clone(),
                counter,
            }
            .into())
        }
        Err(e) => Err(failed(uri, "logging in")(e)),
    }
}

fn key_template(uri: &Pkcs11Uri, class: ObjectClass) -> Vec<Attribute> {
    let mut t = vec![Attribute::Class(class)];
    if let Some(l) = &uri.object {
        t.push(Attribute::Label(l.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        t.push(Attribute::Id(id.clone()));
    }
    t
}

/// Labels of the objects of `class` on the token, for messages.
fn labels(session: &Session, class: ObjectClass) -> String {
    let Ok(objs) = session.find_objects(&[Attribute::Class(class)]) else {
        return "the token's objects could not be listed".into();
    };
    let mut names: Vec<String> = objs
        .into_iter()
        .filter_map(|o| {
            session
                .get_attributes(o, &[AttributeType::Label])
                .ok()?
                .into_iter()
                .find_map(|a| match a {
                    Attribute::Label(l) => Some(format!("{:?}", String::from_utf8_lossy(&l))),
                    _ => None,
                })
        })
        .collect();
    names.sort();
    if names.is_empty() {
        "the token holds no private key".into()
    } else {
        format!("private keys on the token: {}", names.join(", "))
    }
}

fn one_object(
    session: &Session,
    uri: &Pkcs11Uri,
    class: ObjectClass,
    what: &str,
) -> Result<Option<ObjectHandle>> {
    let objs = session
        .find_objects(&key_template(uri, class))
        .map_err(failed(uri, "finding the key"))?;
    match objs.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        many => Err(TokenError::Ambiguous {
            uri: uri.text.clone(),
            count: many.len(),
            what: "key objects",
            how: "object= and id=",
            available: format!("{} {what} objects share that name", many.len()),
        }
        .into()),
    }
}

/// The DER of an Ed25519 `CKA_EC_PARAMS`: the curve's name as a
/// PrintableString (PKCS#11 3.0), or its OID 1.3.101.112.
const EC_PARAMS_ED25519_NAME: &[u8] = b"\x13\x0cedwards25519";
const EC_PARAMS_ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// The values of two byte-string attributes of `object` (RSA modulus and
/// exponent, EC parameters and point), read in one call and given in the
/// order of `types`: None for one the token does not show. `action` names
/// the read in an error.
fn byte_attributes(
    session: &Session,
    uri: &Pkcs11Uri,
    object: ObjectHandle,
    types: [AttributeType; 2],
    action: &'static str,
) -> Result<[Option<Vec<u8>>; 2]> {
    let attrs = session
        .get_attributes(object, &types)
        .map_err(failed(uri, action))?;
    let [first_type, second_type] = types;
    let (mut first, mut second) = (None, None);
    for a in attrs {
        let t = a.attribute_type();
        let (Attribute::Modulus(v)
        | Attribute::PublicExponent(v)
        | Attribute::EcParams(v)
        | Attribute::EcPoint(v)) = a
        else {
            continue;
        };
        if t == first_type {
            first = Some(v);
        } else if t == second_type {
            second = Some(v);
        }
    }
    Ok([first, second])
}

/// The public key of the private key `key`.
fn public_key(session: &Session, uri: &Pkcs11Uri, key: ObjectHandle) -> Result<PublicKey> {
    let attrs = session
        .get_attributes(key, &[AttributeType::KeyType])
        .map_err(failed(uri, "reading the key's type"))?;
    let key_type = attrs.into_iter().find_map(|a| match a {
        Attribute::KeyType(t) => Some(t),
        _ => None,
    });
    let unsupported = |what: String| {
        Error::from(TokenError::Failed {
            uri: uri.text.clone(),
            action: "reading the key",
            reason: format!("{what}: pkgsign signs with Ed25519 and RSA keys"),
        })
    };
    let label = Path::new(&uri.text);
    match key_type {
        Some(KeyType::RSA) => {
            let [n, e] = byte_attributes(
                session,
                uri,
                key,
                [AttributeType::Modulus, AttributeType::PublicExponent],
                "reading the RSA public key",
            )?;
            let (Some(n), Some(e)) = (n, e) else {
                return Err(unsupported("the token shows no RSA modulus".into()));
            };
            let bits = |b: &[u8]| u32::try_from(b.len().saturating_mul(8)).unwrap_or(u32::MAX);
            let n = rsa::BoxedUint::from_be_slice(&n, bits(&n))
                .map_err(|_| unsupported("an RSA modulus that does not decode".into()))?;
            let e = rsa::BoxedUint::from_be_slice(&e, bits(&e).max(64))
                .map_err(|_| unsupported("an RSA exponent that does not decode".into()))?;
            let k = rsa::PublicKey::new(n, e)
                .map_err(|e| unsupported(format!("an RSA public key rsa refuses ({e})")))?;
            PublicKey::rsa(k, label)
        }
        Some(KeyType::EC_EDWARDS) => {
            let Some(public) = one_object(session, uri, ObjectClass::PUBLIC_KEY, "public key")?
            else {
                return Err(TokenError::NotFound {
                    uri: uri.text.clone(),
                    what: "the Ed25519 public key object beside the private key".into(),
                    available: "an Ed25519 key on a token is used with its public key object (same label and id)".into(),
                }
                .into());
            };
            let [params, point] = byte_attributes(
                session,
                uri,
                public,
                [AttributeType::EcParams, AttributeType::EcPoint],
                "reading the Ed25519 public key",
            )?;
            if let Some(p) = &params
                && p != EC_PARAMS_ED25519_NAME
                && p != EC_PARAMS_ED25519_OID
            {
                return Err(unsupported("an Edwards curve other than Ed25519".into()));
            }
            let point = point.unwrap_or_default();
            // A DER OCTET STRING (04 20 ...), or the 32 bytes bare.
            let raw = match point.as_slice() {
                [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest,
                bare if bare.len() == 32 => bare,
                _ => {
                    return Err(unsupported(
                        "an Ed25519 public point that is not 32 bytes".into(),
                    ));
                }
            };
            let mut bytes = [0u8; 32];
            bytes.copy_from_slice(raw);
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .map_err(|_| unsupported("an Ed25519 public point that does not decode".into()))?;
            Ok(PublicKey::Ed25519(vk))
        }
        Some(other) => Err(unsupported(format!("a {other} key"))),
        None => Err(unsupported("a key of no type".into())),
    }
}

/// A signing key on a PKCS#11 token.
pub struct TokenKey {
    session: Mutex<Session>,
    key: ObjectHandle,
    public: PublicKey,
    uri: Pkcs11Uri,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TokenKey({}, {})",
            self.uri.text,
            self.public.fingerprint()
        )
    }
}

/// A session on the token the URI names, logged in as the user.
fn open_session(uri: &Pkcs11Uri, access: &Access, rw: bool) -> Result<Session> {
    let module = access
        .module
        .clone()
        .or_else(|| uri.module_path.clone())
        .or_else(|| access.default_module.clone())
        .ok_or_else(|| TokenError::NoModule {
            uri: uri.text.clone(),
        })?;
    let ctx = load_module(&module)?;
    let slot = find_slot(&ctx, uri)?;
    let session = if rw {
        ctx.open_rw_session(slot)
    } else {
        ctx.open_ro_session(slot)
    }
    .map_err(failed(uri, "opening a session"))?;
    login(&ctx, slot, &session, uri, access)?;
    Ok(session)
}

impl TokenKey {
    /// Open the private key the URI names.
    pub fn open(uri: &Pkcs11Uri, access: &Access) -> Result<TokenKey> {
        let session = open_session(uri, access, false)?;
        let Some(key) = one_object(&session, uri, ObjectClass::PRIVATE_KEY, "private key")? else {
            return Err(TokenError::NotFound {
                uri: uri.text.clone(),
                what: format!(
                    "private key {}",
                    uri.object
                        .as_deref()
                        .map(|o| format!("{o:?}"))
                        .unwrap_or_else(|| "with that id".into())
                ),
                available: labels(&session, ObjectClass::PRIVATE_KEY),
            }
            .into());
        };
        let public = public_key(&session, uri, key)?;
        Ok(TokenKey {
            session: Mutex::new(session),
            key,
            public,
            uri: uri.clone(),
        })
    }

    /// Generate a key pair on the token, as the URI names it (its label and
    /// id): the private key sensitive and not extractable. Refused if a
    /// private key of that name exists.
    pub fn generate(uri: &Pkcs11Uri, access: &Access, spec: KeySpec) -> Result<TokenKey> {
        let session = open_session(uri, access, true)?;
        if one_object(&session, uri, ObjectClass::PRIVATE_KEY, "private key")?.is_some() {
            return Err(TokenError::ObjectExists {
                uri: uri.text.clone(),
            }
            .into());
        }
        let mut common = vec![Attribute::Token(true)];
        if let Some(l) = &uri.object {
            common.push(Attribute::Label(l.as_bytes().to_vec()));
        }
        if let Some(id) = &uri.id {
            common.push(Attribute::Id(id.clone()));
        }
        // Sign-only: the pair can do nothing but sign and verify.
        let mut public = common.clone();
        public.extend([
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
        ]);
        let mut private = common;
        private.extend([
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
        ]);
        if matches!(spec, KeySpec::Ed25519) {
            private.push(Attribute::Derive(false));
        }
        let (mechanism, name) = match spec {
            KeySpec::Ed25519 => {
                public.push(Attribute::EcParams(EC_PARAMS_ED25519_NAME.to_vec()));
                (
                    Mechanism::EccEdwardsKeyPairGen,
                    "CKM_EC_EDWARDS_KEY_PAIR_GEN",
                )
            }
            KeySpec::Rsa { bits } => {
                public.push(Attribute::ModulusBits((bits as u64).into()));
                public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
                (Mechanism::RsaPkcsKeyPairGen, "CKM_RSA_PKCS_KEY_PAIR_GEN")
            }
        };
        let (_, key) = session
            .generate_key_pair(&mechanism, &public, &private)
            .map_err(|e| match e {
                CkError::Pkcs11(RvError::MechanismInvalid, _) => TokenError::Mechanism {
                    uri: uri.text.clone(),
                    mechanism: name,
                    key: format!("{spec:?}"),
                }
                .into(),
                e => failed(uri, "generating the key pair")(e),
            })?;
        let public = public_key(&session, uri, key)?;
        Ok(TokenKey {
            session: Mutex::new(session),
            key,
            public,
            uri: uri.clone(),
        })
    }

    /// Destroy the key pair the URI names (private and public objects).
    /// Returns whether a private key was there.
    pub fn destroy(uri: &Pkcs11Uri, access: &Access) -> Result<bool> {
        let session = open_session(uri, access, true)?;
        let mut found = false;
        for (class, what) in [
            (ObjectClass::PRIVATE_KEY, "private key"),
            (ObjectClass::PUBLIC_KEY, "public key"),
        ] {
            if let Some(o) = one_object(&session, uri, class, what)? {
                session
                    .destroy_object(o)
                    .map_err(failed(uri, "destroying the key"))?;
                found |= class == ObjectClass::PRIVATE_KEY;
            }
        }
        Ok(found)
    }

    /// The URI.
    pub fn uri(&self) -> &Pkcs11Uri {
        &self.uri
    }

    fn sign_with(&self, mechanism: &Mechanism, name: &'static str, data: &[u8]) -> Result<Vec<u8>> {
        let session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        session
            .sign(mechanism, self.key, data)
            .map_err(|e| match e {
                CkError::Pkcs11(RvError::MechanismInvalid | RvError::MechanismParamInvalid, _) => {
                    TokenError::Mechanism {
                        uri: self.uri.text.clone(),
                        mechanism: name,
                        key: self.public.algorithm().to_string(),
                    }
                    .into()
                }
                e => failed(&self.uri, "signing")(e),
            })
    }
}

/// DER `DigestInfo` prefix of SHA-256 (RFC 8017, section 9.2).
const SHA256_DIGEST_INFO: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

impl KeySource for TokenKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn describe(&self) -> String {
        self.uri.text.clone()
    }

    fn sign(&self, request: SignRequest<'_>) -> Result<Vec<u8>> {
        match (&self.public, request) {
            (PublicKey::Ed25519(_), SignRequest::Statement(m)) => self.sign_with(
                &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                "CKM_EDDSA",
                m,
            ),
            (PublicKey::Rsa(_), SignRequest::Statement(m)) => self.sign_with(
                &Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
                    hash_alg: MechanismType::SHA256,
                    mgf: PkcsMgfType::MGF1_SHA256,
                    s_len: (super::RSA_PSS_SALT_LEN as u64).into(),
                }),
                "CKM_SHA256_RSA_PKCS_PSS",
                m,
            ),
            (PublicKey::Rsa(_), SignRequest::RawRsaSha256Digest(d)) => {
                let mut info = SHA256_DIGEST_INFO.to_vec();
                info.extend_from_slice(d);
                self.sign_with(&Mechanism::RsaPkcs, "CKM_RSA_PKCS", &info)
            }
            (PublicKey::Rsa(_), SignRequest::RsaSha512(m)) => {
                self.sign_with(&Mechanism::Sha512RsaPkcs, "CKM_SHA512_RSA_PKCS", m)
            }
            (PublicKey::Ed25519(_), SignRequest::RawEd25519(_)) => Err(TokenError::Mechanism {
                uri: self.uri.text.clone(),
                mechanism: "CKM_EDDSA over the whole package",
                key: "raw-format Ed25519 (it signs every byte of the package, which a token should never be sent; use the pkgsign format)".into(),
            }
            .into()),
            _ => Err(Error::Crypto {
                what: "signing",
                reason: format!(
                    "{}: request does not match the key's algorithm {}",
                    self.uri.text,
                    self.public.algorithm()
                ),
            }),
        }
    }
}

/// The extension of a pointer file: `NAME.pkcs11` holds the URI of a key on
/// a token, beside its `NAME.pub`.
pub const POINTER_EXT: &str = "pkcs11";

/// Whether `path` names a pointer file (by its extension): read it with
/// [`read_pointer`], never as a private key file.
pub fn is_pointer(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == POINTER_EXT)
}

/// What `keygen --pkcs11` wrote.
#[derive(Debug)]
pub struct WrittenPointer {
    /// `DIR/NAME.pkcs11`: the URI (no PIN).
    pub pointer_path: PathBuf,
    /// `DIR/NAME.pub`.
    pub public_path: PathBuf,
    /// The key.
    pub key: TokenKey,
}

/// Generate a key pair of `spec` on the token `uri` names, and write only
/// `dir/name.pub` and the pointer `dir/name.pkcs11`. Existing files are
/// refused unless `replace` allows them; files are checked before the
/// (possibly slow) generation, and nothing is written if it fails.
pub fn keygen(
    dir: &Path,
    name: &str,
    uri: &Pkcs11Uri,
    access: &Access,
    spec: KeySpec,
    replace: crate::fsutil::Replace,
) -> Result<WrittenPointer> {
    use crate::fsutil;
    super::generate::check_name(name)?;
    fsutil::create_private_dir_all(dir)?;
    let pointer_path = dir.join(format!("{name}.{POINTER_EXT}"));
    let public_path = dir.join(format!("{name}.pub"));
    if replace == fsutil::Replace::Never {
        fsutil::ensure_absent(&pointer_path)?;
        fsutil::ensure_absent(&public_path)?;
        fsutil::ensure_absent(&dir.join(format!("{name}.pem")))?;
    }
    let key = TokenKey::generate(uri, access, spec)?;
    let public_pem = super::encoding::public_key_to_pem(&key.public)?;
    fsutil::write_atomic(&public_path, public_pem.as_bytes(), 0o644, replace)?;
    fsutil::write_atomic(
        &pointer_path,
        format!("{}\n", uri.text).as_bytes(),
        0o644,
        replace,
    )?;
    Ok(WrittenPointer {
        pointer_path,
        public_path,
        key,
    })
}

/// Read a pointer file: the URI of a key on a token. It names which key
/// signs, so no one else may be able to write it: a signing-keys
/// directory's check covers its pointers (`trust::perms::check_dir`); a
/// caller reading a pointer named on its own checks it first with
/// `trust::perms::check_file` (this module stays below `trust`).
pub fn read_pointer(path: &Path) -> Result<Pkcs11Uri> {
    let data = crate::fsutil::read_bounded(path, 8192, "PKCS#11 pointer file")?;
    let text = std::str::from_utf8(&data).map_err(|_| {
        Error::from(TokenError::Uri {
            uri: path.display().to_string(),
            reason: "the pointer file is not UTF-8 text".into(),
        })
    })?;
    let line = text.trim();
    if line.lines().count() != 1 || !Pkcs11Uri::is_uri(line) {
        return Err(TokenError::Uri {
            uri: path.display().to_string(),
            reason: "a pointer file holds one pkcs11: URI on one line; write the key's URI into it, or make the key and its pointer with `pkgsign keygen --pkcs11`".into(),
        }
        .into());
    }
    Pkcs11Uri::parse(line)
}

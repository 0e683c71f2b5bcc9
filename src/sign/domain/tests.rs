use super::*;
use crate::error::Error;
use crate::keys::{KeySource, KeySpec, LocalKey, generate};
use crate::sign::Signer;

pub(crate) fn key(spec: KeySpec) -> LocalKey {
    LocalKey::new(generate(spec).unwrap(), "mem".into())
}

fn keys() -> Vec<LocalKey> {
    vec![key(KeySpec::Ed25519), key(KeySpec::Rsa { bits: 2048 })]
}

/// A key source that signs, then spoils the signature, in one of the ways
/// a broken token or an RSA fault would.
pub(crate) struct Faulty {
    pub(crate) inner: LocalKey,
    pub(crate) fault: Fault,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Fault {
    /// One bit of the signature flipped.
    FlipBit,
    /// A valid signature, by another key.
    OtherKey,
    /// A valid signature over other bytes.
    OtherMessage,
}

impl KeySource for Faulty {
    fn public_key(&self) -> &PublicKey {
        self.inner.public_key()
    }
    fn describe(&self) -> String {
        format!("faulty {:?} source", self.fault)
    }
    fn sign(&self, request: SignRequest<'_>) -> crate::Result<Vec<u8>> {
        match self.fault {
            Fault::FlipBit => {
                let mut sig = self.inner.sign(request)?;
                if let Some(b) = sig.last_mut() {
                    *b ^= 1;
                }
                Ok(sig)
            }
            Fault::OtherKey => {
                let spec = match self.inner.public_key() {
                    PublicKey::Ed25519(_) => KeySpec::Ed25519,
                    PublicKey::Rsa(_) => KeySpec::Rsa { bits: 2048 },
                };
                key(spec).sign(request)
            }
            Fault::OtherMessage => {
                let other = [0x42u8; 32];
                self.inner.sign(match request {
                    SignRequest::Statement(_) => SignRequest::Statement(b"another statement"),
                    SignRequest::RawEd25519(_) => SignRequest::RawEd25519(b"another package"),
                    SignRequest::RawRsaSha256Digest(_) => SignRequest::RawRsaSha256Digest(&other),
                    SignRequest::RsaSha512(_) => SignRequest::RsaSha512(b"another message"),
                })
            }
        }
    }
}

pub(crate) const FAULTS: [Fault; 3] = [Fault::FlipBit, Fault::OtherKey, Fault::OtherMessage];

pub(crate) fn faulty(spec: KeySpec, fault: Fault) -> Faulty {
    Faulty {
        inner: key(spec),
        fault,
    }
}

const BODY: &[u8] = b"algorithm: ed25519\nsize: 12\n";

#[test]
fn prefixes_are_the_formats_own_and_distinct() {
    // The bytes of the formats as released: signatures already made verify.
    assert_eq!(
        Domain::PackageStatement.prefix(),
        b"pkgsign package signature v1\0"
    );
    assert_eq!(Domain::KeyStatement.prefix(), b"pkgsign key statement v2\0");
    assert_eq!(Domain::Raw.prefix(), b"");
    for d in Domain::ALL {
        for e in Domain::ALL {
            // No prefix is a prefix of another: a message of one domain
            // can never be read as one of another.
            if d != e && !d.prefix().is_empty() {
                assert!(!e.prefix().starts_with(d.prefix()), "{d:?} {e:?}");
                // And raw Ed25519 never signs bytes that begin with it (a
                // raw signature would be one of that domain).
                assert!(
                    crate::sign::domain::raw_ed25519_reserved(d.prefix()),
                    "{d:?}"
                );
            }
        }
    }
}

#[test]
fn no_signature_of_one_domain_verifies_in_another() {
    for k in keys() {
        let signer = Signer::new(&k);
        for made in Domain::ALL {
            let sig = signer.sign(made, Message::Bytes(BODY)).unwrap();
            for checked in Domain::ALL {
                let ok = verify(checked, k.public_key(), Message::Bytes(BODY), &sig);
                assert_eq!(
                    ok,
                    made == checked,
                    "{} signature made as {made:?}, checked as {checked:?}",
                    k.public_key().algorithm()
                );
            }
        }
    }
}

#[test]
fn a_statement_of_one_domain_replayed_as_the_framed_message_of_another_is_refused() {
    // The classic replay: sign the bytes "prefix A + body" in domain B. The
    // framing differs (B adds its own prefix; raw Ed25519 refuses a
    // reserved start), so the signature never verifies as A's.
    for k in keys() {
        let signer = Signer::new(&k);
        for a in [Domain::PackageStatement, Domain::KeyStatement] {
            let framed = a.framed(BODY);
            for b in Domain::ALL {
                if a == b {
                    continue;
                }
                match signer.sign(b, Message::Bytes(&framed)) {
                    Ok(sig) => assert!(
                        !verify(a, k.public_key(), Message::Bytes(BODY), &sig),
                        "{a:?} replayed from {b:?}"
                    ),
                    Err(Error::Invalid(crate::error::Invalid::MessageUnfit { .. })) => {
                        assert_eq!(b, Domain::Raw);
                        assert!(matches!(k.public_key(), PublicKey::Ed25519(_)));
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
    }
}

#[test]
fn raw_rsa_over_bytes_and_over_their_digest_agree() {
    let k = key(KeySpec::Rsa { bits: 2048 });
    let sig = Signer::new(&k)
        .sign(Domain::Raw, Message::Bytes(BODY))
        .unwrap();
    let d = Sha256::digest(BODY);
    assert!(verify(
        Domain::Raw,
        k.public_key(),
        Message::Sha256(&d),
        &sig
    ));
    assert!(!verify(
        Domain::Raw,
        k.public_key(),
        Message::Sha256(&d[..31]),
        &sig
    ));
    let ed = key(KeySpec::Ed25519);
    assert!(matches!(
        Signer::new(&ed).sign(Domain::Raw, Message::Sha256(&d)),
        Err(Error::Invalid(crate::error::Invalid::MessageUnfit { .. }))
    ));
}

#[test]
fn a_faulty_key_source_is_refused_in_every_domain() {
    for spec in [KeySpec::Ed25519, KeySpec::Rsa { bits: 2048 }] {
        for fault in FAULTS {
            let k = faulty(spec, fault);
            for domain in Domain::ALL {
                match Signer::new(&k).sign(domain, Message::Bytes(BODY)) {
                    Err(Error::Crypto { reason, .. }) => {
                        assert!(reason.contains("does not verify"), "{reason}")
                    }
                    other => panic!("{fault:?} {domain:?} {spec:?}: {other:?}"),
                }
            }
        }
    }
}

/// Every public entry point that signs refuses a faulty key source, and
/// writes nothing.
#[test]
fn sign_package_refuses_a_faulty_key_source_in_both_formats() {
    use crate::sign::signer::{Format, SignOptions, sign_package};
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("app.tar");
    std::fs::write(&pkg, b"release bytes").unwrap();
    let out = dir.path().join("app.tar.sig");
    for spec in [KeySpec::Ed25519, KeySpec::Rsa { bits: 2048 }] {
        for fault in FAULTS {
            let k = faulty(spec, fault);
            for format in [Format::Pkgsign, Format::Raw] {
                let opts = SignOptions {
                    format,
                    ..SignOptions::default()
                };
                match sign_package(&pkg, &[&k], &opts, &out) {
                    Err(Error::Crypto { .. }) => {}
                    other => panic!("{spec:?} {fault:?} {format:?}: {other:?}"),
                }
                assert!(!out.exists(), "nothing is written");
            }
        }
    }
}

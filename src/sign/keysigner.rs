//! [`Signer`]: the one road by which the library makes a signature.
//!
//! Whatever is signed (a package statement, a raw package signature, a key
//! statement, its countersignature or a cosignature) is signed here, under
//! its [`Domain`], and the signature is verified with the key's public key
//! under the same domain before it is returned: a faulty key source (a
//! broken token, an RSA computation fault) yields an error, and nothing is
//! written.

use crate::error::{Error, Invalid, Result};
use crate::keys::{KeySource, PublicKey};
use crate::sign::domain::{self, Domain, Message};

/// Signs with one key source, verifying every signature it makes.
#[derive(Clone, Copy)]
pub struct Signer<'a> {
    key: &'a dyn KeySource,
}

impl std::fmt::Debug for Signer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.key.public_key().fingerprint())
    }
}

impl<'a> Signer<'a> {
    /// A signer over `key`.
    pub fn new(key: &'a dyn KeySource) -> Self {
        Signer { key }
    }

    /// The key's public key.
    pub fn public_key(&self) -> &'a PublicKey {
        self.key.public_key()
    }

    /// Where the key came from, for messages.
    pub fn describe(&self) -> String {
        self.key.describe()
    }

    /// Sign `message` (without its domain prefix: the signer adds it) under
    /// `domain`, and return the bare signature once it verifies.
    ///
    /// A message the domain refuses (raw Ed25519 over bytes that start
    /// with `pkgsign `) is [`Invalid::MessageUnfit`]; a signature that does not
    /// verify is [`Error::Crypto`] naming the key source.
    pub fn sign(&self, domain: Domain, message: Message<'_>) -> Result<Vec<u8>> {
        let public = self.key.public_key();
        let signature = domain::sign_with(domain, public, message, |req| self.key.sign(req))?
            .map_err(|unfit| Invalid::MessageUnfit {
                path: None,
                reason: unfit.to_string(),
            })?;
        if !domain::verify(domain, public, message, &signature) {
            return Err(Error::Crypto {
                what: "signing",
                reason: format!(
                    "the {} signature made with {} does not verify; the key source is faulty",
                    domain.name(),
                    self.key.describe()
                ),
            });
        }
        Ok(signature)
    }
}

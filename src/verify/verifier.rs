//! [`Verifier`]: the one road by which a signature is checked against the
//! trust store.
//!
//! For a domain, a message, a signature and the key it names, the verifier
//! asks the trust decision ([`TrustStore::decide`], at the verifier's `now`)
//! and checks the signature under the domain ([`domain::verify`]). Package
//! and checksum-list verification ([`crate::verify::verify_package`], and
//! the `release::manifest` module above this one) are built on it and return
//! a typed proof, [`crate::sign::report::Verified`].

use std::time::{SystemTime, UNIX_EPOCH};

use crate::keys::{Fingerprint, Scheme};
use crate::sign::domain::{self, Domain, Message};
use crate::sign::report::Refusal;
use crate::trust::{Decision, TrustStore};

/// Checks signatures against a trust store at one time.
#[derive(Debug, Clone, Copy)]
pub struct Verifier<'a> {
    trust: &'a TrustStore,
    now: u64,
}

impl<'a> Verifier<'a> {
    /// A verifier over `trust`, judging keys at `now` (a clock before 1970
    /// counts as 1970).
    pub fn new(trust: &'a TrustStore, now: SystemTime) -> Self {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Verifier { trust, now }
    }

    /// The trust store.
    pub fn trust(&self) -> &'a TrustStore {
        self.trust
    }

    /// The time keys are judged at, in seconds since the epoch.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// May the key `fp` be used for a signature made at `signed_at`, now?
    pub fn decide(&self, fp: &Fingerprint, signed_at: Option<u64>) -> Decision<'a> {
        self.trust.decide(fp, self.now, signed_at)
    }

    /// Check `signature`, by the key `key`, over `message` under `domain`:
    /// first the trust decision, then (when the format names one) that the
    /// scheme is the key's, then the signature itself. Accepted with the
    /// trusted key and the one-line reason, or refused with a code and one.
    pub fn check(
        &self,
        domain: Domain,
        key: &Fingerprint,
        scheme: Option<Scheme>,
        message: Message<'_>,
        signature: &[u8],
        signed_at: Option<u64>,
    ) -> Decision<'a> {
        let (k, why) = match self.decide(key, signed_at) {
            Decision::Accepted(k, why) => (k, why),
            refused => return refused,
        };
        if let Some(scheme) = scheme.filter(|s| *s != k.public.statement_scheme()) {
            return Decision::Refused(
                Refusal::SignatureInvalid,
                format!(
                    "the signature says {scheme} but key {key} is {}",
                    k.public.algorithm()
                ),
            );
        }
        if !domain::verify(domain, &k.public, message, signature) {
            return Decision::Refused(
                Refusal::SignatureInvalid,
                format!(
                    "the signature does not verify with key {key}: the signature file was altered or made by another key"
                ),
            );
        }
        Decision::Accepted(k, why)
    }
}

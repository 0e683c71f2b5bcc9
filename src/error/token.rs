//! A key on a PKCS#11 token could not be used: what happened, and what
//! exists instead, so that the user can act. Never a PIN.

use super::Code;

/// A PKCS#11 failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// A `pkcs11:` URI that does not parse (RFC 7512).
    #[error("{uri}: not a usable PKCS#11 URI: {reason}")]
    Uri {
        /// The URI (it never holds a PIN: `pin-value` is refused).
        uri: String,
        /// What is wrong.
        reason: String,
    },
    /// No module was named.
    #[error(
        "no PKCS#11 module is named for {uri}: give the module's path (for SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)"
    )]
    NoModule {
        /// The key's URI.
        uri: String,
    },
    /// The module could not be loaded or initialised.
    #[error("{module}: not a usable PKCS#11 module: {reason}")]
    Module {
        /// The module's path.
        module: String,
        /// What failed.
        reason: String,
    },
    /// No token, or no object, matches the URI.
    #[error("{uri}: {what} not found; {available}")]
    NotFound {
        /// The URI.
        uri: String,
        /// What was looked for ("token \"release\"", "private key \"k\"").
        what: String,
        /// What exists instead.
        available: String,
    },
    /// Several tokens, or several key objects, match the URI.
    #[error("{uri}: {count} {what} match; name one with {how} ({available})")]
    Ambiguous {
        /// The URI.
        uri: String,
        /// How many.
        count: usize,
        /// Of what ("tokens", "key objects").
        what: &'static str,
        /// The URI attributes that tell them apart.
        how: &'static str,
        /// Which.
        available: String,
    },
    /// `keygen --pkcs11`: the token already holds a key of that name.
    #[error(
        "{uri}: the token already holds a private key of that name; name the new key otherwise (object=), or destroy the old one with the token's own tools if it is truly unused"
    )]
    ObjectExists {
        /// The URI.
        uri: String,
    },
    /// The token needs a PIN and none was given.
    #[error("{uri}: the token needs its user PIN and none was given")]
    PinRequired {
        /// The URI.
        uri: String,
    },
    /// The PIN was refused.
    #[error("{uri}: the token refused the PIN{counter}")]
    PinWrong {
        /// The URI.
        uri: String,
        /// What the token says of its lockout counter (may be empty).
        counter: String,
    },
    /// The PIN is locked after too many wrong tries.
    #[error(
        "{uri}: the token's user PIN is locked after too many wrong tries; its security officer must unlock it"
    )]
    PinLocked {
        /// The URI.
        uri: String,
    },
    /// The token cannot do what is asked.
    #[error("{uri}: the token does not support {mechanism}, which pkgsign needs for a {key} key")]
    Mechanism {
        /// The URI.
        uri: String,
        /// The mechanism's name (`CKM_EDDSA`, ...).
        mechanism: &'static str,
        /// The key's algorithm.
        key: String,
    },
    /// An operation failed on the token (the session lost, a device error).
    #[error("{uri}: {action} failed on the token: {reason}")]
    Failed {
        /// The URI.
        uri: String,
        /// What was being done.
        action: &'static str,
        /// The token's error.
        reason: String,
    },
}

impl TokenError {
    /// The stable upper-case code of the contract.
    pub fn code(&self) -> Code {
        match self {
            TokenError::Uri { .. } => Code::Usage,
            TokenError::NoModule { .. } | TokenError::Module { .. } => Code::TokenUnavailable,
            TokenError::NotFound { .. } | TokenError::Ambiguous { .. } => Code::TokenKeyNotFound,
            TokenError::ObjectExists { .. } => Code::AlreadyExists,
            TokenError::PinRequired { .. } => Code::PassphraseRequired,
            TokenError::PinWrong { .. } | TokenError::PinLocked { .. } => Code::PassphraseWrong,
            TokenError::Mechanism { .. } => Code::TokenMechanism,
            TokenError::Failed { .. } => Code::TokenUnavailable,
        }
    }
}

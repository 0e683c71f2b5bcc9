//! Signing: the domains every signature is made under, the one [`Signer`]
//! (which checks each signature it makes), the signature file formats, and
//! the report and proof values a verification (the `verify` module, a layer
//! above this one) gives.
#![forbid(unsafe_code)]

pub mod domain;
pub mod identity;
pub mod keysigner;
pub mod refusal;
pub mod report;
pub mod sigfile;
pub mod signer;
pub mod sshsig;

pub use domain::{Domain, Message};
pub use keysigner::Signer;
pub use refusal::Refusal;

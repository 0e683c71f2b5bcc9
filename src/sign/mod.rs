//! Signing and verifying: the signature file formats, the one place that
//! hashes packages and makes or checks signatures, and the report and proof
//! a verification gives.

pub mod domain;
pub mod keysigner;
pub mod report;
pub mod sigfile;
pub mod signer;
pub mod verifier;

pub use domain::{Domain, Message};
pub use keysigner::Signer;
pub use verifier::Verifier;

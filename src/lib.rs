//! pkgsign: sign release packages with Ed25519 or RSA, and verify them
//! before applying anything.
//!
//! The library does the work; the `pkgsign` binary is a thin command line
//! over it. Modules, one per concern:
//! - [`keys`]: key types, fingerprints, key files, generation, and the
//!   [`keys::KeySource`] trait every private-key operation goes through;
//! - [`digest`]: hash algorithms, `ALGO:HEX` values and one-pass streaming;
//! - [`sigfile`]: the pkgsign (v1) and raw signature file formats;
//! - [`signer`]: the one place that hashes packages and makes or checks signatures;
//! - [`trust`]: the set of trusted keys and each trust decision;
//! - [`report`]: per-signature results and the proof of a verification;
//! - [`error`]: the error type, its stable codes and exit codes;
//! - [`fsutil`]: bounded reads, atomic writes and directory locks;
//! - [`meta`]: the key metadata files (`trust.toml`, `keys.toml`);
//! - [`perms`]: StrictModes checks of key directories;
//! - [`trustdir`]: changing a trusted-keys directory (add, revoke, remove, list);
//! - [`keystore`]: a coordinator's signing-keys directory;
//! - [`rotate`]: crash-safe key rotation;
//! - [`lineage`]: signed endorsements and revocations that workers follow;
//! - [`audit`]: the JSON-lines audit log.
//!
//! ```
//! use pkgsign::{keys, signer, trust::TrustStore};
//! # fn main() -> Result<(), pkgsign::Error> {
//! let dir = tempfile::tempdir().unwrap();
//! let pkg = dir.path().join("app.tar.gz");
//! std::fs::write(&pkg, b"release bytes").unwrap();
//!
//! let key = keys::LocalKey::new(keys::generate(keys::KeySpec::Ed25519)?, "mem".into());
//! let sig = dir.path().join("app.tar.gz.sig");
//! signer::sign_package(&pkg, &[&key], &signer::SignOptions::default(), &sig)?;
//!
//! let pubfile = dir.path().join("k.pub");
//! std::fs::write(&pubfile, keys::encoding::public_key_to_pem(keys::KeySource::public_key(&key))?).unwrap();
//! let mut trust = TrustStore::new();
//! trust.add_file(&pubfile)?;
//! let proof = signer::verify_package(&pkg, Some(&sig), &trust, &signer::VerifyOptions::default())?;
//! assert_eq!(proof.signers().count(), 1);
//! # Ok(()) }
//! ```
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod audit;
pub mod cache;
pub mod checksum;
pub mod digest;
pub mod error;
mod fields;
pub mod fsutil;
pub mod keys;
pub mod keystore;
pub mod lineage;
pub mod manifest;
pub mod meta;
pub mod perms;
pub mod report;
pub mod rotate;
pub mod sigfile;
pub mod signer;
pub mod trust;
pub mod trustdir;
pub mod trustindex;

pub use error::{Error, Result};

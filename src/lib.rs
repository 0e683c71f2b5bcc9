//! pkgsign: sign release packages with Ed25519 or RSA, and verify them
//! before applying anything.
//!
//! The library does the work; the `pkgsign` binary is a thin command line
//! over it. Modules, one per concern (`docs/architecture.md` draws them):
//! - [`keys`]: key types, fingerprints, key files, generation, and the
//!   [`keys::KeySource`] trait every private-key operation goes through;
//! - [`digest`]: hash algorithms, `ALGO:HEX` values, one-pass streaming and
//!   the digest cache;
//! - [`text`]: the time and comment rules of every signed text file;
//! - [`sign`]: signature domains, the one [`sign::Signer`] (it checks every
//!   signature it makes), the signature file formats, signing packages, and
//!   the report and proof values of a verification;
//! - [`trust`]: the trusted keys and each trust decision, the metadata files,
//!   changing a trusted-keys directory, key lineage statements, and the
//!   StrictModes checks of key directories;
//! - [`verify`]: the one [`verify::Verifier`], and verifying a package
//!   against a trust store into a typed proof;
//! - [`rotate`]: a coordinator's signing-keys directory and crash-safe rotation;
//! - [`release`]: checksum lists and signed manifests;
//! - [`error`]: the error type and the contract's stable codes;
//! - [`fsutil`]: bounded reads, atomic writes and directory locks;
//! - [`mapped`]: reading a file through a memory map, the one module
//!   allowed `unsafe` (every other one forbids it);
//! - [`audit`]: the JSON-lines audit log;
//! - [`config`]: the one TOML configuration file of every subcommand and
//!   of the service;
//! - [`serve`]: `pkgsign serve`, the coordinator's HTTP API over the same
//!   verifying road, with tokens, limits, a release store and metrics;
//! - [`apply`]: the worker's update path: verify once over a private copy,
//!   check the anti-rollback state, apply, record;
//! - [`metrics`]: the service's Prometheus metrics, the key figures of a
//!   signing-keys directory, and the rotation job's node_exporter textfile.
//!
//! ```
//! use pkgsign::{keys, sign::signer, trust::TrustStore, verify};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
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
//! let proof = verify::verify_package(&pkg, Some(&sig), &trust, &verify::VerifyOptions::default())?;
//! assert_eq!(proof.signers().count(), 1);
//! # Ok(()) }
//! ```
#![deny(unsafe_code)]
#![deny(missing_docs)]
// Library code never panics on what it is given: no unwrap, expect,
// unchecked indexing or panic! outside tests. Each `allow` below this says
// why it cannot fail.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod apply;
pub mod audit;
pub mod config;
pub mod digest;
pub mod error;
pub mod fsutil;
pub mod keys;
pub mod mapped;
pub mod metrics;
pub mod release;
pub mod rotate;
pub mod serve;
pub mod sign;
pub mod text;
pub mod trust;
pub mod verify;

pub use error::{Error, Result};

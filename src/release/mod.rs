//! What a release ships beside its packages: checksum lists
//! ([`checksum`]) and signed manifests of many files ([`manifest`]).
#![forbid(unsafe_code)]

pub mod checksum;
pub mod manifest;

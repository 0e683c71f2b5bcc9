//! What a release ships beside its packages: checksum lists
//! ([`checksum`]) and signed manifests of many files ([`manifest`]).

pub mod checksum;
pub mod manifest;

//! What a release ships beside its packages: checksum lists
//! ([`checksum`]), signed manifests of many files ([`manifest`]) and the
//! digest cache that makes re-verifying them cheap ([`cache`]).

pub mod cache;
pub mod checksum;
pub mod manifest;

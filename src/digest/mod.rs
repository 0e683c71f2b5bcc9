//! Hash algorithms, digest values (`ALGO:HEX`) and the streaming reader that
//! feeds a package through every hasher in one pass.
//!
//! - [`alg`]: the algorithm registry ([`HashAlg`]);
//! - [`value`]: a digest value ([`Digest`]);
//! - [`stream`]: hashers and the one-pass file reader;
//! - [`cache`]: digests remembered by file identity, for re-verification.
#![forbid(unsafe_code)]

pub mod alg;
pub mod cache;
pub mod stream;
pub mod value;

pub use alg::HashAlg;
pub use stream::{
    BUF_COUNT, BUF_SIZE, Hasher, MultiHasher, Progress, hash_bytes, hash_file, hash_file_with,
    hash_open_file, single, stream_file,
};
pub use value::Digest;

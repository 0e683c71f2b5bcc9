//! Trust: the set of trusted keys and each trust decision ([`store`]), the
//! metadata files ([`meta`]), changing a trusted-keys directory ([`dir`]),
//! the signed endorsements and revocations workers follow ([`lineage`]), and
//! the revoke workflow ([`revoke`]).
#![forbid(unsafe_code)]

pub mod dir;
pub mod index;
pub mod lineage;
pub mod meta;
pub mod perms;
pub mod revoke;
pub mod store;

pub use crate::sign::Refusal;
pub use store::*;

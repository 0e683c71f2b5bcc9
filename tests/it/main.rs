//! The integration tests: one test binary, one module per area. They drive
//! the real `pkgsign` binary (and the real peer tools) through [`common`].
//!
//! One binary rather than one per file: each test binary is linked against
//! the whole dependency graph and compiles `common` again, so eleven of them
//! cost most of a fresh `cargo test`; one binary also lets the test harness
//! spread every test over the cores, instead of waiting for the slowest test
//! of each file before starting the next file.
//!
//! Run one area or one test by its path:
//!
//! ```text
//! cargo test --profile fast-test --test it lineage_attacks::
//! cargo test --profile fast-test --test it cache_cli::a_second_run_hits_the_cache
//! ```

mod common;

mod apply_cli;
mod audit_log;
mod bad_input;
mod cache_cli;
mod checksum_cli;
mod cli_consistency;
mod cli_sign_verify;
mod completions;
mod config_cli;
mod contrib;
mod fuzz_regressions;
mod lineage_attacks;
mod manifest_cli;
mod metrics_cli;
mod migrating;
mod module_graph;
mod openssl_interop;
mod pkcs11;
mod pkcs11_rotation;
mod release_identity;
mod rotation_crash;
mod rotation_scenario;
mod serve;
mod serve_tls;
mod sshsig;
mod trust_cli;
mod trust_scale;

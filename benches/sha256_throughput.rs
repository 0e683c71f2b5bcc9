//! In-memory SHA-256 throughput of pkgsign's own hasher (`digest::Hasher`,
//! i.e. the `sha2` crate), to set beside `openssl speed -evp sha256`.
//!
//! It is a plain `#[test]` so that it runs on stable Rust without a custom
//! bench harness. `benches/vs-openssl.sh` runs it as
//!
//! ```text
//! cargo test --release --bench sha256_throughput -- --nocapture
//! ```
//!
//! and reads the `sha256-in-memory-MBps` line. sha2 picks its SHA-NI code at
//! run time; on a CPU with SHA-NI it hashes at openssl's speed (well above
//! 1 GB/s), the portable code reaches only a fraction of that.

use std::time::Instant;

use pkgsign::digest::{HashAlg, Hasher};

#[test]
fn sha256_in_memory_throughput() {
    // 1 MiB blocks, as the streaming reader hands them over.
    let block: Vec<u8> = (0..1usize << 20).map(|i| (i * 131 % 251) as u8).collect();
    let blocks_per_round = 256; // 256 MiB a round
    let mut best = 0f64;
    // Best of a few rounds: the first one also warms the CPU up.
    for _ in 0..5 {
        let start = Instant::now();
        let mut h = Hasher::new(HashAlg::Sha256);
        for _ in 0..blocks_per_round {
            h.update(&block);
        }
        std::hint::black_box(h.finish());
        let secs = start.elapsed().as_secs_f64();
        let mbps = (blocks_per_round << 20) as f64 / secs / 1e6;
        best = best.max(mbps);
    }
    println!("sha256-in-memory-MBps {best:.0}");
    assert!(best > 0.0);
}

//! The one module allowed `unsafe`: reading a file through a read-only
//! memory map. Every other module forbids unsafe code (`#![forbid]` at its
//! top; `tests/it/module_graph.rs` checks that none is missing).
#![allow(unsafe_code)] // The one unsafe block of the crate: see the SAFETY note.

use std::fs::File;
use std::path::Path;

use crate::error::{Error, Result};

/// Run `f` over the whole contents of the opened `file` (named `path` in
/// errors), memory-mapped read-only. Returns `f`'s result and the length.
///
/// Only signing (raw Ed25519, which needs the whole message at once) and
/// BLAKE3 hashing of large files map files. If another process truncates
/// the file meanwhile, reading the mapping raises SIGBUS and pkgsign is
/// killed before it writes anything; `SECURITY.md` says so.
pub fn with_mapped<T>(
    file: &File,
    path: &Path,
    f: impl FnOnce(&[u8]) -> Result<T>,
) -> Result<(T, u64)> {
    let len = file
        .metadata()
        .map_err(|e| Error::io(path, "reading metadata of", e))?
        .len();
    if len == 0 {
        // mmap of an empty file fails; the contents are simply empty.
        return Ok((f(&[])?, 0));
    }
    // SAFETY: the mapping is read-only, private to this call and dropped
    // before it returns, so no reference to it outlives it. Another process
    // may still change the file underneath: a write changes the bytes read
    // (as it would with read(2)), a truncation raises SIGBUS (a crash,
    // never a wrong result), as documented above and in SECURITY.md.
    let map = unsafe { memmap2::Mmap::map(file) }.map_err(|e| Error::io(path, "mapping", e))?;
    Ok((f(&map)?, len))
}

//! Verify-then-use with no swap window: the package is read **once**, from
//! one descriptor (opened without following a symlink) or from standard
//! input, and copied into a private staging file while it is hashed; the
//! signatures are checked over exactly those bytes, and only the staged
//! copy is used afterwards. Whatever happens to the original path in the
//! meantime cannot change what is used. The digest cache is never
//! consulted here.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, FileError, Result};
use crate::fsutil;
use crate::sign::report::{Package, Verified};
use crate::sign::sigfile::{self, SignatureFile};
use crate::trust::TrustStore;
use crate::verify::{Content, VerifyError, VerifyOptions, verify_parsed};

/// Where the package bytes come from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A regular file, opened once with `O_NOFOLLOW`.
    Path(&'a Path),
    /// Standard input (`--package -`).
    Stdin,
}

/// The verified bytes, in a private file (mode 0600) that is deleted when
/// this is dropped unless [`Staged::persist`] keeps it.
#[derive(Debug)]
pub struct Staged {
    tmp: tempfile::NamedTempFile,
    size: u64,
}

impl Staged {
    /// Where the staged copy is.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Its length in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The staged copy, open for reading from its start.
    pub fn reopen(&self) -> Result<File> {
        self.tmp
            .reopen()
            .map_err(|e| Error::io(self.tmp.path(), "reopening", e))
    }

    /// Make the staged copy `dest`: already synced, it is renamed over
    /// `dest` (which must be in the staging directory) and the directory is
    /// synced. `mode` is the file's final permission bits.
    pub fn persist(self, dest: &Path, mode: u32) -> Result<()> {
        let file = self.tmp.as_file();
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(self.tmp.path(), "setting the mode of", e))?;
        let dir = fsutil::parent_dir(dest).to_path_buf();
        self.tmp
            .persist(dest)
            .map_err(|e| Error::io(dest, "renaming the verified copy to", e.error))?;
        fsutil::sync_dir(&dir)
    }
}

/// Copy `source` (named `label` in messages) into a new private file in
/// `staging_dir` while hashing it, refusing more than `max_size` bytes, and
/// verify the signatures of `signature` over exactly the bytes copied.
/// The staged copy is returned only with the proof.
pub fn stage_and_verify(
    source: Source<'_>,
    label: &Path,
    staging_dir: &Path,
    max_size: u64,
    signature: &Path,
    trust: &TrustStore,
    opts: &VerifyOptions,
) -> Result<(Verified<Package>, Staged), VerifyError> {
    // The source first: a missing package is "could not run", before any
    // signature is judged, and it is opened once, here.
    let mut input: Box<dyn Read> = match source {
        Source::Path(p) => Box::new(fsutil::open_regular_nofollow(p)?),
        Source::Stdin => Box::new(std::io::stdin().lock()),
    };
    let signature = sigfile::read(signature)?;
    stage_and_verify_from(
        &mut input,
        label,
        staging_dir,
        max_size,
        &signature,
        trust,
        opts,
    )
}

/// [`stage_and_verify`] over any reader (a request body) and a signature
/// file already parsed. A read error (a client gone mid-upload) is an
/// error: nothing is staged.
pub fn stage_and_verify_from(
    input: &mut dyn Read,
    label: &Path,
    staging_dir: &Path,
    max_size: u64,
    signature: &SignatureFile,
    trust: &TrustStore,
    opts: &VerifyOptions,
) -> Result<(Verified<Package>, Staged), VerifyError> {
    fsutil::check_private_dir(staging_dir, "the directory of the verified copy")?;
    let tmp = tempfile::Builder::new()
        .prefix(".pkgsign-staged-")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(staging_dir)
        .map_err(|e| Error::io(staging_dir, "creating a staging file in", e))?;
    let staged_path: PathBuf = tmp.path().to_path_buf();
    let mut size = 0u64;
    let mut read = false;
    let verified = {
        let mut feed = |sink: &mut dyn FnMut(&[u8])| -> Result<()> {
            if std::mem::replace(&mut read, true) {
                // Read once only: a second pass would be unchecked.
                return Err(Error::io(
                    label,
                    "reading",
                    std::io::Error::other("the package was asked for twice"),
                ));
            }
            size = copy_hashing(
                &mut *input,
                tmp.as_file(),
                &staged_path,
                label,
                max_size,
                sink,
            )?;
            Ok(())
        };
        verify_parsed(label, Content::Stream(&mut feed), signature, trust, opts)?
    };
    if !read {
        // Cannot happen for an accepted signature (its digest needs the
        // bytes); refuse rather than hand on an empty copy.
        return Err(Error::io(
            label,
            "reading",
            std::io::Error::other("the package was never read"),
        )
        .into());
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io(&staged_path, "syncing", e))?;
    Ok((verified, Staged { tmp, size }))
}

/// The size of the pieces handed from the reading, hashing thread to the
/// writing one.
const PIECE: usize = 256 * 1024;
/// Pieces in flight between the two (the memory a staging copy holds).
const PIECES: usize = 2;

/// Copy `input` into `file` while `sink` hashes it, refusing more than
/// `max_size` bytes; returns the size. The writing is done by a second
/// thread, so that hashing one piece overlaps writing the one before (the
/// hash and the page-cache copy each take about as long as the other on a
/// large package). Every byte is hashed before it is handed to the writer,
/// and the copy is complete only if the writer wrote every piece.
fn copy_hashing(
    input: &mut dyn Read,
    file: &File,
    staged_path: &Path,
    label: &Path,
    max_size: u64,
    sink: &mut dyn FnMut(&[u8]),
) -> Result<u64> {
    use std::sync::mpsc::sync_channel;
    let (full_tx, full_rx) = sync_channel::<(Vec<u8>, usize)>(PIECES);
    let (free_tx, free_rx) = sync_channel::<Vec<u8>>(PIECES);
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> std::io::Result<()> {
            let mut out = file;
            for (buf, n) in full_rx {
                out.write_all(buf.get(..n).unwrap_or_default())?;
                // The reader may be gone (it failed); the buffer is dropped then.
                let _ = free_tx.send(buf);
            }
            Ok(())
        });
        let mut size = 0u64;
        let mut made = 0usize;
        let read_result = (|| -> Result<()> {
            loop {
                let mut buf = match free_rx.try_recv() {
                    Ok(b) => b,
                    Err(_) if made < PIECES => {
                        made += 1;
                        vec![0u8; PIECE]
                    }
                    // All pieces in flight: wait for the writer to return one
                    // (it is gone only if it failed: stop, its error is told).
                    Err(_) => match free_rx.recv() {
                        Ok(b) => b,
                        Err(_) => return Ok(()),
                    },
                };
                let mut n = 0;
                while n < PIECE {
                    match input.read(buf.get_mut(n..).unwrap_or_default()) {
                        Ok(0) => break,
                        Ok(k) => n += k,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(Error::io(label, "reading", e)),
                    }
                }
                if n == 0 {
                    return Ok(());
                }
                size += n as u64;
                if size > max_size {
                    return Err(FileError::TooLarge {
                        path: label.to_path_buf(),
                        what: "package",
                        limit: max_size,
                    }
                    .into());
                }
                sink(buf.get(..n).unwrap_or_default());
                if full_tx.send((buf, n)).is_err() {
                    // The writer stopped: its error is the one to tell.
                    return Ok(());
                }
                if n < PIECE {
                    return Ok(());
                }
            }
        })();
        drop(full_tx);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the writing thread failed")));
        read_result?;
        written.map_err(|e| Error::io(staged_path, "writing", e))?;
        Ok(size)
    })
}

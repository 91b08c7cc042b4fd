//! [`ArchiveFile`] over a local file read with `pread`, never mapped: an archive whose bytes are
//! not lent whole, as a remote object's are not. Every reader, the verdict and the seek points
//! read it at offsets; `tests/source.rs` reads every corpus archive through it and through the
//! mapping, and compares.

use std::borrow::Cow;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::file::{read_full, ArchiveFile, LocalFile, Reopened};
use crate::error::{IoContext, Result};
use crate::format::compression::Compression;
use crate::format::tarfs::Stamp;
use crate::seekpoints::SeekPointsError;

/// A local file, read at offsets with `pread`.
#[derive(Debug)]
pub struct Unmapped {
    file: File,
    path: PathBuf,
    len: u64,
    identity: (u64, u64),
    stamp: Stamp,
    compression: Option<Compression>,
}

impl Unmapped {
    /// Opens `path` (a regular file).
    pub fn open(path: &Path) -> Result<Unmapped> {
        let file = File::open(path).at(path)?;
        let meta = file.metadata().at(path)?;
        let mut head = [0u8; Compression::HEAD];
        let n = file.read_at(&mut head, 0).at(path)?;
        let compression = Compression::detect(&head[..n]);
        Ok(Unmapped { path: path.to_path_buf(), len: meta.len(), identity: (meta.dev(), meta.ino()), stamp: Stamp::of(&meta), compression, file })
    }
}

impl ArchiveFile for Unmapped {
    fn path(&self) -> &Path {
        &self.path
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn stamp(&self) -> Stamp {
        self.stamp
    }

    fn identity(&self) -> (u64, u64) {
        self.identity
    }

    fn compression(&self) -> Option<Compression> {
        self.compression
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        // Never past the length it had when opened, as a mapping would not be.
        let want = usize::try_from(self.len.saturating_sub(offset)).unwrap_or(usize::MAX).min(len);
        let mut buf = vec![0u8; want];
        let got = read_full(&self.file, offset, &mut buf)?;
        buf.truncate(got);
        Ok(Cow::Owned(buf))
    }

    fn reopen(&self) -> std::result::Result<Box<dyn Reopened>, SeekPointsError> {
        let file = self.file.try_clone().map_err(SeekPointsError::Reopen)?;
        Ok(Box::new(LocalFile { file, len: self.len }))
    }
}

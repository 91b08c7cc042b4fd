//! [`super::ByteSource`] over an archive's own bytes, uncompressed: lent whole where the archive
//! is mapped, read at offsets where it is not (a remote object).

use std::borrow::Cow;
use std::io;
use std::path::Path;
use std::sync::atomic::AtomicU64;

use super::ByteSource;
use crate::archive::ArchiveFile;

/// An uncompressed archive, read as it is.
#[derive(Debug)]
pub struct Direct<'a> {
    archive: &'a dyn ArchiveFile,
    read: AtomicU64,
}

impl<'a> Direct<'a> {
    /// The source of an uncompressed archive.
    pub fn new(archive: &'a dyn ArchiveFile) -> Direct<'a> {
        Direct { archive, read: AtomicU64::new(0) }
    }
}

impl ByteSource for Direct<'_> {
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        let piece = self.archive.read_at(offset, len)?;
        self.note_read(piece.len() as u64);
        Ok(piece)
    }

    fn as_slice(&self) -> Option<&[u8]> {
        self.archive.lend()
    }

    fn counter(&self) -> &AtomicU64 {
        &self.read
    }

    fn path(&self) -> &Path {
        self.archive.path()
    }
}

//! A [`Reader`] together with the archive it reads, for holders that keep a reader as long as
//! they like: the mount keeps one per archive it has loaded, for the life of the mount.
//!
//! [`Reader`] borrows its [`ArchiveFile`] (its entries are views into the mapping, which is what
//! makes a listing allocate nothing per member). [`OwnedReader`] owns both, through the
//! `self_cell` crate, so that no archive needs leaking to outlive the function that opened it.

use crate::archive::ArchiveFile;
use crate::ops::read::Reader;

self_cell::self_cell!(
    /// An [`ArchiveFile`] and a [`Reader`] of it, owned together. [`OwnedReader::reader`] lends the
    /// reader.
    pub struct OwnedReader {
        owner: Box<dyn ArchiveFile>,
        #[covariant]
        dependent: Reader,
    }
);

impl OwnedReader {
    /// Opens a reader of `archive` with `open` (e.g. [`Reader::open`]) and keeps both.
    pub fn open(archive: Box<dyn ArchiveFile>, open: impl for<'a> FnOnce(&'a dyn ArchiveFile) -> crate::Result<Reader<'a>>) -> crate::Result<OwnedReader> {
        OwnedReader::try_new(archive, |a| open(&**a))
    }

    /// The reader.
    pub fn reader(&self) -> &Reader<'_> {
        self.borrow_dependent()
    }
}

impl std::fmt::Debug for OwnedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedReader").field("archive", &self.borrow_owner().path()).finish()
    }
}

impl crate::archive::HoldsArchive for OwnedReader {
    fn archive(&self) -> &dyn ArchiveFile {
        &**self.borrow_owner()
    }
}

//! [`super::ByteSource`] over an archive's memory map.

use std::borrow::Cow;
use std::io;
use std::path::Path;
use std::sync::atomic::AtomicU64;

use super::ByteSource;
use crate::archive::Archive;

/// A mapped archive.
#[derive(Debug)]
pub struct Mapped<'a> {
    archive: &'a Archive,
    read: AtomicU64,
}

impl<'a> Mapped<'a> {
    /// The source of a mapped archive.
    pub fn new(archive: &'a Archive) -> Mapped<'a> {
        Mapped { archive, read: AtomicU64::new(0) }
    }

}

impl ByteSource for Mapped<'_> {
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        let data = self.archive.bytes();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
        let end = start.saturating_add(len).min(data.len());
        self.note_read((end - start) as u64);
        Ok(Cow::Borrowed(&data[start..end]))
    }

    fn as_slice(&self) -> Option<&[u8]> {
        Some(self.archive.bytes())
    }


    fn counter(&self) -> &AtomicU64 {
        &self.read
    }

    fn path(&self) -> &Path {
        self.archive.path()
    }
}


//! [`ArchiveFile`] over an archive that is a member of another (`tarfs mount --recursive`):
//! a byte range of the outer archive, where the member is stored as it is (a plain member of a
//! plain tar: nothing copied, a mapped outer archive's range lent as it is), or the member's
//! bytes read into memory (a member of a compressed archive, or a sparse one), which the
//! caller caps. Either way the inner archive, compressed or not, is then read by the readers
//! as any archive is: its compression is what its first bytes show.

use std::borrow::Cow;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::file::{ArchiveFile, Reopened};
use crate::error::Result;
use crate::format::compression::Compression;
use crate::format::tarfs::Stamp;
use crate::seekpoints::SeekPointsError;

/// What holds an outer archive for as long as the archives inside it are read.
pub trait HoldsArchive: Send + Sync + std::fmt::Debug {
    /// The outer archive.
    fn archive(&self) -> &dyn ArchiveFile;
}

/// Where an inner archive's bytes are.
#[derive(Debug, Clone)]
enum Bytes {
    /// `len` bytes of the outer archive from `start`.
    Range { outer: Arc<dyn HoldsArchive>, start: u64, len: u64 },
    /// Read into memory.
    Memory(Arc<[u8]>),
}

/// An archive inside another.
#[derive(Debug)]
pub struct Slice {
    path: PathBuf,
    bytes: Bytes,
    stamp: Stamp,
    identity: (u64, u64),
    compression: Option<Compression>,
}

impl Slice {
    /// The bytes `start..start + len` of the archive `outer` holds, named `path` (the outer
    /// archive's path and the member's name).
    pub fn range(path: PathBuf, outer: Arc<dyn HoldsArchive>, start: u64, len: u64) -> Result<Slice> {
        let a = outer.archive();
        let (stamp, identity) = (a.stamp(), a.identity());
        Slice::new(path, Bytes::Range { outer, start, len }, stamp, identity)
    }

    /// `bytes`, read from a member of `outer` (whose stamp and identity it takes), named `path`.
    pub fn memory(path: PathBuf, outer: &dyn ArchiveFile, bytes: Vec<u8>) -> Result<Slice> {
        Slice::new(path, Bytes::Memory(bytes.into()), outer.stamp(), outer.identity())
    }

    fn new(path: PathBuf, bytes: Bytes, stamp: Stamp, identity: (u64, u64)) -> Result<Slice> {
        let mut s = Slice { path, bytes, stamp, identity, compression: None };
        let head = s.read_at(0, Compression::HEAD).map_err(|source| crate::Error::Io { path: s.path.clone(), source })?;
        s.compression = Compression::detect(&head);
        Ok(s)
    }
}

impl ArchiveFile for Slice {
    fn path(&self) -> &Path {
        &self.path
    }

    fn len(&self) -> u64 {
        match &self.bytes {
            Bytes::Range { len, .. } => *len,
            Bytes::Memory(b) => b.len() as u64,
        }
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
        let want = usize::try_from(self.len().saturating_sub(offset)).unwrap_or(usize::MAX).min(len);
        match &self.bytes {
            Bytes::Range { outer, start, .. } => outer.archive().read_at(start.saturating_add(offset), want),
            Bytes::Memory(b) => {
                let at = usize::try_from(offset).unwrap_or(usize::MAX).min(b.len());
                Ok(Cow::Borrowed(&b[at..at + want]))
            }
        }
    }

    fn lend(&self) -> Option<&[u8]> {
        match &self.bytes {
            Bytes::Range { outer, start, len } => {
                let all = outer.archive().lend()?;
                all.get(usize::try_from(*start).ok()?..usize::try_from(start.checked_add(*len)?).ok()?)
            }
            Bytes::Memory(b) => Some(b),
        }
    }

    fn check_intact(&self) -> Result<()> {
        match &self.bytes {
            Bytes::Range { outer, .. } => outer.archive().check_intact(),
            Bytes::Memory(_) => Ok(()),
        }
    }

    fn reopen(&self) -> std::result::Result<Box<dyn Reopened>, SeekPointsError> {
        match &self.bytes {
            Bytes::Range { outer, start, len } => Ok(Box::new(Window { outer: outer.archive().reopen()?, start: *start, len: *len })),
            Bytes::Memory(b) => Ok(Box::new(InMemory(b.clone()))),
        }
    }
}

/// A range of a reopened outer archive.
struct Window {
    outer: Box<dyn Reopened>,
    start: u64,
    len: u64,
}

impl Reopened for Window {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_into(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let room = usize::try_from(self.len.saturating_sub(offset)).unwrap_or(usize::MAX).min(buf.len());
        self.outer.read_into(self.start.saturating_add(offset), &mut buf[..room])
    }
}

/// Bytes in memory, shared with the [`Slice`] they were read for.
struct InMemory(Arc<[u8]>);

impl Reopened for InMemory {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_into(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let at = usize::try_from(offset).unwrap_or(usize::MAX).min(self.0.len());
        let n = buf.len().min(self.0.len() - at);
        buf[..n].copy_from_slice(&self.0[at..at + n]);
        Ok(n)
    }
}

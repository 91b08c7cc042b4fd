//! [`super::ByteSource`] over an open file read with `pread`.

use std::borrow::Cow;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

use crate::error::{IoContext, Result};

use super::ByteSource;

/// An open file read with `pread`.
#[derive(Debug)]
pub struct Positioned {
    file: File,
    path: PathBuf,
    len: u64,
    read: AtomicU64,
}

impl Positioned {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Positioned> {
        let file = File::open(path).at(path)?;
        let len = file.metadata().at(path)?.len();
        Ok(Positioned { file, path: path.to_path_buf(), len, read: AtomicU64::new(0) })
    }
}

impl ByteSource for Positioned {
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        let want = usize::try_from(self.len.saturating_sub(offset)).unwrap_or(usize::MAX).min(len);
        let mut buf = vec![0u8; want];
        let got = crate::archive::read_full(&self.file, offset, &mut buf)?;
        buf.truncate(got);
        self.note_read(got as u64);
        Ok(Cow::Owned(buf))
    }


    fn counter(&self) -> &AtomicU64 {
        &self.read
    }

    fn path(&self) -> &Path {
        &self.path
    }
}


//! The write-ahead journal of an in-place change, and recovery from it.
//!
//! Before an in-place change writes to an archive, it records in a journal everything needed to
//! tell which file it was made for, and to put that file back as it was:
//!
//! - the file's identity (device and inode), its original length and the length it will have;
//! - a *fingerprint*: hashes of up to [`FINGERPRINT_BLOCKS`] blocks of the original that the
//!   change never writes, spread over the whole file;
//! - every range the change writes, with the hash of its new bytes;
//! - every range of the original that a write covers, with the hash of its original bytes and
//!   where those bytes can be had again: saved in the journal, all zeros, or copied elsewhere in
//!   the archive by the change itself (the members `embed` displaces).
//!
//! The journal lives in the archive's directory (symlinks resolved), named after the file's
//! identity, `.tarfs-journal-DEV-INO`, so that every name of the file (hard links, symlinks, bind
//! mounts) finds it. Where the file system allows, the archive also carries the journal's path in
//! the extended attribute `user.tarfs.journal`, so that a hard link in another directory finds it
//! too.
//!
//! [`recover`] never guesses. It refuses, touching nothing, when the journal was made for another
//! file (identity, length, or fingerprint differ: a backup restored over the archive). It
//! *finishes* when every write is in place (only the journal's removal was missing), and
//! otherwise *rolls back*: each covered range that does not hold its original bytes is restored
//! from its source, whose hash is checked first, the file is cut to its original length, and the
//! restored ranges are read back. Any read or write error stops it with the journal kept. Data is
//! streamed in [`CHUNK`]-byte pieces: memory does not grow with the archive.
//!
//! Layout (integers big-endian `u64`): `TFSJ`, version 2, the operation (16 bytes, NUL-padded),
//! device, inode, original length, final length, the fingerprint (count, then offset and hash),
//! the writes (count, then offset, length, hash), the covered ranges (count, then offset, length,
//! hash, source kind 0 saved / 1 zeros / 2 copy, and the saved bytes or the copy's offset), and an
//! xxh3-64 of everything before it.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use crate::error::{Error, IoContext, Result};
use crate::format::header::BLOCK_U64;
use crate::ops::atomic::write_atomic_private;

/// Bytes read or written at a time by recovery.
pub const CHUNK: usize = 8 << 20;

/// Blocks of the untouched original that a journal fingerprints.
pub const FINGERPRINT_BLOCKS: u64 = 64;

/// The extended attribute that points from an archive to its journal.
pub const XATTR: &str = "user.tarfs.journal";

/// Where the original bytes of a covered range can be had again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Saved in the journal.
    Saved(Vec<u8>),
    /// All zeros.
    Zeros,
    /// Copied by the change to this offset of the archive.
    Copy(u64),
}

/// A range of the original that the change overwrites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Covered {
    /// Offset in the archive.
    pub at: u64,
    /// Length.
    pub len: u64,
    /// xxh3-64 of the original bytes.
    pub hash: u64,
    /// Where to get them again.
    pub source: Source,
}

/// A range the change writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Offset in the archive.
    pub at: u64,
    /// Length.
    pub len: u64,
    /// xxh3-64 of the new bytes.
    pub hash: u64,
}

/// What an interrupted change needs, to be recognized and finished or undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    /// The operation (`csv`, `embed`).
    pub op: String,
    /// The archive's device.
    pub dev: u64,
    /// The archive's inode.
    pub ino: u64,
    /// The archive's length before the change.
    pub original_len: u64,
    /// Its length after the change.
    pub final_len: u64,
    /// `(offset, xxh3-64)` of blocks of the original that the change does not write.
    pub fingerprint: Vec<(u64, u64)>,
    /// Everything the change writes.
    pub writes: Vec<Written>,
    /// Every range of the original that the writes cover.
    pub covered: Vec<Covered>,
}

/// What recovery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// The change had completed; the journal was removed.
    Finished,
    /// The change was undone; the archive is byte-identical to the original.
    RolledBack,
}

/// The hash used throughout the journal.
pub fn hash(data: &[u8]) -> u64 {
    xxh3_64(data)
}

/// The directory the journal of the archive at `path` lives in: its own, symlinks resolved.
fn home(path: &Path) -> PathBuf {
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    match real.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The journal path of the file at `path` with identity `(dev, ino)`.
pub fn journal_path(path: &Path, dev: u64, ino: u64) -> PathBuf {
    home(path).join(format!(".tarfs-journal-{dev:x}-{ino:x}"))
}

/// The pending journal: at `by_inode` (its [`journal_path`]), or where the archive's extended
/// attribute, read by `xattr`, says.
fn pending_at(by_inode: PathBuf, xattr: impl FnOnce(&mut [u8]) -> rustix::io::Result<usize>) -> Option<PathBuf> {
    if by_inode.exists() {
        return Some(by_inode);
    }
    let mut buf = vec![0u8; 4096];
    let n = xattr(&mut buf).ok()?;
    let p = PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&buf[..n]));
    p.exists().then_some(p)
}

/// The journal pending for the open archive `file`, whose [`journal_path`] is `by_inode`.
pub fn find(by_inode: &Path, file: &File) -> Option<PathBuf> {
    pending_at(by_inode.to_path_buf(), |buf| rustix::fs::fgetxattr(file, XATTR, buf))
}

/// Whether a change of the archive at `path`, with identity `(dev, ino)`, is pending.
pub fn pending(path: &Path, (dev, ino): (u64, u64)) -> bool {
    pending_at(journal_path(path, dev, ino), |buf| rustix::fs::getxattr(path, XATTR, buf)).is_some()
}

/// [`Error::Interrupted`] when a change of `archive` is pending: the commands that read or index
/// an archive ask this first, so that none answers for, or indexes, a half-changed file.
pub fn refuse_pending(archive: &dyn crate::archive::ArchiveFile) -> crate::Result<()> {
    match crate::verdict::pending(archive) {
        Some(_) => Err(crate::Error::Interrupted { path: archive.path().to_path_buf() }),
        None => Ok(()),
    }
}

/// Reads a big-endian `u64` list out of a journal body.
struct Cursor<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.body.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    /// A count of items at least `item` bytes each, bounded by what is left.
    fn count(&mut self, item: usize) -> Option<usize> {
        let n = usize::try_from(self.u64()?).ok()?;
        (n <= (self.body.len() - self.at) / item).then_some(n)
    }
}

impl Journal {
    /// Encodes the journal.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = b"TFSJ\x02".to_vec();
        let mut op = [0u8; 16];
        let n = self.op.len().min(16);
        op[..n].copy_from_slice(&self.op.as_bytes()[..n]);
        b.extend_from_slice(&op);
        let put = |b: &mut Vec<u8>, v: u64| b.extend_from_slice(&v.to_be_bytes());
        for v in [self.dev, self.ino, self.original_len, self.final_len, self.fingerprint.len() as u64] {
            put(&mut b, v);
        }
        for &(at, h) in &self.fingerprint {
            put(&mut b, at);
            put(&mut b, h);
        }
        put(&mut b, self.writes.len() as u64);
        for w in &self.writes {
            for v in [w.at, w.len, w.hash] {
                put(&mut b, v);
            }
        }
        put(&mut b, self.covered.len() as u64);
        for c in &self.covered {
            for v in [c.at, c.len, c.hash] {
                put(&mut b, v);
            }
            match &c.source {
                Source::Saved(bytes) => {
                    put(&mut b, 0);
                    b.extend_from_slice(bytes);
                }
                Source::Zeros => put(&mut b, 1),
                Source::Copy(at) => {
                    put(&mut b, 2);
                    put(&mut b, *at);
                }
            }
        }
        let sum = hash(&b);
        put(&mut b, sum);
        b
    }

    /// Decodes a journal; `None` if it is not one or is damaged.
    pub fn decode(data: &[u8]) -> Option<Journal> {
        let (body, sum) = data.split_at_checked(data.len().checked_sub(8)?)?;
        if hash(body) != u64::from_be_bytes(sum.try_into().ok()?) || !body.starts_with(b"TFSJ\x02") {
            return None;
        }
        let mut c = Cursor { body, at: 5 };
        let op = String::from_utf8_lossy(c.take(16)?).trim_end_matches('\0').to_string();
        let (dev, ino, original_len, final_len) = (c.u64()?, c.u64()?, c.u64()?, c.u64()?);
        let n = c.count(16)?;
        let fingerprint = (0..n).map(|_| Some((c.u64()?, c.u64()?))).collect::<Option<Vec<_>>>()?;
        let n = c.count(24)?;
        let writes = (0..n).map(|_| Some(Written { at: c.u64()?, len: c.u64()?, hash: c.u64()? })).collect::<Option<Vec<_>>>()?;
        let n = c.count(32)?;
        let mut covered = Vec::with_capacity(n);
        for _ in 0..n {
            let (at, len, h) = (c.u64()?, c.u64()?, c.u64()?);
            let source = match c.u64()? {
                0 => Source::Saved(c.take(usize::try_from(len).ok()?)?.to_vec()),
                1 => Source::Zeros,
                2 => Source::Copy(c.u64()?),
                _ => return None,
            };
            covered.push(Covered { at, len, hash: h, source });
        }
        (c.at == body.len()).then_some(Journal { op, dev, ino, original_len, final_len, fingerprint, writes, covered })
    }

    /// Writes the journal to `jp` (the [`journal_path`] of the archive open as `file`),
    /// atomically and durably, and points the archive's extended attribute at it where the file
    /// system allows. Returns whether the attribute was set.
    ///
    /// When the file has more than one name, the attribute is how another name finds the
    /// journal, so it is made durable (an fsync of the archive) before this returns, that is
    /// before the change writes anything: otherwise a power cut could keep the change's first
    /// writes and lose the attribute, and recovery through the other name would find nothing.
    /// With one name, the journal's own name ([`journal_path`]) finds it, and that is durable
    /// already.
    pub fn write(&self, jp: &Path, file: &File) -> Result<bool> {
        write_bytes(&self.encode(), jp, file)
    }
}

/// Writes the encoded journal `data` as [`Journal::write`] does (a shift's journal too,
/// [`crate::ops::shift`]).
pub fn write_bytes(data: &[u8], jp: &Path, file: &File) -> Result<bool> {
    write_atomic_private(jp, |w| std::io::Write::write_all(w, data).at(jp))?;
    let abs = std::path::absolute(jp).unwrap_or_else(|_| jp.to_path_buf());
    if rustix::fs::fsetxattr(file, XATTR, abs.as_os_str().as_encoded_bytes(), rustix::fs::XattrFlags::empty()).is_err() {
        return Ok(false);
    }
    // The link count now, not when the archive was opened: a name may have been added since.
    if file.metadata().at(jp)?.nlink() > 1 {
        file.sync_all().at(jp)?;
    }
    Ok(true)
}

/// Removes the journal `jp` of the archive open as `file`, and fsyncs the journal's directory.
pub fn remove(jp: &Path, file: &File) -> Result<()> {
    std::fs::remove_file(jp).at(jp)?;
    let _ = rustix::fs::fremovexattr(file, XATTR);
    let dir = jp.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// xxh3-64 of `len` bytes of `file` at `at`, read in chunks; a short file is an error.
pub fn hash_range(file: &File, path: &Path, at: u64, len: u64) -> Result<u64> {
    let mut h = Xxh3::new();
    let mut buf = vec![0u8; CHUNK.min(usize::try_from(len).unwrap_or(CHUNK)).max(1)];
    let mut done = 0u64;
    while done < len {
        let n = buf.len().min(usize::try_from(len - done).unwrap_or(usize::MAX));
        file.read_exact_at(&mut buf[..n], at + done).at(path)?;
        h.update(&buf[..n]);
        done += n as u64;
    }
    Ok(h.digest())
}

/// Copies `len` bytes within `file` from `from` to `to` (non-overlapping), in chunks.
pub(crate) fn copy_range(file: &File, path: &Path, from: u64, to: u64, len: u64) -> Result<()> {
    let mut buf = vec![0u8; CHUNK.min(usize::try_from(len).unwrap_or(CHUNK)).max(1)];
    let mut done = 0u64;
    while done < len {
        let n = buf.len().min(usize::try_from(len - done).unwrap_or(usize::MAX));
        file.read_exact_at(&mut buf[..n], from + done).at(path)?;
        file.write_all_at(&buf[..n], to + done).at(path)?;
        done += n as u64;
    }
    Ok(())
}

/// Writes `len` zeros at `at`, in chunks.
fn zero_range(file: &File, path: &Path, at: u64, len: u64) -> Result<()> {
    let zeros = vec![0u8; CHUNK.min(usize::try_from(len).unwrap_or(CHUNK)).max(1)];
    let mut done = 0u64;
    while done < len {
        let n = zeros.len().min(usize::try_from(len - done).unwrap_or(usize::MAX));
        file.write_all_at(&zeros[..n], at + done).at(path)?;
        done += n as u64;
    }
    Ok(())
}

/// Why a journal does not belong to the file it was found for, if it does not.
fn foreign(j: &Journal, file: &File, path: &Path) -> Result<Option<String>> {
    let meta = file.metadata().at(path)?;
    if (meta.dev(), meta.ino()) != (j.dev, j.ino) {
        return Ok(Some(format!("it was written for another file (device {:x}, inode {})", j.dev, j.ino)));
    }
    let len = meta.len();
    if len < j.original_len || len > j.original_len.max(j.final_len) {
        return Ok(Some(format!("it was written for a file of {} bytes (growing to {}), and the file is {len} bytes", j.original_len, j.final_len)));
    }
    for &(at, h) in &j.fingerprint {
        if hash_range(file, path, at, BLOCK_U64.min(j.original_len - at))? != h {
            return Ok(Some(format!("the file's bytes at {at}, which the change never writes, are not the ones it was written for")));
        }
    }
    Ok(None)
}

/// Finishes or undoes the change journaled in `jp`, on the archive open read-write as `file` and
/// locked by the caller. With `finish` false, a complete change is undone too (its result did
/// not read back as planned).
pub fn recover_with(jp: &Path, path: &Path, file: &File, finish: bool) -> Result<Recovery> {
    let keep = |why: String| Error::Recovery { path: path.to_path_buf(), journal: jp.to_path_buf(), msg: why };
    let data = std::fs::read(jp).at(jp)?;
    if crate::ops::shift::is_shift_journal(&data) {
        // A shift can only be finished: see [`crate::ops::shift`].
        return crate::ops::shift::recover(jp, path, file, &data);
    }
    let j = Journal::decode(&data).ok_or_else(|| keep("the journal is damaged or from another version of tarfs; the archive was not touched".into()))?;
    if let Some(why) = foreign(&j, file, path)? {
        return Err(keep(format!(
            "the journal does not belong to this file: {why}. The archive was not touched; if it was replaced (a backup restored over it), delete the journal"
        )));
    }
    let len = file.metadata().at(path)?.len();
    if finish && complete(&j, file, path, len)? {
        file.sync_all().at(path)?;
        remove(jp, file)?;
        return Ok(Recovery::Finished);
    }
    let todo = to_restore(&j, file, path, len).map_err(|e| match e {
        Restore::Unavailable(c) => keep(format!("the original bytes at {}..{} cannot be restored: their saved copy does not match; the archive was not touched", c.at, c.at + c.len)),
        Restore::Io(e) => e,
    })?;
    restore(file, path, &todo)?;
    if len != j.original_len {
        file.set_len(j.original_len).at(path)?;
        file.sync_all().at(path)?;
    }
    for c in &todo {
        if hash_range(file, path, c.at, c.len)? != c.hash {
            return Err(keep(format!("the restored bytes at {} do not read back as the original", c.at)));
        }
    }
    remove(jp, file)?;
    Ok(Recovery::RolledBack)
}

/// Whether every write of `j` is in place in `file`, now `len` bytes long, at its final length.
fn complete(j: &Journal, file: &File, path: &Path, len: u64) -> Result<bool> {
    if len != j.final_len {
        return Ok(false);
    }
    for w in &j.writes {
        if w.at + w.len > len || hash_range(file, path, w.at, w.len)? != w.hash {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Why the covered ranges of a rollback could not be listed.
enum Restore<'a> {
    /// The source of this range does not hold its original bytes.
    Unavailable(&'a Covered),
    /// Reading the archive failed.
    Io(Error),
}

impl From<Error> for Restore<'_> {
    fn from(e: Error) -> Self {
        Restore::Io(e)
    }
}

/// The covered ranges of `j` that do not hold their original bytes in `file` (`len` bytes
/// long), each with its source checked before anything is written.
fn to_restore<'a>(j: &'a Journal, file: &File, path: &Path, len: u64) -> std::result::Result<Vec<&'a Covered>, Restore<'a>> {
    let mut todo = Vec::new();
    for c in &j.covered {
        if c.at + c.len <= len && hash_range(file, path, c.at, c.len)? == c.hash {
            continue;
        }
        let ok = match &c.source {
            Source::Saved(b) => hash(b) == c.hash,
            Source::Zeros => hash(&vec![0u8; usize::try_from(c.len).unwrap_or(0)]) == c.hash,
            Source::Copy(at) => at + c.len <= len && hash_range(file, path, *at, c.len)? == c.hash,
        };
        if !ok {
            return Err(Restore::Unavailable(c));
        }
        todo.push(c);
    }
    Ok(todo)
}

/// Writes the original bytes of `todo` back, durably, in two steps with a barrier between: the
/// ranges restored from the change's copy, then the others. The others include the old end of
/// the archive, which is where the copy lies: were they written in the same batch, a power cut
/// could keep their zeros over the copy and lose the restores from it, and the displaced
/// members would be gone for good. After the barrier the copy is no longer needed: every range
/// it restored reads as the original, so a later recovery skips them.
fn restore(file: &File, path: &Path, todo: &[&Covered]) -> Result<()> {
    let (copied, others): (Vec<&Covered>, Vec<&Covered>) = todo.iter().partition(|c| matches!(c.source, Source::Copy(_)));
    for c in &copied {
        if let Source::Copy(from) = c.source {
            copy_range(file, path, from, c.at, c.len)?;
        }
    }
    if !copied.is_empty() {
        file.sync_data().at(path)?;
        crate::ops::crash::point("rollback-copy-restored");
    }
    for c in &others {
        match &c.source {
            Source::Saved(b) => file.write_all_at(b, c.at).at(path)?,
            Source::Zeros => zero_range(file, path, c.at, c.len)?,
            Source::Copy(_) => {} // restored above
        }
    }
    file.sync_all().at(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_round_trip_and_damage() {
        let j = Journal {
            op: "csv".into(),
            dev: 3,
            ino: 99,
            original_len: 10240,
            final_len: 20480,
            fingerprint: vec![(0, 5), (512, 6)],
            writes: vec![Written { at: 10240, len: 512, hash: 1 }],
            covered: vec![
                Covered { at: 1024, len: 3, hash: 2, source: Source::Saved(vec![1, 2, 3]) },
                Covered { at: 4096, len: 512, hash: 3, source: Source::Zeros },
                Covered { at: 0, len: 1024, hash: 4, source: Source::Copy(10240) },
            ],
        };
        let mut e = j.encode();
        assert_eq!(Journal::decode(&e), Some(j));
        e[20] ^= 1;
        assert_eq!(Journal::decode(&e), None);
        assert_eq!(Journal::decode(b"short"), None);
    }
}

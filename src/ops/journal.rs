//! The write-ahead journal of an in-place change, and recovery from it.
//!
//! Before an in-place change writes to an archive, it records in `.NAME.tarfs-journal` (beside
//! the archive, written atomically and fsynced) everything needed to undo it: the archive's
//! original length, and the original bytes of every range it will overwrite. It also records the
//! block whose presence proves the change complete. The journal is removed once the change is
//! fsynced.
//!
//! [`recover`] finds a leftover journal and either finishes the change (the proof block is in
//! place: only an fsync and the journal's removal were missing) or restores the original archive
//! byte for byte. Writers run it under the archive's lock before they start; `tarfs recover` runs
//! it on request.
//!
//! Layout: `TFSJ`, version 1, the operation's name (NUL-padded to 16 bytes), the original length,
//! the proof offset and block, the saved ranges (offset, length, bytes), the moved ranges
//! (original offset, copy offset, length, FNV-1a 64 of the bytes), and an FNV-1a 64 checksum of
//! everything before it. All integers are big-endian `u64`.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::format::header::BLOCK;
use crate::ops::atomic::write_atomic;

/// What an interrupted change needs, to be finished or undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    /// The operation (`csv`, `embed`).
    pub op: String,
    /// The archive's length before the change.
    pub original_len: u64,
    /// Offset of the block whose presence proves the change complete.
    pub proof_at: u64,
    /// That block.
    pub proof: [u8; BLOCK],
    /// Original bytes of ranges the change overwrites: `(offset, bytes)`.
    pub saved: Vec<(u64, Vec<u8>)>,
    /// Ranges whose original bytes the change copies elsewhere in the archive before it overwrites
    /// them, so the journal need not hold them.
    pub moved: Vec<Moved>,
}

/// Original bytes that were copied within the archive before being overwritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    /// Where the original bytes were.
    pub to: u64,
    /// Where their copy is.
    pub copy_at: u64,
    /// How many bytes.
    pub len: u64,
    /// FNV-1a 64 of the original bytes, to tell a complete copy from an interrupted one.
    pub checksum: u64,
}

/// What recovery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// The change had completed; the journal was removed.
    Finished,
    /// The change was undone; the archive is byte-identical to the original.
    RolledBack,
}

/// The journal path of `archive`.
pub fn journal_path(archive: &Path) -> PathBuf {
    let name = archive.file_name().unwrap_or_default().to_string_lossy();
    archive.with_file_name(format!(".{name}.tarfs-journal"))
}

/// FNV-1a 64.
pub fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

impl Journal {
    /// Encodes the journal.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = b"TFSJ\x01".to_vec();
        let mut op = [0u8; 16];
        op[..self.op.len().min(16)].copy_from_slice(&self.op.as_bytes()[..self.op.len().min(16)]);
        b.extend_from_slice(&op);
        b.extend_from_slice(&self.original_len.to_be_bytes());
        b.extend_from_slice(&self.proof_at.to_be_bytes());
        b.extend_from_slice(&self.proof);
        b.extend_from_slice(&(self.saved.len() as u64).to_be_bytes());
        for (at, bytes) in &self.saved {
            b.extend_from_slice(&at.to_be_bytes());
            b.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            b.extend_from_slice(bytes);
        }
        b.extend_from_slice(&(self.moved.len() as u64).to_be_bytes());
        for m in &self.moved {
            for v in [m.to, m.copy_at, m.len, m.checksum] {
                b.extend_from_slice(&v.to_be_bytes());
            }
        }
        let sum = fnv(&b);
        b.extend_from_slice(&sum.to_be_bytes());
        b
    }

    /// Decodes a journal; `None` if it is not one or is damaged.
    pub fn decode(data: &[u8]) -> Option<Journal> {
        let (body, sum) = data.split_at_checked(data.len().checked_sub(8)?)?;
        if fnv(body) != u64::from_be_bytes(sum.try_into().ok()?) || !body.starts_with(b"TFSJ\x01") {
            return None;
        }
        let mut at = 5;
        let mut take = |n: usize| -> Option<&[u8]> {
            let s = body.get(at..at + n)?;
            at += n;
            Some(s)
        };
        let op = String::from_utf8_lossy(take(16)?).trim_end_matches('\0').to_string();
        let u = |s: &[u8]| u64::from_be_bytes(s.try_into().expect("8 bytes"));
        let original_len = u(take(8)?);
        let proof_at = u(take(8)?);
        let proof: [u8; BLOCK] = take(BLOCK)?.try_into().ok()?;
        let n = u(take(8)?);
        let mut saved = Vec::new();
        for _ in 0..n {
            let off = u(take(8)?);
            let len = usize::try_from(u(take(8)?)).ok()?;
            saved.push((off, take(len)?.to_vec()));
        }
        let n = u(take(8)?);
        let mut moved = Vec::new();
        for _ in 0..n {
            let (to, copy_at, len, checksum) = (u(take(8)?), u(take(8)?), u(take(8)?), u(take(8)?));
            moved.push(Moved { to, copy_at, len, checksum });
        }
        Some(Journal { op, original_len, proof_at, proof, saved, moved })
    }

    /// Writes the journal beside `archive`, atomically and durably.
    pub fn write(&self, archive: &Path) -> Result<()> {
        let data = self.encode();
        write_atomic(&journal_path(archive), |w| std::io::Write::write_all(w, &data).at(archive))
    }
}

/// Removes the journal of `archive` and fsyncs its directory.
pub fn remove(archive: &Path) -> Result<()> {
    let p = journal_path(archive);
    std::fs::remove_file(&p).at(&p)?;
    let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Refuses to plan a change while an interrupted one is pending.
pub fn refuse_pending(archive: &Path) -> Result<()> {
    if journal_path(archive).exists() {
        return Err(Error::Refused { path: archive.to_path_buf(), msg: "an interrupted change is pending; run `tarfs recover` first".into() });
    }
    Ok(())
}

/// Finishes or undoes an interrupted change of `archive`, if a journal is left. The caller holds
/// the archive's lock.
pub fn recover(archive: &Path) -> Result<Option<Recovery>> {
    let jp = journal_path(archive);
    let data = match std::fs::read(&jp) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).at(&jp),
    };
    let j = Journal::decode(&data).ok_or_else(|| Error::Refused {
        path: archive.to_path_buf(),
        msg: format!("the journal {} is damaged; it needs a look by hand", jp.display()),
    })?;
    let file = OpenOptions::new().read(true).write(true).open(archive).at(archive)?;
    let mut block = [0u8; BLOCK];
    let complete = file.read_exact_at(&mut block, j.proof_at).is_ok() && block == j.proof;
    let outcome = if complete {
        Recovery::Finished
    } else {
        // Copies are fsynced before anything they protect is overwritten, so an incomplete copy
        // means its original is intact.
        for m in &j.moved {
            let mut copy = vec![0u8; usize::try_from(m.len).map_err(|_| Error::Invalid("journal range too large".into()))?];
            if file.read_exact_at(&mut copy, m.copy_at).is_ok() && fnv(&copy) == m.checksum {
                file.write_all_at(&copy, m.to).at(archive)?;
            }
        }
        for (at, bytes) in &j.saved {
            file.write_all_at(bytes, *at).at(archive)?;
        }
        file.set_len(j.original_len).at(archive)?;
        Recovery::RolledBack
    };
    file.sync_all().at(archive)?;
    remove(archive)?;
    Ok(Some(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_round_trip_and_damage() {
        let j = Journal {
            op: "csv".into(),
            original_len: 10240,
            proof_at: 1024,
            proof: [7; BLOCK],
            saved: vec![(1024, vec![1, 2, 3]), (4096, vec![])],
            moved: vec![Moved { to: 0, copy_at: 4096, len: 1024, checksum: 99 }],
        };
        let mut e = j.encode();
        assert_eq!(Journal::decode(&e), Some(j));
        e[20] ^= 1;
        assert_eq!(Journal::decode(&e), None);
        assert_eq!(Journal::decode(b"short"), None);
    }
}

//! Where a member's logical contents lie, for reading any part of it (a mount's reads).

use super::*;

impl<'a> Reader<'a> {
    /// [`Reader::layout_at`] the position of member `e`, which must still hold `e` (the same
    /// [`fingerprint`]): else the typed mismatch, never another member's layout.
    pub fn layout_of(&self, e: &Entry<'_>) -> Result<Layout> {
        let layout = self.layout_at(e.position)?;
        // After pax globals, the path (and other attributes) may be theirs, which the chain
        // read alone does not have: its header blocks, where its data starts, are compared.
        let same = match e.has_globals {
            true => layout.chain == chain_fingerprint(e, 0),
            false => layout.fingerprint == fingerprint(e, 0),
        };
        if !same {
            return Err(self.mismatch(None, e.position, &e.path(), "the header there is another member's"));
        }
        Ok(layout)
    }

    /// Where the logical contents of the member whose header chain starts at `position` are,
    /// for reading any part of it (a mount's reads): its size, and its data regions as
    /// `(logical offset, length, offset in the archive's data)`, holes between them reading as
    /// zeros. The header chain is read again at `position` (from the archive, or through the
    /// byte source of a compressed one), so a position that no longer holds a member is an
    /// error; its path and size are given for the caller to compare.
    pub fn layout_at(&self, position: u64) -> Result<Layout> {
        let path = self.archive.path();
        let of = |found: &Entry<'_>, data_offset: u64| -> Result<Layout> {
            let x = Expander::new(found, &self.opts, path)?;
            if x.stored() > found.stored_size {
                return Err(Error::Data { path: path.to_path_buf(), offset: found.header_offset, problem: DataProblem::SparseShort { needs: x.stored(), stores: found.stored_size } });
            }
            let mut at = data_offset;
            let regions = x
                .regions()
                .iter()
                .map(|&(logical, len)| {
                    let r = (logical, len, at);
                    at += len;
                    r
                })
                .collect();
            Ok(Layout { path: found.path().into_owned(), size: x.size(), typeflag: found.typeflag, regions, fingerprint: fingerprint(found, data_offset.saturating_sub(found.data_offset)), chain: chain_fingerprint(found, data_offset.saturating_sub(found.data_offset)) })
        };
        // Through the byte source, plain and compressed alike: the chain, and two blocks after
        // it, as the scanner wants before it trusts a header.
        let io_in = |source: std::io::Error| Error::Io { path: path.to_path_buf(), source };
        let mut want = 64 * BLOCK;
        loop {
            let head = self.source.read_at(position, want).map_err(io_in)?;
            // A window cut short by the end of the data is all there is.
            let mut sc = Scanner::window(&head, 0, self.opts, head.len() == want, &[]);
            match sc.step() {
                Ok(Step::Entry(found)) if found.position == 0 => return of(&found, position + found.data_offset),
                // A chain longer than the window (long pax records): a larger one.
                Ok(Step::NeedData { .. }) | Err(_) if head.len() == want && want < (64 << 20) => want *= 8,
                Ok(Step::NeedData { .. }) => return Err(self.mismatch(None, position, b"", "no member there (more input needed)")),
                Err(err) => return Err(self.mismatch(None, position, b"", &format!("no member there ({})", err.kind))),
                _ => return Err(self.mismatch(None, position, b"", "no member there")),
            }
        }
    }
}

/// Where a member's logical contents are (see [`Reader::layout_at`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The member's path, from its header chain.
    pub path: Vec<u8>,
    /// Its logical size.
    pub size: u64,
    /// Its effective typeflag.
    pub typeflag: u8,
    /// `(logical offset, length, offset in the archive's data)`, in order.
    pub regions: Vec<(u64, u64, u64)>,
    /// The [`fingerprint`] of the member found there.
    pub fingerprint: u64,
    /// Its [`chain_fingerprint`].
    pub chain: u64,
}

/// The [`fingerprint`] of member `e` without what pax global headers can set (path, link,
/// owner, time): its type, mode, sizes and where its data starts, which a chain read without the
/// globals before it still has.
pub fn chain_fingerprint(e: &Entry<'_>, base: u64) -> u64 {
    place_hash(e, base, false)
}

/// The xxh3 of what every form of index records of member `e`: its type, mode, sizes and where
/// its data starts (`base` added), and with `all`, its path, link target, owner and time too.
fn place_hash(e: &Entry<'_>, base: u64, all: bool) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&[e.typeflag]);
    for v in [u64::from(e.mode), e.size, e.stored_size, e.data_offset.saturating_add(base), e.device.0, e.device.1] {
        h.update(&v.to_le_bytes());
    }
    if all {
        for part in [&e.path()[..], e.link(), e.uname(), e.gname()] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part);
        }
        for v in [e.uid, e.gid, e.mtime as u64] {
            h.update(&v.to_le_bytes());
        }
    }
    h.digest()
}

/// What identifies member `e` at its place, as every form of index records it and a listing
/// shows it: its type, mode, sizes, path, link target, owner, time and where its data starts
/// (`base` added to its data offset). A reader compares the fingerprint of the member an index
/// lists with the one it finds there before handing out data (`cat`, `extract`, a mount's
/// open): two same-size members that swapped names, or a flipped position, are then an error
/// (EIO in a mount), never another file's bytes.
pub fn fingerprint(e: &Entry<'_>, base: u64) -> u64 {
    place_hash(e, base, true)
}

impl Layout {
    /// The bytes `[offset, offset + len)` of the contents, from `reader`.
    pub fn read(&self, reader: &Reader<'_>, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let end = offset.saturating_add(len as u64).min(self.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut out = vec![0u8; (end - offset) as usize];
        let first = self.regions.partition_point(|r| r.0 + r.1 <= offset);
        for &(logical, n, at) in &self.regions[first..] {
            if logical >= end {
                break;
            }
            let from = logical.max(offset);
            let to = (logical + n).min(end);
            if from >= to {
                continue;
            }
            let bytes = reader.bytes_at(at + (from - logical), (to - from) as usize)?;
            if (bytes.len() as u64) < to - from {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the archive ends inside the member's data"));
            }
            out[(from - offset) as usize..(to - offset) as usize].copy_from_slice(&bytes[..(to - from) as usize]);
        }
        Ok(out)
    }
}

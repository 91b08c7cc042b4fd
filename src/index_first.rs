//! [`IndexFirstBuilder`]: a new archive whose first member is its `.tarfs` index, written from
//! the members as they are added (`tarfs create`, and the library's users).
//!
//! The index is v2.0 by default ([`IndexFormat`]; v1.0 with its extension on request), each
//! member recorded from what was written for it, never read back. Member digests (issue #36)
//! are computed as the data passes to the spool, unless turned off: the data is read anyway, so
//! they cost only the hashing, as for a compressed archive's index.

use std::io::{self, Read, Write};

use crate::builder::{Builder, MemberOptions, Placed, Spool};
use crate::digest::Hasher;
use crate::format::digests::Table;
use crate::format::ext::{ExtSink, Meta};
use crate::format::header::{unsigned_checksum, HeaderView, UstarFields, BLOCK, BLOCK_U64};
use crate::format::tarfs::{self, IndexInfo};
use crate::format::v2;
use crate::ops::index::IndexFormat;

/// Builds a `.tarfs` archive: the index as the first member, then every member in the order
/// added. Members are spooled (in memory up to a threshold, then to a temporary file) until
/// [`IndexFirstBuilder::finish`] knows the index. GNU tar, bsdtar and Python read the result as
/// an ordinary archive whose first member is `.tarfs`.
///
/// ```
/// use tarfs::builder::IndexFirstBuilder;
///
/// let mut b = IndexFirstBuilder::new();
/// b.add("a.txt", b"alpha").unwrap();
/// b.add("b.txt", b"beta").unwrap();
/// let mut tar = Vec::new();
/// b.finish(&mut tar).unwrap();
/// assert_eq!(&tar[..6], b".tarfs");
/// ```
pub struct IndexFirstBuilder {
    body: Builder<Spool>,
    index: Index,
    /// The member digests, unless turned off.
    digests: Option<Table>,
}

/// The index as it grows.
enum Index {
    V1 { entries: Vec<u8>, ext: ExtSink },
    V2(v2::Builder),
}

impl Default for IndexFirstBuilder {
    fn default() -> Self {
        IndexFirstBuilder::new()
    }
}

impl IndexFirstBuilder {
    /// A builder that keeps up to 64 MiB of members in memory before spooling to a temporary file.
    pub fn new() -> Self {
        IndexFirstBuilder::with_threshold(64 << 20)
    }

    /// A builder with another spooling threshold, in bytes.
    pub fn with_threshold(threshold: usize) -> Self {
        IndexFirstBuilder { body: Builder::new(Spool::new(threshold)), index: Index::V2(v2::Builder::default()), digests: Some(Table::default()) }
    }

    /// Writes the index as `format` (v2.0 by default). Call it before adding members.
    pub fn format(mut self, format: IndexFormat) -> Self {
        self.index = match format {
            IndexFormat::V1 => Index::V1 { entries: Vec::new(), ext: ExtSink::default() },
            IndexFormat::V2 => Index::V2(v2::Builder::default()),
        };
        self
    }

    /// Records member digests (the default) or not. Call it before adding members.
    pub fn digests(mut self, on: bool) -> Self {
        self.digests = on.then(Table::default);
        self
    }

    /// Adds a regular file.
    pub fn add(&mut self, name: impl AsRef<[u8]>, data: &[u8]) -> io::Result<()> {
        self.add_with(name, data, &MemberOptions::default())
    }

    /// Adds a member with header options.
    pub fn add_with(&mut self, name: impl AsRef<[u8]>, data: &[u8], opts: &MemberOptions) -> io::Result<()> {
        let mut reader = data;
        self.add_stream(name, data.len() as u64, &mut reader, opts)
    }

    /// Adds a member whose data is streamed from `data`.
    pub fn add_stream(&mut self, name: impl AsRef<[u8]>, size: u64, data: &mut dyn Read, opts: &MemberOptions) -> io::Result<()> {
        let mut tee = Tee { inner: data, hasher: self.digests.as_ref().map(|_| Hasher::new(size)) };
        self.body.add_stream(name, size, &mut tee, opts)?;
        let hasher = tee.hasher;
        self.index_last(opts, hasher)
    }

    /// Adds a file that may be changing, as [`Builder::add_file`] does: `size` bytes, the rest
    /// zeros if `data` ends early. Returns the bytes read from `data`.
    pub fn add_file(&mut self, name: impl AsRef<[u8]>, size: u64, data: &mut dyn Read, opts: &MemberOptions) -> io::Result<u64> {
        let mut tee = Tee { inner: data, hasher: self.digests.as_ref().map(|_| Hasher::new(size)) };
        let read = self.body.add_file(name, size, &mut tee, opts)?;
        let mut hasher = tee.hasher;
        if let Some(h) = hasher.as_mut() {
            // The zeros written where the file ended early.
            crate::ops::digests::zeros(h, size.saturating_sub(read));
        }
        self.index_last(opts, hasher)?;
        Ok(read)
    }

    /// Records the member just written (with the header options `opts`, and the hasher its data
    /// went through) in the index.
    fn index_last(&mut self, opts: &MemberOptions, hasher: Option<Hasher>) -> io::Result<()> {
        let p = self.body.placed().last().expect("a member was just written").clone();
        if let (Some(t), Some(h)) = (self.digests.as_mut(), hasher) {
            t.push(p.position, &h.finish());
        }
        let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
        let chain = (p.data_offset - p.position) / BLOCK_U64;
        let header = &self.body.last_header;
        match &mut self.index {
            Index::V2(b) => b.push(&v2_member(&p, opts, chain, header)).map_err(|e| invalid(e.to_string())),
            Index::V1 { entries, ext } => {
                let entry = tarfs::encode_entry(header, p.position / BLOCK_U64, chain, chain == 1).map_err(|e| invalid(e.to_string()))?;
                let over = self.body.last_over.unwrap_or_default();
                ext.push(&entry, v1_meta(&p, opts, chain, &over).as_ref());
                entries.extend_from_slice(&entry);
                Ok(())
            }
        }
    }

    /// Writes the archive to `out`: the `.tarfs` member, then the members, then the end marker.
    pub fn finish(self, out: &mut dyn Write) -> io::Result<()> {
        let end_offset = self.body.offset();
        let digests = self.digests.map(|t| t.encode());
        let mut spool = self.body.finish()?;
        let mut info = IndexInfo { archive_len: end_offset + 2 * BLOCK_U64, end_offset, ..IndexInfo::default() };
        let index = match self.index {
            Index::V2(mut b) => {
                info.entries = b.len() as u64;
                b.digests(digests);
                // Stored plain, as every embedded index.
                let body = b.seal(false);
                info.ext_len = body.len();
                let header = tarfs::encode_header_as(&info, b"v2.0");
                [&header[..], &body.finish(&header)].concat()
            }
            Index::V1 { entries, mut ext } => {
                info.entries = (entries.len() / BLOCK) as u64;
                ext.digests(digests);
                ext.plan(&mut info);
                let header = tarfs::encode_header(&info);
                [&header[..], &entries, &ext.finish(&header)].concat()
            }
        };
        let header = UstarFields { path: tarfs::MEMBER_NAME.as_bytes(), mode: 0o644, size: index.len() as u64, typeflag: b'0', ..Default::default() }.encode();
        out.write_all(&header)?;
        out.write_all(&index)?;
        spool.copy_to(out)?;
        out.flush()
    }
}

/// A member's v2 record, from what was written for it (`chain` blocks of header chain).
fn v2_member<'a>(p: &'a Placed, opts: &'a MemberOptions, chain: u64, header: &[u8; BLOCK]) -> v2::Member<'a> {
    let owner = v2::Owner { uid: opts.uid, gid: opts.gid, uname: opts.uname.as_bytes(), gname: opts.gname.as_bytes() };
    // The mode and the effective typeflag as the scanner decodes them from the header.
    let h = HeaderView::new(header);
    let typeflag = match h.typeflag() {
        0 if h.name().ends_with(b"/") => b'5',
        t => t,
    };
    v2::Member {
        path: &p.name,
        link: &opts.link,
        position: p.position,
        main_blocks: chain - 1,
        chain_blocks: chain,
        size: p.size,
        // Only regular files carry data (the builder refuses any other with some).
        stored_size: p.size,
        mtime: (opts.mtime, 0),
        mode: h.mode().unwrap_or(opts.mode),
        owner,
        header_sum: unsigned_checksum(header),
        typeflag,
        flags: 0,
        device: (0, 0),
    }
}

/// A member's v1 extension record: what a scan would find of it (the pax header holds what
/// overflowed, `over`).
fn v1_meta<'a>(p: &'a Placed, opts: &'a MemberOptions, chain: u64, over: &crate::format::header::Overflow) -> Option<Meta<'a>> {
    let chain_blocks = u32::try_from(chain).ok()?;
    Some(Meta {
        size: p.size,
        stored_size: p.size,
        mtime: opts.mtime,
        mtime_nsec: 0,
        uid: opts.uid,
        gid: opts.gid,
        main_blocks: chain_blocks.saturating_sub(1),
        chain_blocks,
        flags: 0,
        path: over.path.then_some(p.name.as_slice()),
        link: over.link.then_some(opts.link.as_slice()),
        uname: over.uname.then_some(opts.uname.as_bytes()),
        gname: over.gname.then_some(opts.gname.as_bytes()),
    })
}

/// A reader whose bytes also go to a hasher.
struct Tee<'r> {
    inner: &'r mut dyn Read,
    hasher: Option<Hasher>,
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = self.hasher.as_mut() {
            h.write_all(&buf[..n])?;
        }
        Ok(n)
    }
}

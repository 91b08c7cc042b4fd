//! Building tar archives from data in memory.
//!
//! [`Builder`] writes POSIX ustar members to any [`Write`], with a pax extended header in front of
//! a member when its path, link, size, ids, time or owner names do not fit ustar's fields. Data is
//! padded to a whole block (with no extra block when the size is already a multiple of 512), and
//! [`Builder::finish`] writes the end-of-archive marker.
//!
//! ```
//! use tarfs::builder::{Builder, MemberOptions};
//!
//! let mut b = Builder::new(Vec::new());
//! b.add("hello.txt", b"hello\n").unwrap();
//! b.add_with("bin/run.sh", b"#!/bin/sh\n", &MemberOptions { mode: 0o755, ..Default::default() }).unwrap();
//! let tar = b.finish().unwrap();
//! assert_eq!(tar.len(), 512 * 6);
//! ```
//!
//! The seed's use case: a program cuts a large input into thousands of named pieces, writes them
//! straight into one archive with a CSV index every so often, and a tool later pulls one piece out
//! through the newest index, found by stepping back from the end of the archive:
//!
//! ```
//! use tarfs::builder::Builder;
//! use tarfs::format::csv;
//! use tarfs::{ScanOptions, Scanner};
//!
//! // Segment a 1 MB input into 4,000 pieces, with an index after every 1,000.
//! let input: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
//! let mut b = Builder::new(Vec::new());
//! for (n, piece) in input.chunks(250).enumerate() {
//!     b.add(format!("segments/{n:05}.bin"), piece).unwrap();
//!     if n % 1000 == 999 {
//!         b.add_index().unwrap();
//!     }
//! }
//! let tar = b.finish().unwrap();
//!
//! // Read piece 3210 back: the newest index is the last `.tarindex_N.csv` header from the end.
//! let at = csv::candidates(&tar).next().expect("an index") as usize;
//! let index = Scanner::at(&tar, at as u64, ScanOptions::default()).next().unwrap().unwrap();
//! assert_eq!(index.path().as_ref(), b".tarindex_3.csv");
//! let data = &tar[index.data_offset as usize..][..index.stored_size as usize];
//! let rows = csv::decode(data).unwrap();
//! let row = rows.iter().find(|r| r.name == b"segments/03210.bin").unwrap();
//! let start = (row.start_block * 512) as usize;
//! assert_eq!(&tar[start..start + row.size as usize], &input[3210 * 250..3211 * 250]);
//! ```

use std::io::{self, Read, Seek, SeekFrom, Write};

pub use crate::index_first::IndexFirstBuilder;

use crate::format::csv::{self, Row};
use crate::format::header::{round_up, UstarFields, BLOCK, BLOCK_U64};
use crate::format::pax::push_record;

/// Header fields of one member beyond its name and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberOptions {
    /// Permission bits (default 0o644).
    pub mode: u32,
    /// Modification time, seconds since the epoch (default 0).
    pub mtime: i64,
    /// Owner id.
    pub uid: u64,
    /// Group id.
    pub gid: u64,
    /// Owner name.
    pub uname: String,
    /// Group name.
    pub gname: String,
    /// Typeflag (default `b'0'`, a regular file; `b'5'` directory, `b'2'` symlink, `b'1'` hard
    /// link). Only regular files carry data.
    pub typeflag: u8,
    /// Link target, for links.
    pub link: Vec<u8>,
}

impl Default for MemberOptions {
    fn default() -> Self {
        MemberOptions { mode: 0o644, mtime: 0, uid: 0, gid: 0, uname: String::new(), gname: String::new(), typeflag: b'0', link: Vec::new() }
    }
}

/// Where one member landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// Full path.
    pub name: Vec<u8>,
    /// Byte offset of the first block of its header chain.
    pub position: u64,
    /// Byte offset of its data.
    pub data_offset: u64,
    /// Data size in bytes.
    pub size: u64,
}

/// Writes a tar archive member by member.
pub struct Builder<W: Write> {
    out: W,
    offset: u64,
    placed: Vec<Placed>,
    indexes: u32,
    pub(crate) last_header: [u8; BLOCK],
    /// Which fields of the last member went into a pax header.
    pub(crate) last_over: Option<crate::format::header::Overflow>,
}

impl<W: Write> Builder<W> {
    /// A builder writing to `out`.
    pub fn new(out: W) -> Self {
        Builder { out, offset: 0, placed: Vec::new(), indexes: 0, last_header: [0; BLOCK], last_over: None }
    }

    /// Adds a regular file with default options.
    pub fn add(&mut self, name: impl AsRef<[u8]>, data: &[u8]) -> io::Result<&Placed> {
        self.add_with(name, data, &MemberOptions::default())
    }

    /// Adds a member with the given header options. Members other than regular files must have
    /// empty data.
    pub fn add_with(&mut self, name: impl AsRef<[u8]>, data: &[u8], opts: &MemberOptions) -> io::Result<&Placed> {
        let mut reader = data;
        self.add_stream(name, data.len() as u64, &mut reader, opts)
    }

    /// Adds a member whose `size` bytes of data are read from `data` (streamed, never held whole
    /// in memory). Fails if `data` ends early.
    pub fn add_stream(&mut self, name: impl AsRef<[u8]>, size: u64, data: &mut dyn Read, opts: &MemberOptions) -> io::Result<&Placed> {
        self.add_member(name.as_ref(), size, data, opts, false)?;
        Ok(self.placed.last().expect("just pushed"))
    }

    /// Adds a file's data as GNU tar does when the file may be changing: exactly `size` bytes
    /// (the size a `stat` gave) are stored, whatever `data` holds now. Bytes past `size` are
    /// left out; if `data` ends early, the rest is zeros. Returns how many bytes were read from
    /// `data` (less than `size` when it ended early), so that the caller can warn.
    pub fn add_file(&mut self, name: impl AsRef<[u8]>, size: u64, data: &mut dyn Read, opts: &MemberOptions) -> io::Result<u64> {
        self.add_member(name.as_ref(), size, data, opts, true)
    }

    /// Writes one member: its pax header when fields overflow, its header, `size` bytes of
    /// data from `data`, and padding. When `data` ends early, fails, or (`zero_fill`) writes
    /// zeros in place of the missing bytes. Returns the bytes read from `data`.
    fn add_member(&mut self, name: &[u8], size: u64, data: &mut dyn Read, opts: &MemberOptions, zero_fill: bool) -> io::Result<u64> {
        if name.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty member name"));
        }
        if size != 0 && !matches!(opts.typeflag, b'0' | 0 | b'7') {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "only regular files carry data"));
        }
        let fields = UstarFields {
            path: name,
            link: &opts.link,
            mode: opts.mode,
            uid: opts.uid,
            gid: opts.gid,
            size,
            mtime: opts.mtime,
            typeflag: opts.typeflag,
            uname: opts.uname.as_bytes(),
            gname: opts.gname.as_bytes(),
        };
        let position = self.offset;
        let over = fields.overflow();
        if over.any() {
            let pax = pax_records(name, size, opts, &over);
            let pax_name = pax_header_name(name);
            let xh = UstarFields { path: &pax_name, mode: 0o644, size: pax.len() as u64, typeflag: b'x', ..Default::default() }.encode();
            self.write_block(&xh)?;
            self.write_data(&pax)?;
        }
        let header = fields.encode();
        self.write_block(&header)?;
        let data_offset = self.offset;
        let copied = io::copy(&mut data.take(size), &mut self.out)?;
        if copied != size {
            if !zero_fill {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("member data ended after {copied} of {size} bytes")));
            }
            io::copy(&mut io::repeat(0).take(size - copied), &mut self.out)?;
        }
        self.pad(size)?;
        self.placed.push(Placed { name: name.to_vec(), position, data_offset, size });
        self.last_header = header;
        self.last_over = over.any().then_some(over);
        Ok(copied)
    }

    /// Adds a CSV index member, `.tarindex_N.csv`, listing every member written so far (earlier
    /// indexes included), one row each: name, size, data block, data blocks. It can be called any
    /// number of times; N counts up from 0. See [`crate::format::csv`].
    pub fn add_index(&mut self) -> io::Result<&Placed> {
        let rows: Vec<Row> = self.placed.iter().map(|p| Row::new(&p.name, p.size, p.data_offset)).collect();
        let name = csv::member_name(self.indexes);
        self.indexes += 1;
        self.add(name, &csv::encode(&rows))
    }

    /// Members written so far, in order.
    pub fn placed(&self) -> &[Placed] {
        &self.placed
    }

    /// Bytes written so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Writes the end-of-archive marker (two zero blocks) and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn write_block(&mut self, b: &[u8; BLOCK]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.offset += BLOCK_U64;
        Ok(())
    }

    /// Writes data and pads it to a block boundary (no padding when already aligned).
    fn write_data(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)?;
        self.pad(data.len() as u64)
    }

    /// Pads `len` bytes of data just written to a block boundary, and counts them.
    fn pad(&mut self, len: u64) -> io::Result<()> {
        let padded = round_up(len).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "size out of range"))?;
        self.out.write_all(&[0u8; BLOCK][..(padded - len) as usize])?;
        self.offset += padded;
        Ok(())
    }
}

/// Where the body of an index-first archive waits: in memory up to a threshold, then in an
/// anonymous temporary file.
pub struct Spool {
    memory: Vec<u8>,
    file: Option<std::fs::File>,
    threshold: usize,
}

impl Spool {
    pub(crate) fn new(threshold: usize) -> Spool {
        Spool { memory: Vec::new(), file: None, threshold }
    }

    /// Copies the spooled bytes to `out`.
    pub(crate) fn copy_to(&mut self, out: &mut dyn Write) -> io::Result<()> {
        match &mut self.file {
            None => out.write_all(&self.memory),
            Some(f) => {
                f.seek(SeekFrom::Start(0))?;
                io::copy(f, out).map(drop)
            }
        }
    }
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.file.is_none() && self.memory.len() + buf.len() > self.threshold {
            let mut f = tempfile::tempfile()?;
            f.write_all(&self.memory)?;
            self.memory = Vec::new();
            self.file = Some(f);
        }
        match &mut self.file {
            Some(f) => f.write(buf),
            None => self.memory.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), Write::flush)
    }
}

/// The pax records of a member's fields that overflow ustar's (`over`).
fn pax_records(name: &[u8], size: u64, opts: &MemberOptions, over: &crate::format::header::Overflow) -> Vec<u8> {
    let mut pax = Vec::new();
    let num = |n: u64| n.to_string().into_bytes();
    if over.path {
        push_record(&mut pax, b"path", name);
    }
    if over.link {
        push_record(&mut pax, b"linkpath", &opts.link);
    }
    if over.size {
        push_record(&mut pax, b"size", &num(size));
    }
    if over.uid {
        push_record(&mut pax, b"uid", &num(opts.uid));
    }
    if over.gid {
        push_record(&mut pax, b"gid", &num(opts.gid));
    }
    if over.mtime {
        push_record(&mut pax, b"mtime", opts.mtime.to_string().as_bytes());
    }
    if over.uname {
        push_record(&mut pax, b"uname", opts.uname.as_bytes());
    }
    if over.gname {
        push_record(&mut pax, b"gname", opts.gname.as_bytes());
    }
    pax
}

/// The name GNU tar gives a pax header: `PaxHeaders/` and the member's last component, cut to fit.
fn pax_header_name(name: &[u8]) -> Vec<u8> {
    let base = name.rsplit(|&b| b == b'/').find(|c| !c.is_empty()).unwrap_or(b"member");
    let mut n = b"PaxHeaders/".to_vec();
    n.extend_from_slice(&base[..base.len().min(80)]);
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::{ScanOptions, Scanner};

    #[test]
    fn members_read_back() {
        let mut b = Builder::new(Vec::new());
        let long = "a/".repeat(200) + "leaf";
        b.add("x", b"12345").unwrap();
        b.add(&long, &[1u8; 512]).unwrap();
        b.add_with("big-ids", b"", &MemberOptions { uid: 1 << 30, mtime: -5, ..Default::default() }).unwrap();
        let placed = b.placed().to_vec();
        let tar = b.finish().unwrap();
        let got: Vec<_> = Scanner::new(&tar, ScanOptions::default()).collect::<Result<_, _>>().unwrap();
        assert_eq!(got.len(), 3);
        for (g, p) in got.iter().zip(&placed) {
            assert_eq!(g.path().as_ref(), &p.name[..]);
            assert_eq!((g.position, g.data_offset, g.size), (p.position, p.data_offset, p.size));
        }
        assert_eq!(got[2].uid, 1 << 30);
        assert_eq!(got[2].mtime, -5);
        // 512 bytes of data take exactly one block: no extra padding block.
        assert_eq!(got[1].data_offset + 512, got[2].position);
    }
}

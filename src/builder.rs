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

use std::io::{self, Write};

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
}

impl<W: Write> Builder<W> {
    /// A builder writing to `out`.
    pub fn new(out: W) -> Self {
        Builder { out, offset: 0, placed: Vec::new(), indexes: 0 }
    }

    /// Adds a regular file with default options.
    pub fn add(&mut self, name: impl AsRef<[u8]>, data: &[u8]) -> io::Result<&Placed> {
        self.add_with(name, data, &MemberOptions::default())
    }

    /// Adds a member with the given header options. Members other than regular files must have
    /// empty data.
    pub fn add_with(&mut self, name: impl AsRef<[u8]>, data: &[u8], opts: &MemberOptions) -> io::Result<&Placed> {
        let name = name.as_ref();
        if name.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty member name"));
        }
        if !data.is_empty() && !matches!(opts.typeflag, b'0' | 0 | b'7') {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "only regular files carry data"));
        }
        let fields = UstarFields {
            path: name,
            link: &opts.link,
            mode: opts.mode,
            uid: opts.uid,
            gid: opts.gid,
            size: data.len() as u64,
            mtime: opts.mtime,
            typeflag: opts.typeflag,
            uname: opts.uname.as_bytes(),
            gname: opts.gname.as_bytes(),
        };
        let position = self.offset;
        let over = fields.overflow();
        if over.any() {
            let mut pax = Vec::new();
            let num = |n: u64| n.to_string().into_bytes();
            if over.path {
                push_record(&mut pax, b"path", name);
            }
            if over.link {
                push_record(&mut pax, b"linkpath", &opts.link);
            }
            if over.size {
                push_record(&mut pax, b"size", &num(data.len() as u64));
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
            let pax_name = pax_header_name(name);
            let xh = UstarFields { path: &pax_name, mode: 0o644, size: pax.len() as u64, typeflag: b'x', ..Default::default() }.encode();
            self.write_block(&xh)?;
            self.write_data(&pax)?;
        }
        self.write_block(&fields.encode())?;
        let data_offset = self.offset;
        self.write_data(data)?;
        self.placed.push(Placed { name: name.to_vec(), position, data_offset, size: data.len() as u64 });
        Ok(self.placed.last().expect("just pushed"))
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
        let padded = round_up(data.len() as u64).expect("in-memory data fits");
        self.out.write_all(&[0u8; BLOCK][..(padded - data.len() as u64) as usize])?;
        self.offset += padded;
        Ok(())
    }
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

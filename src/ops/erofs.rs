//! EROFS images written from an archive's index (issue #33): the tree `tar -xf` would leave
//! (the mount's [`TreeBuilder`]), as an image the kernel mounts with the archive as its extra
//! device (`mount -t erofs -o device=ARCHIVE IMAGE MNT`), so that reads of member data go to
//! the tar itself, at the kernel's speed, with no daemon.
//!
//! Nothing of the member data is read: a regular file is a chunk-based inode whose chunk
//! indexes point into device 1 (the archive) at the member's data, which tar keeps
//! 512-byte-aligned, as the image's blocks are. A plain file is one chunk (or as few as the
//! chunk size's 40 bits allow). A sparse member's data regions, found from its header chain
//! ([`crate::ops::read::Reader::layout_at`]), are chunks of the largest size that every region
//! boundary is a multiple of, and its holes are chunks with no block. A sparse member whose
//! regions are not 512-byte-aligned in the archive cannot be mapped so; its data is copied
//! into the image (the one case that reads member data).
//!
//! The image: the [`Binding`] to the archive in its first bytes, the superblock at 1024, one
//! device slot, then from block 3 the inodes (each 64 bytes, 32-byte-aligned, in breadth-first
//! order of the tree so that a directory's children are together), each followed by its chunk
//! indexes or its inline tail, then the whole blocks of directories and symbolic links.
//! Layout is decided in one pass from the tree (a directory's size depends on its names only),
//! so every nid is known before any directory is written.

use std::io::Write;
use std::path::Path;

use crate::archive::{ArchiveFile, IndexDir};
use crate::error::{Error, ErofsProblem, Result};
use crate::format::erofs::{self as fmt, Binding, DataLayout, FileType, Inode, SuperBlock, BLOCK, INODE_SIZE};
use crate::members::Opened;
use crate::mount::tree::{Data, Kind, Tree, TreeBuilder, ROOT};

/// Where nids count from: block 3, after the binding, the superblock and the device slot.
const META_BLKADDR: u32 = 3;
/// The device table's place, in 128-byte slots: right after the superblock.
pub(crate) const DEVT_SLOTOFF: u16 = 9;
/// The largest sparse member whose data is copied into the image (its holes too).
const MAX_COPY: u64 = 64 << 20;
/// The most chunk indexes one sparse member may have (32 MiB of them).
const MAX_CHUNKS: u64 = 1 << 22;

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Inodes in the image.
    pub inodes: usize,
    /// The image's size.
    pub bytes: u64,
    /// Sparse members whose data had to be copied into the image.
    pub copied: usize,
    /// Members left out of the tree, and why (as the mount leaves them out).
    pub skipped: Vec<(Vec<u8>, &'static str)>,
}

/// A member's data, as the index gives it.
#[derive(Debug, Clone, Copy)]
struct Place {
    position: u64,
    data_offset: u64,
    size: u64,
    sparse: bool,
}

/// Where a regular file's data is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mapping {
    /// Nowhere: an empty file.
    Empty,
    /// Chunks of the archive.
    Chunks(Chunks),
    /// Data regions `(logical offset, length, offset in the archive)` that are not
    /// 512-byte-aligned in the archive: copied into the image.
    Copy(Vec<(u64, u64, u64)>),
}

/// Chunks of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Chunks {
    /// `n` chunks of `1 << bits` bytes, contiguous in the archive from block `start`.
    InPlace { bits: u8, start: u64, n: u64 },
    /// Each chunk's block in the archive, or a hole.
    Sparse { bits: u8, blocks: Vec<Option<u64>> },
}

/// An inode's contents, and where they go.
#[derive(Debug)]
enum Body {
    /// No data (an empty file, a device, a FIFO).
    None,
    /// Bytes in blocks of the image (a directory, a link target, a copied sparse file): `len`
    /// bytes, the whole blocks from data block `blk`, the tail inline if `inline`.
    Flat { len: u64, blk: u64, inline: bool },
    /// Chunks.
    Chunked(Chunks),
}

/// One inode's place in the image.
#[derive(Debug)]
struct Slot {
    ino: u32,
    pos: u64,
    body: Body,
}

/// Where the image of `archive` is written: where its sidecar would be, as `.erofs` in place of
/// `.tarfs` (`ARCHIVE.erofs` beside it, or under the index dir).
pub fn image_path(archive: &Path, index_dir: Option<&IndexDir>) -> std::path::PathBuf {
    crate::archive::sidecar_path(archive, index_dir).with_extension("erofs")
}

/// Where images of `archive` may be, in the order readers look for its sidecars.
pub fn image_candidates(archive: &Path, index_dir: Option<&IndexDir>) -> Vec<std::path::PathBuf> {
    crate::archive::sidecar_candidates(archive, index_dir).into_iter().map(|p| p.with_extension("erofs")).collect()
}

/// Writes the image of `opened` (an archive and the index that answered for it) to `dest`,
/// atomically. `uid`, `gid` and `now` are the attributes of directories no member names.
pub fn write_image(opened: &Opened, dest: &Path, uid: u32, gid: u32, now: i64) -> Result<Written> {
    let archive = opened.reader.reader().archive();
    let binding = Binding { len: archive.len(), stamp: archive.stamp() }.encode();
    let (bytes, written) = image_of(opened, &|p| p, archive.len(), binding, uid, gid, now)?;
    crate::ops::atomic::write_atomic(dest, |w| w.write_all(&bytes).map_err(|source| Error::Io { path: dest.to_path_buf(), source }))?;
    Ok(written)
}

/// The image of `opened`, in memory, for the archive as it will be once each member's header
/// chain has moved from its position now to `relocate(position)` (by whole blocks; the identity
/// where nothing moves): chunk indexes point at the data's new place, in an archive (device 1)
/// of `device_len` bytes. `binding` is the image's first 64 bytes.
pub(crate) fn image_of(opened: &Opened, relocate: &dyn Fn(u64) -> u64, device_len: u64, binding: [u8; 64], uid: u32, gid: u32, now: i64) -> Result<(Vec<u8>, Written)> {
    let reader = opened.reader.reader();
    let archive = reader.archive();
    let path = archive.path();
    if let Some(c) = archive.compression() {
        return Err(Error::Erofs { path: path.to_path_buf(), problem: ErofsProblem::Compressed { compression: c.name() } });
    }
    let mut places = Vec::new();
    let tree = TreeBuilder::new(uid, gid, now).add_all(&*opened.index, &mut |m| {
        // A sparse member's stored bytes are not its contents (and a `S` member always is one).
        let sparse = m.typeflag == b'S' || (m.size != m.stored_size && m.typeflag != b'1');
        places.push(Place { position: m.position, data_offset: m.data_offset, size: m.size, sparse });
    })?;
    let last_block = if fmt::wide_for(device_len) { fmt::LAST_BLOCK_48 } else { fmt::LAST_BLOCK_32 };
    let mapping = |p: &Place| -> Result<Mapping> {
        let regions = if p.sparse { reader.layout_at(p.position)?.regions } else { vec![(0, p.size, p.data_offset)] };
        let by = i128::from(relocate(p.position)) - i128::from(p.position);
        mapping_of(p.size, regions, last_block).and_then(|m| moved(m, by, last_block)).map_err(|problem| Error::Erofs { path: path.to_path_buf(), problem: problem.at(p.position) })
    };
    let image = Image::build(&tree, &places, archive, mapping, (device_len, binding), now)?;
    let mut skipped = tree.skipped.clone();
    skipped.extend((1..=tree.len() as u32).flat_map(|d| tree.children(d)).filter(|c| !fits(&tree, c)).map(|c| (tree.name(c).to_vec(), "a name of over 255 bytes")));
    let written = Written { inodes: image.inodes, bytes: image.bytes.len() as u64, copied: image.copied, skipped };
    Ok((image.bytes, written))
}

/// `m` with its chunks `by` bytes (whole blocks) further on in the archive, up to block
/// `last_block`. Copied data is read from where it is now, so it stays as it is.
fn moved(m: Mapping, by: i128, last_block: u64) -> std::result::Result<Mapping, Unmappable> {
    let blocks = by / i128::from(BLOCK);
    let block = |b: u64| u64::try_from(i128::from(b) + blocks).ok().filter(|&b| b <= last_block).ok_or(Unmappable::TooFar);
    Ok(match m {
        Mapping::Chunks(Chunks::InPlace { bits, start, n }) => {
            // The last block of the last chunk must be addressable too.
            block(start + ((n << bits) / BLOCK).saturating_sub(1))?;
            Mapping::Chunks(Chunks::InPlace { bits, start: block(start)?, n })
        }
        Mapping::Chunks(Chunks::Sparse { bits, blocks: bs }) => Mapping::Chunks(Chunks::Sparse { bits, blocks: bs.into_iter().map(|b| b.map(block).transpose()).collect::<std::result::Result<_, _>>()? }),
        other => other,
    })
}

/// Why a member's data cannot be mapped at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unmappable {
    /// Past the last block an image's addresses reach.
    TooFar,
    /// A sparse member of this many chunks.
    TooMany(u64),
}

impl Unmappable {
    /// The problem, for the member whose header is at `offset`.
    fn at(self, offset: u64) -> ErofsProblem {
        match self {
            Unmappable::TooFar => ErofsProblem::TooLarge { offset },
            Unmappable::TooMany(chunks) => ErofsProblem::TooManyChunks { offset, chunks },
        }
    }
}

/// Where the data of a file of `size` bytes is, from its data regions `(logical offset,
/// length, offset in the archive)`, in order, in an image whose addresses reach block
/// `last_block`.
fn mapping_of(size: u64, regions: Vec<(u64, u64, u64)>, last_block: u64) -> std::result::Result<Mapping, Unmappable> {
    if size == 0 {
        return Ok(Mapping::Empty);
    }
    // Regions that follow each other in the file and in the archive are one.
    let mut merged: Vec<(u64, u64, u64)> = Vec::with_capacity(regions.len());
    for &(lo, len, at) in regions.iter().filter(|r| r.1 > 0 && r.0 < size) {
        let len = len.min(size - lo);
        match merged.last_mut() {
            Some(last) if last.0 + last.1 == lo && last.2 + last.1 == at => last.1 += len,
            _ => merged.push((lo, len, at)),
        }
    }
    // Every boundary but the file's end must fall on a chunk's, and a chunk on a block.
    let bounds = merged.iter().flat_map(|&(lo, len, _)| [lo, lo + len]).filter(|&b| b < size).fold(0u64, |acc, b| acc | b);
    let aligned = if bounds == 0 { 64 } else { bounds.trailing_zeros() as u8 };
    if aligned < fmt::BLKSZBITS || merged.iter().any(|&(lo, _, at)| at % BLOCK != lo % BLOCK) {
        return Ok(Mapping::Copy(merged));
    }
    let whole = (64 - (size - 1).leading_zeros()) as u8;
    let bits = aligned.min(fmt::MAX_CHUNKBITS).min(whole.max(fmt::BLKSZBITS));
    let n = size.div_ceil(1 << bits);
    let block = |at: u64| Some(at / BLOCK).filter(|&b| b <= last_block).ok_or(Unmappable::TooFar);
    if let [(0, len, at)] = merged[..] {
        if len == size {
            block(at + size.div_ceil(BLOCK) * BLOCK - BLOCK)?;
            return Ok(Mapping::Chunks(Chunks::InPlace { bits, start: block(at)?, n }));
        }
    }
    if n > MAX_CHUNKS {
        return Err(Unmappable::TooMany(n));
    }
    let mut blocks = vec![None; n as usize];
    for &(lo, len, at) in &merged {
        for c in (lo >> bits)..(lo + len).div_ceil(1 << bits) {
            blocks[c as usize] = Some(block(at + (c << bits) - lo)?);
        }
    }
    Ok(Mapping::Chunks(Chunks::Sparse { bits, blocks }))
}

/// An image, built in memory.
struct Image {
    bytes: Vec<u8>,
    inodes: usize,
    copied: usize,
}

impl Image {
    /// The image of `tree`, whose files' data `places` and `mapping` locate in `archive` (copied
    /// data is read from it), for a device of `device_len` bytes, with `binding` first.
    fn build(tree: &Tree, places: &[Place], archive: &dyn ArchiveFile, mapping: impl Fn(&Place) -> Result<Mapping>, (device_len, binding): (u64, [u8; 64]), now: i64) -> Result<Image> {
        let order = breadth_first(tree);
        let wide = fmt::wide_for(device_len);
        let mut nids: Vec<Option<u64>> = vec![None; tree.len() + 1];
        let mut copies: Vec<Vec<u8>> = Vec::new();
        let meta_start = u64::from(META_BLKADDR) * BLOCK;
        // Nid 0 is left empty: a directory entry of inode 0 is one `readdir(3)` skips as
        // deleted, which would hide the root's `.` and every `..` that names it.
        let (mut at, mut data_blocks) = (meta_start + INODE_SIZE, 0u64);
        let mut slots = Vec::with_capacity(order.len());
        for &ino in &order {
            let inode = tree.inode(ino).expect("ordered inodes exist");
            let body = match (inode.attr.kind, inode.data) {
                (Kind::Dir, _) => flat(fmt::dir_size(&dir_blocks(tree, ino)), &mut data_blocks),
                (Kind::Symlink, _) => flat(inode.attr.size, &mut data_blocks),
                (Kind::File, Data::Member(m)) => {
                    let place = &places[m as usize];
                    match mapping(place)? {
                        Mapping::Chunks(c) => Body::Chunked(c),
                        Mapping::Empty => Body::None,
                        Mapping::Copy(_) if place.size > MAX_COPY => {
                            return Err(Error::Erofs { path: archive.path().to_path_buf(), problem: ErofsProblem::Unaligned { offset: place.position, size: place.size } });
                        }
                        Mapping::Copy(regions) => {
                            copies.push(expanded(archive, place, &regions)?);
                            flat(place.size, &mut data_blocks)
                        }
                    }
                }
                _ => Body::None,
            };
            let pos = placed(at, &body);
            nids[ino as usize] = Some((pos - meta_start) / 32);
            at = pos + meta_len(&body);
            slots.push(Slot { ino, pos, body });
        }
        let data_start = at.div_ceil(BLOCK);
        let blocks = data_start + data_blocks;
        let mut bytes = vec![0u8; usize::try_from(blocks * BLOCK).unwrap_or(usize::MAX)];
        let copied = copies.len();
        let mut copies = copies.into_iter();
        for (i, s) in slots.iter().enumerate() {
            let content = match s.body {
                Body::Flat { .. } if tree.inode(s.ino).is_some_and(|n| n.attr.kind == Kind::Dir) => dir_bytes(tree, s.ino, &nids),
                Body::Flat { .. } if tree.inode(s.ino).is_some_and(|n| n.attr.kind == Kind::Symlink) => tree.target(s.ino).unwrap_or_default().to_vec(),
                Body::Flat { .. } => copies.next().unwrap_or_default(),
                _ => Vec::new(),
            };
            write_slot(&mut bytes, tree, s, u32::try_from(i + 1).unwrap_or(u32::MAX), data_start, &content, wide);
        }
        let root_nid = order.first().and_then(|&r| nids[r as usize]).and_then(|n| u16::try_from(n).ok()).unwrap_or(0);
        let sb = SuperBlock { root_nid, inos: order.len() as u64, blocks: u32::try_from(blocks).unwrap_or(u32::MAX), meta_blkaddr: META_BLKADDR, extra_devices: 1, devt_slotoff: DEVT_SLOTOFF, build_time: u64::try_from(now).unwrap_or(0), wide };
        bytes[fmt::SUPER_OFFSET..fmt::SUPER_OFFSET + 128].copy_from_slice(&sb.encode());
        let slot_at = usize::from(DEVT_SLOTOFF) * fmt::DEVICE_SLOT_SIZE;
        let archive_blocks = device_len.div_ceil(BLOCK);
        bytes[slot_at..slot_at + fmt::DEVICE_SLOT_SIZE].copy_from_slice(&fmt::device_slot(archive_blocks));
        bytes[..64].copy_from_slice(&binding);
        Ok(Image { bytes, inodes: order.len(), copied })
    }
}

/// The longest name a directory entry may have (the kernel refuses a directory block with a
/// longer one, as extraction fails for it).
const NAME_MAX: usize = 255;

/// Whether a directory entry's name fits an image.
fn fits(tree: &Tree, c: &crate::mount::tree::Child) -> bool {
    tree.name(c).len() <= NAME_MAX
}

/// The inodes of `tree` in breadth-first order from the root, each once (a hard link's inode
/// where its first name is).
fn breadth_first(tree: &Tree) -> Vec<u32> {
    let mut seen = vec![false; tree.len() + 1];
    let mut order = vec![ROOT];
    seen[ROOT as usize] = true;
    let mut i = 0;
    while let Some(&dir) = order.get(i) {
        for c in tree.children(dir).iter().filter(|c| fits(tree, c)) {
            if !std::mem::replace(&mut seen[c.ino as usize], true) {
                order.push(c.ino);
            }
        }
        i += 1;
    }
    order
}

/// A flat body of `len` bytes: its whole blocks from the next data block, its tail inline
/// where it fits in a block with the inode.
fn flat(len: u64, data_blocks: &mut u64) -> Body {
    if len == 0 {
        return Body::None;
    }
    let tail = len % BLOCK;
    let inline = tail > 0 && INODE_SIZE + tail <= BLOCK;
    let blocks = if inline { len / BLOCK } else { len.div_ceil(BLOCK) };
    let blk = *data_blocks;
    *data_blocks += blocks;
    Body::Flat { len, blk, inline }
}

/// The bytes an inode takes in the metadata: itself, and its chunk indexes or inline tail.
fn meta_len(body: &Body) -> u64 {
    INODE_SIZE
        + match body {
            Body::Flat { len, inline: true, .. } => len % BLOCK,
            Body::Chunked(Chunks::InPlace { n, .. }) => n * fmt::CHUNK_INDEX_SIZE,
            Body::Chunked(Chunks::Sparse { blocks, .. }) => blocks.len() as u64 * fmt::CHUNK_INDEX_SIZE,
            _ => 0,
        }
}

/// Where an inode with `body` goes, from `at`: 32-byte-aligned (a nid), in one block with its
/// inline tail, and never across a block itself.
fn placed(at: u64, body: &Body) -> u64 {
    let pos = at.next_multiple_of(32);
    let in_block = match body {
        Body::Flat { inline: true, .. } => meta_len(body),
        _ => INODE_SIZE,
    };
    if pos % BLOCK + in_block > BLOCK {
        pos.next_multiple_of(BLOCK)
    } else {
        pos
    }
}

/// A directory's entries with `.` and `..`, sorted by name as the kernel's lookup expects.
fn dir_entries(tree: &Tree, dir: u32) -> Vec<(&[u8], u32)> {
    // The children are sorted already: the two dots go where they sort among them.
    let mut entries: Vec<(&[u8], u32)> = Vec::with_capacity(tree.children(dir).len() + 2);
    entries.extend(tree.children(dir).iter().filter(|c| fits(tree, c)).map(|c| (tree.name(c), c.ino)));
    for dot in [(&b"."[..], dir), (&b".."[..], tree.parent(dir))] {
        let at = entries.partition_point(|e| e.0 < dot.0);
        entries.insert(at, dot);
    }
    entries
}

/// How a directory's entries fill blocks.
fn dir_blocks(tree: &Tree, dir: u32) -> Vec<(usize, usize)> {
    fmt::pack_dir(dir_entries(tree, dir).iter().map(|e| e.0.len()))
}

/// A directory's bytes: its blocks, the last one unpadded.
fn dir_bytes(tree: &Tree, dir: u32, nids: &[Option<u64>]) -> Vec<u8> {
    let entries = dir_entries(tree, dir);
    let blocks = fmt::pack_dir(entries.iter().map(|e| e.0.len()));
    let mut out = Vec::with_capacity(blocks.len() * BLOCK as usize);
    let mut from = 0;
    for (k, &(count, _)) in blocks.iter().enumerate() {
        let these: Vec<(&[u8], u64, FileType)> = entries[from..from + count].iter().map(|&(name, ino)| (name, nids[ino as usize].expect("every entry's inode is placed before directories are written"), file_type(tree, ino))).collect();
        fmt::encode_dir_block(&these, k + 1 < blocks.len(), &mut out);
        from += count;
    }
    out
}

fn file_type(tree: &Tree, ino: u32) -> FileType {
    match tree.inode(ino).map(|i| i.attr.kind) {
        Some(Kind::Dir) => FileType::Dir,
        Some(Kind::Symlink) => FileType::Symlink,
        Some(Kind::Char) => FileType::Char,
        Some(Kind::Block) => FileType::Block,
        Some(Kind::Fifo) => FileType::Fifo,
        _ => FileType::Regular,
    }
}

/// Writes inode `s` (numbered `number`) at its place in `bytes`, with its chunk indexes, or
/// its `content`'s whole blocks in the data area from `data_start` and its tail inline.
fn write_slot(bytes: &mut [u8], tree: &Tree, s: &Slot, number: u32, data_start: u64, content: &[u8], wide: bool) {
    let inode = tree.inode(s.ino).expect("slots are of inodes");
    let (kind_bits, size) = match inode.attr.kind {
        Kind::Dir => (0o040000, content.len() as u64),
        Kind::File => (0o100000, inode.attr.size),
        Kind::Symlink => (0o120000, content.len() as u64),
        Kind::Char => (0o020000, 0),
        Kind::Block => (0o060000, 0),
        Kind::Fifo => (0o010000, 0),
    };
    let (layout, u) = match (&s.body, inode.data) {
        (Body::Flat { blk, inline, .. }, _) => (if *inline { DataLayout::FlatInline } else { DataLayout::FlatPlain }, u32::try_from(data_start + blk).unwrap_or(u32::MAX)),
        (Body::Chunked(Chunks::InPlace { bits, .. } | Chunks::Sparse { bits, .. }), _) => (DataLayout::ChunkBased, fmt::chunk_format(*bits, wide)),
        (Body::None, Data::Device(major, minor)) => (DataLayout::FlatPlain, fmt::encode_dev(major, minor)),
        (Body::None, _) => (DataLayout::FlatPlain, 0),
    };
    let mode = u16::try_from(kind_bits | (inode.attr.mode & 0o7777)).unwrap_or(0);
    let raw = Inode { layout, mode, size, u, ino: number, uid: inode.attr.uid, gid: inode.attr.gid, mtime: inode.attr.mtime, nlink: inode.nlink };
    let pos = s.pos as usize;
    bytes[pos..pos + INODE_SIZE as usize].copy_from_slice(&raw.encode());
    let after = pos + INODE_SIZE as usize;
    match &s.body {
        Body::Flat { len, blk, inline } => {
            let whole = if *inline { (len / BLOCK * BLOCK) as usize } else { content.len() };
            let at = ((data_start + blk) * BLOCK) as usize;
            bytes[at..at + whole].copy_from_slice(&content[..whole]);
            if *inline {
                bytes[after..after + content.len() - whole].copy_from_slice(&content[whole..]);
            }
        }
        Body::Chunked(Chunks::InPlace { bits, start, n }) => {
            for c in 0..*n {
                let block = start + (c << bits) / BLOCK;
                let at = after + c as usize * fmt::CHUNK_INDEX_SIZE as usize;
                bytes[at..at + fmt::CHUNK_INDEX_SIZE as usize].copy_from_slice(&fmt::chunk_index(1, Some(block), wide));
            }
        }
        Body::Chunked(Chunks::Sparse { blocks, .. }) => {
            for (c, block) in blocks.iter().enumerate() {
                let at = after + c * fmt::CHUNK_INDEX_SIZE as usize;
                bytes[at..at + fmt::CHUNK_INDEX_SIZE as usize].copy_from_slice(&fmt::chunk_index(1, *block, wide));
            }
        }
        Body::None => {}
    }
}

/// A sparse member's contents, expanded from its `regions` in the archive (holes as zeros).
fn expanded(archive: &dyn ArchiveFile, place: &Place, regions: &[(u64, u64, u64)]) -> Result<Vec<u8>> {
    let mut out = vec![0u8; usize::try_from(place.size).unwrap_or(usize::MAX)];
    let path = archive.path();
    for &(lo, len, at) in regions {
        let from = archive.read_at(at, len as usize).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        if from.len() as u64 != len {
            return Err(Error::Data { path: path.to_path_buf(), offset: place.position, problem: crate::error::DataProblem::EndsInData });
        }
        out[lo as usize..(lo + len) as usize].copy_from_slice(&from);
    }
    archive.check_intact()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const L32: u64 = fmt::LAST_BLOCK_32;

    #[test]
    fn data_maps_to_chunks_of_the_archive_holes_and_copies() {
        // A plain member: one chunk of the next power of two, from its data's block.
        assert_eq!(mapping_of(1000, vec![(0, 1000, 1536)], L32), Ok(Mapping::Chunks(Chunks::InPlace { bits: 10, start: 3, n: 1 })));
        assert_eq!(mapping_of(0, vec![], L32), Ok(Mapping::Empty));
        // Sparse: 4 KiB of data, a hole, 4 KiB and a short tail: 4 KiB chunks, the hole none.
        let m = mapping_of(16384 + 100, vec![(0, 4096, 512), (12288, 4196, 4608)], L32).unwrap();
        let want = vec![Some(1), None, None, Some(9), Some(17)];
        assert_eq!(m, Mapping::Chunks(Chunks::Sparse { bits: 12, blocks: want }));
        // Regions that follow each other in the file and the archive are one.
        assert_eq!(mapping_of(8192, vec![(0, 4096, 512), (4096, 4096, 4608)], L32), Ok(Mapping::Chunks(Chunks::InPlace { bits: 13, start: 1, n: 1 })));
        // A region not on a block of the archive: copied.
        assert!(matches!(mapping_of(8192, vec![(0, 100, 512), (4096, 100, 612)], L32), Ok(Mapping::Copy(_))));
        // Beyond 2 TiB: 48-bit addresses, and an error beyond what they reach.
        assert_eq!(mapping_of(512, vec![(0, 512, 1 << 41)], L32), Err(Unmappable::TooFar));
        assert_eq!(mapping_of(512, vec![(0, 512, 1 << 41)], fmt::LAST_BLOCK_48), Ok(Mapping::Chunks(Chunks::InPlace { bits: 9, start: 1 << 32, n: 1 })));
        assert_eq!(mapping_of(512, vec![(0, 512, 1 << 57)], fmt::LAST_BLOCK_48), Err(Unmappable::TooFar));
        assert!(matches!(mapping_of(1 << 40, vec![(0, 512, 512), ((1 << 40) - 512, 512, 1024)], L32), Err(Unmappable::TooMany(_))));
    }

    #[test]
    fn moved_chunks_follow_their_member_and_holes_stay_holes() {
        let plain = Mapping::Chunks(Chunks::InPlace { bits: 10, start: 3, n: 1 });
        assert_eq!(moved(plain.clone(), 4096, L32), Ok(Mapping::Chunks(Chunks::InPlace { bits: 10, start: 11, n: 1 })));
        assert_eq!(moved(plain.clone(), -1536, L32), Ok(Mapping::Chunks(Chunks::InPlace { bits: 10, start: 0, n: 1 })));
        assert_eq!(moved(plain, -2048, L32), Err(Unmappable::TooFar));
        let sparse = Mapping::Chunks(Chunks::Sparse { bits: 12, blocks: vec![Some(1), None, Some(9)] });
        assert_eq!(moved(sparse, 512, L32), Ok(Mapping::Chunks(Chunks::Sparse { bits: 12, blocks: vec![Some(2), None, Some(10)] })));
        // Past 2 TiB, where the last block of the chunk would be.
        assert_eq!(moved(Mapping::Chunks(Chunks::InPlace { bits: 20, start: L32 - 1000, n: 1 }), 0, L32), Err(Unmappable::TooFar));
        let copy = Mapping::Copy(vec![(0, 100, 612)]);
        assert_eq!(moved(copy.clone(), 512, L32), Ok(copy));
    }
}

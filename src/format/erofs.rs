//! The EROFS on-disk structures tarfs writes, apart from I/O: the superblock, a device slot, the
//! extended inode, chunk indexes and directory blocks, as the kernel's `fs/erofs/erofs_fs.h`
//! and `Documentation/filesystems/erofs.rst` define them (all little-endian).
//!
//! tarfs writes one shape of image (see `ops/erofs.rs`): 512-byte blocks (`blkszbits` 9, so
//! that tar's 512-byte-aligned member data is block-aligned), uncompressed, every inode
//! extended (64 bytes: 32-bit owners, 64-bit times and sizes on every kernel), regular files
//! chunk-based with 8-byte chunk indexes that name their device (1: the tar archive), and
//! directories and symbolic links flat, their last partial block inline after the inode where
//! it fits. Nothing here is compressed, and there are no extended attributes. Block addresses
//! are 32 bits up to 2 TiB of tar, and 48 bits beyond ([`wide_for`]; Linux 6.15 and later).
//!
//! The first 1024 bytes of an image are not EROFS's (the boot sector); tarfs keeps there what
//! binds the image to its archive ([`Binding`]).

use crate::format::tarfs::Stamp;

/// Block size, in bits: 512-byte blocks.
pub const BLKSZBITS: u8 = 9;
/// Block size.
pub const BLOCK: u64 = 1 << BLKSZBITS;
/// Where the superblock is.
pub const SUPER_OFFSET: usize = 1024;
/// The superblock's magic number.
pub const MAGIC: u32 = 0xE0F5_E1E2;
/// An extended inode's size.
pub const INODE_SIZE: u64 = 64;
/// A chunk index entry's size.
pub const CHUNK_INDEX_SIZE: u64 = 8;
/// A directory entry's size (its name apart).
pub const DIRENT_SIZE: usize = 12;
/// A device slot's size.
pub const DEVICE_SLOT_SIZE: usize = 128;
/// The largest chunk, in bits (the chunk format's 5 bits of block bits, over 512-byte blocks).
pub const MAX_CHUNKBITS: u8 = BLKSZBITS + 31;
/// A chunk index's block address for a hole (all ones, in 32 or 48 bits).
pub const NULL_ADDR: u32 = u32::MAX;
/// The last block a 32-bit chunk index reaches (the next is [`NULL_ADDR`]): 2 TiB of tar.
pub const LAST_BLOCK_32: u64 = u32::MAX as u64 - 1;
/// The last block a 48-bit chunk index reaches: 128 PiB of tar.
pub const LAST_BLOCK_48: u64 = (1 << 48) - 2;

/// Incompatible features: chunk-based files.
pub const FEATURE_INCOMPAT_CHUNKED_FILE: u32 = 0x0004;
/// Incompatible features: a device table.
pub const FEATURE_INCOMPAT_DEVICE_TABLE: u32 = 0x0008;
/// Incompatible features: 48-bit block addresses (Linux 6.15 and later).
pub const FEATURE_INCOMPAT_48BIT: u32 = 0x0080;
/// Chunk format: 8-byte chunk indexes (with a device id), not 4-byte block addresses.
const CHUNK_FORMAT_INDEXES: u16 = 0x0020;
/// Chunk format: the chunk indexes' block addresses are 48 bits (`startblk_hi` is theirs).
const CHUNK_FORMAT_48BIT: u16 = 0x0040;

/// Whether an image of an archive of `len` bytes needs 48-bit block addresses: where its
/// blocks reach past [`LAST_BLOCK_32`]. Only then, so that an image of a smaller archive still
/// mounts on kernels before 6.15.
pub fn wide_for(len: u64) -> bool {
    len.div_ceil(BLOCK) > LAST_BLOCK_32 + 1
}

/// How an inode's data is laid out (`i_format` bits 1..3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataLayout {
    /// Whole blocks from `i_u` (a block address).
    FlatPlain = 0,
    /// Whole blocks from `i_u`, the last partial block right after the inode.
    FlatInline = 2,
    /// Chunks, each mapped by a chunk index after the inode.
    ChunkBased = 4,
}

/// A directory entry's file type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    /// A regular file.
    Regular = 1,
    /// A directory.
    Dir = 2,
    /// A character device.
    Char = 3,
    /// A block device.
    Block = 4,
    /// A FIFO.
    Fifo = 5,
    /// A symbolic link.
    Symlink = 7,
}

/// The superblock's fields tarfs sets (the rest are zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuperBlock {
    /// The root directory's nid.
    pub root_nid: u16,
    /// Inodes.
    pub inos: u64,
    /// Blocks of the image.
    pub blocks: u32,
    /// The block where nids count from.
    pub meta_blkaddr: u32,
    /// Devices besides the image.
    pub extra_devices: u16,
    /// Where the device table starts, in device slots from the image's start.
    pub devt_slotoff: u16,
    /// Seconds since the epoch: the build time.
    pub build_time: u64,
    /// 48-bit block addresses ([`wide_for`]).
    pub wide: bool,
}

impl SuperBlock {
    /// Its 128 bytes, to go at [`SUPER_OFFSET`].
    pub fn encode(&self) -> [u8; 128] {
        let mut b = [0u8; 128];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        // checksum (4..8) and feature_compat (8..12): none.
        b[12] = BLKSZBITS;
        // With 48-bit addresses, [14, 16) is the image's block count's high bits (zero: an
        // image is far smaller than 2 TiB) and the root's nid is at [112, 120), where a zero
        // sends the kernel back to [14, 16): both say the same for a root at nid 0.
        match self.wide {
            false => b[14..16].copy_from_slice(&self.root_nid.to_le_bytes()),
            true => b[112..120].copy_from_slice(&u64::from(self.root_nid).to_le_bytes()),
        }
        b[16..24].copy_from_slice(&self.inos.to_le_bytes());
        b[24..32].copy_from_slice(&self.build_time.to_le_bytes());
        b[36..40].copy_from_slice(&self.blocks.to_le_bytes());
        b[40..44].copy_from_slice(&self.meta_blkaddr.to_le_bytes());
        // xattr_blkaddr (44..48), uuid (48..64): none.
        b[64..69].copy_from_slice(b"tarfs");
        let incompat = FEATURE_INCOMPAT_CHUNKED_FILE | if self.extra_devices > 0 { FEATURE_INCOMPAT_DEVICE_TABLE } else { 0 } | if self.wide { FEATURE_INCOMPAT_48BIT } else { 0 };
        b[80..84].copy_from_slice(&incompat.to_le_bytes());
        b[86..88].copy_from_slice(&self.extra_devices.to_le_bytes());
        b[88..90].copy_from_slice(&self.devt_slotoff.to_le_bytes());
        // dirblkbits (90): directory blocks are file system blocks.
        b
    }

    /// The superblock in `image` (from its start), if it is one tarfs could have written: the
    /// magic number and 512-byte blocks.
    pub fn decode(image: &[u8]) -> Option<SuperBlock> {
        let b = image.get(SUPER_OFFSET..SUPER_OFFSET.checked_add(128)?)?;
        let u16_at = |i: usize| Some(u16::from_le_bytes(b.get(i..i.checked_add(2)?)?.try_into().ok()?));
        let u32_at = |i: usize| Some(u32::from_le_bytes(b.get(i..i.checked_add(4)?)?.try_into().ok()?));
        let u64_at = |i: usize| Some(u64::from_le_bytes(b.get(i..i.checked_add(8)?)?.try_into().ok()?));
        if u32_at(0)? != MAGIC || b[12] != BLKSZBITS {
            return None;
        }
        let wide = u32_at(80)? & FEATURE_INCOMPAT_48BIT != 0;
        let root_nid = match wide {
            false => u16_at(14)?,
            true => u16::try_from(u64_at(112)?).ok()?,
        };
        Some(SuperBlock { root_nid, wide, inos: u64_at(16)?, blocks: u32_at(36)?, meta_blkaddr: u32_at(40)?, extra_devices: u16_at(86)?, devt_slotoff: u16_at(88)?, build_time: u64_at(24)? })
    }
}

/// A device slot: an extra device of `blocks` blocks, in its own address space (no tag: a mount
/// must name the device with `-o device=`, and one that does not fails rather than reading the
/// image's own blocks for it). The count's high bits are read only from an image with 48-bit
/// addresses.
pub fn device_slot(blocks: u64) -> [u8; DEVICE_SLOT_SIZE] {
    let mut b = [0u8; DEVICE_SLOT_SIZE];
    b[64..68].copy_from_slice(&(blocks as u32).to_le_bytes());
    b[72..76].copy_from_slice(&((blocks >> 32) as u32).to_le_bytes());
    b
}

/// Where a device slot keeps its unified address (`uniaddr_lo`): the block at which a mount
/// that names no device (Linux's "flat" mode) reads the device's blocks in the primary one.
pub const UNIADDR_AT: usize = 68;

/// The unified address an embedded image's device slot has: near 2 TiB, past the end of any
/// archive an image with 32-bit addresses can map (one with 48-bit addresses also gets
/// `uniaddr_hi`, 8 bytes on, all ones: near 128 PiB). A self-mounting archive mounted without `device=` reads its device
/// at `fsoffset` + this in itself (Linux 6.18 mounts it in flat mode), which then fails with EIO
/// instead of reading other bytes of the archive as the files' data.
pub const FAR_UNIADDR: u32 = u32::MAX - (1 << 16);

/// An extended inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inode {
    /// Data layout.
    pub layout: DataLayout,
    /// Mode: type and permission bits.
    pub mode: u16,
    /// Size.
    pub size: u64,
    /// The union: a block address, a device number ([`encode_dev`]) or a chunk format
    /// ([`chunk_format`]).
    pub u: u32,
    /// Inode number (informative).
    pub ino: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, seconds.
    pub mtime: i64,
    /// Link count.
    pub nlink: u32,
}

impl Inode {
    /// Its 64 bytes.
    pub fn encode(&self) -> [u8; INODE_SIZE as usize] {
        let mut b = [0u8; INODE_SIZE as usize];
        // Bit 0: extended; bits 1..3: the layout.
        let format = (self.layout as u16).wrapping_shl(1) | 1;
        b[0..2].copy_from_slice(&format.to_le_bytes());
        b[4..6].copy_from_slice(&self.mode.to_le_bytes());
        b[8..16].copy_from_slice(&self.size.to_le_bytes());
        b[16..20].copy_from_slice(&self.u.to_le_bytes());
        b[20..24].copy_from_slice(&self.ino.to_le_bytes());
        b[24..28].copy_from_slice(&self.uid.to_le_bytes());
        b[28..32].copy_from_slice(&self.gid.to_le_bytes());
        b[32..40].copy_from_slice(&self.mtime.to_le_bytes());
        b[44..48].copy_from_slice(&self.nlink.to_le_bytes());
        b
    }
}

/// The `i_u` of a chunk-based inode with chunks of `1 << chunkbits` bytes, indexed by 8-byte
/// chunk indexes, with 48-bit block addresses if `wide`. `chunkbits` is from [`BLKSZBITS`] to
/// [`MAX_CHUNKBITS`].
pub fn chunk_format(chunkbits: u8, wide: bool) -> u32 {
    let wide = if wide { CHUNK_FORMAT_48BIT } else { 0 };
    u32::from(CHUNK_FORMAT_INDEXES | wide | u16::from(chunkbits.saturating_sub(BLKSZBITS) & 0x1f))
}

/// A chunk index: the chunk is at block `block` of device `device` (0: the image), or a hole.
/// A block past [`LAST_BLOCK_32`] has its high 16 bits in `startblk_hi` (an image with 48-bit
/// addresses: [`wide_for`]); a hole is all ones in 48 bits if `wide`, in 32 otherwise.
pub fn chunk_index(device: u16, block: Option<u64>, wide: bool) -> [u8; CHUNK_INDEX_SIZE as usize] {
    let mut b = [0u8; CHUNK_INDEX_SIZE as usize];
    let addr = match (block, wide) {
        (Some(block), _) => block,
        (None, true) => LAST_BLOCK_48 + 1,
        (None, false) => u64::from(NULL_ADDR),
    };
    b[0..2].copy_from_slice(&((addr >> 32) as u16).to_le_bytes());
    b[2..4].copy_from_slice(&device.to_le_bytes());
    b[4..8].copy_from_slice(&(addr as u32).to_le_bytes());
    b
}

/// A device number as the kernel's `new_encode_dev` makes it (`i_u` of a device inode).
pub fn encode_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | (major & 0xfff).wrapping_shl(8) | (minor & !0xff).wrapping_shl(12)
}

/// Directory entries packed into blocks: for each block, how many entries it holds and the
/// bytes it uses, from the length of each name (in the directory's order, `.` and `..` among
/// them). Entries never straddle blocks; a name is at most 255 bytes, so a block holds one.
pub fn pack_dir(name_lens: impl Iterator<Item = usize>) -> Vec<(usize, usize)> {
    let mut blocks: Vec<(usize, usize)> = Vec::new();
    let (mut count, mut used) = (0usize, 0usize);
    for len in name_lens {
        let need = DIRENT_SIZE.saturating_add(len);
        if count > 0 && used.saturating_add(need) > BLOCK as usize {
            blocks.push((count, used));
            (count, used) = (0, 0);
        }
        count = count.saturating_add(1);
        used = used.saturating_add(need);
    }
    if count > 0 {
        blocks.push((count, used));
    }
    blocks
}

/// A directory's size: whole blocks, then what its last block uses.
pub fn dir_size(blocks: &[(usize, usize)]) -> u64 {
    match blocks.split_last() {
        Some((last, whole)) => (whole.len() as u64).saturating_mul(BLOCK).saturating_add(last.1 as u64),
        None => 0,
    }
}

/// Appends one directory block's bytes: `entries` as (name, nid, file type), in order; `pad`
/// fills it to a whole block (every block but an inline last one).
pub fn encode_dir_block(entries: &[(&[u8], u64, FileType)], pad: bool, out: &mut Vec<u8>) {
    let start = out.len();
    let mut nameoff = DIRENT_SIZE.saturating_mul(entries.len());
    for (name, nid, ft) in entries {
        out.extend_from_slice(&nid.to_le_bytes());
        out.extend_from_slice(&u16::try_from(nameoff).unwrap_or(u16::MAX).to_le_bytes());
        out.extend_from_slice(&[*ft as u8, 0]);
        nameoff = nameoff.saturating_add(name.len());
    }
    for (name, ..) in entries {
        out.extend_from_slice(name);
    }
    if pad {
        out.resize(start.saturating_add(BLOCK as usize), 0);
    }
}

/// What binds an image to the archive it maps: kept in the image's first 1024 bytes, which
/// EROFS leaves to the boot loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The archive's length.
    pub len: u64,
    /// The archive's stamp when the image was written.
    pub stamp: Stamp,
}

/// The binding's magic, and the version of the images tarfs writes (a new version makes old
/// images stale).
const BINDING_MAGIC: &[u8; 16] = b"tarfs erofs v2\0\0";

impl Binding {
    /// Its bytes (at the image's start).
    pub fn encode(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..16].copy_from_slice(BINDING_MAGIC);
        b[16..24].copy_from_slice(&self.len.to_le_bytes());
        b[24..32].copy_from_slice(&self.stamp.ino.to_le_bytes());
        b[32..40].copy_from_slice(&self.stamp.mtime.0.to_le_bytes());
        b[40..44].copy_from_slice(&self.stamp.mtime.1.to_le_bytes());
        b[44..52].copy_from_slice(&self.stamp.ctime.0.to_le_bytes());
        b[52..56].copy_from_slice(&self.stamp.ctime.1.to_le_bytes());
        b
    }

    /// The binding at the start of `image`, if it has one of this version.
    pub fn decode(image: &[u8]) -> Option<Binding> {
        let b = image.get(..64)?;
        if &b[..16] != BINDING_MAGIC {
            return None;
        }
        let eight = |r: std::ops::Range<usize>| <[u8; 8]>::try_from(&b[r]).unwrap_or_default();
        let four = |r: std::ops::Range<usize>| <[u8; 4]>::try_from(&b[r]).unwrap_or_default();
        let stamp = Stamp { ino: u64::from_le_bytes(eight(24..32)), mtime: (i64::from_le_bytes(eight(32..40)), u32::from_le_bytes(four(40..44))), ctime: (i64::from_le_bytes(eight(44..52)), u32::from_le_bytes(four(52..56))) };
        Some(Binding { len: u64::from_le_bytes(eight(16..24)), stamp })
    }
}

/// What binds an image embedded in its archive's `.tarfs` member (a self-mounting archive) to
/// that archive: the archive's length and modification time as `embed` left them, and the write
/// generation of the index written with it. The inode and ctime, which [`Binding`] has, are not
/// known before the write that embeds the image, and a copy that keeps the mtime (`cp -p`,
/// `rsync -t`) is the same archive still.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelfBinding {
    /// The archive's length.
    pub len: u64,
    /// The archive's modification time, in whole seconds (`embed` sets it so after the write).
    pub mtime: i64,
    /// The generation of the embedded index written with the image.
    pub generation: u64,
}

/// A [`SelfBinding`]'s magic: another than [`Binding`]'s, so neither is taken for the other.
const SELF_BINDING_MAGIC: &[u8; 16] = b"tarfs erofs in2\0";

impl SelfBinding {
    /// Its bytes (at the image's start).
    pub fn encode(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..16].copy_from_slice(SELF_BINDING_MAGIC);
        b[16..24].copy_from_slice(&self.len.to_le_bytes());
        b[24..32].copy_from_slice(&self.mtime.to_le_bytes());
        b[32..40].copy_from_slice(&self.generation.to_le_bytes());
        b
    }

    /// The binding at the start of `image`, if it has one of this version.
    pub fn decode(image: &[u8]) -> Option<SelfBinding> {
        let b = image.get(..64)?;
        if &b[..16] != SELF_BINDING_MAGIC {
            return None;
        }
        let eight = |r: std::ops::Range<usize>| <[u8; 8]>::try_from(&b[r]).unwrap_or_default();
        Some(SelfBinding { len: u64::from_le_bytes(eight(16..24)), mtime: i64::from_le_bytes(eight(24..32)), generation: u64::from_le_bytes(eight(32..40)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirs_pack_into_blocks_and_bindings_round_trip() {
        // 40 entries of 12 + 10 bytes: 23 fit in a block (506 bytes), 17 in the next.
        let blocks = pack_dir(std::iter::repeat_n(10, 40));
        assert_eq!(blocks, [(23, 506), (17, 374)]);
        assert_eq!(dir_size(&blocks), 512 + 374);
        let mut out = Vec::new();
        encode_dir_block(&[(b".", 5, FileType::Dir), (b"ab", 7, FileType::Regular)], false, &mut out);
        assert_eq!(out.len(), 24 + 3);
        assert_eq!(&out[8..10], &24u16.to_le_bytes());
        assert_eq!(&out[20..22], &25u16.to_le_bytes());
        let b = Binding { len: 10240, stamp: Stamp { ino: 9, mtime: (-5, 7), ctime: (1, 2) } };
        assert_eq!(Binding::decode(&b.encode()), Some(b));
        let s = SelfBinding { len: 20480, mtime: 1_800_000_000, generation: 42 };
        assert_eq!(SelfBinding::decode(&s.encode()), Some(s));
        assert_eq!(Binding::decode(&s.encode()), None);
        assert_eq!(SelfBinding::decode(&b.encode()), None);
        for (root_nid, wide) in [(0, false), (7, false), (0, true), (7, true)] {
            let sb = SuperBlock { root_nid, inos: 3, blocks: 9, meta_blkaddr: 3, extra_devices: 1, devt_slotoff: 9, build_time: 1, wide };
            let mut img = vec![0u8; 2048];
            img[SUPER_OFFSET..SUPER_OFFSET + 128].copy_from_slice(&sb.encode());
            assert_eq!(SuperBlock::decode(&img), Some(sb));
        }
        // From 2 TiB less a block, addresses take 48 bits (the last 32-bit one means a hole);
        // holes are all ones in either.
        assert!(!wide_for((1 << 41) - 512) && wide_for((1 << 41) - 511));
        assert_eq!(chunk_index(1, Some((1 << 32) + 5), true), [1, 0, 1, 0, 5, 0, 0, 0]);
        assert_eq!(chunk_index(1, None, true), [0xff, 0xff, 1, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(chunk_index(1, None, false), [0, 0, 1, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(chunk_format(12, true), 0x20 | 0x40 | 3);
        assert_eq!(encode_dev(8, 0x1234), 0x34 | (8 << 8) | (0x1200 << 12));
    }
}

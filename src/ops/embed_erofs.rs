//! Self-mounting archives (issue #33): `tarfs embed --erofs` puts an EROFS image of the archive
//! in its `.tarfs` member, so that `mount -t erofs -o fsoffset=N,device=ARCHIVE ARCHIVE MNT`
//! mounts it with no other file.
//!
//! The image is [`crate::ops::erofs`]'s, built from the archive's members as the mount tree
//! shows them (the `.tarfs` member is not one), with each member's data at the place it has
//! *after* the embed ([`Imager::build`]'s `relocate`): its regular files are chunks of device
//! 1, the archive itself, at absolute offsets; erofs adds `fsoffset` to the primary device's
//! addresses only. Its length does not depend on where members go (chunk counts depend on
//! sizes and on alignment within a file, which whole-block moves keep), so the planner asks for
//! it once, from where members are now, and reserves room for it as it does for the index.
//!
//! In the `.tarfs` member the image follows the index and one zero block (where a v1.0 reader
//! stops), from the first 4096-aligned archive offset after them ([`image_at`]); the index
//! header's record gives its offset and length ([`crate::format::tarfs::HAS_EROFS`]). Tar
//! readers see one more regular file's data, as with any gap.
//!
//! Its device slot's unified address is far ([`FAR_UNIADDR`]): a mount that names no device
//! (`mount -o fsoffset=N ARCHIVE MNT`) would read the device's blocks at `fsoffset` plus that
//! address in the archive, and gets EIO there instead of other members' bytes.
//!
//! It is bound to its archive by a [`SelfBinding`] in its first bytes: the archive's length and
//! modification time, which `embed` sets to a whole second after writing, and the generation of
//! the index written with it. [`find`] says whether the image is fresh; a stale one is never
//! mounted.

use std::path::Path;

use crate::archive::Archive;
use crate::error::{Error, Result};
use crate::format::erofs::{SelfBinding, SuperBlock, DEVICE_SLOT_SIZE, FAR_UNIADDR, UNIADDR_AT};
use crate::format::header::BLOCK_U64;
use crate::format::tarfs;
use crate::members::Opened;
use crate::ops::erofs::{image_of, DEVT_SLOTOFF};
use crate::scan::ScanOptions;

/// Where an embedded image starts, relative to a 4096-byte boundary of the archive: the page
/// size, which any reader of the archive's pages works in (erofs itself asks `fsoffset` to be a
/// multiple of its 512-byte block).
pub const ALIGN: u64 = 4096;

/// Where the image goes in a `.tarfs` member at the archive's start whose header and index take
/// `index_blocks` blocks: after them and one zero block, at the next multiple of [`ALIGN`].
pub fn image_at(index_blocks: u64) -> u64 {
    ((index_blocks + 1) * BLOCK_U64).next_multiple_of(ALIGN)
}

/// The blocks a `.tarfs` member at the archive's start takes (its header included) with
/// `index_blocks` of header and index and an image of `image_len` bytes.
pub fn blocks_with_image(index_blocks: u64, image_len: u64) -> u64 {
    (image_at(index_blocks) + image_len).div_ceil(BLOCK_U64)
}

/// Puts `image` in `body`, the bytes of a `.tarfs` member from its second block (the index, and
/// perhaps its zero block), whose header and index take `index_blocks` blocks: zeros up to
/// [`image_at`], then the image.
pub fn place(body: &mut Vec<u8>, index_blocks: u64, image: &[u8]) {
    let at = usize::try_from(image_at(index_blocks) - BLOCK_U64).unwrap_or(usize::MAX);
    body.resize(at.max(body.len()), 0);
    body.extend_from_slice(image);
}

/// An archive's members, read for its embedded image.
pub struct Imager {
    opened: Opened,
    uid: u32,
    gid: u32,
    mtime: i64,
    len: u64,
    left_out: Vec<(Vec<u8>, &'static str)>,
}

impl Imager {
    /// Reads the members of the archive at `path` through its best index (or a scan), and the
    /// length of their image.
    pub fn open(path: &Path, scan: ScanOptions) -> Result<Imager> {
        let archive = Archive::open(path)?;
        let opened = crate::members::open_best(Box::new(archive), None, scan)?;
        let mtime = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let (uid, gid) = (rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw());
        let (bytes, written) = image_of(&opened, &|p| p, 0, [0; 64], uid, gid, mtime)?;
        Ok(Imager { opened, uid, gid, mtime, len: bytes.len() as u64, left_out: written.skipped })
    }

    /// The image's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the image is empty (it never is: it has a superblock).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The members the image leaves out, as the mount does, and why.
    pub fn left_out(&self) -> &[(Vec<u8>, &'static str)] {
        &self.left_out
    }

    /// The modification time the archive is to have after the embed, in seconds.
    pub fn mtime(&self) -> i64 {
        self.mtime
    }

    /// The image for the archive once its members have moved from their position now to
    /// `relocate(position)` and it is `final_len` bytes long, with the index of generation
    /// `generation`.
    pub fn build(&self, relocate: &dyn Fn(u64) -> u64, final_len: u64, generation: u64) -> Result<Vec<u8>> {
        let binding = SelfBinding { len: final_len, mtime: self.mtime, generation }.encode();
        let (mut bytes, _) = image_of(&self.opened, relocate, final_len, binding, self.uid, self.gid, self.mtime)?;
        // Mounted without `device=`, its files fail rather than read other bytes of the archive.
        let at = usize::from(DEVT_SLOTOFF) * DEVICE_SLOT_SIZE + UNIADDR_AT;
        bytes[at..at + 4].copy_from_slice(&FAR_UNIADDR.to_le_bytes());
        // And its high bits, which an image with 48-bit addresses (past 2 TiB) reads too.
        bytes[at + 8..at + 10].copy_from_slice(&u16::MAX.to_le_bytes());
        if bytes.len() as u64 != self.len {
            return Err(Error::refused_for_now(self.opened.reader.reader().archive().path(), "the archive changed while its EROFS image was planned"));
        }
        Ok(bytes)
    }
}

/// What an archive's embedded image is, as [`find`] judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// There is none (no embedded index, or one without an image).
    None,
    /// A fresh image: it may be mounted with `fsoffset` = `at`.
    Fresh {
        /// Its byte offset in the archive.
        at: u64,
        /// Its length.
        len: u64,
    },
    /// An image that no longer answers for the archive: never to be mounted.
    Stale(Stale),
}

/// Why an embedded image is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stale {
    /// The index header points at no image of this version (damaged, or overwritten).
    #[error("no image of this tarfs where the index says")]
    Missing,
    /// The archive's length is not the one the image was made for (a member appended).
    #[error("the archive is {now} bytes, the image was made for {then}")]
    Length {
        /// The length now.
        now: u64,
        /// The length it was made for.
        then: u64,
    },
    /// The archive's modification time is not the one `embed` left (a member changed).
    #[error("the archive was modified after the image was embedded")]
    Modified,
    /// The index was rewritten since (its generation is another).
    #[error("the index was written again without it")]
    Generation,
}

/// Whether `archive` (a plain tar, whose length and modification time `stat` now says are `len`
/// and `mtime`) has an embedded image, and whether it is fresh.
pub fn find(archive: &Archive, len: u64, mtime: (i64, u32)) -> Found {
    let Some(e) = archive.embedded() else { return Found::None };
    let bytes = archive.bytes();
    let Some(first) = bytes.get(e.data.start..e.data.start + crate::format::header::BLOCK) else { return Found::None };
    let block: &[u8; crate::format::header::BLOCK] = first.try_into().expect("one block");
    let Ok((major, _)) = tarfs::version_of(first) else { return Found::None };
    let Some(info) = tarfs::decode_header_as(block, major).ok().and_then(|h| h.info) else { return Found::None };
    let Some((at, image_len)) = info.erofs else { return Found::None };
    let image = usize::try_from(at).ok().and_then(|a| bytes.get(a..a.checked_add(usize::try_from(image_len).ok()?)?));
    let Some((b, image)) = image.and_then(|i| Some((SelfBinding::decode(i)?, i))) else { return Found::Stale(Stale::Missing) };
    if SuperBlock::decode(image).is_none() {
        return Found::Stale(Stale::Missing);
    }
    if b.len != len {
        return Found::Stale(Stale::Length { now: len, then: b.len });
    }
    if mtime != (b.mtime, 0) {
        return Found::Stale(Stale::Modified);
    }
    if b.generation != info.generation {
        return Found::Stale(Stale::Generation);
    }
    Found::Fresh { at, len: image_len }
}

/// Sets the archive's modification time to `mtime` seconds, as its embedded image's binding
/// says, once the image is written.
pub fn set_mtime(file: &std::fs::File, path: &Path, mtime: i64) -> Result<()> {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(mtime).unwrap_or(0));
    file.set_modified(t).map_err(|source| Error::Io { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_starts_on_a_page_after_the_index_and_its_zero_block() {
        // Header + 2 index blocks + the zero block end at 2048: the image at 4096.
        assert_eq!(image_at(3), 4096);
        // Header + 7 blocks + zero block end at 4096: the image right there.
        assert_eq!(image_at(7), 4096);
        assert_eq!(image_at(8), 8192);
        assert_eq!(blocks_with_image(3, 2048), 12);
        assert_eq!(blocks_with_image(3, 2000), 12);
        let mut body = vec![1u8; 1024];
        place(&mut body, 3, &[7; 512]);
        assert_eq!(body.len(), 4096 - 512 + 512);
        assert!(body[1024..3584].iter().all(|&b| b == 0));
        assert_eq!(body[3584], 7);
    }
}

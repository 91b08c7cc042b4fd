//! `tarfs mount` through the kernel: the archive's EROFS image ([`crate::ops::erofs`]) mounted
//! with the archive as its device, so that reads go to the tar through the page cache with no
//! daemon in the way (issue #33).
//!
//! The image is a file where the archive's sidecar is (`ARCHIVE.erofs` beside it, or under the
//! index dir; in the user's cache where the archive's directory refuses it), not a memfd:
//! an image of a million members is tens of megabytes that a memfd would hold in memory for as
//! long as the mount lives, while a file is paged like any other and is there for the next
//! mount, which then costs no rebuild. A file carries the risk of going stale, so it is bound to
//! the archive: its first bytes hold the archive's length and stamp (inode, mtime, ctime) as
//! they were when it was written ([`Binding`]), and an image whose binding is not the archive's
//! now is written again, never mounted.
//!
//! Both files are handed to the kernel as `/proc/self/fd/N` of descriptors opened here: the
//! archive the kernel mounts is the very file whose stamp was compared (a rename over it in
//! between cannot slip another one in), and paths with commas need no escaping in the options.
//! What the kernel cannot guard against is the archive being rewritten in place while mounted
//! (the FUSE mount checks the archive before every read and answers EIO then); archives are
//! replaced by rename, which leaves the mount reading the old file, whole.
//!
//! A self-mounting archive ([`crate::ops::embed_erofs`]) carries its own image: where that image
//! is fresh, the archive is mounted as its own image at `fsoffset` and its own device, and no
//! file is written. A stale one is never mounted: the sidecar image is used (or written) as for
//! any archive, and [`KernelMount::stale_embedded`] says why.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::archive::{Archive, IndexDir};
use crate::error::{Error, ErofsProblem, KernelRefusal, Result};
use crate::format::erofs::{Binding, SuperBlock};
use crate::format::tarfs::Stamp;
use crate::ops::embed_erofs::{self as self_image, Found, Stale};
use crate::ops::erofs::{image_candidates, image_path, write_image, Written};
use crate::scan::ScanOptions;

/// A kernel mount, done.
#[derive(Debug)]
pub struct KernelMount {
    /// The image mounted.
    pub image: PathBuf,
    /// What writing it wrote; `None` where a fresh image was there already.
    pub written: Option<Written>,
    /// Where the image mounted is the archive's own (a self-mounting archive): its offset.
    pub embedded: Option<u64>,
    /// Why the archive's own image was not mounted, where it has a stale one.
    pub stale_embedded: Option<Stale>,
}

/// Mounts the plain tar at `archive` on `mountpoint` through the kernel's EROFS, with a fresh
/// image: one found bound to the archive as it is, or one written now from its best index.
/// [`Error::Erofs`] says why the kernel cannot (the archive is compressed; the kernel or the
/// process cannot mount), where FUSE can.
pub fn mount(archive: &Path, mountpoint: &Path, index_dir: Option<&IndexDir>, scan: ScanOptions) -> Result<KernelMount> {
    let refused = |problem| Error::Erofs { path: archive.to_path_buf(), problem };
    if !may_mount() {
        return Err(refused(ErofsProblem::Kernel(KernelRefusal::NotPermitted)));
    }
    let io = |source| Error::Io { path: archive.to_path_buf(), source };
    let tar = File::open(archive).map_err(io)?;
    let meta = tar.metadata().map_err(io)?;
    let want = Binding { len: meta.len(), stamp: Stamp::of(&meta) };
    let own = Archive::open(archive).ok().filter(|a| a.stamp() == want.stamp && a.len() == want.len).map_or(Found::None, |a| self_image::find(&a, want.len, want.stamp.mtime));
    let stale_embedded = match own {
        Found::Fresh { at, .. } => return mount_at(&tar, &tar, Some(at), mountpoint, archive).map(|()| KernelMount { image: archive.to_path_buf(), written: None, embedded: Some(at), stale_embedded: None }),
        Found::Stale(why) => Some(why),
        Found::None => None,
    };
    let found = image_candidates(archive, index_dir).into_iter().find_map(|p| bound(&p, &want).map(|f| (p, f)));
    let (image, file, written) = match found {
        Some((p, f)) => (p, f, None),
        None => {
            let opened = Archive::open(archive)?;
            if let Some(c) = opened.compression() {
                return Err(refused(ErofsProblem::Compressed { compression: c.name() }));
            }
            let opened = crate::members::open_best(Box::new(opened), index_dir, scan)?;
            let (p, w) = write_somewhere(&opened, archive, index_dir)?;
            let f = bound(&p, &want).ok_or_else(|| Error::Stale { path: archive.to_path_buf(), msg: "the archive changed while its image was written; mount it again".into() })?;
            (p, f, Some(w))
        }
    };
    mount_at(&file, &tar, None, mountpoint, archive)?;
    Ok(KernelMount { image, written, embedded: None, stale_embedded })
}

/// Mounts the image in `image` (from `fsoffset`, where given) with `tar` as its device.
fn mount_at(image: &File, tar: &File, fsoffset: Option<u64>, mountpoint: &Path, archive: &Path) -> Result<()> {
    let refused = |problem| Error::Erofs { path: archive.to_path_buf(), problem };
    let io = |source| Error::Io { path: archive.to_path_buf(), source };
    let source = format!("/proc/self/fd/{}", image.as_raw_fd());
    let offset = fsoffset.map(|n| format!("fsoffset={n},")).unwrap_or_default();
    let data = std::ffi::CString::new(format!("{offset}device=/proc/self/fd/{}", tar.as_raw_fd())).map_err(|e| io(std::io::Error::other(e)))?;
    use rustix::mount::MountFlags;
    let flags = MountFlags::RDONLY | MountFlags::NODEV | MountFlags::NOSUID;
    match rustix::mount::mount(source.as_str(), mountpoint, "erofs", flags, data.as_c_str()) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::NODEV) => Err(refused(ErofsProblem::Kernel(KernelRefusal::NoErofs))),
        Err(rustix::io::Errno::NOTBLK) => Err(refused(ErofsProblem::Kernel(KernelRefusal::NoFileBackedMounts))),
        Err(rustix::io::Errno::PERM) => Err(refused(ErofsProblem::Kernel(KernelRefusal::NotPermitted))),
        Err(rustix::io::Errno::INVAL) if tar.metadata().is_ok_and(|m| crate::format::erofs::wide_for(m.len())) => Err(refused(ErofsProblem::Kernel(KernelRefusal::No48Bit))),
        Err(e) => Err(Error::Io { path: mountpoint.to_path_buf(), source: e.into() }),
    }
}

/// Unmounts `mountpoint` (a kernel or a FUSE mount: root may unmount either).
pub fn unmount(mountpoint: &Path) -> Result<()> {
    rustix::mount::unmount(mountpoint, rustix::mount::UnmountFlags::empty()).map_err(|e| Error::Io { path: mountpoint.to_path_buf(), source: e.into() })
}

/// Whether this process may mount: root, or `CAP_SYS_ADMIN` in effect.
fn may_mount() -> bool {
    rustix::process::geteuid().is_root() || rustix::thread::capabilities(None).is_ok_and(|c| c.effective.contains(rustix::thread::CapabilitySet::SYS_ADMIN))
}

/// The image at `path`, opened, if it is an image tarfs wrote of the archive as `want` says it
/// is now.
fn bound(path: &Path, want: &Binding) -> Option<File> {
    let mut f = File::open(path).ok()?;
    let mut head = vec![0u8; 2048];
    f.read_exact(&mut head).ok()?;
    let fresh = Binding::decode(&head).as_ref() == Some(want) && SuperBlock::decode(&head).is_some();
    fresh.then_some(f)
}

/// Writes the image where the sidecar would go, or, where that directory refuses it and no
/// index dir was chosen, in the user's cache.
fn write_somewhere(opened: &crate::members::Opened, archive: &Path, index_dir: Option<&IndexDir>) -> Result<(PathBuf, Written)> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let (uid, gid) = (rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw());
    let first = image_path(archive, index_dir);
    match write_image(opened, &first, uid, gid, now) {
        Ok(w) => Ok((first, w)),
        Err(Error::Unwritable { .. }) if index_dir.and_then(|d| d.fallback_for(archive)).is_some() => {
            let p = index_dir.and_then(|d| d.fallback_for(archive)).map(|p| p.with_extension("erofs")).unwrap_or(first);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|source| Error::Io { path: parent.to_path_buf(), source })?;
            }
            Ok((p.clone(), write_image(opened, &p, uid, gid, now)?))
        }
        Err(e) => Err(e),
    }
}

//! A directory of archives mounted partly by the kernel (issue #33): the FUSE mount shows the
//! tree and each archive as a directory; each plain archive's directory is then covered by a
//! kernel mount of its EROFS image ([`super::kernel::mount`]), while compressed ones stay with
//! FUSE, loaded the first time someone looks inside.
//!
//! The kernel mounts are made by the process that serves the FUSE mount, from a thread of its
//! own once the session serves (each `mount(2)` looks its mountpoint up through that very
//! session). They are unmounted before the FUSE mount, deepest first ([`unmount_below`]): a
//! mount with mounts on it is busy.

use std::path::{Path, PathBuf};

use crate::archive::IndexDir;
use crate::error::{Error, Result};
use crate::scan::ScanOptions;

/// A directory's archives: each one's path, and its path under the directory (the name of its
/// directory in the mount).
pub type Archives = Vec<(PathBuf, Vec<u8>)>;

/// What became of one archive of the tree.
#[derive(Debug)]
pub enum Outcome {
    /// Mounted by the kernel, at this mountpoint.
    Kernel(PathBuf),
    /// Left to FUSE, and why (compressed; the kernel or the process cannot mount it).
    Fuse(Error),
}

/// Mounts each archive in `archives` (its path, and its path under the tree, as the FUSE
/// mount at `mountpoint` shows it) by the kernel where it can; the others stay with FUSE.
pub fn mount_plain(archives: &Archives, mountpoint: &Path, index_dir: Option<&IndexDir>, scan: ScanOptions) -> Vec<(PathBuf, Outcome)> {
    use std::os::unix::ffi::OsStrExt;
    archives
        .iter()
        .map(|(path, rel)| {
            let at = mountpoint.join(std::ffi::OsStr::from_bytes(rel));
            let outcome = match super::kernel::mount(path, &at, index_dir, scan) {
                Ok(_) => Outcome::Kernel(at),
                Err(e) => Outcome::Fuse(e),
            };
            (path.clone(), outcome)
        })
        .collect()
}

/// Unmounts every mount below `mountpoint` (not `mountpoint` itself), deepest first.
pub fn unmount_below(mountpoint: &Path) -> Result<()> {
    let io = |source| Error::Io { path: mountpoint.to_path_buf(), source };
    // As mountinfo names it: absolute, and through symbolic links where they can be followed.
    let mountpoint = &mountpoint.canonicalize().or_else(|_| std::path::absolute(mountpoint)).map_err(io)?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(io)?;
    let mut below: Vec<PathBuf> = info.lines().filter_map(mount_point).filter(|p| p != mountpoint && p.starts_with(mountpoint)).collect();
    below.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    below.into_iter().try_for_each(|p| super::kernel::unmount(&p))
}

/// The mount point of one line of `/proc/self/mountinfo` (its fifth field, with the octal
/// escapes of space, tab, newline and backslash undone).
fn mount_point(line: &str) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let field = line.split(' ').nth(4)?.as_bytes();
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field.get(i + 1..i + 4).filter(|d| field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push(d.iter().fold(0u8, |n, c| n.wrapping_mul(8).wrapping_add(c - b'0')));
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    Some(PathBuf::from(std::ffi::OsString::from_vec(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_mount_points_are_unescaped() {
        let line = r"36 35 0:42 / /mnt/a\040b.tar rw,relatime shared:1 - erofs /proc/self/fd/3 ro";
        assert_eq!(mount_point(line), Some(PathBuf::from("/mnt/a b.tar")));
        assert_eq!(mount_point(r"1 2 3:4 / /x\134y rw - t s o"), Some(PathBuf::from(r"/x\y")));
    }
}

//! `tarfs umount`: unmounts a tarfs mount, the kernel's or FUSE's (`umount(2)`; where that is
//! not permitted, as for a user's FUSE mount, `fusermount3 -u`), and first the kernel mounts
//! of a directory's plain archives on it.

use anyhow::Result;

use crate::cli::UmountArgs;

pub fn run(a: &UmountArgs) -> Result<bool> {
    tarfs::mount::submounts::unmount_below(&a.mountpoint)?;
    match tarfs::mount::kernel::unmount(&a.mountpoint) {
        Ok(()) => Ok(true),
        Err(tarfs::Error::Io { source, .. }) if source.raw_os_error() == Some(libc::EPERM) => {
            let s = std::process::Command::new("fusermount3").arg("-u").arg(&a.mountpoint).status()?;
            Ok(s.success())
        }
        Err(e) => Err(e.into()),
    }
}

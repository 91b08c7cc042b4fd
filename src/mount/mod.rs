//! `tarfs mount`: an archive, several as their union, or a directory of archives, as a read-only file system (FUSE,
//! through the `fuser` crate; see `docs/ARCHITECTURE.md` for the choice).
//!
//! - [`tree`] builds the file tree that extracting the archive would leave, from its members
//!   in archive order, through whatever index the [`Reader`](crate::ops::read::Reader) finds
//!   (embedded, sidecar, CSV, or a scan).
//! - [`fs`] answers the kernel: lookups and directory listings from the tree alone; reads of a
//!   member through [`Reader::layout_at`](crate::ops::read::Reader::layout_at) and the reader's
//!   byte source, so that a compressed archive is read through its seek points.
//! - [`loaded`] holds what a FUSE mount reads: one tree over one archive, or over several (a
//!   union, `tarfs mount A B C MNT`: the rightmost archive's entries win, see
//!   [`tree::Layer`]), and with `--recursive` over the archives inside them ([`nested`]).
//! - [`mount`] mounts and serves until the file system is unmounted (`fusermount3 -u`, or a
//!   SIGTERM or SIGINT, which unmount it).
//! - [`kernel`] mounts a plain tar by the kernel instead, and [`submounts`] each plain archive
//!   of a directory mounted through FUSE.

pub mod fs;
pub mod kernel;
pub mod loaded;
pub mod nested;
pub mod submounts;
pub mod tree;
pub mod verify;

use std::path::Path;

use crate::error::{Error, Result};
use crate::scan::ScanOptions;

/// How to mount.
#[derive(Debug, Clone, Default)]
pub struct MountOptions {
    /// Where sidecars are (`--index-dir`, and the user's cache).
    pub index_dir: Option<crate::archive::IndexDir>,
    /// How archives are read.
    pub scan: ScanOptions,
    /// Every file's owner, instead of the archive's.
    pub uid: Option<u32>,
    /// Every file's group, instead of the archive's.
    pub gid: Option<u32>,
    /// Let other users than the one mounting see the file system (FUSE `allow_other`).
    pub allow_other: bool,
    /// Say what is loaded.
    pub verbose: bool,
    /// Threads answering the kernel (0: one per core).
    pub threads: usize,
    /// List directories with every entry's attributes (FUSE readdirplus): faster `du` and
    /// `ls -lR`, slower `find`.
    pub readdirplus: bool,
    /// Check what is read against the index's member digests, where it has them.
    pub verify: bool,
    /// Show archives inside archives as directories ([`nested`]).
    pub recursive: bool,
}

/// Mounts `fs` at `mountpoint`, calls `ready` once the mount is in place, and serves it until
/// it is unmounted: by `fusermount3 -u`, or by SIGTERM or SIGINT, which unmount it.
pub fn mount(fs: fs::TarFs, name: &Path, mountpoint: &Path, opts: &MountOptions, ready: impl FnOnce()) -> Result<()> {
    use fuser::{Config, MountOption, SessionACL};
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::DefaultPermissions,
        MountOption::FSName(name.display().to_string()),
        MountOption::Subtype("tarfs".into()),
    ];
    if opts.allow_other {
        config.acl = SessionACL::All;
    }
    config.n_threads = Some(if opts.threads == 0 { std::thread::available_parallelism().map_or(2, |n| n.get()).max(2) } else { opts.threads });
    let io = |source| Error::Io { path: mountpoint.to_path_buf(), source };
    let mut session = fuser::Session::new(fs, mountpoint, &config).map_err(io)?;
    let mut unmounter = session.unmount_callable();
    // SIGINT and SIGTERM unmount, which ends the session below.
    let mp = mountpoint.to_path_buf();
    let _ = ctrlc::set_handler(move || {
        // A directory's plain archives, mounted by the kernel on it, first.
        if let Err(e) = submounts::unmount_below(&mp) {
            eprintln!("tarfs: {e}");
        }
        if let Err(e) = unmounter.unmount() {
            eprintln!("tarfs: {}: cannot unmount: {e}", mp.display());
        }
    });
    ready();
    session.run().map_err(io)
}

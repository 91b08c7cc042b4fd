//! `tarfs mount` through the kernel ([`tarfs::mount::kernel`]): tried first for a plain tar
//! unless `--fuse` (or a FUSE-only flag) says otherwise; where the kernel cannot, FUSE mounts it
//! as before, and `-v` says why. A directory is mounted through FUSE, and then each of its plain
//! archives by the kernel over its directory there ([`for_tree`]).

use std::path::PathBuf;

use anyhow::Result;
use tarfs::mount::kernel::mount;

use crate::cli::MountArgs;
use crate::config::Config;
use crate::warn;

/// Whether the kernel mounted `a.source` (false: FUSE is to).
pub fn mounted(cfg: &Config<'_>, a: &MountArgs) -> Result<bool> {
    // An object (s3://) is not a file a loop device can hold: FUSE reads it by range.
    // A directory: FUSE shows it, and the kernel covers its plain archives ([`for_tree`]).
    if a.source().is_dir() || (!a.kernel && (a.fuse || fuse_only(a) || tarfs::archive::s3::is_url(a.source()))) {
        return Ok(false);
    }
    // The kernel does not check member digests: an archive whose index has them goes through
    // FUSE, which does (unless --kernel, or --no-verify).
    if !a.kernel && cfg.verify && has_digests(cfg, a.source()) {
        if cfg.verbose {
            warn(format!("{}: its index has member digests, which FUSE checks: mounting through FUSE", a.source().display()));
        }
        return Ok(false);
    }
    let started = std::time::Instant::now();
    match mount(a.source(), &a.mountpoint, cfg.index_dir.as_ref(), cfg.scan) {
        Ok(m) => {
            if let Some(why) = m.stale_embedded.filter(|_| cfg.verbose) {
                warn(format!("{}: its embedded EROFS image is stale ({why}): not mounted; a sidecar image instead", a.source().display()));
            }
            if let Some(at) = m.embedded.filter(|_| cfg.verbose) {
                warn(format!("mounted {} at {} by the kernel (its embedded EROFS image, at byte {at}) in {:.2} s", a.source().display(), a.mountpoint.display(), started.elapsed().as_secs_f64()));
            } else if cfg.verbose {
                let how = if m.written.is_some() { "written" } else { "fresh, reused" };
                warn(format!("mounted {} at {} by the kernel (EROFS image {}, {how}) in {:.2} s", a.source().display(), a.mountpoint.display(), m.image.display(), started.elapsed().as_secs_f64()));
            }
            if let Some(w) = m.written {
                for (name, why) in &w.skipped {
                    warn(format!("{}: {}: not shown: {why}", a.source().display(), tarfs::quote::diag(name)));
                }
            }
            Ok(true)
        }
        // No place for the image (its sidecar's directory, and the cache, refuse it): FUSE
        // needs none.
        Err(e @ (tarfs::Error::Erofs { .. } | tarfs::Error::Unwritable { .. })) if !a.kernel => {
            if cfg.verbose {
                warn(format!("{e}: mounting through FUSE"));
            }
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether a flag asks for what only the FUSE mount does.
fn fuse_only(a: &MountArgs) -> bool {
    a.uid.is_some() || a.gid.is_some() || a.readdirplus || a.recursive || a.allow_other || a.foreground || a.log.is_some()
}

/// The kernel mounts of a directory's plain archives, to make once its FUSE mount serves.
pub struct TreeMounts {
    archives: tarfs::mount::submounts::Archives,
    mountpoint: PathBuf,
    index_dir: Option<tarfs::archive::IndexDir>,
    scan: tarfs::ScanOptions,
    /// `--kernel`: say every archive left to FUSE, not only with `-v`.
    insist: bool,
    verbose: bool,
}

/// The kernel mounts to make over the FUSE mount of the directory `a.source` (by its daemon),
/// unless FUSE is asked for; an archive whose index has member digests is left to FUSE, which
/// checks them, unless `--kernel` or `--no-verify`.
pub fn for_tree(cfg: &Config<'_>, a: &MountArgs, daemon: bool, archives: tarfs::mount::submounts::Archives) -> Option<TreeMounts> {
    if !daemon || archives.is_empty() || (!a.kernel && (a.fuse || fuse_only(a))) {
        return None;
    }
    let archives = archives.into_iter().filter(|(p, _)| a.kernel || !cfg.verify || !has_digests(cfg, p)).collect();
    Some(TreeMounts { archives, mountpoint: a.mountpoint.clone(), index_dir: cfg.index_dir.clone(), scan: cfg.scan, insist: a.kernel, verbose: cfg.verbose })
}

impl TreeMounts {
    /// Mounts each plain archive by the kernel, and says what it did.
    pub fn run(self) {
        use tarfs::mount::submounts::{mount_plain, Outcome};
        let started = std::time::Instant::now();
        let done = mount_plain(&self.archives, &self.mountpoint, self.index_dir.as_ref(), self.scan);
        let by_kernel = done.iter().filter(|(_, o)| matches!(o, Outcome::Kernel(_))).count();
        for (_, outcome) in &done {
            match outcome {
                Outcome::Fuse(e) if self.insist || self.verbose => warn(format!("{e}: through FUSE")),
                _ => {}
            }
        }
        if self.verbose {
            warn(format!("{}: {by_kernel} of {} archives mounted by the kernel in {:.2} s, the rest through FUSE", self.mountpoint.display(), done.len(), started.elapsed().as_secs_f64()));
        }
    }
}

/// Whether the index that reads `path` has member digests.
fn has_digests(cfg: &Config<'_>, path: &std::path::Path) -> bool {
    let Ok(archive) = tarfs::archive::open_any(path) else { return false };
    let Ok(reader) = tarfs::ops::read::Reader::open(&*archive, cfg.index_dir.as_ref(), cfg.scan) else { return false };
    matches!(reader.digests(), Ok(Some(_)))
}

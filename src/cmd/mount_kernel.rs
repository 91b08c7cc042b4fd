//! `tarfs mount` through the kernel ([`tarfs::mount::kernel`]): tried first for a plain tar
//! unless `--fuse` (or a FUSE-only flag) says otherwise; where the kernel cannot, FUSE mounts it
//! as before, and `-v` says why.

use anyhow::Result;
use tarfs::mount::kernel::mount;

use crate::cli::MountArgs;
use crate::config::Config;
use crate::warn;

/// Whether the kernel mounted `a.source` (false: FUSE is to).
pub fn mounted(cfg: &Config<'_>, a: &MountArgs) -> Result<bool> {
    let fuse_only = a.uid.is_some() || a.gid.is_some() || a.readdirplus || a.allow_other || a.foreground || a.log.is_some();
    // An object (s3://) is not a file a loop device can hold: FUSE reads it by range.
    if !a.kernel && (a.fuse || fuse_only || a.source.is_dir() || tarfs::archive::s3::is_url(&a.source)) {
        return Ok(false);
    }
    // The kernel does not check member digests: an archive whose index has them goes through
    // FUSE, which does (unless --kernel, or --no-verify).
    if !a.kernel && cfg.verify && has_digests(cfg, a) {
        if cfg.verbose {
            warn(format!("{}: its index has member digests, which FUSE checks: mounting through FUSE", a.source.display()));
        }
        return Ok(false);
    }
    let started = std::time::Instant::now();
    match mount(&a.source, &a.mountpoint, cfg.index_dir.as_ref(), cfg.scan) {
        Ok(m) => {
            if cfg.verbose {
                let how = if m.written.is_some() { "written" } else { "fresh, reused" };
                warn(format!("mounted {} at {} by the kernel (EROFS image {}, {how}) in {:.2} s", a.source.display(), a.mountpoint.display(), m.image.display(), started.elapsed().as_secs_f64()));
            }
            if let Some(w) = m.written {
                for (name, why) in &w.skipped {
                    warn(format!("{}: {}: not shown: {why}", a.source.display(), tarfs::quote::diag(name)));
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

/// Whether the index that reads `a.source` has member digests.
fn has_digests(cfg: &Config<'_>, a: &MountArgs) -> bool {
    let Ok(archive) = tarfs::archive::open_any(&a.source) else { return false };
    let Ok(reader) = tarfs::ops::read::Reader::open(&*archive, cfg.index_dir.as_ref(), cfg.scan) else { return false };
    matches!(reader.digests(), Ok(Some(_)))
}

//! `tarfs mount A B C MNT`: several archives mounted as their union ([`Loaded::union`]),
//! always through FUSE: the kernel's EROFS mount is of one plain archive.

use anyhow::{bail, Result};
use tarfs::mount::fs::{Loaded, TarFs};
use tarfs::mount::MountOptions;
use tarfs::ops::read::Source;

use crate::cli::MountArgs;
use crate::config::Config;
use crate::warn;

/// Refuses what a union cannot be: one through the kernel, or one of directories (a directory
/// mounts alone, as a tree of archives).
pub fn check(a: &MountArgs) -> Result<()> {
    if !a.is_union() {
        return Ok(());
    }
    if a.kernel {
        bail!("--kernel mounts one plain archive; the union of {} archives is mounted through FUSE (leave out --kernel)", a.sources.len());
    }
    if let Some(dir) = a.sources.iter().find(|s| s.is_dir()) {
        bail!("{}: a directory cannot be part of a union: mount it alone (a tree of its archives), or name its archives", dir.display());
    }
    Ok(())
}

/// The union of `a.sources`, loaded now (so that errors are reported before mounting).
pub fn union(cfg: &Config<'_>, a: &MountArgs, opts: &MountOptions) -> Result<TarFs> {
    let started = std::time::Instant::now();
    let loaded = Loaded::union(&a.sources, opts)?;
    for part in loaded.parts() {
        let named = a.sources.iter().any(|s| s == part.path());
        if cfg.verbose {
            warn(format!("{}: loaded {}", part.path().display(), part.note));
        } else if named && part.source() == Source::Scan && !a.write_index {
            warn(format!("{}: {}; --write-index saves what a scan finds as a sidecar", part.path().display(), part.note));
        }
    }
    if cfg.verbose {
        let secs = started.elapsed().as_secs_f64();
        warn(format!("the union of {} archives: {} entries in {secs:.2} s, {} bytes of tree", a.sources.len(), loaded.tree().len(), loaded.tree().heap_bytes()));
    }
    Ok(TarFs::single(a.source().to_path_buf(), loaded, opts.clone()))
}

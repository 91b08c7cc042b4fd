//! `tarfs mount`: in the foreground, mounts and serves; else starts itself in the foreground as
//! a daemon (its own process group, stdin closed) and returns once it says the mount is ready,
//! or with its failure.

use std::path::PathBuf;

use anyhow::Result;
use tarfs::batch::{Action, Silent};
use tarfs::discover::{Discover, ARCHIVE_GLOBS};
use tarfs::mount::fs::{Loaded, TarFs};
use tarfs::mount::submounts::Archives;
use tarfs::mount::MountOptions;
use tarfs::ops::index::IndexOptions;
use tarfs::ops::plan::{carry_out, PlanOptions, When};
use tarfs::ops::read::Source;

use crate::cli::MountArgs;
use crate::config::Config;
use crate::warn;


pub fn run(cfg: &Config<'_>, a: &MountArgs) -> Result<bool> {
    match std::fs::metadata(&a.mountpoint) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => anyhow::bail!("{}: cannot mount there: not a directory", a.mountpoint.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!("{}: cannot mount there: it does not exist", a.mountpoint.display()),
        Err(e) => anyhow::bail!("{}: cannot mount there: {e}", a.mountpoint.display()),
    }
    super::mount_union::check(a)?;
    let daemon = super::daemon::is_daemon();
    for source in a.sources.iter().filter(|s| a.write_index && !s.is_dir() && !daemon) {
        write_index(cfg, source)?;
    }
    if !daemon && !a.is_union() && super::mount_kernel::mounted(cfg, a)? {
        return Ok(true);
    }
    if !a.foreground && !daemon {
        return super::daemon::start();
    }
    let opts = MountOptions { index_dir: cfg.index_dir.clone(), scan: cfg.scan, uid: a.uid, gid: a.gid, allow_other: a.allow_other, verbose: cfg.verbose, threads: 0, readdirplus: a.readdirplus, verify: cfg.verify, recursive: a.recursive };
    let (fs, archives) = match () {
        _ if a.is_union() => (super::mount_union::union(cfg, a, &opts)?, Vec::new()),
        _ if a.source().is_dir() => tree(cfg, a, &opts)?,
        _ => (single(cfg, a, &opts)?, Vec::new()),
    };
    // A directory's plain archives, mounted by the kernel over their FUSE directories once the
    // FUSE mount serves (not in the foreground: a FUSE-only flag).
    let kernel = super::mount_kernel::for_tree(cfg, a, daemon, archives);
    let verbose = cfg.verbose;
    let names: Vec<String> = a.sources.iter().map(|s| s.display().to_string()).collect();
    let (mp, log) = (a.mountpoint.clone(), a.log.clone());
    tarfs::mount::mount(fs, a.source(), &a.mountpoint, &opts, move || {
        if verbose {
            warn(format!("mounted {} at {} through FUSE", names.join(", "), mp.display()));
        }
        let ready = move || {
            if daemon {
                super::daemon::detach(log.as_ref());
            }
        };
        match kernel {
            Some(k) => drop(std::thread::spawn(move || {
                k.run();
                ready();
            })),
            None => ready(),
        }
    })?;
    Ok(true)
}

/// A directory of archives: each loaded when first looked into; and the archives (each path,
/// and its path under the directory).
fn tree(cfg: &Config<'_>, a: &MountArgs, opts: &MountOptions) -> Result<(TarFs, Archives)> {
    let globs: Vec<&str> = if a.glob.is_empty() { ARCHIVE_GLOBS.to_vec() } else { a.glob.iter().map(String::as_str).collect() };
    let (found, errors) = Discover::with_globs(&globs)?.find(&a.sources);
    for e in &errors {
        warn(e);
    }
    let root = a.source().canonicalize()?;
    let archives: Vec<(PathBuf, Vec<u8>)> = found
        .into_iter()
        .filter_map(|f| {
            let abs = f.path.canonicalize().ok()?;
            let rel = abs.strip_prefix(&root).ok()?.as_os_str().as_encoded_bytes().to_vec();
            Some((abs, rel))
        })
        .collect();
    if cfg.verbose {
        warn(format!("{}: {} archives; each is loaded when first looked into", a.source().display(), archives.len()));
    }
    let mtime = std::fs::metadata(a.source()).map(|m| std::os::unix::fs::MetadataExt::mtime(&m)).unwrap_or(0);
    Ok((TarFs::tree(archives.clone(), opts.clone(), mtime), archives))
}

/// `--write-index`: what a scan finds, written as a sidecar where the archive has no index at
/// all (before either mount: the kernel's image is then written from it).
fn write_index(cfg: &Config<'_>, source: &std::path::Path) -> Result<()> {
    let index = IndexOptions { scan: cfg.scan, ..IndexOptions::default() };
    let how = PlanOptions { index: &index, index_dir: cfg.index_dir.as_ref(), output: None, when: When::Missing, dry_run: false, record_size: None };
    // Nothing to do (`Plan::Present`) where the archive has an index of any kind.
    let (done, cached) = carry_out(source, &how, |plan| super::index::apply(plan, &index, &Silent))?;
    if let Some(dest) = done.index_path.filter(|_| done.action == Action::Indexed) {
        warn(format!("{}: no index: scanned it and wrote {}", source.display(), dest.display()));
    }
    if cached.is_some() {
        warn(super::index::in_the_cache(cfg));
    }
    Ok(())
}

/// One archive, loaded now.
fn single(cfg: &Config<'_>, a: &MountArgs, opts: &MountOptions) -> Result<TarFs> {
    let started = std::time::Instant::now();
    let loaded = Loaded::open(a.source(), opts)?;
    let secs = started.elapsed().as_secs_f64();
    if loaded.source() == Source::Scan && !a.write_index {
        warn(format!("{}: {} ({} entries in {secs:.2} s); --write-index saves what a scan finds as a sidecar", a.source().display(), loaded.note(), loaded.tree().len()));
    } else if cfg.verbose {
        warn(format!("{}: {} entries {} in {secs:.2} s, {} bytes of tree", a.source().display(), loaded.tree().len(), loaded.note(), loaded.tree().heap_bytes()));
    }
    Ok(TarFs::single(a.source().to_path_buf(), loaded, opts.clone()))
}

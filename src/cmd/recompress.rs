//! `tarfs recompress`: rewrite zstd and xz archives so that they can be read from the middle,
//! then index them.

use std::sync::Arc;

use anyhow::Result;
use tarfs::archive::sidecar_path;
use tarfs::batch::{Action, Done, Progress};
use tarfs::discover::Found;
use tarfs::format::compression::Compression;
use tarfs::ops::atomic::DirSyncs;
use tarfs::ops::index::IndexOptions;
use tarfs::ops::recompress::{recompress, RecompressOptions, Recompressed};

use super::notes::{ext_note, no_seek_note, warning};
use crate::cli::RecompressArgs;
use crate::config::Config;
use crate::Status;

pub fn run(cfg: &Config<'_>, a: &RecompressArgs) -> Result<Status> {
    if a.frame_size == 0 {
        anyhow::bail!("--frame-size must be positive");
    }
    let syncs = Arc::new(DirSyncs::default());
    let index = IndexOptions { scan: cfg.scan, dir_syncs: Some(syncs.clone()), ..IndexOptions::default() };
    let opts = RecompressOptions { frame: a.frame_size, level: a.level, threads: cfg.batch.as_ref().map_or(0, |b| b.jobs), force: a.force, dry_run: a.dry_run, index };
    let job = |f: &Found, _progress: &dyn Progress| -> tarfs::Result<Done> {
        match recompress(&f.path, &opts, |p| sidecar_path(p, cfg.index_dir.as_ref()))? {
            Recompressed::WouldRewrite(how) => Ok(Done { action: Action::WouldRecompress, reason: Some(how.to_string()), members: None, index_path: None, warning: None }),
            Recompressed::Skipped(why) => Ok(Done { action: Action::Skipped, reason: Some(why.to_string()), members: None, index_path: None, warning: None }),
            Recompressed::Indexed(why, index, no_seek) => {
                let reason = format!("{why}; its sidecar was missing or stale{}{}", ext_note(&index), no_seek_note(no_seek.as_ref()));
                Ok(Done { action: Action::Indexed, reason: Some(reason), members: Some(index.members), warning: warning(&index), index_path: Some(index.index_path) })
            }
            Recompressed::Done { format, before, after, decompressed, index, no_seek } => {
                let how = if format == Compression::Zstd { "the zstd seekable format, in frames" } else { "xz, in blocks" };
                let change = (after as f64 - before as f64) * 100.0 / before.max(1) as f64;
                let reason = format!(
                    "as {how} of {} bytes: {before} -> {after} bytes ({change:+.1}%), {decompressed} decompressed, the same bytes as before{}{}",
                    a.frame_size,
                    ext_note(&index),
                    no_seek_note(no_seek.as_ref())
                );
                Ok(Done { action: Action::Recompressed, reason: Some(reason), members: Some(index.members), warning: warning(&index), index_path: Some(index.index_path) })
            }
        }
    };
    let status = super::batch::run(cfg, job, None, Some(&syncs));
    syncs.sync_all()?;
    status
}

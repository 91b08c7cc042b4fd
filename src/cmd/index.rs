//! `tarfs index`: a sidecar for each archive. The library plans each input
//! ([`tarfs::ops::plan`]); this carries the plan out and words the outcome. `mount
//! --write-index` carries out its plans with [`apply`] too.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use tarfs::archive::Archive;
use tarfs::batch::{self, Action, Counting, Done, Progress};
use tarfs::chunked::ScanMode;
use tarfs::discover::Found;
use tarfs::ops::atomic::DirSyncs;
use tarfs::ops::filter::Filter;
use tarfs::ops::index::{write_compressed_sidecar, write_sidecar, IndexOptions, IndexReport};
use tarfs::ops::index_stream::write_any_stream_sidecar;
use tarfs::ops::plan::{carry_out, Plan, PlanOptions, StreamKind, When};
use tarfs::stream::open_stream;

use super::notes::{ext_note, no_seek_note, warning};
use crate::cli::{IndexArgs, ScanArg};
use crate::config::{one_archive, Config};
use crate::Status;

pub fn run(cfg: &Config<'_>, a: &IndexArgs) -> Result<Status> {
    let filter = Filter::new(&a.include, &a.exclude)?;
    let syncs = Arc::new(DirSyncs::default());
    let mode = match a.scan {
        ScanArg::Auto => ScanMode::Auto,
        ScanArg::Sequential => ScanMode::Sequential,
        ScanArg::Parallel => ScanMode::Parallel,
    };
    let opts = IndexOptions { scan: cfg.scan, filter, dir_syncs: Some(syncs.clone()), mode, threads: 0, span: a.span, gzidx: a.gzidx.clone(), format: a.format, digests: a.digests, no_digests: a.no_digests };
    if a.output.is_some() {
        one_archive(&a.walk, "--output")?;
    }
    if a.gzidx.is_some() {
        one_archive(&a.walk, "--gzidx")?;
    }
    if a.span == 0 {
        anyhow::bail!("--span must be positive");
    }
    let when = if a.force { When::Always } else if a.verify { When::Verified } else { When::Stale };
    let how = PlanOptions { index: &opts, index_dir: cfg.index_dir.as_ref(), output: a.output.as_deref(), when, dry_run: a.dry_run, record_size: Some(a.record_size) };
    let told = AtomicBool::new(false);
    let job = |f: &Found, progress: &dyn Progress| sidecar(cfg, &f.path, &how, progress, &told);
    let status = super::batch::run(cfg, job, None, Some(&syncs));
    syncs.sync_all()?;
    status
}

/// Plans and writes the sidecar of `path` ([`carry_out`], with `how` and its index options),
/// saying once per run (`told`) when sidecars go to the user's cache. `embed --or-sidecar` writes
/// its sidecars with it too.
pub fn sidecar(cfg: &Config<'_>, path: &Path, how: &PlanOptions<'_>, progress: &dyn Progress, told: &AtomicBool) -> tarfs::Result<Done> {
    let (done, cached) = carry_out(path, how, |p| apply(p, how.index, progress))?;
    if cached.is_some() && !told.swap(true, Ordering::Relaxed) {
        progress.announce(&in_the_cache(cfg));
    }
    Ok(done)
}

/// What `index` says, once, when a sidecar went to the user's cache.
pub fn in_the_cache(cfg: &Config<'_>) -> String {
    let cache = cfg.index_dir.as_ref().and_then(|d| d.cache.as_deref()).map(|c| c.display().to_string()).unwrap_or_default();
    format!("archives whose directory refused a sidecar (read-only) have theirs under {cache}, where every command finds them; --index-dir DIR or TARFS_INDEX_DIR chooses another place")
}

/// Carries out `plan` with `opts`, telling `progress` of the bytes read from streams.
pub fn apply(plan: Plan, opts: &IndexOptions, progress: &dyn Progress) -> tarfs::Result<Done> {
    match plan {
        Plan::Fresh { dest, entries, subset } => {
            let reason = if subset { format!("fresh (a subset index of {})", batch::count(entries, "member", "members")) } else { "fresh".into() };
            Ok(done(Action::Skipped, reason, (!subset).then_some(entries), dest, None))
        }
        Plan::Present => Ok(Done { action: Action::Skipped, reason: Some("an index is present".into()), members: None, index_path: None, warning: None }),
        Plan::Embedded { entries } => Ok(Done { action: Action::Skipped, reason: Some("fresh (its embedded .tarfs index; no sidecar is needed)".into()), members: Some(entries), index_path: None, warning: None }),
        Plan::DryRun(plan) => dry_run(*plan, opts),
        Plan::Stream { input, kind, chunk, dest } => {
            // Decoded where it is compressed (the index then bound to the compressed bytes).
            let rep = if kind == StreamKind::Stdin {
                write_any_stream_sidecar(Path::new("-"), &mut Counting::new(io::stdin(), progress, &input), chunk, &dest, opts)?
            } else {
                let f = std::fs::File::open(&input).map_err(|e| tarfs::Error::Io { path: input.clone(), source: e })?;
                write_any_stream_sidecar(&input, &mut Counting::new(f, progress, &input), chunk, &dest, opts)?
            };
            Ok(done(Action::Indexed, "read as a stream".into(), Some(rep.members), dest, warning(&rep)))
        }
        Plan::Compressed { archive, compression, dest, why } => {
            let path = archive.path();
            let stream = || open_stream(path, |file| Box::new(Counting::new(file, progress, path))).map(|(r, _)| r);
            let (rep, no_seek) = write_compressed_sidecar(&archive, compression, &dest, opts, stream)?;
            // No larger than a span, it decodes no more from its start than from a seek point.
            let span = if opts.span == 0 { tarfs::seekpoints::DEFAULT_SPAN } else { opts.span };
            if let Some(w) = no_seek.as_ref().filter(|_| rep.bytes > span) {
                progress.not_seekable(path, w);
            }
            Ok(indexed(format!("{why}{}{}", ext_note(&rep), no_seek_note(no_seek.as_ref())), &rep, dest))
        }
        Plan::Grown { archive, dest, stale } => match tarfs::ops::grown::write_sidecar_grown(&archive, &dest, opts)? {
            Ok(g) => {
                let reason = format!("grew (the old index is stale: {stale}): {} kept, {} read{}", batch::count(g.kept, "member", "members"), batch::count(g.read, "byte", "bytes"), ext_note(&g.report));
                Ok(indexed(reason, &g.report, dest))
            }
            // Why the old index could not answer for the old part: the whole is read.
            Err(not) => full(&archive, dest, format!("rebuilt: the old index is stale: {stale}; in full: {not}"), opts),
        },
        Plan::Full { archive, dest, why } => full(&archive, dest, why.to_string(), opts),
        Plan::Remote { archive, local, why } => super::index_remote::apply(&*archive, local.as_deref(), why, opts),
    }
}

fn full(archive: &Archive, dest: PathBuf, why: String, opts: &IndexOptions) -> tarfs::Result<Done> {
    let r = write_sidecar(archive, &dest, opts)?;
    Ok(indexed(format!("{why}{}", ext_note(&r)), &r, dest))
}

/// What a dry run says. A plain archive is scanned (reading only), so that archives that would
/// fail are reported as failing; a compressed archive or a stream is not decoded, and its
/// members are not counted.
fn dry_run(plan: Plan, opts: &IndexOptions) -> tarfs::Result<Done> {
    let (archive, dest, why) = match plan {
        Plan::Compressed { dest, why, .. } => return Ok(done(Action::WouldIndex, why.to_string(), None, dest, None)),
        Plan::Remote { archive, local, why } => return Ok(super::index_remote::dry_run(&*archive, local, why)),
        Plan::Grown { archive, dest, stale } => (archive, dest, tarfs::ops::plan::Why::Stale(stale)),
        Plan::Full { archive, dest, why } => (archive, dest, why),
        other => {
            let dest = other.dest().map(Path::to_path_buf).unwrap_or_default();
            return Ok(done(Action::WouldIndex, "a stream, to be read once".into(), None, dest, None));
        }
    };
    let mut members = 0;
    let mut scanner = tarfs::Scanner::new(archive.bytes(), opts.scan);
    for e in scanner.by_ref() {
        e.map_err(|source| tarfs::Error::Scan { path: archive.path().to_path_buf(), source })?;
        members += 1;
    }
    let warning = scanner.end().and_then(|e| e.warning).map(|w| w.to_string());
    Ok(done(Action::WouldIndex, why.to_string(), Some(members), dest, warning))
}

pub(super) fn indexed(reason: String, r: &IndexReport, dest: PathBuf) -> Done {
    done(Action::Indexed, reason, Some(r.members), dest, warning(r))
}

pub(super) fn done(action: Action, reason: String, members: Option<u64>, dest: PathBuf, warning: Option<String>) -> Done {
    Done { action, reason: Some(reason), members, index_path: Some(dest), warning }
}

//! Runs a batch command's job over the archives its walk finds (`tarfs::batch::run`), with
//! progress, reports, the summary and the exit status.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use tarfs::batch::{self, BatchOptions, Done, Progress, Summary};
use tarfs::batch::report::{handled_in, Report};
use tarfs::batch::shard;
use tarfs::discover::{read_list, Discover, Found};
use tarfs::format::compression::Compression;
use tarfs::ops::atomic::DirSyncs;

use super::report::{Hints, Record, Reporter, SummaryRecord};
use crate::config::{Batch, Config};
use crate::progress::Bars;
use super::notes::summary_line;
use crate::{status, warn, Status};

/// A per-archive line for stdout (verify, recover).
pub type Line<'a> = &'a (dyn Fn(&batch::Outcome) -> String + Sync);

/// Runs `job` over the archives of the batch `cfg` describes and returns the exit status.
/// `line`, if the command has one, formats each archive's line on stdout (`-q` drops it): on a
/// terminal or with `-v` for every archive, else (under cron) only for those it changed;
/// `durability` is the directories to sync once, at the end.
pub fn run(cfg: &Config<'_>, job: impl Fn(&Found, &dyn Progress) -> tarfs::Result<Done> + Sync, line: Option<Line<'_>>, durability: Option<&Arc<DirSyncs>>) -> Result<Status> {
    let b: &Batch<'_> = cfg.batch.as_ref().expect("a batch command");
    let (verb, args) = (b.verb, b.args);
    let (found, walk_errors) = find(b)?;
    let handled = args.resume.as_deref().map(handled_in).transpose()?.unwrap_or_default();
    let job = |f: &Found, progress: &dyn Progress| match (handled.get(&f.path), &args.resume) {
        (Some(&members), Some(log)) => Ok(earlier(log, members)),
        _ => job(f, progress),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let reporter = Reporter {
        bars: Bars::new(args.progress, args.quiet, cfg.verbose, args.json),
        json: args.json,
        line: line.filter(|_| !args.quiet),
        every_line: cfg.verbose || std::io::IsTerminal::is_terminal(&std::io::stdout()),
        notes: !args.quiet && !cfg.verbose && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        announce: !args.quiet,
        failed: Default::default(),
        closed: AtomicBool::new(false),
        hints: match (args.quiet, cfg.verbose || std::io::IsTerminal::is_terminal(&std::io::stderr())) {
            (true, _) => Hints::Quiet,
            (false, true) => Hints::Each,
            (false, false) => Hints::Counted,
        },
        unseekable: Default::default(),
    };
    on_interrupt(&stop, &reporter.bars);
    let start = Instant::now();
    let opts = BatchOptions { jobs: b.jobs, fail_fast: args.fail_fast, once_per_file: b.once_per_file, durability: durability.cloned() };
    let (outcomes, stopped) = batch::run(&found, opts, &stop, &reporter, job);
    reporter.bars.finish();
    let s = Summary::of(&outcomes);
    let secs = start.elapsed().as_secs_f64();
    if let Some(dest) = &args.report {
        Report::of(verb, b.dry_run, b.shard.map(|(s, _)| s), &outcomes, &walk_errors, secs).write(dest)?;
    }
    if args.json {
        reporter.print("the summary (it is on stderr too, unless -q)", |out| {
            serde_json::to_writer(&mut *out, &Record { kind: "summary", body: &SummaryRecord { command: verb, dry_run: b.dry_run, totals: &s, seconds: secs } })?;
            writeln!(out)
        });
    }
    // The work is done whether or not its report could be printed: it was said, and the summary
    // still goes to stderr.
    let print_failed = reporter.failed.lock().expect("unpoisoned").is_some();
    if !args.quiet {
        warn(summary_line(verb, b.dry_run, &s, secs));
    }
    let unseekable = reporter.unseekable.load(Ordering::Relaxed);
    if unseekable > 0 {
        let n = batch::count(unseekable, "archive is", "archives are");
        let them = if unseekable == 1 { "it" } else { "them" };
        warn(format!("{verb}: {n} not seekable, so reads decode {them} from the start; `tarfs recompress --seekable` makes zstd and xz archives seekable (-v names {them})"));
    }
    Ok(if stop.load(Ordering::SeqCst) {
        Status::Interrupted
    } else {
        status(s.failed == 0 && s.busy == 0 && walk_errors.is_empty() && !stopped && !print_failed)
    })
}

/// An archive that `--resume`'s log says an earlier run handled, with the members it counted.
fn earlier(log: &std::path::Path, members: Option<u64>) -> Done {
    let reason = format!("handled by an earlier run ({})", log.display());
    Done { action: batch::Action::Skipped, reason: Some(reason), members, index_path: None, warning: None }
}

/// The archives the batch handles: those its paths and `--files-from` name, or that are under
/// them, then this shard's part of them (`--shard`); and the errors of the walk, said on stderr.
fn find(b: &Batch<'_>) -> Result<(Vec<Found>, Vec<tarfs::Error>)> {
    let mut d = Discover::with_globs(&b.globs)?;
    d.follow_links = b.walk.follow_links;
    let mut paths = b.walk.paths.clone();
    if let Some(list) = &b.walk.files_from {
        paths.extend(read_list(list, b.walk.null)?);
    }
    let (mut found, walk_errors) = d.find(&paths);
    for e in &walk_errors {
        warn(e);
    }
    if found.is_empty() && walk_errors.is_empty() {
        // An empty directory or an unmounted mount point: say so, even under -q.
        let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        warn(format!("{}: no archives found under {} (matching {})", b.verb, paths.join(", "), b.globs.join(", ")));
    }
    if let Some((shard, weigh)) = b.shard {
        found = shard::select(found, shard, weigh);
    }
    Ok((found, walk_errors))
}

/// The compression of `f` when it is an archive found under a directory (not one named on the
/// command line) that is compressed: `embed` and `csv`, which change only plain tars, pass
/// over those, naming them.
pub fn compressed_in_walk(cfg: &Config<'_>, f: &Found) -> Option<Compression> {
    use std::io::Read;
    if cfg.batch.as_ref().is_none_or(|b| b.walk.paths.contains(&f.path)) {
        return None;
    }
    let mut head = Vec::with_capacity(Compression::HEAD);
    std::fs::File::open(&f.path).and_then(|file| file.take(Compression::HEAD as u64).read_to_end(&mut head)).ok()?;
    Compression::detect(&head)
}

/// The first SIGINT finishes the archives in progress; the second quits at once.
fn on_interrupt(stop: &Arc<AtomicBool>, bars: &Bars) {
    let stop = stop.clone();
    let bars = bars.handle();
    // Only one handler may be set per process; a second batch in one process keeps the first.
    let _ = ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::SeqCst) {
            // Leave a clean screen: the bars are cleared before exiting.
            bars.clear();
            std::process::exit(130);
        }
        bars.println("tarfs: interrupted: finishing the archives in progress (again to quit now)");
    });
}

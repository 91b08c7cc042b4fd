//! The `tarfs` command: parses flags into library options, runs the operation on each archive,
//! and reports. One archive's failure never stops the others; the exit status is 0 when all went
//! well, 1 when any archive failed (or was busy), 2 for usage errors (from clap), and 130 when
//! interrupted.

mod cli;
mod listing;
mod man;
mod progress;

use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser};
use tarfs::archive::{sidecar_path, Archive, IndexDir};
use tarfs::batch::{self, Action, BatchOptions, Counting, Done, Progress, Summary};
use tarfs::discover::{Discover, Found, ARCHIVE_GLOBS};
use tarfs::ops::atomic::DirSyncs;
use tarfs::ops::append_csv::{append_csv_index, CsvOptions, CsvOutcome};
use tarfs::ops::create::create;
use tarfs::ops::embed::{embed, embed_to, EmbedAction, EmbedOptions};
use tarfs::ops::extract::{extract, ExtractOptions};
use tarfs::ops::filter::Filter;
use tarfs::chunked::ScanMode;
use tarfs::ops::index::{sidecar_freshness, write_sidecar, write_stream_sidecar, Freshness, IndexOptions};
use tarfs::stream::open_stream;
use tarfs::ops::in_place::{remove_stale_temps, Target};
use tarfs::ops::journal::Recovery;
use tarfs::ops::read::{cat, Reader};
use tarfs::ops::select::Selection;
use tarfs::ops::verify::verify;
use tarfs::ScanOptions;

use cli::{BatchArgs, Cli, Command, WalkArgs};
use listing::{JsonMember, LongFormat};
use progress::Bars;

/// Exit status: success, failure, or interrupted.
enum Status {
    Ok,
    Failed,
    Interrupted,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // An archive truncated while it is mapped fails alone instead of killing the process.
    tarfs::sigbus::install();
    let result = match &cli.command {
        Command::Index(a) => run_index(&cli, a, a.read.options()),
        Command::Embed(a) => run_embed(&cli, a, a.read.options()),
        Command::Csv(a) => run_csv(&cli, a, a.read.options()),
        Command::Recover(a) => run_recover(&cli, a),
        Command::Create(a) => run_create(&cli, a).map(status),
        Command::Ls(a) => run_ls(&cli, a, a.read.options()).map(status),
        Command::Cat(a) => run_cat(&cli, a, a.read.options()).map(status),
        Command::Extract(a) => run_extract(&cli, a, a.read.options()).map(status),
        Command::Verify(a) => run_verify(&cli, a, a.read.options()),
        Command::Recompress(a) => run_recompress(&cli, a, a.read.options()),
        Command::Mount(a) => run_mount(&cli, a, a.read.options()).map(status),
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "tarfs", &mut io::stdout());
            Ok(Status::Ok)
        }
        Command::Man(a) => man::run(a).map(|()| Status::Ok),
    };
    match result {
        Ok(Status::Ok) => ExitCode::SUCCESS,
        Ok(Status::Failed) => ExitCode::from(1),
        Ok(Status::Interrupted) => ExitCode::from(130),
        Err(e) => {
            // A closed stdout (`tarfs ls | head`) is not an error worth reporting.
            let broken_pipe = e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
                || matches!(e.downcast_ref::<tarfs::Error>(), Some(tarfs::Error::Io { path, source }) if path.as_os_str() == "-" && source.kind() == io::ErrorKind::BrokenPipe);
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            // Library errors already say what caused them; others carry context to show.
            match e.downcast_ref::<tarfs::Error>() {
                Some(inner) => warn(inner),
                None => warn(format!("{e:#}")),
            }
            ExitCode::from(1)
        }
    }
}

fn status(ok: bool) -> Status {
    if ok {
        Status::Ok
    } else {
        Status::Failed
    }
}

/// Prints `tarfs: MSG` on stderr. A stderr that cannot be written (`2>/dev/full`, a closed
/// pipe) is not a reason to stop: the exit status still tells.
fn warn(msg: impl std::fmt::Display) {
    let _ = writeln!(io::stderr(), "tarfs: {msg}");
}

fn index_dir_for(dir: Option<&Path>) -> Option<IndexDir> {
    dir.map(IndexDir::new)
}

/// Reports each archive as it finishes: the bars and stderr messages, then its `--json` record
/// or its line on stdout, flushed at once, so that a long batch can be followed (`| jq`, `| tail
/// -f`). A closed stdout stops the reports, not the work.
struct Reporter<'a> {
    bars: Bars,
    json: bool,
    line: Option<&'a (dyn Fn(&batch::Outcome) -> String + Sync)>,
    /// The first error writing stdout, other than a closed pipe.
    failed: std::sync::Mutex<Option<io::Error>>,
    closed: AtomicBool,
}

/// A `--json` record: `"type": "archive"` for each archive, as it finishes, and `"type":
/// "summary"` for the totals, last.
#[derive(serde::Serialize)]
struct Record<'a, T: serde::Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    body: &'a T,
}

/// The totals record.
#[derive(serde::Serialize)]
struct SummaryRecord<'a> {
    command: &'a str,
    dry_run: bool,
    #[serde(flatten)]
    totals: &'a Summary,
    seconds: f64,
}

impl Reporter<'_> {
    /// Writes `f`'s output to stdout and flushes it, unless stdout is closed. If it cannot be
    /// written (other than to a closed pipe), says so on stderr with `said`, what it would have
    /// said, so that what was done to the archive is not lost with it.
    fn print(&self, said: &str, f: impl FnOnce(&mut io::StdoutLock<'_>) -> io::Result<()>) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        let r = self.bars.suspend(|| {
            let mut out = io::stdout().lock();
            f(&mut out).and_then(|()| out.flush())
        });
        if let Err(e) = r {
            self.closed.store(true, Ordering::SeqCst);
            if e.kind() != io::ErrorKind::BrokenPipe {
                warn(format!("cannot write the report to standard output ({e}); it said: {said}"));
                *self.failed.lock().expect("unpoisoned") = Some(e);
            }
        }
    }
}

impl Progress for Reporter<'_> {
    fn begin(&self, archives: u64, bytes: u64) {
        self.bars.begin(archives, bytes);
    }
    fn started(&self, path: &Path, bytes: u64, covered: &Arc<std::sync::atomic::AtomicU64>) {
        self.bars.started(path, bytes, covered);
    }
    fn read(&self, path: &Path, bytes: u64) {
        self.bars.read(path, bytes);
    }
    fn finished(&self, o: &batch::Outcome) {
        self.bars.finished(o);
        let said = || format!("{}: {}", o.path.display(), o.reason.as_deref().or(o.error.as_ref().map(|e| e.message.as_str())).unwrap_or_default());
        if self.json {
            self.print(&said(), |out| {
                serde_json::to_writer(&mut *out, &Record { kind: "archive", body: o })?;
                writeln!(out)
            });
        } else if let Some(line) = self.line.filter(|_| o.error.is_none()) {
            let text = line(o);
            self.print(&text, |out| writeln!(out, "{text}"));
        }
    }
}

/// Runs `job` over the archives that `walk` finds, with progress, reports and a summary, and
/// returns the exit status. `line` formats a per-archive line for stdout (verify, recover), if
/// the command has one; `-q` drops it.
#[allow(clippy::too_many_arguments)]
fn run_batch(
    cli: &Cli,
    verb: &str,
    dry_run: bool,
    default_globs: &[&str],
    walk: &WalkArgs,
    b: &BatchArgs,
    job: impl Fn(&Found, &dyn Progress) -> tarfs::Result<Done> + Sync,
    line: Option<&(dyn Fn(&batch::Outcome) -> String + Sync)>,
    durability: Option<&Arc<DirSyncs>>,
) -> Result<Status> {
    let globs: Vec<&str> = if walk.glob.is_empty() { default_globs.to_vec() } else { walk.glob.iter().map(String::as_str).collect() };
    let mut d = Discover::with_globs(&globs)?;
    d.follow_links = walk.follow_links;
    let (found, walk_errors) = d.find(&walk.paths);
    for e in &walk_errors {
        warn(e);
    }
    if found.is_empty() && walk_errors.is_empty() {
        // An empty directory or an unmounted mount point: say so, even under -q.
        let paths: Vec<String> = walk.paths.iter().map(|p| p.display().to_string()).collect();
        warn(format!("{verb}: no archives found under {} (matching {})", paths.join(", "), globs.join(", ")));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let reporter = Reporter {
        bars: Bars::new(b.progress, b.quiet, cli.verbose, b.json),
        json: b.json,
        line: line.filter(|_| !b.quiet),
        failed: Default::default(),
        closed: AtomicBool::new(false),
    };
    {
        let stop = stop.clone();
        let bars = reporter.bars.handle();
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
    let start = Instant::now();
    // In-place changes handle a file once, by whichever of its names was found first.
    let once_per_file = matches!(verb, "embed" | "csv" | "recover");
    let (outcomes, stopped) = batch::run(&found, BatchOptions { jobs: b.jobs, fail_fast: b.fail_fast, once_per_file, durability: durability.cloned() }, &stop, &reporter, job);
    reporter.bars.finish();
    let s = Summary::of(&outcomes);
    let secs = start.elapsed().as_secs_f64();
    if b.json {
        reporter.print("the summary (it is on stderr too, unless -q)", |out| {
            serde_json::to_writer(&mut *out, &Record { kind: "summary", body: &SummaryRecord { command: verb, dry_run, totals: &s, seconds: secs } })?;
            writeln!(out)
        });
    }
    // The work is done whether or not its report could be printed: it was said, and the summary
    // still goes to stderr.
    let print_failed = reporter.failed.lock().expect("unpoisoned").is_some();
    if !b.quiet {
        warn(summary_line(verb, dry_run, &s, secs));
    }
    let interrupted = stop.load(Ordering::SeqCst);
    Ok(if interrupted {
        Status::Interrupted
    } else {
        status(s.failed == 0 && s.busy == 0 && walk_errors.is_empty() && !stopped && !print_failed)
    })
}

fn summary_line(verb: &str, dry_run: bool, s: &Summary, secs: f64) -> String {
    let mut parts = Vec::new();
    let counts = [
        (s.indexed, "indexed"),
        (s.would_index, "would be indexed"),
        (s.recompressed, "recompressed"),
        (s.would_recompress, "would be recompressed"),
        (s.finished, "finished"),
        (s.rolled_back, "rolled back"),
        (s.verified, "verified"),
        (s.skipped, "skipped"),
        (s.failed, "failed"),
        (s.busy, "busy"),
        (s.not_started, "not started"),
    ];
    for (n, what) in counts {
        if n > 0 || what == "failed" {
            parts.push(format!("{n} {what}"));
        }
    }
    let mib = s.bytes as f64 / (1 << 20) as f64;
    let dry = if dry_run { " (dry run, nothing written)" } else { "" };
    format!("{verb}{dry}: {}; {}, {mib:.1} MiB in {secs:.2} s", parts.join(", "), batch::count(s.members, "member", "members"))
}

fn run_index(cli: &Cli, a: &cli::IndexArgs, scan: ScanOptions) -> Result<Status> {
    let filter = Filter::new(&a.include, &a.exclude)?;
    let syncs = Arc::new(DirSyncs::default());
    let mode = match a.scan {
        cli::ScanArg::Auto => ScanMode::Auto,
        cli::ScanArg::Sequential => ScanMode::Sequential,
        cli::ScanArg::Parallel => ScanMode::Parallel,
    };
    let opts = IndexOptions { scan, filter: filter.clone(), dir_syncs: Some(syncs.clone()), mode, threads: 0, span: a.span, gzidx: a.gzidx.clone() };
    if a.output.is_some() && (a.walk.paths.len() != 1 || a.walk.paths[0].is_dir()) {
        anyhow::bail!("--output takes exactly one archive");
    }
    if a.gzidx.is_some() && (a.walk.paths.len() != 1 || a.walk.paths[0].is_dir()) {
        anyhow::bail!("--gzidx takes exactly one archive");
    }
    if a.span == 0 {
        anyhow::bail!("--span must be positive");
    }
    let job = |f: &Found, progress: &dyn Progress| -> tarfs::Result<Done> {
        let dir = index_dir_for(a.walk.index_dir.as_deref());
        if let Some(kind) = stream_kind(&f.path) {
            return index_stream(&f.path, kind, a, &opts, dir.as_ref(), progress);
        }
        let archive = Archive::open(&f.path)?;
        tarfs::ops::journal::refuse_pending(&archive)?;
        let dest = a.output.clone().unwrap_or_else(|| sidecar_path(&f.path, dir.as_ref()));
        let fresh = if a.force {
            // Rebuilt whatever its state: no need to read the old index.
            None
        } else if a.verify && dest.exists() {
            Some(match verify(&archive, dir.as_ref(), scan) {
                Ok(r) => Freshness::Fresh { entries: r.entries },
                Err(e) => Freshness::Stale(tarfs::verdict::Why::Unverified(e.to_string())),
            })
        } else {
            Some(sidecar_freshness(&archive, &dest, filter.as_ref()))
        };
        let mut reason = match &fresh {
            Some(Freshness::Fresh { entries }) => {
                let entries = *entries;
                let reason = if filter.is_some() { format!("fresh (a subset index of {})", batch::count(entries, "member", "members")) } else { "fresh".into() };
                return Ok(Done { action: Action::Skipped, reason: Some(reason), members: if filter.is_some() { 0 } else { entries }, index_path: Some(dest), warning: None });
            }
            None => "forced".to_string(),
            Some(Freshness::Missing) => "new".to_string(),
            Some(Freshness::Stale(why)) => format!("rebuilt: {why}"),
            Some(Freshness::Corrupt(why)) => format!("rebuilt: the old index is corrupt: {why}"),
        };
        if let Some(c) = tarfs::source::compression_of(&archive) {
            use tarfs::format::compression::Compression;
            if a.dry_run {
                return Ok(Done { action: Action::WouldIndex, reason: Some(format!("dry run: would index ({reason})")), members: 0, index_path: Some(dest), warning: None });
            }
            if a.gzidx.is_some() && c != Compression::Gzip {
                return Err(tarfs::Error::Invalid(format!("{}: --gzidx is for gzip-compressed archives", f.path.display())));
            }
            let stream = || open_stream(&f.path, |file| Box::new(Counting::new(file, progress, &f.path))).map(|(r, _)| r);
            let (rep, no_seek) = tarfs::ops::index::write_compressed_sidecar(&archive, c, &dest, &opts, stream)?;
            let reason = format!("{reason}{}{}", ext_note(&rep), no_seek.map(|w| format!("; {w}")).unwrap_or_default());
            return Ok(Done { action: Action::Indexed, reason: Some(reason), members: rep.members, index_path: Some(dest), warning: rep.end.warning.map(|w| w.to_string()) });
        }
        if a.dry_run {
            // Scan (reading only), so that archives that would fail are reported as failing.
            let mut members = 0;
            let mut scanner = tarfs::Scanner::new(archive.bytes(), scan);
            for e in scanner.by_ref() {
                e.map_err(|source| tarfs::Error::Scan { path: f.path.clone(), source })?;
                members += 1;
            }
            let warning = scanner.end().and_then(|e| e.warning).map(|w| w.to_string());
            return Ok(Done { action: Action::WouldIndex, reason: Some(format!("dry run: would index ({reason})")), members, index_path: Some(dest), warning });
        }
        if let Some(Freshness::Stale(why)) = &fresh {
            // Grown by appended members: the old index answers for the old part.
            match tarfs::ops::grown::write_sidecar_grown(&archive, &dest, &opts)? {
                Ok(g) => {
                    let reason = format!("grew ({why}): {} kept, {} read{}", batch::count(g.kept, "member", "members"), batch::count(g.read, "byte", "bytes"), ext_note(&g.report));
                    return Ok(Done { action: Action::Indexed, reason: Some(reason), members: g.report.members, index_path: Some(dest), warning: g.report.end.warning.map(|w| w.to_string()) });
                }
                // Why the old index could not answer for the old part: the whole is read.
                Err(not) => reason = format!("{reason}; in full: {not}"),
            }
        }
        let r = write_sidecar(&archive, &dest, &opts)?;
        let reason = format!("{reason}{}", ext_note(&r));
        Ok(Done { action: Action::Indexed, reason: Some(reason), members: r.members, index_path: Some(dest), warning: r.end.warning.map(|w| w.to_string()) })
    };
    let status = run_batch(cli, "index", a.dry_run, &ARCHIVE_GLOBS, &a.walk, &a.batch, job, None, Some(&syncs));
    syncs.sync_all()?;
    status
}

/// `tarfs mount`: in the foreground, mounts and serves; else starts itself in the foreground as
/// a daemon (its own process group, stdin closed) and returns once it says the mount is ready,
/// or with its failure.
fn run_mount(cli: &Cli, a: &cli::MountArgs, scan: ScanOptions) -> Result<bool> {
    use tarfs::mount::{fs::{Loaded, TarFs}, MountOptions};
    const CHILD: &str = "TARFS_MOUNT_DAEMON";
    if !a.mountpoint.is_dir() {
        anyhow::bail!("{}: cannot mount there: not a directory", a.mountpoint.display());
    }
    let daemon = std::env::var_os(CHILD).is_some();
    if !a.foreground && !daemon {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .args(std::env::args_os().skip(1))
            .env(CHILD, "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .process_group(0)
            .spawn()?;
        let mut line = String::new();
        let mut out = io::BufReader::new(child.stdout.take().expect("piped"));
        out.read_line(&mut line)?;
        if line.trim() == "ready" {
            return Ok(true);
        }
        let status = child.wait()?;
        return Ok(status.success());
    }
    let opts = MountOptions { index_dir: a.index_dir.clone(), scan, uid: a.uid, gid: a.gid, allow_other: a.allow_other, verbose: cli.verbose, threads: 0, readdirplus: a.readdirplus };
    let fs = if a.source.is_dir() {
        let globs: Vec<&str> = if a.glob.is_empty() { ARCHIVE_GLOBS.to_vec() } else { a.glob.iter().map(String::as_str).collect() };
        let (found, errors) = Discover::with_globs(&globs)?.find(std::slice::from_ref(&a.source));
        for e in &errors {
            warn(e);
        }
        let root = a.source.canonicalize()?;
        let archives: Vec<(std::path::PathBuf, Vec<u8>)> = found
            .into_iter()
            .filter_map(|f| {
                let abs = f.path.canonicalize().ok()?;
                let rel = abs.strip_prefix(&root).ok()?.as_os_str().as_encoded_bytes().to_vec();
                Some((abs, rel))
            })
            .collect();
        if cli.verbose {
            warn(format!("{}: {} archives; each is loaded when first looked into", a.source.display(), archives.len()));
        }
        let mtime = std::fs::metadata(&a.source).map(|m| std::os::unix::fs::MetadataExt::mtime(&m)).unwrap_or(0);
        TarFs::tree(archives, opts.clone(), mtime)
    } else {
        let started = std::time::Instant::now();
        if a.write_index {
            let archive = Archive::open(&a.source)?;
            let dir = index_dir_for(a.index_dir.as_deref());
            if tarfs::ops::read::locate(&archive, dir.as_ref())?.is_none() && tarfs::ops::read::locate_csv(&archive, scan).is_none() {
                let dest = sidecar_path(&a.source, dir.as_ref());
                let iopts = IndexOptions { scan, ..IndexOptions::default() };
                let stream = || open_stream(&a.source, |f| Box::new(f)).map(|(r, _)| r);
                tarfs::ops::index::write_any_sidecar(&archive, &dest, &iopts, stream)?;
                warn(format!("{}: no index: scanned it and wrote {}", a.source.display(), dest.display()));
            }
        }
        let loaded = Loaded::open(&a.source, &opts)?;
        if loaded.note.starts_with("no index") && !a.write_index {
            warn(format!("{}: {} ({} entries in {:.2} s); --write-index saves what a scan finds as a sidecar", a.source.display(), loaded.note, loaded.tree().len(), started.elapsed().as_secs_f64()));
        } else if cli.verbose {
            warn(format!("{}: {} entries {} in {:.2} s, {} bytes of tree", a.source.display(), loaded.tree().len(), loaded.note, started.elapsed().as_secs_f64(), loaded.tree().heap_bytes()));
        }
        TarFs::single(a.source.clone(), loaded, opts.clone())
    };
    let verbose = cli.verbose;
    let (source, mp, log) = (a.source.clone(), a.mountpoint.clone(), a.log.clone());
    tarfs::mount::mount(fs, &a.source, &a.mountpoint, &opts, move || {
        if verbose {
            warn(format!("mounted {} at {}", source.display(), mp.display()));
        }
        if daemon {
            // Detach from the caller's output, which it may be waiting on (`$(tarfs mount ...)`,
            // cron): later messages go to the log, or nowhere. Then the parent is told, and
            // returns.
            let log = log.as_ref().and_then(|l| std::fs::OpenOptions::new().create(true).append(true).open(l).ok());
            let null = std::fs::OpenOptions::new().write(true).open("/dev/null");
            if let Some(f) = log.as_ref().or(null.as_ref().ok()) {
                let _ = rustix::stdio::dup2_stderr(f);
            }
            let mut out = io::stdout();
            let _ = writeln!(out, "ready");
            let _ = out.flush();
            if let Ok(n) = &null {
                let _ = rustix::stdio::dup2_stdout(n);
            }
        }
    })?;
    Ok(true)
}

fn run_recompress(cli: &Cli, a: &cli::RecompressArgs, scan: ScanOptions) -> Result<Status> {
    use tarfs::ops::recompress::{recompress, RecompressOptions, Recompressed};
    if a.frame_size == 0 {
        anyhow::bail!("--frame-size must be positive");
    }
    let syncs = Arc::new(DirSyncs::default());
    let index = IndexOptions { scan, dir_syncs: Some(syncs.clone()), ..IndexOptions::default() };
    let opts = RecompressOptions { frame: a.frame_size, level: a.level, threads: a.batch.jobs, force: a.force, dry_run: a.dry_run, index };
    let job = |f: &Found, _progress: &dyn Progress| -> tarfs::Result<Done> {
        let dir = index_dir_for(a.walk.index_dir.as_deref());
        match recompress(&f.path, &opts, |p| sidecar_path(p, dir.as_ref()))? {
            Recompressed::WouldRewrite(how) => Ok(Done { action: Action::WouldRecompress, reason: Some(how.to_string()), members: 0, index_path: None, warning: None }),
            Recompressed::Skipped(why) => Ok(Done { action: Action::Skipped, reason: Some(why.to_string()), members: 0, index_path: None, warning: None }),
            Recompressed::Indexed(why, index, no_seek) => {
                let reason = format!("{why}; its sidecar was missing or stale{}{}", ext_note(&index), no_seek.map(|w| format!("; {w}")).unwrap_or_default());
                Ok(Done { action: Action::Indexed, reason: Some(reason), members: index.members, index_path: Some(index.index_path), warning: index.end.warning.map(|w| w.to_string()) })
            }
            Recompressed::Done { format, before, after, decompressed, index, no_seek } => {
                let how = if format == tarfs::format::compression::Compression::Zstd { "the zstd seekable format, in frames" } else { "xz, in blocks" };
                let change = (after as f64 - before as f64) * 100.0 / before.max(1) as f64;
                let reason = format!(
                    "as {how} of {} bytes: {before} -> {after} bytes ({change:+.1}%), {decompressed} decompressed, the same bytes as before{}{}",
                    a.frame_size,
                    ext_note(&index),
                    no_seek.map(|w| format!("; {w}")).unwrap_or_default()
                );
                Ok(Done { action: Action::Recompressed, reason: Some(reason), members: index.members, index_path: Some(index.index_path), warning: index.end.warning.map(|w| w.to_string()) })
            }
        }
    };
    let status = run_batch(cli, "recompress", a.dry_run, &tarfs::discover::RECOMPRESS_GLOBS, &a.walk, &a.batch, job, None, Some(&syncs));
    syncs.sync_all()?;
    status
}

/// Why `embed` surveyed the whole archive though it had an embedded index, for the report.
fn in_full(r: &tarfs::ops::embed::EmbedReport) -> String {
    r.in_full.as_ref().map(|why| format!(" (in full: {why})")).unwrap_or_default()
}

/// What the index's extension data (and seek points) cost, for the report.
fn ext_note(r: &tarfs::ops::index::IndexReport) -> String {
    let seek = match &r.seek {
        Some(s) => format!(
            "; {} seek points, {} bytes ({:.2}% of the {} decompressed bytes)",
            s.checkpoints,
            s.bytes,
            s.bytes as f64 * 100.0 / s.decompressed.max(1) as f64,
            s.decompressed
        ),
        None => String::new(),
    };
    format!("{}{seek}", ext_part(r))
}

fn ext_part(r: &tarfs::ops::index::IndexReport) -> String {
    if r.ext_len == 0 || r.entries == 0 {
        return "; no extension data (a value does not fit it)".into();
    }
    let n = r.entries as f64;
    format!(
        "; extension data {} bytes: {} per member, {:.1} per member of names, {:.1} of its header, chunk table and padding",
        r.ext_len,
        tarfs::format::ext::BYTES_PER_MEMBER,
        r.ext_names as f64 / n,
        (r.ext_len - r.ext_names) as f64 / n - tarfs::format::ext::BYTES_PER_MEMBER as f64
    )
}

/// Inputs read as streams: standard input, FIFOs, and character devices (tape drives).
#[derive(Clone, Copy, PartialEq, Eq)]
enum StreamKind {
    Stdin,
    Fifo,
    Device,
}

fn stream_kind(path: &Path) -> Option<StreamKind> {
    use std::os::unix::fs::FileTypeExt;
    if path.as_os_str() == "-" {
        return Some(StreamKind::Stdin);
    }
    let ft = std::fs::metadata(path).ok()?.file_type();
    if ft.is_fifo() {
        Some(StreamKind::Fifo)
    } else if ft.is_char_device() {
        Some(StreamKind::Device)
    } else {
        None
    }
}

/// Indexes a stream input into `--output`, or the device's name under `--index-dir`, or (for a
/// FIFO) the usual sidecar beside it.
fn index_stream(path: &Path, kind: StreamKind, a: &cli::IndexArgs, opts: &IndexOptions, dir: Option<&IndexDir>, progress: &dyn Progress) -> tarfs::Result<Done> {
    let dest = match (&a.output, kind, dir) {
        (Some(out), _, _) => out.clone(),
        (None, StreamKind::Stdin, _) => return Err(tarfs::Error::Invalid("indexing standard input needs --output FILE".into())),
        (None, StreamKind::Device, Some(d)) => d.sidecar_for(path),
        (None, StreamKind::Device, None) => {
            return Err(tarfs::Error::Invalid(format!("{}: a device's index needs --output FILE or --index-dir DIR", path.display())))
        }
        (None, StreamKind::Fifo, _) => sidecar_path(path, dir),
    };
    if a.dry_run {
        return Ok(Done { action: Action::WouldIndex, reason: Some("dry run: would read the stream and index it".into()), members: 0, index_path: Some(dest), warning: None });
    }
    // Tapes are read in whole records; pipes in large reads.
    let chunk = if kind == StreamKind::Device || a.record_size != 10240 { a.record_size } else { 1 << 20 };
    let rep = if kind == StreamKind::Stdin {
        write_stream_sidecar(Path::new("-"), &mut Counting::new(io::stdin().lock(), progress, path), chunk, 0, &dest, opts)?
    } else {
        let f = std::fs::File::open(path).map_err(|e| tarfs::Error::Io { path: path.to_path_buf(), source: e })?;
        write_stream_sidecar(path, &mut Counting::new(f, progress, path), chunk, 0, &dest, opts)?
    };
    Ok(Done { action: Action::Indexed, reason: Some("read as a stream".into()), members: rep.members, index_path: Some(dest), warning: rep.end.warning.map(|w| w.to_string()) })
}

fn run_embed(cli: &Cli, a: &cli::EmbedArgs, scan: ScanOptions) -> Result<Status> {
    let opts = EmbedOptions { scan, force: a.force, dry_run: a.dry_run, max_growth: a.max_growth };
    if let Some(out) = &a.output {
        if a.walk.paths.len() != 1 || a.walk.paths[0].is_dir() {
            anyhow::bail!("--output takes exactly one archive");
        }
        let r = embed_to(&a.walk.paths[0], out, opts)?;
        if cli.verbose {
            warn(format!("{}: {}, index first, {} bytes written", out.display(), batch::count(r.members, "member", "members"), r.bytes_written));
        }
        return Ok(Status::Ok);
    }
    let dry = if a.dry_run { "dry run: would have " } else { "" };
    let done = if a.dry_run { Action::WouldIndex } else { Action::Indexed };
    let job = |f: &Found, _: &dyn Progress| -> tarfs::Result<Done> {
        let r = embed(&f.path, opts)?;
        let (action, reason) = match r.action {
            EmbedAction::UpToDate => (Action::Skipped, "index up to date".to_string()),
            EmbedAction::Reindexed => match r.grew {
                Some(g) => (done, format!("{dry}re-indexed in place from the old end (grew: {} kept, {} read); {} bytes written", batch::count(g.kept, "member", "members"), batch::count(g.read, "byte", "bytes"), r.bytes_written)),
                None => (done, format!("{dry}re-indexed in place{}; {} bytes written", in_full(&r), r.bytes_written)),
            },
            EmbedAction::Embedded => (
                done,
                format!("{dry}embedded{}, {} displaced to the end; {} bytes written, the archive grew by {} bytes", in_full(&r), batch::count(r.displaced, "member", "members"), r.bytes_written, r.growth),
            ),
        };
        Ok(Done { action, reason: Some(reason), members: r.members, index_path: Some(f.path.clone()), warning: None })
    };
    run_batch(cli, "embed", a.dry_run, &["*.tar"], &a.walk, &a.batch, job, None, None)
}

fn run_csv(cli: &Cli, a: &cli::CsvArgs, scan: ScanOptions) -> Result<Status> {
    let opts = CsvOptions { scan, skip_fresh: !a.force, dry_run: a.dry_run };
    let dry = if a.dry_run { "dry run: would have " } else { "" };
    let job = |f: &Found, _: &dyn Progress| -> tarfs::Result<Done> {
        Ok(match append_csv_index(&f.path, opts)? {
            CsvOutcome::Fresh { name, rows } => {
                Done { action: Action::Skipped, reason: Some(format!("{name} already lists every member")), members: rows, index_path: None, warning: None }
            }
            CsvOutcome::Appended(r) => Done {
                action: if a.dry_run { Action::WouldIndex } else { Action::Indexed },
                reason: Some(format!("{dry}appended {} at byte {}", r.name, r.offset)),
                members: r.rows,
                index_path: None,
                warning: None,
            },
        })
    };
    run_batch(cli, "csv", a.dry_run, &["*.tar"], &a.walk, &a.batch, job, None, None)
}

fn run_recover(cli: &Cli, a: &cli::RecoverArgs) -> Result<Status> {
    let job = |f: &Found, _: &dyn Progress| -> tarfs::Result<Done> {
        // Temporary files that killed runs left: removed whatever the recovery does.
        let sidecar = sidecar_path(&f.path, index_dir_for(a.walk.index_dir.as_deref()).as_ref());
        let removed = remove_stale_temps(&f.path, &sidecar)?;
        let note = removed_note(&removed);
        // A compressed archive is never changed in place (recompress replaces it through a
        // temporary file): it has no journal, only temporary files.
        if is_compressed(&f.path) {
            return Ok(Done { action: Action::Skipped, reason: Some(format!("nothing to recover (compressed){note}")), members: 0, index_path: None, warning: None });
        }
        let recovered = Target::recover_only(&f.path).inspect_err(|_| {
            if !note.is_empty() {
                warn(format!("{}: {}", f.path.display(), note.trim_start_matches("; ")));
            }
        })?;
        let (action, reason) = match recovered {
            None => (Action::Skipped, "nothing to recover"),
            Some(Recovery::Finished) => (Action::Finished, "recovered: finished the interrupted change"),
            Some(Recovery::RolledBack) => (Action::RolledBack, "recovered: rolled back the interrupted change; the archive is as it was"),
        };
        Ok(Done { action, reason: Some(format!("{reason}{note}")), members: 0, index_path: None, warning: None })
    };
    let line = |o: &batch::Outcome| format!("{}: {}", o.path.display(), o.reason.as_deref().unwrap_or_default());
    run_batch(cli, "recover", false, &ARCHIVE_GLOBS, &a.walk, &a.batch, job, Some(&line), None)
}

/// Whether the regular file at `path` starts as a compressed stream (unreadable: no).
fn is_compressed(path: &Path) -> bool {
    use std::io::Read;
    use tarfs::format::compression::Compression;
    // Not opened unless regular: a FIFO would block the open.
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut head = Vec::with_capacity(Compression::HEAD);
    let read = std::fs::File::open(path).and_then(|f| f.take(Compression::HEAD as u64).read_to_end(&mut head));
    read.is_ok() && Compression::detect(&head).is_some()
}

/// What `recover` says of the temporary files it removed (empty when none): `; removed N
/// temporary file(s) left by a killed run: NAMES`.
fn removed_note(removed: &[std::path::PathBuf]) -> String {
    if removed.is_empty() {
        return String::new();
    }
    let names: Vec<String> = removed.iter().map(|p| p.display().to_string()).collect();
    let what = if removed.len() == 1 { "temporary file" } else { "temporary files" };
    format!("; removed {} {what} left by a killed run: {}", removed.len(), names.join(", "))
}

fn run_verify(cli: &Cli, a: &cli::VerifyArgs, scan: ScanOptions) -> Result<Status> {
    let job = |f: &Found, _: &dyn Progress| -> tarfs::Result<Done> {
        let archive = Archive::open(&f.path)?;
        let dir = index_dir_for(a.walk.index_dir.as_deref());
        let r = verify(&archive, dir.as_ref(), scan)?;
        let kind = if r.subset { "subset index" } else { "index" };
        let later = match r.uncovered {
            0 => String::new(),
            1 => "; 1 later member is not in it".to_string(),
            n => format!("; {n} later members are not in it"),
        };
        let reason = format!("{kind} of {} ({}), {}{later}", batch::count(r.entries, "entry", "entries"), r.source, batch::count(r.members, "member", "members"));
        Ok(Done { action: Action::Verified, reason: Some(reason), members: r.members, index_path: None, warning: None })
    };
    let line = |o: &batch::Outcome| format!("{}: ok: {}", o.path.display(), o.reason.as_deref().unwrap_or_default());
    run_batch(cli, "verify", false, &ARCHIVE_GLOBS, &a.walk, &a.batch, job, Some(&line), None)
}

fn run_create(cli: &Cli, a: &cli::CreateArgs) -> Result<bool> {
    let r = create(&a.out, &a.dir, &a.paths)?;
    for s in &r.skipped {
        warn(s);
    }
    // As GNU tar does: the archive is written, and the exit status says it may hold torn files.
    for c in &r.changed {
        warn(c);
    }
    if cli.verbose {
        warn(format!("{}: {}, index first", a.out.display(), batch::count(r.members, "member", "members")));
    }
    Ok(r.changed.is_empty())
}

/// What opening the index read of the archive, for `-v`.
fn freshness_note(reader: &Reader<'_>) -> String {
    match (reader.opening_reads(), reader.compression()) {
        (_, Some(c)) => format!(
            " ({}-compressed, {}: {} bytes decompressed; the index's freshness is its recorded file length)",
            c.name(),
            reader.seeking().unwrap_or_default(),
            reader.bytes_decoded().unwrap_or_default()
        ),
        (0, None) => String::new(),
        (n, None) => format!(", and {n} bytes of its headers to check the index is fresh"),
    }
}

fn open_reader<'a>(cli: &Cli, archive: &'a Archive, index_dir: Option<&Path>, scan: ScanOptions) -> Result<Reader<'a>> {
    let dir = index_dir_for(index_dir);
    let reader = Reader::open(archive, dir.as_ref(), scan)?;
    if let Some(note) = reader.note() {
        warn(format!("{}: {note}", archive.path().display()));
    }
    if cli.verbose {
        warn(format!("{}: using {}", archive.path().display(), reader.source()));
    }
    Ok(reader)
}

/// The selection that member operands and `--wildcards`/`--exclude` make.
fn selection(members: &[std::path::PathBuf], s: &cli::SelectArgs) -> Result<Selection> {
    Ok(Selection::new(members.iter().map(|m| m.as_os_str().as_bytes().to_vec()).collect(), s.wildcards, &s.exclude)?)
}

fn run_ls(cli: &Cli, a: &cli::LsArgs, scan: ScanOptions) -> Result<bool> {
    let from_stdin = a.archive.as_os_str() == "-";
    let mut select = selection(&a.members, &a.select)?;
    let archive = if from_stdin { None } else { Some(Archive::open(&a.archive)?) };
    let stdout = io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 16, stdout);
    let mut long = LongFormat::default();
    let mut io_err = None;
    let mut each = |e: &tarfs::Entry<'_>| {
        if !select.take(&e.path()) {
            return Ok(());
        }
        let r = if a.json {
            serde_json::to_writer(&mut out, &JsonMember::new(e)).map_err(io::Error::from).and_then(|_| out.write_all(b"\n"))
        } else if a.long {
            writeln!(out, "{}", long.line(e))
        } else {
            out.write_all(&e.path()).and_then(|_| out.write_all(b"\n"))
        };
        if let Err(err) = r {
            io_err = Some(err);
            return Err(tarfs::Error::Invalid("output closed".into()));
        }
        Ok(())
    };
    let end = match &archive {
        // Standard input: one pass over the stream, as `tar -tf -` does.
        None => tarfs::stream::open_stdin().and_then(|mut r| tarfs::stream::scan_stream(&mut r, Path::new("-"), scan, 1 << 20, &mut each)).map(|e| Some(e.end)),
        Some(archive) => {
            let reader = open_reader(cli, archive, a.index_dir.as_deref(), scan)?;
            let end = reader.for_each(&mut each);
            if cli.verbose {
                warn(format!("{}: read {} bytes of the archive for the listing{}", a.archive.display(), reader.bytes_read(), freshness_note(&reader)));
            }
            end
        }
    };
    if let Some(err) = io_err {
        return Err(err.into());
    }
    let end = end?;
    out.flush()?;
    if let Some(w) = end.and_then(|e| e.warning) {
        warn(format!("{}: warning: {w}", a.archive.display()));
    }
    // As tar: each operand that named nothing is an error, after the listing.
    let mut all_found = true;
    for name in select.unmatched() {
        warn(format!("{}: {}: not found in archive", a.archive.display(), String::from_utf8_lossy(name)));
        all_found = false;
    }
    Ok(all_found)
}

fn run_cat(cli: &Cli, a: &cli::CatArgs, scan: ScanOptions) -> Result<bool> {
    let names: Vec<Vec<u8>> = a.members.iter().map(|m| m.as_os_str().as_bytes().to_vec()).collect();
    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    if a.archive.as_os_str() == "-" {
        // Standard input: one pass, as `tar -xOf -` does.
        let r = tarfs::ops::read::cat_stdin(&names, scan, &mut out);
        out.flush()?;
        r?;
        return Ok(true);
    }
    let archive = Archive::open(&a.archive)?;
    let mut reader = open_reader(cli, &archive, a.index_dir.as_deref(), scan)?;
    if let Some(g) = &a.gzidx {
        reader.use_gzidx(tarfs::seekpoints::read_gzidx(g, &archive)?)?;
    }
    let r = cat(&reader, &names, &mut out);
    out.flush()?;
    if cli.verbose {
        warn(format!("{}: read {} bytes of the archive{}", a.archive.display(), reader.bytes_read(), freshness_note(&reader)));
    }
    r?;
    Ok(true)
}

fn run_extract(cli: &Cli, a: &cli::ExtractArgs, scan: ScanOptions) -> Result<bool> {
    let mut archive = if a.archive.as_os_str() == "-" {
        // Standard input: spooled beside the destination (extraction places members in any
        // order an index gives, and checks hard links against earlier members).
        tarfs::stream::spool_stdin(&a.dest)?
    } else {
        Archive::open(&a.archive)?
    };
    if let Some(c) = tarfs::source::compression_of(&archive) {
        // With an index that lists every member and reads each alone, one forward pass
        // through the stream (or its seek points) extracts them. Otherwise, decode once into a
        // temporary file, mapped.
        let streams = Reader::open(&archive, index_dir_for(a.index_dir.as_deref()).as_ref(), scan).is_ok_and(|r| r.reads_members_alone());
        if !streams {
            let plain = tarfs::source::Decoded::new(&archive, c).materialize()?;
            archive = plain;
        }
    }
    let reader = open_reader(cli, &archive, a.index_dir.as_deref(), scan)?;
    let select = selection(&a.members, &a.select)?;
    let report = extract(&reader, &ExtractOptions { dest: a.dest.clone(), select, strip_components: a.strip_components, numeric_owner: a.numeric_owner }).context("extract")?;
    for f in &report.failures {
        warn(f);
    }
    if cli.verbose {
        let decoded = match (reader.bytes_decoded(), reader.seeking()) {
            (Some(n), Some(how)) => format!(", {how}: {n} bytes decompressed"),
            _ if archive.compressed_len().is_some() => ", decompressed once into a temporary file".to_string(),
            _ => String::new(),
        };
        warn(format!("{}: extracted {}{decoded}", a.archive.display(), batch::count(report.extracted, "member", "members")));
    }
    Ok(report.failures.is_empty())
}

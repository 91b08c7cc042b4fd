//! The `tarfs` command: parses flags into library options, runs the operation on each archive,
//! and reports. One archive's failure never stops the others; the exit status is 0 when all went
//! well, 1 when any archive failed, and 2 for usage errors (from clap).

mod cli;
mod listing;

use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use rayon::prelude::*;
use tarfs::archive::{sidecar_path, Archive, IndexDir};
use tarfs::discover::{Discover, Found};
use tarfs::ops::append_csv::append_csv_index;
use tarfs::ops::create::create;
use tarfs::ops::embed::{embed, embed_to, EmbedAction, EmbedOptions};
use tarfs::ops::extract::{extract, ExtractOptions};
use tarfs::ops::filter::Filter;
use tarfs::ops::journal::{recover, Recovery};
use tarfs::ops::lock::try_lock;
use tarfs::ops::index::{write_sidecar, IndexOptions};
use tarfs::ops::read::{cat, Reader};
use tarfs::ops::verify::verify;
use tarfs::ScanOptions;

use cli::{Cli, Command, WalkArgs};
use listing::{JsonMember, LongFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let opts = ScanOptions { lenient: cli.lenient, ..ScanOptions::default() };
    let result = match &cli.command {
        Command::Index(a) => run_index(&cli, a, opts),
        Command::Embed(a) => run_embed(&cli, a, opts),
        Command::Csv(a) => run_csv(&cli, a, opts),
        Command::Recover(a) => run_recover(a),
        Command::Create(a) => run_create(&cli, a),
        Command::Ls(a) => run_ls(&cli, a, opts),
        Command::Cat(a) => run_cat(&cli, a, opts),
        Command::Extract(a) => run_extract(&cli, a, opts),
        Command::Verify(a) => run_verify(&cli, &a.walk, opts),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            // A closed stdout (`tarfs ls | head`) is not an error worth reporting.
            if e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) {
                return ExitCode::SUCCESS;
            }
            eprintln!("tarfs: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn warn(msg: impl std::fmt::Display) {
    eprintln!("tarfs: {msg}");
}

fn index_dir_for(path: &Path, dir: Option<&Path>) -> Option<IndexDir> {
    dir.map(|d| IndexDir { dir: d.to_path_buf(), root: path.parent().map(Path::to_path_buf).unwrap_or_default() })
}

fn find(walk: &WalkArgs) -> Result<(Vec<Found>, bool)> {
    let mut d = Discover::with_glob(&walk.glob)?;
    d.follow_links = walk.follow_links;
    let (found, errors) = d.find(&walk.paths);
    for e in &errors {
        warn(e);
    }
    Ok((found, errors.is_empty()))
}

/// Runs `job` on every archive in parallel, and reports results in discovery order.
fn for_each_archive<T: Send>(found: &[Found], job: impl Fn(&Found) -> tarfs::Result<T> + Sync, mut report: impl FnMut(&Found, T)) -> bool {
    let results: Vec<tarfs::Result<T>> = found.par_iter().map(&job).collect();
    let mut ok = true;
    for (f, r) in found.iter().zip(results) {
        match r {
            Ok(v) => report(f, v),
            Err(e) => {
                warn(e);
                ok = false;
            }
        }
    }
    ok
}

fn run_index(cli: &Cli, a: &cli::IndexArgs, scan: ScanOptions) -> Result<bool> {
    let opts = IndexOptions { scan, filter: Filter::new(&a.include, &a.exclude)? };
    let (found, walk_ok) = find(&a.walk)?;
    let start = Instant::now();
    let (mut archives, mut members, mut bytes) = (0u64, 0u64, 0u64);
    let ok = for_each_archive(
        &found,
        |f| {
            let archive = Archive::open(&f.path)?;
            let dest = sidecar_path(&f.path, f.index_dir(a.walk.index_dir.as_deref()).as_ref());
            write_sidecar(&archive, &dest, &opts)
        },
        |f, r| {
            if let Some(w) = r.end.warning {
                warn(format!("{}: warning: {w}", f.path.display()));
            }
            if cli.verbose {
                eprintln!("{}: {} members, {} entries -> {}", f.path.display(), r.members, r.entries, r.index_path.display());
            }
            archives += 1;
            members += r.members;
            bytes += r.bytes;
        },
    );
    if cli.verbose || found.len() > 1 {
        let failed = found.len() as u64 - archives;
        eprintln!(
            "tarfs: indexed {archives} archive(s), {members} members, {bytes} bytes in {:.2}s; {failed} failed",
            start.elapsed().as_secs_f64()
        );
    }
    Ok(ok && walk_ok)
}

fn run_embed(cli: &Cli, a: &cli::EmbedArgs, scan: ScanOptions) -> Result<bool> {
    let opts = EmbedOptions { scan, force: a.force };
    if let Some(out) = &a.output {
        if a.walk.paths.len() != 1 || a.walk.paths[0].is_dir() {
            anyhow::bail!("--output takes exactly one archive");
        }
        let r = embed_to(&a.walk.paths[0], out, opts)?;
        if cli.verbose {
            warn(format!("{}: {} members, index first, {} bytes written", out.display(), r.members, r.bytes_written));
        }
        return Ok(true);
    }
    let (found, walk_ok) = find(&a.walk)?;
    let ok = for_each_archive(
        &found,
        |f| embed(&f.path, opts),
        |f, r| {
            let what = match r.action {
                EmbedAction::UpToDate => "index up to date; left alone".to_string(),
                EmbedAction::Reindexed => format!("re-indexed in place ({} members)", r.members),
                EmbedAction::Embedded => format!("embedded ({} members, {} displaced to the end)", r.members, r.displaced),
            };
            if cli.verbose || r.action == EmbedAction::UpToDate {
                eprintln!("{}: {what}; {} bytes written", f.path.display(), r.bytes_written);
            }
        },
    );
    Ok(ok && walk_ok)
}

fn run_csv(cli: &Cli, a: &cli::CsvArgs, scan: ScanOptions) -> Result<bool> {
    let (found, walk_ok) = find(&a.walk)?;
    let ok = for_each_archive(
        &found,
        |f| append_csv_index(&f.path, scan),
        |f, r| {
            if cli.verbose {
                eprintln!("{}: appended {} ({} rows) at byte {}", f.path.display(), r.name, r.rows, r.offset);
            }
        },
    );
    Ok(ok && walk_ok)
}

fn run_recover(a: &cli::RecoverArgs) -> Result<bool> {
    let (found, walk_ok) = find(&a.walk)?;
    let mut out = io::stdout().lock();
    let ok = for_each_archive(
        &found,
        |f| {
            let _lock = try_lock(&f.path)?;
            recover(&f.path)
        },
        |f, r| {
            let what = match r {
                None => "nothing to recover",
                Some(Recovery::Finished) => "finished the interrupted change",
                Some(Recovery::RolledBack) => "rolled back the interrupted change; the archive is as it was",
            };
            let _ = writeln!(out, "{}: {what}", f.path.display());
        },
    );
    Ok(ok && walk_ok)
}

fn run_create(cli: &Cli, a: &cli::CreateArgs) -> Result<bool> {
    let r = create(&a.out, &a.dir, &a.paths)?;
    if cli.verbose {
        warn(format!("{}: {} members, index first", a.out.display(), r.members));
    }
    Ok(true)
}

fn open_reader<'a>(cli: &Cli, archive: &'a Archive, index_dir: Option<&Path>, scan: ScanOptions) -> Result<Reader<'a>> {
    let dir = index_dir_for(archive.path(), index_dir);
    let reader = Reader::open(archive, dir.as_ref(), scan)?;
    if let Some(note) = reader.note() {
        warn(format!("{}: {note}", archive.path().display()));
    }
    if cli.verbose {
        warn(format!("{}: using {}", archive.path().display(), reader.source()));
    }
    Ok(reader)
}

fn run_ls(cli: &Cli, a: &cli::LsArgs, scan: ScanOptions) -> Result<bool> {
    let archive = Archive::open(&a.archive)?;
    let reader = open_reader(cli, &archive, a.index_dir.as_deref(), scan)?;
    let stdout = io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 16, stdout);
    let mut long = LongFormat::default();
    let mut io_err = None;
    let end = reader.for_each(|e| {
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
    });
    if let Some(err) = io_err {
        return Err(err.into());
    }
    let end = end?;
    out.flush()?;
    if let Some(w) = end.and_then(|e| e.warning) {
        warn(format!("{}: warning: {w}", a.archive.display()));
    }
    Ok(true)
}

fn run_cat(cli: &Cli, a: &cli::CatArgs, scan: ScanOptions) -> Result<bool> {
    let archive = Archive::open(&a.archive)?;
    let reader = open_reader(cli, &archive, a.index_dir.as_deref(), scan)?;
    let names: Vec<Vec<u8>> = a.members.iter().map(|m| m.as_os_str().as_bytes().to_vec()).collect();
    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    let r = cat(&reader, &names, &mut out);
    out.flush()?;
    r?;
    Ok(true)
}

fn run_extract(cli: &Cli, a: &cli::ExtractArgs, scan: ScanOptions) -> Result<bool> {
    let archive = Archive::open(&a.archive)?;
    let reader = open_reader(cli, &archive, a.index_dir.as_deref(), scan)?;
    let names = a.members.iter().map(|m| m.as_os_str().as_bytes().to_vec()).collect();
    let report = extract(&reader, &ExtractOptions { dest: a.dest.clone(), names }).context("extract")?;
    for f in &report.failures {
        warn(f);
    }
    if cli.verbose {
        warn(format!("{}: extracted {} members", a.archive.display(), report.extracted));
    }
    Ok(report.failures.is_empty())
}

fn run_verify(cli: &Cli, walk: &WalkArgs, scan: ScanOptions) -> Result<bool> {
    let (found, walk_ok) = find(walk)?;
    let mut out = io::stdout().lock();
    let ok = for_each_archive(
        &found,
        |f| {
            let archive = Archive::open(&f.path)?;
            verify(&archive, f.index_dir(walk.index_dir.as_deref()).as_ref(), scan)
        },
        |f, r| {
            let kind = if r.subset { "subset index" } else { "index" };
            let later = if r.uncovered > 0 { format!("; {} later members are not in it", r.uncovered) } else { String::new() };
            let _ = writeln!(out, "{}: ok: {kind} of {} entries ({}), {} members{later}", f.path.display(), r.entries, r.source, r.members);
        },
    );
    let _ = cli;
    Ok(ok && walk_ok)
}

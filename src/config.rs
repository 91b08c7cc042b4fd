//! The command line, lowered once: clap's structs (`cli.rs`, the "low" arguments) into one flat
//! [`Config`] of library values that every command reads (as ripgrep lowers `LowArgs` into
//! `HiArgs`, and fd builds its `Config`). What several commands share is decided here: `-v`,
//! the reading limits, the index directory (honoured, or refused with a usage error), and a
//! batch's walk, reporting and defaults. Each command file lowers its own few flags into its
//! library options at its top.
//!
//! Defaults that the command line does not give come from the environment and the config file
//! ([`crate::settings`]), here and nowhere else: a flag wins over `TARFS_INDEX_DIR`, which wins
//! over the config file, which wins over the built-in default.

use std::path::PathBuf;

use anyhow::Result;
use clap::CommandFactory;
use tarfs::archive::IndexDir;
use tarfs::batch::shard::{Shard, Weigh};
use tarfs::discover::{ARCHIVE_GLOBS, RECOMPRESS_GLOBS};
use tarfs::ScanOptions;

use crate::cli::{BatchArgs, Cli, Command, IndexDirArg, ReadArgs, WalkArgs};
use crate::settings::Settings;

/// What every command reads.
pub struct Config<'a> {
    /// `-v`.
    pub verbose: bool,
    /// The reading limits (`--lenient`, `--max-*`); the defaults for commands without them.
    pub scan: ScanOptions,
    /// Whether members' content is checked against the index's digests (not `--no-verify`).
    pub verify: bool,
    /// Where sidecars are written and looked for (`--index-dir`, `TARFS_INDEX_DIR`, the config
    /// file's `index-dir`, and the user's cache), for every command that honours it.
    pub index_dir: Option<IndexDir>,
    /// `embed`: a sidecar where an archive cannot be embedded (`--or-sidecar`, `or-sidecar`).
    pub or_sidecar: bool,
    /// The batch commands' walk and reporting.
    pub batch: Option<Batch<'a>>,
    /// The command, for its own flags.
    pub command: &'a Command,
}

/// A batch: which archives, and how it reports.
pub struct Batch<'a> {
    /// The command's name, for the summary.
    pub verb: &'static str,
    /// Whether the command only says what it would do.
    pub dry_run: bool,
    /// The file names that are archives under directories.
    pub globs: Vec<&'a str>,
    /// In-place changes handle a file once, by whichever of its names was found first.
    pub once_per_file: bool,
    /// Worker threads (`-j`, the config file's `jobs`; 0: one per core).
    pub jobs: usize,
    /// The paths, and whether to follow links.
    pub walk: &'a WalkArgs,
    /// Quiet, progress, JSON, fail fast, the report file.
    pub args: &'a BatchArgs,
    /// `--shard`: this task's part of the archives found, and what it is balanced by.
    pub shard: Option<(Shard, Weigh)>,
}

/// Lowers the parsed command line, with the environment and the config file for what it does
/// not say. A usage error comes back as a `clap::Error` (exit status 2); a config file that
/// cannot be read as an error naming it.
pub fn lower(cli: &Cli) -> Result<Config<'_>> {
    let command = &cli.command;
    let settings = match command {
        Command::Completions { .. } | Command::Man(_) | Command::Create(_) | Command::Report(_) | Command::Umount(_) => Settings::default(),
        _ => Settings::load()?,
    };
    let or_sidecar = match command {
        Command::Embed(a) if a.or_sidecar || a.no_or_sidecar => a.or_sidecar,
        Command::Embed(_) => settings.file.or_sidecar.unwrap_or(false),
        _ => false,
    };
    let arg = index_dir_arg(command);
    // embed and csv write their index into the archive: a sidecar only with --or-sidecar.
    let sidecars = arg.is_some() && (!matches!(command, Command::Embed(_) | Command::Csv(_)) || or_sidecar);
    let flag = arg.and_then(|d| d.index_dir.as_deref());
    if flag.is_some() && !sidecars {
        return Err(refuse_index_dir(command).into());
    }
    let dir = flag.or(settings.index_dir()).map(PathBuf::from);
    let index_dir = (sidecars && (dir.is_some() || settings.cache.is_some())).then(|| IndexDir { dir, cache: settings.cache.clone() });
    let scan = read_args(command).map(ReadArgs::options).unwrap_or_default();
    let batch = batch(command, &settings).map(sharded).transpose()?;
    let verify = !read_args(command).is_some_and(|r| r.no_verify);
    Ok(Config { verbose: cli.verbose, scan, verify, index_dir, or_sidecar, batch, command })
}

/// A batch with its `--shard` lowered (`slurm` read from the environment): a usage error (exit
/// status 2) for one that names no shard. Commands that change archives' sizes are balanced by
/// count, so that every task computes the same partition however far the others have got.
fn sharded(mut b: Batch<'_>) -> Result<Batch<'_>> {
    let Some(given) = b.walk.shard.as_deref() else {
        return Ok(b);
    };
    let shard = Shard::parse(given, |name| std::env::var_os(name)).map_err(|e| {
        let mut top = Cli::command();
        top.build();
        let sub = top.find_subcommand_mut(b.verb).expect("a command");
        sub.error(clap::error::ErrorKind::ValueValidation, e)
    })?;
    let weigh = if matches!(b.verb, "index" | "verify") { Weigh::Bytes } else { Weigh::Count };
    b.shard = Some((shard, weigh));
    Ok(b)
}

/// `--index-dir` for `embed` and `csv`, which write their index into the archive: a usage error
/// rather than a flag silently ignored.
fn refuse_index_dir(command: &Command) -> clap::Error {
    let (name, what) = match command {
        Command::Embed(_) => ("embed", "it embeds the index in the archive (a sidecar only with --or-sidecar)"),
        _ => ("csv", "it appends the index to the archive"),
    };
    let mut top = Cli::command();
    top.build();
    let sub = top.find_subcommand_mut(name).expect("a command");
    sub.error(clap::error::ErrorKind::ArgumentConflict, format!("--index-dir does not apply to {name}: {what}, and writes no sidecar"))
}

fn index_dir_arg(command: &Command) -> Option<&IndexDirArg> {
    match command {
        Command::Index(a) => Some(&a.walk.index_dir),
        Command::Embed(a) => Some(&a.walk.index_dir),
        Command::Csv(a) => Some(&a.walk.index_dir),
        Command::Recover(a) => Some(&a.walk.index_dir),
        Command::Verify(a) => Some(&a.walk.index_dir),
        Command::Scrub(a) => Some(&a.walk.index_dir),
        Command::Recompress(a) => Some(&a.walk.index_dir),
        Command::Ls(a) => Some(&a.index_dir),
        Command::Cat(a) => Some(&a.index_dir),
        Command::Extract(a) => Some(&a.index_dir),
        Command::Mount(a) => Some(&a.index_dir),
        Command::Erofs(a) => Some(&a.index_dir),
        Command::Create(_) | Command::Report(_) | Command::Umount(_) | Command::Completions { .. } | Command::Man(_) => None,
    }
}

fn read_args(command: &Command) -> Option<&ReadArgs> {
    match command {
        Command::Index(a) => Some(&a.read),
        Command::Embed(a) => Some(&a.read),
        Command::Csv(a) => Some(&a.read),
        Command::Verify(a) => Some(&a.read),
        Command::Scrub(a) => Some(&a.read),
        Command::Recompress(a) => Some(&a.read),
        Command::Ls(a) => Some(&a.read),
        Command::Cat(a) => Some(&a.read),
        Command::Extract(a) => Some(&a.read),
        Command::Mount(a) => Some(&a.read),
        Command::Erofs(a) => Some(&a.read),
        Command::Recover(_) | Command::Create(_) | Command::Report(_) | Command::Umount(_) | Command::Completions { .. } | Command::Man(_) => None,
    }
}

/// A batch command's walk and defaults. `embed` and `csv` walk for compressed archives too, to
/// name those they pass over (or, with `--or-sidecar`, index them).
fn batch<'a>(command: &'a Command, settings: &Settings) -> Option<Batch<'a>> {
    let (verb, dry_run, defaults, walk, args): (_, _, &[&str], _, _) = match command {
        Command::Index(a) => ("index", a.dry_run, &ARCHIVE_GLOBS, &a.walk, &a.batch),
        Command::Embed(a) => ("embed", a.dry_run, &ARCHIVE_GLOBS, &a.walk, &a.batch),
        Command::Csv(a) => ("csv", a.dry_run, &ARCHIVE_GLOBS, &a.walk, &a.batch),
        Command::Recover(a) => ("recover", false, &ARCHIVE_GLOBS, &a.walk, &a.batch),
        Command::Verify(a) => ("verify", false, &ARCHIVE_GLOBS, &a.walk, &a.batch),
        Command::Scrub(a) => ("scrub", false, &ARCHIVE_GLOBS, &a.walk, &a.batch),
        Command::Recompress(a) => ("recompress", a.dry_run, &RECOMPRESS_GLOBS, &a.walk, &a.batch),
        _ => return None,
    };
    let globs = if walk.glob.is_empty() { defaults.to_vec() } else { walk.glob.iter().map(String::as_str).collect() };
    let jobs = args.jobs.or(settings.file.jobs).unwrap_or(0);
    Some(Batch { verb, dry_run, globs, once_per_file: matches!(verb, "embed" | "csv" | "recover"), jobs, walk, args, shard: None })
}

/// The one archive a flag that takes exactly one (`--output`, `--gzidx`) applies to.
pub fn one_archive<'a>(walk: &'a WalkArgs, flag: &str) -> Result<&'a PathBuf> {
    match walk.paths.as_slice() {
        [one] if !one.is_dir() && walk.files_from.is_none() => Ok(one),
        _ => anyhow::bail!("{flag} takes exactly one archive"),
    }
}

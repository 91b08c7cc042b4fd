//! The `tarfs` command: parses flags (`cli.rs`), lowers them once into a [`config::Config`]
//! (`config.rs`), and runs the command (`cmd/`, one file each), which calls the library. One
//! archive's failure never stops the others; the exit status is 0 when all went well, 1 when
//! any archive failed (or was busy), 2 for usage errors (from clap), and 130 when interrupted.

mod cli;
mod cmd;
mod config;
mod listing;
mod man;
mod progress;
mod settings;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::{Cli, Command};

/// Exit status: success, failure, or interrupted.
pub enum Status {
    Ok,
    Failed,
    Interrupted,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // An archive truncated while it is mapped fails alone instead of killing the process.
    tarfs::sigbus::install();
    if let Some(e) = &cli.s3_endpoint {
        tarfs::archive::s3::set_endpoint(e);
    }
    let result = config::lower(&cli).and_then(|cfg| dispatch(&cfg));
    let (requests, bytes) = tarfs::archive::s3::totals();
    if cli.verbose && requests > 0 {
        warn(format!("object storage: {requests} requests, {bytes} bytes fetched"));
    }
    match result {
        Ok(Status::Ok) => ExitCode::SUCCESS,
        Ok(Status::Failed) => ExitCode::from(1),
        Ok(Status::Interrupted) => ExitCode::from(130),
        Err(e) => failed(e),
    }
}

/// Runs the command.
fn dispatch(cfg: &config::Config<'_>) -> anyhow::Result<Status> {
    match cfg.command {
        Command::Index(a) => cmd::index::run(cfg, a),
        Command::Embed(a) => cmd::embed::run(cfg, a),
        Command::Csv(a) => cmd::csv::run(cfg, a),
        Command::Recover(_) => cmd::recover::run(cfg),
        Command::Create(a) => cmd::create::run(cfg, a).map(status),
        Command::Ls(a) => cmd::ls::run(cfg, a).map(status),
        Command::Cat(a) => cmd::cat::run(cfg, a).map(status),
        Command::Extract(a) => cmd::extract::run(cfg, a).map(status),
        Command::Verify(_) => cmd::verify::run(cfg),
        Command::Scrub(a) => cmd::scrub::run(cfg, a),
        Command::Recompress(a) => cmd::recompress::run(cfg, a),
        Command::Mount(a) => cmd::mount::run(cfg, a).map(status),
        Command::Report(a) => cmd::merge::run(a),
        Command::Erofs(a) => cmd::erofs::run(cfg, a).map(status),
        Command::Umount(a) => cmd::umount::run(a).map(status),
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "tarfs", &mut io::stdout());
            Ok(Status::Ok)
        }
        Command::Man(a) => man::run(a).map(|()| Status::Ok),
    }
}

/// The exit status of an error: 2 for a usage error found while lowering (clap prints it), 0
/// for a closed stdout, else 1, with the error on stderr.
fn failed(e: anyhow::Error) -> ExitCode {
    if let Some(usage) = e.downcast_ref::<clap::Error>() {
        usage.exit();
    }
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

/// `Ok` for true, `Failed` for false.
pub fn status(ok: bool) -> Status {
    if ok {
        Status::Ok
    } else {
        Status::Failed
    }
}

/// Prints `tarfs: MSG` on stderr. A stderr that cannot be written (`2>/dev/full`, a closed
/// pipe) is not a reason to stop: the exit status still tells.
pub fn warn(msg: impl std::fmt::Display) {
    let _ = writeln!(io::stderr(), "tarfs: {msg}");
}

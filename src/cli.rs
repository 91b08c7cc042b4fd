//! Command-line flags (clap). Parsed here and turned into library options in `main.rs`; no clap
//! type reaches the library.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Seekable indexes for tar archives.
#[derive(Debug, Parser)]
#[command(name = "tarfs", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    /// Say which index each command used, and report each archive.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Skip zero blocks between members (like GNU tar -i) instead of ending at a lone one.
    #[arg(long, global = true)]
    pub lenient: bool,
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "Examples:
  tarfs index backups/                   write NAME.tar.tarfs beside every *.tar under backups/
  tarfs index --index-dir /idx /mnt/tape  sidecars for a read-only tree, under /idx
  tarfs embed store/                      put a .tarfs index first in every *.tar under store/, in place
  tarfs csv store/                        append a .tarindex_N.csv member to every *.tar under store/
  tarfs ls -l big.tar                     list through the best index, like tar -tv
  tarfs cat big.tar path/in/archive       print one member by seeking to it
  tarfs verify backups/                   check every index against its archive";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write an external .tarfs index (sidecar) for each archive.
    Index(IndexArgs),
    /// Embed a .tarfs index as the first member of each archive, in place.
    Embed(EmbedArgs),
    /// Append a .tarindex_N.csv index member to each archive, in place.
    Csv(CsvArgs),
    /// Finish or undo an in-place change that was interrupted (using its journal).
    Recover(RecoverArgs),
    /// Create a new archive from files, with its .tarfs index as the first member.
    Create(CreateArgs),
    /// List members, like tar -t.
    Ls(LsArgs),
    /// Write members' contents to standard output, like tar -xO.
    Cat(CatArgs),
    /// Extract members to a directory, safely.
    Extract(ExtractArgs),
    /// Check that each archive's index is present, intact and up to date.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct WalkArgs {
    /// Archives, or directories to search for them.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Which file names under directories are archives.
    #[arg(long, default_value = "*.tar")]
    pub glob: String,
    /// Follow symbolic links while walking directories.
    #[arg(short = 'L', long)]
    pub follow_links: bool,
    /// Read and write sidecars under DIR, mirroring each archive's path relative to the argument
    /// it was found under (for read-only media).
    #[arg(long, value_name = "DIR")]
    pub index_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct IndexArgs {
    #[command(flatten)]
    pub walk: WalkArgs,
    /// Index only members matching GLOB (repeatable); the index records that it is a subset.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Leave out members matching GLOB (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub walk: WalkArgs,
    /// Rewrite an embedded index that is already up to date.
    #[arg(long)]
    pub force: bool,
    /// Write a new archive to FILE instead (one archive): .tarfs first, then every member in its
    /// original order; the input is not touched.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CsvArgs {
    #[command(flatten)]
    pub walk: WalkArgs,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    #[command(flatten)]
    pub walk: WalkArgs,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The archive to write.
    #[arg(short = 'f', long = "file", value_name = "OUT")]
    pub out: PathBuf,
    /// Take PATHs relative to DIR.
    #[arg(short = 'C', long = "directory", value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Files and directories to archive.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// The archive.
    pub archive: PathBuf,
    /// Long listing, like tar -tv.
    #[arg(short = 'l', long)]
    pub long: bool,
    /// One JSON object per member, per line.
    #[arg(long, conflicts_with = "long")]
    pub json: bool,
    /// Where sidecars are kept (see `index --index-dir`).
    #[arg(long, value_name = "DIR")]
    pub index_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    /// The archive.
    pub archive: PathBuf,
    /// Members to print, in archive order.
    #[arg(required = true)]
    pub members: Vec<PathBuf>,
    /// Where sidecars are kept.
    #[arg(long, value_name = "DIR")]
    pub index_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// The archive.
    pub archive: PathBuf,
    /// Members to extract (directories with their contents); all if none.
    pub members: Vec<PathBuf>,
    /// Extract into DIR.
    #[arg(short = 'C', long = "directory", value_name = "DIR", default_value = ".")]
    pub dest: PathBuf,
    /// Where sidecars are kept.
    #[arg(long, value_name = "DIR")]
    pub index_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub walk: WalkArgs,
}

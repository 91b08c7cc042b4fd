//! Command-line flags (clap). Parsed here, lowered into a `Config` in `config.rs` and into
//! library options by each command in `cmd/`; no clap type reaches the library.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Seekable indexes for tar archives.
#[derive(Debug, Parser)]
#[command(name = "tarfs", version, about, long_about = None, after_help = EXAMPLES, after_long_help = EXAMPLES)]
#[command(mut_subcommands(without_verbose))]
pub struct Cli {
    /// Say which index each command used, and report each archive.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// The S3 endpoint for `s3://BUCKET/KEY` archives (over `AWS_ENDPOINT_URL`), such as
    /// `http://127.0.0.1:8333`.
    #[arg(long, global = true, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// Keeps the global `-v` out of the subcommands where it means nothing (`completions`, `man`,
/// `report`):
/// clap gives global arguments to the subcommands that have none of that name, so this gives
/// them a hidden one, which is accepted there and does nothing.
fn without_verbose(c: clap::Command) -> clap::Command {
    if !matches!(c.get_name(), "completions" | "man" | "report") {
        return c;
    }
    c.arg(clap::Arg::new("verbose").short('v').long("verbose").action(clap::ArgAction::SetTrue).hide(true))
}

/// Examples for `--help` and the man page: each command on its own line, with what it does on
/// the next, so that nothing wraps at 80 columns.
pub const EXAMPLES: &str = "Examples:
  tarfs index backups/
      Write NAME.tar.tarfs beside every *.tar under backups/.
  tarfs index --index-dir /idx /mnt/tape
      Sidecars for a read-only tape or mount, kept under /idx.
  15 3 * * * tarfs index -q /srv/archives
      A crontab line: nightly, fresh indexes skipped, only errors printed.
  tarfs embed store/
      Put a .tarfs index first in every *.tar under store/, in place.
  tarfs csv store/
      Append a .tarindex_N.csv member to every *.tar under store/.
  tarfs ls -l big.tar
      List through the best index, like tar -tv.
  tarfs cat big.tar path/in/archive
      Print one member by seeking to it.
  tarfs mount big.tar.gz /mnt/big
      Browse an archive as a read-only file system (tarfs umount to end).
  tarfs mount big.tar /mnt/big
      As root, the kernel mounts a plain tar (EROFS), reading it in place.
  tarfs mount base.tar patch.tar.gz /mnt/merged
      The union of two archives: patch.tar.gz's entries win.
  tarfs erofs big.tar -o big.erofs
      Write the image alone, for mount -t erofs -o device=big.tar big.erofs.
  tarfs recompress --seekable big.tar.zst
      Rewrite a one-frame zstd archive so that cat can seek into it.
  tarfs verify backups/
      Check every index against its archive.";

/// What the exit status means, for `--help` of the batch commands and the man page.
pub const EXIT_STATUS: &str = "Exit status:
  0    every archive was handled (indexed, skipped as fresh, or verified)
  1    an archive failed or was busy, or a member named was not found
  2    the command line was wrong
  130  interrupted (SIGINT); archives in progress were finished or rolled back";

/// How tarfs reads archives: `--lenient` and the limits that bound memory on hostile input.
/// Flattened into each command that reads archives, under its own heading.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Reading archives")]
pub struct ReadArgs {
    /// Skip zero blocks between members (like GNU tar -i) instead of ending at a lone one.
    #[arg(long)]
    pub lenient: bool,
    /// Most bytes of extension headers (pax, GNU long names) per member.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_metadata: u64,
    /// Most entries in one sparse map.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub max_sparse_entries: usize,
    /// Most extension headers before one member.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_chain: usize,
    /// Longest path or link target, in bytes (Python and Go read paths of 444 KB, as in
    /// node-tar's excessively-deep.tar; memory is bounded by --max-metadata anyway).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_path: usize,
    /// Do not check members' content against the SHA-256 digests their index records (`cat`,
    /// `extract`, `mount`).
    #[arg(long)]
    pub no_verify: bool,
}

impl ReadArgs {
    /// The scanner options these flags give.
    pub fn options(&self) -> tarfs::ScanOptions {
        let limits = tarfs::Limits { max_metadata: self.max_metadata, max_sparse_entries: self.max_sparse_entries, max_chain: self.max_chain, max_path: self.max_path };
        tarfs::ScanOptions { lenient: self.lenient, limits }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write an external .tarfs index (sidecar) for each archive.
    Index(IndexArgs),
    /// Embed a .tarfs index as the first member of each archive, in place.
    ///
    /// The leading members that the index displaces are copied to the end, so the archive grows
    /// by their size (refused above --max-growth). Where moving them would change what tar
    /// extracts (hard links to them, names that occur twice, headers readers disagree on),
    /// embed refuses and leaves the file unchanged: use --output, which keeps the order.
    Embed(EmbedArgs),
    /// Append a .tarindex_N.csv index member to each archive, in place.
    Csv(CsvArgs),
    /// Finish or undo an in-place change that was interrupted (using its journal).
    Recover(RecoverArgs),
    /// Create a new archive from files, with its .tarfs index as the first member.
    ///
    /// A file that changes while it is read is stored as GNU tar stores it, at the size it had
    /// before (bytes added left out, bytes lost as zeros): create says "file changed as we read
    /// it", still writes the archive, and exits with status 1.
    Create(CreateArgs),
    /// List members, like tar -t.
    Ls(LsArgs),
    /// Write members' contents to standard output, like tar -xO.
    Cat(CatArgs),
    /// Extract members to a directory, safely.
    Extract(ExtractArgs),
    /// Check that each archive's index is present, intact and up to date.
    Verify(VerifyArgs),
    /// Read every member of each archive and compare it with the SHA-256 digests its index
    /// records (`index --digests`; compressed archives always have them), for cron: names every
    /// damaged member and its bytes, and exits 1 if any. An archive whose index has none is
    /// skipped, and said so.
    Scrub(ScrubArgs),
    /// Rewrite zstd and xz archives so that they can be read from the middle, then index them.
    ///
    /// A .tar.zst of one frame becomes the zstd seekable format, a .tar.xz of one block becomes
    /// xz in blocks; any zstd or xz reader still reads them. The new file is verified (it must
    /// decompress to the same bytes) before it replaces the old one with an atomic rename, and
    /// keeps its mode, owner and times.
    Recompress(RecompressArgs),
    /// Mount an archive, or a directory of archives, as a read-only file system (the kernel's
    /// EROFS, or FUSE).
    ///
    /// The tree is what `tar -xf` would leave: the last of two members of one name wins, hard
    /// links share an inode, implied directories appear. It is read through the archive's best
    /// index (embedded, sidecar, CSV). A plain tar is mounted by the kernel where it can (root,
    /// Linux 6.12+), through an EROFS image whose files read the tar in place; otherwise, and
    /// for a compressed archive (read through its seek points) or a directory, through FUSE.
    /// Unmount with `tarfs umount MOUNTPOINT`, `umount` or `fusermount3 -u`; SIGTERM and SIGINT
    /// unmount a FUSE mount too.
    ///
    /// Several archives before MOUNTPOINT mount as their union (through FUSE), as ratarmount's
    /// does: the rightmost archive's entry wins where a path is in several (a file replaces a
    /// directory and a directory a file; two directories merge). --recursive shows archives
    /// inside archives as directories.
    Mount(MountArgs),
    /// Merge the reports of a sharded batch (--report FILE of each shard) into one summary.
    ///
    /// Prints each failure with its reason, then the totals (counts, members, bytes, the slowest
    /// shard's seconds and all shards' seconds), and names the shards no report is of.
    Report(ReportArgs),
    /// Unmount a tarfs mount (the kernel's or FUSE's).
    Umount(UmountArgs),
    /// Write an EROFS image of an archive's tree whose files read their data from the archive.
    ///
    /// The image holds the tree `tar -xf` would leave (as `tarfs mount` shows it), written from
    /// the archive's best index without reading member data; its files' data is the plain tar
    /// itself, as the image's second device: `mount -t erofs -o device=ARCHIVE IMAGE MNT`. The
    /// image is bound to the archive as it is now; `tarfs mount` rebuilds one that is not.
    Erofs(ErofsArgs),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): tarfs(1), or one command's page.
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print (tarfs-ls for ls); tarfs(1) if none.
    pub command: Option<String>,
    /// Write every page (tarfs.1, tarfs-index.1, ...) into DIR instead, e.g.
    /// ~/.local/share/man/man1.
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Worker threads (default: the config file's `jobs`, else one per core; 0: one per core).
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// No progress bar and no summary; errors still go to stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// When to draw progress bars (on stderr).
    #[arg(long, value_enum, default_value = "auto", value_name = "WHEN")]
    pub progress: crate::progress::When,
    /// One JSON object per archive on stdout: path, action, reason, members (where counted),
    /// bytes, index_path, seconds, error (message and offset).
    #[arg(long)]
    pub json: bool,
    /// Stop starting archives after the first failure.
    #[arg(long)]
    pub fail_fast: bool,
    /// Also write the run's report to FILE, atomically, at its end: totals, failures with their
    /// reasons, bytes, seconds, and the shard. `tarfs report` merges the shards' reports.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Pass over, as skipped, the archives that FILE (the --json lines of earlier runs of this
    /// command, appended to: `--json >> FILE`) says were handled, so that a run killed and run
    /// again does only what is left, verify too. A FILE that does not exist yet names none.
    #[arg(long, value_name = "FILE")]
    pub resume: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct WalkArgs {
    /// Archives, or directories to search for them.
    #[arg(required_unless_present = "files_from")]
    pub paths: Vec<PathBuf>,
    /// Read archives (or directories) from FILE, one per line (`-`: standard input), after the
    /// paths given as arguments.
    #[arg(long, value_name = "FILE")]
    pub files_from: Option<PathBuf>,
    /// With --files-from: names end with NUL, not newline (`find -print0`).
    #[arg(short = '0', long, requires = "files_from")]
    pub null: bool,
    /// Handle only shard K of N (K from 1) of the archives found: each is assigned by a hash of
    /// its absolute path, balanced by bytes (by count for embed, csv, recover and recompress),
    /// so that N tasks given the same archives share them out, none twice. `slurm`: the Slurm
    /// array task's (SLURM_ARRAY_TASK_ID among SLURM_ARRAY_TASK_COUNT ids from
    /// SLURM_ARRAY_TASK_MIN, in steps of SLURM_ARRAY_TASK_STEP).
    #[arg(long, value_name = "K/N|slurm")]
    pub shard: Option<String>,
    /// Which file names under directories are archives (repeatable; default `*.tar`, `*.tar.gz`,
    /// `*.tgz`, `*.tar.zst`, `*.tar.xz`, `*.tar.bz2`: embed and csv name the compressed ones they
    /// pass over).
    #[arg(long, value_name = "PATTERN")]
    pub glob: Vec<String>,
    /// Follow symbolic links while walking directories.
    #[arg(short = 'L', long)]
    pub follow_links: bool,
    #[command(flatten)]
    pub index_dir: IndexDirArg,
}

/// `--index-dir`: the one declaration, flattened into every command that takes it and lowered
/// once (`config.rs`). Commands that describe it in other words say so with [`index_dir_help`].
#[derive(Debug, Clone, Args)]
pub struct IndexDirArg {
    /// Read and write sidecars under DIR, at each archive's absolute canonical path
    /// (/tape/a.tar: DIR/tape/a.tar.tarfs), for read-only media. Any name for the archive finds
    /// the same sidecar. Default: TARFS_INDEX_DIR, else the config file's `index-dir`.
    #[arg(long, value_name = "DIR")]
    pub index_dir: Option<PathBuf>,
}

/// `--index-dir`'s help, in the words of the command it is flattened into (with `mut_args`,
/// which keeps the arguments' order, unlike `mut_arg`).
fn index_dir_help(help: &'static str) -> impl FnMut(clap::Arg) -> clap::Arg {
    move |a| if a.get_id() == "index_dir" { a.help(help) } else { a }
}

#[derive(Debug, Args)]
#[command(mut_args(index_dir_help("Read and write sidecars under DIR (as `tarfs index --index-dir`)")))]
pub struct MountArgs {
    /// The archive, or a directory: each archive under it appears as a directory named by its
    /// path; a plain tar is mounted there by the kernel where it can be, and the others are
    /// loaded the first time someone looks inside. Unmount it with `tarfs umount`, which
    /// unmounts the archives' kernel mounts first (or `umount -R`). Several archives (not
    /// directories) mount as their union, always through FUSE: where a path is in several, the
    /// rightmost archive's entry is shown (two directories merge); hard links stay within their
    /// archive.
    #[arg(required = true, num_args = 1.., value_name = "SOURCE")]
    pub sources: Vec<PathBuf>,
    /// An existing directory to mount on.
    pub mountpoint: PathBuf,
    /// Show archives inside the archives (members named as --glob's default names archives:
    /// x.tar, x.tar.gz, ...) as directories of their names holding their trees, down to 8
    /// levels. They are read when their outer archive is loaded; those that are in a
    /// compressed archive, or sparse, are read into memory (up to 256 MiB each).
    #[arg(long)]
    pub recursive: bool,
    /// Stay in the foreground (else tarfs returns once the mount is ready, and serves it in
    /// the background).
    #[arg(short, long)]
    pub foreground: bool,
    /// With no index, save what the scan found as a sidecar before mounting.
    #[arg(long)]
    pub write_index: bool,
    #[command(flatten)]
    pub index_dir: IndexDirArg,
    /// Show every file as owned by this user id.
    #[arg(long, value_name = "UID")]
    pub uid: Option<u32>,
    /// Show every file as owned by this group id.
    #[arg(long, value_name = "GID")]
    pub gid: Option<u32>,
    /// Let other users see the mount (FUSE allow_other; for users other than root, it needs
    /// user_allow_other in /etc/fuse.conf).
    #[arg(long)]
    pub allow_other: bool,
    /// Which file names under a directory are archives (repeatable; default as for index).
    #[arg(long, value_name = "PATTERN")]
    pub glob: Vec<String>,
    /// List directories with every entry's attributes (readdirplus): `du` and `ls -lR` make no
    /// lookups (1M members: du -s 30 s -> 2 s), but `find` pays for them (0.5 s -> 5 s).
    #[arg(long)]
    pub readdirplus: bool,
    /// In the background, append messages (a changed archive, a member that cannot be read)
    /// to FILE; without it, they are dropped once the mount is ready.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Mount through the kernel's EROFS, or fail: the archive's image (written where its
    /// sidecar goes, as ARCHIVE.erofs, and rebuilt when the archive changes) with the archive as
    /// its device. Needs a plain tar, root or CAP_SYS_ADMIN, and Linux 6.12 or later. Without
    /// --kernel or --fuse, tarfs mounts a plain tar so where it can, and through FUSE otherwise.
    #[arg(long, conflicts_with_all = ["fuse", "uid", "gid", "readdirplus", "allow_other", "foreground", "log", "recursive"])]
    pub kernel: bool,
    /// Mount through FUSE, even where the kernel could.
    #[arg(long)]
    pub fuse: bool,
    #[command(flatten)]
    pub read: ReadArgs,
}

impl MountArgs {
    /// The first (or only) archive or directory.
    pub fn source(&self) -> &std::path::Path {
        &self.sources[0]
    }

    /// Whether several archives are to be mounted as their union.
    pub fn is_union(&self) -> bool {
        self.sources.len() > 1
    }
}

#[derive(Debug, Args)]
#[command(mut_args(index_dir_help("Read sidecars under DIR, and write the image there (as `tarfs index --index-dir`)")))]
pub struct ErofsArgs {
    /// The archive: a plain (uncompressed) tar.
    pub archive: PathBuf,
    /// Write the image to IMAGE (default: ARCHIVE.erofs, where its sidecar would go).
    #[arg(short, long, value_name = "IMAGE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub index_dir: IndexDirArg,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct UmountArgs {
    /// Where it is mounted.
    pub mountpoint: PathBuf,
}

#[derive(Debug, Args)]
pub struct RecompressArgs {
    #[command(flatten)]
    pub walk: WalkArgs,
    #[command(flatten)]
    pub batch: BatchArgs,
    /// Rewrite as a seekable file: zstd in the seekable format, xz in blocks (the one way
    /// recompress rewrites; required, but for --dry-run, which says what it would do).
    #[arg(long, required_unless_present = "dry_run")]
    pub seekable: bool,
    /// Bytes of decompressed data per zstd frame or xz block (suffixes K, M, G): a read from
    /// the middle decodes about this much.
    #[arg(long, value_name = "SIZE", default_value = "4M", value_parser = parse_size)]
    pub frame_size: u64,
    /// Compression level (zstd 1-22, default 3; xz 0-9, default 6).
    #[arg(long, value_name = "N")]
    pub level: Option<u32>,
    /// Rewrite archives that are already seekable.
    #[arg(long)]
    pub force: bool,
    /// Say what would be done; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct IndexArgs {
    #[command(flatten)]
    pub walk: WalkArgs,
    #[command(flatten)]
    pub batch: BatchArgs,
    /// The index version to write: v2 (the default: about 45 bytes a member and its name;
    /// docs/FORMAT.md) or v1 (512 bytes a member, readable by a reader of v1.0 alone).
    #[arg(long, value_enum, default_value_t, value_name = "VERSION")]
    pub format: tarfs::ops::index::IndexFormat,
    /// Rebuild indexes that are fresh.
    #[arg(long)]
    pub force: bool,
    /// Record each member's SHA-256 (and one per 4 MiB chunk) in the index, reading every
    /// member's data; compressed archives always get them. An index without them is rebuilt.
    #[arg(long)]
    pub digests: bool,
    /// No member digests, not even for compressed archives (they cost little there: the data
    /// is decoded anyway).
    #[arg(long, conflicts_with = "digests")]
    pub no_digests: bool,
    /// Say what would be done; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Judge freshness by a full check of each index against its archive, not the cheap one.
    #[arg(long)]
    pub verify: bool,
    /// Write the index to FILE (one input). Required for standard input (`-`).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Read streams in records of BYTES (tape devices: the drive's block size; GNU tar's default
    /// is 10240, blocking factor 20).
    #[arg(long, value_name = "BYTES", default_value_t = 10240)]
    pub record_size: usize,
    /// Index only members matching GLOB (repeatable); the index records that it is a subset.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Leave out members matching GLOB (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// For gzip-compressed archives: bytes of decompressed output between seek points (suffixes
    /// K, M, G); each costs a 32 KiB window, compressed, in the sidecar. For zstd, frame starts
    /// are noted at least min(SIZE, 1M) apart; bzip2 and xz blocks are all noted.
    #[arg(long, value_name = "SIZE", default_value = "4M", value_parser = parse_size)]
    pub span: u64,
    /// For a gzip-compressed archive (one input): also write its seek points to FILE as an
    /// indexed_gzip GZIDX index, which indexed_gzip and ratarmount can use.
    #[arg(long, value_name = "FILE")]
    pub gzidx: Option<PathBuf>,
    /// How to scan a mapped archive: `sequential` walks the header chain on one thread (touching
    /// only header pages), `parallel` scans chunks on every core and stitches them, `auto`
    /// chunks large archives of small members.
    #[arg(long, value_enum, value_name = "HOW", default_value_t = ScanArg::Auto)]
    pub scan: ScanArg,
    #[command(flatten)]
    pub read: ReadArgs,
}

/// `--quoting-style` values (the two of GNU tar's that tarfs implements).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QuotingStyle {
    /// Control characters escaped with backslashes, as GNU tar's default.
    Escape,
    /// Names as they are.
    Literal,
}

impl From<QuotingStyle> for tarfs::quote::Style {
    fn from(s: QuotingStyle) -> Self {
        match s {
            QuotingStyle::Escape => tarfs::quote::Style::Escape,
            QuotingStyle::Literal => tarfs::quote::Style::Literal,
        }
    }
}

/// `--scan` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScanArg {
    /// Chunked for large archives of small members, sequential otherwise.
    Auto,
    /// One thread.
    Sequential,
    /// Every core.
    Parallel,
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub walk: WalkArgs,
    #[command(flatten)]
    pub batch: BatchArgs,
    /// Say what would be done; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Rewrite an embedded index that is already up to date, from a scan of the whole archive
    /// (without it, an archive that only grew is scanned from its old end).
    #[arg(long)]
    pub force: bool,
    /// Write a new archive to FILE instead (one archive): .tarfs first, then every member in its
    /// original order; the input is not touched.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Refuse to grow an archive by more than SIZE bytes (suffixes K, M, G, T: powers of 1024).
    /// The archive grows by the size of the leading members the index displaces, or, where it is
    /// shifted, by the index member's size.
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = parse_size)]
    pub max_growth: u64,
    /// Where moving the leading members to the end would change what tar extracts (a hard link
    /// to one of them, a name that occurs twice, ...), refuse instead of shifting the whole
    /// archive forward by the index's length.
    #[arg(long)]
    pub no_shift: bool,
    /// The index version to embed: v2 (the default; compact, docs/FORMAT.md) or v1 (readable by
    /// a reader of v1.0 alone). A v1-only reader scans an archive whose embedded index is v2.
    #[arg(long, value_enum, default_value_t, value_name = "VERSION")]
    pub format: tarfs::ops::index::IndexFormat,
    /// Where an archive cannot be embedded (compressed, read-only, members that must not move,
    /// ...), write a sidecar instead, as `tarfs index` does, and count it done (default: the
    /// config file's `or-sidecar`). --index-dir then says where sidecars go.
    #[arg(long, overrides_with = "no_or_sidecar")]
    pub or_sidecar: bool,
    /// Refuse such archives, whatever the config file says.
    #[arg(long, overrides_with = "or_sidecar")]
    pub no_or_sidecar: bool,
    /// Put an EROFS image of the archive in its .tarfs member too, 4 KiB-aligned: a
    /// self-mounting archive, which `mount -t erofs -o fsoffset=N,device=ARCHIVE ARCHIVE MNT`
    /// mounts (-v says N) and `tarfs mount` mounts with no ARCHIVE.erofs. Without it, an index
    /// that is written again drops an old image.
    #[arg(long, conflicts_with = "output")]
    pub erofs: bool,
    /// Record each member's SHA-256 (and one per 4 MiB chunk) in the index, for `scrub` and for
    /// `cat`, `extract` and `mount` to check: every member's data is read. An index written
    /// again without it has none.
    #[arg(long)]
    pub digests: bool,
    #[command(flatten)]
    pub read: ReadArgs,
}

/// Why a `--span`, `--frame-size` or `--max-growth` value is not a size (clap shows it after
/// the flag).
#[derive(Debug, thiserror::Error)]
pub enum SizeError {
    /// A letter other than K, M, G or T after the digits.
    #[error("unknown size suffix {0:?} (use K, M, G or T)")]
    Suffix(char),
    /// Not digits (before the suffix).
    #[error("{0:?} is not a size")]
    NotANumber(String),
    /// More than `u64::MAX` bytes.
    #[error("{0} is too large")]
    TooLarge(String),
}

/// A byte count with an optional K, M, G or T suffix (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let s = s.trim();
    let (digits, shift) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(SizeError::Suffix(c)),
            };
            (&s[..i], shift)
        }
        _ => (s, 0),
    };
    let n: u64 = digits.parse().map_err(|_| SizeError::NotANumber(s.to_string()))?;
    n.checked_mul(1u64 << shift).ok_or_else(|| SizeError::TooLarge(s.to_string()))
}

#[derive(Debug, Args)]
pub struct CsvArgs {
    #[command(flatten)]
    pub walk: WalkArgs,
    #[command(flatten)]
    pub batch: BatchArgs,
    /// Append a new index even where the newest CSV index is fresh (its last member already
    /// lists every member before it). Without it, such archives are skipped, so that cron runs
    /// are idempotent; with it, each run appends one more, as the seed's library does.
    #[arg(long)]
    pub force: bool,
    /// The default since 0.2 (kept so that old crontabs still parse).
    #[arg(long, hide = true, conflicts_with = "force")]
    pub skip_fresh: bool,
    /// Say what would be done; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    #[command(flatten)]
    pub walk: WalkArgs,
    #[command(flatten)]
    pub batch: BatchArgs,
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
    /// The index version to write: v2 (the default; compact, docs/FORMAT.md) or v1 (readable
    /// by a reader of v1.0 alone).
    #[arg(long, value_enum, default_value_t, value_name = "VERSION")]
    pub format: tarfs::ops::index::IndexFormat,
    /// No member digests (they cost only the hashing: every file is read anyway).
    #[arg(long)]
    pub no_digests: bool,
}

/// Member operands and patterns, as `tar -t` and `tar -x` take them.
#[derive(Debug, Args)]
pub struct SelectArgs {
    /// Take member operands as globs (`*` matches `/` too), as GNU tar's --wildcards.
    #[arg(long)]
    pub wildcards: bool,
    /// Leave out members matching GLOB anywhere in their name, and what is under them
    /// (repeatable), as GNU tar's --exclude.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
}

#[derive(Debug, Args)]
#[command(mut_args(index_dir_help("Where sidecars are kept (see `index --index-dir`; keyed by the archive's canonical path)")))]
pub struct LsArgs {
    /// The archive (`-` for standard input).
    pub archive: PathBuf,
    /// Members to list (directories with their contents); all if none.
    pub members: Vec<PathBuf>,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Long listing, like tar -tv.
    #[arg(short = 'l', long)]
    pub long: bool,
    /// One JSON object per member, per line.
    #[arg(long, conflicts_with = "long")]
    pub json: bool,
    /// Each regular file's SHA-256 from the index, as `sha256sum` prints it (`DIGEST  NAME`),
    /// so that `sha256sum -c` checks what `tar -xf` extracts.
    #[arg(long, conflicts_with_all = ["long", "json"])]
    pub digest: bool,
    /// How names are printed, as GNU tar's --quoting-style: `escape` writes control characters
    /// as \n, \t, \033 ... (and bytes from 0x80 in octal, unless they are printable in a UTF-8
    /// locale); `literal` writes names as they are.
    #[arg(long, value_enum, value_name = "STYLE", default_value_t = QuotingStyle::Escape)]
    pub quoting_style: QuotingStyle,
    /// Read through this `.tarfs` index alone (a sidecar kept elsewhere, or the index `tarfs
    /// index - --output FILE` made of a stream): an error if it does not describe the archive.
    #[arg(long, value_name = "FILE", conflicts_with = "index_dir")]
    pub index: Option<PathBuf>,
    #[command(flatten)]
    pub index_dir: IndexDirArg,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
#[command(mut_args(index_dir_help("Where sidecars are kept")))]
pub struct CatArgs {
    /// The archive.
    pub archive: PathBuf,
    /// Members to print, in archive order (a directory: every file under it, as tar -xO).
    #[arg(required = true)]
    pub members: Vec<PathBuf>,
    /// Read through this `.tarfs` index alone (a sidecar kept elsewhere, or the index `tarfs
    /// index - --output FILE` made of a stream): an error if it does not describe the archive.
    #[arg(long, value_name = "FILE", conflicts_with = "index_dir")]
    pub index: Option<PathBuf>,
    #[command(flatten)]
    pub index_dir: IndexDirArg,
    /// For a gzip-compressed archive: seek through the checkpoints of this indexed_gzip GZIDX
    /// index (as `tarfs index --gzidx`, indexed_gzip or ratarmount write them).
    #[arg(long, value_name = "FILE")]
    pub gzidx: Option<PathBuf>,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
#[command(mut_args(index_dir_help("Where sidecars are kept")))]
pub struct ExtractArgs {
    /// The archive.
    pub archive: PathBuf,
    /// Members to extract (directories with their contents); all if none.
    pub members: Vec<PathBuf>,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Extract into DIR.
    #[arg(short = 'C', long = "directory", value_name = "DIR", default_value = ".")]
    pub dest: PathBuf,
    /// Read through this `.tarfs` index alone (a sidecar kept elsewhere, or the index `tarfs
    /// index - --output FILE` made of a stream): an error if it does not describe the archive.
    #[arg(long, value_name = "FILE", conflicts_with = "index_dir")]
    pub index: Option<PathBuf>,
    #[command(flatten)]
    pub index_dir: IndexDirArg,
    /// Remove N leading components from member names (and hard link targets); members with no
    /// more than N are skipped.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub strip_components: usize,
    /// As root, restore owners by their numeric ids instead of by user and group names.
    #[arg(long)]
    pub numeric_owner: bool,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub walk: WalkArgs,
    #[command(flatten)]
    pub batch: BatchArgs,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct ScrubArgs {
    #[command(flatten)]
    pub walk: WalkArgs,
    #[command(flatten)]
    pub batch: BatchArgs,
    /// Read at most RATE bytes a second, all archives together (suffixes K, M, G), so that a
    /// nightly scrub does not starve the machine.
    #[arg(long, value_name = "RATE", value_parser = parse_size)]
    pub max_rate: Option<u64>,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
#[command(after_help = REPORT_EXIT_STATUS, after_long_help = REPORT_EXIT_STATUS)]
pub struct ReportArgs {
    /// The reports (`--report FILE` of each shard of one run).
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// The merged summary as one JSON object on stdout (with every failure).
    #[arg(long)]
    pub json: bool,
}

/// What `tarfs report`'s exit status means.
pub const REPORT_EXIT_STATUS: &str = "Exit status:
  0    every archive of every shard was handled
  1    an archive failed, was busy or was not started, or a shard's report is missing
  2    the command line was wrong";

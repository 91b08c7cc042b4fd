//! The library's error type. Every error names the archive (or index) it is about, and scan
//! errors name the byte offset, so that a batch can report and go on.

use std::io;
use std::path::PathBuf;

use crate::format::tarfs::IndexError;
use crate::scan::ScanError;

/// A tarfs error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a file (one of an object names it itself, once: [`io_message`]).
    #[error("{}", io_message(path, source))]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The archive is malformed at a byte offset.
    #[error("{}: {}{source}", path.display(), not_tar(source))]
    Scan {
        /// The archive.
        path: PathBuf,
        /// Where and what.
        source: ScanError,
    },
    /// An index does not decode.
    #[error("{}: {source}", index.display())]
    Index {
        /// The index file (or the archive, for an embedded index).
        index: PathBuf,
        /// What is wrong.
        source: IndexError,
    },
    /// The index does not describe the archive as it is now.
    #[error("{}: {msg}", path.display())]
    Stale {
        /// The archive.
        path: PathBuf,
        /// How it differs.
        msg: String,
    },
    /// The index named for the archive (`--index FILE`) may not answer for it: the verdict's
    /// refusal.
    #[error("{}: {refusal}", path.display())]
    IndexRefused {
        /// The archive.
        path: PathBuf,
        /// The index, and why it may not answer.
        refusal: Box<crate::ops::read::Refusal>,
    },
    /// An index entry does not match the archive at its position (a wrong or corrupt index).
    #[error("{}: {}{name}: the index does not match the archive at byte {offset}: {msg}", path.display(), entry_label(*entry))]
    Mismatch {
        /// The archive.
        path: PathBuf,
        /// 0-based entry number, when it is known.
        entry: Option<u64>,
        /// The entry's name.
        name: String,
        /// Byte offset in the archive the entry points at.
        offset: u64,
        /// What differs.
        msg: String,
    },
    /// A member's content differs from the digest its index recorded (issue #36): damage in
    /// the archive since it was indexed.
    #[error("{}: {name}: damaged: bytes {}..{} of the member differ from the index's SHA-256", path.display(), range.start, range.end)]
    Damaged {
        /// The archive.
        path: PathBuf,
        /// The member's name.
        name: String,
        /// The logical bytes of the member whose digest did not hold.
        range: std::ops::Range<u64>,
    },
    /// Members whose content differs from their digests (`scrub`): each with its bytes.
    #[error("{}: {}", path.display(), damaged_list(members))]
    DamagedMembers {
        /// The archive.
        path: PathBuf,
        /// Each damaged member's name and the logical bytes that differ.
        members: Vec<(String, std::ops::Range<u64>)>,
    },
    /// No such member.
    #[error("{}: {name}: not found in archive", path.display())]
    NotFound {
        /// The archive.
        path: PathBuf,
        /// The member name asked for.
        name: String,
    },
    /// Another process holds the archive's lock.
    #[error("{}: busy: another tarfs process is changing this archive; skipped", path.display())]
    Busy {
        /// The archive.
        path: PathBuf,
    },
    /// The archive cannot be changed as asked; it was left untouched.
    #[error("{}: {msg}; the archive was not changed", path.display())]
    Refused {
        /// The archive.
        path: PathBuf,
        /// Why.
        msg: String,
        /// Whether it is refused for what the archive is, or for the moment.
        what: RefusedFor,
    },
    /// The directory of a file tarfs creates refuses it (a read-only file system, no
    /// permission): nothing was written. `index` then tries the user's cache of sidecars.
    #[error("{}: {source}", path.display())]
    Unwritable {
        /// The file, or the directory that refused it.
        path: PathBuf,
        /// The error (`EROFS`, `EACCES`, `EPERM`).
        source: io::Error,
    },
    /// No place took the sidecar of an archive: the index dir refused it, or its own directory
    /// did, and so did the user's cache of sidecars, or there is none (no `$XDG_CACHE_HOME` or
    /// `$HOME`).
    #[error("{}: cannot write its index: {}; choose a writable place with --index-dir DIR or TARFS_INDEX_DIR", path.display(), tried_places(tried))]
    NoPlaceForIndex {
        /// The archive.
        path: PathBuf,
        /// Each place tried, and why it refused.
        tried: Vec<(PathBuf, io::Error)>,
    },
    /// A journal left by an interrupted change could not be used; it was kept, and the archive
    /// was not touched by this attempt.
    #[error("{}: the interrupted change journaled in {} was not recovered: {msg}; the archive needs `tarfs recover {}` once this is fixed", path.display(), journal.display(), path.display())]
    Recovery {
        /// The archive.
        path: PathBuf,
        /// The journal.
        journal: PathBuf,
        /// Why.
        msg: String,
    },
    /// An in-place change failed and was rolled back: the archive is as it was.
    #[error("{cause}; the change was rolled back: {} is as it was", path.display())]
    RolledBack {
        /// The archive.
        path: PathBuf,
        /// What failed.
        cause: Box<Error>,
    },
    /// An in-place change failed, and so did rolling it back: the journal is kept.
    #[error("{cause}; rolling the change back failed too ({also}): the archive needs `tarfs recover {}`", path.display())]
    NeedsRecover {
        /// The archive.
        path: PathBuf,
        /// What failed.
        cause: Box<Error>,
        /// Why the rollback failed.
        also: Box<Error>,
    },
    /// An in-place shift of the archive ([`crate::ops::shift`]) failed part way: it cannot be
    /// undone, and its journal is kept for `tarfs recover`, which finishes it.
    #[error("{cause}; the archive was part way through being shifted, which cannot be undone: `tarfs recover {}` finishes the shift from its journal", path.display())]
    ShiftInterrupted {
        /// The archive.
        path: PathBuf,
        /// What failed.
        cause: Box<Error>,
    },
    /// An in-place change failed before it wrote anything to the archive.
    #[error("{cause}; the archive was not changed")]
    Unchanged {
        /// What failed.
        cause: Box<Error>,
    },
    /// An in-place change completed, but its journal could not be removed.
    #[error("{}: the change is complete, but its journal could not be removed ({cause}); `tarfs recover {}` will finish it", path.display(), path.display())]
    JournalLeft {
        /// The archive.
        path: PathBuf,
        /// What failed.
        cause: Box<Error>,
    },
    /// An interrupted in-place change left its journal: the archive may be half changed, and
    /// nothing but `tarfs recover` may read or index it until then.
    #[error("{}: an interrupted change left a journal; run `tarfs recover {}` first (nothing was done)", path.display(), path.display())]
    Interrupted {
        /// The archive.
        path: PathBuf,
    },
    /// A file given as a batch's report (`tarfs report`) that is not one.
    #[error("{}: not a tarfs report: {source}", path.display())]
    NotAReport {
        /// The file.
        path: PathBuf,
        /// Why (with the line and column).
        source: serde_json::Error,
    },
    /// A request that cannot be carried out as asked; nothing was read or written for it.
    #[error("{what}")]
    Usage {
        /// What is wrong with it.
        what: UsageError,
    },
    /// Archive data that contradicts its own headers, at a byte offset.
    #[error("{}: {}", path.display(), data_message(*offset, problem))]
    Data {
        /// The archive.
        path: PathBuf,
        /// The byte offset of the member (or header) the problem is about.
        offset: u64,
        /// What contradicts what.
        problem: DataProblem,
    },
    /// The seek points of a compressed archive cannot be used.
    #[error("{}: {source}", path.display())]
    SeekPoints {
        /// The archive.
        path: PathBuf,
        /// Why.
        source: crate::seekpoints::SeekPointsError,
    },
    /// A recompressed archive replaced the original (it decompresses to the same bytes), but a
    /// step after the rename failed.
    #[error("{}: recompressed (the new file decompresses to the same bytes), but {step}: {cause}", path.display())]
    AfterRecompress {
        /// The archive.
        path: PathBuf,
        /// The step that failed.
        step: AfterRecompressStep,
        /// Why.
        cause: Box<Error>,
    },
    /// `tarfs recover` stopped before the recovery started: nothing was recovered.
    #[error("{cause}; nothing was recovered (run `tarfs recover {}` again)", path.display())]
    NotRecovered {
        /// The archive.
        path: PathBuf,
        /// What stopped it.
        cause: Box<Error>,
    },
    /// An internal error: a bug in tarfs.
    #[error("{}: internal error (a bug in tarfs): {what}", path.display())]
    Bug {
        /// The archive it happened on.
        path: PathBuf,
        /// What went wrong.
        what: String,
    },
    /// An input cannot be indexed as asked (see [`crate::ops::plan`]). Not `#[from]`: a second
    /// `From` impl would leave `?` on closures' errors without a type to infer.
    #[error(transparent)]
    Plan(crate::ops::plan::PlanError),
    /// An object in S3-compatible storage cannot be read or written.
    #[error(transparent)]
    S3(crate::archive::s3::S3Error),
    /// An archive that cannot have an EROFS image, or an image the kernel cannot mount.
    #[error("{}: {problem}", path.display())]
    Erofs {
        /// The archive.
        path: PathBuf,
        /// Why.
        problem: ErofsProblem,
    },
    /// An index written in place did not read back as written: the change is rolled back.
    #[error("{}: the {what} did not read back as written: {problem}", path.display())]
    ReadBack {
        /// The archive.
        path: PathBuf,
        /// Which index.
        what: ReadBackIndex,
        /// What differs.
        problem: ReadBackProblem,
    },
}

/// The index an in-place change reads back ([`Error::ReadBack`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadBackIndex {
    /// An embedded `.tarfs` first member.
    #[error("embedded index")]
    Embedded,
    /// A CSV index member.
    #[error("CSV index")]
    Csv,
}

/// What an index read back differs in ([`Error::ReadBack`]).
#[derive(Debug, thiserror::Error)]
pub enum ReadBackProblem {
    /// The index is not found where it was written.
    #[error("{0}")]
    NotFound(&'static str),
    /// Another index is found first.
    #[error("the newest one found is {0}")]
    Another(crate::ops::read::Source),
    /// It ends elsewhere.
    #[error("it ends at byte {at}, not {want}")]
    EndsAt {
        /// Where it ends.
        at: u64,
        /// Where it was written to end.
        want: u64,
    },
    /// The verdict refuses it.
    #[error("{0}")]
    Refused(Box<crate::ops::read::Refusal>),
    /// An entry at another position.
    #[error("entry {entry} is at byte {at}, not {want:?}")]
    Position {
        /// The entry.
        entry: usize,
        /// Its position.
        at: u64,
        /// The position written.
        want: Option<u64>,
    },
    /// Another number of members.
    #[error("it lists {found} members, not {want}")]
    Count {
        /// Members listed.
        found: usize,
        /// Members written.
        want: usize,
    },
}

/// Why an archive has no EROFS image, or its image cannot be mounted by the kernel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErofsProblem {
    /// A compressed archive: the kernel reads member data in place only from a plain tar.
    #[error("{compression}-compressed: the kernel reads member data in place only from a plain tar")]
    Compressed {
        /// The compression's name.
        compression: &'static str,
    },
    /// Member data beyond what 48-bit addresses of 512-byte blocks reach (128 PiB).
    #[error("the member at byte {offset} has data past 128 PiB, beyond what an image's 48-bit block addresses reach")]
    TooLarge {
        /// The member's header.
        offset: u64,
    },
    /// A sparse member whose regions would need more chunk indexes than an image should hold.
    #[error("the sparse member at byte {offset} would need {chunks} chunk indexes")]
    TooManyChunks {
        /// The member's header.
        offset: u64,
        /// How many.
        chunks: u64,
    },
    /// A sparse member whose data regions are not 512-byte-aligned in the archive (so its data
    /// would be copied into the image), too large to copy.
    #[error("the sparse member at byte {offset} has data that is not 512-byte-aligned in the archive, and at {size} bytes is too large to copy into the image")]
    Unaligned {
        /// The member's header.
        offset: u64,
        /// Its size.
        size: u64,
    },
    /// What a kernel mount needs and does not have.
    #[error("the kernel cannot mount its image: {0}")]
    Kernel(KernelRefusal),
}

/// Why the kernel will not mount an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KernelRefusal {
    /// The kernel has no EROFS (`ENODEV`).
    #[error("this kernel has no erofs file system")]
    NoErofs,
    /// EROFS without mounts of a file (before Linux 6.12, or without
    /// `CONFIG_EROFS_FS_BACKED_BY_FILE`), or an image on tmpfs: `ENOTBLK`.
    #[error("its erofs does not mount this image file (Linux 6.12 and later mount files, but none on tmpfs)")]
    NoFileBackedMounts,
    /// The process may not mount (neither root nor `CAP_SYS_ADMIN`, or `EPERM`).
    #[error("mounting needs root or CAP_SYS_ADMIN")]
    NotPermitted,
    /// An archive past 2 TiB, whose image has 48-bit block addresses, refused (`EINVAL`): a
    /// kernel before 6.15.
    #[error("its erofs does not mount an image with 48-bit block addresses, which an archive past 2 TiB needs (Linux 6.15 and later)")]
    No48Bit,
}

/// A request that cannot be carried out as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// A glob (`--include`, `--exclude`, discovery) that does not parse.
    #[error("bad glob {pattern:?}: {reason}")]
    BadGlob {
        /// The glob.
        pattern: String,
        /// Why it does not parse.
        reason: globset::Error,
    },
    /// A member pattern (`--wildcards`, `--exclude` of a reading command) that does not parse.
    #[error("bad pattern {pattern:?}: {reason}")]
    BadPattern {
        /// The pattern.
        pattern: String,
        /// Why it does not parse.
        reason: globset::Error,
    },
    /// Globs that parse one by one but not as a set.
    #[error("{0}")]
    GlobSet(globset::Error),
    /// `--gzidx` for an archive that is not gzip-compressed.
    #[error("{}: --gzidx is for gzip-compressed archives", path.display())]
    GzidxNotGzip {
        /// The archive.
        path: PathBuf,
    },
    /// A lookup by name in a compressed archive whose index has no extension data.
    #[error("{}: lookup by name in a compressed archive needs an index with extension data (tarfs index rebuilds it)", path.display())]
    LookupNeedsExtension {
        /// The archive.
        path: PathBuf,
    },
    /// An extraction into a directory that does not exist.
    #[error("{}: cannot extract there: no such directory", path.display())]
    NoSuchDestination {
        /// The destination.
        path: PathBuf,
    },
    /// A compression tarfs does not decode.
    #[error("{}: {compression}-compressed archives are not supported; decompress it first (gzip, bzip2, xz, lzma and zstd are)", path.display())]
    Unsupported {
        /// The archive.
        path: PathBuf,
        /// The compression's name.
        compression: &'static str,
    },
    /// An archive path that names something other than a regular file.
    #[error("{}: is {kind}, not a tar archive file (`tarfs index` reads FIFOs and tape devices as streams)", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
        /// What it is.
        kind: FileKind,
    },
    /// The output was closed before everything was written.
    #[error("output closed")]
    OutputClosed,
    /// A report of a version this tarfs does not read.
    #[error("{}: a tarfs report of version {version}; this tarfs reads version {}", path.display(), crate::batch::report::VERSION)]
    ReportVersion {
        /// The report.
        path: PathBuf,
        /// Its version.
        version: u32,
    },
    /// `tarfs report` with no report.
    #[error("no report to merge")]
    NoReports,
    /// Reports of different commands, or of different shardings (another N, or one sharded and
    /// one not), or of a shard outside its count, given to be merged.
    #[error("{} and {} are not reports of one run: another command, or another --shard N", one.display(), other.display())]
    ReportsDisagree {
        /// The first report.
        one: PathBuf,
        /// The one that disagrees with it.
        other: PathBuf,
    },
    /// A `--shard` that names no shard.
    #[error("--shard {given}: {why}")]
    BadShard {
        /// What was given (`slurm` for the Slurm variables).
        given: String,
        /// What is wrong.
        why: crate::batch::shard::ShardProblem,
    },
    /// Indexing standard input without saying where the index goes.
    #[error("indexing standard input needs --output FILE")]
    StdinNeedsOutput,
    /// Indexing a device without saying where the index goes.
    #[error("{}: a device's index needs --output FILE or --index-dir DIR", path.display())]
    DeviceNeedsOutput {
        /// The device.
        path: PathBuf,
    },
}

/// What a path names, when it is not a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FileKind {
    /// A directory.
    #[error("a directory")]
    Directory,
    /// A block device.
    #[error("a block device")]
    BlockDevice,
    /// A character device.
    #[error("a character device")]
    CharDevice,
    /// A FIFO.
    #[error("a FIFO")]
    Fifo,
    /// A socket.
    #[error("a socket")]
    Socket,
    /// Anything else.
    #[error("not a regular file")]
    Other,
}

/// How archive data contradicts its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataProblem {
    /// A sparse member's map needs more bytes of data than the member stores.
    SparseShort {
        /// Bytes the map's regions add up to.
        needs: u64,
        /// Bytes the member stores.
        stores: u64,
    },
    /// The stream ends inside the data of the member.
    EndsInData,
    /// A member's size reaches past any file.
    SizePastAnyFile,
    /// A sparse member's map does not hold.
    SparseMap(crate::format::sparse::SparseError),
}

/// The words for [`Error::Data`] after the archive's name.
fn data_message(offset: u64, problem: &DataProblem) -> String {
    match problem {
        DataProblem::SparseShort { needs, stores } => format!("at byte {offset}: sparse map needs {needs} bytes of data, the member stores {stores}"),
        DataProblem::EndsInData => format!("the stream ends inside the data of the member at byte {offset}"),
        DataProblem::SizePastAnyFile => format!("the member at byte {offset} has a size past any file"),
        DataProblem::SparseMap(e) => format!("at byte {offset}: {e}"),
    }
}

/// The step after a recompressed archive's rename that failed ([`Error::AfterRecompress`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AfterRecompressStep {
    /// Opening the new file again.
    #[error("it cannot be opened again to index it")]
    Reopen,
    /// Writing its index.
    #[error("its index was not written")]
    Index,
}

impl Error {
    /// [`Error::Refused`] for the archive at `path`, for what it is ([`RefusedFor::Archive`]).
    pub fn refused(path: &std::path::Path, msg: impl Into<String>) -> Error {
        Error::Refused { path: path.to_path_buf(), msg: msg.into(), what: RefusedFor::Archive }
    }

    /// [`Error::Refused`] for the moment ([`RefusedFor::Moment`]): another run may succeed.
    pub fn refused_for_now(path: &std::path::Path, msg: impl Into<String>) -> Error {
        Error::Refused { path: path.to_path_buf(), msg: msg.into(), what: RefusedFor::Moment }
    }

    /// Marks an error of an in-place change as one that came before anything was written,
    /// unless it already says what state the archive is in.
    pub fn unchanged(self) -> Error {
        match self {
            e @ (Error::Refused { .. }
            | Error::Busy { .. }
            | Error::RolledBack { .. }
            | Error::NeedsRecover { .. }
            | Error::ShiftInterrupted { .. }
            | Error::Recovery { .. }
            | Error::Unchanged { .. }
            | Error::JournalLeft { .. }) => e,
            e => Error::Unchanged { cause: Box::new(e) },
        }
    }

    /// The byte offset in the archive the error is about, when it has one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            Error::Scan { source, .. } => Some(source.offset),
            Error::Mismatch { offset, .. } | Error::Data { offset, .. } => Some(*offset),
            Error::AfterRecompress { cause, .. } | Error::NotRecovered { cause, .. } => cause.offset(),
            Error::RolledBack { cause, .. } | Error::NeedsRecover { cause, .. } | Error::ShiftInterrupted { cause, .. } | Error::Unchanged { cause } | Error::JournalLeft { cause, .. } => cause.offset(),
            _ => None,
        }
    }

    /// The `errno` that stands for this error where one number must (the FUSE mount's replies):
    /// the I/O error's own where there is one, `ENOENT` for a member not found, `EBUSY` for a
    /// locked archive, `EINVAL` for a request that cannot be carried out as asked, `EIO` for
    /// damaged or mismatched data and indexes (and anything else).
    pub fn errno(&self) -> i32 {
        match self {
            Error::Io { source, .. } | Error::Unwritable { source, .. } => source.raw_os_error().unwrap_or_else(|| kind_errno(source.kind())),
            Error::NoPlaceForIndex { tried, .. } => tried.last().and_then(|(_, e)| e.raw_os_error()).unwrap_or(libc::EACCES),
            Error::NotFound { .. } => libc::ENOENT,
            Error::Busy { .. } => libc::EBUSY,
            Error::Usage { .. } | Error::Refused { .. } | Error::NotAReport { .. } => libc::EINVAL,
            Error::RolledBack { cause, .. } | Error::NeedsRecover { cause, .. } | Error::ShiftInterrupted { cause, .. } | Error::Unchanged { cause } | Error::JournalLeft { cause, .. } | Error::AfterRecompress { cause, .. } | Error::NotRecovered { cause, .. } => cause.errno(),
            Error::Scan { .. }
            | Error::Index { .. }
            | Error::Stale { .. }
            | Error::IndexRefused { .. }
            | Error::Mismatch { .. }
            | Error::Damaged { .. }
            | Error::DamagedMembers { .. }
            | Error::Data { .. }
            | Error::SeekPoints { .. }
            | Error::Recovery { .. }
            | Error::Interrupted { .. }
            | Error::Bug { .. }
            | Error::ReadBack { .. } => libc::EIO,
            Error::Plan(_) => libc::EINVAL,
            Error::S3(e) => kind_errno(e.kind()),
            Error::Erofs { .. } => libc::EOPNOTSUPP,
        }
    }

    /// Whether trying the same thing again may succeed (a future remote source's transient
    /// failures): only an I/O error of a transient kind (interrupted, would block, timed out).
    /// Damage, mismatches, refusals and requests that cannot be carried out are permanent.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Io { source, .. } => matches!(source.kind(), io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
            Error::Unchanged { cause } | Error::RolledBack { cause, .. } => cause.is_retryable(),
            _ => false,
        }
    }
}

/// The `errno` for an I/O error that carries none of its own.
fn kind_errno(kind: io::ErrorKind) -> i32 {
    match kind {
        io::ErrorKind::NotFound => libc::ENOENT,
        io::ErrorKind::PermissionDenied => libc::EACCES,
        io::ErrorKind::Interrupted => libc::EINTR,
        io::ErrorKind::WouldBlock => libc::EAGAIN,
        io::ErrorKind::TimedOut => libc::ETIMEDOUT,
        io::ErrorKind::InvalidInput => libc::EINVAL,
        io::ErrorKind::Unsupported => libc::ENOTSUP,
        io::ErrorKind::OutOfMemory => libc::ENOMEM,
        _ => libc::EIO,
    }
}

/// What an in-place change was refused for ([`Error::Refused`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedFor {
    /// What the archive is: its form (compressed, not a regular file), its members or its end,
    /// its file's or directory's permissions, the growth the change would take. Another run
    /// refuses it again; a sidecar can index it (`embed --or-sidecar` writes one).
    Archive,
    /// The moment: the archive changed while it was read, a change is pending, the disk is full.
    /// Another run may succeed.
    Moment,
}

/// Whether an I/O error is a directory refusing a new file: a read-only file system, or no
/// permission ([`Error::Unwritable`]).
pub fn refuses_files(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::PermissionDenied)
}

/// "PATH: ERROR; PATH: ERROR" for [`Error::NoPlaceForIndex`].
fn tried_places(tried: &[(PathBuf, io::Error)]) -> String {
    tried.iter().map(|(p, e)| format!("{}: {e}", p.display())).collect::<Vec<_>>().join("; ")
}

/// "index entry N: ", or nothing when the entry's number is not known.
fn entry_label(entry: Option<u64>) -> String {
    entry.map(|n| format!("index entry {n}: ")).unwrap_or_default()
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a path to an I/O error.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io { path: path.into(), source })
    }
}

/// The error of type `T` that is `e` or one of its causes, if any. The chain is followed
/// through `source`, and into each `io::Error` for the error it carries (its own `source`
/// skips that error).
pub fn find_cause<'e, T: std::error::Error + 'static>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e T> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        let inner = e.downcast_ref::<io::Error>().and_then(|io| io.get_ref()).map(|i| i as &(dyn std::error::Error + 'static));
        next = inner.or_else(|| e.source());
    }
    None
}

/// The message of an I/O error on `path`: "PATH: ERROR", or the error alone where it is an
/// object store's, which names the object itself.
fn io_message(path: &std::path::Path, source: &io::Error) -> String {
    match source.get_ref().and_then(|e| e.downcast_ref::<crate::archive::s3::S3Error>()) {
        Some(s3) => s3.to_string(),
        None => format!("{}: {source}", path.display()),
    }
}

/// "does not look like a tar archive; " when the very first block is not a header (a text file,
/// random bytes, a file too short to hold one), so that the message says what the user needs to
/// hear first; the scanner's own words follow.
fn not_tar(e: &ScanError) -> &'static str {
    use crate::scan::ScanErrorKind;
    if e.offset == 0 && matches!(e.kind, ScanErrorKind::TruncatedHeader(_) | ScanErrorKind::BadChecksum) {
        "does not look like a tar archive: "
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: io::ErrorKind) -> Error {
        Error::Io { path: "a.tar".into(), source: io::Error::from(kind) }
    }

    #[test]
    fn errno_and_retry_follow_the_kind() {
        let raw = Error::Io { path: "a.tar".into(), source: io::Error::from_raw_os_error(libc::ENOSPC) };
        assert_eq!(raw.errno(), libc::ENOSPC);
        assert_eq!(io(io::ErrorKind::NotFound).errno(), libc::ENOENT);
        assert_eq!(Error::NotFound { path: "a.tar".into(), name: "m".into() }.errno(), libc::ENOENT);
        assert_eq!(Error::Busy { path: "a.tar".into() }.errno(), libc::EBUSY);
        assert_eq!(Error::Usage { what: UsageError::OutputClosed }.errno(), libc::EINVAL);
        let data = Error::Data { path: "a.tar".into(), offset: 512, problem: DataProblem::EndsInData };
        assert_eq!((data.errno(), data.offset()), (libc::EIO, Some(512)));
        assert_eq!(data.to_string(), "a.tar: the stream ends inside the data of the member at byte 512");
        let wrapped = Error::Unchanged { cause: Box::new(io(io::ErrorKind::TimedOut)) };
        assert_eq!(wrapped.errno(), libc::ETIMEDOUT);
        assert!(wrapped.is_retryable());
        for kind in [io::ErrorKind::Interrupted, io::ErrorKind::WouldBlock, io::ErrorKind::TimedOut] {
            assert!(io(kind).is_retryable(), "{kind:?}");
        }
        assert!(!io(io::ErrorKind::NotFound).is_retryable());
        assert!(!data.is_retryable());
        assert!(!Error::Busy { path: "a.tar".into() }.is_retryable());
    }

    #[test]
    fn an_unknown_entry_is_not_named() {
        let m = |entry| Error::Mismatch { path: "a.tar".into(), entry, name: "m".into(), offset: 0, msg: "differs".into() }.to_string();
        assert_eq!(m(None), "a.tar: m: the index does not match the archive at byte 0: differs");
        assert_eq!(m(Some(3)), "a.tar: index entry 3: m: the index does not match the archive at byte 0: differs");
    }
}

/// The words of [`Error::DamagedMembers`]: how many, then each with its bytes.
fn damaged_list(members: &[(String, std::ops::Range<u64>)]) -> String {
    let each: Vec<String> = members.iter().map(|(name, r)| format!("{name} (bytes {}..{})", r.start, r.end)).collect();
    let n = if members.len() == 1 { "1 damaged member".to_string() } else { format!("{} damaged members", members.len()) };
    format!("{n} (their content differs from the index's SHA-256): {}", each.join(", "))
}

//! The library's error type. Every error names the archive (or index) it is about, and scan
//! errors name the byte offset, so that a batch can report and go on.

use std::io;
use std::path::PathBuf;

use crate::format::tarfs::IndexError;
use crate::scan::ScanError;

/// A tarfs error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a file.
    #[error("{}: {source}", path.display())]
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
    /// An index entry does not match the archive at its position (a wrong or corrupt index).
    #[error("{}: {}{name}: the index does not match the archive at byte {offset}: {msg}", path.display(), entry_label(*entry))]
    Mismatch {
        /// The archive.
        path: PathBuf,
        /// 0-based entry number.
        entry: u64,
        /// The entry's name.
        name: String,
        /// Byte offset in the archive the entry points at.
        offset: u64,
        /// What differs.
        msg: String,
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
    /// An invalid request (bad glob, refused extraction, ...).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// [`Error::Refused`] for the archive at `path`.
    pub fn refused(path: &std::path::Path, msg: impl Into<String>) -> Error {
        Error::Refused { path: path.to_path_buf(), msg: msg.into() }
    }

    /// Marks an error of an in-place change as one that came before anything was written,
    /// unless it already says what state the archive is in.
    pub fn unchanged(self) -> Error {
        match self {
            e @ (Error::Refused { .. }
            | Error::Busy { .. }
            | Error::RolledBack { .. }
            | Error::NeedsRecover { .. }
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
            Error::Mismatch { offset, .. } => Some(*offset),
            Error::RolledBack { cause, .. } | Error::NeedsRecover { cause, .. } | Error::Unchanged { cause } | Error::JournalLeft { cause, .. } => cause.offset(),
            _ => None,
        }
    }
}

/// "index entry N: ", or nothing when the entry's number is not known.
fn entry_label(entry: u64) -> String {
    if entry == u64::MAX {
        String::new()
    } else {
        format!("index entry {entry}: ")
    }
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

//! Finding the indexes an archive has, and judging each: where they are ([`Located`]), their
//! bytes, and the typed [`Refusal`] of one the verdict will not let answer.

use super::*;


/// Which index a reader uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The `.tarfs` first member.
    Embedded,
    /// A sidecar file.
    Sidecar(PathBuf),
    /// The newest `.tarindex_N.csv` member, and the byte offset of its header.
    Csv(String, u64),
    /// No usable index: a full scan.
    Scan,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Embedded => write!(f, "embedded .tarfs index"),
            Source::Sidecar(p) => write!(f, "sidecar index {}", p.display()),
            Source::Csv(name, _) => write!(f, "CSV index member {name}"),
            Source::Scan => write!(f, "full scan (no index)"),
        }
    }
}

/// Index bytes, wherever they live.
#[derive(Debug, Clone)]
pub enum IndexBytes {
    /// A range of the archive (an embedded index).
    InArchive(Range<usize>),
    /// A sidecar's content.
    Owned(Vec<u8>),
    /// A sidecar, mapped (through [`Archive::open`], the crate's one mapping site).
    Mapped(std::sync::Arc<Archive>),
}

/// An index found for an archive.
#[derive(Debug, Clone)]
pub struct Located {
    /// Where it is.
    pub source: Source,
    /// Its bytes.
    pub bytes: IndexBytes,
    /// Byte offset in the archive that positions count from.
    pub base: u64,
}

impl Located {
    /// The embedded index of `archive`, if its first member is one.
    pub fn embedded(archive: &dyn ArchiveFile) -> Option<Located> {
        let e = crate::archive::embedded_of(archive)?;
        Some(Located { source: Source::Embedded, bytes: in_archive(archive, e.data)?, base: e.base })
    }

    /// The `.tarfs` index in the file `path` (kept apart from the archive, and named for it by
    /// the user), mapped; it is judged as a sidecar.
    pub fn file(path: &Path) -> Result<Located> {
        Ok(Located { source: Source::Sidecar(path.to_path_buf()), bytes: IndexBytes::Mapped(std::sync::Arc::new(Archive::open(path)?)), base: 0 })
    }

    /// The first sidecar of `archive` there is ([`Located::sidecars`]), mapped.
    pub fn sidecar(archive: &dyn ArchiveFile, index_dir: Option<&IndexDir>) -> Result<Option<Located>> {
        Located::sidecars(archive, index_dir).into_iter().next().transpose().map_err(|(_, e)| e)
    }

    /// The sidecars of `archive`, mapped, in the order readers try them: under the index dir,
    /// beside it, in the user's cache ([`crate::archive::sidecar_candidates`]). Those that do
    /// not exist are left out; one that cannot be read is its path and error. An archive that
    /// keeps its own sidecar ([`ArchiveFile::index_store`], an object's) has it read there,
    /// after the one under the index dir.
    pub fn sidecars(archive: &dyn ArchiveFile, index_dir: Option<&IndexDir>) -> Vec<std::result::Result<Located, (PathBuf, Error)>> {
        if archive.path().as_os_str() == "-" {
            return Vec::new(); // standard input has no sidecar
        }
        if let Some(store) = archive.index_store() {
            let local = index_dir.and_then(|d| d.in_dir(archive.path())).and_then(Located::sidecar_file);
            let stored = match store.load() {
                Ok(None) => None,
                Ok(Some(bytes)) => Some(Ok(Located { source: Source::Sidecar(store.name()), bytes: IndexBytes::Owned(bytes), base: 0 })),
                Err(source) => Some(Err((store.name(), Error::Io { path: store.name(), source }))),
            };
            return local.into_iter().chain(stored).collect();
        }
        sidecar_candidates(archive.path(), index_dir).into_iter().filter_map(Located::sidecar_file).collect()
    }

    /// The sidecar file `side`, mapped; `None` where there is none.
    fn sidecar_file(side: PathBuf) -> Option<std::result::Result<Located, (PathBuf, Error)>> {
        match Archive::open(&side) {
            Ok(map) => Some(Ok(Located { source: Source::Sidecar(side), bytes: IndexBytes::Mapped(std::sync::Arc::new(map)), base: 0 })),
            Err(Error::Io { source, .. }) if matches!(source.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => None,
            Err(e) => Some(Err((side, e))),
        }
    }

    /// The index bytes.
    pub fn slice<'a>(&'a self, archive: &'a dyn ArchiveFile) -> &'a [u8] {
        match &self.bytes {
            IndexBytes::InArchive(r) => &archive.lend().expect("an index in the archive's bytes is kept as a range only where the archive lends them")[r.clone()],
            IndexBytes::Owned(v) => v,
            IndexBytes::Mapped(a) => a.bytes(),
        }
    }

    /// The path to name in errors about this index.
    pub fn path(&self, archive: &dyn ArchiveFile) -> PathBuf {
        match &self.source {
            Source::Sidecar(p) => p.clone(),
            _ => archive.path().to_path_buf(),
        }
    }
}

/// The bytes `range` of `archive` as index bytes: a range of the archive's own where it lends
/// them, else read now (`None` when they cannot be read whole).
fn in_archive(archive: &dyn ArchiveFile, range: Range<usize>) -> Option<IndexBytes> {
    if archive.lend().is_some() {
        return Some(IndexBytes::InArchive(range));
    }
    let bytes = archive.read_at(range.start as u64, range.len()).ok()?;
    (bytes.len() == range.len()).then(|| IndexBytes::Owned(bytes.into_owned()))
}

/// Finds the best `.tarfs` index of `archive`: embedded first, then the sidecar.
pub fn locate(archive: &dyn ArchiveFile, index_dir: Option<&IndexDir>) -> Result<Option<Located>> {
    match Located::embedded(archive) {
        Some(e) => Ok(Some(e)),
        None => Located::sidecar(archive, index_dir),
    }
}

/// How far back from the end of an archive the newest CSV index is looked for.
pub const CSV_SEARCH_BYTES: usize = 64 << 20;

/// Finds the newest CSV index member: stepping back from the end one block at a time (at most
/// [`CSV_SEARCH_BYTES`]), the first block named `.tarindex_N.csv` whose checksum holds, that
/// decodes as a member, and whose data parses as CSV rows.
pub fn locate_csv(archive: &dyn ArchiveFile, opts: ScanOptions) -> Option<Located> {
    let len = archive.len();
    let from = len.saturating_sub(CSV_SEARCH_BYTES as u64) / BLOCK_U64 * BLOCK_U64;
    let tail = archive.read_at(from, (len - from) as usize).ok()?;
    let found = csv::candidates(&tail).find_map(|at| {
        let at = from + at;
        let member = with_member_at(archive, at, opts, |found| {
            let (e, base) = found?;
            let named = base + e.header_offset == at && matches!(e.typeflag, b'0' | 0);
            named.then(|| (String::from_utf8_lossy(&e.path()).into_owned(), base + e.data_offset, e.stored_size))
        });
        let (name, data, size) = member.ok()??;
        let range = data as usize..(data + size) as usize;
        let bytes = in_archive(archive, range)?;
        csv::decode(match &bytes {
            IndexBytes::Owned(v) => v,
            _ => &tail[(data - from) as usize..(data - from + size) as usize],
        })
        .ok()?;
        Some(Located { source: Source::Csv(name, at), bytes, base: 0 })
    });
    found
}

/// [`tarfs::decode`], with the entry checksums of a large index checked on every core.
pub fn decode_index(data: &[u8]) -> std::result::Result<Index<'_>, tarfs::IndexError> {
    use rayon::prelude::*;
    const PER_TASK: usize = 4096;
    let index = tarfs::decode_layout(data)?;
    if index.entries.len() <= PER_TASK {
        tarfs::check_entries(&index.entries, 0)?;
    } else {
        // The first bad entry in index order, as the sequential check reports.
        let bad = index.entries.par_chunks(PER_TASK).enumerate().filter_map(|(i, c)| tarfs::check_entries(c, (i * PER_TASK) as u64).err()).min_by_key(|e| match e {
            tarfs::IndexError::EntryChecksum { entry, .. } => *entry,
            _ => u64::MAX,
        });
        if let Some(e) = bad {
            return Err(e);
        }
    }
    Ok(index)
}

pub use crate::verdict::SAMPLE;

/// The verdict ([`crate::verdict`]) on the decoded index `index`, found at `located`, for
/// `archive` as it is now. An index without a tarfs record (another tool's) has nothing to
/// judge by and is fresh here; `index` rebuilds it.
pub fn verdict(index: &Index<'_>, located: &Located, archive: &dyn ArchiveFile) -> Verdict {
    let Some(info) = &index.header.info else { return Verdict::Fresh { read: 0 } };
    verdict::judge(&judged(info, index.entries.len(), |i| Some(index.entries[i]), located), archive)
}

/// What [`crate::verdict`] needs of the index at `located`: its record `info`, its `n`
/// entries as `entry` gives them.
pub fn judged<'e, E: verdict::Recorded, F: Fn(usize) -> Option<E>>(info: &'e tarfs::IndexInfo, n: usize, entry: F, located: &Located) -> Judged<'e, E, F> {
    Judged { info, entries: n, entry, sidecar: matches!(located.source, Source::Sidecar(_)), base: located.base, kind: std::marker::PhantomData }
}

/// An index passed over, and why: `source` is not used because of `verdict`.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The index.
    pub source: Source,
    /// Why it may not answer.
    pub verdict: Verdict,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.source, self.verdict)
    }
}

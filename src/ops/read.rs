//! Reading an archive through the best index it has.
//!
//! [`Reader::open`] looks for an embedded `.tarfs` index (the first member), then a sidecar
//! `ARCHIVE.tarfs`, and otherwise scans. A sidecar that is stale (made for an archive of another
//! length), an index that does not decode, or one that cannot carry the archive's metadata (pax
//! global headers) is not used: the reader scans instead and says why in [`Reader::note`].
//!
//! Listing uses index entries directly where they are self-contained, without touching the
//! archive. Before any member's data is read, [`Reader::checked`] re-reads its header chain at the
//! indexed position and compares it with the entry, so a wrong index can never yield wrong bytes.

use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::archive::{sidecar_path, Archive, IndexDir};
use crate::error::{DataProblem, Error, Result};
use crate::format::header::{HeaderView, BLOCK, BLOCK_U64};
use crate::format::csv;
use crate::format::sparse::Region;
use crate::format::compression::Compression;
use crate::format::ext;
use crate::format::tarfs::{self, Index, IndexEntry, FLAG_EXT, FLAG_GLOBALS, FLAG_SUBSET};
use crate::source::{compression_of, source_of, ByteSource, Decoded};
use crate::scan::{Entry, ScanEnd, ScanOptions, Scanner, Step};
use crate::verdict::{self, Corruption, Judged, Verdict, Why};

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
    pub fn embedded(archive: &Archive) -> Option<Located> {
        archive.embedded().map(|e| Located { source: Source::Embedded, bytes: IndexBytes::InArchive(e.data), base: e.base })
    }

    /// The sidecar of `archive` (beside it, or under `index_dir`), mapped, if there is one.
    pub fn sidecar(archive: &Archive, index_dir: Option<&IndexDir>) -> Result<Option<Located>> {
        if archive.path().as_os_str() == "-" {
            return Ok(None); // standard input has no sidecar
        }
        let side = sidecar_path(archive.path(), index_dir);
        match Archive::open(&side) {
            Ok(map) => Ok(Some(Located { source: Source::Sidecar(side), bytes: IndexBytes::Mapped(std::sync::Arc::new(map)), base: 0 })),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The index bytes.
    pub fn slice<'a>(&'a self, archive: &'a Archive) -> &'a [u8] {
        match &self.bytes {
            IndexBytes::InArchive(r) => &archive.bytes()[r.clone()],
            IndexBytes::Owned(v) => v,
            IndexBytes::Mapped(a) => a.bytes(),
        }
    }

    /// The path to name in errors about this index.
    pub fn path(&self, archive: &Archive) -> PathBuf {
        match &self.source {
            Source::Sidecar(p) => p.clone(),
            _ => archive.path().to_path_buf(),
        }
    }
}

/// Finds the best `.tarfs` index of `archive`: embedded first, then the sidecar.
pub fn locate(archive: &Archive, index_dir: Option<&IndexDir>) -> Result<Option<Located>> {
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
pub fn locate_csv(archive: &Archive, opts: ScanOptions) -> Option<Located> {
    let bytes = archive.bytes();
    let from = bytes.len().saturating_sub(CSV_SEARCH_BYTES) / BLOCK * BLOCK;
    let tail = &bytes[from..];
    csv::candidates(tail).find_map(|at| {
        let at = from as u64 + at;
        let e = Scanner::at(bytes, at, opts).next()?.ok()?;
        if e.header_offset != at || !matches!(e.typeflag, b'0' | 0) {
            return None;
        }
        let range = e.data_offset as usize..(e.data_offset + e.stored_size) as usize;
        csv::decode(&bytes[range.clone()]).ok()?;
        let name = String::from_utf8_lossy(&e.path()).into_owned();
        Some(Located { source: Source::Csv(name, at), bytes: IndexBytes::InArchive(range), base: 0 })
    })
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
pub fn verdict(index: &Index<'_>, located: &Located, archive: &Archive) -> Verdict {
    let Some(info) = &index.header.info else { return Verdict::Fresh { read: 0 } };
    verdict::judge(&judged(info, index.entries.len(), |i| Some(index.entries[i]), located), archive)
}

/// What [`crate::verdict`] needs of the index at `located`: its record `info`, its `n`
/// entries as `entry` gives them.
pub fn judged<'e, F: Fn(usize) -> Option<IndexEntry<'e>>>(info: &'e tarfs::IndexInfo, n: usize, entry: F, located: &Located) -> Judged<'e, F> {
    Judged { info, entries: n, entry, sidecar: matches!(located.source, Source::Sidecar(_)), base: located.base }
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

/// The extension data of an index whose data is `data`, header block `header` and header record
/// `info`, opened: `None` when the header promises none. Extension data that the header
/// promises but that is missing or does not open is an error, as is a version 2 header
/// whose extension has no entry digests: the index is damaged, and read as an older one it
/// would answer wrong (a flipped bit in the entry count would drop members).
pub fn opened_extension<'d>(data: &'d [u8], header: &[u8; BLOCK], info: &tarfs::IndexInfo) -> std::result::Result<Option<ext::Ext<'d>>, tarfs::IndexError> {
    let missing = |why: &str| tarfs::IndexError::MissingExtension(why.to_string());
    if info.flags & FLAG_EXT == 0 {
        return Ok(None);
    }
    // The range lies past the entries, inside the data.
    let range = tarfs::ext_range(data, info).ok_or_else(|| missing("it is not where the header says"))?;
    let x = ext::Ext::open(&data[range], header, info.entries).map_err(|e| missing(&e.to_string()))?;
    if info.record >= 2 && !x.has_entry_digests() {
        return Err(missing("it has no entry digests"));
    }
    usize::try_from(info.entries).map_err(|_| missing("too many entries"))?;
    Ok(Some(x))
}

/// [`opened_extension`] of the index whose data is `data` and header record `info`, with every
/// digest checked: the extension's pieces and every group of entries (the header's was checked
/// as it decoded). For `index`, which keeps only an index wholly intact, and `verify`.
pub fn intact_extension<'d>(data: &'d [u8], info: &tarfs::IndexInfo) -> std::result::Result<Option<ext::Ext<'d>>, tarfs::IndexError> {
    let header: &[u8; BLOCK] = data.get(..BLOCK).and_then(|b| b.try_into().ok()).ok_or(tarfs::IndexError::NoMagic)?;
    let Some(x) = opened_extension(data, header, info)? else { return Ok(None) };
    x.check_all().map_err(|e| tarfs::IndexError::MissingExtension(e.to_string()))?;
    x.check_all_entries(&data[BLOCK..]).map_err(tarfs::IndexError::entry_digest)?;
    Ok(Some(x))
}

/// The extension data of the index `located` (of `archive`), opened; `None` when it has none.
pub fn extension_of<'i>(located: &'i Located, archive: &'i Archive) -> Option<Result<ext::Ext<'i>>> {
    let data = located.slice(archive);
    let header: &[u8; BLOCK] = data.get(..BLOCK)?.try_into().ok()?;
    let info = tarfs::decode_header(header).ok()?.info?;
    let range = tarfs::ext_range(data, &info)?;
    Some(ext::Ext::open(&data[range], header, info.entries).map_err(|e| Error::Index { index: located.path(archive), source: tarfs::IndexError::Extension(e) }))
}

/// Entry `i` of the index `located` (whose bytes are `data`, its extension `x`), with its
/// checksum checked, and the member it describes (from the extension record): what a scan
/// would yield for it, without reading the archive.
pub fn ext_entry<'s>(located: &Located, archive: &Archive, x: &ext::Ext<'s>, data: &'s [u8], i: usize) -> Result<Entry<'s>> {
    let index_error = |source| Error::Index { index: located.path(archive), source };
    let block: &[u8; BLOCK] = data.get((i + 1) * BLOCK..(i + 2) * BLOCK).and_then(|b| b.try_into().ok()).ok_or_else(|| index_error(tarfs::IndexError::Ragged(data.len())))?;
    let ie = IndexEntry::new(block);
    if !ie.checksum_ok() {
        return Err(Error::Index { index: located.path(archive), source: tarfs::IndexError::EntryChecksum { entry: i as u64, offset: ((i + 1) * BLOCK) as u64 } });
    }
    x.check_entry(&data[BLOCK..], i).map_err(|r| Error::Index { index: located.path(archive), source: tarfs::IndexError::entry_digest(r) })?;
    let m = x.meta(i, ie.stored_checksum()).map_err(|e| index_error(tarfs::IndexError::Extension(e)))?;
    Entry::from_index(HeaderView::new(block), located.base + ie.position() * BLOCK_U64, &m).map_err(|source| Error::Scan { path: located.path(archive), source })
}

/// Reads members of one archive through its best index, over the archive's [`ByteSource`]: the
/// mapping for a plain archive, the decoded stream for a compressed one.
pub struct Reader<'a> {
    archive: &'a Archive,
    source: Box<dyn ByteSource + 'a>,
    compression: Option<Compression>,
    located: Option<Located>,
    /// Entries in the `.tarfs` index in use.
    entries: usize,
    /// Whether the index in use has extension data that opened (see [`crate::format::ext`]):
    /// then listing and lookup read nothing of the archive.
    ext: bool,
    /// The index header's flags.
    flags: u8,
    /// Archive bytes read while opening (freshness samples).
    opening_reads: u64,
    opts: ScanOptions,
    note: Option<String>,
    /// The indexes passed over, and why.
    refusals: Vec<Refusal>,
    /// A GZIDX given with `--gzidx`: `Some(true)` if its seek points are in use (checked
    /// against the sidecar's digests), `Some(false)` if it could not be checked and is unused.
    gzidx: Option<bool>,
    /// Whether a scan reads through the checked seek points (see [`Reader::checked_scan`]).
    checked_stream: bool,
}


impl<'a> Reader<'a> {
    /// Opens `archive` for reading through its best usable index: the embedded one, the sidecar,
    /// then the newest CSV index member. An index that cannot be read, is stale or does not
    /// decode is passed over ([`Reader::refusals`] says which and why, [`Reader::note`] in
    /// words); with none usable, the archive is scanned. A compressed archive can only have a
    /// sidecar.
    pub fn open(archive: &'a Archive, index_dir: Option<&IndexDir>, opts: ScanOptions) -> Result<Reader<'a>> {
        // A half-changed archive is neither the old one nor the new one: no answer until
        // `tarfs recover` has run.
        crate::ops::journal::refuse_pending(archive)?;
        let mut refusals = Vec::new();
        let sidecar = Located::sidecar(archive, index_dir).unwrap_or_else(|e| {
            let source = Source::Sidecar(sidecar_path(archive.path(), index_dir));
            refusals.push(Refusal { source, verdict: Verdict::Corrupt(Corruption::Unreadable(e.to_string())) });
            None
        });
        let compressed = compression_of(archive).is_some();
        // The CSV member is looked for only once the others are passed over.
        let csv = std::iter::once_with(|| locate_csv(archive, opts).filter(|_| !compressed)).flatten();
        let candidates = Located::embedded(archive).filter(|_| !compressed).into_iter().chain(sidecar).chain(csv);
        for located in candidates {
            match Reader::with_index(archive, located, opts) {
                Ok(mut r) => {
                    r.passed_over(refusals);
                    return Ok(r);
                }
                Err(refusal) => refusals.push(refusal),
            }
        }
        let mut r = Reader::scanning(archive, opts, None);
        r.passed_over(refusals);
        Ok(r)
    }

    /// Records the indexes passed over before this one, and says so in the note: what was
    /// passed over first, then what this index itself said.
    fn passed_over(&mut self, refusals: Vec<Refusal>) {
        if refusals.is_empty() {
            return;
        }
        let before = refusals.iter().map(Refusal::to_string).collect::<Vec<_>>().join("; ");
        self.note = Some(match (&self.located, self.note.take()) {
            (Some(_), own) => format!("{before}; using {}{}", self.source(), own.map(|n| format!("; {n}")).unwrap_or_default()),
            (None, _) => format!("{before}; scanning instead"),
        });
        self.refusals = refusals;
    }

    /// The indexes passed over, and why, in the order they were tried.
    pub fn refusals(&self) -> &[Refusal] {
        &self.refusals
    }

    fn scanning(archive: &'a Archive, opts: ScanOptions, note: Option<String>) -> Reader<'a> {
        let source = source_of(archive);
        Reader { archive, source, compression: compression_of(archive), located: None, entries: 0, ext: false, flags: 0, opening_reads: 0, opts, note, refusals: Vec::new(), gzidx: None, checked_stream: false }
    }

    /// A reader through `located`, if the verdict on that index ([`crate::verdict`]) lets it
    /// answer; else the typed refusal.
    ///
    /// An index with extension data is opened without checking every entry: its header, its
    /// extension's header and chunk table, and the freshness sample are checked now, and each
    /// entry and extension piece as it is first used. Opening therefore costs the same at any
    /// number of members. An index without it is decoded whole (every entry's checksum).
    pub fn with_index(archive: &'a Archive, located: Located, opts: ScanOptions) -> std::result::Result<Reader<'a>, Refusal> {
        let mut r = Reader::scanning(archive, opts, None);
        if matches!(located.source, Source::Csv(..)) {
            r.located = Some(located);
            return Ok(r);
        }
        let refuse = |verdict| Refusal { source: located.source.clone(), verdict };
        let data = located.slice(archive);
        let corrupt = |c| refuse(Verdict::Corrupt(c));
        let header = data.get(..BLOCK).and_then(|b| <&[u8; BLOCK]>::try_from(b).ok()).ok_or_else(|| corrupt(Corruption::Decode(tarfs::IndexError::NoMagic)))?;
        let head = tarfs::decode_header(header).map_err(|e| corrupt(Corruption::Decode(e)))?;
        let info = head.info.clone().unwrap_or_default();
        let x = opened_extension(data, header, &info).map_err(|e| corrupt(Corruption::Extension(e)))?;
        r.ext = x.is_some();
        let n = match &x {
            Some(_) => info.entries as usize,
            None => decode_index(data).map_err(|e| corrupt(Corruption::Decode(e)))?.entries.len(),
        };
        if info.flags & FLAG_GLOBALS != 0 && !r.ext {
            return Err(refuse(Verdict::Stale(Why::Globals)));
        }
        if info.flags & FLAG_SUBSET != 0 {
            return Err(refuse(Verdict::Subset { entries: n as u64 }));
        }
        if head.info.is_some() {
            let entry = |i: usize| {
                if let Some(x) = &x {
                    x.check_entry(&data[BLOCK..], i).ok()?;
                }
                Some(IndexEntry::new(data.get((i + 1) * BLOCK..(i + 2) * BLOCK)?.try_into().ok()?))
            };
            match verdict::judge(&judged(&info, n, entry, &located), archive) {
                Verdict::Fresh { read } => r.opening_reads = read,
                v => return r.checked_scan(data, &info, refuse(v)),
            }
        }
        r.flags = info.flags;
        r.entries = n;
        r.seek_through(data, &info).map_err(|why| refuse(Verdict::Corrupt(Corruption::Seek(std::sync::Arc::new(why)))))?;
        r.located = Some(located);
        Ok(r)
    }

    /// For a compressed archive whose fresh sidecar has a seek section: reads through it. A
    /// section that does not open (damaged: its file was just found to be this one) makes the
    /// index corrupt; the archive is then decoded from its start, as a scan.
    fn seek_through(&mut self, data: &[u8], info: &tarfs::IndexInfo) -> std::result::Result<(), crate::seekpoints::SeekPointsError> {
        let (Some(c), Some(range)) = (self.compression, tarfs::seek_range(data, info)) else { return Ok(()) };
        self.source = Box::new(crate::seekpoints::Checkpointed::open(self.archive, c, &data[range])?);
        Ok(())
    }

    /// A compressed file whose sidecar no longer answers for it (`refusal`), but whose seek
    /// section still binds it (the same length, first and last 64 KiB): the file changed in its
    /// middle since it was indexed, which is damage far more often than a new archive. The
    /// entries may not answer; the archive is scanned, through the seek points, each piece
    /// checked against the digests of the file as indexed: what is unchanged reads as before,
    /// and what changed is an error, never other bytes (a zstd frame has no checksum of its
    /// own). `Err(refusal)` where there is no such section.
    fn checked_scan(mut self, data: &[u8], info: &tarfs::IndexInfo, refusal: Refusal) -> std::result::Result<Reader<'a>, Refusal> {
        let (Some(c), Some(range)) = (self.compression, tarfs::seek_range(data, info)) else { return Err(refusal) };
        let Ok(ck) = crate::seekpoints::Checkpointed::open(self.archive, c, &data[range]) else { return Err(refusal) };
        self.source = Box::new(ck);
        self.checked_stream = true;
        self.note = Some(format!("{refusal}; its seek points still bind the file, so the archive is scanned through them, each piece checked against the digests of the file as indexed"));
        self.refusals = vec![refusal];
        Ok(self)
    }

    /// The decoded stream of a compressed archive, from its start: through the checked seek
    /// points where [`Reader::checked_scan`] chose them, else decoded afresh.
    fn stream(&self, c: Compression) -> Result<Box<dyn std::io::Read + Send + '_>> {
        if self.checked_stream {
            return Ok(Box::new(crate::source::SourceStream::new(&*self.source)));
        }
        Decoded::new(self.archive, c).stream()
    }

    /// Reads through the checkpoints of `index` (an indexed_gzip GZIDX given with `--gzidx`),
    /// for a gzip-compressed archive, where the index in use has the digests of the file's
    /// decompressed bytes to check each piece against. A GZIDX has no checksums of its own, and
    /// a damaged window decodes to wrong bytes without a word: without digests to check them,
    /// the GZIDX is left unused and the archive is decoded from its start.
    pub fn use_gzidx(&mut self, index: rapidgzip_core::DeflateIndex) -> Result<()> {
        if self.compression != Some(Compression::Gzip) {
            return Err(Error::Usage { what: crate::error::UsageError::GzidxNotGzip { path: self.archive.path().to_path_buf() } });
        }
        let Some(digests) = self.seek_digests() else {
            self.gzidx = Some(false);
            return Ok(());
        };
        let ck = crate::seekpoints::Checkpointed::with_index(self.archive, index, digests).map_err(|source| Error::SeekPoints { path: self.archive.path().to_path_buf(), source })?;
        self.source = Box::new(ck);
        self.gzidx = Some(true);
        Ok(())
    }

    /// The digests of the seek section of the index in use, when it has one for this file.
    fn seek_digests(&self) -> Option<crate::seekpoints::Digests> {
        let data = self.index_bytes()?;
        let header: &[u8; BLOCK] = data.get(..BLOCK)?.try_into().ok()?;
        let info = tarfs::decode_header(header).ok()?.info?;
        let range = tarfs::seek_range(data, &info)?;
        crate::seekpoints::Digests::of(self.archive, &data[range]).ok()
    }

    /// Bytes decompressed so far, for a compressed archive.
    pub fn bytes_decoded(&self) -> Option<u64> {
        self.source.decoded()
    }

    /// How a compressed archive is read: through seek points (and whether they are checked
    /// against digests), or decoded from its start.
    pub fn seeking(&self) -> Option<&'static str> {
        self.compression?;
        Some(match self.source.seek_points() {
            Some(true) if self.gzidx == Some(true) => "through the GZIDX seek points given, each piece checked against the sidecar's digests",
            Some(true) => "through its seek points, each piece checked against the index's digest",
            Some(false) => "through seek points not checked against digests",
            None if self.gzidx == Some(false) => "decoded from its start (the GZIDX given is unused: no index of this file has the digests to check its windows against)",
            None => "decoded from its start (no seek points)",
        })
    }

    /// The index in use.
    pub fn source(&self) -> Source {
        self.located.as_ref().map_or(Source::Scan, |l| l.source.clone())
    }

    /// Why an index that exists is not used, if so.
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// The bytes of the index in use, if any.
    pub fn index_bytes(&self) -> Option<&[u8]> {
        self.located.as_ref().map(|l| l.slice(self.archive))
    }

    /// Whether the index in use has extension data: listing and lookup need no archive bytes.
    pub fn has_extension(&self) -> bool {
        self.ext
    }

    /// Whether every member can be listed from the index and read on its own through the byte
    /// source (for a compressed archive: without decoding the stream to list it, and without
    /// pax globals that a lone header chain would be read without).
    pub fn reads_members_alone(&self) -> bool {
        self.ext && !(self.compression.is_some() && self.flags & FLAG_GLOBALS != 0)
    }

    /// Archive bytes read so far through the source (for a compressed archive, decoded bytes
    /// handed out), besides the freshness sample taken when the index was opened.
    pub fn bytes_read(&self) -> u64 {
        self.source.bytes_read()
    }

    /// Archive bytes the freshness sample read when the index was opened.
    pub fn opening_reads(&self) -> u64 {
        self.opening_reads
    }

    /// The compression of the archive, if it is a compressed stream.
    pub fn compression(&self) -> Option<Compression> {
        self.compression
    }

    /// The scanner options in use.
    pub fn scan_options(&self) -> ScanOptions {
        self.opts
    }

    /// The archive.
    pub fn archive(&self) -> &'a Archive {
        self.archive
    }

    /// The extension data of the index in use, opened.
    fn extension(&self) -> Option<Result<(ext::Ext<'_>, &[u8])>> {
        let located = self.located.as_ref().filter(|_| self.ext)?;
        let data = located.slice(self.archive);
        extension_of(located, self.archive).map(|x| x.map(|e| (e, data)))
    }

    /// Entry `i` of the index, with its checksum checked, and the member it describes (from the
    /// extension record).
    fn ext_entry<'s>(&'s self, x: &ext::Ext<'s>, data: &'s [u8], i: usize) -> Result<Entry<'s>> {
        ext_entry(self.located.as_ref().expect("an index is in use"), self.archive, x, data, i)
    }

    /// The members named `name` (as [`normalize_name`] compares names), in archive order. Through
    /// an index with extension data this is a binary search of its name table: a few dozen
    /// entries read whatever the index's size, and no archive bytes. Otherwise members are
    /// listed and compared.
    pub fn lookup(&self, name: &[u8]) -> Result<Vec<Entry<'_>>> {
        Ok(self.lookup_all(&[name])?.pop().unwrap_or_default())
    }

    /// [`Reader::lookup`] of each of `names`, with the index's extension opened once for all.
    pub fn lookup_all(&self, names: &[&[u8]]) -> Result<Vec<Vec<Entry<'_>>>> {
        if let Some(x) = self.extension() {
            let (x, data) = x?;
            // In entry order, which is archive order.
            return names.iter().map(|name| self.find_in(&x, data, name)?.into_iter().map(|i| self.ext_entry(&x, data, i)).collect()).collect();
        }
        if self.compression.is_some() {
            // A scan's entries borrow its buffers, and reading one again means decoding again.
            return Err(Error::Usage { what: crate::error::UsageError::LookupNeedsExtension { path: self.archive.path().to_path_buf() } });
        }
        let keys: Vec<&[u8]> = names.iter().map(|n| normalize_name(n)).collect();
        let mut found = vec![Vec::new(); names.len()];
        self.for_each_path(|p: &[u8]| keys.contains(&normalize_name(p)), |e| {
            let path = e.path();
            let key = normalize_name(&path);
            for (i, k) in keys.iter().enumerate() {
                if *k == key {
                    found[i].push(e.position);
                }
            }
            Ok(())
        })?;
        found.into_iter().map(|positions| positions.into_iter().map(|pos| self.member_at(pos)).collect()).collect()
    }

    /// The number of entries of the `.tarfs` index in use (0 for none).
    pub fn indexed_entries(&self) -> usize {
        self.entries
    }

    /// `f` of entry `i` of the `.tarfs` index in use, which has extension data: decoded from the
    /// index alone, its checksum and its group's digest checked.
    pub fn indexed_entry<T>(&self, i: usize, f: impl FnOnce(&Entry<'_>) -> T) -> Result<T> {
        let (x, data) = self.extension().ok_or_else(|| Error::NotFound { path: self.archive.path().to_path_buf(), name: format!("index entry {i}") })??;
        if i >= self.entries {
            return Err(Error::NotFound { path: self.archive.path().to_path_buf(), name: format!("index entry {i}") });
        }
        Ok(f(&self.ext_entry(&x, data, i)?))
    }

    /// The entry numbers of the members named `name`, in archive order, through the sorted name
    /// table of the `.tarfs` index in use (which has extension data).
    pub fn lookup_entries(&self, name: &[u8]) -> Result<Vec<usize>> {
        let (x, data) = self.extension().ok_or_else(|| Error::NotFound { path: self.archive.path().to_path_buf(), name: String::from_utf8_lossy(name).into_owned() })??;
        self.find_in(&x, data, name)
    }

    /// The entry numbers named `name` in the opened extension `x` of the index whose bytes are
    /// `data`.
    fn find_in<'s>(&'s self, x: &ext::Ext<'s>, data: &'s [u8], name: &[u8]) -> Result<Vec<usize>> {
        let key_of = |i| -> Result<Vec<u8>> { Ok(normalize_name(&self.ext_entry(x, data, i)?.path()).to_vec()) };
        let wrap = |e| Error::Index { index: self.located.as_ref().map_or_else(|| self.archive.path().to_path_buf(), |l| l.path(self.archive)), source: tarfs::IndexError::Extension(e) };
        x.find(normalize_name(name), key_of, wrap)
    }

    /// The member whose header chain is at byte `pos`, read from the archive.
    fn member_at(&self, pos: u64) -> Result<Entry<'a>> {
        self.read_at(u64::MAX, pos, None)
    }

    /// Hands every member, in archive order, to `f`. The embedded `.tarfs` member itself is not
    /// included. Returns how the scan ended when the archive was scanned.
    pub fn for_each(&self, mut f: impl FnMut(&Entry<'_>) -> Result<()>) -> Result<Option<ScanEnd>> {
        let path = self.archive.path();
        let Some(located) = &self.located else {
            if let Some(c) = self.compression {
                return self.scan_stream(c, f).map(Some);
            }
            let skip = self.archive.embedded().map(|e| e.member_position);
            let mut scanner = Scanner::new(self.archive.bytes(), self.opts);
            for e in scanner.by_ref() {
                let e = e.map_err(|source| Error::Scan { path: path.to_path_buf(), source })?;
                if Some(e.position) == skip {
                    continue;
                }
                f(&e)?;
            }
            self.source.note_read(self.archive.len());
            self.archive.check_intact()?;
            return Ok(scanner.end());
        };
        if let Source::Csv(name, at) = &located.source {
            return self.for_each_csv(name, *at, located.slice(self.archive), f).map(|()| None);
        }
        if self.ext {
            let (x, data) = self.extension().expect("opened")?;
            // Every entry will be used: check their digests on every core first (each entry
            // below then finds its group checked).
            let _ = x.check_all_entries(&data[BLOCK..]);
            for i in 0..self.entries {
                f(&self.ext_entry(&x, data, i)?)?;
            }
            return Ok(None);
        }
        if let Some(c) = self.compression {
            // Entries that need their header chain would need the stream decoded to them: decode
            // once, as a scan, unless the index alone describes every member.
            let data = located.slice(self.archive);
            if !tarfs::decoded_entries(data, self.entries).all(|e| e.is_simple()) {
                return self.scan_stream(c, f).map(Some);
            }
        }
        self.for_each_indexed(located, None, f)?;
        self.archive.check_intact()?;
        Ok(None)
    }

    /// Scans a compressed archive's decoded stream once.
    fn scan_stream(&self, c: Compression, mut f: impl FnMut(&Entry<'_>) -> Result<()>) -> Result<ScanEnd> {
        let mut r = self.stream(c)?;
        let end = crate::stream::scan_stream(&mut r, self.archive.path(), self.opts, 1 << 20, |e| f(e))?;
        Ok(end.end)
    }

    /// Like [`Reader::for_each`], but only for members whose path `keep` accepts. Through a
    /// `.tarfs` index, a self-contained entry's path is judged on the entry alone, so members
    /// not kept cost no decoding and no archive access.
    pub fn for_each_path(&self, keep: impl Fn(&[u8]) -> bool + Sync, mut f: impl FnMut(&Entry<'_>) -> Result<()>) -> Result<()> {
        match &self.located {
            Some(located) if !self.ext && self.compression.is_none() && !matches!(located.source, Source::Csv(..)) => self.for_each_indexed(located, Some(&keep), f),
            _ => self.for_each(|e| if keep(&e.path()) { f(e) } else { Ok(()) }).map(drop),
        }
    }

    /// Members through a `.tarfs` index; with `keep`, only those whose path it accepts.
    fn for_each_indexed(&self, located: &Located, keep: Option<&(dyn Fn(&[u8]) -> bool + Sync)>, mut f: impl FnMut(&Entry<'_>) -> Result<()>) -> Result<()> {
        use rayon::prelude::*;
        let data = located.slice(self.archive);
        let blocks = &data[BLOCK..BLOCK * (self.entries + 1)];
        let wanted: Vec<usize> = match keep {
            None => (0..self.entries).collect(),
            // Judge self-contained entries by their paths on every core; the others need the
            // archive.
            Some(keep) => blocks
                .par_chunks(BLOCK * 4096)
                .enumerate()
                .flat_map_iter(|(c, chunk)| {
                    let mut path = Vec::new();
                    chunk.chunks_exact(BLOCK).enumerate().filter_map(move |(i, b)| {
                        let ie = IndexEntry::new(b.try_into().expect("one block"));
                        (!ie.is_simple() || keep(simple_path(&ie, &mut path))).then_some(c * 4096 + i)
                    })
                })
                .collect(),
        };
        let mut path = Vec::new();
        for i in wanted {
            let ie = IndexEntry::new(blocks[i * BLOCK..(i + 1) * BLOCK].try_into().expect("one block"));
            let pos = located.base + ie.position() * BLOCK_U64;
            if ie.is_simple() {
                debug_assert!(keep.is_none_or(|k| k(simple_path(&ie, &mut path))));
                let entry = Entry::from_simple_header(HeaderView::new(ie.as_bytes()), pos).map_err(|source| Error::Scan { path: located.path(self.archive), source })?;
                f(&entry)?;
            } else {
                let entry = self.read_at(i as u64, pos, Some(&ie))?;
                if keep.is_none_or(|k| k(&entry.path())) {
                    f(&entry)?;
                }
            }
        }
        Ok(())
    }

    /// Members through a CSV index. A row gives the name and the data's place; the main header
    /// is the block before the data, and must be a header of that size or that name.
    fn for_each_csv(&self, name: &str, index_at: u64, data: &[u8], mut f: impl FnMut(&Entry<'_>) -> Result<()>) -> Result<()> {
        let rows = csv::decode(data).map_err(|source| Error::Index { index: self.archive.path().to_path_buf(), source: tarfs::IndexError::Csv { name: name.to_string(), source } })?;
        let bytes = self.archive.bytes();
        // The pax global headers met so far: a member's attributes depend on them.
        let mut globals = crate::format::pax::Globals::default();
        let mut prev_end = 0u64;
        for (i, row) in rows.iter().enumerate() {
            let data_offset = row.start_block.saturating_mul(BLOCK_U64);
            // The member's header chain starts where the previous row's data ends (extension
            // headers, sparse maps and pax globals come between); a writer that pads with an
            // extra block leaves the header just before the data.
            // Where the previous member's data really ends, as its header says, not as the row
            // says: a damaged `blocks` column could otherwise start the chain past an extension
            // header and list the member without it.
            let from = prev_end;
            let at = data_offset.saturating_sub(BLOCK_U64);
            let bad = |msg: &str| self.mismatch(i as u64, at, &row.name, &format!("{name} row {}: {msg}", i + 1));
            if row.start_block == 0 || data_offset.saturating_add(row.size) > self.archive.len() {
                return Err(bad("the row's data is outside the archive"));
            }
            let mut seen = Vec::new();
            let mut found = |start: u64| {
                let mut sc = Scanner::window(bytes, start, self.opts, false, globals.as_slice());
                match sc.next() {
                    Some(Ok(e)) if e.data_offset == data_offset => {
                        seen = sc.global_ranges().to_vec();
                        Some(e)
                    }
                    _ => None,
                }
            };
            let Some(mut e) = found(from).or_else(|| found(at)) else {
                return Err(bad("no member header leads to the row's data"));
            };
            // Both the name and the size: a member renamed in place (same length, checksum
            // fixed) after the index was written has the row's size but another name.
            if normalize_name(&e.path()) != normalize_name(&row.name) || e.stored_size != row.size {
                return Err(bad(&format!("the header there is another member's ({}, {} bytes): the CSV index is stale", String::from_utf8_lossy(&e.path()), e.stored_size)));
            }
            prev_end = e.data_offset.saturating_add(crate::format::header::round_up(e.stored_size).unwrap_or(u64::MAX));
            e.pax.path = Some(&row.name);
            f(&e)?;
            for &(at, len) in &seen {
                globals.add(&bytes[at as usize..(at + len) as usize], self.opts.limits.max_metadata).map_err(|err| bad(&format!("its pax global headers: {err}")))?;
            }
        }
        // The index member itself, which its own rows cannot list.
        match Scanner::at(self.archive.bytes(), index_at, self.opts).next() {
            Some(Ok(e)) => f(&e),
            _ => Err(self.mismatch(rows.len() as u64, index_at, name.as_bytes(), "the CSV index member no longer decodes")),
        }
    }

    /// Re-reads `e`'s header chain from the archive at its position, and checks that it is the
    /// member the index described. Use before reading data. (Members listed through a CSV index
    /// were checked against their header as they were listed.)
    pub fn checked<'s>(&'s self, e: &Entry<'s>) -> Result<Entry<'s>> {
        if matches!(self.source(), Source::Csv(..)) {
            return Ok(*e);
        }
        let found = if e.has_globals {
            // Pax globals that set attributes apply: the chain means what it means only after
            // them, so follow the archive from its start (rare: `git archive` globals set none).
            self.source.note_read(e.data_offset);
            let mut scanner = Scanner::new(self.archive.bytes(), self.opts);
            match scanner.find(|x| x.as_ref().map_or(true, |x| x.position >= e.position)) {
                Some(Ok(x)) if x.position == e.position => x,
                _ => return Err(self.mismatch(u64::MAX, e.position, &e.path(), "no member starts there")),
            }
        } else {
            self.read_at(u64::MAX, e.position, None)?
        };
        let same = found.header.as_bytes()[..148] == e.header.as_bytes()[..148]
            && found.header.as_bytes()[156..500] == e.header.as_bytes()[156..500]
            && found.data_offset == e.data_offset
            && found.path() == e.path();
        if !same {
            return Err(self.mismatch(u64::MAX, e.position, &e.path(), "the header there is another member's"));
        }
        Ok(found)
    }

    fn read_at(&self, entry: u64, pos: u64, ie: Option<&IndexEntry<'_>>) -> Result<Entry<'a>> {
        let name = || ie.map(|i| String::from_utf8_lossy(HeaderView::new(i.as_bytes()).name()).into_owned()).unwrap_or_default();
        if pos >= self.archive.len() {
            return Err(self.mismatch(entry, pos, name().as_bytes(), "position is past the end of the archive"));
        }
        let found = match Scanner::at(self.archive.bytes(), pos, self.opts).next() {
            Some(Ok(e)) => e,
            Some(Err(err)) => return Err(self.mismatch(entry, pos, name().as_bytes(), &format!("no member there ({})", err.kind))),
            None => return Err(self.mismatch(entry, pos, name().as_bytes(), "no member there (end of archive)")),
        };
        self.source.note_read(found.data_offset - pos);
        if let Some(ie) = ie {
            if found.position != pos || !ie.matches_header(found.header.as_bytes()) {
                return Err(self.mismatch(entry, pos, name().as_bytes(), "the header there differs from the index entry"));
            }
            if ie.chain_blocks().is_some_and(|c| c != found.chain_blocks()) {
                return Err(self.mismatch(entry, pos, name().as_bytes(), "the header chain there has another length"));
            }
        }
        Ok(found)
    }

    /// Writes member `e`'s logical contents (sparse holes expanded) to `out`, after checking
    /// that its header chain in the archive is the one the index described.
    ///
    /// Plain and compressed archives alike are read through the reader's [`ByteSource`] (a
    /// mapping's reads borrow its pages): the header chain and the first of the data in one
    /// window, then the data in pieces. Only a member after pax global headers is checked by
    /// following the archive from its start ([`Reader::checked`]), in a plain archive.
    pub fn write_member(&self, e: &Entry<'_>, out: &mut dyn Write) -> Result<()> {
        if self.compression.is_none() && e.has_globals {
            let found = self.checked(e)?;
            write_data(self.archive, &found, &self.opts, out)?;
            // Bytes read from a page the file no longer has were zeros: an error, not data.
            return self.archive.check_intact();
        }
        self.write_through_source(e, out)?;
        match self.compression {
            None => self.archive.check_intact(),
            Some(_) => Ok(()),
        }
    }

    /// [`Reader::write_member`] through the byte source.
    fn write_through_source(&self, e: &Entry<'_>, out: &mut dyn Write) -> Result<()> {
        let path = self.archive.path();
        let io_in = |source: std::io::Error| Error::Io { path: path.to_path_buf(), source };
        let io_out = |source| Error::Io { path: PathBuf::from("-"), source };
        let chain_len = e.data_offset - e.position;
        // The chain, and the first of the data with it (a window of at least two blocks, as
        // the scanner wants before it trusts a header).
        let first = e.stored_size.clamp(2 * BLOCK_U64, 1 << 20);
        let want = chain_len + first;
        let head = self.source.read_at(e.position, want as usize).map_err(io_in)?;
        // A window cut short by the end of the data is all there is.
        let mut sc = Scanner::window(&head, 0, self.opts, head.len() as u64 == want, &[]);
        let found = match sc.step() {
            Ok(Step::Entry(f)) => f,
            Ok(Step::NeedData { .. }) => return Err(self.mismatch(u64::MAX, e.position, &e.path(), "no member there (more input needed)")),
            Err(err) => return Err(self.mismatch(u64::MAX, e.position, &e.path(), &format!("no member there ({})", err.kind))),
            Ok(Step::End(_)) => return Err(self.mismatch(u64::MAX, e.position, &e.path(), "no member there (end of archive)")),
        };
        let same = found.position == 0
            && found.header.as_bytes()[..148] == e.header.as_bytes()[..148]
            && found.header.as_bytes()[156..500] == e.header.as_bytes()[156..500]
            && found.data_offset == chain_len
            && found.stored_size == e.stored_size
            && found.path() == e.path();
        if !same {
            return Err(self.mismatch(u64::MAX, e.position, &e.path(), "the header there is another member's"));
        }
        let mut x = Expander::new(&found, &self.opts, path)?;
        if x.stored() > found.stored_size {
            return Err(Error::Data { path: path.to_path_buf(), offset: e.header_offset, problem: DataProblem::SparseShort { needs: x.stored(), stores: found.stored_size } });
        }
        let end = e.data_offset + e.stored_size;
        let short = || Error::Data { path: path.to_path_buf(), offset: e.position, problem: DataProblem::EndsInData };
        let in_head = &head[chain_len as usize..];
        let take = (in_head.len() as u64).min(e.stored_size) as usize;
        x.feed(&in_head[..take], out).map_err(io_out)?;
        let mut at = e.data_offset + take as u64;
        if take as u64 != e.stored_size && in_head.len() as u64 > take as u64 {
            return Err(short());
        }
        // A mapping lends the rest at once; other sources give it in pieces of 1 MiB.
        let most = if self.source.as_slice().is_some() { u64::MAX } else { 1 << 20 };
        while at < end {
            let n = usize::try_from((end - at).min(most)).unwrap_or(usize::MAX);
            let piece = self.source.read_at(at, n).map_err(io_in)?;
            if piece.len() < n {
                return Err(short());
            }
            x.feed(&piece, out).map_err(io_out)?;
            at += n as u64;
        }
        x.finish(out).map_err(io_out)
    }

    /// Where the logical contents of the member whose header chain starts at `position` are,
    /// for reading any part of it (a mount's reads): its size, and its data regions as
    /// `(logical offset, length, offset in the archive's data)`, holes between them reading as
    /// zeros. The header chain is read again at `position` (from the archive, or through the
    /// byte source of a compressed one), so a position that no longer holds a member is an
    /// error; its path and size are given for the caller to compare.
    pub fn layout_at(&self, position: u64) -> Result<Layout> {
        let path = self.archive.path();
        let of = |found: &Entry<'_>, data_offset: u64| -> Result<Layout> {
            let x = Expander::new(found, &self.opts, path)?;
            if x.stored() > found.stored_size {
                return Err(Error::Data { path: path.to_path_buf(), offset: found.header_offset, problem: DataProblem::SparseShort { needs: x.stored(), stores: found.stored_size } });
            }
            let mut at = data_offset;
            let regions = x
                .regions()
                .iter()
                .map(|&(logical, len)| {
                    let r = (logical, len, at);
                    at += len;
                    r
                })
                .collect();
            Ok(Layout { path: found.path().into_owned(), size: x.size(), typeflag: found.typeflag, regions, fingerprint: fingerprint(found, data_offset.saturating_sub(found.data_offset)) })
        };
        // Through the byte source, plain and compressed alike: the chain, and two blocks after
        // it, as the scanner wants before it trusts a header.
        let io_in = |source: std::io::Error| Error::Io { path: path.to_path_buf(), source };
        let mut want = 64 * BLOCK;
        loop {
            let head = self.source.read_at(position, want).map_err(io_in)?;
            // A window cut short by the end of the data is all there is.
            let mut sc = Scanner::window(&head, 0, self.opts, head.len() == want, &[]);
            match sc.step() {
                Ok(Step::Entry(found)) if found.position == 0 => return of(&found, position + found.data_offset),
                // A chain longer than the window (long pax records): a larger one.
                Ok(Step::NeedData { .. }) | Err(_) if head.len() == want && want < (64 << 20) => want *= 8,
                Ok(Step::NeedData { .. }) => return Err(self.mismatch(u64::MAX, position, b"", "no member there (more input needed)")),
                Err(err) => return Err(self.mismatch(u64::MAX, position, b"", &format!("no member there ({})", err.kind))),
                _ => return Err(self.mismatch(u64::MAX, position, b"", "no member there")),
            }
        }
    }

    /// `len` bytes of the archive's (decompressed) data at `offset`, from the reader's byte
    /// source: the mapping, or the seek points or decoder of a compressed archive.
    pub fn bytes_at(&self, offset: u64, len: usize) -> std::io::Result<Cow<'_, [u8]>> {
        self.source.read_at(offset, len)
    }

    fn mismatch(&self, entry: u64, offset: u64, name: &[u8], msg: &str) -> Error {
        Error::Mismatch {
            path: self.archive.path().to_path_buf(),
            entry: (entry != u64::MAX).then_some(entry),
            name: String::from_utf8_lossy(name).into_owned(),
            offset,
            msg: msg.to_string(),
        }
    }
}

/// Where a member's logical contents are (see [`Reader::layout_at`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The member's path, from its header chain.
    pub path: Vec<u8>,
    /// Its logical size.
    pub size: u64,
    /// Its effective typeflag.
    pub typeflag: u8,
    /// `(logical offset, length, offset in the archive's data)`, in order.
    pub regions: Vec<(u64, u64, u64)>,
    /// The [`fingerprint`] of the member found there.
    pub fingerprint: u64,
}

/// What identifies member `e` at its place, as a listing shows it: its main header (without
/// the checksum field and the bytes an index entry reuses), its full path and where its data
/// starts (`base` added to its data offset). A mount compares the fingerprint of the member it
/// listed with the one it finds when a file is opened, as `cat` compares the header and path:
/// two same-size members that swapped names, or a flipped position, are then an error (EIO),
/// never another file's bytes.
pub fn fingerprint(e: &Entry<'_>, base: u64) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let header = e.header.as_bytes();
    h.update(&header[..148]);
    h.update(&header[156..500]);
    h.update(&e.path());
    h.update(&e.data_offset.saturating_add(base).to_be_bytes());
    h.digest()
}

impl Layout {
    /// The bytes `[offset, offset + len)` of the contents, from `reader`.
    pub fn read(&self, reader: &Reader<'_>, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let end = offset.saturating_add(len as u64).min(self.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut out = vec![0u8; (end - offset) as usize];
        let first = self.regions.partition_point(|r| r.0 + r.1 <= offset);
        for &(logical, n, at) in &self.regions[first..] {
            if logical >= end {
                break;
            }
            let from = logical.max(offset);
            let to = (logical + n).min(end);
            if from >= to {
                continue;
            }
            let bytes = reader.bytes_at(at + (from - logical), (to - from) as usize)?;
            if (bytes.len() as u64) < to - from {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the archive ends inside the member's data"));
            }
            out[(from - offset) as usize..(to - offset) as usize].copy_from_slice(&bytes[..(to - from) as usize]);
        }
        Ok(out)
    }
}

/// The path of a self-contained entry (`prefix/name` of its header), built in `buf`.
fn simple_path<'b>(ie: &IndexEntry<'_>, buf: &'b mut Vec<u8>) -> &'b [u8] {
    let h = HeaderView::new(ie.as_bytes());
    buf.clear();
    if !h.prefix().is_empty() {
        buf.extend_from_slice(h.prefix());
        buf.push(b'/');
    }
    buf.extend_from_slice(h.name());
    buf
}

pub use crate::format::ext::normalize_name;

/// Writes the contents of the members named `names` to `out`, in archive order; a sparse member is
/// expanded with its holes as zeros. Every occurrence of a name is written, as `tar -xOf` does.
/// Names not found are an error, after the others are written.
pub fn cat(reader: &Reader<'_>, names: &[Vec<u8>], out: &mut dyn Write) -> Result<()> {
    let stdout = Path::new("-");
    let to_stdout = |err| match err {
        Error::Io { source, .. } if reader.compression().is_none() => Error::Io { path: stdout.to_path_buf(), source },
        other => other,
    };
    let is_dir = |e: &Entry<'_>| Error::Usage { what: crate::error::UsageError::CatDirectory { path: reader.archive().path().to_path_buf(), member: String::from_utf8_lossy(&e.path()).into_owned() } };
    let not_found = |i: usize| Error::NotFound { path: reader.archive().path().to_path_buf(), name: String::from_utf8_lossy(&names[i]).into_owned() };
    if reader.reads_members_alone() {
        // Look each name up, then write the members in archive order (so a compressed stream
        // is decoded once, forward).
        let mut members = Vec::new();
        let mut missing = None;
        let wanted: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
        for (i, found) in reader.lookup_all(&wanted)?.into_iter().enumerate() {
            if found.is_empty() {
                missing.get_or_insert(i);
            }
            members.extend(found);
        }
        members.sort_by_key(|e| e.position);
        members.dedup_by_key(|e| e.position);
        for e in &members {
            if e.typeflag == b'5' {
                return Err(is_dir(e));
            }
            reader.write_member(e, out).map_err(to_stdout)?;
        }
        return missing.map_or(Ok(()), |i| Err(not_found(i)));
    }
    let wanted: Vec<&[u8]> = names.iter().map(|n| normalize_name(n)).collect();
    let mut found = vec![false; names.len()];
    if let Some(c) = reader.compression() {
        cat_stream(reader, c, &wanted, &mut found, out)?;
    } else {
        reader.for_each_path(|p| wanted.contains(&normalize_name(p)), |e| {
            let path = e.path();
            let name = normalize_name(&path);
            let mut hit = false;
            for (i, w) in wanted.iter().enumerate() {
                if *w == name {
                    found[i] = true;
                    hit = true;
                }
            }
            if !hit {
                return Ok(());
            }
            if e.typeflag == b'5' {
                return Err(is_dir(e));
            }
            reader.write_member(e, out).map_err(to_stdout)
        })?;
    }
    match found.iter().position(|f| !f) {
        Some(i) => Err(not_found(i)),
        None => Ok(()),
    }
}

/// What [`cat_stream`] carries between the stream callbacks.
struct CatState<'o> {
    out: &'o mut dyn Write,
    current: Option<Expander>,
}

/// `cat` of a compressed archive without an index that names its members: one pass over the
/// decoded stream, writing the members named as they pass. With an index whose entries
/// describe every member alone, the pass stops after the last position a wanted name has.
fn cat_stream(reader: &Reader<'_>, c: Compression, wanted: &[&[u8]], found: &mut [bool], out: &mut dyn Write) -> Result<()> {
    let archive = reader.archive();
    let mut stop_after = None;
    if let Some(data) = reader.index_bytes().filter(|_| matches!(reader.source(), Source::Sidecar(_))) {
        let all_simple = tarfs::decoded_entries(data, reader.entries).all(|e| e.is_simple());
        if all_simple {
            let mut path = Vec::new();
            for e in tarfs::decoded_entries(data, reader.entries) {
                if wanted.contains(&normalize_name(simple_path(&e, &mut path))) {
                    stop_after = Some(e.position() * BLOCK_U64);
                }
            }
            stop_after.get_or_insert(0);
        }
    }
    let mut r = reader.stream(c)?;
    cat_pass(&mut r, archive.path(), reader.opts, stop_after, wanted, found, out)
}

/// Writes the members of standard input (a tar stream, compressed or not) named `names`, in
/// stream order, as `tar -xOf -` does: one pass. Names not found are an error, after the others
/// are written.
pub fn cat_stdin(names: &[Vec<u8>], opts: ScanOptions, out: &mut dyn Write) -> Result<()> {
    let wanted: Vec<&[u8]> = names.iter().map(|n| normalize_name(n)).collect();
    let mut found = vec![false; names.len()];
    let mut r = crate::stream::open_stdin()?;
    cat_pass(&mut r, Path::new("-"), opts, None, &wanted, &mut found, out)?;
    match found.iter().position(|f| !f) {
        Some(i) => Err(Error::NotFound { path: PathBuf::from("-"), name: String::from_utf8_lossy(&names[i]).into_owned() }),
        None => Ok(()),
    }
}

/// One pass over the tar stream `r` (named `path` in messages): the members whose names are
/// `wanted` are written to `out`, and `found` marks the names met. With `stop_after`, the pass
/// ends after the member at that position.
fn cat_pass(r: &mut dyn std::io::Read, path: &Path, opts: ScanOptions, stop_after: Option<u64>, wanted: &[&[u8]], found: &mut [bool], out: &mut dyn Write) -> Result<()> {
    use crate::stream::{scan_stream_with, Visit};
    use std::cell::RefCell;
    let io = |e: std::io::Error| Error::Io { path: "-".into(), source: e };
    let state = RefCell::new(CatState { out, current: None });
    let hits = RefCell::new(found);
    let visit = |e: &Entry<'_>| -> Result<Visit> {
        let mut s = state.borrow_mut();
        let s = &mut *s;
        if let Some(mut x) = s.current.take() {
            x.finish(s.out).map_err(io)?;
        }
        if stop_after.is_some_and(|last| e.position > last) {
            return Ok(Visit::Stop);
        }
        let member = e.path();
        let name = normalize_name(&member);
        let mut hit = false;
        for (i, w) in wanted.iter().enumerate() {
            if *w == name {
                hits.borrow_mut()[i] = true;
                hit = true;
            }
        }
        if !hit {
            return Ok(Visit::Skip);
        }
        if e.typeflag == b'5' {
            return Err(Error::Usage { what: crate::error::UsageError::CatDirectory { path: path.to_path_buf(), member: String::from_utf8_lossy(&member).into_owned() } });
        }
        s.current = Some(Expander::new(e, &opts, path)?);
        Ok(Visit::Data)
    };
    let data = |chunk: &[u8]| -> Result<()> {
        let mut s = state.borrow_mut();
        let s = &mut *s;
        if let Some(x) = s.current.as_mut() {
            x.feed(chunk, s.out).map_err(io)?;
        }
        Ok(())
    };
    scan_stream_with(r, path, opts, 1 << 20, visit, data)?;
    let mut s = state.into_inner();
    if let Some(mut x) = s.current.take() {
        x.finish(s.out).map_err(io)?;
    }
    Ok(())
}

/// Writes one member's logical contents (sparse holes expanded) to `out`.
pub fn write_data(archive: &Archive, e: &Entry<'_>, opts: &ScanOptions, out: &mut dyn Write) -> Result<()> {
    let io = |source| Error::Io { path: PathBuf::from("-"), source };
    let data = &archive.bytes()[e.data_offset as usize..(e.data_offset + e.stored_size) as usize];
    let mut x = Expander::new(e, opts, archive.path())?;
    if x.stored() > data.len() as u64 {
        return Err(Error::Data { path: archive.path().to_path_buf(), offset: e.header_offset, problem: DataProblem::SparseShort { needs: x.stored(), stores: data.len() as u64 } });
    }
    x.feed(data, out).map_err(io)?;
    x.finish(out).map_err(io)
}

/// Writes a member's logical contents as its stored data arrives: a sparse member's holes as
/// zeros, in order.
pub(crate) struct Expander {
    map: Vec<Region>,
    region: usize,
    in_region: u64,
    logical: u64,
    size: u64,
}

impl Expander {
    pub(crate) fn new(e: &Entry<'_>, opts: &ScanOptions, path: &Path) -> Result<Expander> {
        let bad = |err| Error::Data { path: path.to_path_buf(), offset: e.header_offset, problem: DataProblem::SparseMap(err) };
        let map = match e.sparse_map(&opts.limits).map_err(bad)? {
            Some(m) => {
                crate::format::sparse::validate(&m, e.size).map_err(bad)?;
                m
            }
            None => vec![(0, e.stored_size)],
        };
        let size = if e.sparse.is_some() { e.size } else { e.stored_size };
        Ok(Expander { map, region: 0, in_region: 0, logical: 0, size })
    }

    /// The `(logical offset, length)` regions of data, in order, checked against the member.
    pub(crate) fn regions(&self) -> &[Region] {
        &self.map
    }

    /// The member's logical size.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Bytes of stored data the map accounts for.
    pub(crate) fn stored(&self) -> u64 {
        self.map.iter().map(|r| r.1).sum()
    }

    fn zeros(&mut self, mut n: u64, out: &mut dyn Write) -> std::io::Result<()> {
        let z = [0u8; 8192];
        while n > 0 {
            let k = n.min(z.len() as u64) as usize;
            out.write_all(&z[..k])?;
            n -= k as u64;
            self.logical += k as u64;
        }
        Ok(())
    }

    pub(crate) fn feed(&mut self, mut data: &[u8], out: &mut dyn Write) -> std::io::Result<()> {
        while !data.is_empty() && self.region < self.map.len() {
            let (offset, len) = self.map[self.region];
            if self.in_region == 0 && self.logical < offset {
                self.zeros(offset - self.logical, out)?;
            }
            let k = (len - self.in_region).min(data.len() as u64) as usize;
            out.write_all(&data[..k])?;
            self.logical += k as u64;
            self.in_region += k as u64;
            data = &data[k..];
            if self.in_region == len {
                self.region += 1;
                self.in_region = 0;
            }
        }
        Ok(())
    }

    pub(crate) fn finish(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        let end = self.size;
        self.zeros(end.saturating_sub(self.logical), out)
    }
}


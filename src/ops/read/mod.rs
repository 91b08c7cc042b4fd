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

use crate::archive::{sidecar_candidates, with_member_at, Archive, ArchiveFile, IndexDir};
use crate::error::{DataProblem, Error, Result};
use crate::format::header::{HeaderView, BLOCK, BLOCK_U64};
use crate::format::csv;
use crate::format::sparse::Region;
use crate::format::compression::Compression;
use crate::format::ext;
use crate::format::tarfs::{self, Index, IndexEntry, FLAG_EXT, FLAG_GLOBALS, FLAG_SUBSET};
use crate::source::{compression_of, source_of, ByteSource, Decoded};
use self::form::Form;
pub(crate) use self::form::{grown_v2, keep_v2};
use crate::scan::{Entry, ScanEnd, ScanOptions, Scanner, Step};
use crate::verdict::{self, Corruption, Judged, Verdict, Why};
mod cat;
mod digests;
mod expand;
mod form;
mod layout;
mod list;
mod locate;
mod lookup;
mod member;

pub use cat::{cat, cat_stdin};
pub use expand::write_data;
pub(crate) use expand::Expander;
pub use layout::{chain_fingerprint, fingerprint, Layout};
pub use locate::*;
pub use lookup::{ext_entry, extension_of, intact_extension, opened_extension};

/// Reads members of one archive through its best index, over the archive's [`ByteSource`]: the
/// mapping for a plain archive, the decoded stream for a compressed one.
pub struct Reader<'a> {
    archive: &'a dyn ArchiveFile,
    source: Box<dyn ByteSource + 'a>,
    compression: Option<Compression>,
    /// How the index in use answers (a scan where there is none).
    form: Box<dyn Form>,
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
    /// Whether an index that lists only some members may answer: only for `verify`, which
    /// pairs its entries with the members its filter selects ([`Reader::with_subset_index`]).
    subsets: bool,
    /// Whether members' content is checked against the index's digests (`--no-verify`: not).
    verify: bool,
    /// Where the index's member digests part lies in its bytes, found on first use.
    digests_at: std::sync::OnceLock<std::result::Result<Option<crate::format::digests::Where>, crate::format::tarfs::IndexError>>,
}


impl<'a> Reader<'a> {
    /// Opens `archive` for reading through its best usable index: the embedded one, the sidecar,
    /// then the newest CSV index member. An index that cannot be read, is stale or does not
    /// decode is passed over ([`Reader::refusals`] says which and why, [`Reader::note`] in
    /// words); with none usable, the archive is scanned. A compressed archive can only have a
    /// sidecar.
    pub fn open(archive: &'a dyn ArchiveFile, index_dir: Option<&IndexDir>, opts: ScanOptions) -> Result<Reader<'a>> {
        // A half-changed archive is neither the old one nor the new one: no answer until
        // `tarfs recover` has run.
        crate::ops::journal::refuse_pending(archive)?;
        let mut refusals = Vec::new();
        let sidecars: Vec<Located> = Located::sidecars(archive, index_dir)
            .into_iter()
            .filter_map(|s| {
                s.map_err(|(side, e)| refusals.push(Refusal { source: Source::Sidecar(side), verdict: Verdict::Corrupt(Corruption::Unreadable(e.to_string())) }))
                .ok()
            })
            .collect();
        let compressed = compression_of(archive).is_some();
        // The CSV member is looked for only once the others are passed over.
        let csv = std::iter::once_with(|| locate_csv(archive, opts).filter(|_| !compressed)).flatten();
        let candidates = Located::embedded(archive).filter(|_| !compressed).into_iter().chain(sidecars).chain(csv);
        for located in candidates {
            match Reader::with_index(archive, located, opts) {
                Ok(mut r) => {
                    r.passed_over(refusals);
                    return Ok(r);
                }
                Err(refusal) => refusals.push(*refusal),
            }
        }
        let mut r = Reader::scanning(archive, opts, None);
        r.passed_over(refusals);
        Ok(r)
    }

    /// Opens `archive` through the index in the file `index` alone (`--index FILE`): the
    /// typed [`Error::IndexRefused`] where its verdict does not let it answer, never a scan
    /// instead, since it was asked for by name.
    pub fn through(archive: &'a dyn ArchiveFile, index: &Path, opts: ScanOptions) -> Result<Reader<'a>> {
        crate::ops::journal::refuse_pending(archive)?;
        Reader::with_index(archive, Located::file(index)?, opts).map_err(|refusal| Error::IndexRefused { path: archive.path().to_path_buf(), refusal })
    }

    /// Records the indexes passed over before this one, and says so in the note: what was
    /// passed over first, then what this index itself said.
    fn passed_over(&mut self, refusals: Vec<Refusal>) {
        if refusals.is_empty() {
            return;
        }
        let before = refusals.iter().map(Refusal::to_string).collect::<Vec<_>>().join("; ");
        self.note = Some(match (self.form.located(), self.note.take()) {
            (Some(_), own) => format!("{before}; using {}{}", self.source(), own.map(|n| format!("; {n}")).unwrap_or_default()),
            (None, _) => format!("{before}; scanning instead"),
        });
        self.refusals = refusals;
    }

    /// The indexes passed over, and why, in the order they were tried.
    pub fn refusals(&self) -> &[Refusal] {
        &self.refusals
    }

    fn scanning(archive: &'a dyn ArchiveFile, opts: ScanOptions, note: Option<String>) -> Reader<'a> {
        let source = source_of(archive);
        Reader { archive, source, compression: compression_of(archive), form: Box::new(form::Scan), opening_reads: 0, opts, note, refusals: Vec::new(), gzidx: None, checked_stream: false, subsets: false, verify: true, digests_at: std::sync::OnceLock::new() }
    }

    /// A reader through `located`, if the verdict on that index ([`crate::verdict`]) lets it
    /// answer; else the typed refusal. [`form::open`] picks the form of the index.
    pub fn with_index(archive: &'a dyn ArchiveFile, located: Located, opts: ScanOptions) -> std::result::Result<Reader<'a>, Box<Refusal>> {
        form::open(Reader::scanning(archive, opts, None), located)
    }

    /// [`Reader::with_index`], where a subset index (made with a filter) answers too, for the
    /// members it lists: for `verify` of a v2 index, never for reading an archive.
    pub(crate) fn with_subset_index(archive: &'a dyn ArchiveFile, located: Located, opts: ScanOptions) -> std::result::Result<Reader<'a>, Box<Refusal>> {
        let mut r = Reader::scanning(archive, opts, None);
        r.subsets = true;
        form::open(r, located)
    }

    /// This reader, answering through `form`.
    fn answering(mut self, form: Box<dyn Form>) -> Reader<'a> {
        self.form = form;
        self
    }

    /// For a compressed archive whose fresh index has a seek `section`: reads through it. A
    /// section that does not open (damaged: its file was just found to be this one) makes the
    /// index corrupt; the archive is then decoded from its start, as a scan.
    fn seek_through(&mut self, section: &[u8]) -> std::result::Result<(), crate::seekpoints::SeekPointsError> {
        let Some(c) = self.compression else { return Ok(()) };
        self.source = Box::new(crate::seekpoints::Checkpointed::open(self.archive, c, section)?);
        Ok(())
    }

    /// A compressed file whose index no longer answers for it (`refusal`), but whose seek
    /// `section` still binds it (the same length, first and last 64 KiB): the file changed in
    /// its middle since it was indexed, which is damage far more often than a new archive. The
    /// entries may not answer; the archive is scanned, through the seek points, each piece
    /// checked against the digests of the file as indexed: what is unchanged reads as before,
    /// and what changed is an error, never other bytes (a zstd frame has no checksum of its
    /// own). `Err(refusal)` where there is no such section.
    fn checked_scan(mut self, section: Option<&[u8]>, refusal: Box<Refusal>) -> std::result::Result<Reader<'a>, Box<Refusal>> {
        let (Some(c), Some(section)) = (self.compression, section) else { return Err(refusal) };
        let Ok(ck) = crate::seekpoints::Checkpointed::open(self.archive, c, section) else { return Err(refusal) };
        self.source = Box::new(ck);
        self.checked_stream = true;
        self.note = Some(format!("{refusal}; its seek points still bind the file, so the archive is scanned through them, each piece checked against the digests of the file as indexed"));
        self.refusals = vec![*refusal];
        Ok(self)
    }

    /// The archive's data as a stream from its start: a compressed archive decoded afresh
    /// (or through the checked seek points where [`Reader::checked_scan`] chose them), any
    /// other read through the byte source in pieces.
    fn stream(&self) -> Result<Box<dyn std::io::Read + Send + '_>> {
        match self.compression {
            Some(c) if !self.checked_stream => Decoded::new(self.archive, c).stream(),
            _ => Ok(Box::new(crate::source::SourceStream::new(&*self.source))),
        }
    }

    /// The archive's bytes, when the byte source lends them whole (the mapping of a plain
    /// archive): scans and header reads then borrow them. `None` for a source read in pieces
    /// (a compressed stream, `pread`, a remote object): the archive is then read as a stream
    /// from its start, except where the index alone answers or one member is read at its
    /// place ([`Reader::write_member`], [`Reader::layout_at`]).
    pub fn lent(&self) -> Option<&[u8]> {
        self.source.as_slice()
    }

    /// Reads the archive through `source` instead of the one [`crate::source::source_of`]
    /// chose (a plain archive read with `pread` rather than mapped, say). The source must
    /// give the same bytes: the index's verdict was taken on the archive as it was opened.
    pub fn read_through(mut self, source: Box<dyn ByteSource + 'a>) -> Reader<'a> {
        self.source = source;
        self
    }

    /// The typed error for a read that needs the archive's bytes lent whole, where the source
    /// does not lend them (the callers choose a stream before that can happen).
    fn not_lent(&self, what: &str) -> Error {
        Error::Bug { path: self.archive.path().to_path_buf(), what: format!("{what} needs the archive's bytes lent whole, and its byte source reads in pieces") }
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
        // The seek section follows v1's extension, or v2's body.
        let major = tarfs::version_of(data).ok()?.0;
        let info = tarfs::decode_header_as(header, major).ok()?.info?;
        let range = if major == 2 { crate::format::v2::seek_range(data, &info)? } else { tarfs::seek_range(data, &info)? };
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
        self.form.source()
    }

    /// Why an index that exists is not used, if so.
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// The bytes of the index in use, if any.
    pub fn index_bytes(&self) -> Option<&[u8]> {
        self.form.located().map(|l| l.slice(self.archive))
    }

    /// Whether the index in use has extension data: listing and lookup need no archive bytes.
    pub fn has_extension(&self) -> bool {
        self.form.answers_alone()
    }

    /// Whether every member can be listed from the index and read on its own through the byte
    /// source (for a compressed archive: without decoding the stream to list it, and without
    /// pax globals that a lone header chain would be read without).
    pub fn reads_members_alone(&self) -> bool {
        self.form.answers_alone() && !(self.lent().is_none() && self.form.has_globals())
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
    pub fn archive(&self) -> &'a dyn ArchiveFile {
        self.archive
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

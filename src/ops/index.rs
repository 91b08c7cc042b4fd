//! Building `.tarfs` indexes from a scan.
//!
//! [`write_index`] streams one entry per selected member to any `Write + Seek` sink and writes
//! the header block last, once the count is known, so memory stays constant whatever the number
//! of members. [`write_sidecar`] wraps it in an atomic file write.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use memmap2::Advice;

use crate::archive::{Archive, ArchiveFile};
use crate::error::{Error, IoContext, Result};
use crate::format::compression::Compression;
use crate::stream::{scan_stream, StreamEnd, Visit};
use crate::ops::digests::{Collector, Place, StreamHasher};
use crate::scan::Entry;
use crate::format::header::BLOCK_U64;
use crate::format::ext::{self, ExtSink};
use crate::format::tarfs::{self, IndexInfo, FLAG_GLOBALS, FLAG_SUBSET};
use crate::ops::read::{decode_index, judged, IndexBytes, Located, Source};
use crate::seekpoints::NoSeekPoints;
use crate::verdict::{Corruption, Verdict, Why};
use crate::ops::atomic::{write_atomic_deferred, DirSyncs, Perm};
use crate::ops::filter::Filter;
use crate::chunked::{self, Plan, ScanMode};
use crate::scan::{ScanEnd, ScanOptions};

/// How to build an index.
#[derive(Debug, Clone, Default)]
pub struct IndexOptions {
    /// Scanner options.
    pub scan: ScanOptions,
    /// Index only the members this selects (a subset index).
    pub filter: Option<Filter>,
    /// Defer the fsync of the sidecar's directory to the caller (a batch syncs each directory
    /// once, at its end). `None`: fsync it before returning.
    pub dir_syncs: Option<std::sync::Arc<DirSyncs>>,
    /// Sequential or chunked scan (see [`crate::chunked`]).
    pub mode: ScanMode,
    /// Threads for a chunked scan (and for decoding a gzip file); 0 for one per core.
    pub threads: usize,
    /// For a gzip-compressed archive: bytes of decompressed output between seek points (0:
    /// [`crate::seekpoints::DEFAULT_SPAN`]).
    pub span: u64,
    /// For a gzip-compressed archive: also write its seek points to this file as an
    /// indexed_gzip GZIDX index.
    pub gzidx: Option<PathBuf>,
    /// The index version a sidecar is written in.
    pub format: IndexFormat,
    /// Member digests for a plain archive too (a compressed one always gets them): a read of
    /// every member's data, not only of the headers.
    pub digests: bool,
    /// No member digests, not even for a compressed archive (to time what they cost).
    pub no_digests: bool,
}

impl IndexOptions {
    /// The scan options digests of a compressed archive (or a stream, `always`) are collected
    /// with, unless [`IndexOptions::no_digests`].
    pub(crate) fn stream_digests(&self, always: bool) -> Option<ScanOptions> {
        ((always || self.digests) && !self.no_digests).then_some(self.scan)
    }
}

/// The version of a `.tarfs` index a writer writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum IndexFormat {
    /// v1.0 with its extension data: an entry of 512 bytes per member (a copy of its header),
    /// which a reader of the specification alone can read.
    V1,
    /// v2.0 ([`crate::format::v2`]): fixed-width records, front-coded paths and a hash table,
    /// about 45 bytes per member and its name. The default.
    #[default]
    V2,
}

impl IndexFormat {
    /// The major version it writes.
    pub fn major(self) -> u32 {
        match self {
            IndexFormat::V1 => 1,
            IndexFormat::V2 => 2,
        }
    }
}

impl IndexOptions {
    /// The worker threads a chunked scan uses.
    pub fn threads(&self) -> usize {
        match self.threads {
            0 => crate::chunked::cores(),
            n => n,
        }
    }
}

/// What building an index found.
#[derive(Debug, Clone)]
pub struct IndexReport {
    /// Where the index was written.
    pub index_path: PathBuf,
    /// Members in the archive.
    pub members: u64,
    /// Entries in the index (fewer than `members` for a subset).
    pub entries: u64,
    /// Bytes of archive scanned.
    pub bytes: u64,
    /// How the scan ended (and its warning, if any).
    pub end: ScanEnd,
    /// Bytes of extension data (0 when the index has none).
    pub ext_len: u64,
    /// Of them, the bytes of names (paths, link targets, owner names, with their lengths); the
    /// rest is [`ext::BYTES_PER_MEMBER`] per entry and the extension's header and chunk table.
    pub ext_names: u64,
    /// For a gzip-compressed archive: its seek points.
    pub seek: Option<SeekReport>,
}

impl IndexReport {
    /// The report of the index `dest` of a stream, which recorded `info` and ended as `end`,
    /// with its extension data's length and bytes of names (`ext`); no seek points.
    pub(crate) fn of_stream(dest: &Path, info: &IndexInfo, end: StreamEnd, ext: (u64, u64)) -> IndexReport {
        IndexReport { index_path: dest.to_path_buf(), members: end.end.members, entries: info.entries, bytes: end.total_len, end: end.end, ext_len: ext.0, ext_names: ext.1, seek: None }
    }
}

/// What a gzip archive's seek points cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeekReport {
    /// Checkpoints recorded.
    pub checkpoints: u64,
    /// Bytes of the seek section in the sidecar.
    pub bytes: u64,
    /// Bytes of the decompressed stream.
    pub decompressed: u64,
}

/// [`write_atomic_deferred`] of an index: `write` writes it and returns, with whatever else,
/// the header it recorded (`info_of` finds it). Also returns the extension data's length and its
/// bytes of names, read back from the file just written (two blocks), before any rename: in a
/// batch the file waits under its temporary name for the batch's commit.
pub(crate) fn write_index_file<T>(dest: &Path, defer: Option<&DirSyncs>, perm: Perm, write: impl FnOnce(&mut std::io::BufWriter<&File>) -> Result<T>, info_of: impl Fn(&T) -> &IndexInfo) -> Result<(T, (u64, u64))> {
    use std::os::unix::fs::FileExt;
    write_atomic_deferred(dest, defer, perm, |w| {
        let value = write(w)?;
        let info = info_of(&value);
        if info.flags & tarfs::FLAG_EXT == 0 {
            return Ok((value, (0, 0)));
        }
        w.flush().at(dest)?;
        let mut h = [0u8; 512];
        w.get_ref().read_exact_at(&mut h, (info.entries + 2) * BLOCK_U64).at(dest)?;
        let stats = (info.ext_len, ext::strings_len(&h).unwrap_or(0));
        Ok((value, stats))
    })
}

/// What binds a sidecar to the file it was made from (see [`tarfs::IndexInfo::stamp`] and
/// [`tarfs::IndexInfo::source_digest`]): none for a stream, which has no file to bind to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Binding {
    stamp: Option<tarfs::Stamp>,
    source_digest: Option<u64>,
}

impl Binding {
    /// The binding of a compressed stream read whole: the xxh3-64 `digest` of its bytes (no
    /// stamp: a stream has no file). The file those bytes came from matches it by its length
    /// and digest ([`crate::verdict`]).
    pub fn of_stream(digest: u64) -> Binding {
        Binding { stamp: None, source_digest: Some(digest) }
    }

    /// This binding, with the stamp of the file the stream was read from, if any.
    pub fn stamped(self, stamp: Option<tarfs::Stamp>) -> Binding {
        Binding { stamp: stamp.or(self.stamp), ..self }
    }

    /// The binding of an archive not lent whole (an object): its stamp, and for a compressed
    /// one `digest`, the xxh3-64 of its bytes read as they were decoded.
    pub fn of_unlent(archive: &dyn ArchiveFile, digest: Option<u64>) -> Binding {
        Binding { stamp: Some(archive.stamp()), source_digest: digest }
    }

    /// The binding of `archive` as it was opened: its stamp, and for a compressed file the
    /// xxh3-64 of all its bytes (hashing is far cheaper than the decompression it guards).
    pub fn of(archive: &Archive) -> Binding {
        Binding::of_read(archive, None)
    }

    /// [`Binding::of`], where `read` is the xxh3-64 of the compressed file's bytes if a pass
    /// that read them all has it already ([`crate::seekpoints::ReadDigest`]); else they are
    /// hashed here.
    pub fn of_read(archive: &Archive, read: Option<u64>) -> Binding {
        let compressed = archive.compression().is_some() && archive.compressed_len().is_none();
        let digest = || read.unwrap_or_else(|| xxhash_rust::xxh3::xxh3_64(archive.bytes()));
        Binding { stamp: Some(archive.stamp()), source_digest: compressed.then(digest) }
    }
}

/// What the index needs of one member: small, `Send`, and computed on any thread (see
/// [`crate::chunked`]).
pub(crate) struct EntryRec<'a> {
    pub(crate) header: &'a [u8; 512],
    pub(crate) header_sum: u32,
    pub(crate) position: u64,
    pub(crate) chain_blocks: u64,
    pub(crate) simple: bool,
    pub(crate) selected: bool,
    /// The extension record; `None` when it does not fit.
    pub(crate) meta: Option<ext::Meta<'a>>,
    /// The hash of the member's lookup key, computed here (on the scanning thread): the v1
    /// extension's ([`ext::key_hash`]), or with `strings` (a v2 index) v2's
    /// ([`crate::format::v2::key_hash`]), which the writer's thread then does not compute.
    pub(crate) key_hash: u64,
    /// The decoded mode, effective typeflag and device numbers, which a v2 record holds (taken
    /// here, on the scanning thread, so that the writer does not decode the header again).
    pub(crate) mode: u32,
    pub(crate) typeflag: u8,
    pub(crate) device: (u64, u64),
    /// For a v2 index: the member's path, link target and owner names, copied here so that the
    /// thread building the body does not touch the header again (long after the scanning thread
    /// read it, its cache lines are gone: a perf profile put that first touch at a seventh of a
    /// warm index).
    pub(crate) strings: Option<Strings>,
    /// Where its content lies, when digests are wanted (`Some(None)`: its map does not decode).
    pub(crate) place: Option<Option<Place>>,
}

/// A member's path, link target, user and group names, one after another.
pub(crate) struct Strings {
    bytes: Vec<u8>,
    /// Where the path, the link and the user name end.
    ends: [usize; 3],
}

impl Strings {
    fn of(e: &Entry<'_>) -> Strings {
        let path = e.path();
        let (link, uname, gname) = (e.link(), e.uname(), e.gname());
        let mut bytes = Vec::with_capacity(path.len() + link.len() + uname.len() + gname.len());
        let mut ends = [0; 3];
        for (k, part) in [&path[..], link, uname].into_iter().enumerate() {
            bytes.extend_from_slice(part);
            ends[k] = bytes.len();
        }
        bytes.extend_from_slice(gname);
        Strings { bytes, ends }
    }

    /// Path, link target, user name, group name.
    pub(crate) fn parts(&self) -> [&[u8]; 4] {
        let [p, l, u] = self.ends;
        [&self.bytes[..p], &self.bytes[p..l], &self.bytes[l..u], &self.bytes[u..]]
    }
}

impl<'a> EntryRec<'a> {
    /// What the index needs of `e`; with `strings` (a v2 index), its strings copied too; with
    /// `digests`, where its content lies.
    fn of(e: &Entry<'a>, filter: Option<&Filter>, strings: bool, digests: Option<&ScanOptions>) -> Self {
        let meta = e.ext_meta();
        let strings = strings.then(|| Strings::of(e));
        let key_hash = match &strings {
            Some(s) => crate::format::v2::key_hash(ext::normalize_name(s.parts()[0])),
            None => ext::member_key_hash(&e.header, meta.as_ref().and_then(|m| m.path)),
        };
        EntryRec {
            place: digests.map(|o| Place::of(e, o)),
            header: e.header.as_bytes(),
            header_sum: e.header_sum,
            position: e.position,
            chain_blocks: e.chain_blocks(),
            simple: e.is_simple(),
            selected: filter.is_none_or(|f| f.matches(&e.path())),
            key_hash,
            meta,
            mode: e.mode,
            typeflag: e.typeflag,
            device: e.device,
            strings,
        }
    }
}

/// Bytes of entries gathered before each write to the sink.
const WRITE_BATCH: usize = 1 << 20;

/// Streams index entries to a sink: a placeholder header block first, then one entry per
/// selected member, gathered into large writes, then the real header block once the count is
/// known.
pub(crate) struct EntrySink<'w, W: Write + Seek> {
    out: &'w mut W,
    path: &'w Path,
    filter: Option<&'w Filter>,
    start: u64,
    entries: u64,
    buf: Vec<u8>,
    ext: ExtSink,
    binding: Binding,
    /// The v2 body being built, when the index is written as v2.0.
    v2: Option<crate::format::v2::Builder>,
    /// The member digests being collected, and whether from a stream as it passes.
    digests: Option<Collector>,
    streamed: bool,
    /// The member of a stream whose data is passing.
    streaming: Option<StreamHasher>,
}

impl<'w, W: Write + Seek> EntrySink<'w, W> {
    pub(crate) fn new(path: &'w Path, out: &'w mut W, filter: Option<&'w Filter>) -> Result<Self> {
        let start = out.stream_position().at(path)?;
        let mut buf = Vec::with_capacity(WRITE_BATCH);
        buf.extend_from_slice(&[0u8; 512]);
        Ok(EntrySink { out, path, filter, start, entries: 0, buf, ext: ExtSink::default(), binding: Binding::default(), v2: None, digests: None, streamed: false, streaming: None })
    }

    /// Writes the index in `format`.
    pub(crate) fn format(mut self, format: IndexFormat) -> Self {
        self.v2 = (format == IndexFormat::V2).then(crate::format::v2::Builder::default);
        self
    }

    /// Binds the index to the file it is made from (see [`Binding`]).
    pub(crate) fn bind(mut self, binding: Binding) -> Self {
        self.binding = binding;
        self
    }

    /// Adds a member of an old v2 index as it is (a sink writing v2, with no filter).
    pub(crate) fn keep_v2(&mut self, m: &crate::format::v2::Member<'_>) -> Result<()> {
        let b = self.v2.as_mut().ok_or_else(|| Error::Bug { path: self.path.to_path_buf(), what: "a v2 member kept by a v1 index".into() })?;
        b.push(m).map_err(|e| Error::Index { index: self.path.to_path_buf(), source: e.into() })?;
        self.entries += 1;
        Ok(())
    }

    /// Collects member digests (see [`crate::ops::digests`]) with `scan`'s limits: from a
    /// stream as it passes (`streamed`), else from the mapping after the scan
    /// ([`EntrySink::hash_mapped`]). `None`: none.
    pub(crate) fn digests(mut self, scan: Option<ScanOptions>, streamed: bool) -> Self {
        self.digests = scan.map(|s| Collector::new(self.path, s));
        self.streamed = streamed;
        self
    }

    /// Starts from the digests `kept` of an older index's entries (a grown archive's).
    pub(crate) fn keep_digests(&mut self, kept: crate::format::digests::Table) {
        if let Some(c) = &mut self.digests {
            c.keep(kept);
        }
    }

    pub(crate) fn push(&mut self, e: &Entry<'_>) -> Result<()> {
        let wanted = self.digests.as_ref().filter(|_| !self.streamed).map(|c| c.scan);
        self.push_rec(EntryRec::of(e, self.filter, self.v2.is_some(), wanted.as_ref()))
    }

    /// [`EntrySink::push`] of a member whose digests were kept ([`EntrySink::keep_digests`]).
    pub(crate) fn push_kept(&mut self, e: &Entry<'_>) -> Result<()> {
        self.push_rec(EntryRec::of(e, self.filter, self.v2.is_some(), None))
    }

    /// [`EntrySink::push`] of a stream's member: whether its data is wanted (for its digests).
    pub(crate) fn push_streamed(&mut self, e: &Entry<'_>) -> Result<Visit> {
        let before = self.entries;
        self.push(e)?;
        let Some(c) = self.digests.as_mut().filter(|_| self.entries > before) else { return Ok(Visit::Skip) };
        let slot = c.waiting(e.position);
        self.streaming.get_or_insert_with(StreamHasher::new).start(e, slot, &c.scan, self.path)?;
        Ok(if e.stored_size > 0 { Visit::Data } else { Visit::Skip })
    }

    /// A piece of the passing member's data.
    pub(crate) fn feed(&mut self, data: &[u8]) -> Result<()> {
        match &mut self.streaming {
            Some(s) => s.feed(data, self.path),
            None => Ok(()),
        }
    }

    fn end_streaming(&mut self) -> Result<()> {
        if let (Some(s), Some(c)) = (self.streaming.take(), self.digests.as_mut()) {
            for (slot, d) in s.finish(self.path)? {
                c.fill(slot, d);
            }
        }
        Ok(())
    }

    /// Computes the digests of members noted in a mapped archive, from its bytes `data`.
    pub(crate) fn hash_mapped(&mut self, data: &[u8]) -> Result<()> {
        match &mut self.digests {
            Some(c) if !self.streamed => c.hash_mapped(data),
            _ => Ok(()),
        }
    }

    fn push_rec(&mut self, mut r: EntryRec<'_>) -> Result<()> {
        if !r.selected {
            return Ok(());
        }
        if let (Some(c), Some(place)) = (self.digests.as_mut(), r.place.take()) {
            c.mapped(r.position, place);
        }
        if let Some(b) = &mut self.v2 {
            crate::ops::index_v2::push(b, &r, self.path)?;
            self.entries += 1;
            return Ok(());
        }
        let at = self.buf.len();
        self.buf.extend_from_slice(r.header);
        let block: &mut [u8; 512] = (&mut self.buf[at..]).try_into().expect("one block");
        if let Err(source) = tarfs::patch_entry(block, r.header_sum, r.position / BLOCK_U64, r.chain_blocks, r.simple) {
            self.buf.truncate(at);
            return Err(Error::Index { index: self.path.to_path_buf(), source });
        }
        self.ext.push_hashed(block, r.meta.as_ref(), r.key_hash);
        self.entries += 1;
        if self.buf.len() >= WRITE_BATCH {
            self.out.write_all(&self.buf).at(self.path)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes the header block; returns what it records.
    /// Writes the rest of the index, ending with the seek section `seek` if given.
    pub(crate) fn finish(mut self, archive_len: u64, source_len: u64, end: &ScanEnd, seek: Option<&[u8]>) -> Result<IndexInfo> {
        self.out.write_all(&self.buf).at(self.path)?;
        self.end_streaming()?;
        let digests = self.digests.take().map(Collector::finish).transpose()?;
        let mut flags = 0;
        if self.filter.is_some() {
            flags |= FLAG_SUBSET;
        }
        if end.global_attributes {
            flags |= FLAG_GLOBALS;
        }
        let mut info = IndexInfo {
            entries: self.entries,
            archive_len,
            end_offset: end.end_offset,
            flags,
            filter: self.filter.map(|f| f.text().to_string()),
            generation: 0,
            source_len,
            ext_len: 0,
            seek_len: 0,
            stamp: self.binding.stamp,
            source_digest: self.binding.source_digest,
            ..IndexInfo::default()
        };
        if let Some(seek) = seek {
            info.flags |= tarfs::FLAG_SEEK;
            info.seek_len = seek.len() as u64;
        }
        if let Some(mut b) = self.v2.take() {
            b.digests(digests);
            return crate::ops::index_v2::finish(b, info, end, seek, self.out, self.path, self.start);
        }
        self.ext.digests(digests);
        self.ext.globals(end.has_globals, end.global_attributes);
        self.ext.plan(&mut info);
        let header = tarfs::encode_header(&info);
        // The zero block and the extension, from the builder's buffers, through the batch.
        let (out, path) = (&mut *self.out, self.path);
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        self.ext.finish_into(&header, &mut |b: &[u8]| {
            if buf.len() + b.len() > WRITE_BATCH && !buf.is_empty() {
                out.write_all(&buf)?;
                buf.clear();
            }
            if b.len() >= WRITE_BATCH {
                out.write_all(b)
            } else {
                buf.extend_from_slice(b);
                Ok(())
            }
        }).at(path)?;
        out.write_all(&buf).at(path)?;
        if let Some(seek) = seek {
            // After the entries' zero block (written with the extension data, if any).
            if info.flags & tarfs::FLAG_EXT == 0 {
                out.write_all(&[0u8; 512]).at(path)?;
            }
            out.write_all(seek).at(path)?;
        }
        let after = self.out.stream_position().at(self.path)?;
        self.out.seek(SeekFrom::Start(self.start)).at(self.path)?;
        self.out.write_all(&header).at(self.path)?;
        self.out.seek(SeekFrom::Start(after)).at(self.path)?;
        Ok(info)
    }
}

/// Scans the stream `r` into `sink` (see [`scan_stream`]), handing members' data to the sink
/// where it collects digests as the stream passes.
pub(crate) fn scan_into<W: Write + Seek>(r: &mut dyn Read, path: &Path, opts: ScanOptions, chunk: usize, sink: &mut EntrySink<'_, W>) -> Result<StreamEnd> {
    if sink.digests.is_none() || !sink.streamed {
        return scan_stream(r, path, opts, chunk, |e| sink.push(e));
    }
    let cell = std::cell::RefCell::new(sink);
    let end = crate::stream::scan_stream_with(r, path, opts, chunk, |e| cell.borrow_mut().push_streamed(e), |d| cell.borrow_mut().feed(d))?;
    Ok(end.expect("never stopped"))
}

/// Writes the index of `data` (an archive whose positions count from its first byte) to `out`:
/// a header block, then one entry per selected member. Errors name `path`.
pub fn write_index<W: Write + Seek>(path: &Path, data: &[u8], opts: &IndexOptions, out: &mut W) -> Result<(IndexInfo, ScanEnd)> {
    write_index_bound(path, data, opts, Binding::default(), out)
}

/// [`write_index`] of an archive file, bound to it by `binding`.
fn write_index_bound<W: Write + Seek>(path: &Path, data: &[u8], opts: &IndexOptions, binding: Binding, out: &mut W) -> Result<(IndexInfo, ScanEnd)> {
    let filter = opts.filter.as_ref();
    let scan = opts.digests.then_some(opts.scan);
    let mut sink = EntrySink::new(path, out, filter)?.bind(binding).format(opts.format).digests(scan, false);
    let scan_error = |source| Error::Scan { path: path.to_path_buf(), source };
    let v2 = opts.format == IndexFormat::V2;
    let end = chunked::scan_map(data, opts.scan, opts.mode, opts.threads(), |e| EntryRec::of(e, filter, v2, scan.as_ref()), |r| {
        crate::watch::at(r.position);
        sink.push_rec(r)
    }, scan_error)?;
    sink.hash_mapped(data)?;
    let info = sink.finish(data.len() as u64, 0, &end, None)?;
    Ok((info, end))
}

/// Writes the index of a stream (a pipe, a tape, a decompressor) to `out`, reading it once in
/// reads of `chunk` bytes. Positions count in the (decompressed) stream. `source_len` is the
/// length of the compressed file it came from, or 0.
pub fn write_stream_index<W: Write + Seek>(path: &Path, r: &mut dyn Read, chunk: usize, source_len: u64, opts: &IndexOptions, out: &mut W) -> Result<(IndexInfo, StreamEnd)> {
    write_stream_index_bound(path, r, chunk, source_len, opts, Binding::default(), out)
}

/// [`write_stream_index`], bound to the compressed file the stream decodes by `binding`.
fn write_stream_index_bound<W: Write + Seek>(path: &Path, r: &mut dyn Read, chunk: usize, source_len: u64, opts: &IndexOptions, binding: Binding, out: &mut W) -> Result<(IndexInfo, StreamEnd)> {
    // A compressed file's stream (bound to its digest) is decoded anyway: digests always.
    let scan = opts.stream_digests(binding.source_digest.is_some());
    let mut sink = EntrySink::new(path, out, opts.filter.as_ref())?.bind(binding).format(opts.format).digests(scan, true);
    let end = scan_into(r, path, opts.scan, chunk, &mut sink)?;
    let info = sink.finish(end.total_len, source_len, &end.end, None)?;
    Ok((info, end))
}

/// The permissions of the index of the file at `path`: no wider read access than it has (for a
/// stream that is not a file, as the umask gives).
pub(crate) fn perm_like(path: &Path) -> Perm {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(m) if path.as_os_str() != "-" => Perm::NoWiderThan(m.permissions().mode()),
        _ => Perm::Default,
    }
}

/// Indexes `archive` into the sidecar `dest`, plain or compressed as it is: [`write_sidecar`], or
/// [`write_compressed_sidecar`] with `stream` opening its decoded stream. Returns the report and,
/// for a compressed archive without seek points, why.
pub fn write_any_sidecar<'s>(archive: &Archive, dest: &Path, opts: &IndexOptions, stream: impl FnOnce() -> Result<Box<dyn Read + Send + 's>>) -> Result<(IndexReport, Option<NoSeekPoints>)> {
    match crate::source::compression_of(archive) {
        Some(c) => write_compressed_sidecar(archive, c, dest, opts, stream),
        None => write_sidecar(archive, dest, opts).map(|r| (r, None)),
    }
}

/// Indexes the compressed archive `archive` (mapped, compressed with `c`) into the sidecar
/// `dest`, with seek points where its format allows (see [`crate::seekpoints`]): gzip
/// checkpoints, bzip2 blocks, xz blocks, zstd frames. `stream` opens its decoded stream, for the
/// formats decoded as a plain stream (xz, whose blocks come from its own index, and those with
/// no seek points). Returns the report and, when there are no seek points, why.
pub fn write_compressed_sidecar<'s>(archive: &Archive, c: Compression, dest: &Path, opts: &IndexOptions, stream: impl FnOnce() -> Result<Box<dyn Read + Send + 's>>) -> Result<(IndexReport, Option<NoSeekPoints>)> {
    use crate::seekpoints::{Bzip2Pass, XzPass, ZstdPass};
    let path = archive.path();
    match c {
        Compression::Gzip => match write_gzip_sidecar(archive, dest, opts) {
            // rapidgzip-core refuses what follows the last gzip member, which gzip and tarfs's
            // stream decoder pass over (with a warning): index such a file without seek points.
            Err(e) if crate::seekpoints::is_trailing_data(&e) => {
                Ok((stream_sidecar_bound(path, &mut *stream()?, 1 << 20, archive.len(), dest, opts, Binding::of(archive))?, Some(NoSeekPoints::GzipTrailing)))
            }
            r => Ok((r?, None)),
        },
        Compression::Bzip2 => write_pass_sidecar(archive, Bzip2Pass::new(archive, None, opts.threads()).at(path)?, dest, opts),
        Compression::Xz => write_pass_sidecar(archive, XzPass::new(archive, stream()?), dest, opts),
        Compression::Zstd => {
            write_pass_sidecar(archive, ZstdPass::new(archive, Box::new(archive.bytes()), zstd_gap(opts)).at(path)?, dest, opts)
        }
        _ => Ok((stream_sidecar_bound(path, &mut *stream()?, 1 << 20, archive.len(), dest, opts, Binding::of(archive))?, Some(NoSeekPoints::NotRecorded(c)))),
    }
}

/// The least distance, in decompressed bytes, between the zstd frame starts noted as seek
/// points: a point costs 16 bytes, so frames are noted densely (a span apart, or a piece).
pub(crate) fn zstd_gap(opts: &IndexOptions) -> u64 {
    use crate::seekpoints::{DEFAULT_SPAN, PIECE};
    let span = if opts.span == 0 { DEFAULT_SPAN } else { opts.span };
    span.min(PIECE)
}

/// Indexes `archive` into the sidecar `dest` from `pass`, which decodes it and records its
/// seek points; returns the report and, when there are no seek points, why.
fn write_pass_sidecar(archive: &Archive, pass: impl crate::seekpoints::SeekPass, dest: &Path, opts: &IndexOptions) -> Result<(IndexReport, Option<NoSeekPoints>)> {
    write_pass_bound(archive, pass, dest, opts, || Ok(Binding::of(archive)))
}

/// [`write_pass_sidecar`] of any [`ArchiveFile`] (an object read once as a stream, issue #34):
/// `bound` gives the index's binding once the pass has read it all.
pub(crate) fn write_pass_bound(archive: &dyn ArchiveFile, pass: impl crate::seekpoints::SeekPass, dest: &Path, opts: &IndexOptions, bound: impl FnOnce() -> Result<Binding>) -> Result<(IndexReport, Option<NoSeekPoints>)> {
    let path = archive.path();
    let mut why = None;
    let ((info, end, points), (ext_len, ext_names)) = write_index_file(dest, opts.dir_syncs.as_deref(), perm_like(path), |w| {
        let mut pass = pass;
        let mut sink = EntrySink::new(path, w, opts.filter.as_ref())?.format(opts.format).digests(opts.stream_digests(true), true);
        let end = scan_into(&mut pass, path, opts.scan, 1 << 20, &mut sink)?;
        let (section, points) = pass.finish().at(path)?;
        let section = section.map_err(|e| why = Some(e)).ok();
        let info = sink.bind(bound()?).finish(end.total_len, archive.len(), &end.end, section.as_deref())?;
        Ok((info, end, section.map(|_| points)))
    }, |t| &t.0)?;
    let seek = points.map(|checkpoints| SeekReport { checkpoints, bytes: info.seek_len, decompressed: end.total_len });
    let report = IndexReport { index_path: dest.to_path_buf(), members: end.end.members, entries: info.entries, bytes: end.total_len, end: end.end, ext_len, ext_names, seek };
    Ok((report, why))
}

/// Indexes a stream into the sidecar `dest`, atomically. `path` names the stream in messages.
pub fn write_stream_sidecar(path: &Path, r: &mut dyn Read, chunk: usize, source_len: u64, dest: &Path, opts: &IndexOptions) -> Result<IndexReport> {
    stream_sidecar_bound(path, r, chunk, source_len, dest, opts, Binding::default())
}

/// [`write_stream_sidecar`] of a compressed file's decoded stream, bound to that file.
fn stream_sidecar_bound(path: &Path, r: &mut dyn Read, chunk: usize, source_len: u64, dest: &Path, opts: &IndexOptions, binding: Binding) -> Result<IndexReport> {
    let ((info, end), ext) = write_index_file(dest, opts.dir_syncs.as_deref(), perm_like(path), |w| write_stream_index_bound(path, r, chunk, source_len, opts, binding, w), |t| &t.0)?;
    Ok(IndexReport::of_stream(dest, &info, end, ext))
}

/// Indexes the gzip-compressed archive file `archive` into the sidecar `dest`, atomically, in
/// one pass that also records its seek points (see [`crate::seekpoints`]): rapidgzip-core
/// decodes it (in parallel where the stream allows), the scanner reads the decoded stream, and
/// the checkpoints and digests go into the sidecar's seek section. With `opts.gzidx`, the
/// checkpoints are also written as an indexed_gzip GZIDX file. The index is bound to the digest
/// of the compressed bytes as the decoder read them, or, where it read them out of order, to
/// the digest of the file hashed afterwards ([`crate::seekpoints::ReadDigest`]).
pub fn write_gzip_sidecar(archive: &Archive, dest: &Path, opts: &IndexOptions) -> Result<IndexReport> {
    use crate::seekpoints::{binding_of, GzipPass};
    let path = archive.path();
    // The pass reads this file, and the index is bound to what it read: it must be the one
    // opened as `archive` (whose stamp the binding records).
    let file = archive.reopen_file().map_err(|source| Error::SeekPoints { path: path.to_path_buf(), source })?;
    let len = archive.len();
    let binding = binding_of(&file, len).at(path)?;
    let pass = GzipPass::open(file, opts.span, opts.threads(), crate::watch::current()).at(path)?;
    let read = pass.read_digest();
    write_gzip_pass(path, pass, (len, binding), dest, opts, || Binding::of_read(archive, read.of(len)))
}

/// [`write_gzip_sidecar`] from `pass`, over a compressed file of `len` bytes with seek-section
/// binding `binding` (`of`); `bound` gives the index's binding once the pass has read it all.
pub(crate) fn write_gzip_pass(path: &Path, pass: crate::seekpoints::GzipPass, of: (u64, u64), dest: &Path, opts: &IndexOptions, bound: impl FnOnce() -> Binding) -> Result<IndexReport> {
    let (len, binding) = of;
    let ((info, end, index, section_len, total), (ext_len, ext_names)) = write_index_file(dest, opts.dir_syncs.as_deref(), perm_like(path), |w| {
        let mut pass = pass;
        let mut sink = EntrySink::new(path, w, opts.filter.as_ref())?.format(opts.format).digests(opts.stream_digests(true), true);
        let end = scan_into(&mut pass, path, opts.scan, 1 << 20, &mut sink)?;
        let (section, index) = pass.finish(len, binding).at(path)?;
        let info = sink.bind(bound()).finish(end.total_len, len, &end.end, Some(&section))?;
        let total = crate::format::seek::Seek::parse(&section).map(|s| s.total_len).unwrap_or(end.total_len);
        Ok((info, end, index, section.len() as u64, total))
    }, |t| &t.0)?;
    if let Some(g) = &opts.gzidx {
        crate::seekpoints::write_gzidx(&index, g)?;
    }
    let seek = SeekReport { checkpoints: index.checkpoint_count() as u64, bytes: section_len, decompressed: total };
    Ok(IndexReport { index_path: dest.to_path_buf(), members: end.end.members, entries: info.entries, bytes: end.total_len, end: end.end, ext_len, ext_names, seek: Some(seek) })
}

/// Scans `archive` and writes its index to `dest` atomically. On any error, nothing is left at
/// `dest` (an older index there stays as it was).
pub fn write_sidecar(archive: &Archive, dest: &Path, opts: &IndexOptions) -> Result<IndexReport> {
    let chunked::Planned { mut plan, cold, .. } = chunked::plan_archive(archive, opts.scan, opts.mode, opts.threads());
    // Out of the page cache, workers faulting in chunks far apart defeat the kernel's
    // readahead: one sequential pass reads it faster (201k small members, cold, the index on
    // tmpfs: 0.54 s chunked, 0.33 s sequential, 0.23 s for a bare header walk).
    if plan == Plan::Chunked && opts.mode == ScanMode::Auto && cold {
        plan = Plan::Mapped;
    }
    let written = if plan == Plan::Reads && archive.compressed_len().is_none() {
        // Large members: read the headers and seek over the data; the mapping stays untouched.
        let file = File::open(archive.path()).at(archive.path())?;
        write_index_file(dest, opts.dir_syncs.as_deref(), Perm::NoWiderThan(archive.mode()), |w| {
            let scan = opts.digests.then_some(opts.scan);
            let mut sink = EntrySink::new(archive.path(), w, opts.filter.as_ref())?.bind(Binding::of(archive)).format(opts.format).digests(scan, false);
            let end = crate::stream::scan_file(&file, archive.path(), opts.scan, cold, |e| {
                crate::watch::at(e.position);
                sink.push(e)
            })?;
            sink.hash_mapped(archive.bytes())?;
            archive.check_intact()?;
            let info = sink.finish(end.total_len, 0, &end.end, None)?;
            Ok((info, end.end))
        }, |t| &t.0)
    } else {
        archive.advise(Advice::Sequential);
        // The plan is made: do not sample the archive again.
        let mode = if plan == Plan::Chunked { ScanMode::Parallel } else { ScanMode::Sequential };
        let opts = IndexOptions { mode, ..opts.clone() };
        crate::ops::crash::pause_point("index-planned");
        let ahead = ReadAhead::new(archive, cold && plan == Plan::Mapped);
        std::thread::scope(|s| {
            if let Some(ahead) = &ahead {
                s.spawn(|| ahead.run());
            }
            let written = write_index_file(dest, opts.dir_syncs.as_deref(), Perm::NoWiderThan(archive.mode()), |w| {
                let written = write_index_bound(archive.path(), archive.bytes(), &opts, Binding::of(archive), w)?;
                // An index of zeros read where the file shrank is never committed.
                archive.check_intact()?;
                Ok(written)
            }, |t| &t.0);
            if let Some(ahead) = &ahead {
                ahead.stop();
            }
            written
        })
    };
    let ((info, end), (ext_len, ext_names)) = written.map_err(|e| match e {
        // Name the archive as well as the file that could not be written.
        Error::Io { path, source } => {
            let other = if path == dest { String::new() } else { format!("{}: ", path.display()) };
            Error::Io { path: archive.path().to_path_buf(), source: std::io::Error::new(source.kind(), format!("cannot write its index {}: {other}{source}", dest.display())) }
        }
        other => other,
    })?;
    Ok(IndexReport { index_path: dest.to_path_buf(), members: end.members, entries: info.entries, bytes: archive.len(), end, ext_len, ext_names, seek: None })
}

/// Reads a cold archive ahead of the one thread that scans its mapping, front to back, in
/// reads of [`READ_AHEAD`] bytes (as `cat` does), so that the page cache fills at the disk's
/// speed while the scan works.
///
/// Only for the mapped plan, whose archive has a header on nearly every page, so that all of it
/// is read anyway. Through the mapping alone, the scan waited on each page fault while it worked
/// on none, and worked while the disk waited; a second thread walking the header chain ahead
/// through the mapping (the way before) still took the disk a readahead window per fault, and
/// left cold `index` of 201,000 small members at 0.46-0.54 s against 0.19 s for `cat` of it;
/// reads of 8 MiB brought it to 0.29-0.31 s (GNU `tar -tf`: 0.25-0.26 s), and of 128 KiB with
/// the header prefetch ([`crate::scan`]) to 0.26-0.28 s. The file is reopened
/// by its path, and read only if it is still the one mapped (device and inode).
struct ReadAhead<'a> {
    archive: &'a Archive,
    stop: std::sync::atomic::AtomicBool,
}

/// The size of each of [`ReadAhead`]'s reads: as `cat`'s. Cold, the page cache dropped, medians
/// of 7 on a noisy disk: 201,000 small members 0.279 s (8 MiB reads: 0.281-0.295 s); 50,000 pax
/// members 0.113 s (8 MiB: 0.128 s). The scan waits less for the first pages of each read, and
/// the buffer the reads copy into stays in the core's cache.
const READ_AHEAD: usize = 128 << 10;

impl<'a> ReadAhead<'a> {
    /// For `archive` when `wanted`.
    fn new(archive: &'a Archive, wanted: bool) -> Option<ReadAhead<'a>> {
        wanted.then(|| ReadAhead { archive, stop: std::sync::atomic::AtomicBool::new(false) })
    }

    fn run(&self) {
        use std::os::unix::fs::{FileExt, MetadataExt};
        // The archive itself (the file at its path may have been replaced since it was mapped).
        let Ok(f) = File::open(self.archive.path()) else { return };
        if f.metadata().map(|m| (m.dev(), m.ino())).ok() != Some(self.archive.identity()) {
            return;
        }
        let mut buf = vec![0u8; READ_AHEAD];
        let mut at = 0u64;
        while !self.stop.load(std::sync::atomic::Ordering::Relaxed) {
            match f.read_at(&mut buf, at) {
                Ok(0) | Err(_) => return,
                Ok(n) => at += n as u64,
            }
        }
    }

    fn stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Whether an existing sidecar can be kept: `index`'s keep-or-rebuild, from the verdict
/// ([`crate::verdict::keep_sidecar`]).
#[derive(Debug, Clone)]
pub enum Freshness {
    /// Present, intact, and describing the archive as it is; it has `entries` entries.
    Fresh {
        /// Entries in the index (the archive's members, for a full index).
        entries: u64,
    },
    /// No sidecar.
    Missing,
    /// Present but no longer describing the archive, or made with another filter; why.
    Stale(Why),
    /// Present but damaged; how.
    Corrupt(Corruption),
}

/// The keep-or-rebuild of the sidecar at `dest`, without a rescan: the sidecar decodes (every
/// entry's checksum and digest), was made by this version's record with extension data and
/// the same member filter, and the verdict calls it fresh with the archive's stamp still
/// recorded.
pub fn sidecar_freshness(archive: &Archive, dest: &Path, filter: Option<&Filter>) -> Freshness {
    let map = match Archive::open(dest) {
        Ok(m) => m,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => return Freshness::Missing,
        Err(e) => return Freshness::Corrupt(Corruption::Unreadable(e.to_string())),
    };
    // A few headers of the archive, each read alone (see `Archive::advise_sampling`).
    archive.advise_sampling(std::iter::empty());
    let f = judge_sidecar(archive, map.bytes(), dest, filter);
    archive.advise(Advice::Normal);
    f
}

/// The keep-or-rebuild of the sidecar `dest`, whose bytes are `bytes`.
pub fn judge_sidecar(archive: &dyn ArchiveFile, bytes: &[u8], dest: &Path, filter: Option<&Filter>) -> Freshness {
    if tarfs::version_of(bytes).is_ok_and(|v| v.0 == 2) {
        return judge_v2(archive, bytes, dest, filter);
    }
    let index = match decode_index(bytes) {
        Ok(i) => i,
        Err(e) => return Freshness::Corrupt(Corruption::Decode(e)),
    };
    let Some(info) = &index.header.info else { return Freshness::Stale(Why::NoRecord) };
    if info.filter.as_deref() != filter.map(Filter::text) || (info.flags & FLAG_SUBSET != 0) != filter.is_some() {
        return Freshness::Stale(Why::Filter);
    }
    if info.flags & tarfs::FLAG_EXT == 0 {
        return Freshness::Stale(Why::NoExtension);
    }
    if info.record < 2 {
        return Freshness::Stale(Why::OldRecord);
    }
    if let Err(e) = crate::ops::read::intact_extension(bytes, info) {
        return Freshness::Corrupt(Corruption::Extension(e));
    }
    let located = Located { source: Source::Sidecar(dest.to_path_buf()), bytes: IndexBytes::Owned(Vec::new()), base: 0 };
    match crate::verdict::keep_sidecar(&judged(info, index.entries.len(), |i| Some(index.entries[i]), &located), archive) {
        Verdict::Fresh { .. } => Freshness::Fresh { entries: info.entries },
        Verdict::Stale(why) => Freshness::Stale(why),
        Verdict::Corrupt(c) => Freshness::Corrupt(c),
        // keep_sidecar gives no other verdict for a sidecar judged whole; rebuild.
        v => Freshness::Corrupt(Corruption::Unreadable(v.to_string())),
    }
}

/// [`judge_sidecar`] of a v2 sidecar: the same filter, every chunk intact, and the verdict's
/// keep-or-rebuild.
fn judge_v2(archive: &dyn ArchiveFile, bytes: &[u8], dest: &Path, filter: Option<&Filter>) -> Freshness {
    let located = Located { source: Source::Sidecar(dest.to_path_buf()), bytes: IndexBytes::Owned(bytes.to_vec()), base: 0 };
    let (info, v) = match crate::ops::read::keep_v2(archive, &located) {
        Ok(judged) => judged,
        Err(c) => return Freshness::Corrupt(c),
    };
    if info.filter.as_deref() != filter.map(Filter::text) || (info.flags & FLAG_SUBSET != 0) != filter.is_some() {
        return Freshness::Stale(Why::Filter);
    }
    match v {
        Verdict::Fresh { .. } => Freshness::Fresh { entries: info.entries },
        Verdict::Stale(why) => Freshness::Stale(why),
        Verdict::Corrupt(c) => Freshness::Corrupt(c),
        v => Freshness::Corrupt(Corruption::Unreadable(v.to_string())),
    }
}

/// Reads a whole sidecar file.
pub fn read_sidecar(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).at(path)
}

//! What indexing one input will do, decided before anything is written: the index is fresh (or
//! present) and kept, the input is a stream read once, a compressed archive is indexed through
//! its stream, a grown archive is re-indexed from its old end, or the archive is indexed in
//! full; a dry run wraps what would be done. `tarfs index`, `tarfs mount --write-index` and
//! their batches share [`plan`]; carrying the plan out is the caller's, with the writers of
//! [`crate::ops::index`] and [`crate::ops::grown`].

use std::fmt;
use std::path::{Path, PathBuf};

use crate::archive::{sidecar_path, Archive, IndexDir};
use crate::format::compression::Compression;
use crate::ops::index::{sidecar_freshness, Freshness, IndexOptions};
use crate::{Error, Result};

/// GNU tar's record size (blocking factor 20), the default of `--record-size`.
pub const DEFAULT_RECORD: usize = 10240;

/// When an index is (re)written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Always (`--force`): the old index is not read.
    Always,
    /// Unless the sidecar passes the cheap freshness check ([`sidecar_freshness`]).
    Stale,
    /// Unless the sidecar passes the full check ([`crate::ops::verify::verify`]).
    Verified,
    /// Only where the archive has no index of any kind (embedded, sidecar, CSV): a stale one is
    /// kept, and the reader passes it over (`mount --write-index`).
    Missing,
}

/// How to plan.
#[derive(Debug, Clone, Copy)]
pub struct PlanOptions<'a> {
    /// How the index would be written (its scanner options, member filter and GZIDX are used
    /// here).
    pub index: &'a IndexOptions,
    /// Where sidecars are kept (`--index-dir`).
    pub index_dir: Option<&'a IndexDir>,
    /// Write the index here instead of the sidecar (`--output`).
    pub output: Option<&'a Path>,
    /// When to write.
    pub when: When,
    /// Say what would be done; write nothing.
    pub dry_run: bool,
    /// Read standard input (`-`), FIFOs and character devices as streams, in records of this
    /// many bytes; `None`: every input is opened as an archive file.
    pub record_size: Option<usize>,
}

/// Why an index is written.
#[derive(Debug, Clone)]
pub enum Why {
    /// `--force`.
    Forced,
    /// There was none.
    New,
    /// The old one no longer describes the archive; how.
    Stale(crate::verdict::Why),
    /// The old one is damaged; how.
    Corrupt(crate::verdict::Corruption),
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Forced => f.write_str("forced"),
            Why::New => f.write_str("new"),
            Why::Stale(why) => write!(f, "rebuilt: the old index is stale: {why}"),
            Why::Corrupt(why) => write!(f, "rebuilt: the old index is corrupt: {why}"),
        }
    }
}

/// Inputs read as streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Standard input (`-`).
    Stdin,
    /// A FIFO.
    Fifo,
    /// A character device (a tape drive).
    Device,
}

/// What indexing one input will do.
#[derive(Debug)]
pub enum Plan {
    /// The index at `dest` is fresh: kept. `subset`: it is a subset index (of `entries`).
    Fresh { dest: PathBuf, entries: u64, subset: bool },
    /// The archive has an index already ([`When::Missing`]): kept.
    Present,
    /// The archive has a fresh embedded `.tarfs` index of `entries` entries and no sidecar: no
    /// second index is written beside it (`--force` or `--output` writes one).
    Embedded { entries: u64 },
    /// Read the stream `input` once, in reads of `chunk` bytes, and index it into `dest`.
    Stream { input: PathBuf, kind: StreamKind, chunk: usize, dest: PathBuf },
    /// Index the compressed archive through its decoded stream, with seek points.
    Compressed { archive: Archive, compression: Compression, dest: PathBuf, why: Why },
    /// The sidecar is stale (`stale` says how): re-index from its old end if the archive only
    /// grew (the old index answers for the old part), else in full.
    Grown { archive: Archive, dest: PathBuf, stale: crate::verdict::Why },
    /// Index the archive in full.
    Full { archive: Archive, dest: PathBuf, why: Why },
    /// Index an archive that is not a local file (an object) into `local`, or where no local
    /// file is named, into its own store ([`crate::ops::remote`]).
    Remote { archive: Box<dyn crate::archive::ArchiveFile>, local: Option<PathBuf>, why: Why },
    /// A dry run: this is what would be done (a [`Plan::Stream`], [`Plan::Compressed`],
    /// [`Plan::Grown`] or [`Plan::Full`]); nothing is written.
    DryRun(Box<Plan>),
}

impl Plan {
    /// Where the index goes (or is), if anywhere.
    pub fn dest(&self) -> Option<&Path> {
        match self {
            Plan::Present | Plan::Embedded { .. } => None,
            Plan::Remote { local, .. } => local.as_deref(),
            Plan::Fresh { dest, .. } | Plan::Stream { dest, .. } | Plan::Compressed { dest, .. } | Plan::Grown { dest, .. } | Plan::Full { dest, .. } => Some(dest),
            Plan::DryRun(p) => p.dest(),
        }
    }
}

/// Why an input cannot be indexed as asked; nothing was read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Standard input has no place for a sidecar.
    #[error("indexing standard input needs --output FILE")]
    StdinNeedsOutput,
    /// A device's sidecar would go into `/dev`.
    #[error("{}: a device's index needs --output FILE or --index-dir DIR", .0.display())]
    DeviceNeedsDest(PathBuf),
    /// A GZIDX was asked for an archive that is not gzip-compressed.
    #[error("{}: --gzidx is for gzip-compressed archives", .0.display())]
    GzidxNotGzip(PathBuf),
}

/// Decides what indexing `input` will do. Opens the archive (which the plan then holds), refuses
/// one that an interrupted in-place change left half changed, and reads the old index only as
/// far as `opts.when` needs. Where no index dir is set, a sidecar in the user's cache (written
/// when the archive's directory refused one, see [`carry_out`]) counts as the archive's when it
/// is fresh, or when there is none beside the archive.
pub fn plan(input: &Path, opts: &PlanOptions<'_>) -> Result<Plan> {
    if let Some(record) = opts.record_size {
        if let Some(kind) = stream_kind(input) {
            return stream_plan(input, kind, record, opts);
        }
    }
    if crate::archive::s3::is_url(input) {
        return remote_plan(input, opts);
    }
    let archive = Archive::open(input)?;
    crate::ops::journal::refuse_pending(&archive)?;
    let dest = opts.output.map_or_else(|| sidecar_path(input, opts.index_dir), Path::to_path_buf);
    let why = match freshness(&archive, &dest, opts)? {
        Ok(kept) => return Ok(kept),
        Err(why) => why,
    };
    match fallback(input, opts).filter(|cached| cached.exists()) {
        Some(cached) => match freshness(&archive, &cached, opts)? {
            Ok(kept) => Ok(kept),
            Err(_) if dest.exists() => plan_at(archive, dest, why, opts),
            Err(cached_why) => plan_at(archive, cached, cached_why, opts),
        },
        None => plan_at(archive, dest, why, opts),
    }
}

/// The plan for an object (`s3://BUCKET/KEY`): its index goes to `--output` or under
/// `--index-dir` where named, else beside it in its store; the one there is kept when fresh.
fn remote_plan(input: &Path, opts: &PlanOptions<'_>) -> Result<Plan> {
    let archive = crate::archive::open_any(input)?;
    let local = opts.output.map(Path::to_path_buf).or_else(|| opts.index_dir.and_then(|d| d.in_dir(input)));
    let why = match opts.when {
        When::Always => {
            // What the store holds now, which the conditional put then replaces.
            if let Some(store) = archive.index_store().filter(|_| local.is_none()) {
                store.refresh().map_err(|source| Error::Io { path: store.name(), source })?;
            }
            Why::Forced
        }
        _ => match crate::ops::remote::remote_freshness(&*archive, local.as_deref(), opts.index) {
            (dest, Freshness::Fresh { entries }) => return Ok(Plan::Fresh { dest, entries, subset: opts.index.filter.is_some() }),
            (_, Freshness::Missing) => Why::New,
            (_, Freshness::Stale(why)) => Why::Stale(why),
            (_, Freshness::Corrupt(why)) => Why::Corrupt(why),
        },
    };
    let plan = Plan::Remote { archive, local, why };
    Ok(if opts.dry_run { Plan::DryRun(Box::new(plan)) } else { plan })
}

/// The place in the user's cache for `input`'s sidecar: where no index dir is set and no
/// `--output` given ([`crate::archive::IndexDir::fallback_for`]).
fn fallback(input: &Path, opts: &PlanOptions<'_>) -> Option<PathBuf> {
    opts.index_dir.filter(|_| opts.output.is_none()).and_then(|d| d.fallback_for(input))
}

/// The plan that writes `archive`'s index to `dest`, for `why`.
fn plan_at(archive: Archive, dest: PathBuf, why: Why, opts: &PlanOptions<'_>) -> Result<Plan> {
    let plan = match crate::source::compression_of(&archive) {
        Some(c) => {
            if !opts.dry_run && opts.index.gzidx.is_some() && c != Compression::Gzip {
                return Err(Error::Plan(PlanError::GzidxNotGzip(archive.path().to_path_buf())));
            }
            Plan::Compressed { archive, compression: c, dest, why }
        }
        None => match why {
            Why::Stale(stale) => Plan::Grown { archive, dest, stale },
            why => Plan::Full { archive, dest, why },
        },
    };
    Ok(if opts.dry_run { Plan::DryRun(Box::new(plan)) } else { plan })
}

/// Plans `input` ([`plan`]) and carries the plan out with `apply`. Where the sidecar's directory
/// refuses it ([`Error::Unwritable`]: a read-only file system, no permission) and no index dir
/// is set, plans again for the user's cache of sidecars and carries that out. Returns what
/// `apply` returned and, when the sidecar went to the cache, its path. When no place takes it
/// (the index dir, or the cache too, refuses it, or there is no cache), the error is
/// [`Error::NoPlaceForIndex`], which names the archive and each place and says how to choose
/// one; `--output` that refuses it is its own error.
pub fn carry_out<T>(input: &Path, opts: &PlanOptions<'_>, apply: impl Fn(Plan) -> Result<T>) -> Result<(T, Option<PathBuf>)> {
    let first = plan(input, opts)?;
    // A stream is read once, as it comes: its index has no second place.
    let streamed = opts.record_size.is_some() && stream_kind(input).is_some();
    let cached = fallback(input, opts).filter(|c| !streamed && first.dest() != Some(c.as_path()));
    let refused = match apply(first) {
        Err(Error::Unwritable { path, source }) if opts.output.is_none() => (path, source),
        r => return r.map(|t| (t, None)),
    };
    let no_place = |tried| Error::NoPlaceForIndex { path: input.to_path_buf(), tried };
    let Some(cached) = cached else { return Err(no_place(vec![refused])) };
    let dir = cached.parent().unwrap_or(Path::new("/"));
    if let Err(e) = std::fs::create_dir_all(dir) {
        return Err(no_place(vec![refused, (dir.to_path_buf(), e)]));
    }
    let archive = Archive::open(input)?;
    let plan = match freshness(&archive, &cached, opts)? {
        Ok(kept) => kept,
        Err(why) => plan_at(archive, cached.clone(), why, opts)?,
    };
    match apply(plan) {
        Err(Error::Unwritable { path, source }) => Err(no_place(vec![refused, (path, source)])),
        r => r.map(|t| (t, Some(cached))),
    }
}

/// [`Plan::Embedded`] where `archive`'s embedded index may answer for it (the verdict, through
/// the reader that would use it).
fn fresh_embedded(archive: &Archive, opts: &PlanOptions<'_>) -> Option<Plan> {
    let located = crate::ops::read::Located::embedded(archive)?;
    let reader = crate::ops::read::Reader::with_index(archive, located, opts.index.scan).ok()?;
    Some(Plan::Embedded { entries: reader.indexed_entries() as u64 })
}

/// The index kept (`Ok`), or why one is written.
fn freshness(archive: &Archive, dest: &Path, opts: &PlanOptions<'_>) -> Result<std::result::Result<Plan, Why>> {
    let filter = opts.index.filter.as_ref();
    let fresh = match opts.when {
        When::Always => return Ok(Err(Why::Forced)),
        When::Missing => {
            let present = crate::ops::read::locate(archive, opts.index_dir)?.is_some() || crate::ops::read::locate_csv(archive, opts.index.scan).is_some();
            return Ok(if present { Ok(Plan::Present) } else { Err(Why::New) });
        }
        When::Verified if dest.exists() => match crate::ops::verify::verify(archive, opts.index_dir, opts.index.scan) {
            Ok(r) => Freshness::Fresh { entries: r.entries },
            Err(e) => Freshness::Stale(crate::verdict::Why::Unverified(e.to_string())),
        },
        When::Verified | When::Stale => sidecar_freshness(archive, dest, filter),
    };
    Ok(match fresh {
        Freshness::Fresh { .. } if opts.index.digests && !has_digests(dest) => Err(Why::Stale(crate::verdict::Why::NoDigests)),
        Freshness::Fresh { entries } => Ok(Plan::Fresh { dest: dest.to_path_buf(), entries, subset: filter.is_some() }),
        Freshness::Missing if opts.output.is_none() && filter.is_none() => fresh_embedded(archive, opts).ok_or(Why::New),
        Freshness::Missing => Err(Why::New),
        Freshness::Stale(why) => Err(Why::Stale(why)),
        Freshness::Corrupt(why) => Err(Why::Corrupt(why)),
    })
}

/// Whether the index at `dest` has member digests that open.
fn has_digests(dest: &Path) -> bool {
    Archive::open(dest).is_ok_and(|m| matches!(crate::format::digests::of_index(m.bytes()), Ok(Some(_))))
}

/// Inputs read as streams: standard input, FIFOs, and character devices (tape drives).
pub fn stream_kind(path: &Path) -> Option<StreamKind> {
    use std::os::unix::fs::FileTypeExt;
    if path.as_os_str() == "-" {
        return Some(StreamKind::Stdin);
    }
    let ft = std::fs::metadata(path).ok()?.file_type();
    if ft.is_fifo() {
        Some(StreamKind::Fifo)
    } else if ft.is_char_device() {
        Some(StreamKind::Device)
    } else {
        None
    }
}

/// A stream's index goes to `--output`, or the device's place under `--index-dir`, or (for a
/// FIFO) the usual sidecar beside it. Tapes are read in whole records; pipes in large reads
/// unless a record size was asked for.
fn stream_plan(input: &Path, kind: StreamKind, record: usize, opts: &PlanOptions<'_>) -> Result<Plan> {
    let dest = match (opts.output, kind, opts.index_dir) {
        (Some(out), _, _) => out.to_path_buf(),
        (None, StreamKind::Stdin, _) => return Err(Error::Plan(PlanError::StdinNeedsOutput)),
        (None, StreamKind::Device, dir) => match dir.and_then(|d| d.in_dir(input)) {
            Some(dest) => dest,
            None => return Err(Error::Plan(PlanError::DeviceNeedsDest(input.to_path_buf()))),
        },
        (None, StreamKind::Fifo, _) => sidecar_path(input, opts.index_dir),
    };
    let chunk = if kind == StreamKind::Device || record != DEFAULT_RECORD { record } else { 1 << 20 };
    let plan = Plan::Stream { input: input.to_path_buf(), kind, chunk, dest };
    Ok(if opts.dry_run { Plan::DryRun(Box::new(plan)) } else { plan })
}

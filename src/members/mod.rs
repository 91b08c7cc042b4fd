//! The owned member index: what an archive holds, member by member, whatever form of index
//! answered for it.
//!
//! [`MemberIndex`] is the one interface to the members (`len`, `get(i)`, `lookup(path)`,
//! `children(dir)`); its entries are owned [`Member`]s, which outlive any borrow of the
//! archive. There is one implementation per form, one file each:
//!
//! | form | file | how `get` answers |
//! |---|---|---|
//! | `.tarfs` with its extension | `tarfs.rs` | entry `i` decoded on demand from the index alone (its checksum and its group's digest checked) |
//! | CSV index member | `csv.rs` | the rows, each checked against its header, listed in order |
//! | a scan (or a `.tarfs` without extension, whose entries need the archive's headers) | `scan.rs` | listed in order; held in memory once random access asks |
//!
//! [`open_best`] is the one function that chooses: it asks [`Reader::open`], which locates the
//! candidates (embedded, sidecar, `--index-dir`, CSV) and asks the verdict
//! ([`crate::verdict`]) of each, and wraps what answered. A new form is one new file here and
//! one arm in [`open_best`]; a new consumer (a mount, an image writer) needs only this module.

mod csv;
mod scan;
mod tarfs;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::archive::{ArchiveFile, IndexDir};
use crate::error::Result;
use crate::ops::owned::OwnedReader;
use crate::ops::read::{chain_fingerprint, fingerprint, normalize_name, Reader, Refusal, Source};
use crate::scan::{Entry, ScanOptions};

pub use self::csv::CsvIndex;
pub use self::scan::ScanIndex;
pub use self::tarfs::TarfsIndex;

/// One member of an archive, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its path, as a scan gives it (GNU long names and pax paths applied).
    pub path: Vec<u8>,
    /// Its effective typeflag.
    pub typeflag: u8,
    /// Its link target (hard or symbolic), or empty.
    pub link: Vec<u8>,
    /// Its mode bits.
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Modification time, in seconds.
    pub mtime: i64,
    /// Logical size (a sparse member's expanded size).
    pub size: u64,
    /// Device numbers, for device nodes.
    pub device: (u64, u64),
    /// Byte offset of its header chain (in the decompressed stream, for a compressed archive).
    pub position: u64,
    /// Byte offset of its data.
    pub data_offset: u64,
    /// Bytes of data stored in the archive.
    pub stored_size: u64,
    /// What identifies it at its place ([`fingerprint`]; the [`chain_fingerprint`] where pax
    /// globals apply): a reader compares it with the member it finds there before handing out
    /// data.
    pub fingerprint: u64,
    /// Whether pax global headers that set attributes apply to it: then only what its header
    /// chain read alone gives ([`chain_fingerprint`]) identifies it.
    pub has_globals: bool,
}

impl Member {
    /// The owned copy of the scanned or indexed member `e`.
    pub fn of(e: &Entry<'_>) -> Member {
        let mut m = Member { path: Vec::new(), typeflag: 0, link: Vec::new(), mode: 0, uid: 0, gid: 0, mtime: 0, size: 0, device: (0, 0), position: 0, data_offset: 0, stored_size: 0, fingerprint: 0, has_globals: false };
        m.refill(e);
        m
    }

    /// Makes this the copy of `e`, reusing its buffers.
    pub fn refill(&mut self, e: &Entry<'_>) {
        self.path.clear();
        self.path.extend_from_slice(&e.path());
        self.link.clear();
        self.link.extend_from_slice(e.link());
        (self.typeflag, self.mode, self.uid, self.gid, self.mtime, self.size, self.device) = (e.typeflag, e.mode, e.uid, e.gid, e.mtime, e.size, e.device);
        let fingerprint = if e.has_globals { chain_fingerprint(e, 0) } else { fingerprint(e, 0) };
        (self.position, self.data_offset, self.stored_size, self.fingerprint, self.has_globals) = (e.position, e.data_offset, e.stored_size, fingerprint, e.has_globals);
    }
}

/// The members of one archive, through whatever index answered for it.
pub trait MemberIndex: Send + Sync {
    /// The number of members.
    fn len(&self) -> usize;

    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Member `i` (0-based, in archive order).
    fn get(&self, i: usize) -> Result<Member>;

    /// Hands every member to `f`, in archive order (faster than [`MemberIndex::get`] of each
    /// where a form can stream them: one `Member` is refilled for each, with no allocation per
    /// member once its buffers have grown).
    fn for_each(&self, f: &mut dyn FnMut(usize, &Member) -> Result<()>) -> Result<()> {
        (0..self.len()).try_for_each(|i| f(i, &self.get(i)?))
    }

    /// The members named `path` (as [`normalize_name`] compares names), in archive order.
    fn lookup(&self, path: &[u8]) -> Result<Vec<usize>> {
        Ok(self.paths()?.by_name.get(normalize_name(path)).cloned().unwrap_or_default())
    }

    /// The members directly inside directory `dir` (`""` for the top), in archive order: those
    /// whose normalized path is `dir/NAME`.
    fn children(&self, dir: &[u8]) -> Result<Vec<usize>> {
        Ok(self.paths()?.by_parent.get(normalize_name(dir)).cloned().unwrap_or_default())
    }

    /// Which index answers ([`Source::Scan`] for none).
    fn source(&self) -> Source;

    /// The path tables behind the default [`MemberIndex::lookup`] and
    /// [`MemberIndex::children`], built on first use.
    fn paths(&self) -> Result<&Paths>;
}

/// Hands every member `reader` lists (through its index, or a scan) to `f`, numbered, as owned
/// [`Member`]s.
pub(crate) fn list(reader: &Reader<'_>, f: &mut dyn FnMut(usize, &Member) -> Result<()>) -> Result<()> {
    let (mut i, mut m) = (0, None::<Member>);
    reader.for_each(|e| {
        let m = match &mut m {
            Some(m) => {
                m.refill(e);
                m
            }
            None => m.insert(Member::of(e)),
        };
        f(i, m)?;
        i += 1;
        Ok(())
    })?;
    Ok(())
}

/// Members by normalized name and by parent directory.
#[derive(Debug, Default)]
pub struct Paths {
    by_name: HashMap<Vec<u8>, Vec<usize>>,
    by_parent: HashMap<Vec<u8>, Vec<usize>>,
}

impl Paths {
    /// The tables of `members`' paths.
    pub fn of<'p>(paths: impl Iterator<Item = &'p [u8]>) -> Paths {
        let mut t = Paths::default();
        for (i, p) in paths.enumerate() {
            let name = normalize_name(p).to_vec();
            let parent = name.iter().rposition(|&b| b == b'/').map_or(&[][..], |k| &name[..k]).to_vec();
            t.by_parent.entry(parent).or_default().push(i);
            t.by_name.entry(name).or_default().push(i);
        }
        t
    }
}

/// A lazily built [`Paths`], for the implementations.
#[derive(Debug, Default)]
pub(crate) struct LazyPaths(OnceLock<Paths>);

impl LazyPaths {
    /// The tables, built by `build` the first time.
    pub(crate) fn get_or(&self, build: impl FnOnce() -> Result<Paths>) -> Result<&Paths> {
        if let Some(p) = self.0.get() {
            return Ok(p);
        }
        let built = build()?;
        Ok(self.0.get_or_init(|| built))
    }
}

/// An archive's members through the best index it has, with the indexes passed over.
pub struct Opened {
    /// The members.
    pub index: Box<dyn MemberIndex>,
    /// The reader behind them, for the members' data.
    pub reader: Arc<OwnedReader>,
    /// The indexes passed over, and why.
    pub refusals: Vec<Refusal>,
}

/// Opens `archive` through the best index it has: the one [`Reader::open`] chooses (embedded,
/// sidecar under `index_dir` or beside it, CSV), else a scan.
pub fn open_best(archive: Box<dyn ArchiveFile>, index_dir: Option<&IndexDir>, opts: ScanOptions) -> Result<Opened> {
    let reader = Arc::new(OwnedReader::open(archive, |a| Reader::open(a, index_dir, opts))?);
    let refusals = reader.reader().refusals().to_vec();
    let index: Box<dyn MemberIndex> = match reader.reader().source() {
        Source::Embedded | Source::Sidecar(_) if reader.reader().reads_members_alone() => Box::new(TarfsIndex::new(reader.clone())),
        Source::Csv(..) => Box::new(CsvIndex::new(reader.clone())),
        // No index, or a `.tarfs` index whose entries need the archive's header chains to be
        // members: listed in order, as a scan is.
        _ => Box::new(ScanIndex::new(reader.clone())),
    };
    Ok(Opened { index, reader, refusals })
}

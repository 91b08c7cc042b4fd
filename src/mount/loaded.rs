//! What a mount reads: one tree, built from one archive or from several (a union, and with
//! `--recursive` the archives inside archives), and each archive's reader.
//!
//! The tree's files name members by one number counted over every archive in the order they
//! were added ([`TreeBuilder::add_index`]); [`Loaded::member`] finds the archive ([`Part`]) and
//! the member in it. Inode numbers are the tree's, so they are unique across archives.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::tree::{Tree, TreeBuilder};
use super::MountOptions;
use crate::archive::ArchiveFile;
use crate::format::tarfs::Stamp;
use crate::members::MemberIndex;
use crate::ops::owned::OwnedReader;

/// One archive of a mount: its reader, and where each of its members is.
pub struct Part {
    pub(super) reader: Arc<OwnedReader>,
    /// The header position of each of its members, and its
    /// [`crate::ops::read::fingerprint`] as listed.
    pub(super) positions: Vec<(u64, u64, bool)>,
    /// The archive file, and its stamp when loaded; `None` for an object (`s3://`), whose
    /// reads carry its pinned ETag and fail once it is replaced, and for an archive inside
    /// another, which is as unchanged as that one (`outer`).
    file: Option<(File, (u64, u64, Stamp))>,
    outer: Option<Arc<Part>>,
    changed: AtomicBool,
    /// What reading it said (the index it used, or that it scanned).
    pub note: String,
}

/// What says the archive file is unchanged: device and length, and its [`Stamp`] (inode, mtime
/// and ctime: a rewrite of the same length whose mtime `touch -r` restored has a new ctime).
fn stamp_of(m: &std::fs::Metadata) -> (u64, u64, Stamp) {
    (m.dev(), m.len(), Stamp::of(m))
}

/// The archive file at `path`, opened, and its stamp.
fn local_file(path: &Path) -> crate::Result<(File, (u64, u64, Stamp))> {
    let io = |source| crate::Error::Io { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(io)?;
    let stamp = stamp_of(&file.metadata().map_err(io)?);
    Ok((file, stamp))
}

impl Part {
    /// The archive's name.
    pub fn path(&self) -> &Path {
        self.reader.reader().archive().path()
    }

    /// The index it was loaded through ([`crate::ops::read::Source::Scan`]: none, scanned).
    pub fn source(&self) -> crate::ops::read::Source {
        self.reader.reader().source()
    }

    /// Whether the archive (and the one it is inside) is still the file it was; logs the first
    /// change.
    pub(super) fn unchanged(&self) -> bool {
        // The open file, not the name: an archive renamed over is another file, and this one,
        // which the mapping reads, is still as it was.
        let same = self.file.as_ref().is_none_or(|(file, stamp)| file.metadata().is_ok_and(|m| stamp_of(&m) == *stamp));
        if !same && !self.changed.swap(true, Ordering::Relaxed) {
            eprintln!("tarfs: {}: the archive changed while mounted: reads now fail (EIO); mount it again", self.path().display());
        }
        same && self.outer.as_ref().is_none_or(|o| o.unchanged())
    }
}

/// One archive, or several, loaded: the tree and the archives its files read.
pub struct Loaded {
    pub(super) tree: Tree,
    parts: Vec<Arc<Part>>,
    /// The number of each part's first member.
    firsts: Vec<u32>,
}

/// A tree being built from archives, one after the other.
pub(super) struct Build<'o> {
    pub(super) b: TreeBuilder,
    parts: Vec<Arc<Part>>,
    firsts: Vec<u32>,
    next: u32,
    pub(super) opts: &'o MountOptions,
}

/// An archive opened, not yet added: its reader and index.
pub(super) struct Opened {
    pub(super) archive: crate::members::Opened,
    pub(super) file: Option<(File, (u64, u64, Stamp))>,
    pub(super) outer: Option<Arc<Part>>,
}

impl Opened {
    /// The archive at `path` (a file or an object), through the best index it has (or a scan).
    pub(super) fn open(path: &Path, opts: &MountOptions) -> crate::Result<Opened> {
        let archive = crate::archive::open_any(path)?;
        let file = if crate::archive::s3::is_url(path) { None } else { Some(local_file(path)?) };
        Ok(Opened { archive: crate::members::open_best(archive, opts.index_dir.as_ref(), opts.scan)?, file, outer: None })
    }

    /// The archive `archive` inside the archive `outer` reads (no index beside it: a scan, or
    /// its embedded index).
    pub(super) fn inside(archive: Box<dyn ArchiveFile>, outer: Arc<Part>, opts: &MountOptions) -> crate::Result<Opened> {
        Ok(Opened { archive: crate::members::open_best(archive, None, opts.scan)?, file: None, outer: Some(outer) })
    }
}

impl<'o> Build<'o> {
    pub(super) fn new(opts: &'o MountOptions) -> Build<'o> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let b = TreeBuilder::new(rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw(), now);
        Build { b, parts: Vec::new(), firsts: Vec::new(), next: 0, opts }
    }

    /// Adds the archive `o` where the builder's layer says, with `each` seeing each member and
    /// its number; the archive's part.
    pub(super) fn add(&mut self, o: Opened, each: &mut dyn FnMut(u32, &crate::members::Member)) -> crate::Result<Arc<Part>> {
        let first = self.next;
        let skipped = self.b.skipped().len();
        let mut positions = Vec::new();
        let mut n = first;
        let index: &dyn MemberIndex = &*o.archive.index;
        let added = self.b.add_index(first, index, &mut |m| {
            positions.push((m.position, m.fingerprint, m.has_globals));
            each(n, m);
            n = n.saturating_add(1);
        });
        positions.shrink_to_fit();
        let note = match index.source() {
            crate::ops::read::Source::Scan => "no index: scanned the archive".to_string(),
            s => format!("through its {s}"),
        };
        let part = Arc::new(Part { reader: o.archive.reader, positions, file: o.file, outer: o.outer, changed: AtomicBool::new(false), note });
        for (name, why) in &self.b.skipped()[skipped..] {
            eprintln!("tarfs: {}: {}: not shown: {why}", part.path().display(), crate::quote::diag(name));
        }
        self.parts.push(part.clone());
        self.firsts.push(first);
        // Numbered even when the listing failed part way: the members it gave are in the tree.
        self.next = n;
        added.map(|_| part)
    }

    pub(super) fn finish(self) -> Loaded {
        Loaded { tree: self.b.finish(), parts: self.parts, firsts: self.firsts }
    }
}

impl Loaded {
    /// Loads the archive at `path` through the best index it has (or a scan); with
    /// `opts.recursive`, the archives inside it too.
    pub fn open(path: &Path, opts: &MountOptions) -> crate::Result<Loaded> {
        let mut build = Build::new(opts);
        super::nested::add(&mut build, Opened::open(path, opts)?, 0)?;
        Ok(build.finish())
    }

    /// Loads the archives at `paths` as their union, each through the best index it has:
    /// where a path is in several, the last one's entry is shown (see
    /// [`crate::mount::tree::Layer`]); with `opts.recursive`, the archives inside them too.
    pub fn union(paths: &[std::path::PathBuf], opts: &MountOptions) -> crate::Result<Loaded> {
        let mut build = Build::new(opts);
        for path in paths {
            build.b.next_archive();
            super::nested::add(&mut build, Opened::open(path, opts)?, 0)?;
        }
        Ok(build.finish())
    }

    /// The tree.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Its archives, in the order they were added.
    pub fn parts(&self) -> &[Arc<Part>] {
        &self.parts
    }

    /// What reading its first archive said.
    pub fn note(&self) -> &str {
        self.parts.first().map_or("", |p| &p.note)
    }

    /// The index its first archive was loaded through ([`crate::ops::read::Source::Scan`]: none,
    /// scanned).
    pub fn source(&self) -> crate::ops::read::Source {
        self.parts.first().map_or(crate::ops::read::Source::Scan, |p| p.reader.reader().source())
    }

    /// The archive that member `m` (numbered over all of them) is in, and its number there.
    pub(super) fn member(&self, m: u32) -> Option<(&Arc<Part>, usize)> {
        let k = self.firsts.partition_point(|&f| f <= m).checked_sub(1)?;
        Some((self.parts.get(k)?, (m - self.firsts[k]) as usize))
    }

    /// The bytes of its archives (not counting again those inside others).
    pub(super) fn bytes(&self) -> u64 {
        self.parts.iter().filter(|p| p.outer.is_none()).map(|p| p.reader.reader().archive().len()).sum()
    }
}

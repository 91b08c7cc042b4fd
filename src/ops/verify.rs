//! Checking an index against its archive.
//!
//! [`verify`] finds the archive's index (embedded, then sidecar), decodes it (every entry's
//! checksum must hold), and walks the archive once, pairing each member with its entry: the
//! position must be the member's header chain, the entry a copy of its main header, and the chain
//! length the one recorded. A full index must list every member; a subset index must list exactly
//! the members its recorded filter selects (or, without a recorded filter, only real members).

use crate::archive::{ArchiveFile, IndexDir, RawStream};
use crate::error::{Error, Result};
use crate::format::header::{HeaderView, BLOCK_U64};
use crate::format::ext;
use crate::format::tarfs::{self, Index, IndexError, FLAG_SUBSET};
use crate::ops::filter::Filter;
use crate::format::csv::{self, Row};
use crate::ops::read::{intact_extension, locate_csv, verdict, Located, Source};
use crate::scan::Warning;
use crate::format::compression::Compression;
use crate::source::compression_of;
use crate::scan::{Entry, ScanEnd, ScanOptions, Scanner};
use std::path::{Path, PathBuf};

/// What a successful check found.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    /// The index checked.
    pub source: Source,
    /// Entries in it.
    pub entries: u64,
    /// Members in the archive (without the embedded `.tarfs` member).
    pub members: u64,
    /// Whether it is a subset index.
    pub subset: bool,
    /// Members after a CSV index member, which it does not list (0 for `.tarfs` indexes).
    pub uncovered: u64,
}

/// Verifies the index of `archive`. Any missing, stale or corrupt index is an error that names the
/// archive and, where there is one, the entry. An archive with several sidecars (under the index
/// dir, beside it, in the user's cache) passes when one of them does, as readers use the first
/// usable one; else the first one's error is returned.
pub fn verify(archive: &dyn ArchiveFile, index_dir: Option<&IndexDir>, opts: ScanOptions) -> Result<VerifyReport> {
    crate::ops::journal::refuse_pending(archive)?;
    if let Some(c) = compression_of(archive) {
        return verify_compressed(archive, c, index_dir, opts);
    }
    let path = archive.path().to_path_buf();
    let found: Vec<Result<Located>> = match Located::embedded(archive) {
        Some(e) => vec![Ok(e)],
        None => Located::sidecars(archive, index_dir).into_iter().map(|s| s.map_err(|(_, e)| e)).collect(),
    };
    if found.is_empty() {
        return match locate_csv(archive, opts) {
            Some(l) => verify_csv(archive, &l, opts),
            None => Err(Error::Stale { path, msg: "no index (no embedded .tarfs member, no sidecar, no .tarindex_N.csv member)".into() }),
        };
    }
    first_passing(found.into_iter().map(|l| l.and_then(|l| verify_located(archive, &l, opts))))
}

/// The first report that passed, or else the first error.
fn first_passing(checks: impl Iterator<Item = Result<VerifyReport>>) -> Result<VerifyReport> {
    let mut first = None;
    for check in checks {
        match check {
            Ok(r) => return Ok(r),
            Err(e) => first = first.or(Some(e)),
        }
    }
    Err(first.expect("at least one index was checked"))
}

/// Verifies the `.tarfs` index `located` of the plain archive `archive`.
fn verify_located(archive: &dyn ArchiveFile, located: &Located, opts: ScanOptions) -> Result<VerifyReport> {
    let path = archive.path().to_path_buf();
    if tarfs::version_of(located.slice(archive)).is_ok_and(|v| v.0 == 2) {
        return crate::ops::verify_v2::verify_v2(archive, located, opts, |f| each_member(archive, opts, f).map(drop));
    }
    let index = tarfs::decode(located.slice(archive)).map_err(|source| Error::Index { index: located.path(archive), source })?;
    // The readers' freshness check first (one function for all), then the full pairing.
    if matches!(located.source, Source::Sidecar(_)) {
        stale_unless_fresh(verdict(&index, located, archive), &located.source, &path)?;
    }
    let skip = crate::archive::embedded_of(archive).map(|e| e.member_position);
    let mut pairing = Pairing::new(archive.path(), &index, located.slice(archive), located.base, skip)?;
    each_member(archive, opts, |e| pairing.member(e))?;
    pairing.finish(located.source.clone())
}

/// Hands every member of the plain archive `archive` to `f`, in order: scanned in place where
/// the archive is lent whole, else read as a stream from its start. Returns the scan's end.
fn each_member(archive: &dyn ArchiveFile, opts: ScanOptions, mut f: impl FnMut(&Entry<'_>) -> Result<()>) -> Result<ScanEnd> {
    let path = archive.path();
    let Some(bytes) = archive.lend() else {
        return Ok(crate::stream::scan_stream(&mut RawStream::new(archive, 0), path, opts, 1 << 20, f)?.end);
    };
    let mut scanner = Scanner::new(bytes, opts);
    for e in scanner.by_ref() {
        let e = e.map_err(|source| Error::Scan { path: path.to_path_buf(), source })?;
        crate::watch::at(e.position);
        f(&e)?;
    }
    archive.check_intact()?;
    Ok(scanner.end().expect("a scan that ran to its end has one"))
}

/// Pairs the members of an archive, met in order, with the entries of its index.
pub struct Pairing<'i, 'd> {
    path: PathBuf,
    index: &'i Index<'d>,
    base: u64,
    skip: Option<u64>,
    subset: bool,
    filter: Option<Filter>,
    next: usize,
    members: u64,
    /// The index's extension data, checked whole, and the hash of the lookup key of each entry met.
    ext: Option<(ext::Ext<'d>, Vec<u64>)>,
}

impl<'i, 'd> Pairing<'i, 'd> {
    /// Pairing for `index`, whose positions count from `base`; the member at `skip` (an embedded
    /// `.tarfs`) is not one of the indexed.
    ///
    /// `data` is the index's bytes: its extension data, if any, is checked whole (every chunk),
    /// and each record against its member.
    pub fn new(path: &Path, index: &'i Index<'d>, data: &'d [u8], base: u64, skip: Option<u64>) -> Result<Self> {
        let info = index.header.info.clone().unwrap_or_default();
        let ext = intact_extension(data, &info).map_err(|source| Error::Index { index: path.to_path_buf(), source })?.map(|x| (x, Vec::new()));
        let subset = info.flags & FLAG_SUBSET != 0;
        let filter = match (&info.filter, subset) {
            (Some(text), true) => Filter::parse(text).map_err(|source| Error::Index { index: path.to_path_buf(), source })?,
            _ => None,
        };
        Ok(Pairing { path: path.to_path_buf(), index, base, skip, subset, filter, next: 0, members: 0, ext })
    }

    fn index_error(&self, source: IndexError) -> Error {
        Error::Index { index: self.path.clone(), source }
    }

    fn mismatch(&self, entry: usize, offset: u64, name: &[u8], msg: &str) -> Error {
        Error::Mismatch { path: self.path.clone(), entry: Some(entry as u64), name: crate::quote::diag(name), offset, msg: msg.to_string() }
    }

    /// The next member of the archive.
    pub fn member(&mut self, e: &Entry<'_>) -> Result<()> {
        if Some(e.position) == self.skip {
            return Ok(());
        }
        self.members += 1;
        let expected_pos = self.index.entries.get(self.next).map(|ie| self.base + ie.position() * BLOCK_U64);
        let listed = match (&self.filter, self.subset) {
            (Some(f), _) => f.matches(&e.path()),
            (None, true) => expected_pos == Some(e.position),
            (None, false) => true,
        };
        if !listed {
            return Ok(());
        }
        let Some(ie) = self.index.entries.get(self.next) else {
            return Err(Error::Stale {
                path: self.path.clone(),
                msg: format!(
                    "index is stale: it has {} entries, but the archive has more members, from {:?} at byte {}",
                    self.index.entries.len(),
                    String::from_utf8_lossy(&e.path()),
                    e.position
                ),
            });
        };
        let name = HeaderView::new(ie.as_bytes()).name();
        let pos = expected_pos.expect("entry exists");
        if pos != e.position {
            return Err(self.mismatch(self.next, pos, name, &format!("the member there is at byte {} ({:?})", e.position, String::from_utf8_lossy(&e.path()))));
        }
        if !ie.matches_header(e.header.as_bytes()) {
            return Err(self.mismatch(self.next, pos, name, "the header there differs from the index entry"));
        }
        if ie.chain_blocks().is_some_and(|c| c != e.chain_blocks()) {
            return Err(self.mismatch(self.next, pos, name, "the header chain there has another length"));
        }
        if let Some((x, keys)) = &mut self.ext {
            let record = x.meta(self.next, ie.stored_checksum()).map_err(|err| Error::Index { index: self.path.clone(), source: IndexError::Extension(err) })?;
            if e.ext_meta().as_ref() != Some(&record) {
                return Err(self.mismatch(self.next, pos, name, "the index extension's record differs from the member"));
            }
            keys.push(ext::key_hash(ext::normalize_name(&e.path())));
        }
        self.next += 1;
        Ok(())
    }

    /// After the last member: every entry must have been met.
    pub fn finish(self, source: Source) -> Result<VerifyReport> {
        if let Some(ie) = self.index.entries.get(self.next) {
            let pos = self.base + ie.position() * BLOCK_U64;
            return Err(self.mismatch(self.next, pos, HeaderView::new(ie.as_bytes()).name(), "no member of the archive is there"));
        }
        if let Some((x, keys)) = &self.ext {
            // The name table: a permutation of the entries, sorted by key hash, then entry number.
            let bad = |source| self.index_error(source);
            let mut seen = vec![false; keys.len()];
            let mut prev: Option<usize> = None;
            for k in 0..x.len() {
                let i = x.ordered(k).map_err(|e| bad(IndexError::Extension(e)))?;
                if std::mem::replace(&mut seen[i], true) {
                    return Err(bad(IndexError::NameTableTwice(i as u64)));
                }
                if let Some(p) = prev {
                    if (keys[p], p) > (keys[i], i) {
                        return Err(bad(IndexError::NameTableOrder(k as u64)));
                    }
                }
                prev = Some(i);
            }
        }
        Ok(VerifyReport { source, entries: self.index.entries.len() as u64, members: self.members, subset: self.subset, uncovered: 0 })
    }
}

/// Verifies a CSV index member: its rows must be exactly the members before it, with their
/// names, stored sizes and data blocks. Members after it (the seed's library adds indexes as it
/// goes) are counted, not required.
fn verify_csv(archive: &dyn ArchiveFile, located: &crate::ops::read::Located, opts: ScanOptions) -> Result<VerifyReport> {
    let path = archive.path().to_path_buf();
    let Source::Csv(name, index_at) = &located.source else { unreachable!("a CSV location") };
    let rows = csv::decode(located.slice(archive)).map_err(|source| Error::Index { index: path.clone(), source: IndexError::Csv { name: name.clone(), source } })?;
    let mut i = 0usize;
    let mut after = 0u64;
    let mut members = 0u64;
    let end = each_member(archive, opts, |e| {
        members += 1;
        // The index member's chain may start before its header (a pax header naming it).
        if e.header_offset >= *index_at {
            after += u64::from(e.header_offset > *index_at);
            return Ok(());
        }
        let want = Row::new(&e.path(), e.stored_size, e.data_offset);
        match rows.get(i) {
            Some(r) if *r == want => {}
            Some(r) => {
                return Err(Error::Mismatch {
                    path: path.clone(),
                    entry: Some(i as u64),
                    name: crate::quote::diag(&r.name),
                    offset: e.position,
                    msg: format!("{name} row {} says ({}, {}, {}, {}); the member there is ({:?}, {}, {}, {})", i + 1, String::from_utf8_lossy(&r.name), r.size, r.start_block, r.blocks, String::from_utf8_lossy(&want.name), want.size, want.start_block, want.blocks),
                })
            }
            None => return Err(Error::Stale { path: path.clone(), msg: format!("{name} has {} rows, but more members precede it", rows.len()) }),
        }
        i += 1;
        Ok(())
    })?;
    if i != rows.len() {
        let hint = match end.warning {
            Some(Warning::LoneZeroBlock { offset }) => format!(" (the scan stopped at a lone zero block at byte {offset}; try --lenient)"),
            _ => String::new(),
        };
        return Err(Error::Stale { path, msg: format!("{name} has {} rows, but only {i} members precede it{hint}", rows.len()) });
    }
    Ok(VerifyReport { source: located.source.clone(), entries: rows.len() as u64, members, subset: false, uncovered: after })
}

/// Verifies the sidecar of a compressed archive by one pass over its decoded stream: the first
/// of its sidecars that passes (see [`verify`]).
fn verify_compressed(archive: &dyn ArchiveFile, c: Compression, index_dir: Option<&IndexDir>, opts: ScanOptions) -> Result<VerifyReport> {
    let found = crate::ops::read::Located::sidecars(archive, index_dir);
    if found.is_empty() {
        let side = match archive.index_store() {
            Some(store) => store.name().display().to_string(),
            None => crate::archive::sidecar_candidates(archive.path(), index_dir).first().map(|p| p.display().to_string()).unwrap_or_default(),
        };
        return Err(Error::Stale { path: archive.path().to_path_buf(), msg: format!("no index (no sidecar {side})") });
    }
    first_passing(found.into_iter().map(|f| f.map_err(|(_, e)| e).and_then(|l| verify_compressed_at(archive, c, &l.path(archive), l.slice(archive), opts))))
}

/// Verifies the sidecar `side` (its content `bytes`) of a compressed archive.
fn verify_compressed_at(archive: &dyn ArchiveFile, c: Compression, side: &Path, bytes: &[u8], opts: ScanOptions) -> Result<VerifyReport> {
    let decoded = || crate::stream::decoder(crate::watch::Noting::new(crate::archive::buffered_from(archive, 0)), Some(c), archive.path());
    if tarfs::version_of(bytes).is_ok_and(|v| v.0 == 2) {
        let located = crate::ops::read::Located { source: Source::Sidecar(side.to_path_buf()), bytes: crate::ops::read::IndexBytes::Owned(bytes.to_vec()), base: 0 };
        return crate::ops::verify_v2::verify_v2(archive, &located, opts, |f| crate::stream::scan_stream(&mut decoded()?, archive.path(), opts, 1 << 20, f).map(drop));
    }
    let index = tarfs::decode(bytes).map_err(|source| Error::Index { index: side.to_path_buf(), source })?;
    let located = crate::ops::read::Located { source: Source::Sidecar(side.to_path_buf()), bytes: crate::ops::read::IndexBytes::Owned(Vec::new()), base: 0 };
    stale_unless_fresh(verdict(&index, &located, archive), &located.source, archive.path())?;
    let mut pairing = Pairing::new(archive.path(), &index, bytes, 0, None)?;
    // Decoded from the archive's bytes, noting how far into them the decoder is.
    let mut r = decoded()?;
    crate::stream::scan_stream(&mut r, archive.path(), opts, 1 << 20, |e| pairing.member(e))?;
    pairing.finish(Source::Sidecar(side.to_path_buf()))
}

/// `Ok` where the verdict lets the index answer; else the stale-index error naming `source`.
fn stale_unless_fresh(v: crate::verdict::Verdict, source: &Source, path: &std::path::Path) -> Result<()> {
    if v.is_fresh() {
        return Ok(());
    }
    Err(Error::Stale { path: path.to_path_buf(), msg: crate::ops::read::Refusal { source: source.clone(), verdict: v }.to_string() })
}

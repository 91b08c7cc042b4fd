//! A `.tarfs` index of version 2.0 ([`crate::format::v2`]): fixed-width records, front-coded
//! paths and a hash table, so that every member is listed and found from the index alone.
//!
//! An entry is a record, not a copy of a header: the [`Entry`] handed out carries a header block
//! made here (its typeflag and mode; every other field is the entry's own), and the reader
//! checks a member against it by its fields ([`crate::ops::read::fingerprint`]) before
//! handing out data.

use std::sync::OnceLock;

use super::*;
use crate::format::pax::PaxOverrides;
use crate::format::v2::{self, Parts, Record, View};

/// The form of a reader through a v2.0 `.tarfs` index.
pub(crate) struct V2 {
    located: Located,
    /// Where the body's parts are, and which chunks were checked.
    parts: Parts,
    /// The index header's record: the body's length.
    info: tarfs::IndexInfo,
    /// The plain body, where the index stores it deflated ([`v2::DEFLATED`]).
    image: Option<Vec<u8>>,
    /// Entries handed out one at a time ([`Form::entry`]), held for as long as the form.
    held: OnceLock<Vec<OnceLock<Box<Held>>>>,
}

/// What an entry borrows that the index does not hold as bytes: its header block and its path.
struct Held {
    header: [u8; BLOCK],
    path: Vec<u8>,
}

/// The reader `r` through the v2.0 index `located`, if its verdict lets it answer.
pub(super) fn open(mut r: Reader<'_>, located: Located) -> std::result::Result<Reader<'_>, Box<Refusal>> {
    let refuse = |verdict| Box::new(Refusal { source: located.source.clone(), verdict });
    let corrupt = |e: tarfs::IndexError| refuse(Verdict::Corrupt(Corruption::Decode(e)));
    let data = located.slice(r.archive);
    let (info, parts, image) = opened(data).map_err(corrupt)?;
    let body = image.as_deref().or_else(|| v2::body_of(data, &info)).expect("opened found the body");
    let view = parts.on(body);
    if info.flags & FLAG_SUBSET != 0 && !r.subsets {
        return Err(refuse(Verdict::Subset { entries: view.len() as u64 }));
    }
    let seek = v2::seek_range(data, &info).map(|range| &data[range]);
    let entry = |i: usize| view.record(i).ok().map(|rec| Judge { rec, chain: chain_of(&view, i, &rec).ok() });
    match verdict::judge(&judged(&info, view.len(), entry, &located), r.archive) {
        Verdict::Fresh { read } => r.opening_reads = read,
        v => return r.checked_scan(seek, refuse(v)),
    }
    if let Some(section) = seek {
        r.seek_through(section).map_err(|why| refuse(Verdict::Corrupt(Corruption::Seek(std::sync::Arc::new(why)))))?;
    }
    Ok(r.answering(Box::new(V2 { located, parts, info, image, held: OnceLock::new() })))
}

/// The v2 index whose bytes are `data`, opened: its header's record, its body's parts, and
/// its plain body where it stores it deflated (else the body is [`v2::body_of`] `data`).
fn opened(data: &[u8]) -> std::result::Result<(tarfs::IndexInfo, Parts, Option<Vec<u8>>), tarfs::IndexError> {
    let header: &[u8; BLOCK] = data.get(..BLOCK).and_then(|b| b.try_into().ok()).ok_or(tarfs::IndexError::NoMagic)?;
    let info = tarfs::decode_header_as(header, 2)?.info.ok_or(tarfs::IndexError::NoVersion)?;
    let stored = v2::body_of(data, &info).ok_or(v2::V2Error::Part("body"))?;
    let image = v2::image(stored)?;
    let parts = Parts::open(image.as_deref().unwrap_or(stored), header)?;
    Ok((info, parts, image))
}

/// A record as the verdict judges it.
struct Judge {
    rec: Record,
    /// Blocks from the position to the data; `None` where its extras do not decode.
    chain: Option<u64>,
}

impl verdict::Recorded for Judge {
    fn intact(&self) -> bool {
        self.chain.is_some()
    }

    fn position(&self) -> u64 {
        self.rec.position / BLOCK_U64
    }

    fn matches(&self, found: &Entry<'_>) -> bool {
        found.header_sum == self.rec.header_sum && Some(found.chain_blocks()) == self.chain && found.typeflag == self.rec.typeflag && found.size == self.rec.size
    }
}

/// Blocks from the position of entry `i` (record `rec`) to its data.
fn chain_of(view: &View<'_>, i: usize, rec: &Record) -> std::result::Result<u64, v2::V2Error> {
    if rec.chain != u16::MAX {
        return Ok(u64::from(rec.chain));
    }
    view.extras(i)?.chain.ok_or(v2::V2Error::Entry { entry: i as u64, what: "its chain length is in no extra" })
}

impl Form for V2 {
    fn source(&self) -> Source {
        self.located.source.clone()
    }

    fn located(&self) -> Option<&Located> {
        Some(&self.located)
    }

    fn entries(&self) -> usize {
        self.parts.len()
    }

    fn answers_alone(&self) -> bool {
        true
    }

    fn has_globals(&self) -> bool {
        self.info.flags & FLAG_GLOBALS != 0
    }

    fn for_each(&self, r: &Reader<'_>, f: &mut dyn FnMut(&Entry<'_>) -> Result<()>) -> Result<Option<ScanEnd>> {
        let view = self.view(r);
        let mut held = Held { header: [0; BLOCK], path: Vec::new() };
        for i in 0..view.len() {
            let rec = view.record(i).map_err(|e| self.error(r, e))?;
            view.path_into(i, &mut held.path).map_err(|e| self.error(r, e))?;
            f(&self.entry_of(r, &view, i, &rec, &mut held)?)?;
        }
        Ok(None)
    }

    /// Through the hash table: the slot, a few records' tags, and the paths they name.
    fn lookup_all<'s>(&'s self, r: &'s Reader<'_>, names: &[&[u8]]) -> Result<Vec<Vec<Entry<'s>>>> {
        names.iter().map(|name| self.lookup_entries(r, name)?.into_iter().map(|i| self.entry(r, i)).collect()).collect()
    }

    fn entry<'s>(&'s self, r: &'s Reader<'_>, i: usize) -> Result<Entry<'s>> {
        let view = self.view(r);
        let slots = self.held.get_or_init(|| (0..view.len()).map(|_| OnceLock::new()).collect());
        let slot = slots.get(i).ok_or_else(|| Error::NotFound { path: r.archive.path().to_path_buf(), name: format!("index entry {i}") })?;
        let rec = view.record(i).map_err(|e| self.error(r, e))?;
        if slot.get().is_none() {
            let mut held = Box::new(Held { header: [0; BLOCK], path: Vec::new() });
            header_block(&rec, &mut held.header);
            view.path_into(i, &mut held.path).map_err(|e| self.error(r, e))?;
            let _ = slot.set(held);
        }
        let held = slot.get().expect("set above");
        self.entry_with(r, &view, i, &rec, &held.header, &held.path)
    }

    fn lookup_entries(&self, r: &Reader<'_>, name: &[u8]) -> Result<Vec<usize>> {
        self.view(r).lookup(name).map_err(|e| self.error(r, e))
    }
}

impl V2 {
    /// The body, read through its parts.
    fn view<'s>(&'s self, r: &'s Reader<'_>) -> View<'s> {
        let body = self.image.as_deref().or_else(|| v2::body_of(self.located.slice(r.archive), &self.info));
        self.parts.on(body.expect("the body was found where it opened"))
    }

    fn error(&self, r: &Reader<'_>, e: v2::V2Error) -> Error {
        Error::Index { index: self.located.path(r.archive), source: e.into() }
    }

    /// Entry `i` (record `rec`), its header block and path made in `held`.
    fn entry_of<'s>(&self, r: &Reader<'_>, view: &View<'s>, i: usize, rec: &Record, held: &'s mut Held) -> Result<Entry<'s>> {
        header_block(rec, &mut held.header);
        self.entry_with(r, view, i, rec, &held.header, &held.path)
    }

    /// Entry `i` (record `rec`) as a scan would give its member, with `header` (a block made by
    /// [`header_block`]) and `path`.
    fn entry_with<'s>(&self, r: &Reader<'_>, view: &View<'s>, i: usize, rec: &Record, header: &'s [u8; BLOCK], path: &'s [u8]) -> Result<Entry<'s>> {
        let bad = |e| self.error(r, e);
        let x = if rec.flags & v2::F_EXTRAS != 0 { view.extras(i).map_err(bad)? } else { v2::Extras::default() };
        let owner = view.owner(rec.owner).ok_or_else(|| bad(v2::V2Error::Entry { entry: i as u64, what: "its owner is not in the owners" }))?;
        let chain = x.chain.unwrap_or(u64::from(rec.chain));
        let (mtime, nsec) = x.mtime.unwrap_or((rec.mtime_ns.div_euclid(1_000_000_000), rec.mtime_ns.rem_euclid(1_000_000_000) as u32));
        let position = self.located.base + rec.position;
        let at = |blocks: u64| position.saturating_add(blocks.saturating_mul(BLOCK_U64));
        let pax = PaxOverrides { path: Some(path), linkpath: (!x.link.is_empty()).then_some(x.link), uname: Some(owner.uname), gname: Some(owner.gname), uid: Some(owner.uid), gid: Some(owner.gid), mtime: Some(mtime), mtime_nsec: Some(nsec), xattrs: rec.flags & v2::F_XATTRS != 0, ..PaxOverrides::default() };
        Ok(Entry {
            position,
            header_offset: at(x.main.unwrap_or(chain.saturating_sub(1))),
            data_offset: at(chain),
            stored_size: x.stored.unwrap_or(rec.size),
            size: rec.size,
            header: HeaderView::new(header),
            header_sum: rec.header_sum,
            typeflag: rec.typeflag,
            mode: rec.mode,
            uid: owner.uid,
            gid: owner.gid,
            mtime,
            device: x.device,
            pax,
            long_name: None,
            long_link: None,
            sparse: None,
            has_globals: rec.flags & v2::F_GLOBALS != 0,
        })
    }
}

/// The header block an entry of record `rec` carries: a ustar header with its typeflag and
/// mode, and nothing else (the entry's other fields are its own).
fn header_block(rec: &Record, out: &mut [u8; BLOCK]) {
    out.fill(0);
    let mode = format!("{:07o}", rec.mode & 0o7777777);
    out[100..107].copy_from_slice(mode.as_bytes());
    out[156] = rec.typeflag;
    out[257..263].copy_from_slice(b"ustar\0");
    out[263..265].copy_from_slice(b"00");
}

/// `index`'s keep-or-rebuild of the v2 sidecar `located` (`keep_sidecar`, stricter than a
/// reader's verdict: the archive's stamp must still be the one recorded): its record and the
/// verdict, or how it is corrupt.
pub(crate) fn keep(archive: &dyn ArchiveFile, located: &Located) -> std::result::Result<(tarfs::IndexInfo, Verdict), Corruption> {
    let data = located.slice(archive);
    let (info, parts, image) = opened(data).map_err(Corruption::Decode)?;
    let body = image.as_deref().or_else(|| v2::body_of(data, &info)).expect("opened found the body");
    let view = parts.on(body);
    view.check_all().map_err(|e| Corruption::Decode(e.into()))?;
    let entry = |i: usize| view.record(i).ok().map(|rec| Judge { rec, chain: chain_of(&view, i, &rec).ok() });
    let v = verdict::keep_sidecar(&judged(&info, view.len(), entry, located), archive);
    Ok((info, v))
}

/// The verdict [`verdict::grown`] on the v2 index `located` of `archive`, which grew (every
/// entry still matches its member, and a member starts at the old end): with the index's entry
/// count, its parts and its plain body where it stores it deflated, so that a new index takes its
/// members ([`v2::View::member`]). Archive bytes read are added to `read`.
pub(crate) fn grown(archive: &dyn ArchiveFile, located: &Located, scan: ScanOptions, read: &mut u64) -> std::result::Result<Grown, Corruption> {
    let data = located.slice(archive);
    let (info, parts, image) = opened(data).map_err(Corruption::Decode)?;
    let body = image.as_deref().or_else(|| v2::body_of(data, &info)).expect("opened found the body");
    let view = parts.on(body);
    view.check_all().map_err(|e| Corruption::Decode(e.into()))?;
    // Globals in the old part would have to carry over into the scan of the appended one.
    let alone = info.flags & (FLAG_SUBSET | FLAG_GLOBALS | tarfs::FLAG_SEEK) == 0 && parts.flags() & (v2::HAS_GLOBALS | v2::GLOBAL_ATTRIBUTES) == 0;
    let entry = |i: usize| view.record(i).ok().map(|rec| Judge { rec, chain: chain_of(&view, i, &rec).ok() });
    let v = verdict::grown(&judged(&info, view.len(), entry, located), alone, archive, scan, read);
    let entries = view.len();
    Ok(Grown { verdict: v, entries, parts, image })
}

/// What [`grown`] found of an old v2 index.
pub(crate) struct Grown {
    /// The verdict on it.
    pub verdict: Verdict,
    /// Its entries.
    pub entries: usize,
    /// Its body's parts.
    pub parts: Parts,
    /// Its plain body, where it stores it deflated.
    pub image: Option<Vec<u8>>,
}

//! A `.tarfs` index of version 1.0 (sidecar or embedded), with or without its extension data.
//!
//! With extension data, every member is decoded from the index alone: listing and lookup read
//! no archive bytes, and the sorted name table finds a name in a binary search. Without it, an
//! entry is a copy of its member's main header: a self-contained entry (no long name, pax
//! header or sparse map) lists alone, any other is read again at its place in the archive.

use super::*;

/// The form of a reader through a v1.0 `.tarfs` index.
pub(crate) struct V1 {
    located: Located,
    /// Entries in the index.
    entries: usize,
    /// Whether the index has extension data that opened (see [`crate::format::ext`]).
    ext: bool,
    /// The index header's flags.
    flags: u8,
}

/// The reader `r` through the v1.0 index `located`, if its verdict lets it answer.
///
/// An index with extension data is opened without checking every entry: its header, its
/// extension's header and chunk table, and the freshness sample are checked now, and each entry
/// and extension piece as it is first used. Opening therefore costs the same at any number of
/// members. An index without it is decoded whole (every entry's checksum).
pub(super) fn open(mut r: Reader<'_>, located: Located) -> std::result::Result<Reader<'_>, Box<Refusal>> {
    let refuse = |verdict| Box::new(Refusal { source: located.source.clone(), verdict });
    let corrupt = |c| refuse(Verdict::Corrupt(c));
    let data = located.slice(r.archive);
    let header = data.get(..BLOCK).and_then(|b| <&[u8; BLOCK]>::try_from(b).ok()).ok_or_else(|| corrupt(Corruption::Decode(tarfs::IndexError::NoMagic)))?;
    let head = tarfs::decode_header(header).map_err(|e| corrupt(Corruption::Decode(e)))?;
    let info = head.info.clone().unwrap_or_default();
    let x = opened_extension(data, header, &info).map_err(|e| corrupt(Corruption::Extension(e)))?;
    let n = match &x {
        Some(_) => info.entries as usize,
        None => decode_index(data).map_err(|e| corrupt(Corruption::Decode(e)))?.entries.len(),
    };
    if info.flags & FLAG_GLOBALS != 0 && x.is_none() {
        return Err(refuse(Verdict::Stale(Why::Globals)));
    }
    if info.flags & FLAG_SUBSET != 0 {
        return Err(refuse(Verdict::Subset { entries: n as u64 }));
    }
    let seek = tarfs::seek_range(data, &info).map(|range| &data[range]);
    if head.info.is_some() {
        let entry = |i: usize| {
            if let Some(x) = &x {
                x.check_entry(&data[BLOCK..], i).ok()?;
            }
            Some(IndexEntry::new(data.get((i + 1) * BLOCK..(i + 2) * BLOCK)?.try_into().ok()?))
        };
        match verdict::judge(&judged(&info, n, entry, &located), r.archive) {
            Verdict::Fresh { read } => r.opening_reads = read,
            v => return r.checked_scan(seek, refuse(v)),
        }
    }
    if let Some(section) = seek {
        r.seek_through(section).map_err(|why| refuse(Verdict::Corrupt(Corruption::Seek(std::sync::Arc::new(why)))))?;
    }
    let ext = x.is_some();
    Ok(r.answering(Box::new(V1 { located, entries: n, ext, flags: info.flags })))
}

impl Form for V1 {
    fn source(&self) -> Source {
        self.located.source.clone()
    }

    fn located(&self) -> Option<&Located> {
        Some(&self.located)
    }

    fn entries(&self) -> usize {
        self.entries
    }

    fn answers_alone(&self) -> bool {
        self.ext
    }

    fn has_globals(&self) -> bool {
        self.flags & FLAG_GLOBALS != 0
    }

    fn for_each(&self, r: &Reader<'_>, f: &mut dyn FnMut(&Entry<'_>) -> Result<()>) -> Result<Option<ScanEnd>> {
        if let Some(x) = self.extension(r) {
            let x = x?;
            let data = self.located.slice(r.archive);
            // Every entry will be used: check their digests on every core first (each entry
            // below then finds its group checked).
            let _ = x.check_all_entries(&data[BLOCK..]);
            for i in 0..self.entries {
                f(&ext_entry(&self.located, r.archive, &x, data, i)?)?;
            }
            return Ok(None);
        }
        // Entries that need their header chain would need the stream read to them: read it
        // once, as a scan, unless the index alone describes every member.
        if r.lent().is_none() && !self.all_simple(r) {
            return r.scan_stream(f).map(Some);
        }
        self.for_each_indexed(r, None, f)?;
        r.archive.check_intact()?;
        Ok(None)
    }

    /// A self-contained entry's path is judged on the entry alone, so members not kept cost no
    /// decoding and no archive access.
    fn for_each_path(&self, r: &Reader<'_>, keep: Keep<'_>, f: &mut dyn FnMut(&Entry<'_>) -> Result<()>) -> Result<()> {
        if self.ext || r.lent().is_none() {
            return self.for_each(r, &mut |e| if keep(&e.path()) { f(e) } else { Ok(()) }).map(drop);
        }
        self.for_each_indexed(r, Some(keep), f)
    }

    /// Through the extension's sorted name table: a few dozen entries read whatever the
    /// index's size, and no archive bytes. Without extension data, members are listed.
    fn lookup_all<'s>(&'s self, r: &'s Reader<'_>, names: &[&[u8]]) -> Result<Vec<Vec<Entry<'s>>>> {
        let Some(x) = self.extension(r) else { return r.lookup_by_listing(names) };
        let (x, data) = (x?, self.located.slice(r.archive));
        // In entry order, which is archive order.
        names.iter().map(|name| self.find_in(r, &x, name)?.into_iter().map(|i| ext_entry(&self.located, r.archive, &x, data, i)).collect()).collect()
    }

    fn entry<'s>(&'s self, r: &'s Reader<'_>, i: usize) -> Result<Entry<'s>> {
        let not_found = || Error::NotFound { path: r.archive.path().to_path_buf(), name: format!("index entry {i}") };
        let x = self.extension(r).ok_or_else(not_found)??;
        if i >= self.entries {
            return Err(not_found());
        }
        ext_entry(&self.located, r.archive, &x, self.located.slice(r.archive), i)
    }

    fn lookup_entries(&self, r: &Reader<'_>, name: &[u8]) -> Result<Vec<usize>> {
        let x = self.extension(r).ok_or_else(|| Error::NotFound { path: r.archive.path().to_path_buf(), name: crate::quote::diag(name) })??;
        self.find_in(r, &x, name)
    }

    /// A sidecar whose entries are all self-contained tells the last position of a wanted
    /// name.
    fn stop_after(&self, r: &Reader<'_>, wanted: &dyn Fn(&[u8]) -> bool) -> Option<u64> {
        if !matches!(self.located.source, Source::Sidecar(_)) || !self.all_simple(r) {
            return None;
        }
        let mut path = Vec::new();
        let last = tarfs::decoded_entries(self.located.slice(r.archive), self.entries).filter(|e| wanted(simple_path(e, &mut path))).map(|e| e.position() * BLOCK_U64).last();
        Some(last.unwrap_or(0))
    }
}

impl V1 {
    /// The extension data, opened; `None` where the index has none.
    fn extension<'s>(&'s self, r: &'s Reader<'_>) -> Option<Result<ext::Ext<'s>>> {
        if !self.ext {
            return None;
        }
        extension_of(&self.located, r.archive)
    }

    /// Whether every entry describes its member alone (no header chain to read).
    fn all_simple(&self, r: &Reader<'_>) -> bool {
        tarfs::decoded_entries(self.located.slice(r.archive), self.entries).all(|e| e.is_simple())
    }

    /// The entry numbers named `name` in the opened extension `x`.
    fn find_in(&self, r: &Reader<'_>, x: &ext::Ext<'_>, name: &[u8]) -> Result<Vec<usize>> {
        let data = self.located.slice(r.archive);
        let key_of = |i| -> Result<Vec<u8>> { Ok(normalize_name(&ext_entry(&self.located, r.archive, x, data, i)?.path()).to_vec()) };
        let wrap = |e| Error::Index { index: self.located.path(r.archive), source: tarfs::IndexError::Extension(e) };
        x.find(normalize_name(name), key_of, wrap)
    }

    /// Members through the entries; with `keep`, only those whose path it accepts. A
    /// self-contained entry is its member; any other is read again at its place.
    fn for_each_indexed(&self, r: &Reader<'_>, keep: Option<Keep<'_>>, f: &mut dyn FnMut(&Entry<'_>) -> Result<()>) -> Result<()> {
        let data = self.located.slice(r.archive);
        let blocks = &data[BLOCK..BLOCK * (self.entries + 1)];
        let mut path = Vec::new();
        for i in wanted(blocks, self.entries, keep) {
            let ie = IndexEntry::new(blocks[i * BLOCK..(i + 1) * BLOCK].try_into().expect("one block"));
            let pos = self.located.base + ie.position() * BLOCK_U64;
            if ie.is_simple() {
                debug_assert!(keep.is_none_or(|k| k(simple_path(&ie, &mut path))));
                let entry = Entry::from_simple_header(HeaderView::new(ie.as_bytes()), pos).map_err(|source| Error::Scan { path: self.located.path(r.archive), source })?;
                f(&entry)?;
            } else {
                let entry = r.read_at(Some(i as u64), pos, Some(&ie))?;
                if keep.is_none_or(|k| k(&entry.path())) {
                    f(&entry)?;
                }
            }
        }
        Ok(())
    }
}

/// The numbers of the entries in `blocks` (`n` of them) that `keep` may accept: every
/// self-contained entry whose path it accepts, judged on every core, and every other entry
/// (whose path needs the archive).
fn wanted(blocks: &[u8], n: usize, keep: Option<Keep<'_>>) -> Vec<usize> {
    use rayon::prelude::*;
    let Some(keep) = keep else { return (0..n).collect() };
    blocks
        .par_chunks(BLOCK * 4096)
        .enumerate()
        .flat_map_iter(|(c, chunk)| {
            let mut path = Vec::new();
            chunk.chunks_exact(BLOCK).enumerate().filter_map(move |(i, b)| {
                let ie = IndexEntry::new(b.try_into().expect("one block"));
                (!ie.is_simple() || keep(simple_path(&ie, &mut path))).then_some(c * 4096 + i)
            })
        })
        .collect()
}

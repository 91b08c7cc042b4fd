//! Every member in archive order: through a `.tarfs` index, its extension, or a scan of the
//! archive (its mapping, or the decoded stream of a compressed one).

use super::*;

/// A filter on members' paths.
type Keep<'k> = &'k (dyn Fn(&[u8]) -> bool + Sync);

impl<'a> Reader<'a> {
    /// The member whose header chain is at byte `pos`, read from the archive.
    pub(super) fn member_at(&self, pos: u64) -> Result<Entry<'_>> {
        self.read_at(u64::MAX, pos, None)
    }

    /// Hands every member, in archive order, to `f`. The embedded `.tarfs` member itself is not
    /// included. Returns how the scan ended when the archive was scanned.
    pub fn for_each(&self, mut f: impl FnMut(&Entry<'_>) -> Result<()>) -> Result<Option<ScanEnd>> {
        let path = self.archive.path();
        let Some(located) = &self.located else {
            // A compressed archive has no embedded index (Reader::open passes over none).
            let skip = crate::archive::embedded_of(self.archive).filter(|_| self.compression.is_none()).map(|e| e.member_position);
            let Some(bytes) = self.lent() else {
                return self.scan_stream(|e| if Some(e.position) == skip { Ok(()) } else { f(e) }).map(Some);
            };
            let mut scanner = Scanner::new(bytes, self.opts);
            for e in scanner.by_ref() {
                let e = e.map_err(|source| Error::Scan { path: path.to_path_buf(), source })?;
                if Some(e.position) == skip {
                    continue;
                }
                f(&e)?;
            }
            self.source.note_read(bytes.len() as u64);
            self.archive.check_intact()?;
            return Ok(scanner.end());
        };
        if let Source::Csv(name, at) = &located.source {
            // Rows are checked against their headers in the lent bytes; a source that reads in
            // pieces is scanned instead (a listing as right, the index unused).
            return match self.lent() {
                Some(bytes) => self.for_each_csv(bytes, name, *at, located.slice(self.archive), f).map(|()| None),
                None => self.scan_stream(f).map(Some),
            };
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
        if self.lent().is_none() {
            // Entries that need their header chain would need the stream read to them: read it
            // once, as a scan, unless the index alone describes every member.
            let data = located.slice(self.archive);
            if !tarfs::decoded_entries(data, self.entries).all(|e| e.is_simple()) {
                return self.scan_stream(f).map(Some);
            }
        }
        self.for_each_indexed(located, None, f)?;
        self.archive.check_intact()?;
        Ok(None)
    }

    /// Scans the archive's data once, as a stream from its start ([`Reader::stream`]).
    pub(super) fn scan_stream(&self, mut f: impl FnMut(&Entry<'_>) -> Result<()>) -> Result<ScanEnd> {
        let mut r = self.stream()?;
        let end = crate::stream::scan_stream(&mut r, self.archive.path(), self.opts, 1 << 20, |e| f(e))?;
        Ok(end.end)
    }

    /// Like [`Reader::for_each`], but only for members whose path `keep` accepts. Through a
    /// `.tarfs` index, a self-contained entry's path is judged on the entry alone, so members
    /// not kept cost no decoding and no archive access.
    pub fn for_each_path(&self, keep: impl Fn(&[u8]) -> bool + Sync, mut f: impl FnMut(&Entry<'_>) -> Result<()>) -> Result<()> {
        match &self.located {
            Some(located) if !self.ext && self.lent().is_some() && !matches!(located.source, Source::Csv(..)) => self.for_each_indexed(located, Some(&keep), f),
            _ => self.for_each(|e| if keep(&e.path()) { f(e) } else { Ok(()) }).map(drop),
        }
    }

    /// Members through a `.tarfs` index; with `keep`, only those whose path it accepts.
    pub(super) fn for_each_indexed(&self, located: &Located, keep: Option<Keep<'_>>, mut f: impl FnMut(&Entry<'_>) -> Result<()>) -> Result<()> {
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
}

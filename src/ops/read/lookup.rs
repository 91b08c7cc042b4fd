//! Members by name, and index entries by number, through the index's form; and the pieces of a
//! `.tarfs` index's extension data that the writers share with the reader (the extension
//! opened, an entry decoded from the index alone).

use super::*;

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
pub fn extension_of<'i>(located: &'i Located, archive: &'i dyn ArchiveFile) -> Option<Result<ext::Ext<'i>>> {
    let data = located.slice(archive);
    let header: &[u8; BLOCK] = data.get(..BLOCK)?.try_into().ok()?;
    let info = tarfs::decode_header(header).ok()?.info?;
    let range = tarfs::ext_range(data, &info)?;
    Some(ext::Ext::open(&data[range], header, info.entries).map_err(|e| Error::Index { index: located.path(archive), source: tarfs::IndexError::Extension(e) }))
}

/// Entry `i` of the index `located` (whose bytes are `data`, its extension `x`), with its
/// checksum checked, and the member it describes (from the extension record): what a scan
/// would yield for it, without reading the archive.
pub fn ext_entry<'s>(located: &Located, archive: &dyn ArchiveFile, x: &ext::Ext<'s>, data: &'s [u8], i: usize) -> Result<Entry<'s>> {
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

impl<'a> Reader<'a> {
    /// The members named `name` (as [`normalize_name`] compares names), in archive order. Through
    /// an index with extension data this is a binary search of its name table: a few dozen
    /// entries read whatever the index's size, and no archive bytes. Otherwise members are
    /// listed and compared.
    pub fn lookup(&self, name: &[u8]) -> Result<Vec<Entry<'_>>> {
        Ok(self.lookup_all(&[name])?.pop().unwrap_or_default())
    }

    /// [`Reader::lookup`] of each of `names`, with the index opened once for all.
    pub fn lookup_all(&self, names: &[&[u8]]) -> Result<Vec<Vec<Entry<'_>>>> {
        self.form.lookup_all(self, names)
    }

    /// [`Reader::lookup_all`] by listing the members and comparing their names.
    pub(super) fn lookup_by_listing(&self, names: &[&[u8]]) -> Result<Vec<Vec<Entry<'_>>>> {
        if self.lent().is_none() {
            // A scan's entries borrow its buffers, and reading one again means reading the
            // stream again.
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
        self.form.entries()
    }

    /// `f` of entry `i` of the index in use, which answers alone: decoded from the index alone,
    /// its checksum and its group's digest checked.
    pub fn indexed_entry<T>(&self, i: usize, f: impl FnOnce(&Entry<'_>) -> T) -> Result<T> {
        Ok(f(&self.form.entry(self, i)?))
    }

    /// The entry numbers of the members named `name`, in archive order, through the index in
    /// use, which answers alone (the sorted name table of a `.tarfs` extension).
    pub fn lookup_entries(&self, name: &[u8]) -> Result<Vec<usize>> {
        self.form.lookup_entries(self, name)
    }
}

//! A CSV index member (`.tarindex_N.csv`): each row checked against its member's header as the
//! members are listed, before any data is read.

use super::*;

/// The form of a reader through a CSV index member.
pub(crate) struct Csv {
    pub(super) located: Located,
}

impl Form for Csv {
    fn source(&self) -> Source {
        self.located.source.clone()
    }

    fn located(&self) -> Option<&Located> {
        Some(&self.located)
    }

    fn checked_when_listed(&self) -> bool {
        true
    }

    /// Rows are checked against their headers in the lent bytes; a source that reads in pieces
    /// is scanned instead (a listing as right, the index unused).
    fn for_each(&self, r: &Reader<'_>, f: &mut dyn FnMut(&Entry<'_>) -> Result<()>) -> Result<Option<ScanEnd>> {
        let Source::Csv(name, at) = &self.located.source else { unreachable!("a CSV form is made for a CSV index only") };
        match r.lent() {
            Some(bytes) => self.rows(r, bytes, name, *at, f).map(|()| None),
            None => r.scan_stream(f).map(Some),
        }
    }
}

impl Csv {
    /// Members through the CSV rows, in the archive's lent `bytes`. A row gives the name and
    /// the data's place; the main header is the block before the data, and must be a header of
    /// that size or that name.
    fn rows(&self, r: &Reader<'_>, bytes: &[u8], name: &str, index_at: u64, f: &mut dyn FnMut(&Entry<'_>) -> Result<()>) -> Result<()> {
        let data = self.located.slice(r.archive);
        let rows = crate::format::csv::decode(data).map_err(|source| Error::Index { index: r.archive.path().to_path_buf(), source: tarfs::IndexError::Csv { name: name.to_string(), source } })?;
        // The pax global headers met so far: a member's attributes depend on them.
        let mut globals = crate::format::pax::Globals::default();
        let mut prev_end = 0u64;
        for (i, row) in rows.iter().enumerate() {
            let data_offset = row.start_block.saturating_mul(BLOCK_U64);
            // The member's header chain starts where the previous row's data ends (extension
            // headers, sparse maps and pax globals come between); a writer that pads with an
            // extra block leaves the header just before the data. Where the previous member's
            // data really ends, as its header says, not as the row says: a damaged `blocks`
            // column could otherwise start the chain past an extension header and list the
            // member without it.
            let from = prev_end;
            let at = data_offset.saturating_sub(BLOCK_U64);
            let bad = |msg: &str| r.mismatch(Some(i as u64), at, &row.name, &format!("{name} row {}: {msg}", i + 1));
            if row.start_block == 0 || data_offset.saturating_add(row.size) > r.archive.len() {
                return Err(bad("the row's data is outside the archive"));
            }
            let mut seen = Vec::new();
            let mut found = |start: u64| {
                let mut sc = Scanner::window(bytes, start, r.opts, false, globals.as_slice());
                match sc.next() {
                    Some(Ok(e)) if e.data_offset == data_offset => {
                        seen = sc.global_ranges().to_vec();
                        Some(e)
                    }
                    _ => None,
                }
            };
            let Some(mut e) = found(from).or_else(|| found(at)) else {
                return Err(bad("no member header leads to the row's data"));
            };
            // Both the name and the size: a member renamed in place (same length, checksum
            // fixed) after the index was written has the row's size but another name.
            if normalize_name(&e.path()) != normalize_name(&row.name) || e.stored_size != row.size {
                return Err(bad(&format!("the header there is another member's ({}, {} bytes): the CSV index is stale", crate::quote::diag(&e.path()), e.stored_size)));
            }
            prev_end = e.data_offset.saturating_add(crate::format::header::round_up(e.stored_size).unwrap_or(u64::MAX));
            e.pax.path = Some(&row.name);
            f(&e)?;
            for &(at, len) in &seen {
                globals.add(&bytes[at as usize..(at + len) as usize], r.opts.limits.max_metadata).map_err(|err| bad(&format!("its pax global headers: {err}")))?;
            }
        }
        // The index member itself, which its own rows cannot list.
        match Scanner::window(bytes, index_at, r.opts, false, globals.as_slice()).next() {
            Some(Ok(e)) => f(&e),
            _ => Err(r.mismatch(Some(rows.len() as u64), index_at, name.as_bytes(), "the CSV index member no longer decodes")),
        }
    }
}

//! One member's header chain read again at its place and compared with the index, and its
//! data written out through the byte source.

use super::*;

impl<'a> Reader<'a> {
    /// Re-reads `e`'s header chain from the archive at its position, and checks that it is the
    /// member the index described. Use before reading data. (Members listed through a CSV index
    /// were checked against their header as they were listed.)
    pub fn checked<'s>(&'s self, e: &Entry<'s>) -> Result<Entry<'s>> {
        if self.form.checked_when_listed() {
            return Ok(*e);
        }
        let found = if e.has_globals {
            // Pax globals that set attributes apply: the chain means what it means only after
            // them, so follow the archive from its start (rare: `git archive` globals set none).
            self.source.note_read(e.data_offset);
            let mut scanner = Scanner::new(self.lent().ok_or_else(|| self.not_lent("a member after pax globals"))?, self.opts);
            match scanner.find(|x| x.as_ref().map_or(true, |x| x.position >= e.position)) {
                Some(Ok(x)) if x.position == e.position => x,
                _ => return Err(self.mismatch(None, e.position, &e.path(), "no member starts there")),
            }
        } else {
            self.read_at(None, e.position, None)?
        };
        if fingerprint(&found, 0) != fingerprint(e, 0) {
            return Err(self.mismatch(None, e.position, &e.path(), "the header there is another member's"));
        }
        Ok(found)
    }

    /// The member whose header chain starts at `pos`, in the lent bytes, compared with index
    /// entry `ie` (number `entry`) when one is given.
    pub(super) fn read_at(&self, entry: Option<u64>, pos: u64, ie: Option<&IndexEntry<'_>>) -> Result<Entry<'_>> {
        let name = || ie.map(|i| String::from_utf8_lossy(HeaderView::new(i.as_bytes()).name()).into_owned()).unwrap_or_default();
        if pos >= self.archive.len() {
            return Err(self.mismatch(entry, pos, name().as_bytes(), "position is past the end of the archive"));
        }
        let bytes = self.lent().ok_or_else(|| self.not_lent("a header chain read at its place"))?;
        let found = match Scanner::at(bytes, pos, self.opts).next() {
            Some(Ok(e)) => e,
            Some(Err(err)) => return Err(self.mismatch(entry, pos, name().as_bytes(), &format!("no member there ({})", err.kind))),
            None => return Err(self.mismatch(entry, pos, name().as_bytes(), "no member there (end of archive)")),
        };
        self.source.note_read(found.data_offset - pos);
        if let Some(ie) = ie {
            if found.position != pos || !ie.matches_header(found.header.as_bytes()) {
                return Err(self.mismatch(entry, pos, name().as_bytes(), "the header there differs from the index entry"));
            }
            if ie.chain_blocks().is_some_and(|c| c != found.chain_blocks()) {
                return Err(self.mismatch(entry, pos, name().as_bytes(), "the header chain there has another length"));
            }
        }
        Ok(found)
    }

    /// Writes member `e`'s logical contents (sparse holes expanded) to `out`, after checking
    /// that its header chain in the archive is the one the index described.
    ///
    /// Plain and compressed archives alike are read through the reader's [`ByteSource`] (a
    /// mapping's reads borrow its pages): the header chain and the first of the data in one
    /// window, then the data in pieces. Only a member after pax global headers is checked by
    /// following the archive from its start ([`Reader::checked`]), in a plain archive.
    pub fn write_unchecked(&self, e: &Entry<'_>, out: &mut dyn Write) -> Result<()> {
        if let Some(bytes) = self.lent().filter(|_| e.has_globals) {
            let found = self.checked(e)?;
            write_data(bytes, self.archive.path(), &found, &self.opts, out)?;
            // Bytes read from a page the file no longer has were zeros: an error, not data.
            return self.archive.check_intact();
        }
        self.write_through_source(e, out)?;
        match self.compression {
            None => self.archive.check_intact(),
            Some(_) => Ok(()),
        }
    }

    /// [`Reader::write_member`] through the byte source.
    pub(super) fn write_through_source(&self, e: &Entry<'_>, out: &mut dyn Write) -> Result<()> {
        let path = self.archive.path();
        let io_in = |source: std::io::Error| Error::Io { path: path.to_path_buf(), source };
        let io_out = |source| Error::Io { path: PathBuf::from("-"), source };
        let chain_len = e.data_offset - e.position;
        // The chain, and the first of the data with it (a window of at least two blocks, as
        // the scanner wants before it trusts a header).
        let first = e.stored_size.clamp(2 * BLOCK_U64, 1 << 20);
        let want = chain_len + first;
        let head = self.source.read_at(e.position, want as usize).map_err(io_in)?;
        // A window cut short by the end of the data is all there is.
        let mut sc = Scanner::window(&head, 0, self.opts, head.len() as u64 == want, &[]);
        let found = match sc.step() {
            Ok(Step::Entry(f)) => f,
            Ok(Step::NeedData { .. }) => return Err(self.mismatch(None, e.position, &e.path(), "no member there (more input needed)")),
            Err(err) => return Err(self.mismatch(None, e.position, &e.path(), &format!("no member there ({})", err.kind))),
            Ok(Step::End(_)) => return Err(self.mismatch(None, e.position, &e.path(), "no member there (end of archive)")),
        };
        // Read alone, a chain after pax globals lacks what they set: its fields without them.
        let same = found.position == 0
            && found.data_offset == chain_len
            && match e.has_globals {
                true => layout::chain_fingerprint(&found, e.position) == layout::chain_fingerprint(e, 0),
                false => fingerprint(&found, e.position) == fingerprint(e, 0),
            };
        if !same {
            return Err(self.mismatch(None, e.position, &e.path(), "the header there is another member's"));
        }
        let mut x = Expander::new(&found, &self.opts, path)?;
        if x.stored() > found.stored_size {
            return Err(Error::Data { path: path.to_path_buf(), offset: e.header_offset, problem: DataProblem::SparseShort { needs: x.stored(), stores: found.stored_size } });
        }
        let end = e.data_offset + e.stored_size;
        let short = || Error::Data { path: path.to_path_buf(), offset: e.position, problem: DataProblem::EndsInData };
        let in_head = &head[chain_len as usize..];
        let take = (in_head.len() as u64).min(e.stored_size) as usize;
        x.feed(&in_head[..take], out).map_err(io_out)?;
        let mut at = e.data_offset + take as u64;
        if take as u64 != e.stored_size && in_head.len() as u64 > take as u64 {
            return Err(short());
        }
        // A mapping lends the rest at once; other sources give it in pieces of 1 MiB.
        let most = if self.source.as_slice().is_some() { u64::MAX } else { 1 << 20 };
        while at < end {
            let n = usize::try_from((end - at).min(most)).unwrap_or(usize::MAX);
            let piece = self.source.read_at(at, n).map_err(io_in)?;
            if piece.len() < n {
                return Err(short());
            }
            x.feed(&piece, out).map_err(io_out)?;
            at += n as u64;
        }
        x.finish(out).map_err(io_out)
    }

    /// `len` bytes of the archive's (decompressed) data at `offset`, from the reader's byte
    /// source: the mapping, or the seek points or decoder of a compressed archive.
    pub fn bytes_at(&self, offset: u64, len: usize) -> std::io::Result<Cow<'_, [u8]>> {
        self.source.read_at(offset, len)
    }

    /// The typed error for a member at `offset` (index entry `entry`, named `name`) that is
    /// not what the index says.
    pub(super) fn mismatch(&self, entry: Option<u64>, offset: u64, name: &[u8], msg: &str) -> Error {
        Error::Mismatch {
            path: self.archive.path().to_path_buf(),
            entry,
            name: crate::quote::diag(name),
            offset,
            msg: msg.to_string(),
        }
    }
}

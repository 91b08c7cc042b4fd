//! The index's member digests (issue #36), as the reader finds and checks them: `cat`,
//! `extract`, the mount and `scrub` compare what they read with them.

use super::*;
use crate::digest::{Checker, Mismatch};
use crate::format::digests::{Found, View};

impl<'a> Reader<'a> {
    /// Checks members' content against the index's digests (`true`, the default) or not.
    pub fn set_verify(&mut self, on: bool) {
        self.verify = on;
    }

    /// The member digests of the index in use, if it has them. Errors name the index.
    pub fn digests(&self) -> Result<Option<View<'_>>> {
        // A CSV index member records no digests; only a `.tarfs` index can.
        if matches!(self.form.source(), Source::Csv(..)) {
            return Ok(None);
        }
        let Some(bytes) = self.index_bytes() else { return Ok(None) };
        let at = self.digests_at.get_or_init(|| crate::format::digests::of_index(bytes));
        let part = match at {
            Ok(Some(w)) => w.bytes(bytes).unwrap_or_default(),
            Ok(None) => return Ok(None),
            Err(e) => return Err(self.index_error(e.clone())),
        };
        View::open(part, self.form.entries() as u64).map(Some).map_err(|e| self.index_error(e.into()))
    }

    fn index_error(&self, source: crate::format::tarfs::IndexError) -> Error {
        let index = self.form.located().map(|l| l.path(self.archive)).unwrap_or_else(|| self.archive.path().to_path_buf());
        Error::Index { index, source }
    }

    /// The digests recorded for member `e`, where the reader checks content and the index has
    /// them.
    pub fn expected<'s>(&'s self, view: Option<&View<'s>>, e: &Entry<'_>) -> Option<Found<'s>> {
        self.digest_of(view.filter(|_| self.verify)?, e)
    }

    /// The digests `view` (the index's) records for member `e`.
    pub fn digest_of<'s>(&self, view: &View<'s>, e: &Entry<'_>) -> Option<Found<'s>> {
        self.digest_at(view, e.position)
    }

    /// The digests `view` records for the member whose header chain is at `position`.
    pub fn digest_at<'s>(&self, view: &View<'s>, position: u64) -> Option<Found<'s>> {
        let base = self.form.located().map_or(0, |l| l.base);
        view.find(position.checked_sub(base)?)
    }

    /// The error for member `e`, whose content differs from its digests as `m` says.
    pub fn damaged(&self, e: &Entry<'_>, m: &Mismatch) -> Error {
        Error::Damaged { path: self.archive.path().to_path_buf(), name: crate::quote::diag(&e.path()), range: m.range.clone() }
    }
}

impl Reader<'_> {
    /// Writes member `e`'s logical content to `out` (see [`Reader::write_unchecked`]); where the
    /// index has digests and the reader checks them, only content whose digest holds (a large
    /// member chunk by chunk), else [`Error::Damaged`].
    pub fn write_member(&self, e: &Entry<'_>, out: &mut dyn Write) -> Result<()> {
        let view = self.digests()?;
        let Some(found) = self.expected(view.as_ref(), e) else { return self.write_unchecked(e, out) };
        let mut c = Checker::new(found, out);
        let written = self.write_unchecked(e, &mut c).and_then(|()| c.finish().map_err(|source| Error::Io { path: PathBuf::from("-"), source }));
        match written {
            Err(Error::Io { path, source }) => match Mismatch::of_io(&source) {
                Some(m) => Err(self.damaged(e, &m)),
                None => Err(Error::Io { path, source }),
            },
            other => other,
        }
    }
}

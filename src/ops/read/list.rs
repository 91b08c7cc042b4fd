//! Every member in archive order, through the index's form ([`form::Form`]): a `.tarfs` index,
//! its extension, a CSV index, or a scan of the archive (its mapping, or the decoded stream of
//! a compressed one).

use super::*;

impl<'a> Reader<'a> {
    /// The member whose header chain is at byte `pos`, read from the archive.
    pub(super) fn member_at(&self, pos: u64) -> Result<Entry<'_>> {
        self.read_at(None, pos, None)
    }

    /// Hands every member, in archive order, to `f`. The embedded `.tarfs` member itself is not
    /// included. Returns how the scan ended when the archive was scanned.
    pub fn for_each(&self, mut f: impl FnMut(&Entry<'_>) -> Result<()>) -> Result<Option<ScanEnd>> {
        self.form.for_each(self, &mut f)
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
        self.form.for_each_path(self, &keep, &mut f)
    }
}

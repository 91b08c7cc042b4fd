//! Index forms: how the index in use answers for the archive's members.
//!
//! A [`Reader`] holds one [`Form`]: a scan (no index), a `.tarfs` index of version 1.0 (with or
//! without its extension data), or a CSV index member. The form lists the members, finds them
//! by name, gives entry `i`, and says whether it answers from the index alone; the reader
//! around it owns the archive, its byte source, the verdict's notes, and the reading of one
//! member at its place. [`open`] is the one table that picks the form for an index found: by
//! where it was found and, for a `.tarfs` index, by its version. A new form (a compact index)
//! is one new file here and one arm in [`open`].

mod csv;
mod scan;
mod v1;
mod v2;

use super::*;

pub(crate) use scan::Scan;
pub(crate) use v2::keep as keep_v2;
pub(crate) use v2::grown as grown_v2;

/// A filter on members' paths.
pub(crate) type Keep<'k> = &'k (dyn Fn(&[u8]) -> bool + Sync);

/// The members, as one form of index answers for them. Every method is given the reader that
/// holds the form, for the archive and its byte source.
pub(crate) trait Form: Send + Sync {
    /// Which index answers ([`Source::Scan`] for none).
    fn source(&self) -> Source;

    /// Where the index in use is, if there is one.
    fn located(&self) -> Option<&Located>;

    /// The number of numbered entries (0 for a form whose members have no numbers).
    fn entries(&self) -> usize {
        0
    }

    /// Whether listing and lookup are answered from the index alone, without archive bytes,
    /// and [`Form::entry`] gives any entry at random.
    fn answers_alone(&self) -> bool {
        false
    }

    /// Whether the archive has pax global headers that set attributes, which a header chain
    /// read alone would be read without.
    fn has_globals(&self) -> bool {
        false
    }

    /// Whether each member was checked against its header as it was listed, so that
    /// [`Reader::checked`] need not read the header chain again.
    fn checked_when_listed(&self) -> bool {
        false
    }

    /// Hands every member, in archive order, to `f`; how the scan ended where the archive was
    /// scanned.
    fn for_each(&self, r: &Reader<'_>, f: &mut dyn FnMut(&Entry<'_>) -> Result<()>) -> Result<Option<ScanEnd>>;

    /// [`Form::for_each`] of the members whose path `keep` accepts.
    fn for_each_path(&self, r: &Reader<'_>, keep: Keep<'_>, f: &mut dyn FnMut(&Entry<'_>) -> Result<()>) -> Result<()> {
        self.for_each(r, &mut |e| if keep(&e.path()) { f(e) } else { Ok(()) }).map(drop)
    }

    /// The members named by each of `names` (as [`normalize_name`] compares names), in archive
    /// order: by default, found by listing.
    fn lookup_all<'s>(&'s self, r: &'s Reader<'_>, names: &[&[u8]]) -> Result<Vec<Vec<Entry<'s>>>> {
        r.lookup_by_listing(names)
    }

    /// Entry `i`, where the form [answers alone](Form::answers_alone).
    fn entry<'s>(&'s self, r: &'s Reader<'_>, i: usize) -> Result<Entry<'s>> {
        Err(Error::NotFound { path: r.archive.path().to_path_buf(), name: format!("index entry {i}") })
    }

    /// The entry numbers of the members named `name`, where the form answers alone.
    fn lookup_entries(&self, r: &Reader<'_>, name: &[u8]) -> Result<Vec<usize>> {
        Err(Error::NotFound { path: r.archive.path().to_path_buf(), name: crate::quote::diag(name) })
    }

    /// For one pass over a stream that wants the members whose path `wanted` accepts: the last
    /// position such a member has, where the index alone tells (`Some(0)`: none has), so the
    /// pass may stop after it. `None` where the index cannot tell.
    fn stop_after(&self, _r: &Reader<'_>, _wanted: &dyn Fn(&[u8]) -> bool) -> Option<u64> {
        None
    }
}

/// The reader `r` (opened as a scan) through the index `located`, in the form the index has, if
/// its verdict lets it answer; else the typed refusal. The one table of forms.
pub(super) fn open(r: Reader<'_>, located: Located) -> std::result::Result<Reader<'_>, Box<Refusal>> {
    if matches!(located.source, Source::Csv(..)) {
        return Ok(r.answering(Box::new(csv::Csv { located })));
    }
    let refuse = |why| Err(Box::new(Refusal { source: located.source.clone(), verdict: Verdict::Corrupt(Corruption::Decode(why)) }));
    match tarfs::version_of(located.slice(r.archive)) {
        Ok((1, _)) => v1::open(r, located),
        Ok((2, _)) => v2::open(r, located),
        Ok((major, minor)) => refuse(tarfs::IndexError::UnsupportedVersion(major, minor)),
        Err(why) => refuse(why),
    }
}

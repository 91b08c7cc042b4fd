//! Checking a v2.0 `.tarfs` index ([`crate::format::v2`]) against its plain archive: the
//! verdict first, then every entry paired with the member the archive has at its place, by
//! position and [`fingerprint`], and every entry found by its path through the hash table.

use crate::archive::ArchiveFile;
use crate::error::{Error, Result};
use crate::format::tarfs::{self, IndexError};
use crate::ops::filter::Filter;
use crate::ops::read::{fingerprint, Located, Reader};
use crate::ops::verify::VerifyReport;
use crate::scan::ScanOptions;

/// Verifies the v2 index `located` of the plain archive `archive`; `each_member` walks the
/// archive.
pub(crate) fn verify_v2(archive: &dyn ArchiveFile, located: &Located, opts: ScanOptions, each_member: impl FnOnce(&mut dyn FnMut(&crate::scan::Entry<'_>) -> Result<()>) -> Result<()>) -> Result<VerifyReport> {
    let path = archive.path().to_path_buf();
    let reader = Reader::with_subset_index(archive, located.clone(), opts).map_err(|refusal| Error::IndexRefused { path: path.clone(), refusal })?;
    let (subset, filter) = subset_of(located.slice(archive)).map_err(|source| Error::Index { index: located.path(archive), source })?;
    let mut listed = Vec::new();
    reader.for_each(|e| {
        listed.push((e.position, fingerprint(e, 0), e.path().into_owned()));
        Ok(())
    })?;
    let mismatch = |entry: usize, offset: u64, name: &[u8], msg: &str| Error::Mismatch { path: path.clone(), entry: Some(entry as u64), name: crate::quote::diag(name), offset, msg: msg.to_string() };
    for (i, (pos, _, name)) in listed.iter().enumerate() {
        if !reader.lookup_entries(name)?.contains(&i) {
            return Err(mismatch(i, *pos, name, "the index's hash table does not find this entry by its path"));
        }
    }
    let skip = crate::archive::embedded_of(archive).map(|e| e.member_position);
    let (mut k, mut members) = (0, 0u64);
    each_member(&mut |e| {
        if Some(e.position) == skip {
            return Ok(());
        }
        let selected = match (&filter, subset) {
            (Some(f), _) => f.matches(&e.path()),
            (None, true) => listed.get(k).is_some_and(|l| l.0 == e.position),
            (None, false) => true,
        };
        members += 1;
        if !selected {
            return Ok(());
        }
        let Some((pos, fp, name)) = listed.get(k) else {
            return Err(Error::Mismatch { path: path.clone(), entry: None, name: crate::quote::diag(&e.path()), offset: e.position, msg: "this member is not in the index (it lists fewer)".into() });
        };
        if *pos != e.position || *fp != fingerprint(e, 0) {
            return Err(mismatch(k, *pos, name, &format!("the index's entry does not describe the member at byte {} ({})", e.position, crate::quote::diag(&e.path()))));
        }
        k += 1;
        Ok(())
    })?;
    if let Some((pos, _, name)) = listed.get(k) {
        return Err(mismatch(k, *pos, name, "the archive has no member here: the index lists more members than it has"));
    }
    Ok(VerifyReport { source: located.source.clone(), entries: listed.len() as u64, members, subset, uncovered: 0 })
}

/// Whether the index whose bytes are `data` is a subset index, and the filter it records.
fn subset_of(data: &[u8]) -> std::result::Result<(bool, Option<Filter>), IndexError> {
    let header = data.get(..crate::format::header::BLOCK).ok_or(IndexError::NoMagic)?;
    let info = tarfs::decode_header_as(header.try_into().expect("one block"), 2)?.info.ok_or(IndexError::NoVersion)?;
    let subset = info.flags & tarfs::FLAG_SUBSET != 0;
    let filter = match (&info.filter, subset) {
        (Some(text), true) => Filter::parse(text)?,
        _ => None,
    };
    Ok((subset, filter))
}

//! No index: the archive is scanned, from its lent bytes or as a stream.

use super::*;

/// The form of a reader without an index: every listing is a scan.
pub(crate) struct Scan;

impl Form for Scan {
    fn source(&self) -> Source {
        Source::Scan
    }

    fn located(&self) -> Option<&Located> {
        None
    }

    /// The embedded `.tarfs` member itself (of an archive whose index was passed over) is not
    /// listed.
    fn for_each(&self, r: &Reader<'_>, f: &mut dyn FnMut(&Entry<'_>) -> Result<()>) -> Result<Option<ScanEnd>> {
        // A compressed archive has no embedded index (Reader::open passes over none).
        let skip = crate::archive::embedded_of(r.archive).filter(|_| r.compression.is_none()).map(|e| e.member_position);
        let Some(bytes) = r.lent() else {
            return r.scan_stream(|e| if Some(e.position) == skip { Ok(()) } else { f(e) }).map(Some);
        };
        let mut scanner = Scanner::new(bytes, r.opts);
        for e in scanner.by_ref() {
            let e = e.map_err(|source| Error::Scan { path: r.archive.path().to_path_buf(), source })?;
            if Some(e.position) == skip {
                continue;
            }
            f(&e)?;
        }
        r.source.note_read(bytes.len() as u64);
        r.archive.check_intact()?;
        Ok(scanner.end())
    }
}

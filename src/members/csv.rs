//! [`super::MemberIndex`] over a CSV index member (`.tarindex_N.csv`): its rows, each checked
//! against the member header its data offset leads to. A CSV row is read in archive order
//! (each row's header is found from the previous member's end), so the rows are listed as
//! [`crate::ops::read::Reader::for_each`] lists them, as a listing in order is
//! ([`super::ScanIndex`]).

use std::sync::Arc;

use super::scan::ScanIndex;
use super::{Member, MemberIndex, Paths};
use crate::error::Result;
use crate::ops::owned::OwnedReader;
use crate::ops::read::Source;

/// The members a CSV index member lists (and the index member itself, last).
pub struct CsvIndex(ScanIndex);

impl CsvIndex {
    /// Over the CSV index `reader` uses.
    pub fn new(reader: Arc<OwnedReader>) -> CsvIndex {
        debug_assert!(matches!(reader.reader().source(), Source::Csv(..)));
        CsvIndex(ScanIndex::new(reader))
    }
}

impl MemberIndex for CsvIndex {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn get(&self, i: usize) -> Result<Member> {
        self.0.get(i)
    }

    fn for_each(&self, f: &mut dyn FnMut(usize, &Member) -> Result<()>) -> Result<()> {
        self.0.for_each(f)
    }

    fn source(&self) -> Source {
        self.0.source()
    }

    fn paths(&self) -> Result<&Paths> {
        self.0.paths()
    }
}

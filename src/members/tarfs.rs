//! [`super::MemberIndex`] over a `.tarfs` index with extension data: each member decoded on
//! demand from the index alone, no archive bytes read.

use std::sync::Arc;

use super::{LazyPaths, Member, MemberIndex, Paths};
use crate::error::Result;
use crate::ops::owned::OwnedReader;
use crate::ops::read::Source;

/// The members of a `.tarfs` index with extension data.
pub struct TarfsIndex {
    reader: Arc<OwnedReader>,
    paths: LazyPaths,
}

impl TarfsIndex {
    /// Over the index `reader` uses, which must have extension data
    /// ([`crate::ops::read::Reader::reads_members_alone`]).
    pub fn new(reader: Arc<OwnedReader>) -> TarfsIndex {
        TarfsIndex { reader, paths: LazyPaths::default() }
    }
}

impl MemberIndex for TarfsIndex {
    fn len(&self) -> usize {
        self.reader.reader().indexed_entries()
    }

    fn get(&self, i: usize) -> Result<Member> {
        self.reader.reader().indexed_entry(i, Member::of)
    }

    fn for_each(&self, f: &mut dyn FnMut(usize, &Member) -> Result<()>) -> Result<()> {
        super::list(self.reader.reader(), f)
    }

    /// Through the index's sorted name table: a binary search.
    fn lookup(&self, path: &[u8]) -> Result<Vec<usize>> {
        self.reader.reader().lookup_entries(path)
    }

    fn source(&self) -> Source {
        self.reader.reader().source()
    }

    fn paths(&self) -> Result<&Paths> {
        self.paths.get_or(|| {
            let mut names = Vec::with_capacity(self.len());
            self.for_each(&mut |_, m| {
                names.push(m.path.clone());
                Ok(())
            })?;
            Ok(Paths::of(names.iter().map(Vec::as_slice)))
        })
    }
}

//! [`super::MemberIndex`] over members listed in archive order: a scan of an archive with no
//! usable index, or a `.tarfs` index without extension data (whose entries need the archive's
//! header chains to become members). [`MemberIndex::for_each`] streams them through the reader;
//! random access ([`MemberIndex::get`], [`MemberIndex::len`]) lists them once and keeps them.

use std::sync::{Arc, OnceLock};

use super::{LazyPaths, Member, MemberIndex, Paths};
use crate::error::{Error, Result};
use crate::ops::owned::OwnedReader;
use crate::ops::read::Source;

/// Members listed in archive order.
pub struct ScanIndex {
    reader: Arc<OwnedReader>,
    members: OnceLock<Vec<Member>>,
    paths: LazyPaths,
}

impl ScanIndex {
    /// Over the members `reader` lists (through its index, or a scan).
    pub fn new(reader: Arc<OwnedReader>) -> ScanIndex {
        ScanIndex { reader, members: OnceLock::new(), paths: LazyPaths::default() }
    }

    /// The members, listed on first use.
    pub fn members(&self) -> Result<&[Member]> {
        if let Some(m) = self.members.get() {
            return Ok(m);
        }
        let mut members = Vec::new();
        self.stream(&mut |_, m| {
            members.push(m.clone());
            Ok(())
        })?;
        Ok(self.members.get_or_init(|| members))
    }

    fn stream(&self, f: &mut dyn FnMut(usize, &Member) -> Result<()>) -> Result<()> {
        super::list(self.reader.reader(), f)
    }
}

impl MemberIndex for ScanIndex {
    fn len(&self) -> usize {
        self.members().map_or(0, <[Member]>::len)
    }

    fn get(&self, i: usize) -> Result<Member> {
        let path = || self.reader.reader().archive().path().to_path_buf();
        self.members()?.get(i).cloned().ok_or_else(|| Error::NotFound { path: path(), name: format!("member {i}") })
    }

    fn for_each(&self, f: &mut dyn FnMut(usize, &Member) -> Result<()>) -> Result<()> {
        match self.members.get() {
            Some(m) => m.iter().enumerate().try_for_each(|(i, m)| f(i, m)),
            None => self.stream(f),
        }
    }

    fn source(&self) -> Source {
        self.reader.reader().source()
    }

    fn paths(&self) -> Result<&Paths> {
        self.paths.get_or(|| Ok(Paths::of(self.members()?.iter().map(|m| m.path.as_slice()))))
    }
}

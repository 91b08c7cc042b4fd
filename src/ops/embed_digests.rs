//! Member digests in an embedded index (`embed --digests`, issue #36): each member's content
//! hashed where it is now, before anything moves, and recorded in the new index at its position
//! after the embed ([`Digests::part`]).
//!
//! The digests part's length depends only on the members' sizes (a 48-byte record each, and 32
//! bytes per 4 MiB chunk of the larger ones), not on where they end up, so the planner counts it
//! in the index's length ([`Digests::part_len`]) before it knows the positions.

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;

use crate::error::{DataProblem, Error, Result};
use crate::format::digests::{MemberDigest, Table, HEAD, RECORD};
use crate::scan::{ScanOptions, Scanner};

/// Each member's digests, by the position of its header chain in the archive now.
#[derive(Debug, Default)]
pub(crate) struct Digests {
    by_position: HashMap<u64, MemberDigest>,
    /// The encoded part's length.
    len: usize,
}

impl Digests {
    /// The digests of the members whose header chains start at `positions` in `bytes` (the
    /// archive at `path`), hashed on every core.
    pub(crate) fn of(path: &Path, bytes: &[u8], positions: &[u64], scan: ScanOptions) -> Result<Digests> {
        let by_position: HashMap<u64, MemberDigest> = positions
            .par_iter()
            .with_max_len(1)
            .map(|&at| {
                let unreadable = || Error::Data { path: path.to_path_buf(), offset: at, problem: DataProblem::EndsInData };
                let e = Scanner::at(bytes, at, scan).next().ok_or_else(unreadable)?.map_err(|e| Error::Scan { path: path.to_path_buf(), source: e })?;
                let d = crate::ops::digests::of_mapped(&e, &scan, bytes).ok_or_else(unreadable)?;
                Ok((at, d))
            })
            .collect::<Result<_>>()?;
        // A record a member, and 32 bytes a chunk digest, after the part's head.
        let chunks: usize = by_position.values().map(|d| d.chunks.len()).sum();
        let len = HEAD + RECORD * by_position.len() + 32 * chunks;
        Ok(Digests { by_position, len })
    }

    /// The encoded part's length, wherever the members go.
    pub(crate) fn part_len(&self) -> usize {
        self.len
    }

    /// The encoded part for the members of `order`: each one's position in the new index and
    /// its position now.
    pub(crate) fn part(&self, order: impl Iterator<Item = (u64, u64)>) -> Vec<u8> {
        let mut t = Table::default();
        for (new, now) in order {
            if let Some(d) = self.by_position.get(&now) {
                t.push(new, d);
            }
        }
        t.encode()
    }
}

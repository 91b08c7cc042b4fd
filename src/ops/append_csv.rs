//! Appending a CSV index member (`.tarindex_N.csv`) to an archive in place.
//!
//! The member lists every member before it (earlier CSV indexes and a `.tarfs` member included),
//! and a fresh end-of-archive marker follows it. Write order, for crash safety:
//!
//! 1. the member's blocks but its first, and the new end marker, past the old end marker's first
//!    block; fsync;
//! 2. the one block that links them in (the member's header, or the pax header naming it when
//!    the archive has pax global headers), over the old end marker's first block; fsync.
//!
//! Until step 2 completes, every tar reader still stops at the old end marker's first zero block,
//! so the archive lists exactly as before. The archive's lock is held throughout, and a journal
//! (see [`crate::ops::journal`]) lets the next run, or `tarfs recover`, undo an interrupted
//! append byte for byte, or finish one whose header was already written.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::archive::Archive;
use crate::error::{Error, IoContext, Result};
use crate::format::csv::{self, Row};
use crate::format::header::{round_up, UstarFields, BLOCK, BLOCK_U64};
use crate::format::pax::push_record;
use crate::ops::crash;
use crate::ops::journal::{self, Journal};
use crate::ops::in_place::{begin, check_end};
use crate::scan::{ScanOptions, Scanner};

/// What appending did.
#[derive(Debug, Clone)]
pub struct CsvReport {
    /// The new member's name.
    pub name: String,
    /// Rows written (members before it).
    pub rows: u64,
    /// Byte offset of the new member's header.
    pub offset: u64,
    /// Bytes written to the archive.
    pub bytes_written: u64,
}

/// How to append.
#[derive(Debug, Clone, Copy, Default)]
pub struct CsvOptions {
    /// Scanner options.
    pub scan: ScanOptions,
    /// Skip the archive when its last member is already a CSV index of everything before it.
    /// Without this, every call appends a new index (listing the earlier ones), as the seed's
    /// library does.
    pub skip_fresh: bool,
    /// Work out what would be done, and write nothing.
    pub dry_run: bool,
}

/// What [`append_csv_index`] did.
#[derive(Debug, Clone)]
pub enum CsvOutcome {
    /// A member was appended (or, in a dry run, would be).
    Appended(CsvReport),
    /// The last member is already a CSV index listing every member before it.
    Fresh {
        /// Its name.
        name: String,
        /// Its rows.
        rows: u64,
    },
}

/// Appends a `.tarindex_N.csv` member to the archive at `path`.
pub fn append_csv_index(path: &Path, opts: CsvOptions) -> Result<CsvOutcome> {
    let _lock = begin(path, "csv", opts.dry_run)?;
    let archive = Archive::open(path)?;
    let mut last_index = None;
    let mut rows = Vec::new();
    let mut next = 0u32;
    let mut scanner = Scanner::new(archive.bytes(), opts.scan);
    for e in scanner.by_ref() {
        let e = e.map_err(|source| Error::Scan { path: path.to_path_buf(), source })?;
        let name = e.path();
        last_index = csv::index_number(&name).map(|_| (String::from_utf8_lossy(&name).into_owned(), e.data_offset as usize..(e.data_offset + e.stored_size) as usize));
        if let Some(n) = csv::index_number(&name) {
            next = next.max(n.saturating_add(1));
        }
        rows.push(Row::new(&name, e.stored_size, e.data_offset));
    }
    if let Some((name, range)) = last_index.filter(|_| opts.skip_fresh) {
        if csv::decode(&archive.bytes()[range]).is_ok_and(|r| r == rows[..rows.len() - 1]) {
            return Ok(CsvOutcome::Fresh { name, rows: rows.len() as u64 - 1 });
        }
    }
    let end = scanner.end().expect("scan finished");
    check_end(path, archive.bytes(), &end, opts.scan.lenient)?;
    let name = csv::member_name(next);
    let data = csv::encode(&rows);
    let mtime = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let fields = UstarFields { path: name.as_bytes(), mode: 0o644, size: data.len() as u64, mtime, typeflag: b'0', ..Default::default() };
    // The new member's blocks: with pax global headers in force (which GNU tar and Python apply,
    // `path` included), a local pax header that names the member; then its header, its data and
    // a new end marker.
    let mut member = Vec::new();
    if end.has_globals {
        let mut pax = Vec::new();
        push_record(&mut pax, b"path", name.as_bytes());
        member.extend_from_slice(&UstarFields { path: b"PaxHeaders/tarindex", mode: 0o644, size: pax.len() as u64, typeflag: b'x', ..Default::default() }.encode());
        member.extend_from_slice(&pax);
        member.resize(round_up(member.len() as u64).expect("small") as usize, 0);
    }
    member.extend_from_slice(&fields.encode());
    member.extend_from_slice(&data);
    member.resize(round_up(member.len() as u64).expect("index fits") as usize + 2 * BLOCK, 0);
    let (first, rest) = member.split_at(BLOCK);
    let first: [u8; BLOCK] = first.try_into().expect("one block");
    let at = end.end_offset;
    if opts.dry_run {
        return Ok(CsvOutcome::Appended(CsvReport { name, rows: rows.len() as u64, offset: at, bytes_written: member.len() as u64 }));
    }
    // Everything the change may overwrite, as far as the file reaches.
    let original_len = archive.len();
    let touched_end = (at + member.len() as u64).min(original_len);
    let saved = archive.bytes()[at.min(original_len) as usize..touched_end as usize].to_vec();
    drop(archive);
    Journal { op: "csv".into(), original_len, proof_at: at, proof: first, saved: vec![(at, saved)], moved: vec![] }.write(path)?;
    crash::point("csv-journal-written");

    let file = OpenOptions::new().write(true).open(path).at(path)?;
    file.write_all_at(rest, at + BLOCK_U64).at(path)?;
    crash::point("csv-data-written");
    file.sync_all().at(path)?;
    crash::point("csv-data-synced");
    file.write_all_at(&first, at).at(path)?;
    crash::point("csv-header-written");
    file.sync_all().at(path)?;
    crash::point("csv-header-synced");
    journal::remove(path)?;
    Ok(CsvOutcome::Appended(CsvReport { name, rows: rows.len() as u64, offset: at, bytes_written: member.len() as u64 }))
}

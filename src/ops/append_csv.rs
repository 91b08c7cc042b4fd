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
//! so the archive lists exactly as before. The change goes through [`crate::ops::in_place`]: the
//! lock on the archive, a journal that lets the next run, or `tarfs recover`, undo an
//! interrupted append byte for byte (or finish one whose every block is in place), the space
//! reserved first, and the result read back through [`Reader`] before it is reported.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::archive::Archive;
use crate::error::{Error, ReadBackIndex, ReadBackProblem, Result};
use crate::format::csv::{self, Row};
use crate::format::header::{round_up, UstarFields, BLOCK};
use crate::format::pax::push_record;
use crate::ops::in_place::{check_end, link_last, Change, Surveyed, Target};
use crate::ops::read::{locate_csv, Reader, Source};
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
    /// Skip the archive when its newest CSV index is fresh: it is the last member, and lists
    /// everything before it. `tarfs csv` sets this unless `--force`. Without it, every call
    /// appends a new index (listing the earlier ones), as the seed's library does.
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

/// Reads the archive at `path` back after an append: its newest CSV index is `name` at byte
/// `at`, and lists the `rows` members before it, each checked against its header.
fn read_back(path: &Path, opts: ScanOptions, name: &str, at: u64, rows: usize) -> Result<()> {
    let bad = |problem| Error::ReadBack { path: path.to_path_buf(), what: ReadBackIndex::Csv, problem };
    let archive = Archive::open(path)?;
    let located = locate_csv(&archive, opts).ok_or_else(|| bad(ReadBackProblem::NotFound("no CSV index member is found from the end")))?;
    if located.source != Source::Csv(name.to_string(), at) {
        return Err(bad(ReadBackProblem::Another(located.source)));
    }
    let reader = Reader::with_index(&archive, located, opts).map_err(|r| bad(ReadBackProblem::Refused(r)))?;
    let mut n = 0usize;
    reader.for_each(|_| {
        n += 1;
        Ok(())
    })?;
    if n != rows + 1 {
        return Err(bad(ReadBackProblem::Count { found: n.saturating_sub(1), want: rows }));
    }
    Ok(())
}

/// Appends a `.tarindex_N.csv` member to the archive at `path`. Every error says what state the
/// archive is in, as [`crate::ops::embed::embed`]'s do.
pub fn append_csv_index(path: &Path, opts: CsvOptions) -> Result<CsvOutcome> {
    append(path, opts).map_err(Error::unchanged)
}

fn append(path: &Path, opts: CsvOptions) -> Result<CsvOutcome> {
    let target = Target::open(path, "csv", opts.dry_run)?;
    let archive = target.map()?;
    let mut last_index = None;
    let mut rows = Vec::new();
    let mut next = 0u32;
    let mut scanner = Scanner::new(archive.bytes(), opts.scan);
    for e in scanner.by_ref() {
        let e = e.map_err(|source| Error::Scan { path: path.to_path_buf(), source })?;
        crate::watch::at(e.position);
        let name = e.path();
        last_index = csv::index_number(&name).map(|_| (String::from_utf8_lossy(&name).into_owned(), e.data_offset as usize..(e.data_offset + e.stored_size) as usize));
        if let Some(n) = csv::index_number(&name) {
            next = next.max(n.saturating_add(1));
        }
        rows.push(Row::new(&name, e.stored_size, e.data_offset));
    }
    let end = scanner.end().expect("scan finished");
    check_end(path, &target.file, archive.bytes(), &end)?;
    if let Some((name, range)) = last_index.filter(|_| opts.skip_fresh) {
        if csv::decode(&archive.bytes()[range]).is_ok_and(|r| r == rows[..rows.len() - 1]) {
            return Ok(CsvOutcome::Fresh { name, rows: rows.len() as u64 - 1 });
        }
    }
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
    let header_at = end.end_offset + member.len() as u64;
    member.extend_from_slice(&fields.encode());
    member.extend_from_slice(&data);
    member.resize(round_up(member.len() as u64).expect("index fits") as usize + 2 * BLOCK, 0);
    let at = end.end_offset;
    let report = CsvReport { name, rows: rows.len() as u64, offset: at, bytes_written: member.len() as u64 };
    if opts.dry_run {
        return Ok(CsvOutcome::Appended(report));
    }
    // Until the first block is written, every reader stops at the old end marker.
    let change = Change { prefix: "csv", phases: link_last("data", "header", vec![(at, &member)]).into(), moved: None, surveyed: Surveyed { stamp: archive.stamp(), end: at } };
    target.apply(archive.bytes(), &change, || read_back(path, opts.scan, &report.name, header_at, rows.len()))?;
    Ok(CsvOutcome::Appended(report))
}

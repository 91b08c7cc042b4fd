//! Shifting a whole archive forward in place, to make room for a `.tarfs` first member without
//! changing the order of any member (DESIGN §10).
//!
//! Where displacing the leading members ([`crate::ops::embed`]) would change what a reader
//! extracts (a hard link to a displaced member, a name that occurs twice, headers that readers
//! read differently, members behind zero blocks), `embed` moves every member instead: the
//! region `from..end` (the members, after any old `.tarfs` member) is copied to
//! `from + distance..end + distance`, and the index member is written over `0..from + distance`.
//! The file grows by `distance` (less what its trailing zeros absorb), and its end marker is the
//! zeros after the moved members. Planning ([`Shift::plan`]) reads only; applying ([`apply`])
//! writes, under the archive's lock and a journal.
//!
//! **Bands.** The region is copied from its end toward its start in *bands*, each read from
//! where it is and written `distance` further on, and each made durable (fdatasync) before the
//! next begins: the next band's writes overwrite this band's source, which must by then be
//! durable at its destination. Two ways:
//!
//! - *direct*, bands of `distance` bytes: a band's destination is the previous band's source,
//!   never its own, so its writes may land in any order. One write of each byte and one fsync
//!   per band. Chosen when that is at most [`MAX_DIRECT`] bands, or when `distance` is at least
//!   a [`ROUND`].
//! - *staged*, bands of a [`ROUND`] (64 MiB): where the shift is small next to the region (a
//!   few KiB of index before gigabytes of members), direct bands would cost an fsync every few
//!   KiB. A band is first copied to a staging area past the end of the file, made durable, then
//!   copied from there to its destination (which overlaps its own source) and made durable.
//!   Two writes of each byte and two fsyncs per 64 MiB. The file grows by up to a round more
//!   while it works, and is cut to its final length at the end.
//!
//! **The journal** ([`crate::ops::journal`]'s file, version 3, `TFSJ\x03`) records the file's
//! identity, its original and final lengths, `from`, `end`, `distance`, the band size and the
//! staging offset, the xxh3-64 of every band's original bytes, and the index member's bytes (the
//! head), so that recovery writes exactly what the interrupted run would have. Progress is not
//! written to the journal (that would cost an fsync and a rename per band): it is read from the
//! archive. Band `j` is done when its destination hashes to its hash; the first band that is
//! not done is found at its source, or (staged) in the staging area; every later band is still
//! at its source, untouched. A band's writes begin only after the previous band's fsync has
//! returned, so a band whose destination does not hold it never had its source overwritten.
//!
//! **Recovery always finishes the shift** (rolls forward): the original bytes at the front are
//! overwritten as the shift proceeds, and are only to be had, moved, at their destination. From
//! any crash point, `tarfs recover` (or the next `embed`, which recovers first) reads where the
//! shift stood, checking every band's bytes at its destination, its source or the staging area
//! before it writes anything (a journal whose bands are found nowhere was written for another
//! file, and the archive is not touched), then copies the bands that are not done, writes the
//! head from the journal, cuts the file to its final length, checks every band and the head
//! again, and removes the journal. The result is byte for byte what the uninterrupted run
//! writes: never a mix of the original and the shifted archive.
//!
//! In the running process, a failure before the first band is written (no room for the growth,
//! the growth not made durable) truncates the file back and removes the journal: the archive is
//! as it was. A failure after that stops with the journal kept, and the error says that `tarfs
//! recover` finishes the shift: a failed fsync may have lost writes that the page cache still
//! shows, so the process does not trust what it would read back. A read-back of the result that
//! disagrees is answered by recovery (which rewrites from the journal what does not hash as it
//! should) and read back again.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::format::header::{round_up, BLOCK_U64};
use crate::ops::crash;
use crate::ops::in_place::{Surveyed, Target};
use crate::ops::journal::{self, hash, hash_range, Recovery};

/// Bytes a staged band moves: the staging area's size.
pub const ROUND: u64 = 64 << 20;

/// The most direct bands (one fsync each) a shift makes before it stages instead.
pub const MAX_DIRECT: u64 = 16;

/// The first bytes of a shift's journal.
const MAGIC: &[u8; 5] = b"TFSJ\x03";

/// A shift of an archive's members, planned from reads only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shift {
    /// The archive's length before.
    pub original_len: u64,
    /// Its length after: the moved members, and at least an end marker of zeros after them.
    pub final_len: u64,
    /// Where the moved region starts: 0, or the end of an old `.tarfs` member.
    pub from: u64,
    /// Where it ends: the end of the last member, or the end of the file where data follows
    /// the members.
    pub end: u64,
    /// How far it moves.
    pub distance: u64,
    /// Bytes per band.
    pub band: u64,
    /// The staging area's offset, for a staged shift.
    pub stage: Option<u64>,
    /// xxh3-64 of each band's original bytes, from the last band (the end of the region) on.
    pub hashes: Vec<u64>,
    /// The bytes written over `0..from + distance` once every band is moved: the index member.
    pub head: Vec<u8>,
}

impl Shift {
    /// Plans moving `from..end` of an archive `original_len` bytes long (`end` block-aligned with
    /// zeros after it, or the file's end) forward so that `head` (a whole number of blocks, longer than `from`)
    /// fits before it. The bands' hashes are left to [`Shift::hash_bands`].
    pub fn plan(original_len: u64, from: u64, end: u64, head: Vec<u8>) -> Shift {
        let distance = head.len() as u64 - from;
        let moved = end - from;
        let final_len = Shift::final_len(original_len, end, distance);
        let direct = distance >= ROUND || moved.div_ceil(distance) <= MAX_DIRECT;
        let band = if direct { distance } else { ROUND };
        let stage = (!direct).then(|| round_up(final_len).unwrap_or(final_len));
        Shift { original_len, final_len, from, end, distance, band, stage, hashes: Vec::new(), head }
    }

    /// The length of an archive `original_len` bytes long whose bytes up to `end` move
    /// `distance` bytes on: long enough for an end marker after them, or, when the whole file
    /// moves (data after its end marker), its length and the distance.
    pub fn final_len(original_len: u64, end: u64, distance: u64) -> u64 {
        if end >= original_len {
            original_len + distance
        } else {
            original_len.max(end + distance + 2 * BLOCK_U64)
        }
    }

    /// Records the hash of each band's bytes in `original`, the archive planned from.
    pub fn hash_bands(&mut self, original: &[u8]) {
        self.hashes = self.bands().map(|r| hash(&original[r.start as usize..r.end as usize])).collect();
    }

    /// The bands, each as the range of the original it moves, from the end of the region on.
    pub fn bands(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        let n = (self.end - self.from).div_ceil(self.band);
        (0..n).map(move |j| {
            let hi = self.end - j * self.band;
            hi.saturating_sub(self.band).max(self.from)..hi
        })
    }

    /// Bytes moved.
    pub fn moved(&self) -> u64 {
        self.end - self.from
    }

    /// The longest the file gets while the shift works (with a staging area, past its final
    /// length).
    pub fn peak_len(&self) -> u64 {
        match self.stage {
            Some(at) => self.final_len.max(at + self.band.min(self.moved())),
            None => self.final_len,
        }
    }

    /// Bytes written to the archive: each moved byte (twice when staged), and the head.
    pub fn bytes_written(&self) -> u64 {
        self.moved() * if self.stage.is_some() { 2 } else { 1 } + self.head.len() as u64
    }

    /// The journal of this shift of the file `(dev, ino)`.
    pub fn encode(&self, dev: u64, ino: u64) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        let put = |b: &mut Vec<u8>, v: u64| b.extend_from_slice(&v.to_be_bytes());
        let stage = self.stage.unwrap_or(u64::MAX);
        for v in [dev, ino, self.original_len, self.final_len, self.from, self.end, self.distance, self.band, stage, self.hashes.len() as u64] {
            put(&mut b, v);
        }
        for &h in &self.hashes {
            put(&mut b, h);
        }
        put(&mut b, self.head.len() as u64);
        b.extend_from_slice(&self.head);
        let sum = hash(&b);
        put(&mut b, sum);
        b
    }

    /// Decodes a shift's journal: `(dev, ino, shift)`, or `None` if it is not one, is damaged,
    /// or describes no possible shift.
    pub fn decode(data: &[u8]) -> Option<(u64, u64, Shift)> {
        let (body, sum) = data.split_at_checked(data.len().checked_sub(8)?)?;
        if hash(body) != u64::from_be_bytes(sum.try_into().ok()?) || !body.starts_with(MAGIC) {
            return None;
        }
        let mut at = MAGIC.len();
        let mut u64_at = || {
            let v = u64::from_be_bytes(body.get(at..at + 8)?.try_into().ok()?);
            at += 8;
            Some(v)
        };
        let mut f = [0u64; 10];
        for v in &mut f {
            *v = u64_at()?;
        }
        let [dev, ino, original_len, final_len, from, end, distance, band, stage, n] = f;
        let n = usize::try_from(n).ok().filter(|&n| n <= body.len() / 8)?;
        let hashes = (0..n).map(|_| u64_at()).collect::<Option<Vec<u64>>>()?;
        let head_len = usize::try_from(u64_at()?).ok()?;
        let head = body.get(at..at.checked_add(head_len)?)?.to_vec();
        let stage = (stage != u64::MAX).then_some(stage);
        let s = Shift { original_len, final_len, from, end, distance, band, stage, hashes, head };
        let sane = at + head_len == body.len()
            && from <= end
            && end <= original_len
            && distance > 0
            && band > 0
            && from.checked_add(distance) == Some(head_len as u64)
            && end.checked_add(distance).is_some_and(|e| e <= final_len)
            && (end - from).div_ceil(band) == n as u64
            && s.stage.is_none_or(|at| at >= final_len && at.checked_add(band).is_some());
        sane.then_some((dev, ino, s))
    }
}

/// Whether the journal bytes `data` are a shift's.
pub fn is_shift_journal(data: &[u8]) -> bool {
    data.starts_with(MAGIC)
}

/// Where an interrupted shift stands: the first band not yet at its destination, and whether it
/// is to be copied from the staging area (its source already partly overwritten).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Progress {
    next: usize,
    from_stage: bool,
}

/// Why a shift's journal is not the file's: a band of the original that is found nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Foreign {
    /// The first band not at its destination is not at its source, nor staged.
    Nowhere(Range<u64>),
    /// A band the shift had not reached is not at its source.
    NotReached(Range<u64>),
}

impl std::fmt::Display for Foreign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Foreign::Nowhere(r) => write!(f, "the bytes {}..{} are neither where they were nor where the shift moves them", r.start, r.end),
            Foreign::NotReached(r) => write!(f, "the bytes {}..{}, which the shift had not reached, are not the ones it was planned for", r.start, r.end),
        }
    }
}

/// xxh3-64 of `len` bytes of `file` at `at`, or `None` where they are not all in the file
/// (`file_len` long).
fn hash_at(file: &File, path: &Path, at: u64, len: u64, file_len: u64) -> Result<Option<u64>> {
    if at.checked_add(len).is_none_or(|e| e > file_len) {
        return Ok(None);
    }
    hash_range(file, path, at, len).map(Some)
}

/// Where the shift `s` of `file` (now `len` bytes long) stands, read only: `Err(why)` when a
/// band is found neither at its destination, nor at its source, nor staged, or a band after the
/// first one not done is no longer at its source (the journal is not this file's).
fn progress(s: &Shift, file: &File, path: &Path, len: u64) -> Result<std::result::Result<Progress, Foreign>> {
    let bands: Vec<Range<u64>> = s.bands().collect();
    let mut next = bands.len();
    for (j, r) in bands.iter().enumerate() {
        if hash_at(file, path, r.start + s.distance, r.end - r.start, len)? != Some(s.hashes[j]) {
            next = j;
            break;
        }
    }
    let Some(r) = bands.get(next) else { return Ok(Ok(Progress { next, from_stage: false })) };
    let n = r.end - r.start;
    let from_stage = match s.stage {
        Some(at) => hash_at(file, path, at, n, len)? == Some(s.hashes[next]),
        None => false,
    };
    if !from_stage && hash_at(file, path, r.start, n, len)? != Some(s.hashes[next]) {
        return Ok(Err(Foreign::Nowhere(r.clone())));
    }
    for (j, r) in bands.iter().enumerate().skip(next + 1) {
        if hash_at(file, path, r.start, r.end - r.start, len)? != Some(s.hashes[j]) {
            return Ok(Err(Foreign::NotReached(r.clone())));
        }
    }
    Ok(Ok(Progress { next, from_stage }))
}

/// Moves band `j` (`r` of the original) to its destination, through the staging area for a
/// staged shift (unless `from_stage`: it is there already), each copy made durable.
fn move_band(file: &File, path: &Path, s: &Shift, j: usize, r: &Range<u64>, from_stage: bool) -> Result<()> {
    let n = r.end - r.start;
    let to = r.start + s.distance;
    match s.stage {
        Some(stage) => {
            if !from_stage {
                journal::copy_range(file, path, r.start, stage, n)?;
                crash::point("shift-staged-written");
                file.sync_data().at(path)?;
                crash::point("shift-staged-synced");
            }
            journal::copy_range(file, path, stage, to, n)?;
        }
        None => journal::copy_range(file, path, r.start, to, n)?,
    }
    crash::point("shift-band-written");
    file.sync_data().at(path)?;
    crash::point("shift-band-synced");
    crash::point(&format!("shift-band-{j}-synced"));
    Ok(())
}

/// Carries the shift `s` of `file` on from `p` to its end: the file grown to the shift's peak
/// length (when bands remain), the remaining bands moved, the head written, the file cut to its
/// final length; each step made durable before the next.
fn run(file: &File, path: &Path, s: &Shift, p: Progress) -> Result<()> {
    let bands: Vec<Range<u64>> = s.bands().collect();
    if p.next < bands.len() && file.metadata().at(path)?.len() < s.peak_len() {
        file.set_len(s.peak_len()).at(path)?;
        file.sync_all().at(path)?;
    }
    crash::point("shift-grown");
    for (j, r) in bands.iter().enumerate().skip(p.next) {
        move_band(file, path, s, j, r, j == p.next && p.from_stage)?;
    }
    file.write_all_at(&s.head, 0).at(path)?;
    crash::point("shift-head-written");
    file.sync_data().at(path)?;
    crash::point("shift-head-synced");
    if file.metadata().at(path)?.len() != s.final_len {
        file.set_len(s.final_len).at(path)?;
        file.sync_all().at(path)?;
        crash::point("shift-trimmed");
    }
    Ok(())
}

/// Whether `file` holds the complete shift `s`: its final length, every band at its
/// destination, the head in front, and zeros from the moved members' end to the file's.
fn complete(s: &Shift, file: &File, path: &Path) -> Result<bool> {
    let len = file.metadata().at(path)?.len();
    if len != s.final_len || hash_at(file, path, 0, s.head.len() as u64, len)? != Some(hash(&s.head)) {
        return Ok(false);
    }
    for (j, r) in s.bands().enumerate() {
        if hash_at(file, path, r.start + s.distance, r.end - r.start, len)? != Some(s.hashes[j]) {
            return Ok(false);
        }
    }
    let mut at = s.end + s.distance;
    let mut buf = vec![0u8; journal::CHUNK.min(usize::try_from(len - at).unwrap_or(journal::CHUNK))];
    while at < len {
        let n = buf.len().min(usize::try_from(len - at).unwrap_or(usize::MAX));
        file.read_exact_at(&mut buf[..n], at).at(path)?;
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

/// Finishes the shift journaled in `data` (read from `jp`) on the archive open read-write as
/// `file` and locked by the caller: see the module docs. The archive is not touched when the
/// journal is damaged or is not this file's.
pub fn recover(jp: &Path, path: &Path, file: &File, data: &[u8]) -> Result<Recovery> {
    let keep = |why: String| Error::Recovery { path: path.to_path_buf(), journal: jp.to_path_buf(), msg: why };
    let (dev, ino, s) = Shift::decode(data).ok_or_else(|| keep("the journal is damaged or from another version of tarfs; the archive was not touched".into()))?;
    let meta = file.metadata().at(path)?;
    let len = meta.len();
    let why = if (std::os::unix::fs::MetadataExt::dev(&meta), std::os::unix::fs::MetadataExt::ino(&meta)) != (dev, ino) {
        Some(format!("it was written for another file (device {dev:x}, inode {ino})"))
    } else if len < s.original_len || len > s.peak_len() {
        Some(format!("it was written for a file of {} bytes (growing to {}), and the file is {len} bytes", s.original_len, s.peak_len()))
    } else {
        progress(&s, file, path, len)?.err().map(|f| f.to_string())
    };
    if let Some(why) = why {
        return Err(keep(format!("the journal does not belong to this file: {why}. The archive was not touched; if it was replaced (a backup restored over it), delete the journal")));
    }
    finish(jp, path, file, &s)?;
    Ok(Recovery::Finished)
}

/// Carries the shift `s` on from where the file shows it stands, checks the result, and
/// removes the journal `jp`.
fn finish(jp: &Path, path: &Path, file: &File, s: &Shift) -> Result<()> {
    finish_keeping(jp, path, file, s)?;
    journal::remove(jp, file)
}

/// Applies the shift `s` to the archive open as `target`, which the survey `surveyed` planned it
/// from: the journal, the space reserved, the shift, then `check` (the read-back through the
/// reader), and the journal removed. See the module docs for what each failure leaves.
pub fn apply(target: &Target, s: &Shift, surveyed: &Surveyed, check: impl Fn() -> Result<()>) -> Result<()> {
    let path = &target.path;
    crash::point("shift-surveyed");
    if target.len != s.original_len {
        return Err(Error::refused_for_now(path, "the file changed while it was being read"));
    }
    target.unchanged_since(surveyed, s.original_len, true)?;
    let (dev, ino) = target.identity();
    target.write_journal(&s.encode(dev, ino))?;
    crash::point("shift-journal-written");
    if let Err(e) = target.unchanged_since(surveyed, s.original_len, false) {
        return Err(target.take_back(e));
    }
    if let Err(e) = target.reserve(s.peak_len()) {
        return Err(target.take_back(target.no_room(e, s.peak_len())));
    }
    let file = &target.file;
    if let Err(e) = file.set_len(s.peak_len()).and_then(|()| file.sync_all()).at(path) {
        return Err(unshift(target, e));
    }
    let interrupted = |e: Error| Error::ShiftInterrupted { path: path.clone(), cause: Box::new(e) };
    run(file, path, s, Progress { next: 0, from_stage: false }).map_err(interrupted)?;
    crash::tamper("embed-check", file, 0);
    if let Err(first) = check() {
        // Rewrite from the journal what does not hash as planned, then read back again.
        let jp = target.journal_path();
        let again = |()| check();
        return match finish_keeping(jp, path, file, s).and_then(again) {
            Ok(()) => journal::remove(jp, file).map_err(|e| Error::JournalLeft { path: path.clone(), cause: Box::new(e) }),
            Err(_) => Err(interrupted(first)),
        };
    }
    journal::remove(target.journal_path(), file).map_err(|e| Error::JournalLeft { path: path.clone(), cause: Box::new(e) })
}

/// [`finish`], but leaving the journal in place.
fn finish_keeping(jp: &Path, path: &Path, file: &File, s: &Shift) -> Result<()> {
    let keep = |why: String| Error::Recovery { path: path.to_path_buf(), journal: jp.to_path_buf(), msg: why };
    let len = file.metadata().at(path)?.len();
    let p = progress(s, file, path, len)?.map_err(|f| keep(f.to_string()))?;
    run(file, path, s, p)?;
    if complete(s, file, path)? {
        Ok(())
    } else {
        Err(keep("the shifted archive does not read back as the journal says it should".into()))
    }
}

/// After `cause` stopped the growth of the file, before any band was moved: cuts the file back
/// to its length and removes the journal (the archive as it was), or, where that fails too,
/// says that `tarfs recover` finishes the shift.
fn unshift(target: &Target, cause: Error) -> Error {
    let (path, file) = (&target.path, &target.file);
    let back = file.set_len(target.len).and_then(|()| file.sync_all()).at(path).and_then(|()| journal::remove(target.journal_path(), file));
    match back {
        Ok(()) => Error::RolledBack { path: path.clone(), cause: Box::new(cause) },
        Err(_) => Error::ShiftInterrupted { path: path.clone(), cause: Box::new(cause) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 512) as u8).collect()
    }

    #[test]
    fn bands_cover_the_region_from_its_end_and_never_overlap_their_destination_when_direct() {
        let a = archive(40 * 512);
        let mut s = Shift::plan(a.len() as u64, 0, 36 * 512, vec![1u8; 5 * 512]);
        s.hash_bands(&a);
        assert_eq!(s.stage, None);
        assert_eq!(s.band, 5 * 512);
        let bands: Vec<Range<u64>> = s.bands().collect();
        assert_eq!(bands.first().unwrap().end, 36 * 512);
        assert_eq!(bands.last().unwrap().start, 0);
        assert!(bands.windows(2).all(|w| w[1].end == w[0].start));
        assert!(bands.iter().all(|r| r.start + s.distance >= r.end));
        assert_eq!(s.final_len, 36 * 512 + 5 * 512 + 1024);
    }

    #[test]
    fn a_small_shift_of_a_large_region_is_staged() {
        let a = archive(200 * 512);
        let mut s = Shift::plan(a.len() as u64, 0, 190 * 512, vec![1u8; 2 * 512]);
        s.hash_bands(&a);
        assert_eq!(s.band, ROUND);
        assert_eq!(s.stage, Some(s.final_len));
        assert_eq!(s.hashes.len(), 1);
        assert_eq!(s.peak_len(), s.final_len + 190 * 512);
        assert_eq!(s.bytes_written(), 2 * 190 * 512 + 1024);
    }

    #[test]
    fn journal_round_trip_and_damage() {
        let a = archive(40 * 512);
        let mut s = Shift::plan(a.len() as u64, 1024, 36 * 512, vec![3u8; 6 * 512]);
        s.hash_bands(&a);
        let mut e = s.encode(7, 9);
        assert_eq!(Shift::decode(&e), Some((7, 9, s)));
        assert!(is_shift_journal(&e));
        e[40] ^= 1;
        assert_eq!(Shift::decode(&e), None);
        assert_eq!(Shift::decode(b"TFSJ\x03short"), None);
    }
}

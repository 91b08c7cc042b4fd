//! A tar header block as a typed, zero-copy view over `[u8; 512]`.
//!
//! [`HeaderView`] knows the field layout of v7, ustar/pax, GNU (old-GNU) and star headers, decodes
//! their numeric fields (octal and GNU base-256) and checks the header checksum, accepting both the
//! unsigned sum that POSIX specifies and the signed sum some historic tars wrote. It does no I/O and
//! never allocates.

use std::fmt;

/// The tar block size. Every header, and every member's data, starts on a multiple of it.
pub const BLOCK: usize = 512;
/// [`BLOCK`] as a `u64`, for offset arithmetic.
pub const BLOCK_U64: u64 = BLOCK as u64;

/// Rounds `n` up to a whole number of blocks, or `None` on overflow.
pub fn round_up(n: u64) -> Option<u64> {
    n.checked_add(BLOCK_U64 - 1).map(|v| v & !(BLOCK_U64 - 1))
}

/// Whether a block is all zeros (an end-of-archive block).
pub fn is_zero_block(block: &[u8]) -> bool {
    // Compare 8 bytes at a time; this is on the hot path of every scan.
    block
        .chunks_exact(8)
        .all(|c| u64::from_ne_bytes(c.try_into().expect("8-byte chunk")) == 0)
        && block.chunks_exact(8).remainder().iter().all(|&b| b == 0)
}

/// Which header dialect a block is written in, from its magic and version fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// No magic: 7th Edition Unix. Only `name`..`linkname` are meaningful.
    V7,
    /// `ustar\0` `00`: POSIX ustar, also used by pax. Has a 155-byte `prefix`.
    Ustar,
    /// `ustar\0` `00` with `tar\0` at byte 508: Jörg Schilling's star. 131-byte `prefix`.
    Star,
    /// `ustar ` ` \0`: GNU and old-GNU. The prefix area holds atime, ctime and sparse data.
    Gnu,
}

/// A field that is not a valid number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldError {
    /// Name of the field (`size`, `mtime`, ...).
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: &'static str,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} field is {}", self.field, self.problem)
    }
}

/// Decodes a numeric header field: GNU base-256 when the top bit of the first byte is set,
/// otherwise octal ASCII. Octal text ends at the first NUL and may be padded with spaces; an empty
/// field is 0 (as GNU tar and Python read it).
pub fn parse_signed(field: &[u8], name: &'static str) -> Result<i64, FieldError> {
    if let Some(&first) = field.first() {
        if first & 0x80 != 0 {
            return parse_base256(field, name);
        }
    }
    parse_octal(field, name).and_then(|v| {
        i64::try_from(v).map_err(|_| FieldError { field: name, problem: "out of range" })
    })
}

/// Like [`parse_signed`], for fields that cannot be negative.
pub fn parse_unsigned(field: &[u8], name: &'static str) -> Result<u64, FieldError> {
    if let Some(&first) = field.first() {
        if first & 0x80 != 0 {
            let v = parse_base256(field, name)?;
            return u64::try_from(v).map_err(|_| FieldError { field: name, problem: "negative" });
        }
    }
    parse_octal(field, name)
}

fn parse_octal(field: &[u8], name: &'static str) -> Result<u64, FieldError> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let text = trim_spaces(&field[..end]);
    let mut v: u64 = 0;
    for &b in text {
        if !(b'0'..=b'7').contains(&b) {
            return Err(FieldError { field: name, problem: "not octal" });
        }
        v = v
            .checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(b.saturating_sub(b'0'))))
            .ok_or(FieldError { field: name, problem: "out of range" })?;
    }
    Ok(v)
}

fn parse_base256(field: &[u8], name: &'static str) -> Result<i64, FieldError> {
    let negative = field[0] & 0x40 != 0;
    // Two's complement over the whole field, with the marker bit removed from the first byte.
    let mut v: i128 = i128::from(field[0] & 0x7f);
    if negative {
        v = v.saturating_sub(0x80);
    }
    for &b in &field[1..] {
        v = v
            .checked_mul(256)
            .and_then(|v| v.checked_add(i128::from(b)))
            .filter(|v| *v >= i128::from(i64::MIN) && *v <= i128::from(i64::MAX))
            .ok_or(FieldError { field: name, problem: "out of range" })?;
    }
    Ok(v as i64)
}

fn trim_spaces(mut s: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' '] = s {
        s = rest;
    }
    s
}

/// Bytes up to the first NUL.
pub fn c_str(field: &[u8]) -> &[u8] {
    let end = memchr::memchr(0, field).unwrap_or(field.len());
    &field[..end]
}

/// The two checksums tar implementations have written: the unsigned byte sum POSIX specifies and
/// the signed one of some old Unix tars, both with the checksum field counted as 8 spaces.
pub fn checksums(block: &[u8; BLOCK]) -> (u32, i32) {
    (unsigned_checksum(block), signed_checksum(block))
}

/// The POSIX checksum alone (the common case; written so that it vectorizes).
pub fn unsigned_checksum(block: &[u8; BLOCK]) -> u32 {
    // Sums of 256 bytes fit 16 bits (256 * 255 < 65536), and 16-bit lanes are twice as many per
    // vector as 32-bit ones.
    let half = |h: &[u8]| u32::from(h.iter().fold(0u16, |a, &b| a.wrapping_add(u16::from(b))));
    // Bounded: 512 bytes of at most 255 sum to under 2^17, and the field's 8 bytes are part of
    // that sum, so nothing here overflows or goes below zero.
    #[allow(clippy::arithmetic_side_effects)]
    let sum = {
        let all = half(&block[..BLOCK / 2]) + half(&block[BLOCK / 2..]);
        let field: u32 = block[148..156].iter().map(|&b| u32::from(b)).sum();
        all - field + 8 * u32::from(b' ')
    };
    sum
}

fn signed_checksum(block: &[u8; BLOCK]) -> i32 {
    // Bounded: 512 values in -128..=127 sum to within ±2^16.
    #[allow(clippy::arithmetic_side_effects)]
    let sum = {
        let all: i32 = block.iter().map(|&b| i32::from(b as i8)).sum();
        let field: i32 = block[148..156].iter().map(|&b| i32::from(b as i8)).sum();
        all - field + 8 * i32::from(b' ')
    };
    sum
}

/// A read-only view of one header block.
#[derive(Clone, Copy)]
pub struct HeaderView<'a> {
    raw: &'a [u8; BLOCK],
}

impl fmt::Debug for HeaderView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderView")
            .field("name", &String::from_utf8_lossy(self.name()))
            .field("typeflag", &(self.typeflag() as char))
            .field("format", &self.format())
            .finish()
    }
}

impl<'a> HeaderView<'a> {
    /// Views a block as a header. Any block can be viewed; [`HeaderView::checksum_ok`] says whether
    /// it is one.
    pub fn new(raw: &'a [u8; BLOCK]) -> Self {
        HeaderView { raw }
    }

    /// Views the first block of `bytes`, if it holds a whole block.
    pub fn from_slice(bytes: &'a [u8]) -> Option<Self> {
        bytes.get(..BLOCK).map(|b| HeaderView::new(b.try_into().expect("one block")))
    }

    /// The raw 512 bytes.
    pub fn as_bytes(&self) -> &'a [u8; BLOCK] {
        self.raw
    }

    /// `len` bytes at `start`: callers pass the constant offsets of ustar fields, all within
    /// the 512-byte block.
    fn field(&self, start: usize, len: usize) -> &'a [u8] {
        &self.raw[start..start.saturating_add(len)]
    }

    /// The stored checksum, if the field is readable octal.
    pub fn stored_checksum(&self) -> Option<u64> {
        parse_octal(self.field(148, 8), "chksum").ok().filter(|_| {
            // An all-blank field is not a checksum of 0.
            !trim_spaces(c_str(self.field(148, 8))).is_empty()
        })
    }

    /// Whether the stored checksum matches the block's unsigned or signed byte sum.
    pub fn checksum_ok(&self) -> bool {
        self.verified_sum().is_some()
    }

    /// The block's unsigned byte sum (the POSIX checksum, with `[148, 156)` as spaces) when the
    /// stored checksum matches it or the signed sum; `None` when the block is not a header.
    /// An index entry's checksum is derived from it without summing the block again.
    pub fn verified_sum(&self) -> Option<u32> {
        let stored = self.stored_checksum()?;
        let unsigned = unsigned_checksum(self.raw);
        let ok = stored == u64::from(unsigned) || i64::try_from(stored).ok() == Some(i64::from(signed_checksum(self.raw)));
        ok.then_some(unsigned)
    }

    /// The dialect, from the magic and version fields.
    pub fn format(&self) -> Format {
        match (self.field(257, 6), self.field(263, 2)) {
            (b"ustar\0", _) if self.field(508, 4) == b"tar\0" => Format::Star,
            (b"ustar\0", _) => Format::Ustar,
            (b"ustar ", b" \0") => Format::Gnu,
            _ => Format::V7,
        }
    }

    /// The raw typeflag byte (`b'0'`, `b'5'`, `b'x'`, `0` for an old v7 regular file, ...).
    pub fn typeflag(&self) -> u8 {
        self.raw[156]
    }

    /// The `name` field, up to its first NUL.
    pub fn name(&self) -> &'a [u8] {
        c_str(self.field(0, 100))
    }

    /// The ustar/star `prefix` field, up to its first NUL; empty for v7 and GNU headers, whose
    /// prefix area holds other data.
    pub fn prefix(&self) -> &'a [u8] {
        match self.format() {
            Format::Ustar => c_str(self.field(345, 155)),
            Format::Star => c_str(self.field(345, 131)),
            // A NUL first byte is an empty prefix either way (GNU tar's usual zero atime): no
            // need to parse the times.
            Format::Gnu if self.raw[345] == 0 => &[],
            Format::Gnu if self.gnu_times_invalid() => {
                // Go before 1.8 wrote a ustar prefix into GNU headers. Like Go and Python, read it
                // as a prefix when the atime/ctime fields there do not parse and it is ASCII.
                let p = c_str(self.field(345, 155));
                if p.is_ascii() { p } else { &[] }
            }
            Format::V7 | Format::Gnu => &[],
        }
    }

    /// GNU headers: whether the atime and ctime fields fail to parse as numbers.
    fn gnu_times_invalid(&self) -> bool {
        parse_signed(self.field(345, 12), "atime").is_err() || parse_signed(self.field(357, 12), "ctime").is_err()
    }

    /// The `linkname` field, up to its first NUL.
    pub fn linkname(&self) -> &'a [u8] {
        c_str(self.field(157, 100))
    }

    /// The permission bits and file type bits of the `mode` field.
    pub fn mode(&self) -> Result<u32, FieldError> {
        // Some writers put file-type bits above 07777; keep them, callers mask what they need.
        parse_unsigned(self.field(100, 8), "mode").map(|m| (m & 0o7777_7777) as u32)
    }

    /// Owner id.
    pub fn uid(&self) -> Result<u64, FieldError> {
        parse_unsigned(self.field(108, 8), "uid")
    }

    /// Group id.
    pub fn gid(&self) -> Result<u64, FieldError> {
        parse_unsigned(self.field(116, 8), "gid")
    }

    /// The `size` field: bytes of data stored after this header (for `S`, the stored bytes).
    pub fn size(&self) -> Result<u64, FieldError> {
        parse_unsigned(self.field(124, 12), "size")
    }

    /// Modification time, seconds since the epoch (negative before 1970, in base-256).
    pub fn mtime(&self) -> Result<i64, FieldError> {
        parse_signed(self.field(136, 12), "mtime")
    }

    /// Owner name (ustar, GNU and star only).
    pub fn uname(&self) -> &'a [u8] {
        if self.format() == Format::V7 {
            return &[];
        }
        c_str(self.field(265, 32))
    }

    /// Group name (ustar, GNU and star only).
    pub fn gname(&self) -> &'a [u8] {
        if self.format() == Format::V7 {
            return &[];
        }
        c_str(self.field(297, 32))
    }

    /// Device major and minor numbers, for character and block devices.
    pub fn device(&self) -> Result<(u64, u64), FieldError> {
        if self.format() == Format::V7 {
            return Ok((0, 0));
        }
        Ok((parse_unsigned(self.field(329, 8), "devmajor")?, parse_unsigned(self.field(337, 8), "devminor")?))
    }

    /// Why some tar readers would read this header differently from others, if they would: a
    /// numeric field that is not a number (Python's `tarfile` stops at it, GNU tar warns and reads
    /// on), a link, directory, device or FIFO with a non-zero size (whether data follows it is
    /// read differently), or a typeflag outside POSIX, GNU and pax. Devices fields are checked in
    /// every header, as Python parses them in every header.
    pub fn disagreement(&self) -> Option<Disagreement> {
        let numbers: [(usize, usize); 7] = [(100, 8), (108, 8), (116, 8), (124, 12), (136, 12), (329, 8), (337, 8)];
        if numbers.iter().any(|&(at, len)| parse_signed(self.field(at, len), "").is_err()) {
            return Some(Disagreement::NotANumber);
        }
        let t = self.typeflag();
        if is_header_only(t) && self.size().is_ok_and(|s| s != 0) {
            return Some(Disagreement::DataOfNoType);
        }
        let known = matches!(t, 0 | b'0'..=b'7' | b'x' | b'g' | b'L' | b'K' | b'A' | b'E') || (t == b'S' && self.format() == Format::Gnu);
        if !known {
            return Some(Disagreement::UnknownType);
        }
        None
    }

    /// GNU `S` headers: the logical size of the sparse file.
    pub fn gnu_real_size(&self) -> Result<u64, FieldError> {
        parse_unsigned(self.field(483, 12), "realsize")
    }

    /// GNU `S` headers: whether sparse extension blocks follow.
    pub fn gnu_is_extended(&self) -> bool {
        self.raw[482] != 0
    }

    /// GNU `S` headers: the up to four `(offset, length)` sparse entries stored in the header.
    pub fn gnu_sparse_slots(&self) -> &'a [u8] {
        self.field(386, 4 * 24)
    }
}

/// The fields of a ustar header to write. Text fields are bytes; numbers must fit their octal
/// fields (see [`UstarFields::encode`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UstarFields<'a> {
    /// Full path; split into `prefix` and `name` when over 100 bytes.
    pub path: &'a [u8],
    /// Link target (`linkname`).
    pub link: &'a [u8],
    /// Permission bits.
    pub mode: u32,
    /// Owner id.
    pub uid: u64,
    /// Group id.
    pub gid: u64,
    /// Data size.
    pub size: u64,
    /// Modification time.
    pub mtime: i64,
    /// Typeflag.
    pub typeflag: u8,
    /// Owner name.
    pub uname: &'a [u8],
    /// Group name.
    pub gname: &'a [u8],
}

/// Which ustar fields cannot hold a value, so that a pax record must carry it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overflow {
    /// The path does not fit `prefix`/`name`.
    pub path: bool,
    /// The link does not fit `linkname`.
    pub link: bool,
    /// The size is over 8 GiB - 1.
    pub size: bool,
    /// uid over 2097151.
    pub uid: bool,
    /// gid over 2097151.
    pub gid: bool,
    /// mtime negative or over 8^11 - 1.
    pub mtime: bool,
    /// uname over 32 bytes.
    pub uname: bool,
    /// gname over 32 bytes.
    pub gname: bool,
}

impl Overflow {
    /// Whether anything overflows.
    pub fn any(&self) -> bool {
        *self != Overflow::default()
    }
}

const MAX_OCTAL_11: u64 = 0o77777777777;
const MAX_OCTAL_7: u64 = 0o7777777;

/// Splits a path into ustar `prefix` and `name`, if it fits.
fn split_ustar(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if path.len() <= 100 {
        return Some((&[], path));
    }
    // The prefix ends at a '/', is at most 155 bytes, and leaves at most 100 for the name.
    let lo = path.len().saturating_sub(101);
    // Bounded: i < path.len(), so neither `path.len() - i - 1` nor `i + 1` can overflow.
    #[allow(clippy::arithmetic_side_effects)]
    let split = (lo..path.len().min(156)).find(|&i| path[i] == b'/' && path.len() - i - 1 <= 100 && i > 0).map(|i| (&path[..i], &path[i + 1..]));
    split
}

impl UstarFields<'_> {
    /// What does not fit the ustar fields.
    pub fn overflow(&self) -> Overflow {
        Overflow {
            path: split_ustar(self.path).is_none() || self.path.contains(&0),
            link: self.link.len() > 100,
            size: self.size > MAX_OCTAL_11,
            uid: self.uid > MAX_OCTAL_7,
            gid: self.gid > MAX_OCTAL_7,
            mtime: self.mtime < 0 || self.mtime as u64 > MAX_OCTAL_11,
            uname: self.uname.len() > 32,
            gname: self.gname.len() > 32,
        }
    }

    /// Encodes a POSIX ustar header. Fields that overflow (see [`UstarFields::overflow`]) are
    /// truncated or written as 0; the caller puts the real values in a pax header first.
    pub fn encode(&self) -> [u8; BLOCK] {
        let mut b = [0u8; BLOCK];
        let (prefix, name) = split_ustar(self.path).unwrap_or_else(|| (&[], &self.path[self.path.len().saturating_sub(100)..]));
        put(&mut b[0..100], name);
        put_octal(&mut b[100..108], u64::from(self.mode & 0o7777), MAX_OCTAL_7);
        put_octal(&mut b[108..116], self.uid, MAX_OCTAL_7);
        put_octal(&mut b[116..124], self.gid, MAX_OCTAL_7);
        put_octal(&mut b[124..136], self.size, MAX_OCTAL_11);
        put_octal(&mut b[136..148], u64::try_from(self.mtime).unwrap_or(0), MAX_OCTAL_11);
        b[156] = self.typeflag;
        put(&mut b[157..257], &self.link[..self.link.len().min(100)]);
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        put(&mut b[265..297], &self.uname[..self.uname.len().min(32)]);
        put(&mut b[297..329], &self.gname[..self.gname.len().min(32)]);
        put_octal(&mut b[329..337], 0, MAX_OCTAL_7);
        put_octal(&mut b[337..345], 0, MAX_OCTAL_7);
        put(&mut b[345..500], prefix);
        set_checksum(&mut b);
        b
    }
}

fn put(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Writes `value` as zero-padded octal with a NUL terminator (0 when it exceeds `max`).
fn put_octal(field: &mut [u8], value: u64, max: u64) {
    let value = if value > max { 0 } else { value };
    let digits = field.len().saturating_sub(1);
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
}

/// Computes and stores a header's checksum as tar writes it: six octal digits, NUL, space.
pub fn set_checksum(b: &mut [u8; BLOCK]) {
    b[148..156].fill(b' ');
    let sum = checksums(b).0;
    b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// Decodes up to `slots.len() / 24` old-GNU sparse descriptors (12-byte offset, 12-byte length),
/// stopping at the first empty one.
pub fn gnu_sparse_entries(slots: &[u8]) -> impl Iterator<Item = Result<(u64, u64), FieldError>> + '_ {
    slots
        .chunks_exact(24)
        .take_while(|d| d[0] != 0)
        .map(|d| Ok((parse_unsigned(&d[..12], "sparse offset")?, parse_unsigned(&d[12..], "sparse numbytes")?)))
}

/// Whether a typeflag carries no data, whatever its size field says (hard and symbolic links,
/// devices, directories, FIFOs), as Python's tarfile and Go's archive/tar read it.
pub fn is_header_only(typeflag: u8) -> bool {
    matches!(typeflag, b'1' | b'2' | b'3' | b'4' | b'5' | b'6')
}

#[cfg(test)]
mod tests {
    #[test]
    fn vectorized_checksum_equals_the_plain_sum() {
        let mut blocks = vec![[0u8; BLOCK], [0xff; BLOCK], [b' '; BLOCK]];
        let mut x = 0x9e37_79b9u32;
        for _ in 0..64 {
            let mut b = [0u8; BLOCK];
            for c in b.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *c = x as u8;
            }
            blocks.push(b);
        }
        for b in &blocks {
            let plain: u32 = b.iter().enumerate().map(|(i, &c)| if (148..156).contains(&i) { 32 } else { u32::from(c) }).sum();
            assert_eq!(unsigned_checksum(b), plain);
        }
    }

    use super::*;

    #[test]
    fn octal_fields() {
        assert_eq!(parse_unsigned(b"0000644\0", "mode"), Ok(0o644));
        assert_eq!(parse_unsigned(b"   644 \0", "mode"), Ok(0o644));
        assert_eq!(parse_unsigned(b"\0\0\0\0\0\0\0\x30\x30\x31\x36\0", "size"), Ok(0));
        assert_eq!(parse_unsigned(b"        ", "size"), Ok(0));
        assert!(parse_unsigned(b"0008\0", "size").is_err());
        assert!(parse_unsigned(b"77777777777777777777777", "size").is_err());
    }

    #[test]
    fn base256_fields() {
        let mut f = [0u8; 12];
        f[0] = 0x80;
        f[11] = 0x10;
        f[10] = 0x01;
        assert_eq!(parse_signed(&f, "size"), Ok(0x110));
        let neg = [0xffu8; 12];
        assert_eq!(parse_signed(&neg, "mtime"), Ok(-1));
        assert!(parse_unsigned(&neg, "size").is_err());
        let mut big = [0xffu8; 12];
        big[0] = 0x80 | 0x3f;
        assert!(parse_signed(&big, "size").is_err());
    }

    #[test]
    fn round_up_blocks() {
        assert_eq!(round_up(0), Some(0));
        assert_eq!(round_up(1), Some(512));
        assert_eq!(round_up(512), Some(512));
        assert_eq!(round_up(513), Some(1024));
        assert_eq!(round_up(u64::MAX), None);
    }

    #[test]
    fn ustar_encoding() {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let f = UstarFields { path: long.as_bytes(), mode: 0o644, size: 5, mtime: 1, typeflag: b'0', ..Default::default() };
        assert!(!f.overflow().any());
        let b = f.encode();
        let h = HeaderView::new(&b);
        assert!(h.checksum_ok());
        assert_eq!(h.format(), Format::Ustar);
        assert_eq!(h.prefix(), "d".repeat(120).as_bytes());
        assert_eq!(h.name(), "f".repeat(90).as_bytes());
        assert_eq!(h.size(), Ok(5));
        let too_long = "x".repeat(300);
        assert!(UstarFields { path: too_long.as_bytes(), ..Default::default() }.overflow().path);
        assert!(UstarFields { size: 1 << 40, ..Default::default() }.overflow().size);
    }

    #[test]
    fn zero_block() {
        let mut b = [0u8; 512];
        assert!(is_zero_block(&b));
        b[511] = 1;
        assert!(!is_zero_block(&b));
    }
}

/// Why tar readers read a header differently ([`HeaderView::disagreement`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disagreement {
    /// A numeric field is not a number: some readers stop, others read around it (libarchive
    /// judges a whole archive by its first header's).
    NotANumber,
    /// A type without data (a link, a directory, a device) says it has data: readers skip it or
    /// not.
    DataOfNoType,
    /// A typeflag not every reader knows (GNU `D`, `V`, `M`, ...): each reads it its own way,
    /// wherever it is; what a reader makes of it does not depend on what comes before it.
    UnknownType,
}

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Disagreement::NotANumber => "a numeric field of its header is not a number",
            Disagreement::DataOfNoType => "its header says it has data, which its type does not have",
            Disagreement::UnknownType => "its typeflag is not one that every reader knows",
        })
    }
}

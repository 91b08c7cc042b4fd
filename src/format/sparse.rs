//! GNU sparse maps in their four encodings: old-GNU `S` headers with extension blocks, and the pax
//! formats 0.0 (`GNU.sparse.offset`/`numbytes` pairs), 0.1 (`GNU.sparse.map`) and 1.0 (a decimal
//! map at the start of the member's data).
//!
//! A map is a list of `(offset, length)` regions of the logical file that hold stored data, in
//! order; everything between them reads as zeros. Every decoder stops at `max_entries`, so a map
//! never allocates more than the limit allows, whatever count the archive claims.

use super::header::{gnu_sparse_entries, round_up, BLOCK};
use super::pax::{parse_decimal, Records};

/// One stored region of a sparse file: `(logical offset, length)`.
pub type Region = (u64, u64);

/// What is wrong with a sparse map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SparseError {
    /// The map holds more entries than the configured limit.
    #[error("sparse map has more than {0} entries (the limit)")]
    TooManyEntries(usize),
    /// The map text or a field is malformed.
    #[error("malformed sparse map: {0}")]
    Malformed(&'static str),
    /// The regions overlap, run backwards, or end past the logical size.
    #[error("sparse map regions are out of order or past the file's size")]
    BadRegions,
}

fn push(map: &mut Vec<Region>, r: Region, max: usize) -> Result<(), SparseError> {
    if map.len() >= max {
        return Err(SparseError::TooManyEntries(max));
    }
    map.push(r);
    Ok(())
}

/// Decodes an old-GNU map: the four slots of the `S` header, then each extension block's 21.
pub fn decode_gnu(header_slots: &[u8], ext_blocks: &[u8], max: usize) -> Result<Vec<Region>, SparseError> {
    let mut map = Vec::new();
    let bad = |_| SparseError::Malformed("non-numeric old-GNU sparse entry");
    for r in gnu_sparse_entries(header_slots) {
        push(&mut map, r.map_err(bad)?, max)?;
    }
    for block in ext_blocks.chunks_exact(BLOCK) {
        for r in gnu_sparse_entries(&block[..21 * 24]) {
            push(&mut map, r.map_err(bad)?, max)?;
        }
    }
    Ok(map)
}

/// Decodes a pax 0.0 map: `GNU.sparse.offset` and `GNU.sparse.numbytes` records, in pairs.
pub fn decode_pax_00(pax: &[u8], max: usize) -> Result<Vec<Region>, SparseError> {
    let mut map = Vec::new();
    let mut offset = None;
    for rec in Records::new(pax) {
        let (k, v) = rec.map_err(|_| SparseError::Malformed("bad pax record"))?;
        match k {
            b"GNU.sparse.offset" => {
                if offset.is_some() {
                    return Err(SparseError::Malformed("offset without numbytes"));
                }
                offset = Some(parse_decimal(v).ok_or(SparseError::Malformed("offset is not a number"))?);
            }
            b"GNU.sparse.numbytes" => {
                let o = offset.take().ok_or(SparseError::Malformed("numbytes without offset"))?;
                let n = parse_decimal(v).ok_or(SparseError::Malformed("numbytes is not a number"))?;
                push(&mut map, (o, n), max)?;
            }
            _ => {}
        }
    }
    if offset.is_some() {
        return Err(SparseError::Malformed("offset without numbytes"));
    }
    Ok(map)
}

/// Decodes a pax 0.1 map: `GNU.sparse.map=offset,length,offset,length,...`.
pub fn decode_pax_01(text: &[u8], max: usize) -> Result<Vec<Region>, SparseError> {
    let mut map = Vec::new();
    if text.is_empty() {
        return Ok(map);
    }
    let mut nums = text.split(|&b| b == b',');
    while let Some(o) = nums.next() {
        let n = nums.next().ok_or(SparseError::Malformed("odd number of map values"))?;
        let o = parse_decimal(o).ok_or(SparseError::Malformed("map value is not a number"))?;
        let n = parse_decimal(n).ok_or(SparseError::Malformed("map value is not a number"))?;
        push(&mut map, (o, n), max)?;
    }
    Ok(map)
}

/// Decodes a pax 1.0 map from the start of a member's data: a count, then that many offset and
/// length pairs, each number on its own line, padded with NULs to a block. Returns the map and the
/// number of bytes (whole blocks) it occupies.
///
/// `data` is the member's stored data (it may be shorter than the map claims, which is an error).
pub fn decode_pax_10(data: &[u8], max: usize) -> Result<(Vec<Region>, u64), SparseError> {
    let mut map = Vec::new();
    let (count, mut at) = next_line_number(data, 0)?;
    let count = usize::try_from(count).map_err(|_| SparseError::TooManyEntries(max))?;
    if count > max {
        return Err(SparseError::TooManyEntries(max));
    }
    for _ in 0..count {
        let (o, a) = next_line_number(data, at)?;
        let (n, a) = next_line_number(data, a)?;
        at = a;
        push(&mut map, (o, n), max)?;
    }
    let len = round_up(at as u64).ok_or(SparseError::Malformed("map too long"))?;
    Ok((map, len))
}

fn next_line_number(data: &[u8], at: usize) -> Result<(u64, usize), SparseError> {
    let rest = data.get(at..).unwrap_or_default();
    let nl = rest
        .iter()
        .take(21)
        .position(|&b| b == b'\n')
        .ok_or(SparseError::Malformed("map line is missing or too long"))?;
    let n = parse_decimal(&rest[..nl]).ok_or(SparseError::Malformed("map line is not a number"))?;
    // Bounded: at + nl < data.len().
    Ok((n, at.saturating_add(nl).saturating_add(1)))
}

/// Checks that regions are in order, do not overlap, and end within `real_size`, and returns the
/// number of stored bytes they account for.
pub fn validate(map: &[Region], real_size: u64) -> Result<u64, SparseError> {
    let mut end = 0u64;
    let mut stored = 0u64;
    for &(o, n) in map {
        let e = o.checked_add(n).ok_or(SparseError::BadRegions)?;
        if o < end || e > real_size {
            return Err(SparseError::BadRegions);
        }
        end = e;
        stored = stored.checked_add(n).ok_or(SparseError::BadRegions)?;
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_10_map() {
        let mut data = b"2\n0\n5\n10\n3\n".to_vec();
        data.resize(512, 0);
        let (map, len) = decode_pax_10(&data, 100).unwrap();
        assert_eq!(map, vec![(0, 5), (10, 3)]);
        assert_eq!(len, 512);
        assert_eq!(validate(&map, 13), Ok(8));
        assert_eq!(validate(&map, 12), Err(SparseError::BadRegions));
    }

    #[test]
    fn pax_10_limits() {
        assert_eq!(decode_pax_10(b"1000000000\n", 10), Err(SparseError::TooManyEntries(10)));
        assert!(decode_pax_10(b"2\n0\n5\n", 10).is_err());
    }

    #[test]
    fn pax_01_map() {
        assert_eq!(decode_pax_01(b"1,2,3,4", 10).unwrap(), vec![(1, 2), (3, 4)]);
        assert!(decode_pax_01(b"1,2,3", 10).is_err());
        assert_eq!(decode_pax_01(b"1,2,3,4", 1), Err(SparseError::TooManyEntries(1)));
    }

    #[test]
    fn pax_00_map() {
        let pax = b"23 GNU.sparse.offset=1\n25 GNU.sparse.numbytes=2\n";
        assert_eq!(decode_pax_00(pax, 10).unwrap(), vec![(1, 2)]);
    }
}

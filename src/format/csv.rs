//! The CSV index member of the in-memory tar library (the second seed): `.tarindex_N.csv`.
//!
//! One row per member, in archive order, no header row: `name,size,start_block,blocks`, where
//! `start_block` is the block of the member's **data** counted from the start of the archive and
//! `blocks` is `ceil(size / 512)`. Fields are quoted as RFC 4180 does, only where a name needs it
//! (comma, quote, CR or LF). Rows end with `\n`. Readers accept a last row without a newline, and
//! NUL padding after the rows.
//!
//! The newest index is found by stepping back from the end of the archive one block at a time,
//! for a header named `.tarindex_*.csv` whose checksum holds.

use crate::format::header::{HeaderView, BLOCK, BLOCK_U64};

/// One row of a CSV index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Full member path.
    pub name: Vec<u8>,
    /// Bytes of data stored for the member.
    pub size: u64,
    /// Block number of the member's data, from the start of the archive.
    pub start_block: u64,
    /// Blocks of data: `ceil(size / 512)`.
    pub blocks: u64,
}

impl Row {
    /// The row of a member whose data is `size` bytes at byte `data_offset`.
    pub fn new(name: &[u8], size: u64, data_offset: u64) -> Row {
        Row { name: name.to_vec(), size, start_block: data_offset / BLOCK_U64, blocks: size.div_ceil(BLOCK_U64) }
    }
}

/// What is wrong with a CSV index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    /// A row does not have four fields, or a number does not parse.
    #[error("row {row}: {problem}")]
    BadRow {
        /// 1-based row number.
        row: u64,
        /// What is wrong.
        problem: String,
    },
}

/// The member name of the `n`th CSV index.
pub fn member_name(n: u32) -> String {
    format!(".tarindex_{n}.csv")
}

/// `N` if `name` is `.tarindex_N.csv`.
pub fn index_number(name: &[u8]) -> Option<u32> {
    let n = name.strip_prefix(b".tarindex_")?.strip_suffix(b".csv")?;
    if n.is_empty() || !n.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(n).ok()?.parse().ok()
}

/// Encodes rows.
pub fn encode(rows: &[Row]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().has_headers(false).terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    for r in rows {
        let (size, start, blocks) = (r.size.to_string(), r.start_block.to_string(), r.blocks.to_string());
        w.write_record([&r.name[..], size.as_bytes(), start.as_bytes(), blocks.as_bytes()]).expect("writing to a Vec");
    }
    w.into_inner().expect("writing to a Vec")
}

/// Decodes rows, ignoring NUL padding after them.
pub fn decode(data: &[u8]) -> Result<Vec<Row>, CsvError> {
    let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i.saturating_add(1));
    let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(&data[..end]);
    let mut rows = Vec::new();
    for (i, rec) in r.byte_records().enumerate() {
        let row = (i as u64).saturating_add(1);
        let rec = rec.map_err(|e| CsvError::BadRow { row, problem: e.to_string() })?;
        if rec.len() != 4 {
            return Err(CsvError::BadRow { row, problem: format!("{} fields, expected 4", rec.len()) });
        }
        let num = |i: usize, what: &str| {
            crate::format::pax::parse_decimal(&rec[i]).ok_or_else(|| CsvError::BadRow { row, problem: format!("{what} is not a number") })
        };
        rows.push(Row { name: rec[0].to_vec(), size: num(1, "size")?, start_block: num(2, "start block")?, blocks: num(3, "block count")? });
    }
    Ok(rows)
}

/// Byte offsets of blocks that look like CSV index headers, newest (last) first: the name field
/// is `.tarindex_N.csv` and the checksum holds. Steps back from the end one block at a time.
pub fn candidates(archive: &[u8]) -> impl Iterator<Item = u64> + '_ {
    let blocks = archive.len() / BLOCK;
    // Bounded: b < archive.len() / BLOCK, so b * BLOCK + BLOCK <= archive.len().
    #[allow(clippy::arithmetic_side_effects)]
    let at_of = |b: usize| (b * BLOCK, b * BLOCK + BLOCK);
    (0..blocks).rev().map(at_of).filter_map(move |(at, end)| {
        let block = &archive[at..end];
        if !block.starts_with(b".tarindex_") {
            return None;
        }
        let h = HeaderView::from_slice(block)?;
        (index_number(h.name()).is_some() && h.checksum_ok()).then_some(at as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_with_quoting() {
        let rows = vec![Row::new(b"plain.txt", 5, 512), Row::new(b"a,b \"q\"\nline", 512, 2048), Row::new(b"", 0, 4096)];
        let text = encode(&rows);
        assert!(text.starts_with(b"plain.txt,5,1,1\n\"a,b \"\"q\"\"\nline\",512,4,1\n"));
        assert_eq!(decode(&text).unwrap(), rows);
    }

    #[test]
    fn tolerant_reading() {
        let mut text = b"x,1,1,1\ny,600,3,2".to_vec();
        text.extend_from_slice(&[0; 100]);
        let rows = decode(&text).unwrap();
        assert_eq!(rows[1], Row { name: b"y".to_vec(), size: 600, start_block: 3, blocks: 2 });
        assert!(decode(b"x,1,1\n").is_err());
        assert!(decode(b"x,one,1,1\n").is_err());
    }

    #[test]
    fn names() {
        assert_eq!(index_number(b".tarindex_12.csv"), Some(12));
        assert_eq!(index_number(b".tarindex_.csv"), None);
        assert_eq!(index_number(b".tarindex_1.csvx"), None);
        assert_eq!(member_name(3), ".tarindex_3.csv");
    }
}

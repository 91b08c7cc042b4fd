//! The block structure of an xz file, read from its indexes (the xz file format, 1.2.0): where
//! each block starts in the file and in the decompressed stream, so that decoding can start at
//! any block. A file written with several blocks (`xz -T2`, `xz --block-size`, and `xz -T0`,
//! the default of xz 5.6) can be read from the block that holds a member; one written as a
//! single block cannot.
//!
//! Read backwards from the end, stream by stream: stream padding (zeros, in fours), the stream
//! footer (`YZ`, with the index's size), the index (a record per block: its unpadded size and its
//! uncompressed size, as variable-length integers), then the blocks, and the stream header.
//! Everything is checked for consistency (magic bytes, sizes that add up, the header's flags
//! equal to the footer's); the CRC32s are left to the decoder, and the decoded bytes are checked
//! against the digests of the seek section anyway.

/// A block of an xz file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Offset of the block header in the file.
    pub offset: u64,
    /// Offset of the first byte of its stream's index (where its stream's blocks end).
    pub stream_end: u64,
    /// Offset of its stream's 12-byte header.
    pub stream_start: u64,
    /// Offset of its first byte in the decompressed stream.
    pub decompressed_offset: u64,
    /// Its decompressed length.
    pub decompressed_len: u64,
}

/// Why a file's block structure cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XzError {
    /// Not an xz file, or cut short.
    #[error("not a complete xz file: {0}")]
    Structure(&'static str),
    /// Its bytes could not be read.
    #[error("the xz file could not be read ({0})")]
    Read(std::io::ErrorKind),
}

/// Bytes `start..end` of a file, as [`blocks_with`] asks for them.
pub type Get<'g, 'b> = &'g dyn Fn(usize, usize) -> Result<std::borrow::Cow<'b, [u8]>, XzError>;

const HEADER_MAGIC: &[u8; 6] = b"\xfd7zXZ\0";

/// A variable-length integer (xz's: 7 bits a byte, low first, at most 9 bytes) at `b[*at..]`.
fn varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..9u32 {
        let byte = *b.get(*at)?;
        *at = at.checked_add(1)?;
        v |= u64::from(byte & 0x7f).checked_shl(i.checked_mul(7)?)?;
        if byte & 0x80 == 0 {
            return (i == 0 || byte != 0).then_some(v);
        }
    }
    None
}

/// The blocks of the xz file `b`, in file order.
pub fn blocks(b: &[u8]) -> Result<Vec<Block>, XzError> {
    blocks_with(b.len(), &|start, end| Ok(std::borrow::Cow::Borrowed(&b[start..end])))
}

/// The blocks of an xz file of `len` bytes, whose bytes `get` gives (only its indexes, its
/// footers and its headers are asked for), in file order.
pub fn blocks_with(len: usize, get: Get<'_, '_>) -> Result<Vec<Block>, XzError> {
    let bad = XzError::Structure;
    let mut streams: Vec<Vec<Block>> = Vec::new();
    let mut end = len;
    while end > 0 {
        // Stream padding: zeros, a multiple of four bytes.
        while end >= 4 && *get(end.saturating_sub(4), end)? == [0, 0, 0, 0] {
            end = end.saturating_sub(4);
        }
        if end == 0 {
            break;
        }
        let footer_at = end.checked_sub(12).ok_or(bad("no stream footer"))?;
        let footer = get(footer_at, end)?;
        if &footer[10..12] != b"YZ" {
            return Err(bad("no stream footer magic"));
        }
        let backward = u64::from(u32::from_le_bytes(footer[4..8].try_into().expect("four bytes")));
        let index_len = usize::try_from(backward.saturating_add(1).saturating_mul(4)).map_err(|_| bad("index size"))?;
        let index_at = footer_at.checked_sub(index_len).ok_or(bad("index before the file's start"))?;
        let index = get(index_at, footer_at)?;
        let index = &index[..];
        if index.first() != Some(&0) {
            return Err(bad("no index indicator"));
        }
        let mut at = 1usize;
        let records = varint(index, &mut at).ok_or(bad("index record count"))?;
        let mut sizes = Vec::new();
        let mut blocks_len = 0u64;
        for _ in 0..records {
            let unpadded = varint(index, &mut at).ok_or(bad("index record"))?;
            let uncompressed = varint(index, &mut at).ok_or(bad("index record"))?;
            if unpadded < 5 {
                return Err(bad("block size"));
            }
            let padded = unpadded.checked_add(3).ok_or(bad("block size"))? & !3;
            blocks_len = blocks_len.checked_add(padded).ok_or(bad("block sizes"))?;
            sizes.push((padded, uncompressed));
        }
        // Index padding to a multiple of four, then its CRC32.
        let content_end = at.checked_add(3).ok_or(bad("index"))? & !3;
        if content_end.checked_add(4) != Some(index.len()) || index[at..content_end].iter().any(|&z| z != 0) {
            return Err(bad("index size"));
        }
        let blocks_at = usize::try_from(blocks_len).ok().and_then(|l| index_at.checked_sub(l)).ok_or(bad("blocks before the file's start"))?;
        let stream_start = blocks_at.checked_sub(12).ok_or(bad("no stream header"))?;
        let header = get(stream_start, blocks_at)?;
        if &header[..6] != HEADER_MAGIC || header[6..8] != footer[8..10] {
            return Err(bad("stream header does not match its footer"));
        }
        let mut offset = blocks_at as u64;
        let mut stream = Vec::with_capacity(sizes.len());
        for (padded, uncompressed) in sizes {
            stream.push(Block { offset, stream_end: index_at as u64, stream_start: stream_start as u64, decompressed_offset: 0, decompressed_len: uncompressed });
            offset = offset.saturating_add(padded);
        }
        streams.push(stream);
        end = stream_start;
    }
    streams.reverse();
    let mut out: Vec<Block> = streams.into_iter().flatten().collect();
    let mut d = 0u64;
    for blk in &mut out {
        blk.decompressed_offset = d;
        d = d.checked_add(blk.decompressed_len).ok_or(bad("decompressed sizes"))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        for (bytes, want) in [(&[0x00][..], Some(0)), (&[0x7f], Some(127)), (&[0x80, 0x01], Some(128)), (&[0x80, 0x00], None), (&[0xff], None)] {
            let mut at = 0;
            assert_eq!(varint(bytes, &mut at), want, "{bytes:?}");
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(blocks(b"not xz at all, not at all").is_err());
        assert!(blocks(&[0u8; 64]).unwrap().is_empty());
    }
}

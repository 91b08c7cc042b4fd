//! Compressed-stream detection by magic bytes, not by file name.

/// A compression format tar archives are commonly wrapped in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip (`1f 8b`).
    Gzip,
    /// bzip2 (`BZh`).
    Bzip2,
    /// xz (`fd 37 7a 58 5a 00`).
    Xz,
    /// zstd (`28 b5 2f fd`).
    Zstd,
    /// Unix compress (`1f 9d`).
    Compress,
    /// lzip (`LZIP`).
    Lzip,
    /// lz4 frame (`04 22 4d 18`).
    Lz4,
    /// The legacy `.lzma` ("LZMA alone") format, which has no magic: recognized by a plausible
    /// properties byte, dictionary size and uncompressed size.
    LzmaAlone,
}

impl Compression {
    /// How many leading bytes [`Compression::detect`] should be given.
    pub const HEAD: usize = 4096;

    /// The format of a stream starting with `head`, if it is a known compressed one.
    pub fn detect(head: &[u8]) -> Option<Compression> {
        let starts = |m: &[u8]| head.starts_with(m);
        if starts(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if starts(b"BZh") {
            Some(Compression::Bzip2)
        } else if starts(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Some(Compression::Xz)
        } else if starts(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else if head.len() >= 8 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18] {
            // A skippable frame (0x184D2A5?), which zstd and lz4 share: look at the frame after it.
            let size = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes")) as usize;
            match head.get(size.saturating_add(8)..) {
                Some(rest) if rest.len() >= 4 => Compression::detect(rest),
                _ => Some(Compression::Zstd),
            }
        } else if starts(&[0x1f, 0x9d]) {
            Some(Compression::Compress)
        } else if starts(b"LZIP") {
            Some(Compression::Lzip)
        } else if starts(&[0x04, 0x22, 0x4d, 0x18]) {
            Some(Compression::Lz4)
        } else if lzma_alone(head) {
            Some(Compression::LzmaAlone)
        } else {
            None
        }
    }

    /// Whether tarfs can decompress it (gzip, bzip2, xz, zstd, LZMA alone).
    pub fn supported(self) -> bool {
        matches!(self, Compression::Gzip | Compression::Bzip2 | Compression::Xz | Compression::Zstd | Compression::LzmaAlone)
    }

    /// Its usual name.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Compress => "compress",
            Compression::Lzip => "lzip",
            Compression::Lz4 => "lz4",
            Compression::LzmaAlone => "lzma",
        }
    }
}

/// An LZMA-alone header: properties `lc + lp*9 + pb*45` below 225, a dictionary size of 2^n or
/// 2^n + 2^(n-1) (at least 4 KiB), and an uncompressed size that is unknown (all ones) or below
/// 2^48. A tar header never looks like this: its first byte would be 0x5d (`]`) with NULs after.
fn lzma_alone(head: &[u8]) -> bool {
    if head.len() < 13 || head[0] >= 225 {
        return false;
    }
    let dict = u32::from_le_bytes(head[1..5].try_into().expect("4 bytes"));
    let top = 1u32.checked_shl(31u32.saturating_sub(dict.leading_zeros())).unwrap_or(0);
    let dict_ok = dict >= 4096 && (dict == top || top.checked_add(top >> 1) == Some(dict));
    let size = u64::from_le_bytes(head[5..13].try_into().expect("8 bytes"));
    dict_ok && (size == u64::MAX || size < 1 << 48)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8, 0]), Some(Compression::Gzip));
        assert_eq!(Compression::detect(&[0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0]), Some(Compression::Zstd));
        assert_eq!(Compression::detect(&[0x50, 0x2a, 0x4d, 0x18, 1, 0, 0, 0, 9, 0x04, 0x22, 0x4d, 0x18]), Some(Compression::Lz4));
        assert_eq!(Compression::detect(&[0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0, 0x28, 0xb5, 0x2f, 0xfd]), Some(Compression::Zstd));
        let mut lzma = vec![0x5d, 0, 0, 0x80, 0];
        lzma.extend_from_slice(&[0xff; 8]);
        assert_eq!(Compression::detect(&lzma), Some(Compression::LzmaAlone));
        let mut tar = vec![0u8; 512];
        tar[..5].copy_from_slice(b"hello");
        assert_eq!(Compression::detect(&tar), None);
        assert_eq!(Compression::detect(b"]\0\0\0\0\0\0\0\0\0\0\0\0"), None);
    }
}

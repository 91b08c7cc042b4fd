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
}

impl Compression {
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
        } else if starts(&[0x1f, 0x9d]) {
            Some(Compression::Compress)
        } else if starts(b"LZIP") {
            Some(Compression::Lzip)
        } else if starts(&[0x04, 0x22, 0x4d, 0x18]) {
            Some(Compression::Lz4)
        } else {
            None
        }
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
        }
    }
}

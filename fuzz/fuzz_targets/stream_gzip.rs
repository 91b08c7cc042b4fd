//! The stream scanner behind the gzip decoder: arbitrary bytes as a gzip stream (decoder errors
//! must be clean), and arbitrary bytes gzipped (the scanner sees them whole, through the
//! decoder's reads): no panic, no hang.
#![no_main]
use std::io::Write;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tarfs::format::compression::Compression;
use tarfs::{Limits, ScanOptions};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_sparse_entries: 10_000, ..Limits::default() };
    let opts = ScanOptions { lenient: false, limits };
    let path = Path::new("fuzz.tar.gz");
    if let Ok(mut r) = tarfs::stream::decoder(std::io::BufReader::new(data), Some(Compression::Gzip), path) {
        let _ = tarfs::stream::scan_stream(&mut r, path, opts, 4096, |_| Ok(()));
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    let gz = gz.finish().unwrap();
    if let Ok(mut r) = tarfs::stream::decoder(std::io::BufReader::new(&gz[..]), Some(Compression::Gzip), path) {
        let _ = tarfs::stream::scan_stream(&mut r, path, opts, 4096, |_| Ok(()));
    };
});

//! The stream scanner (stdin, FIFOs, tapes, decompressors) over arbitrary bytes, read in small
//! and odd-sized pieces: no panic, no hang, no offset that wraps, and on input the mapped scanner
//! reads without error, the same members at the same offsets.
#![no_main]
use std::io::Read;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tarfs::{Limits, ScanOptions, Scanner};

/// A reader that hands out at most `step` bytes per read, as a pipe may.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.step).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&knob, data)) = input.split_first() else { return };
    let limits = Limits { max_sparse_entries: 10_000, ..Limits::default() };
    let opts = ScanOptions { lenient: knob & 1 == 1, limits };
    let step = 1 + usize::from(knob >> 1) * 37;
    let mut streamed = Vec::new();
    let r = tarfs::stream::scan_stream(&mut Trickle { data, step }, Path::new("-"), opts, 1024, |e| {
        assert!(e.data_offset > e.header_offset && e.header_offset >= e.position);
        streamed.push((e.position, e.data_offset, e.stored_size));
        Ok(())
    });
    let mapped: Result<Vec<_>, _> = Scanner::new(data, opts).map(|e| e.map(|e| (e.position, e.data_offset, e.stored_size))).collect();
    if let (Ok(_), Ok(m)) = (&r, &mapped) {
        assert_eq!(&streamed, m);
    }
});

//! The scanner over arbitrary bytes, strict and lenient: no panic, no hang, and what it yields is
//! consistent (members in order, inside the input).
#![no_main]
use libfuzzer_sys::fuzz_target;
use tarfs::{Limits, ScanOptions, Scanner};

fuzz_target!(|data: &[u8]| {
    for lenient in [false, true] {
        let limits = Limits { max_sparse_entries: 10_000, ..Limits::default() };
        let opts = ScanOptions { lenient, limits };
        let mut last = 0;
        for e in Scanner::new(data, opts) {
            let Ok(e) = e else { break };
            assert!(e.position >= last && e.header_offset >= e.position && e.data_offset > e.header_offset);
            assert!(e.data_offset + e.stored_size <= data.len() as u64);
            last = e.data_offset;
            let _ = (e.path(), e.link(), e.uname(), e.gname(), e.is_simple());
            if let Ok(Some(map)) = e.sparse_map(&limits) {
                assert!(map.len() <= limits.max_sparse_entries);
            }
        }
    }
});

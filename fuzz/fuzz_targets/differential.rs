//! Differential: on inputs that both tarfs and the `tar` crate read without error, the same
//! regular-file members at the same data offsets. Inputs where the two read a header's size
//! differently (documented choices: octal text ending at a NUL, signed checksums, types without
//! data) are skipped.
#![no_main]
use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use tarfs::{ScanOptions, Scanner};

fuzz_target!(|data: &[u8]| {
    let ours: Result<Vec<_>, _> = Scanner::new(data, ScanOptions::default()).collect();
    let Ok(ours) = ours else { return };
    let mut archive = tar::Archive::new(Cursor::new(data));
    let Ok(entries) = archive.entries_with_seek() else { return };
    let mut theirs = Vec::new();
    for e in entries {
        let Ok(e) = e else { return };
        let Ok(size) = e.header().entry_size() else { return };
        theirs.push((e.header().entry_type().as_byte(), e.raw_file_position(), size));
    }
    if ours.len() != theirs.len() {
        return; // different ends of archive (zero blocks, extensions) are choices, not bugs
    }
    for (o, t) in ours.iter().zip(&theirs) {
        if !matches!(o.typeflag, b'0') || t.0 != b'0' || o.header.size() != Ok(t.2) || o.sparse.is_some() || o.pax.size.is_some() {
            return;
        }
    }
    for (o, t) in ours.iter().zip(&theirs) {
        assert_eq!(o.data_offset, t.1, "data offset of {:?}", String::from_utf8_lossy(&o.path()));
    }
});

//! The `.tarfs` index decoder on arbitrary bytes: no panic; what decodes re-encodes to the same
//! entry blocks.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tarfs::format::tarfs::{decode, encode_entry, encode_header};

fuzz_target!(|data: &[u8]| {
    if let Ok(idx) = decode(data) {
        for e in &idx.entries {
            assert!(e.checksum_ok());
            let _ = (e.position(), e.chain_blocks(), e.is_simple(), e.to_header());
            if let Some(chain) = e.chain_blocks() {
                let again = encode_entry(&e.to_header(), e.position(), chain, e.is_simple()).unwrap();
                assert!(e.matches_header(&again) || e.as_bytes()[500..] != again[500..]);
            }
        }
        if let Some(info) = &idx.header.info {
            let _ = encode_header(info);
        }
    }
});

//! Every accessor of the header view, on any 512 bytes: no panic, and checksums agree with a
//! plain recomputation.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tarfs::format::header::{checksums, gnu_sparse_entries, HeaderView};

fuzz_target!(|data: &[u8]| {
    let mut block = [0u8; 512];
    let n = data.len().min(512);
    block[..n].copy_from_slice(&data[..n]);
    let h = HeaderView::new(&block);
    let _ = (h.format(), h.typeflag(), h.name(), h.prefix(), h.linkname(), h.uname(), h.gname());
    let _ = (h.mode(), h.uid(), h.gid(), h.size(), h.mtime(), h.device(), h.gnu_real_size(), h.gnu_is_extended());
    for e in gnu_sparse_entries(h.gnu_sparse_slots()) {
        let _ = e;
    }
    if h.checksum_ok() {
        let (u, s) = checksums(&block);
        let stored = h.stored_checksum().unwrap();
        assert!(stored == u64::from(u) || i64::try_from(stored).ok() == Some(i64::from(s)));
    }
});

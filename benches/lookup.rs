//! Criterion benches of lookup by name through an index with extension data (issue #14):
//! `lookup-by-name/open/N` opens the index (mapping, header, extension table, freshness sample)
//! and `lookup-by-name/lookup/N` finds one member by binary search of its name table, at 1,000
//! and 1,000,000 members. Both should cost about the same at either size.

use std::fs::File;
use std::hint::black_box;
use std::io::{self, Write};
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use tarfs::archive::Archive;
use tarfs::builder::Builder;
use tarfs::ops::index::{write_sidecar, IndexOptions};
use tarfs::ops::read::Reader;
use tarfs::ScanOptions;

/// Writes an archive of `n` empty members named `d{i / 1000}/member-{i}` at `path`, and its
/// sidecar.
fn empty_members(path: &Path, n: u64) {
    let mut b = Builder::new(io::BufWriter::with_capacity(1 << 20, File::create(path).unwrap()));
    for i in 0..n {
        b.add(format!("d{}/member-{i}", i / 1000), b"").unwrap();
    }
    b.finish().unwrap().flush().unwrap();
    let archive = Archive::open(path).unwrap();
    write_sidecar(&archive, &tarfs::archive::sidecar_path(path, None), &IndexOptions::default()).unwrap();
}

/// Lookup by name through an index with extension data: open (mapping, header, extension
/// table, freshness sample) and one lookup, at 1,000 and at 1,000,000 members.
fn lookup_scaling(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("lookup-by-name");
    g.sample_size(20);
    for n in [1_000u64, 1_000_000] {
        let path = dir.path().join(format!("empty-{n}.tar"));
        empty_members(&path, n);
        let archive = Archive::open(&path).unwrap();
        let name = format!("d{}/member-{}", (n * 7 / 10) / 1000, n * 7 / 10);
        g.bench_function(format!("open/{n}"), |b| b.iter(|| Reader::open(black_box(&archive), None, ScanOptions::default()).unwrap().has_extension()));
        let reader = Reader::open(&archive, None, ScanOptions::default()).unwrap();
        assert!(reader.has_extension());
        g.bench_function(format!("lookup/{n}"), |b| {
            b.iter(|| {
                let found = reader.lookup(black_box(name.as_bytes())).unwrap();
                assert_eq!(found.len(), 1);
                found[0].position
            })
        });
    }
    g.finish();
}

criterion_group!(benches, lookup_scaling);
criterion_main!(benches);

//! Scan throughput (members/s) on a generated archive of 200,000 members of 0–4 KiB, the index
//! write and decode rates, and the lookup of one member through the index.

use std::hint::black_box;
use std::io::Cursor;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tarfs::builder::Builder;
use tarfs::format::header::HeaderView;
use tarfs::format::tarfs::decode;
use tarfs::ops::index::{write_index, IndexOptions};
use tarfs::{ScanOptions, Scanner};

const MEMBERS: usize = 200_000;

fn small_members() -> Vec<u8> {
    let mut b = Builder::new(Vec::with_capacity(600 << 20));
    let data = vec![0x5au8; 4096];
    let mut x: u64 = 1;
    for i in 0..MEMBERS {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let len = (x >> 33) as usize % 4097;
        b.add(format!("dir{}/file{i}.dat", i % 100), &data[..len]).unwrap();
    }
    b.finish().unwrap()
}

fn benches(c: &mut Criterion) {
    let tar = small_members();
    let mut g = c.benchmark_group("200k-small");
    g.sample_size(10);
    g.throughput(Throughput::Elements(MEMBERS as u64));
    g.bench_function("scan", |b| {
        b.iter(|| Scanner::new(black_box(&tar), ScanOptions::default()).filter(Result::is_ok).count())
    });
    g.bench_function("index-write", |b| {
        b.iter(|| {
            let mut out = Cursor::new(Vec::with_capacity((MEMBERS + 1) * 512));
            write_index(Path::new("bench"), black_box(&tar), &IndexOptions::default(), &mut out).unwrap();
            out.into_inner().len()
        })
    });
    let mut out = Cursor::new(Vec::new());
    write_index(Path::new("bench"), &tar, &IndexOptions::default(), &mut out).unwrap();
    let index = out.into_inner();
    g.bench_function("index-decode", |b| b.iter(|| decode(black_box(&index)).unwrap().entries.len()));
    g.bench_function("lookup-last", |b| {
        let want = format!("dir{}/file{}.dat", (MEMBERS - 1) % 100, MEMBERS - 1);
        b.iter(|| {
            let idx = decode(&index).unwrap();
            idx.entries.iter().rev().find(|e| HeaderView::new(e.as_bytes()).name() == want.as_bytes()).map(|e| e.position())
        })
    });
    g.finish();
}

criterion_group!(scan, benches);
criterion_main!(scan);

//! Criterion benches, in members per second:
//!
//! - `scan/*`: the three archive shapes of `scripts/bench-peers.sh` — 200,000 members of 0–4 KiB
//!   (in memory), 50,000 members with pax long names (in memory), and 20,000 members of up to
//!   64 MiB (3 GB, a sparse file, mapped) — each by the sequential walk, the chunked parallel scan,
//!   and (large members) the seeking reads;
//! - `index/*`: `.tarfs` encoding (a whole index written from a scan) and decoding (every
//!   checksum, sequential and on every core);
//! - `lookup/*`: one member found through a sidecar, as `tarfs cat` finds it (mapped sidecar,
//!   decoded, names judged on entries).
//!
//! `benches/lookup.rs` has lookup by name through an index with extension data.
//!
//! The timings behind the README's figures come from `scripts/bench-peers.sh`, which times whole
//! commands against other tools; these benches isolate the library's parts.

use std::fs::File;
use std::hint::black_box;
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tarfs::archive::Archive;
use tarfs::builder::Builder;
use tarfs::chunked::{scan_map, ScanMode};
use tarfs::format::tarfs::decode;
use tarfs::ops::index::{write_index, write_sidecar, IndexOptions};
use tarfs::ops::read::{decode_index, Reader};
use tarfs::{ScanOptions, Scanner};

/// A deterministic generator of sizes.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn small_members() -> Vec<u8> {
    let mut b = Builder::new(Vec::with_capacity(600 << 20));
    let data = vec![0x5au8; 4096];
    let mut r = Lcg(1);
    for i in 0..200_000 {
        let len = r.below(4097) as usize;
        b.add(format!("small/d{:04}/file-{i:07}.bin", i / 1000), &data[..len]).unwrap();
    }
    b.finish().unwrap()
}

fn pax_members() -> Vec<u8> {
    let mut b = Builder::new(Vec::with_capacity(150 << 20));
    let data = vec![0xa5u8; 2048];
    let mut r = Lcg(2);
    for i in 0..50_000 {
        // A last component over 100 bytes cannot be split into ustar prefix and name: pax `path`.
        let name = format!("pax/level-{}/member-{i:07}-{}.dat", i % 50, "long".repeat(25 + r.below(10) as usize));
        b.add(name, &data[..r.below(2049) as usize]).unwrap();
    }
    b.finish().unwrap()
}

/// Writes through to a file, but seeks over runs of zeros instead of writing them: member data
/// of zeros becomes holes, so a 3 GB archive costs almost no disk.
struct Holes(File);

impl Write for Holes {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if b.len() >= 4096 && b.iter().all(|&c| c == 0) {
            self.0.seek(SeekFrom::Current(b.len() as i64))?;
            return Ok(b.len());
        }
        self.0.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// `n` zero bytes, read in large pieces.
struct Zeros(u64);

impl Read for Zeros {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.0) as usize;
        buf[..n].fill(0);
        self.0 -= n as u64;
        Ok(n)
    }
}

fn large_members(path: &Path) {
    let mut b = Builder::new(Holes(File::create(path).unwrap()));
    let mut r = Lcg(3);
    for i in 0..20_000u64 {
        let size = if i % 500 == 250 { (32 << 20) + r.below((32 << 20) + 1) } else { r.below(100 * 1024 + 1) };
        b.add_stream(format!("large/d{:03}/blob-{i:06}", i / 100), size, &mut Zeros(size), &Default::default()).unwrap();
    }
    let Holes(mut f) = b.finish().unwrap();
    let len = f.stream_position().unwrap();
    f.set_len(len).unwrap();
}

fn scan_shapes(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let large = dir.path().join("large.tar");
    large_members(&large);
    let large_map = Archive::open(&large).unwrap();
    let shapes: [(&str, Vec<u8>, u64); 2] = [("small", small_members(), 200_000), ("pax", pax_members(), 50_000)];
    let mut g = c.benchmark_group("scan");
    g.sample_size(10);
    let count = |data: &[u8], mode| scan_map(data, ScanOptions::default(), mode, 2, |_| (), |()| Ok::<_, ()>(()), |_| ()).unwrap().members;
    for (name, data, members) in shapes.iter().map(|(n, d, m)| (*n, d.as_slice(), *m)).chain([("large", large_map.bytes(), 20_000)]) {
        assert_eq!(count(data, ScanMode::Sequential), members);
        g.throughput(Throughput::Elements(members));
        g.bench_function(format!("{name}/sequential"), |b| b.iter(|| count(black_box(data), ScanMode::Sequential)));
        g.bench_function(format!("{name}/chunked"), |b| b.iter(|| count(black_box(data), ScanMode::Parallel)));
    }
    g.throughput(Throughput::Elements(20_000));
    g.bench_function("large/reads", |b| {
        let file = File::open(&large).unwrap();
        b.iter(|| tarfs::stream::scan_file(&file, &large, ScanOptions::default(), false, |_| Ok(())).unwrap().end.members)
    });
    g.finish();
}

fn index_and_lookup(c: &mut Criterion) {
    let tar = small_members();
    let members = Scanner::new(&tar, ScanOptions::default()).count() as u64;
    let mut g = c.benchmark_group("index");
    g.sample_size(10);
    g.throughput(Throughput::Elements(members));
    for mode in [ScanMode::Sequential, ScanMode::Parallel] {
        g.bench_function(format!("encode/{mode:?}"), |b| {
            b.iter(|| {
                let mut out = Cursor::new(Vec::with_capacity((members as usize + 1) * 512));
                write_index(Path::new("bench"), black_box(&tar), &IndexOptions { mode, ..IndexOptions::default() }, &mut out).unwrap();
                out.into_inner().len()
            })
        });
    }
    let mut out = Cursor::new(Vec::new());
    // The v1 decoders are timed: a v1 index.
    let v1 = IndexOptions { format: tarfs::ops::index::IndexFormat::V1, ..IndexOptions::default() };
    write_index(Path::new("bench"), &tar, &v1, &mut out).unwrap();
    let index = out.into_inner();
    g.bench_function("decode/sequential", |b| b.iter(|| decode(black_box(&index)).unwrap().entries.len()));
    g.bench_function("decode/parallel", |b| b.iter(|| decode_index(black_box(&index)).unwrap().entries.len()));
    g.finish();

    // Through files, as `tarfs cat` does: the archive and its sidecar, both mapped.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.tar");
    std::fs::write(&path, &tar).unwrap();
    drop(tar);
    let archive = Archive::open(&path).unwrap();
    write_sidecar(&archive, &tarfs::archive::sidecar_path(&path, None), &IndexOptions::default()).unwrap();
    let last = format!("small/d0199/file-{:07}.bin", members - 1);
    let mut g = c.benchmark_group("lookup");
    g.sample_size(10);
    g.bench_function("last-of-200k", |b| {
        b.iter(|| {
            let reader = Reader::open(&archive, None, ScanOptions::default()).unwrap();
            let mut found = 0;
            reader.for_each_path(|p| p == last.as_bytes(), |e| {
                found = e.data_offset;
                Ok(())
            })
            .unwrap();
            assert!(found > 0);
            found
        })
    });
    g.finish();
}

criterion_group!(benches, scan_shapes, index_and_lookup);
criterion_main!(benches);

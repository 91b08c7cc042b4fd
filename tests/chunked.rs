//! The chunked (parallel) scan and the seeking file scan give exactly the sequential scanner's
//! result: the same members, the same end, the same error at the same offset.
//!
//! Chunks here are a few blocks long, so that chunk boundaries fall everywhere: inside headers'
//! data, inside pax extension data, on member boundaries, inside members whose data is itself a
//! tar archive (valid header blocks with the `ustar` magic and good checksums, which a worker will
//! start from, and which the stitcher must never take).

mod common;

use std::path::Path;

use proptest::prelude::*;
use tarfs::builder::{Builder, MemberOptions};
use tarfs::chunked::{scan_chunked, Stitched};
use tarfs::format::header::UstarFields;
use tarfs::scan::{Entry, ScanEnd, ScanError};
use tarfs::{ScanOptions, Scanner};

/// What a scan says of one member, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    position: u64,
    header_offset: u64,
    data_offset: u64,
    stored_size: u64,
    size: u64,
    typeflag: u8,
    simple: bool,
    path: Vec<u8>,
    link: Vec<u8>,
    mtime: i64,
}

impl Seen {
    fn of(e: &Entry<'_>) -> Seen {
        Seen {
            position: e.position,
            header_offset: e.header_offset,
            data_offset: e.data_offset,
            stored_size: e.stored_size,
            size: e.size,
            typeflag: e.typeflag,
            simple: e.is_simple(),
            path: e.path().into_owned(),
            link: e.link().to_vec(),
            mtime: e.mtime,
        }
    }
}

type Outcome = (Vec<Seen>, Result<ScanEnd, ScanError>);

fn sequential(data: &[u8], opts: ScanOptions) -> Outcome {
    let mut seen = Vec::new();
    let mut s = Scanner::new(data, opts);
    for e in s.by_ref() {
        match e {
            Ok(e) => seen.push(Seen::of(&e)),
            Err(err) => return (seen, Err(err)),
        }
    }
    (seen, Ok(s.end().unwrap()))
}

fn chunked(data: &[u8], opts: ScanOptions, chunk: u64, threads: usize) -> (Outcome, Stitched) {
    let mut seen = Vec::new();
    let r = scan_chunked(data, opts, chunk, threads, Seen::of, |s| -> Result<(), ScanError> {
        seen.push(s);
        Ok(())
    }, |e| e);
    match r {
        Ok((end, stitched)) => ((seen, Ok(end)), stitched),
        Err(e) => ((seen, Err(e)), Stitched::default()),
    }
}

fn assert_same(data: &[u8], what: &str, chunks: &[u64]) -> Stitched {
    let mut total = Stitched::default();
    for lenient in [false, true] {
        let opts = ScanOptions { lenient, ..ScanOptions::default() };
        let want = sequential(data, opts);
        for &chunk in chunks {
            for threads in [1, 2, 3] {
                let (got, stitched) = chunked(data, opts, chunk, threads);
                assert_eq!(got.1, want.1, "{what}: end or error differs (chunk {chunk}, {threads} threads, lenient {lenient})");
                assert_eq!(got.0.len(), want.0.len(), "{what}: member count (chunk {chunk}, {threads} threads, lenient {lenient})");
                for (i, (g, w)) in got.0.iter().zip(&want.0).enumerate() {
                    assert_eq!(g, w, "{what}: member {i} (chunk {chunk}, {threads} threads, lenient {lenient})");
                }
                total.speculative += stitched.speculative;
                total.sequential += stitched.sequential;
            }
        }
    }
    total
}

#[test]
fn every_corpus_archive_scans_the_same_chunked() {
    let mut files = Vec::new();
    for e in walkdir::WalkDir::new(common::corpus_dir()).sort_by_file_name() {
        let e = e.unwrap();
        if e.file_type().is_file() && !e.path().extension().is_some_and(|x| x == "jsonl" || x == "md") {
            files.push(e.into_path());
        }
    }
    assert!(files.len() >= 216, "corpus has {} files", files.len());
    let mut stitched = Stitched::default();
    for f in &files {
        let data = std::fs::read(f).unwrap();
        let s = assert_same(&data, &f.display().to_string(), &[512, 1024, 1536, 4096, 10240]);
        stitched.speculative += s.speculative;
        stitched.sequential += s.sequential;
    }
    // The workers' results are really used, not only the stitcher's own scan.
    assert!(stitched.speculative > 1000, "{stitched:?}");
}

/// A small tar archive, as bytes: what a member's data looks like when it is itself a tarball.
fn inner_tar(seed: u64, members: usize) -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    for i in 0..members {
        let len = ((seed * 7919 + i as u64 * 104_729) % 3000) as usize;
        let name = if i % 3 == 0 { format!("inner-{seed}/{}/{i}", "long".repeat(40)) } else { format!("inner-{seed}-{i}") };
        b.add_with(name, &vec![b'a' + (i % 26) as u8; len], &MemberOptions::default()).unwrap();
    }
    b.finish().unwrap()
}

/// An archive whose members' data is full of valid header blocks: nested tarballs, whole and cut
/// at odd block offsets, and runs of copies of one header.
fn fake_header_archive(members: usize) -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    for i in 0..members {
        let inner = inner_tar(i as u64, 1 + i % 5);
        let data: Vec<u8> = match i % 4 {
            0 => inner,
            1 => inner[512 * (i % 3)..].to_vec(),
            2 => inner[..inner.len() - 1024].iter().chain(&inner[..1536]).copied().collect(),
            _ => inner[..512].repeat(1 + i % 7),
        };
        b.add_with(format!("outer/{i:05}.tar"), &data, &MemberOptions::default()).unwrap();
    }
    b.finish().unwrap()
}

#[test]
fn data_full_of_valid_headers_is_never_taken_for_headers() {
    let data = fake_header_archive(400);
    // The fake headers really are there: scanning from inside the first member's data finds a
    // member that the real chain does not have.
    let first = Scanner::new(&data, ScanOptions::default()).next().unwrap().unwrap();
    let inside = Scanner::at(&data, first.data_offset, ScanOptions::default()).next().unwrap().unwrap();
    assert!(inside.path().starts_with(b"inner-"), "{:?}", String::from_utf8_lossy(&inside.path()));
    let stitched = assert_same(&data, "fake headers", &[512, 1024, 2048, 4096, 8192, 65536]);
    assert!(stitched.speculative > 0 && stitched.sequential > 0, "{stitched:?}");
}

#[test]
fn globals_zero_blocks_truncation_and_garbage_scan_the_same() {
    let base = fake_header_archive(60);
    let body = &base[..base.len() - 1024];
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    // A pax global header in the middle: what follows carries state, so the stitcher scans on.
    let mid = {
        let mut s = Scanner::new(body, ScanOptions::default());
        for _ in 0..30 {
            s.next();
        }
        s.position() as usize
    };
    let g_data = b"20 path=global-name\n";
    let g = UstarFields { path: b"pax_global_header", size: g_data.len() as u64, typeflag: b'g', mode: 0o644, ..Default::default() }.encode();
    let mut with_g = body[..mid].to_vec();
    with_g.extend_from_slice(&g);
    with_g.extend_from_slice(g_data);
    with_g.resize(with_g.len().next_multiple_of(512), 0);
    with_g.extend_from_slice(&body[mid..]);
    with_g.extend_from_slice(&[0; 1024]);
    cases.push(("global header".into(), with_g));
    // Zero blocks between members (lenient reads on; strict ends there).
    let mut zeros = body[..mid].to_vec();
    zeros.extend_from_slice(&[0; 512 * 3]);
    zeros.extend_from_slice(body);
    cases.push(("zero blocks".into(), zeros));
    // A lone zero block, then members.
    let mut lone = body[..mid].to_vec();
    lone.extend_from_slice(&[0; 512]);
    lone.extend_from_slice(&body[mid..]);
    cases.push(("lone zero block".into(), lone));
    // Truncated inside a member's data, and inside a header.
    cases.push(("truncated data".into(), body[..body.len() - 700].to_vec()));
    cases.push(("truncated header".into(), body[..mid + 100].to_vec()));
    // A corrupt header in the middle.
    let mut corrupt = body.to_vec();
    corrupt[mid + 10] ^= 0x55;
    corrupt.extend_from_slice(&[0; 1024]);
    cases.push(("corrupt header".into(), corrupt));
    // Garbage after the end marker.
    let mut garbage = base.clone();
    garbage.extend_from_slice(&inner_tar(99, 4));
    cases.push(("a tarball after the end marker".into(), garbage));
    for (what, data) in &cases {
        assert_same(data, what, &[512, 1024, 4096]);
    }
}

/// The seeking file scan (headers read, data seeked over) against the mapped scan.
#[test]
fn seeking_file_scan_equals_mapped_scan_on_the_corpus() {
    let mut compared = 0;
    for e in walkdir::WalkDir::new(common::corpus_dir()).sort_by_file_name() {
        let e = e.unwrap();
        if !e.file_type().is_file() || e.path().extension().is_some_and(|x| x == "jsonl" || x == "md") {
            continue;
        }
        let path = e.path();
        let data = std::fs::read(path).unwrap();
        let want = sequential(&data, ScanOptions::default());
        let file = std::fs::File::open(path).unwrap();
        // Both ways: plain reads, and with the readahead that a cold walk asks for.
        for cold in [false, true] {
            let mut seen = Vec::new();
            let got = tarfs::stream::scan_file(&file, Path::new("x"), ScanOptions::default(), cold, |e| {
                seen.push(Seen::of(e));
                Ok(())
            });
            match (&want.1, got) {
                (Ok(w), Ok(g)) => {
                    assert_eq!(seen, want.0, "{} (cold: {cold})", path.display());
                    assert_eq!((g.end.end_offset, g.end.members, g.end.stop), (w.end_offset, w.members, w.stop), "{} (cold: {cold})", path.display());
                    assert_eq!(g.total_len, data.len() as u64);
                    compared += 1;
                }
                (Err(_), Err(_)) => {}
                (w, g) => panic!("{} (cold: {cold}): mapped {w:?}, seeking {:?}", path.display(), g.map(|g| g.end)),
            }
        }
    }
    assert!(compared > 200, "{compared}");
}

fn member_data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (0usize..3000).prop_map(|n| (0..n).map(|i| (i * 31 % 251) as u8).collect()),
        (0u64..50, 1usize..4).prop_map(|(s, m)| inner_tar(s, m)),
        (0u64..50, 1usize..4, 0usize..6).prop_map(|(s, m, cut)| {
            let t = inner_tar(s, m);
            t[(512 * cut).min(t.len())..].to_vec()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_archives_of_nested_tarballs_scan_the_same(
        datas in proptest::collection::vec(member_data(), 1..40),
        chunk_blocks in 1u64..24,
        cut in proptest::option::of(0usize..200_000),
    ) {
        let mut b = Builder::new(Vec::new());
        for (i, d) in datas.iter().enumerate() {
            b.add_with(format!("m{i}"), d, &MemberOptions::default()).unwrap();
        }
        let mut data = b.finish().unwrap();
        if let Some(c) = cut {
            data.truncate(c.min(data.len()));
        }
        let want = sequential(&data, ScanOptions::default());
        for threads in [1, 2] {
            let (got, _) = chunked(&data, ScanOptions::default(), chunk_blocks * 512, threads);
            prop_assert_eq!(&got, &want);
        }
    }
}

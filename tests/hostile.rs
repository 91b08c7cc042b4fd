//! Hostile input: mutated archives, resource claims, the corpus's bad archives through every
//! command that reads or changes archives, and device nodes for non-root users.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{corpus_dir, ok, tarfs, truth};
use proptest::prelude::*;
use tarfs::builder::Builder;
use tarfs::format::header::{set_checksum, BLOCK};
use tarfs::format::pax::push_record;
use tarfs::{ScanOptions, Scanner};
use tempfile::TempDir;

fn built(sizes: &[usize]) -> (Vec<u8>, Vec<(Vec<u8>, u64)>) {
    let mut b = Builder::new(Vec::new());
    for (i, &n) in sizes.iter().enumerate() {
        let name = if i % 3 == 2 { format!("long/{}/{i}", "x".repeat(120)) } else { format!("m{i}") };
        b.add(&name, &vec![i as u8; n]).unwrap();
    }
    let placed = b.placed().iter().map(|p| (p.name.clone(), p.data_offset)).collect();
    (b.finish().unwrap(), placed)
}

#[derive(Debug, Clone)]
enum Mutation {
    BitFlip(usize, u8),
    Truncate(usize),
    HugeSize(usize, u64),
    DuplicateHeader(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(a, b)| Mutation::BitFlip(a, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), prop_oneof![Just(u64::MAX >> 1), Just(1u64 << 40), Just(0o77777777777), any::<u64>()]).prop_map(|(a, v)| Mutation::HugeSize(a, v)),
        any::<usize>().prop_map(Mutation::DuplicateHeader),
    ]
}

fn apply(tar: &mut Vec<u8>, m: &Mutation) {
    let blocks = tar.len() / BLOCK;
    if blocks == 0 {
        return; // a previous truncation left less than a block
    }
    match *m {
        Mutation::BitFlip(at, bit) => {
            let at = at % tar.len();
            tar[at] ^= 1 << bit;
        }
        Mutation::Truncate(at) => tar.truncate(at % tar.len()),
        Mutation::HugeSize(block, v) => {
            // Set a header's size field (base-256, so any value fits) and fix its checksum.
            let b = (block % blocks) * BLOCK;
            let field = &mut tar[b + 124..b + 136];
            field.fill(0);
            field[0] = 0x80;
            field[4..].copy_from_slice(&v.to_be_bytes());
            let mut block: [u8; BLOCK] = tar[b..b + BLOCK].try_into().unwrap();
            set_checksum(&mut block);
            tar[b..b + BLOCK].copy_from_slice(&block);
        }
        Mutation::DuplicateHeader(block) => {
            let b = (block % blocks) * BLOCK;
            let copy = tar[b..b + BLOCK].to_vec();
            tar.splice(b..b, copy);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn mutated_archives_never_panic_and_never_lie(
        sizes in proptest::collection::vec(prop_oneof![Just(0usize), Just(511), Just(512), Just(513), 0usize..3000], 1..8),
        mutations in proptest::collection::vec(mutation(), 1..3),
        lenient in any::<bool>(),
    ) {
        let (original, placed) = built(&sizes);
        let mut tar = original.clone();
        for m in &mutations {
            apply(&mut tar, m);
        }
        let opts = ScanOptions { lenient, ..Default::default() };
        let got: Result<Vec<_>, _> = Scanner::new(&tar, opts).collect();
        if let Ok(members) = got {
            // Whatever is read is consistent: in order, inside the input.
            let mut last = 0;
            for e in &members {
                prop_assert!(e.position >= last && e.data_offset + e.stored_size <= tar.len() as u64);
                last = e.data_offset;
            }
        }
        // Unmutated, the scanner reads exactly what was built.
        let exact: Vec<_> = Scanner::new(&original, ScanOptions::default()).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(exact.len(), placed.len());
        for (e, (name, data_offset)) in exact.iter().zip(&placed) {
            let path = e.path();
            prop_assert_eq!((path.as_ref(), e.data_offset), (name.as_slice(), *data_offset));
        }
    }
}

#[test]
fn bad_corpus_archives_fail_everywhere_and_stay_unchanged() {
    let tmp = TempDir::new().unwrap();
    let mut n = 0;
    for (i, t) in truth().iter().enumerate() {
        if t["expected_outcome"] != "error" || t["tags"].to_string().contains("single-zero-block") {
            continue;
        }
        let src = corpus_dir().join(t["file"].as_str().unwrap());
        for cmd in ["index", "ls", "embed", "csv"] {
            let a = tmp.path().join(format!("e{i}-{cmd}.tar"));
            fs::copy(&src, &a).unwrap();
            fs::set_permissions(&a, fs::Permissions::from_mode(0o644)).unwrap();
            let before = fs::read(&a).unwrap();
            let out = tarfs().arg(cmd).arg(&a).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{src:?} {cmd}: {err}");
            assert!(err.contains("at byte") && !err.contains("panicked"), "{src:?} {cmd}: {err}");
            assert_eq!(fs::read(&a).unwrap(), before, "{src:?} {cmd}: input changed");
        }
        n += 1;
    }
    assert!(n >= 25, "{n}");
}

/// Peak resident memory of a command, in KiB, from GNU time.
fn peak_kib(args: &[&str], archive: &Path) -> (u64, String) {
    let out = Command::new("/usr/bin/time").arg("-v").arg(env!("CARGO_BIN_EXE_tarfs")).arg(args[0]).arg(archive).args(&args[1..]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let kib = err.lines().find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes): ")).expect("GNU time's report").trim().parse().unwrap();
    (kib, err)
}

fn ustar(name: &str, size_field: &[u8], typeflag: u8) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..124 + size_field.len()].copy_from_slice(size_field);
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = typeflag;
    h[257..265].copy_from_slice(b"ustar\x0000");
    set_checksum(&mut h);
    h
}

#[test]
fn resource_claims_stay_under_64_mib() {
    let tmp = TempDir::new().unwrap();
    // 1 KiB that claims an 8 GiB pax header.
    let mut a = ustar("PaxHeaders/x", b"100000000000", b'x').to_vec();
    a.extend_from_slice(&[b'9'; BLOCK]);
    let huge_pax = tmp.path().join("huge-pax.tar");
    fs::write(&huge_pax, &a).unwrap();
    // 1 KiB that claims a sparse map of 10^9 entries (pax GNU sparse 1.0).
    let mut pax = Vec::new();
    push_record(&mut pax, b"GNU.sparse.major", b"1");
    push_record(&mut pax, b"GNU.sparse.minor", b"0");
    push_record(&mut pax, b"GNU.sparse.realsize", b"1000000000000");
    push_record(&mut pax, b"GNU.sparse.name", b"sparse");
    let mut b = ustar("PaxHeaders/s", format!("{:011o}\0", pax.len()).as_bytes(), b'x').to_vec();
    pax.resize(BLOCK, 0);
    b.extend_from_slice(&pax);
    b.extend_from_slice(&ustar("GNUSparseFile/s", b"00000001000\0", b'0'));
    let mut map = b"1000000000\n0\n1\n".to_vec();
    map.resize(BLOCK, 0);
    b.extend_from_slice(&map);
    let sparse = tmp.path().join("sparse-claim.tar");
    fs::write(&sparse, &b).unwrap();
    for archive in [&huge_pax, &sparse] {
        assert!(fs::metadata(archive).unwrap().len() <= 2048);
        for args in [&["index"][..], &["ls"], &["cat", "sparse"]] {
            let (kib, err) = peak_kib(args, archive);
            assert!(kib < 64 * 1024, "{archive:?} {args:?}: {kib} KiB");
            assert!(err.contains("exceed the limit") || err.contains("more than 1000000 entries") || err.contains("runs past the end"), "{archive:?} {args:?}: {err}");
        }
    }
    // A lower limit from the command line applies.
    let small = tmp.path().join("small.tar");
    let mut bld = Builder::new(Vec::new());
    bld.add("a/".repeat(200) + "f", b"x").unwrap();
    fs::write(&small, bld.finish().unwrap()).unwrap();
    let out = tarfs().arg("ls").arg("--max-path").arg("100").arg(&small).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("exceeds the limit of 100 bytes"));
    ok(tarfs().arg("ls").arg(&small));
}

#[test]
fn device_nodes_are_refused_for_non_root() {
    let tmp = TempDir::new().unwrap();
    let a = tmp.path().join("dev.tar");
    let script = "import tarfile,sys,io\nwith tarfile.open(sys.argv[1],'w') as t:\n i=tarfile.TarInfo('null'); i.type=tarfile.CHRTYPE; i.devmajor=1; i.devminor=3; t.addfile(i)\n j=tarfile.TarInfo('ok.txt'); j.size=2; t.addfile(j, io.BytesIO(b'ok'))";
    ok(Command::new("python3").arg("-c").arg(script).arg(&a));
    let dest = tmp.path().join("out");
    fs::create_dir_all(&dest).unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o777)).unwrap();
    fs::set_permissions(&a, fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_tarfs"))
        .arg("extract")
        .arg(&a)
        .arg("-C")
        .arg(&dest)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("null: cannot create a device node: not running as root"), "{err}");
    assert_eq!(fs::read(dest.join("ok.txt")).unwrap(), b"ok");
    assert!(!dest.join("null").exists());
}

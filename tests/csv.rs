//! CSV index members: `tarfs csv` on archives from the real tools and the corpus, the seed's way of
//! reading them, crash safety, the seed's buggy archives, and `Builder::add_index`.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{corpus_dir, ok, python_members, tarfs, truth, write_pattern};
use proptest::prelude::*;
use tarfs::builder::Builder;
use tarfs::format::csv::{self, Row};
use tarfs::{ScanOptions, Scanner};
use tempfile::TempDir;

/// Reads the newest CSV index as the seed's reader does: the last block from the end whose name
/// starts with `.tarindex_`, its size from the header, rows split from the right.
fn seed_read(archive: &[u8]) -> Vec<(Vec<u8>, u64, u64, u64)> {
    let at = (0..archive.len() / 512).rev().map(|b| b * 512).find(|&o| archive[o..].starts_with(b".tarindex_")).expect("an index");
    let size = u64::from_str_radix(std::str::from_utf8(&archive[at + 124..at + 135]).unwrap().trim_matches(char::from(0)), 8).unwrap();
    let text = &archive[at + 512..at + 512 + size as usize];
    let num = |f: &[u8]| std::str::from_utf8(f).unwrap().parse::<u64>().unwrap();
    text.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut p = l.rsplitn(4, |&b| b == b',');
            let blocks = num(p.next().unwrap());
            let start = num(p.next().unwrap());
            let size = num(p.next().unwrap());
            (p.next().unwrap().to_vec(), size, start, blocks)
        })
        .collect()
}

fn last_rows(archive: &Path) -> Vec<Row> {
    let data = fs::read(archive).unwrap();
    let last = Scanner::new(&data, ScanOptions::default()).map(Result::unwrap).last().unwrap();
    assert!(csv::index_number(&last.path()).is_some(), "last member is {:?}", String::from_utf8_lossy(&last.path()));
    csv::decode(&data[last.data_offset as usize..(last.data_offset + last.stored_size) as usize]).unwrap()
}

/// Corpus archives where one reader cannot see a member appended after the last one, through a
/// quirk of its own (docs/FORMAT.md, "CSV index members"):
/// - Python 3 over-reads a pax sparse 1.0 member by its map's size, so it skips the header that
///   follows it;
/// - GNU tar does not read the old-GNU sparse extension block this header announces, so it takes
///   that block for the end of the archive.
const PYTHON_SKIPS_NEXT: [&str; 3] = ["go/pax-nil-sparse-data.tar", "go/pax-nil-sparse-hole.tar", "go/pax-sparse-big.tar"];
const GNU_SKIPS_NEXT: [&str; 1] = ["libarchive/libarchive-test/test_read_format_gtar_sparse_reuse.tar"];

/// Checks an archive after `tarfs csv`: the tools read it, and the rows match Python's offsets.
fn check_after_csv(archive: &Path, gnutar_ok: bool, bsdtar_ok: bool) -> Result<(), String> {
    check_after_csv_with(archive, gnutar_ok, bsdtar_ok, true)
}

fn check_after_csv_with(archive: &Path, gnutar_ok: bool, bsdtar_ok: bool, python_ok: bool) -> Result<(), String> {
    let rows = last_rows(archive);
    let mut py = python_members(archive);
    if !python_ok {
        // Python lists the original members only; compare those.
        py.push(serde_json::json!({}));
    }
    if py.len() != rows.len() + 1 {
        return Err(format!("{} rows, Python has {} members before the index", rows.len(), py.len() - 1));
    }
    for (r, p) in rows.iter().zip(&py) {
        let py_size = p["size"].as_u64().unwrap();
        let header_only = ["1", "2", "3", "4", "5", "6"].contains(&p["type"].as_str().unwrap());
        let comparable = !(p["sparse"] == true || header_only && py_size != 0);
        if r.start_block != p["offset_data"].as_u64().unwrap() / 512 || comparable && (r.size != py_size || r.blocks != py_size.div_ceil(512)) {
            return Err(format!("row {r:?} vs Python {p}"));
        }
    }
    let seed = seed_read(&fs::read(archive).unwrap());
    for (r, s) in rows.iter().zip(&seed) {
        let plain = !r.name.iter().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
        if plain && (r.name.as_slice(), r.size, r.start_block, r.blocks) != (s.0.as_slice(), s.1, s.2, s.3) {
            return Err(format!("seed reader reads {s:?}, tarfs wrote {r:?}"));
        }
    }
    let name = format!(".tarindex_{}.csv", rows.iter().filter(|r| csv::index_number(&r.name).is_some()).count());
    for (tool, expected) in [("tar", gnutar_ok), ("bsdtar", bsdtar_ok)] {
        if !expected {
            continue;
        }
        let out = Command::new(tool).arg("-tf").arg(archive).output().unwrap();
        let listing = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || listing.lines().last() != Some(name.as_str()) {
            return Err(format!("{tool} -tf: rc {:?}, last {:?}: {}", out.status.code(), listing.lines().last(), String::from_utf8_lossy(&out.stderr)));
        }
    }
    Ok(())
}

#[test]
fn csv_on_tool_archives() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("tree");
    fs::create_dir_all(src.join("d")).unwrap();
    for (i, len) in [0usize, 511, 512, 513, 70_000].iter().enumerate() {
        write_pattern(&src.join(format!("d/f{i}")), *len, i as u64);
    }
    write_pattern(&src.join(format!("d/{}", "long".repeat(40))), 10, 9);
    write_pattern(&src.join("d/comma, \"quoted\".txt"), 10, 9);
    let makers: Vec<(&str, Vec<&str>)> = vec![
        ("gnu", vec!["tar", "--format=gnu", "-cf"]),
        ("posix", vec!["tar", "--format=posix", "-cf"]),
        ("bsd", vec!["bsdtar", "-cf"]),
    ];
    for (name, cmd) in makers {
        let a = tmp.path().join(format!("{name}.tar"));
        ok(Command::new(cmd[0]).args(&cmd[1..]).arg(&a).arg("-C").arg(tmp.path()).arg("tree"));
        ok(tarfs().arg("csv").arg(&a));
        check_after_csv(&a, true, true).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let a = tmp.path().join("py.tar");
    ok(Command::new("python3")
        .arg("-c")
        .arg("import tarfile,sys\nwith tarfile.open(sys.argv[1],'w',format=tarfile.PAX_FORMAT) as t: t.add(sys.argv[2], 'tree')")
        .arg(&a)
        .arg(&src));
    ok(tarfs().arg("csv").arg(&a));
    check_after_csv(&a, true, true).unwrap();
}

#[test]
fn csv_on_corpus_archives() {
    let tmp = TempDir::new().unwrap();
    let (mut done, mut refused, mut failures) = (0, 0, Vec::new());
    for t in truth() {
        let file = t["file"].as_str().unwrap();
        if t["python_ok"] != true || t["expected_outcome"] != "valid" {
            continue;
        }
        let a = tmp.path().join(format!("c{done}-{refused}.tar"));
        fs::copy(corpus_dir().join(file), &a).unwrap();
        fs::set_permissions(&a, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        let before = fs::read(&a).unwrap();
        let out = tarfs().arg("csv").arg(&a).output().unwrap();
        if !out.status.success() {
            // Refusals leave the archive untouched and say why.
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(fs::read(&a).unwrap(), before, "{file}: changed by a refused csv: {err}");
            assert!(err.contains("the archive was not changed") || err.contains("at byte"), "{file}: {err}");
            refused += 1;
            continue;
        }
        let gnu = t["gnutar_rc"] == 0 && !GNU_SKIPS_NEXT.contains(&file);
        if let Err(e) = check_after_csv_with(&a, gnu, t["bsdtar_rc"] == 0, !PYTHON_SKIPS_NEXT.contains(&file)) {
            failures.push(format!("{file}: {e}"));
        }
        done += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(done >= 80, "csv appended to only {done} corpus archives ({refused} refused)");
}

#[test]
fn csv_twice_lists_the_first() {
    let tmp = TempDir::new().unwrap();
    let a = tmp.path().join("a.tar");
    write_pattern(&tmp.path().join("x"), 1000, 1);
    ok(Command::new("tar").arg("-C").arg(tmp.path()).arg("-cf").arg(&a).arg("x"));
    ok(tarfs().arg("csv").arg(&a));
    // The second run finds a fresh index and leaves the archive alone; --force appends anyway.
    let before = fs::read(&a).unwrap();
    let out = ok(tarfs().arg("csv").arg("--json").arg(&a));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"action\":\"skipped\""), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(fs::read(&a).unwrap(), before);
    ok(tarfs().arg("csv").arg("--force").arg(&a));
    let listing = String::from_utf8(ok(Command::new("tar").arg("-tf").arg(&a)).stdout).unwrap();
    assert_eq!(listing, "x\n.tarindex_0.csv\n.tarindex_1.csv\n");
    let rows = last_rows(&a);
    assert_eq!(rows.iter().map(|r| String::from_utf8_lossy(&r.name).into_owned()).collect::<Vec<_>>(), vec!["x", ".tarindex_0.csv"]);
    let out = ok(tarfs().arg("-v").arg("ls").arg(&a));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CSV index member .tarindex_1.csv"));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), listing);
    ok(tarfs().arg("verify").arg(&a));
    // The old --skip-fresh flag is still accepted, and means the default.
    let before = fs::read(&a).unwrap();
    let out = ok(tarfs().arg("csv").arg("--skip-fresh").arg("--json").arg(&a));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"action\":\"skipped\""), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(fs::read(&a).unwrap(), before);
    // A member appended after the index is reported, not an error; a row that lies is.
    ok(Command::new("tar").arg("-rf").arg(&a).arg("-C").arg(tmp.path()).arg("x"));
    let out = ok(tarfs().arg("-v").arg("verify").arg(&a));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 later member is not in it"), "{}", String::from_utf8_lossy(&out.stdout));
    let mut bytes = fs::read(&a).unwrap();
    let at = bytes.windows(8).rposition(|w| w == b"x,1000,1").unwrap();
    bytes[at + 2] = b'2';
    fs::write(&a, &bytes).unwrap();
    let out = tarfs().arg("verify").arg(&a).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(".tarindex_1.csv row 1 says"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn csv_crash_at_every_write_leaves_original_or_finished() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("s");
    fs::create_dir_all(&src).unwrap();
    for i in 0..5 {
        write_pattern(&src.join(format!("f{i}")), 300 * i, i as u64);
    }
    let orig = tmp.path().join("orig.tar");
    ok(Command::new("tar").arg("-C").arg(&src).arg("-cf").arg(&orig).arg("."));
    let listing = |a: &Path| String::from_utf8(ok(Command::new("tar").arg("-tf").arg(a)).stdout).unwrap();
    let original = listing(&orig);
    let finished = format!("{original}.tarindex_0.csv\n");
    let steps = [("csv-journal-written", false), ("csv-data-written", false), ("csv-data-synced", false), ("csv-header-written", true), ("csv-header-synced", true)];
    for (step, done) in steps {
        let a = tmp.path().join(format!("{step}.tar"));
        fs::copy(&orig, &a).unwrap();
        let out = tarfs().arg("csv").arg(&a).env("TARFS_CRASH_AFTER", step).output().unwrap();
        assert_eq!(out.status.code(), Some(86), "{step}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(&listing(&a), if done { &finished } else { &original }, "{step}");
        for f in original.lines().filter(|l| l.starts_with("./f")) {
            let want = ok(Command::new("tar").arg("-xOf").arg(&orig).arg(f)).stdout;
            assert_eq!(ok(Command::new("tar").arg("-xOf").arg(&a).arg(f)).stdout, want, "{step}: {f}");
        }
        // Recovery undoes an unfinished append byte for byte, or keeps a finished one.
        let out = ok(tarfs().arg("-v").arg("recover").arg(&a));
        assert!(String::from_utf8_lossy(&out.stdout).contains(if done { "finished" } else { "rolled back" }), "{step}");
        if done {
            assert_eq!(listing(&a), finished, "{step}");
        } else {
            assert_eq!(fs::read(&a).unwrap(), fs::read(&orig).unwrap(), "{step}: not byte-identical after recovery");
        }
        assert!(!tmp.path().join(format!(".{step}.tar.tarfs-journal")).exists());
        // And csv runs cleanly afterwards.
        ok(tarfs().arg("csv").arg(&a));
        assert!(listing(&a).ends_with(".csv\n"));
        ok(Command::new("bsdtar").arg("-tf").arg(&a));
    }
}

#[test]
fn csv_refuses_read_only_compressed_and_trailing_data() {
    let tmp = TempDir::new().unwrap();
    write_pattern(&tmp.path().join("x"), 100, 1);
    let a = tmp.path().join("a.tar");
    ok(Command::new("tar").arg("-C").arg(tmp.path()).arg("-cf").arg(&a).arg("x"));
    let ro = tmp.path().join("ro.tar");
    fs::copy(&a, &ro).unwrap();
    let mut p = fs::metadata(&ro).unwrap().permissions();
    p.set_readonly(true);
    fs::set_permissions(&ro, p).unwrap();
    let gz = tmp.path().join("gz.tar");
    ok(Command::new("tar").arg("-C").arg(tmp.path()).arg("-czf").arg(&gz).arg("x"));
    let trail = tmp.path().join("trail.tar");
    let mut bytes = fs::read(&a).unwrap();
    let n = bytes.len();
    bytes[n - 10] = b'!';
    fs::write(&trail, &bytes).unwrap();
    for (f, msg) in [(&ro, "read-only"), (&gz, "gzip-compressed"), (&trail, "after the end-of-archive marker")] {
        let before = fs::read(f).unwrap();
        let out = tarfs().arg("csv").arg(f).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(msg) && err.contains("not changed"), "{err}");
        assert_eq!(fs::read(f).unwrap(), before);
    }
    // --lenient reads past zero blocks, but never overwrites data after the end marker.
    let before = fs::read(&trail).unwrap();
    let out = tarfs().arg("csv").arg("--lenient").arg(&trail).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(fs::read(&trail).unwrap(), before);
}

/// An archive as the seed's library writes it: ustar headers, an extra zero block after data whose
/// size is a multiple of 512, CSV indexes, and no end marker.
fn seed_archive(path: &Path) -> Vec<(String, Vec<u8>)> {
    let script = r#"
import sys, tarfile
files, rows, out, n = [], [], bytearray(), 0
def add(name, data):
    global out
    i = tarfile.TarInfo(name); i.size = len(data)
    out += i.tobuf(tarfile.USTAR_FORMAT)
    start = len(out) // 512
    out += data
    out += b"\0" * (512 - len(data) % 512)   # the seed's bug: a whole block when aligned
    rows.append(f"{name},{len(data)},{start},{(len(data) + 511) // 512}\n")
for k in range(30):
    add(f"piece{k:03}.bin", bytes([k]) * (512 * (k % 3) + (k % 2) * 100))
    if k % 10 == 9:
        add(f".tarindex_{n}.csv", "".join(rows).encode()); n += 1
open(sys.argv[1], "wb").write(out)
"#;
    ok(Command::new("python3").arg("-c").arg(script).arg(path));
    (0..30).map(|k| (format!("piece{k:03}.bin"), vec![k as u8; 512 * (k % 3) + (k % 2) * 100])).collect()
}

#[test]
fn seed_archives_read_through_csv_and_lenient_scan() {
    let tmp = TempDir::new().unwrap();
    let a = tmp.path().join("seed.tar");
    let pieces = seed_archive(&a);
    let out = ok(tarfs().arg("-v").arg("ls").arg(&a));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CSV index member .tarindex_2.csv"), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(listed.lines().filter(|l| l.starts_with("piece")).count(), 30);
    for (name, data) in [&pieces[2], &pieces[3], &pieces[29]] {
        assert_eq!(&ok(tarfs().arg("cat").arg(&a).arg(name)).stdout, data, "{name}");
    }
    // verify checks the rows against a scan; the seed's stray zero blocks need --lenient.
    let out = tarfs().arg("verify").arg(&a).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("try --lenient"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = ok(tarfs().arg("-v").arg("verify").arg("--lenient").arg(&a));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok: index of 32 entries (CSV index member .tarindex_2.csv)"), "{}", String::from_utf8_lossy(&out.stdout));
    let bytes = fs::read(&a).unwrap();
    let strict: Vec<_> = Scanner::new(&bytes, ScanOptions::default()).map(Result::unwrap).collect();
    assert!(strict.len() < 33, "a strict scan stops at the first stray zero block");
    let lenient: Vec<_> = Scanner::new(&bytes, ScanOptions { lenient: true, ..Default::default() }).map(Result::unwrap).collect();
    assert_eq!(lenient.len(), 33);
}

#[test]
fn builder_output_is_read_by_the_tools() {
    let tmp = TempDir::new().unwrap();
    let mut b = Builder::new(Vec::new());
    b.add("a.txt", b"alpha").unwrap();
    b.add(format!("deep/{}/name.bin", "x".repeat(200)), &[7u8; 513]).unwrap();
    b.add_index().unwrap();
    b.add("comma,\"q\".txt", b"").unwrap();
    b.add_index().unwrap();
    let a = tmp.path().join("b.tar");
    fs::write(&a, b.finish().unwrap()).unwrap();
    let gnu = String::from_utf8(ok(Command::new("tar").arg("-tf").arg(&a)).stdout).unwrap();
    let bsd = String::from_utf8(ok(Command::new("bsdtar").arg("-tf").arg(&a)).stdout).unwrap();
    assert_eq!(gnu, bsd);
    assert_eq!(gnu.lines().count(), 5);
    assert_eq!(python_members(&a).len(), 5);
    let rows = last_rows(&a);
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[3].name, b"comma,\"q\".txt");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn builder_index_rows_point_at_the_right_bytes(
        items in proptest::collection::vec(
            (proptest::collection::vec(prop_oneof![Just('a'), Just('/'), Just('ü'), Just('漢'), Just(','), Just('"'), Just('\n'), Just(' ')], 1..150),
             prop_oneof![Just(0usize), Just(511), Just(512), Just(513), Just(70_000), 0usize..3000],
             any::<bool>()),
            1..25)
    ) {
        let mut b = Builder::new(Vec::new());
        let mut added = Vec::new();
        for (i, (chars, size, index_after)) in items.iter().enumerate() {
            let name = format!("n{i}{}", chars.iter().collect::<String>());
            let data: Vec<u8> = (0..*size).map(|k| (k * 31 + i) as u8).collect();
            b.add(&name, &data).unwrap();
            added.push((name.into_bytes(), data));
            if *index_after {
                b.add_index().unwrap();
            }
        }
        b.add_index().unwrap();
        let tar = b.finish().unwrap();
        // Every index, not only the newest, points at the right bytes.
        let mut indexes = 0;
        for e in Scanner::new(&tar, ScanOptions::default()) {
            let e = e.unwrap();
            if csv::index_number(&e.path()).is_none() {
                continue;
            }
            indexes += 1;
            let rows = csv::decode(&tar[e.data_offset as usize..(e.data_offset + e.stored_size) as usize]).unwrap();
            for r in rows.iter().filter(|r| csv::index_number(&r.name).is_none()) {
                let (_, data) = added.iter().find(|(n, _)| *n == r.name).expect("row names an added member");
                let at = (r.start_block * 512) as usize;
                prop_assert_eq!(&tar[at..at + r.size as usize], &data[..]);
                prop_assert_eq!(r.blocks, (r.size).div_ceil(512));
            }
        }
        prop_assert!(indexes >= 1);
    }
}

//! Index v2.0 (issue #32): a second reader, written in Python from `docs/FORMAT.md` alone
//! (`tests/v2_reader.py`), reads the v2 sidecar tarfs writes for every plain archive of the
//! conformance corpus: its listing equals `tar -tf`, every position holds a header with the
//! record's checksum, and the hash table finds every member by its path. Damage to the body is
//! found by its CRCs, and a reader then scans instead of answering from it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{corpus_dir, listing, ok, tarfs, truth};

/// The Python reader's listing of the v2 `index` of `archive`, which it checks against the
/// archive (positions and lookups); `Err` with what it said where it failed.
fn python_listing(index: &Path, archive: &Path) -> Result<Vec<String>, String> {
    let out = Command::new("python3").arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/v2_reader.py")).arg(index).arg(archive).output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let hex = |h: &str| (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap()).collect::<Vec<u8>>();
    Ok(String::from_utf8_lossy(&out.stdout).lines().map(|l| String::from_utf8_lossy(&hex(serde_json::from_str::<serde_json::Value>(l).unwrap()["path"].as_str().unwrap())).into_owned()).collect())
}

/// The paths a scan of `archive` (which has no index) lists: as GNU tar lists them on this
/// corpus (`tests/corpus.rs`).
fn scanned(archive: &Path) -> Vec<String> {
    let a = tarfs::archive::Archive::open(archive).unwrap();
    let r = tarfs::ops::read::Reader::open(&a, None, tarfs::ScanOptions::default()).unwrap();
    assert_eq!(r.source(), tarfs::ops::read::Source::Scan);
    let mut paths = Vec::new();
    r.for_each(|e| {
        paths.push(String::from_utf8_lossy(&e.path()).into_owned());
        Ok(())
    })
    .unwrap();
    paths
}

/// The corpus archives GNU tar, Python and Go all read, that are plain tar.
fn plain_archives() -> Vec<PathBuf> {
    truth()
        .iter()
        .filter(|t| t["python_ok"] == true && t["go_ok"] == true && t["gnu_ok"] != false)
        .map(|t| corpus_dir().join(t["file"].as_str().unwrap()))
        .filter(|p| std::fs::read(p).is_ok_and(|b| tarfs::format::compression::Compression::detect(&b[..b.len().min(512)]).is_none()))
        .collect()
}

#[test]
fn a_reader_written_from_the_format_reads_every_v2_index() {
    let dir = tempfile::tempdir().unwrap();
    let (mut read, mut failures) = (0, Vec::new());
    for (k, original) in plain_archives().iter().enumerate() {
        let copy = dir.path().join(format!("{k}.tar"));
        std::fs::copy(original, &copy).unwrap();
        let label = original.strip_prefix(corpus_dir()).unwrap().display().to_string();
        if !tarfs().args(["index", "--format", "v2"]).arg(&copy).output().unwrap().status.success() {
            continue; // an archive tarfs does not index (it says why elsewhere)
        }
        let index = dir.path().join(format!("{k}.tar.tarfs"));
        match python_listing(&index, &copy) {
            Ok(got) if got == scanned(original) => read += 1,
            Ok(got) => failures.push(format!("{label}: the Python reader lists {got:?}, a scan {:?}", scanned(original))),
            Err(e) => failures.push(format!("{label}: {e}")),
        }
        ok(tarfs().arg("verify").arg(&copy));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(read > 40, "only {read} corpus archives read");
    eprintln!("{read} v2 indexes read by the Python reader");
}

#[test]
fn damage_to_a_v2_body_is_found_and_the_archive_scanned_instead() {
    let dir = tempfile::tempdir().unwrap();
    let archive = common::gnu_archive(dir.path(), "a", "gnu", 300, |i| (format!("file-{i:04}"), i * 3, i as u64));
    ok(tarfs().args(["index", "--format", "v2"]).arg(&archive));
    let index = dir.path().join("a.tar.tarfs");
    let good = std::fs::read(&index).unwrap();
    let want = listing("tar", &archive);
    // The body's parts end with its chunk table; zero bytes pad it to a whole block.
    let u64_at = |at: usize| u64::from_le_bytes(good[at..at + 8].try_into().unwrap()) as usize;
    let covered = 512 + u64_at(512 + 128) + 4 * u64_at(512 + 136);
    // Every 97th byte of the body, one at a time, its low bit flipped.
    let mut refused = 0;
    for at in (512..covered).step_by(97) {
        let mut bad = good.clone();
        bad[at] ^= 1;
        std::fs::write(&index, &bad).unwrap();
        let out = tarfs().arg("ls").arg("-v").arg(&archive).output().unwrap();
        let listed: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
        assert_eq!(listed, want, "byte {at} flipped: the listing changed");
        // A listing reads every record and path (not the hash slots): damage there is found
        // as the index opens or lists, and the archive scanned instead.
        if String::from_utf8_lossy(&out.stderr).contains("scanning instead") {
            refused += 1;
        }
        assert!(!tarfs().arg("verify").arg(&archive).output().unwrap().status.success(), "byte {at} flipped: verify passed");
    }
    std::fs::write(&index, &good).unwrap();
    ok(tarfs().arg("verify").arg(&archive));
    assert!(refused > 20, "only {refused} flips were found");
}

#[test]
fn a_v2_index_costs_under_64_bytes_a_member_with_20_byte_names() {
    let dir = tempfile::tempdir().unwrap();
    let n = 20_000;
    let archive = common::gnu_archive(dir.path(), "many", "gnu", n, |i| (format!("name-{i:013}"), 0, i as u64));
    ok(tarfs().args(["index", "--format", "v2"]).arg(&archive));
    let len = std::fs::metadata(dir.path().join("many.tar.tarfs")).unwrap().len();
    let per = len as f64 / n as f64;
    eprintln!("v2: {len} bytes for {n} members: {per:.1} a member");
    assert!(per <= 64.0, "{per:.1} bytes a member");
}

/// The owned member index over a v2 sidecar (what the mount and the EROFS image writer read)
/// gives every member as the scan does: each entry by number, each found by its path, each
/// directory's children.
#[test]
fn members_through_a_v2_sidecar_are_the_scans() {
    use tarfs::members::open_best;
    let dir = tempfile::tempdir().unwrap();
    let (mut compared, mut failures) = (0, Vec::new());
    for (k, original) in plain_archives().iter().enumerate() {
        let copy = dir.path().join(format!("{k}.tar"));
        std::fs::copy(original, &copy).unwrap();
        let open = || open_best(Box::new(tarfs::archive::Archive::open(&copy).unwrap()), None, tarfs::ScanOptions::default()).unwrap();
        let scan = open();
        if !tarfs().args(["index", "--format", "v2"]).arg(&copy).output().unwrap().status.success() {
            continue;
        }
        let v2 = open();
        let label = original.strip_prefix(corpus_dir()).unwrap().display().to_string();
        if !matches!(v2.index.source(), tarfs::ops::read::Source::Sidecar(_)) {
            failures.push(format!("{label}: the v2 sidecar is not used"));
            continue;
        }
        let (a, b) = (&*scan.index, &*v2.index);
        let same = a.len() == b.len()
            && (0..a.len()).all(|i| {
                let (x, y) = (a.get(i).unwrap(), b.get(i).unwrap());
                x == y && b.lookup(&y.path).unwrap() == a.lookup(&x.path).unwrap() && b.children(&y.path).unwrap() == a.children(&x.path).unwrap()
            })
            && b.children(b"").unwrap() == a.children(b"").unwrap();
        if same {
            compared += 1;
        } else {
            failures.push(format!("{label}: the members differ from the scan's"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(compared > 40, "only {compared} compared");
}

/// The specification's way to embed by hand: `tar -cf x.tar .tarfs; tar -Af x.tar files.tar`,
/// where `.tarfs` is the index of `files.tar` (positions then count from just after the
/// `.tarfs` member). Both versions give an archive whose embedded index answers and verifies.
#[test]
fn an_index_made_the_first_member_by_tar_answers_as_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let files = common::gnu_archive(dir.path(), "files", "gnu", 60, |i| (format!("f{i:03}"), i * 37, i as u64));
    for format in ["v1", "v2"] {
        let work = dir.path().join(format);
        std::fs::create_dir_all(&work).unwrap();
        ok(tarfs().args(["index", "--format", format, "--output"]).arg(work.join(".tarfs")).arg(&files));
        let x = work.join("x.tar");
        ok(Command::new("tar").arg("-cf").arg(&x).arg("-C").arg(&work).arg(".tarfs"));
        ok(Command::new("tar").arg("-Af").arg(&x).arg(&files));
        let out = ok(tarfs().arg("ls").arg("-v").arg(&x));
        assert!(String::from_utf8_lossy(&out.stderr).contains("using embedded .tarfs index"), "{format}: {}", String::from_utf8_lossy(&out.stderr));
        let listed: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
        assert_eq!(listed, listing("tar", &files), "{format}");
        ok(tarfs().arg("verify").arg(&x));
        let one = ok(tarfs().arg("cat").arg(&x).arg("./f059"));
        assert_eq!(one.stdout, ok(Command::new("tar").arg("-xOf").arg(&files).arg("./f059")).stdout, "{format}");
    }
}

/// A compressed archive's v2 sidecar stores its body deflated (body flag 8): the Python reader
/// inflates it from the specification, its listing is the archive's and its positions hold the
/// headers of the decompressed stream; tarfs answers from it; and damage to the deflated bytes
/// is found, the archive then decoded instead.
#[test]
fn a_compressed_archives_v2_sidecar_is_deflated_and_read_by_both_readers() {
    let dir = tempfile::tempdir().unwrap();
    let plain = common::gnu_archive(dir.path(), "pkg", "gnu", 800, |i| (format!("package-{:02}-module-{i:04}.js", i % 13), 200 + i % 700, i as u64));
    let gz = dir.path().join("pkg.tar.gz");
    ok(Command::new("sh").arg("-c").arg(format!("gzip -9 -c {} > {}", plain.display(), gz.display())));
    // Without member digests (32 bytes of SHA-256 a member, which do not deflate), the deflated
    // sidecar is under half the plain one.
    ok(tarfs().args(["index", "--format", "v2", "--no-digests"]).arg(&gz));
    let index = dir.path().join("pkg.tar.gz.tarfs");
    ok(tarfs().args(["index", "--format", "v2", "--no-digests", "--output"]).arg(dir.path().join("plain.tarfs")).arg(&plain));
    let (small, big) = (std::fs::metadata(&index).unwrap().len(), std::fs::metadata(dir.path().join("plain.tarfs")).unwrap().len());
    eprintln!("v2 sidecar of 800 members: {big} bytes plain, {small} with a deflated body (and a seek section)");
    assert!(small * 2 < big, "deflated {small} bytes, plain {big}");
    // The default (digests, as for every compressed archive): the digests part inside the
    // deflated body, read by both readers and checked by cat.
    ok(tarfs().args(["index", "--force"]).arg(&gz));
    let good = std::fs::read(&index).unwrap();
    assert_eq!(u32::from_le_bytes(good[512 + 124..512 + 128].try_into().unwrap()) & (8 | 4), 8 | 4, "the body is not deflated, or has no digests");
    let want = listing("tar", &plain);
    assert_eq!(python_listing(&index, &plain).unwrap(), want);
    let out = ok(tarfs().arg("ls").arg("-v").arg(&gz));
    assert!(String::from_utf8_lossy(&out.stderr).contains("using sidecar"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().collect::<Vec<_>>(), want);
    let name = "./package-06-module-0500.js";
    assert_eq!(ok(tarfs().arg("cat").arg(&gz).arg(name)).stdout, ok(Command::new("tar").arg("-xOf").arg(&plain).arg(name)).stdout);
    ok(tarfs().arg("verify").arg(&gz));
    let stored = u64::from_le_bytes(good[512 + 192..512 + 200].try_into().unwrap()) as usize;
    for at in [512 + 256, 512 + 256 + stored / 3, 512 + 256 + stored - 1] {
        let mut bad = good.clone();
        bad[at] ^= 0x40;
        std::fs::write(&index, &bad).unwrap();
        assert!(python_listing(&index, &plain).is_err(), "byte {at}: the Python reader read a damaged body");
        let out = ok(tarfs().arg("ls").arg("-v").arg(&gz));
        assert!(!String::from_utf8_lossy(&out.stderr).contains("using sidecar"), "byte {at}: answered from a damaged index");
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().collect::<Vec<_>>(), want, "byte {at}");
        assert!(!tarfs().arg("verify").arg(&gz).output().unwrap().status.success(), "byte {at}: verify passed");
    }
}

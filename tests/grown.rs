//! Re-indexing an archive that grew (issue #18): after `tar -rf` (GNU tar in gnu and pax formats,
//! Python's append mode) or `tarfs csv`, `tarfs index` takes the old part from the old sidecar
//! and scans only what was appended. The result must be byte-identical to a full re-index
//! (`--force`), read about the appended bytes only, and fall back to a full re-index, still
//! identical, where the old part changed or cannot be carried over.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{ok, tarfs, write_pattern};
use serde_json::Value;
use tempfile::TempDir;

/// `tarfs index --json ARCHIVE`: its one record.
fn index_json(a: &Path, extra: &[&str]) -> Value {
    let out = ok(tarfs().arg("index").arg("--json").args(extra).arg(a));
    let line = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(line.lines().find(|l| l.contains("\"path\"")).expect("a record")).unwrap()
}

/// Indexes `a` (which grew since its sidecar was made), then checks the sidecar against a full
/// re-index; returns the first run's reason.
fn grown_equals_full(a: &Path) -> String {
    grown_equals_full_as(a, "v2")
}

/// [`grown_equals_full`], the index written as `version`.
fn grown_equals_full_as(a: &Path, version: &str) -> String {
    let rec = index_json(a, &["--format", version]);
    assert_eq!(rec["action"], "indexed", "{rec}");
    let side = format!("{}.tarfs", a.display());
    let incremental = fs::read(&side).unwrap();
    ok(tarfs().arg("verify").arg(a));
    index_json(a, &["--force", "--format", version]);
    assert!(fs::read(&side).unwrap() == incremental, "{}: the re-index after growth differs from a full one ({rec})", a.display());
    rec["reason"].as_str().unwrap().to_string()
}

/// Members to add: small files, a long name, a hard link and a symbolic link.
fn files(dir: &Path, tag: &str, n: usize) -> Vec<String> {
    let mut names = Vec::new();
    for i in 0..n {
        let name = format!("{tag}-{i:03}");
        write_pattern(&dir.join(&name), 50 + i * 301, i as u64 + 7);
        names.push(name);
    }
    let long = format!("{tag}-{}", "long-directory-name/".repeat(8));
    fs::create_dir_all(dir.join(&long)).unwrap();
    write_pattern(&dir.join(&long).join("leaf.txt"), 777, 3);
    names.push(long);
    fs::hard_link(dir.join(&names[0]), dir.join(format!("{tag}-hardlink"))).unwrap();
    names.push(format!("{tag}-hardlink"));
    std::os::unix::fs::symlink(&names[1], dir.join(format!("{tag}-symlink"))).unwrap();
    names.push(format!("{tag}-symlink"));
    names
}

/// Python scripts: write ARCHIVE (pax) from SRC/NAME..., and append to it.
const PY_WRITE: &str = "import sys, tarfile\nwith tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT) as t:\n    for n in sys.argv[3:]: t.add(sys.argv[2] + '/' + n, n)";
const PY_APPEND: &str = "import sys, tarfile\nwith tarfile.open(sys.argv[1], 'a') as t:\n    for n in sys.argv[3:]: t.add(sys.argv[2] + '/' + n, n)";

/// A GNU tar archive of 40 members of 1 MiB, given an index by `tarfs INDEXER`, then grown by a
/// 1 MiB member (`added`).
fn forty_mib_grown_by_one(dir: &Path, src: &Path, indexer: &str) -> std::path::PathBuf {
    let mut big = Vec::new();
    for i in 0..40 {
        let n = format!("big-{i:02}");
        write_pattern(&src.join(&n), 1 << 20, i);
        big.push(n);
    }
    write_pattern(&src.join("added"), 1 << 20, 99);
    let a = dir.join(format!("{indexer}.tar"));
    ok(Command::new("tar").arg("-cf").arg(&a).arg("-C").arg(src).args(&big));
    ok(tarfs().arg(indexer).arg(&a));
    ok(Command::new("tar").arg("-rf").arg(&a).arg("-C").arg(src).arg("added"));
    a
}

/// The "N bytes read" figure of a report's reason.
fn bytes_read(reason: &str) -> u64 {
    reason.split_once(" bytes read").and_then(|(before, _)| before.rsplit(' ').next()).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no read figure: {reason}"))
}

/// Renames the member whose header is at byte `at` of `a`, in place, with its checksum
/// recomputed: a valid header, but not the one indexed.
fn rename_in_place(a: &Path, at: usize) {
    let mut bytes = fs::read(a).unwrap();
    common::rename_header(&mut bytes, at);
    fs::write(a, &bytes).unwrap();
}

#[test]
fn an_archive_that_grew_is_reindexed_from_its_old_end_as_a_full_reindex_would() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let first = files(&src, "first", 30);
    let second = files(&src, "second", 12);
    let third = files(&src, "third", 5);
    // GNU tar's gnu and pax formats (ustar cannot hold the long names these members have).
    // Both index versions: a v2 index takes the old members from its records, v1 from its entries.
    for (format, version) in [("gnu", "v2"), ("pax", "v2"), ("gnu", "v1"), ("pax", "v1")] {
        let a = tmp.path().join(format!("{format}-{version}.tar"));
        ok(Command::new("tar").arg(format!("--format={format}")).arg("-cf").arg(&a).arg("-C").arg(&src).args(&first));
        ok(tarfs().args(["index", "--format", version]).arg(&a));
        ok(Command::new("tar").arg(format!("--format={format}")).arg("-rf").arg(&a).arg("-C").arg(&src).args(&second));
        let reason = grown_equals_full_as(&a, version);
        assert!(reason.starts_with("grew"), "{format} {version}: not re-indexed from the old end: {reason}");
        // Twice: the grown index is itself a base for the next append.
        ok(Command::new("tar").arg(format!("--format={format}")).arg("-rf").arg(&a).arg("-C").arg(&src).args(&third));
        let reason = grown_equals_full_as(&a, version);
        assert!(reason.starts_with("grew"), "{format} {version}: second append: {reason}");
        // An appended CSV index member (tarfs csv) is a member like another.
        ok(tarfs().arg("csv").arg(&a));
        let reason = grown_equals_full_as(&a, version);
        assert!(reason.starts_with("grew"), "{format} {version}: after tarfs csv: {reason}");
    }
    // An old index of the other version is not carried over: a full re-index.
    let a = tmp.path().join("other.tar");
    ok(Command::new("tar").arg("--format=gnu").arg("-cf").arg(&a).arg("-C").arg(&src).args(&first));
    ok(tarfs().args(["index", "--format", "v1"]).arg(&a));
    ok(Command::new("tar").arg("--format=gnu").arg("-rf").arg(&a).arg("-C").arg(&src).args(&second));
    let reason = grown_equals_full(&a);
    assert!(reason.contains("another version"), "a v1 index carried into v2: {reason}");

    // Python's append mode, with a pax archive.
    let py = tmp.path().join("python.tar");
    ok(Command::new("python3").arg("-c").arg(PY_WRITE).arg(&py).arg(&src).args(&first));
    ok(tarfs().arg("index").arg(&py));
    ok(Command::new("python3").arg("-c").arg(PY_APPEND).arg(&py).arg(&src).args(&second));
    let reason = grown_equals_full(&py);
    assert!(reason.starts_with("grew"), "python: {reason}");
}

#[test]
fn a_grown_reindex_reads_the_appended_part_and_falls_back_when_the_old_part_changed() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let a = forty_mib_grown_by_one(tmp.path(), &src, "index");
    let reason = grown_equals_full(&a);
    let read = bytes_read(&reason);
    let len = fs::metadata(&a).unwrap().len();
    assert!(read < (1 << 20) + 200 * 1024, "re-indexing after a 1 MiB append read {read} of {len} bytes: {reason}");

    // An old member changed in place, then more appended: a full re-index, not a grown one.
    ok(tarfs().arg("index").arg("--force").arg(&a));
    rename_in_place(&a, 0);
    write_pattern(&src.join("added2"), 5000, 5);
    ok(Command::new("tar").arg("-rf").arg(&a).arg("-C").arg(&src).arg("added2"));
    let reason = grown_equals_full(&a);
    assert!(reason.starts_with("rebuilt"), "a changed old part was carried over: {reason}");
    assert!(reason.contains("; in full: ") && reason.contains("no longer matches the archive at byte 0"), "the report does not say why the old index was not used: {reason}");

    // Pax global headers in the old part: their state does not carry over; a full re-index.
    let g = tmp.path().join("globals.tar");
    ok(Command::new("python3").arg("-c").arg("import sys, tarfile\nwith tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT, pax_headers={'uname': 'global-owner'}) as t:\n    t.add(sys.argv[2] + '/big-00', 'big-00')").arg(&g).arg(&src));
    ok(tarfs().arg("index").arg(&g));
    ok(Command::new("tar").arg("-rf").arg(&g).arg("-C").arg(&src).arg("added2"));
    let reason = grown_equals_full(&g);
    assert!(reason.starts_with("rebuilt"), "globals carried over: {reason}");
    assert!(reason.contains("; in full: ") && reason.contains("globals"), "the report does not say why the old index was not used: {reason}");
}

/// `tarfs embed --json ARCHIVE`: its one record.
fn embed_json(a: &Path, extra: &[&str]) -> Value {
    let out = ok(tarfs().arg("embed").arg("--json").args(extra).arg(a));
    let line = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(line.lines().find(|l| l.contains("\"path\"")).expect("a record")).unwrap()
}

/// Embeds in `a` (which grew since its index was embedded) and, in a copy, with a full survey
/// (`--force`); checks the two are the same bytes but for the blocks that carry the time of
/// writing: the `.tarfs` header's mtime, and the generation in the index's header and in its
/// extension's header. Returns the first run's reason.
fn grown_embed_equals_full(a: &Path, version: &str) -> String {
    let full = a.with_extension("full.tar");
    fs::copy(a, &full).unwrap();
    let rec = embed_json(a, &["--format", version]);
    assert_eq!(rec["action"], "embedded", "{rec}");
    let frec = embed_json(&full, &["--force", "--format", version]);
    let reason = rec["reason"].as_str().unwrap().to_string();
    assert!(!frec["reason"].as_str().unwrap().contains("old end"), "--force took the old index: {frec}");
    ok(tarfs().arg("verify").arg(a));
    let (x, y) = (fs::read(a).unwrap(), fs::read(&full).unwrap());
    assert_eq!(x.len(), y.len(), "{}: lengths differ ({reason})", a.display());
    let entries = rec["members"].as_u64().unwrap() as usize;
    // v1: the extension's header after the entries; v2: the body's head (its CRCs bind it to the
    // header block).
    let stamped = if version == "v1" { [0, 1, entries + 3] } else { [0, 1, 2] };
    let differ: Vec<usize> = (0..x.len() / 512).filter(|&b| x[b * 512..][..512] != y[b * 512..][..512]).collect();
    assert!(differ.iter().all(|b| stamped.contains(b)), "{}: the re-embed after growth differs from a full one in blocks {differ:?} (only {stamped:?} may: {reason})", a.display());
    // What readers see is the same.
    assert_eq!(common::python_members(a), common::python_members(&full));
    fs::remove_file(&full).unwrap();
    reason
}

/// A GNU tar archive in `format` of `first` (after a 256 KiB member, which the index displaces
/// and so leaves room for growth) with its index embedded.
fn embedded(dir: &Path, src: &Path, format: &str, first: &[String], version: &str) -> std::path::PathBuf {
    write_pattern(&src.join("lead"), 256 << 10, 41);
    let a = dir.join(format!("{format}-{version}-embedded.tar"));
    ok(Command::new("tar").arg(format!("--format={format}")).arg("-cf").arg(&a).arg("-C").arg(src).arg("lead").args(first));
    let rec = embed_json(&a, &["--format", version]);
    assert!(rec["reason"].as_str().unwrap().contains("displaced"), "{rec}");
    a
}

#[test]
fn an_embedded_index_of_an_archive_that_grew_is_rebuilt_from_its_old_end_as_a_full_survey_would() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let first = files(&src, "first", 30);
    let second = files(&src, "second", 12);
    let third = files(&src, "third", 5);
    // Both versions: v2 takes the old members from its records, v1 from its entries.
    for (format, version) in [("gnu", "v2"), ("pax", "v2"), ("gnu", "v1"), ("pax", "v1")] {
        let a = embedded(tmp.path(), &src, format, &first, version);
        ok(Command::new("tar").arg(format!("--format={format}")).arg("-rf").arg(&a).arg("-C").arg(&src).args(&second));
        let reason = grown_embed_equals_full(&a, version);
        assert!(reason.contains("from the old end"), "{format} {version}: not re-indexed from the old end: {reason}");
        ok(Command::new("tar").arg(format!("--format={format}")).arg("-rf").arg(&a).arg("-C").arg(&src).args(&third));
        let reason = grown_embed_equals_full(&a, version);
        assert!(reason.contains("from the old end"), "{format} {version}: second append: {reason}");
        ok(tarfs().arg("csv").arg(&a));
        let reason = grown_embed_equals_full(&a, version);
        assert!(reason.contains("from the old end"), "{format} {version}: after tarfs csv: {reason}");
    }
    // Python's append mode.
    let py = tmp.path().join("python.tar");
    ok(Command::new("python3").arg("-c").arg(PY_WRITE).arg(&py).arg(&src).arg("lead").args(&first));
    assert!(embed_json(&py, &[])["reason"].as_str().unwrap().contains("displaced"));
    ok(Command::new("python3").arg("-c").arg(PY_APPEND).arg(&py).arg(&src).args(&second));
    let reason = grown_embed_equals_full(&py, "v2");
    assert!(reason.contains("from the old end"), "python: {reason}");
}

#[test]
fn a_grown_re_embed_reads_the_appended_part_and_surveys_in_full_when_it_cannot() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let a = forty_mib_grown_by_one(tmp.path(), &src, "embed");
    let reason = grown_embed_equals_full(&a, "v2");
    let read = bytes_read(&reason);
    let len = fs::metadata(&a).unwrap().len();
    assert!(read < (1 << 20) + 200 * 1024, "re-embedding after a 1 MiB append read {read} of {len} bytes: {reason}");

    // An old member changed in place (a valid header, but not the one indexed), then more
    // appended: the old index does not answer; a full survey re-indexes.
    let head = fs::read(&a).unwrap();
    let tarfs_len = u64::from_str_radix(std::str::from_utf8(&head[124..135]).unwrap(), 8).unwrap();
    rename_in_place(&a, 512 + tarfs_len.div_ceil(512) as usize * 512); // the first member after .tarfs
    write_pattern(&src.join("added2"), 5000, 5);
    ok(Command::new("tar").arg("-rf").arg(&a).arg("-C").arg(&src).arg("added2"));
    let reason = grown_embed_equals_full(&a, "v2");
    assert!(!reason.contains("old end"), "a changed old part was carried over: {reason}");
    assert!(reason.contains("(in full: ") && reason.contains("no longer matches the archive"), "the report does not say why the old index was not used: {reason}");
    let names: Vec<String> = common::python_members(&a).iter().map(|m| m["name"].as_str().unwrap().to_string()).collect();
    assert!(names.iter().any(|n| n.starts_with('X')) && names.iter().any(|n| n == "added2"), "{names:?}");

    // The new index no longer fits in the old .tarfs member: members are displaced again,
    // after a full survey (which moving needs), and every member is still there.
    let small = tmp.path().join("small.tar");
    let few: Vec<String> = (0..3).map(|i| format!("s{i}")).collect();
    let many: Vec<String> = (0..200).map(|i| format!("m{i:03}")).collect();
    for n in few.iter().chain(&many) {
        write_pattern(&src.join(n), 600, 3);
    }
    ok(Command::new("tar").arg("-cf").arg(&small).arg("-C").arg(&src).args(&few));
    ok(tarfs().arg("embed").arg(&small));
    ok(Command::new("tar").arg("-rf").arg(&small).arg("-C").arg(&src).args(&many));
    let rec = embed_json(&small, &[]);
    assert!(rec["reason"].as_str().unwrap().contains("displaced"), "{rec}");
    assert!(rec["reason"].as_str().unwrap().starts_with("in full: the new index does not fit in the old .tarfs member; "), "{rec}");
    ok(tarfs().arg("verify").arg(&small));
    let names: Vec<String> = common::python_members(&small).iter().map(|m| m["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names.len(), 1 + few.len() + many.len(), "{names:?}");
}

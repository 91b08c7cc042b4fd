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
    let rec = index_json(a, &[]);
    assert_eq!(rec["action"], "indexed", "{rec}");
    let side = format!("{}.tarfs", a.display());
    let incremental = fs::read(&side).unwrap();
    ok(tarfs().arg("verify").arg(a));
    index_json(a, &["--force"]);
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

#[test]
fn an_archive_that_grew_is_reindexed_from_its_old_end_as_a_full_reindex_would() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let first = files(&src, "first", 30);
    let second = files(&src, "second", 12);
    let third = files(&src, "third", 5);
    // GNU tar's gnu and pax formats (ustar cannot hold the long names these members have).
    for format in ["gnu", "pax"] {
        let a = tmp.path().join(format!("{format}.tar"));
        ok(Command::new("tar").arg(format!("--format={format}")).arg("-cf").arg(&a).arg("-C").arg(&src).args(&first));
        ok(tarfs().arg("index").arg(&a));
        ok(Command::new("tar").arg(format!("--format={format}")).arg("-rf").arg(&a).arg("-C").arg(&src).args(&second));
        let reason = grown_equals_full(&a);
        assert!(reason.starts_with("grew"), "{format}: not re-indexed from the old end: {reason}");
        // Twice: the grown index is itself a base for the next append.
        ok(Command::new("tar").arg(format!("--format={format}")).arg("-rf").arg(&a).arg("-C").arg(&src).args(&third));
        let reason = grown_equals_full(&a);
        assert!(reason.starts_with("grew"), "{format}: second append: {reason}");
        // An appended CSV index member (tarfs csv) is a member like another.
        ok(tarfs().arg("csv").arg(&a));
        let reason = grown_equals_full(&a);
        assert!(reason.starts_with("grew"), "{format}: after tarfs csv: {reason}");
    }

    // Python's append mode, with a pax archive.
    let py = tmp.path().join("python.tar");
    ok(Command::new("python3").arg("-c").arg("import sys, tarfile\nwith tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT) as t:\n    for n in sys.argv[3:]: t.add(sys.argv[2] + '/' + n, n)").arg(&py).arg(&src).args(&first));
    ok(tarfs().arg("index").arg(&py));
    ok(Command::new("python3").arg("-c").arg("import sys, tarfile\nwith tarfile.open(sys.argv[1], 'a') as t:\n    for n in sys.argv[3:]: t.add(sys.argv[2] + '/' + n, n)").arg(&py).arg(&src).args(&second));
    let reason = grown_equals_full(&py);
    assert!(reason.starts_with("grew"), "python: {reason}");
}

#[test]
fn a_grown_reindex_reads_the_appended_part_and_falls_back_when_the_old_part_changed() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    // 40 members of 1 MiB, then 1 MiB appended.
    let mut big = Vec::new();
    for i in 0..40 {
        let n = format!("big-{i:02}");
        write_pattern(&src.join(&n), 1 << 20, i);
        big.push(n);
    }
    write_pattern(&src.join("added"), 1 << 20, 99);
    let a = tmp.path().join("a.tar");
    ok(Command::new("tar").arg("-cf").arg(&a).arg("-C").arg(&src).args(&big));
    ok(tarfs().arg("index").arg(&a));
    ok(Command::new("tar").arg("-rf").arg(&a).arg("-C").arg(&src).arg("added"));
    let reason = grown_equals_full(&a);
    let read: u64 = reason.split_once(" bytes read").and_then(|(before, _)| before.rsplit(' ').next()).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no read figure: {reason}"));
    let len = fs::metadata(&a).unwrap().len();
    assert!(read < (1 << 20) + 200 * 1024, "re-indexing after a 1 MiB append read {read} of {len} bytes: {reason}");

    // An old member changed in place, then more appended: a full re-index, not a grown one.
    ok(tarfs().arg("index").arg("--force").arg(&a));
    // The first member renamed in place, its header checksum recomputed: a valid header, but
    // not the one indexed.
    let mut bytes = fs::read(&a).unwrap();
    let mut h = [0u8; 512];
    h.copy_from_slice(&bytes[..512]);
    h[0] = b'X';
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    bytes[..512].copy_from_slice(&h);
    fs::write(&a, &bytes).unwrap();
    write_pattern(&src.join("added2"), 5000, 5);
    ok(Command::new("tar").arg("-rf").arg(&a).arg("-C").arg(&src).arg("added2"));
    let reason = grown_equals_full(&a);
    assert!(reason.starts_with("rebuilt"), "a changed old part was carried over: {reason}");

    // Pax global headers in the old part: their state does not carry over; a full re-index.
    let g = tmp.path().join("globals.tar");
    ok(Command::new("python3").arg("-c").arg("import sys, tarfile\nwith tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT, pax_headers={'uname': 'global-owner'}) as t:\n    t.add(sys.argv[2] + '/big-00', 'big-00')").arg(&g).arg(&src));
    ok(tarfs().arg("index").arg(&g));
    ok(Command::new("tar").arg("-rf").arg(&g).arg("-C").arg(&src).arg("added2"));
    let reason = grown_equals_full(&g);
    assert!(reason.starts_with("rebuilt"), "globals carried over: {reason}");
}

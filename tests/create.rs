//! `tarfs create` and `IndexFirstBuilder`: index-first archives that every reader accepts.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::process::Command;

use common::{ok, python_members, tarfs, write_pattern};
use tarfs::builder::{IndexFirstBuilder, MemberOptions};
use tempfile::TempDir;

#[test]
fn create_is_index_first_and_reads_everywhere() {
    let tmp = TempDir::new().unwrap();
    let t = tmp.path().join("src/tree");
    fs::create_dir_all(t.join("a/b")).unwrap();
    for (i, len) in [0usize, 511, 512, 513, 200_000].iter().enumerate() {
        write_pattern(&t.join(format!("a/f{i}")), *len, i as u64);
    }
    write_pattern(&t.join(format!("a/b/{}", "long".repeat(50))), 900, 7);
    fs::set_permissions(t.join("a/f1"), fs::Permissions::from_mode(0o751)).unwrap();
    symlink("f2", t.join("a/sym")).unwrap();
    fs::hard_link(t.join("a/f3"), t.join("a/hard")).unwrap();
    let out = tmp.path().join("new.tar");
    ok(tarfs().arg("create").arg("-f").arg(&out).arg("-C").arg(tmp.path().join("src")).arg("tree"));

    let verified = String::from_utf8(ok(tarfs().arg("verify").arg(&out)).stdout).unwrap();
    assert!(verified.contains("embedded .tarfs index"), "{verified}");
    let gnu = String::from_utf8(ok(Command::new("tar").arg("-tf").arg(&out)).stdout).unwrap();
    let bsd = String::from_utf8(ok(Command::new("bsdtar").arg("-tf").arg(&out)).stdout).unwrap();
    assert_eq!(gnu.lines().next(), Some(".tarfs"));
    assert_eq!(gnu, bsd);
    let py = python_members(&out);
    assert_eq!(py[0]["name"], ".tarfs");
    assert_eq!(py.len(), gnu.lines().count());

    // tarfs lists everything but .tarfs, through the embedded index, with Python's offsets.
    let ours = common::tarfs_members(&out);
    assert_eq!(ours.len(), py.len() - 1);
    for (o, p) in ours.iter().zip(&py[1..]) {
        assert_eq!((&o["header_offset"], &o["data_offset"]), (&p["offset"], &p["offset_data"]), "{o} vs {p}");
    }

    // tar -xf gives back the tree.
    let x = tmp.path().join("x");
    fs::create_dir_all(&x).unwrap();
    ok(Command::new("tar").arg("-xf").arg(&out).arg("-C").arg(&x).arg("--exclude=.tarfs"));
    let diff = Command::new("diff").arg("-r").arg("--no-dereference").arg(&t).arg(x.join("tree")).output().unwrap();
    assert!(diff.status.success(), "{}", String::from_utf8_lossy(&diff.stdout));
    assert_eq!(fs::metadata(x.join("tree/a/f1")).unwrap().permissions().mode() & 0o7777, 0o751);
    assert_eq!(fs::read_link(x.join("tree/a/sym")).unwrap().to_str(), Some("f2"));
}

#[test]
fn index_first_builder_spools_past_its_threshold() {
    let mut b = IndexFirstBuilder::with_threshold(4096);
    let big = vec![3u8; 100_000];
    b.add("small", b"x").unwrap();
    b.add("big", &big).unwrap();
    b.add_with("dir/", &[], &MemberOptions { typeflag: b'5', mode: 0o755, ..Default::default() }).unwrap();
    let mut tar = Vec::new();
    b.finish(&mut tar).unwrap();
    let tmp = TempDir::new().unwrap();
    let a = tmp.path().join("s.tar");
    fs::write(&a, &tar).unwrap();
    ok(tarfs().arg("verify").arg(&a));
    assert_eq!(ok(tarfs().arg("cat").arg(&a).arg("big")).stdout, big);
    let gnu = String::from_utf8(ok(Command::new("tar").arg("-tf").arg(&a)).stdout).unwrap();
    assert_eq!(gnu, ".tarfs\nsmall\nbig\ndir/\n");
}

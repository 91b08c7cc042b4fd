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

    let verified = String::from_utf8(ok(tarfs().arg("-v").arg("verify").arg(&out)).stdout).unwrap();
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

    // Its index is v2.0 with member digests: `sha256sum -c` takes `ls --digest` of it for
    // what tar extracted, and `--no-digests` or `--format v1` give what they say.
    assert_eq!(&fs::read(&out).unwrap()[512 + 11..512 + 15], b"v2.0");
    let sums = tmp.path().join("SUMS");
    fs::write(&sums, ok(tarfs().args(["ls", "--digest"]).arg(&out)).stdout).unwrap();
    assert_eq!(fs::read_to_string(&sums).unwrap().lines().count(), 6, "every regular file has its digest (the hard link is a link member)");
    ok(Command::new("sha256sum").arg("-c").arg("--quiet").arg(&sums).current_dir(&x));
    for (flag, version, digests) in [("--no-digests", "v2.0", false), ("--format=v1", "v1.0", true)] {
        let other = tmp.path().join(format!("other{flag}.tar"));
        ok(tarfs().arg("create").arg(flag).arg("-f").arg(&other).arg("-C").arg(tmp.path().join("src")).arg("tree"));
        assert_eq!(&fs::read(&other).unwrap()[512 + 11..512 + 15], version.as_bytes(), "{flag}");
        let listed = tarfs().args(["ls", "--digest"]).arg(&other).output().unwrap();
        assert_eq!(listed.status.success(), digests, "{flag}: {}", String::from_utf8_lossy(&listed.stderr));
        ok(tarfs().arg("verify").arg(&other));
    }
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

/// A file that changes while `create` reads it (#29 finding 17), paused after it opened the
/// file: grown, shrunk, or overwritten with other bytes of the same length and its mtime put
/// back. As GNU tar does, the archive is still written, the member keeps the size the file had
/// before it was read (bytes added are left out, bytes lost are zeros), and the command warns
/// "file changed as we read it" and exits 1. A file left alone gives exit 0 and no warning.
#[test]
fn create_warns_and_fails_when_a_file_changes_as_it_is_read() {
    use std::os::unix::fs::FileExt;
    let len = 100_000usize;
    let grow = |f: &std::path::Path| std::io::Write::write_all(&mut fs::OpenOptions::new().append(true).open(f).unwrap(), &[7u8; 5000]).unwrap();
    let shrink = |f: &std::path::Path| fs::OpenOptions::new().write(true).open(f).unwrap().set_len(60_000).unwrap();
    let rewrite = |f: &std::path::Path| {
        let stamp = f.parent().unwrap().with_extension("stamp");
        ok(Command::new("touch").arg("-r").arg(f).arg(&stamp));
        fs::OpenOptions::new().write(true).open(f).unwrap().write_all_at(&vec![9u8; len], 0).unwrap();
        ok(Command::new("touch").arg("-r").arg(&stamp).arg(f));
    };
    let leave = |_: &std::path::Path| {};
    let cases: [(&str, &dyn Fn(&std::path::Path), Option<&str>); 4] =
        [("grown", &grow, Some("")), ("shrunk", &shrink, Some("; it shrank by 40000 bytes: padded with zeros")), ("rewritten", &rewrite, Some("")), ("left alone", &leave, None)];
    for (what, change, warning) in cases {
        let tmp = TempDir::new().unwrap();
        let t = tmp.path().join("tree");
        fs::create_dir_all(&t).unwrap();
        write_pattern(&t.join("a"), len, 1);
        write_pattern(&t.join("b"), 3000, 2);
        let original = fs::read(t.join("a")).unwrap();
        let out = tmp.path().join("new.tar");
        let r = common::run_paused(tarfs().arg("create").arg("-f").arg(&out).arg("-C").arg(tmp.path()).arg("tree"), "create-opened", || change(&t.join("a")));
        let err = String::from_utf8_lossy(&r.stderr);
        let warned = format!("tarfs: {}: file changed as we read it{}\n", t.join("a").display(), warning.unwrap_or_default());
        assert_eq!((r.status.code(), err.contains(&warned)), (Some(if warning.is_some() { 1 } else { 0 }), warning.is_some()), "{what}: {err}");
        assert!(!err.contains("tree/b"), "{what}: {err}");
        // The archive is written, whole: every reader takes it, the member at its first size.
        ok(tarfs().arg("verify").arg(&out));
        let a = ok(Command::new("tar").arg("-xOf").arg(&out).arg("tree/a")).stdout;
        assert_eq!(a.len(), len, "{what}");
        match what {
            "grown" | "left alone" => assert!(a == original, "{what}: other bytes"),
            "shrunk" => assert!(a[..60_000] == original[..60_000] && a[60_000..].iter().all(|&b| b == 0), "{what}: not padded with zeros"),
            _ => assert!(a.iter().all(|&b| b == 9), "{what}: not the bytes read"),
        }
        assert_eq!(ok(Command::new("tar").arg("-xOf").arg(&out).arg("tree/b")).stdout, fs::read(t.join("b")).unwrap());
        // Its digests are those of what was stored (the zeros too), not of the file.
        ok(tarfs().arg("scrub").arg(&out));
    }
}

/// The same with no testing aid, beside GNU tar: a large file appended to by a writer all the
/// while `tar -cf` and `tarfs create` read it. Both warn "file changed as we read it" and exit 1,
/// and both store the file as it was up to the size it had when they looked at it first.
#[test]
fn create_fails_like_gnu_tar_on_a_file_appended_to_while_read() {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    let tmp = TempDir::new().unwrap();
    let t = tmp.path().join("tree");
    fs::create_dir_all(&t).unwrap();
    write_pattern(&t.join("big"), 64_000_000, 3);
    let stop = AtomicBool::new(false);
    let (gnu, ours) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut f = fs::OpenOptions::new().append(true).open(t.join("big")).unwrap();
            // About 5 MB/s: many appends while either reads 64 MB, a small file in the end.
            while !stop.load(Ordering::Relaxed) {
                f.write_all(&[5u8; 1000]).unwrap();
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        });
        let gnu = Command::new("tar").arg("-cf").arg(tmp.path().join("gnu.tar")).arg("-C").arg(tmp.path()).arg("tree").output().unwrap();
        let ours = tarfs().arg("create").arg("-f").arg(tmp.path().join("ours.tar")).arg("-C").arg(tmp.path()).arg("tree").output().unwrap();
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        (gnu, ours)
    });
    let (gnu_err, our_err) = (String::from_utf8_lossy(&gnu.stderr), String::from_utf8_lossy(&ours.stderr));
    assert_eq!(gnu.status.code(), Some(1), "{gnu_err}");
    assert!(gnu_err.contains("tree/big: file changed as we read it"), "{gnu_err}");
    assert_eq!(ours.status.code(), gnu.status.code(), "{our_err}");
    assert!(our_err.contains(&format!("tarfs: {}: file changed as we read it\n", t.join("big").display())), "{our_err}");
    let now = fs::read(t.join("big")).unwrap();
    for archive in ["gnu.tar", "ours.tar"] {
        let stored = ok(Command::new("tar").arg("-xOf").arg(tmp.path().join(archive)).arg("tree/big")).stdout;
        assert!(stored.len() >= 64_000_000 && stored.len() < now.len(), "{archive}: {} bytes of {}", stored.len(), now.len());
        assert!(stored[..] == now[..stored.len()], "{archive}: other bytes");
    }
}

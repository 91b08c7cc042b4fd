//! In-place changes never lose or change the user's data (issue "In-place changes that cannot
//! lose or change the user's data"): one test per case found, each on archives made here by
//! GNU tar or Python, and on real Debian archives where the case needs one. After every run the
//! archive is either byte-identical to before, or GNU tar, bsdtar and Python extract the same tree
//! from it as from the original (`tests/trees.py`), plus the index member.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{corpus_dir, gnu_archive, header, isolated, listing, ok, run, tarfs, write_pattern};
use tempfile::TempDir;

/// Files `f0000`.. of `size` bytes, the first one `first` bytes, for [`gnu_archive`].
fn sized(first: usize, size: usize) -> impl Fn(usize) -> (String, usize, u64) {
    move |i| (format!("f{i:04}"), if i == 0 { first } else { size }, i as u64 + 7)
}

/// Asserts that GNU tar, bsdtar and Python extract the same tree from `changed` as from
/// `original`, plus index members.
fn same_trees(original: &Path, changed: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/trees.py");
    let out = Command::new("python3").arg(script).arg(original).arg(changed).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}


/// Files in `dir` other than `keep`.
fn others(dir: &Path, keep: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| !keep.contains(&n.as_str())).collect();
    v.sort();
    v
}

/// Asserts that `cmd` failed, left `archive` as `before`, and said so.
fn refused(cmd: &mut Command, archive: &Path, before: &[u8], says: &str) -> String {
    let (code, err) = run(cmd);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(says), "expected {says:?} in: {err}");
    assert!(err.contains("not changed") || err.contains("as it was"), "the message says the archive is unchanged: {err}");
    assert_eq!(fs::read(archive).unwrap(), before, "{archive:?} changed");
    err
}

// Case 1: two names for one file.

#[test]
fn two_names_in_one_batch_change_the_file_once() {
    let tmp = TempDir::new().unwrap();
    let a = gnu_archive(tmp.path(), "src", "pax", 300, sized(40_000, 300));
    let orig = tmp.path().join("orig.tar");
    fs::copy(&a, &orig).unwrap();
    for round in 0..5 {
        let snap = tmp.path().join(format!("snap{round}"));
        fs::create_dir_all(&snap).unwrap();
        fs::copy(&orig, snap.join("a.tar")).unwrap();
        fs::hard_link(snap.join("a.tar"), snap.join("b.tar")).unwrap();
        std::os::unix::fs::symlink("a.tar", snap.join("c.tar")).unwrap();
        let (code, err) = run(tarfs().args(["embed", "-j", "2", "-L"]).arg(&snap));
        assert_eq!(code, Some(0), "{err}");
        assert!(err.contains("1 embedded") && err.contains("2 skipped"), "{err}");
        let names = listing("tar", &snap.join("b.tar"));
        assert_eq!(names.iter().filter(|n| *n == ".tarfs").count(), 1);
        assert_eq!(names.len(), listing("tar", &orig).len() + 1);
        assert_eq!(others(&snap, &[]), ["a.tar", "b.tar", "c.tar"], "no lock or journal files are left");
        if round == 0 {
            same_trees(&orig, &snap.join("a.tar"));
        }
    }
}

#[test]
fn two_processes_through_two_names_never_both_change_it() {
    let tmp = TempDir::new().unwrap();
    let a = gnu_archive(tmp.path(), "src", "pax", 3000, sized(400_000, 300));
    let orig = tmp.path().join("orig.tar");
    fs::copy(&a, &orig).unwrap();
    let want = listing("tar", &orig).len() + 1;
    for round in 0..16 {
        let d = tmp.path().join(format!("r{round}"));
        fs::create_dir_all(&d).unwrap();
        fs::copy(&orig, d.join("a.tar")).unwrap();
        if round % 2 == 0 {
            fs::hard_link(d.join("a.tar"), d.join("b.tar")).unwrap();
        } else {
            std::os::unix::fs::symlink("a.tar", d.join("b.tar")).unwrap();
        }
        let cmd = if round % 4 < 2 { "embed" } else { "csv" };
        let children: Vec<_> = ["a.tar", "b.tar"].iter().map(|n| tarfs().arg(cmd).arg(d.join(n)).stderr(Stdio::piped()).spawn().unwrap()).collect();
        let outs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
        let errs: Vec<String> = outs.iter().map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).collect();
        assert!(outs.iter().any(|o| o.status.success()), "{errs:?}");
        let names = listing("tar", &d.join("a.tar"));
        let index_members = names.iter().filter(|n| *n == ".tarfs" || n.starts_with(".tarindex_")).count();
        // Either one process was busy, or the second found the work done (embed) or appended a
        // second CSV index after the first one's (csv): never a damaged archive.
        if cmd == "embed" {
            assert_eq!(index_members, 1, "{errs:?}");
            assert_eq!(names.len(), want, "{errs:?}");
        } else {
            assert!(index_members >= 1 && names.len() == want - 1 + index_members, "{errs:?}");
        }
        ok(tarfs().arg("verify").arg(d.join("a.tar")));
        if round < 2 {
            same_trees(&orig, &d.join("a.tar"));
        }
    }
}

// Case 2: a stale journal is never applied to another file.

#[test]
fn a_journal_is_not_applied_to_a_restored_backup() {
    let tmp = TempDir::new().unwrap();
    let a = gnu_archive(tmp.path(), "a", "gnu", 40, sized(200_000, 1000));
    let newer = gnu_archive(tmp.path(), "newer", "gnu", 400, sized(300, 5000));
    let (code, _) = run(tarfs().arg("embed").arg(&a).env("TARFS_CRASH_AFTER", "embed-entries-synced"));
    assert_eq!(code, Some(86));
    // The user restores a newer backup over the archive: the same inode, other bytes.
    let ino = fs::metadata(&a).unwrap().ino();
    fs::copy(&newer, &a).unwrap();
    assert_eq!(fs::metadata(&a).unwrap().ino(), ino);
    let before = fs::read(&a).unwrap();
    for args in [&["csv"][..], &["embed"], &["recover"]] {
        let (code, err) = run(tarfs().args(args).arg(&a));
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("does not belong to this file") && err.contains("delete the journal"), "{err}");
        assert_eq!(fs::read(&a).unwrap(), before);
    }
    // Readers refuse a half-changed archive until `tarfs recover` has run, and say why.
    let (code, err) = run(tarfs().arg("ls").arg(&a));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("journal") && err.contains("tarfs recover"), "{err}");
}

// Case 3: an I/O error during recovery is never taken for evidence.

#[test]
fn recovery_stops_at_an_io_error_and_keeps_the_journal() {
    let tmp = TempDir::new().unwrap();
    let a = gnu_archive(tmp.path(), "a", "gnu", 30, sized(30_000, 700));
    let orig = fs::read(&a).unwrap();
    let mut runs = 0;
    for step in ["header-written", "header-synced", "entries-written", "entries-synced"] {
        for (syscall, errno) in [("pread64", "EIO"), ("pwrite64", "ENOSPC"), ("pread64", "ENOSPC"), ("pwrite64", "EIO")] {
            for when in 1..=3 {
                let c = tmp.path().join(format!("c-{step}-{syscall}-{errno}-{when}.tar"));
                fs::write(&c, &orig).unwrap();
                let (code, _) = run(tarfs().arg("embed").arg(&c).env("TARFS_CRASH_AFTER", format!("embed-{step}")));
                assert_eq!(code, Some(86));
                let (code, err) = run(Command::new("strace").args(["-f", "-qq", "-o", "/dev/null", "-e"]).arg(format!("inject={syscall}:error={errno}:when={when}")).arg(env!("CARGO_BIN_EXE_tarfs")).arg("recover").arg(&c));
                runs += 1;
                if code == Some(127) {
                    // The loader's own read failed: tarfs never started.
                    assert!(err.contains("error while loading shared libraries"), "{err}");
                } else if code == Some(0) {
                    assert_eq!(fs::read(&c).unwrap(), orig, "recovery said it succeeded: {err}");
                } else {
                    assert_eq!(code, Some(1), "{err}");
                    assert!(err.contains("tarfs recover"), "the message says what to do: {err}");
                }
                ok(tarfs().arg("recover").arg(&c));
                assert_eq!(fs::read(&c).unwrap(), orig, "{step} {syscall} {errno} {when}");
                assert_eq!(others(tmp.path(), &[]).iter().filter(|n| n.starts_with(".tarfs-journal")).count(), 0);
            }
        }
    }
    assert_eq!(runs, 48);
}

// Case 4: recovery streams the displaced region.

#[test]
fn recovery_memory_does_not_grow_with_the_displaced_region() {
    let tmp = TempDir::new().unwrap();
    let a = gnu_archive(tmp.path(), "a", "gnu", 20, sized(96 << 20, 100));
    let orig_len = fs::metadata(&a).unwrap().len();
    let (code, _) = run(tarfs().arg("embed").arg(&a).env("TARFS_CRASH_AFTER", "embed-entries-synced"));
    assert_eq!(code, Some(86));
    let out = ok(Command::new("/usr/bin/time").args(["-f", "%M"]).arg(env!("CARGO_BIN_EXE_tarfs")).arg("-v").arg("recover").arg(&a));
    let err = String::from_utf8_lossy(&out.stderr);
    let kb: u64 = err.lines().last().unwrap().trim().parse().unwrap();
    assert!(kb < 48 * 1024, "recover of a 96 MiB displaced member used {kb} KiB");
    assert_eq!(fs::metadata(&a).unwrap().len(), orig_len);
    assert!(String::from_utf8_lossy(&out.stdout).contains("rolled back"), "{err}");
}

// Case 5: only regular files, and no blocking on a FIFO.

#[test]
fn devices_fifos_and_sockets_are_refused_without_blocking() {
    let tmp = TempDir::new().unwrap();
    let fifo = tmp.path().join("fifo.tar");
    ok(Command::new("mkfifo").arg(&fifo));
    let chr = tmp.path().join("null.tar");
    ok(Command::new("mknod").arg(&chr).args(["c", "1", "3"]));
    let blk = tmp.path().join("loop.tar");
    ok(Command::new("mknod").arg(&blk).args(["b", "7", "0"]));
    let sock = tmp.path().join("sock.tar");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    for (f, kind) in [(&fifo, "a FIFO"), (&chr, "a character device"), (&blk, "a block device"), (&sock, "a socket")] {
        for cmd in [&["embed"][..], &["csv"], &["ls"], &["verify"], &["cat", "-", "x"], &["extract", "-C", "/nonexistent-dir-x"]] {
            let mut c = Command::new("timeout");
            c.arg("10").arg(env!("CARGO_BIN_EXE_tarfs"));
            if cmd[0] == "cat" {
                c.arg("cat").arg(f).arg("x");
            } else if cmd[0] == "extract" {
                c.arg("extract").arg(f).arg("-C").arg(tmp.path());
            } else {
                c.args(cmd).arg(f);
            }
            let (code, err) = run(&mut c);
            assert_eq!(code, Some(1), "{cmd:?} {f:?}: {err}");
            assert!(err.contains(kind), "{cmd:?} {f:?}: {err}");
        }
    }
    assert_eq!(others(tmp.path(), &[]), ["fifo.tar", "loop.tar", "null.tar", "sock.tar"], "nothing was created beside them");
    // `index` reads a FIFO as a stream (with a writer).
    let a = gnu_archive(tmp.path(), "s", "gnu", 5, sized(100, 100));
    let writer = Command::new("sh").arg("-c").arg(format!("cat {} > {}", a.display(), fifo.display())).spawn().unwrap();
    ok(Command::new("timeout").arg("20").arg(env!("CARGO_BIN_EXE_tarfs")).arg("index").arg(&fifo).arg("--output").arg(tmp.path().join("f.tarfs")));
    writer.wait_with_output().unwrap();
}

// Case 6: a full disk stops the change before it starts.

struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn small_fs(dir: &Path, size: &str) -> Mount {
    fs::create_dir_all(dir).unwrap();
    ok(Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir));
    Mount(dir.to_path_buf())
}

#[test]
fn a_full_disk_changes_nothing() {
    let tmp = TempDir::new().unwrap();
    let mnt = tmp.path().join("mnt");
    let _m = small_fs(&mnt, "4m");
    let a = gnu_archive(&mnt, "a", "gnu", 50, sized(1_500_000, 2000));
    fs::remove_dir_all(mnt.join("a-src")).unwrap();
    let before = fs::read(&a).unwrap();
    // Fill the file system so that the displaced copy cannot fit.
    let free = |p: &Path| {
        let out = ok(Command::new("df").arg("-B1").arg("--output=avail").arg(p));
        String::from_utf8_lossy(&out.stdout).lines().last().unwrap().trim().parse::<u64>().unwrap()
    };
    let fill = free(&mnt).saturating_sub(1_000_000);
    write_pattern(&mnt.join("filler"), fill as usize, 1);
    let err = refused(tarfs().arg("embed").arg(&a), &a, &before, "no room");
    assert!(!err.contains("recover"), "{err}");
    assert_eq!(others(&mnt, &[]), ["a.tar", "filler"]);
    // No room even for the journal or the CSV member.
    let last = free(&mnt);
    write_pattern(&mnt.join("filler2"), last as usize, 2);
    for cmd in ["embed", "csv"] {
        let (code, err) = run(tarfs().arg(cmd).arg(&a));
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("not changed") || err.contains("as it was"), "{err}");
        assert_eq!(fs::read(&a).unwrap(), before);
        assert_eq!(others(&mnt, &[]), ["a.tar", "filler", "filler2"]);
    }
    // With the room back, it works.
    fs::remove_file(mnt.join("filler")).unwrap();
    fs::remove_file(mnt.join("filler2")).unwrap();
    let orig = tmp.path().join("orig.tar");
    fs::write(&orig, &before).unwrap();
    ok(tarfs().arg("embed").arg(&a));
    same_trees(&orig, &a);
}

// Case 7: where moving members would change what readers extract, embed refuses with
// --no-shift, and otherwise shifts the whole archive (which every reader extracts as before).

/// `embed` of (a copy of) `a`, which must shift it: every reader extracts the same tree.
fn shifts(a: &Path) {
    let b = a.with_extension("shifted");
    fs::copy(a, &b).unwrap();
    let out = ok(tarfs().arg("-v").arg("embed").arg(&b));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shifted the archive"), "{}", String::from_utf8_lossy(&out.stderr));
    ok(tarfs().arg("verify").arg(&b));
    same_trees(a, &b);
}

#[test]
fn embed_refuses_when_a_displaced_member_is_a_hard_link_target() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("usr/bin")).unwrap();
    write_pattern(&src.join("usr/bin/perl"), 50_000, 1);
    for i in 0..200 {
        write_pattern(&src.join(format!("usr/f{i:03}")), 100, i);
    }
    fs::hard_link(src.join("usr/bin/perl"), src.join("usr/bin/perl5.36.0")).unwrap();
    let a = tmp.path().join("a.tar");
    // perl first, its link last.
    let mut names = vec!["./usr/bin/perl".to_string()];
    names.extend((0..200).map(|i| format!("./usr/f{i:03}")));
    names.push("./usr/bin/perl5.36.0".into());
    ok(Command::new("tar").arg("-cf").arg(&a).arg("-C").arg(&src).arg("--no-recursion").args(&names));
    let before = fs::read(&a).unwrap();
    refused(tarfs().arg("embed").arg("--no-shift").arg(&a), &a, &before, "--output");
    shifts(&a);
    // --output keeps the order, and every reader extracts the same tree.
    let out = tmp.path().join("out.tar");
    ok(tarfs().arg("embed").arg(&a).arg("--output").arg(&out));
    same_trees(&a, &out);
    // Hard links among members that stay are fine.
    let b = tmp.path().join("b.tar");
    let mut names: Vec<String> = (0..200).map(|i| format!("./usr/f{i:03}")).collect();
    names.extend(["./usr/bin/perl".to_string(), "./usr/bin/perl5.36.0".to_string()]);
    ok(Command::new("tar").arg("-cf").arg(&b).arg("-C").arg(&src).arg("--no-recursion").args(&names));
    let orig = tmp.path().join("b.orig");
    fs::copy(&b, &orig).unwrap();
    ok(tarfs().arg("embed").arg(&b));
    same_trees(&orig, &b);
}

#[test]
fn embed_refuses_when_a_name_occurs_twice() {
    let tmp = TempDir::new().unwrap();
    let a = gnu_archive(tmp.path(), "a", "gnu", 40, sized(30_000, 100));
    // An update with tar -rf: a newer f0000 at the end.
    write_pattern(&tmp.path().join("a-src/f0000"), 500, 99);
    ok(Command::new("tar").arg("-rf").arg(&a).arg("-C").arg(tmp.path().join("a-src")).arg("./f0000"));
    let before = fs::read(&a).unwrap();
    let err = refused(tarfs().arg("embed").arg("--no-shift").arg(&a), &a, &before, "same name");
    shifts(&a);
    assert!(err.contains("at byte 1024") || err.contains("at byte"), "{err}");
}

#[test]
fn embed_refuses_members_hidden_behind_zero_blocks() {
    let tmp = TempDir::new().unwrap();
    let a = gnu_archive(tmp.path(), "a", "gnu", 8, sized(30_000, 100));
    let b = gnu_archive(tmp.path(), "b", "gnu", 21, sized(100, 100));
    let c = tmp.path().join("c.tar");
    let mut bytes = fs::read(&a).unwrap();
    bytes.extend(fs::read(&b).unwrap());
    fs::write(&c, &bytes).unwrap();
    refused(tarfs().arg("embed").arg("--no-shift").arg("--lenient").arg(&c), &c, &bytes, "zero blocks");
    // Shifted, the members behind the zero blocks stay behind them, and GNU tar still stops there.
    let d = tmp.path().join("d.tar");
    fs::copy(&c, &d).unwrap();
    let out = ok(tarfs().arg("-v").arg("embed").arg("--lenient").arg(&d));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shifted the archive"), "{}", String::from_utf8_lossy(&out.stderr));
    same_trees(&c, &d);
}

fn archive_of(blocks: &[Vec<u8>]) -> Vec<u8> {
    let mut v: Vec<u8> = blocks.concat();
    v.extend_from_slice(&[0u8; 1024]);
    v
}

#[test]
fn embed_refuses_headers_that_readers_read_differently() {
    let tmp = TempDir::new().unwrap();
    let files: Vec<Vec<u8>> = (0..12).flat_map(|i| [header(&format!("f{i}"), b'0', 100, "").to_vec(), vec![b'x'; 512]]).collect();
    // A symlink that says it has data.
    let mut sym = header("s", b'2', 512, "f1").to_vec();
    sym.extend_from_slice(&[b'y'; 512]);
    // Garbage in the device fields of a regular file.
    let mut dev = header("d", b'0', 0, "");
    dev[329..333].copy_from_slice(b"zz9z");
    tarfs::format::header::set_checksum(&mut dev);
    for (name, first) in [("sym", sym), ("dev", dev.to_vec())] {
        let a = tmp.path().join(format!("{name}.tar"));
        let mut blocks = vec![first];
        blocks.extend(files.iter().cloned());
        let bytes = archive_of(&blocks);
        fs::write(&a, &bytes).unwrap();
        refused(tarfs().arg("embed").arg("--no-shift").arg(&a), &a, &bytes, "read differently");
        // Nor shifted: the first header is what libarchive judges the archive by (with the
        // device fields, bsdtar extracts nothing), and a shift would put the index before it.
        refused(tarfs().arg("embed").arg(&a), &a, &bytes, if name == "dev" { "first header" } else { "read differently" });
        // Second, it may be shifted: every reader extracts what it did.
        if name == "dev" {
            let b = tmp.path().join("dev2.tar");
            let mut blocks = files[..2].to_vec();
            blocks.push(dev.to_vec());
            blocks.extend(files[2..].iter().cloned());
            let bytes = archive_of(&blocks);
            fs::write(&b, &bytes).unwrap();
            refused(tarfs().arg("embed").arg("--no-shift").arg(&b), &b, &bytes, "read differently");
            shifts(&b);
        }
    }
}

/// Debian's `perl-base` `data.tar`, which `scripts/test.sh` downloads (`apt-get download`,
/// `ar x`): its first member is `./usr/bin/perl`, and `./usr/bin/perl5.*` is a hard link to it.
fn perl_base() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/real-archives/perl-base.data.tar");
    assert!(p.is_file(), "{} is missing: scripts/test.sh downloads it (apt-get download perl-base)", p.display());
    p
}

#[test]
fn embed_keeps_the_meaning_of_debians_perl_base() {
    let tmp = TempDir::new().unwrap();
    let a = tmp.path().join("data.tar");
    fs::copy(perl_base(), &a).unwrap();
    let before = fs::read(&a).unwrap();
    let (code, err) = run(tarfs().arg("embed").arg("--no-shift").arg(&a));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("hard link") && err.contains("--output"), "{err}");
    assert_eq!(fs::read(&a).unwrap(), before);
    // Shifted: every reader extracts what it did.
    let (code, err) = run(tarfs().arg("-v").arg("embed").arg(&a));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("shifted the archive"), "{err}");
    let orig = tmp.path().join("orig.tar");
    fs::write(&orig, &before).unwrap();
    same_trees(&orig, &a);
    // The sidecar and --output ways work.
    ok(tarfs().arg("index").arg(&a));
    let out = tmp.path().join("out.tar");
    ok(tarfs().arg("embed").arg(&a).arg("--output").arg(&out));
    same_trees(&orig, &out);
    // csv appends at the end, which moves nothing.
    let c = tmp.path().join("c.tar");
    fs::copy(&a, &c).unwrap();
    ok(tarfs().arg("csv").arg(&c));
    same_trees(&a, &c);
}

// Case 8: growth is bounded, said, and dry runs report it.

#[test]
fn embed_refuses_to_grow_an_archive_past_the_limit() {
    let tmp = TempDir::new().unwrap();
    let a = gnu_archive(tmp.path(), "a", "gnu", 2000, sized(3 << 20, 10));
    let before = fs::read(&a).unwrap();
    let err = refused(tarfs().arg("embed").arg("--max-growth").arg("1M").arg(&a), &a, &before, "grow the archive by");
    assert!(err.contains("1048576"), "{err}");
    let (code, err) = run(tarfs().arg("embed").arg("--dry-run").arg("--json").arg(&a));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(fs::read(&a).unwrap(), before);
    let help = String::from_utf8_lossy(&ok(tarfs().arg("embed").arg("--help")).stdout).into_owned();
    assert!(help.contains("grows by") && help.contains("--max-growth"), "{help}");
}

// Case 9: csv never makes an archive worse.

#[test]
fn archives_cut_inside_the_last_padding_are_refused() {
    let tmp = TempDir::new().unwrap();
    for name in ["11-ustar-1196-end-of-data.tar", "12-ustar-1200.tar", "13-ustar-1535.tar"] {
        let a = tmp.path().join(name);
        fs::copy(corpus_dir().join("go-truncation").join(name), &a).unwrap();
        fs::set_permissions(&a, fs::Permissions::from_mode(0o644)).unwrap();
        let before = fs::read(&a).unwrap();
        for cmd in ["csv", "embed"] {
            refused(tarfs().arg(cmd).arg(&a), &a, &before, "cut short");
        }
        // --output gets the padding back.
        let out = tmp.path().join(format!("{name}.out"));
        ok(tarfs().arg("embed").arg(&a).arg("--output").arg(&out));
        assert_eq!(fs::metadata(&out).unwrap().len() % 512, 0);
        ok(tarfs().arg("verify").arg(&out));
    }
}

#[test]
fn csv_on_cpython_testtar_reads_back_through_its_index() {
    let tmp = TempDir::new().unwrap();
    let a = tmp.path().join("testtar.tar");
    fs::copy(corpus_dir().join("cpython/testtar.tar"), &a).unwrap();
    fs::set_permissions(&a, fs::Permissions::from_mode(0o644)).unwrap();
    let orig = tmp.path().join("orig.tar");
    fs::copy(&a, &orig).unwrap();
    let scan = String::from_utf8_lossy(&ok(tarfs().arg("ls").arg("-l").arg(&orig)).stdout).into_owned();
    ok(tarfs().arg("csv").arg(&a));
    let out = ok(tarfs().arg("-v").arg("ls").arg("-l").arg(&a));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CSV index member .tarindex_0.csv"));
    let through = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = through.lines().collect();
    assert_eq!(lines[..lines.len() - 1].join("\n") + "\n", scan, "the listing through the CSV index is the scan's");
    let x1 = tmp.path().join("x1");
    let x2 = tmp.path().join("x2");
    fs::create_dir_all(&x1).unwrap();
    fs::create_dir_all(&x2).unwrap();
    ok(tarfs().arg("extract").arg(&a).arg("-C").arg(&x1));
    ok(tarfs().arg("extract").arg(&orig).arg("-C").arg(&x2));
    let count = |d: &Path| walk(d).len();
    assert_eq!(count(&x1), count(&x2) + 1);
    ok(tarfs().arg("verify").arg(&a));
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() && !p.is_symlink() {
            v.extend(walk(&p));
        }
        v.push(p);
    }
    v
}

#[test]
fn csv_of_a_git_archive_verifies() {
    let tmp = TempDir::new().unwrap();
    let repo = tmp.path().join("repo");
    fs::create_dir_all(repo.join("src")).unwrap();
    for i in 0..50 {
        write_pattern(&repo.join(format!("src/file{i}.c")), 300 + i, i as u64);
    }
    let git = |args: &[&str]| ok(Command::new("git").arg("-C").arg(&repo).args(["-c", "user.email=t@e", "-c", "user.name=t"]).args(args));
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "x"]);
    let a = tmp.path().join("g.tar");
    let out = git(&["archive", "--format=tar", "--prefix=proj-1.0/", "HEAD"]);
    fs::write(&a, &out.stdout).unwrap();
    let orig = tmp.path().join("orig.tar");
    fs::copy(&a, &orig).unwrap();
    ok(tarfs().arg("csv").arg(&a));
    let (code, err) = run(tarfs().arg("verify").arg(&a));
    assert_eq!(code, Some(0), "{err}");
    same_trees(&orig, &a);
}

// Case 10: the result is read back before it is reported, and a mismatch rolls it back.

#[test]
fn a_result_that_does_not_read_back_is_rolled_back() {
    let tmp = TempDir::new().unwrap();
    for (cmd, step) in [("embed", "embed-check"), ("csv", "csv-check")] {
        let a = gnu_archive(tmp.path(), cmd, "gnu", 30, sized(20_000, 100));
        let before = fs::read(&a).unwrap();
        let (code, err) = run(tarfs().arg(cmd).arg(&a).env("TARFS_TAMPER", step));
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("did not read back") && err.contains("rolled back"), "{err}");
        assert_eq!(fs::read(&a).unwrap(), before);
    }
}

#[test]
fn a_complete_change_that_does_not_read_back_is_rolled_back_too() {
    // A terabyte of zeros (sparse): an empty archive whose CSV index, at byte 0, could not be
    // found from the end. Every write lands, the read-back fails, and the change is undone.
    let tmp = TempDir::new().unwrap();
    let a = tmp.path().join("big.tar");
    fs::File::create(&a).unwrap().set_len(1 << 40).unwrap();
    let (code, err) = run(tarfs().arg("csv").arg(&a));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("did not read back") && err.contains("rolled back"), "{err}");
    assert_eq!(fs::metadata(&a).unwrap().len(), 1 << 40);
    let mut head = vec![0u8; 4096];
    std::io::Read::read_exact(&mut fs::File::open(&a).unwrap(), &mut head).unwrap();
    assert!(head.iter().all(|&b| b == 0), "the CSV member was taken back");
    assert_eq!(others(tmp.path(), &[]), ["big.tar"]);
    // embed finds the end at once too (the trailing zeros are judged by SEEK_DATA, not read),
    // and puts an empty index first.
    let (code, err) = run(Command::new("timeout").arg("60").arg(env!("CARGO_BIN_EXE_tarfs")).arg("embed").arg(&a));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(listing("tar", &a), [".tarfs"]);
}

// Case 11: failures leave nothing behind.

#[test]
fn a_user_who_cannot_write_the_archive_leaves_nothing() {
    let tmp = TempDir::new().unwrap();
    let d = tmp.path().join("shared");
    fs::create_dir_all(&d).unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
    let a = gnu_archive(&d, "a", "gnu", 20, sized(20_000, 100));
    fs::remove_dir_all(d.join("a-src")).unwrap();
    fs::set_permissions(&a, fs::Permissions::from_mode(0o644)).unwrap();
    let before = fs::read(&a).unwrap();
    for cmd in ["embed", "csv", "recover"] {
        let mut c = Command::new("setpriv");
        isolated(&mut c).args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(env!("CARGO_BIN_EXE_tarfs")).arg(cmd).arg(&a);
        let (code, err) = run(&mut c);
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("not writable by this user"), "{err}");
        assert_eq!(fs::read(&a).unwrap(), before);
        assert_eq!(others(&d, &[]), ["a.tar"]);
    }
}

#[test]
fn killed_runs_leave_nothing_that_the_next_run_does_not_take_over() {
    let tmp = TempDir::new().unwrap();
    let a = gnu_archive(tmp.path(), "a", "gnu", 20, sized(20_000, 100));
    fs::remove_dir_all(tmp.path().join("a-src")).unwrap();
    // A sidecar's temporary file from a killed `index`.
    fs::write(tmp.path().join(".a.tar.tarfs.tarfs-tmp"), b"half an index").unwrap();
    ok(tarfs().arg("index").arg(&a));
    assert_eq!(others(tmp.path(), &[]), ["a.tar", "a.tar.tarfs"]);
    // A journal's temporary file and a journal from a killed `embed`.
    let (code, _) = run(tarfs().arg("embed").arg(&a).env("TARFS_CRASH_AFTER", "embed-header-written"));
    assert_eq!(code, Some(86));
    ok(tarfs().arg("embed").arg(&a));
    assert_eq!(others(tmp.path(), &[]), ["a.tar", "a.tar.tarfs"]);
    // A tree: no lock files.
    let tree = tmp.path().join("tree");
    for i in 0..20 {
        gnu_archive(&tree, &format!("t{i}"), "gnu", 5, sized(5000, 100));
        fs::remove_dir_all(tree.join(format!("t{i}-src"))).unwrap();
    }
    ok(tarfs().arg("embed").arg(&tree));
    ok(tarfs().arg("csv").arg(&tree));
    assert!(others(&tree, &[]).iter().all(|n| n.ends_with(".tar")), "{:?}", others(&tree, &[]));
}

// Case 12: what tarfs creates honours the umask, and a sidecar is no more readable than its
// archive.

#[test]
fn created_files_honour_the_umask_and_the_archive() {
    let tmp = TempDir::new().unwrap();
    let a = gnu_archive(tmp.path(), "a", "gnu", 3, sized(100, 100));
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let sh = |umask: &str, args: &str| ok(isolated(Command::new("sh").arg("-c").arg(format!("umask {umask}; exec {} {args}", env!("CARGO_BIN_EXE_tarfs")))));
    for (archive_mode, umask, want) in [(0o644, "022", 0o644), (0o600, "022", 0o600), (0o640, "022", 0o640), (0o644, "027", 0o640), (0o444, "000", 0o666)] {
        fs::set_permissions(&a, fs::Permissions::from_mode(archive_mode)).unwrap();
        sh(umask, &format!("index --force {}", a.display()));
        assert_eq!(mode(&tmp.path().join("a.tar.tarfs")), want, "archive {archive_mode:o}, umask {umask}");
    }
    fs::set_permissions(&a, fs::Permissions::from_mode(0o644)).unwrap();
    let out = tmp.path().join("out.tar");
    sh("022", &format!("embed {} --output {}", a.display(), out.display()));
    assert_eq!(mode(&out), 0o644);
    sh("027", &format!("create -f {} -C {} a-src", tmp.path().join("c.tar").display(), tmp.path().display()));
    assert_eq!(mode(&tmp.path().join("c.tar")), 0o640);
}

// Case 13: a failed fdatasync reaches the exit status.

#[test]
fn an_early_writeback_error_fails_the_index() {
    let tmp = TempDir::new().unwrap();
    let a = tmp.path().join("many.tar");
    // 60,000 empty members: a v1 index of 30 MB, past the 8 MiB early-writeback step.
    ok(Command::new("python3")
        .arg("-c")
        .arg("import tarfile,sys\nwith tarfile.open(sys.argv[1],'w',format=tarfile.USTAR_FORMAT) as t:\n for i in range(60000):\n  t.addfile(tarfile.TarInfo('d/f%05d'%i))")
        .arg(&a));
    let trace = tmp.path().join("trace");
    let strace = |extra: &[&str]| {
        let mut c = Command::new("strace");
        c.args(["-f", "-qq", "-e", "trace=fdatasync", "-o"]).arg(&trace).args(extra).arg(env!("CARGO_BIN_EXE_tarfs")).args(["index", "--format", "v1", "--force", "--scan", "sequential"]).arg(&a);
        run(isolated(&mut c))
    };
    // The helper flushes early under strace too (the test would prove nothing otherwise).
    let (code, err) = strace(&[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(fs::read_to_string(&trace).unwrap().contains("fdatasync("), "no early flush happened");
    fs::remove_file(tmp.path().join("many.tar.tarfs")).unwrap();
    let (code, err) = strace(&["-e", "inject=fdatasync:error=EIO:when=1"]);
    fs::remove_file(&trace).unwrap();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("Input/output error"), "{err}");
    assert!(!tmp.path().join("many.tar.tarfs").exists());
    assert_eq!(others(tmp.path(), &[]), ["many.tar"]);
}

// Issue #29 finding 14: `tar -rf` (GNU tar takes no lock) appending between the survey of an
// in-place change and its first write.

/// Runs `tarfs CMD` on a copy of a GNU tar archive, pausing it after `step` while GNU tar appends
/// a member with `tar -rf`, then resumes it: it must refuse (exit 1) and leave the archive as
/// GNU tar made it, byte for byte, the new member listed and extracted whole; run again, it
/// indexes every member, and `tarfs verify` agrees.
fn race_with_tar_append(tmp: &Path, cmd: &str, step: &str) {
    let base = gnu_archive(tmp, &format!("race-{step}"), "gnu", 6, sized(3000, 2000));
    let new_dir = tmp.join(format!("race-{step}-new"));
    fs::create_dir_all(&new_dir).unwrap();
    write_pattern(&new_dir.join("appended"), 70_000, 99);
    let appended = fs::read(new_dir.join("appended")).unwrap();
    let append = |a: &Path| ok(Command::new("tar").arg("-rf").arg(a).arg("-C").arg(&new_dir).arg("appended"));
    // What GNU tar alone makes of the archive.
    let reference = tmp.join(format!("race-{step}-reference.tar"));
    fs::copy(&base, &reference).unwrap();
    append(&reference);
    let a = tmp.join(format!("race-{step}-a.tar"));
    fs::copy(&base, &a).unwrap();
    let out = common::run_paused(tarfs().arg(cmd).arg(&a), step, || {
        append(&a);
    });
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{cmd} {step}: {err}");
    assert!(err.contains("changed while it was surveyed") && err.contains("not changed"), "{cmd} {step}: {err}");
    assert_eq!(fs::read(&a).unwrap(), fs::read(&reference).unwrap(), "{cmd} {step}: not as GNU tar left it");
    assert!(listing("tar", &a).contains(&"appended".to_string()), "{cmd} {step}");
    assert_eq!(ok(Command::new("tar").arg("-xOf").arg(&a).arg("appended")).stdout, appended, "{cmd} {step}");
    assert!(others(tmp, &[]).iter().all(|n| !n.starts_with(".tarfs-journal")), "{cmd} {step}: a journal was left");
    ok(tarfs().arg(cmd).arg(&a));
    ok(tarfs().arg("verify").arg(&a));
    assert!(String::from_utf8_lossy(&ok(tarfs().arg("ls").arg(&a)).stdout).lines().any(|l| l.ends_with("appended")), "{cmd} {step}");
    assert_eq!(ok(Command::new("tar").arg("-xOf").arg(&a).arg("appended")).stdout, appended, "{cmd} {step}");
}

#[test]
fn embed_refuses_when_tar_appends_after_its_survey() {
    let tmp = TempDir::new().unwrap();
    for step in ["embed-surveyed", "embed-journal-written"] {
        race_with_tar_append(tmp.path(), "embed", step);
    }
}

#[test]
fn csv_refuses_when_tar_appends_after_its_survey() {
    let tmp = TempDir::new().unwrap();
    for step in ["csv-surveyed", "csv-journal-written"] {
        race_with_tar_append(tmp.path(), "csv", step);
    }
}

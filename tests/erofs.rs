//! The kernel mount (issue #33): `tarfs mount` of a plain tar through an EROFS image written
//! from the index, whose files read the tar in place, against `tar -xf` of the same archive:
//! every path's type, mode, owner, size, contents, link target, mtime and link count, and which
//! paths share an inode, for the writer matrix (GNU tar's five formats and sparse, bsdtar,
//! Python, duplicate names), through a scan and through a sidecar, a `git archive` tarball, and
//! every corpus archive GNU tar extracts. Also: an image that no longer matches its archive is
//! written again, never mounted; `tarfs erofs` writes an image that plain `mount` mounts; what
//! the kernel cannot mount goes to FUSE, or fails with `--kernel`; an archive past 2 TiB mounts
//! through 48-bit block addresses.
//!
//! Needs root and a kernel with erofs that mounts files (Linux 6.12+), as CI has; where the
//! kernel has no erofs at all the tests say so loudly and pass.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::trees::{compare, extracted, make_tree, snapshot, writer_matrix};
use common::{ok, tarfs};
use tempfile::TempDir;

/// Whether the kernel has erofs (loading its module if need be); if not, says so loudly.
fn kernel_has_erofs() -> bool {
    let has = || fs::read_to_string("/proc/filesystems").is_ok_and(|f| f.lines().any(|l| l.split_whitespace().last() == Some("erofs")));
    if !has() {
        let _ = Command::new("modprobe").arg("erofs").output();
    }
    if !has() {
        eprintln!("\n*** SKIPPED: this kernel has no erofs file system: the kernel mount is NOT tested ***\n");
    }
    has()
}

/// A kernel mount, unmounted when dropped.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        // A child that another test's thread is forking holds, until it execs, a copy of every
        // descriptor this process has open, some of them in mounts: the mount is busy for that
        // moment (2 in 20 were left mounted without this), so try again.
        let mounted = || fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| m.contains(&format!(" {} ", self.0.display())));
        for _ in 0..100 {
            if !mounted() || tarfs().arg("umount").arg(&self.0).output().is_ok_and(|o| o.status.success()) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Mounts `archive` by the kernel (`--kernel`: an error otherwise) at a new directory under
/// `tmp`; and what `-v` said.
fn kernel_mount(archive: &Path, tmp: &Path) -> (Mounted, String) {
    let mp = tempfile::Builder::new().prefix("mnt").tempdir_in(tmp).unwrap().keep();
    let out = ok(tarfs().arg("mount").arg("-v").arg("--kernel").arg(archive).arg(&mp));
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(said.contains("by the kernel"), "{}: {said}", archive.display());
    (Mounted(mp), said)
}

/// The differences between the kernel mount of `archive` and `tar -xf` of it; and that every
/// directory lists `.` and `..` (`readdir(3)` skips an entry of inode 0, which the root's
/// nid once was).
fn differences(archive: &Path, tmp: &Path) -> Vec<String> {
    let theirs = extracted(archive, tmp);
    let (m, _) = kernel_mount(archive, tmp);
    let mut diffs = compare(&archive.display().to_string(), "kernel mount", &snapshot(&m.0), &snapshot(theirs.path()));
    for dir in walkdir::WalkDir::new(&m.0).into_iter().map(|e| e.unwrap()).filter(|e| e.file_type().is_dir()) {
        let listed = String::from_utf8(ok(Command::new("ls").arg("-fa").arg(dir.path())).stdout).unwrap();
        if !(listed.lines().any(|l| l == ".") && listed.lines().any(|l| l == "..")) {
            diffs.push(format!("{}: {} lists no . or ..: {listed:?}", archive.display(), dir.path().display()));
        }
    }
    diffs
}

#[test]
fn the_kernel_mount_is_what_tar_extracts() {
    if !kernel_has_erofs() {
        return;
    }
    let tmp = TempDir::new().unwrap();
    make_tree(tmp.path());
    let mut diffs = Vec::new();
    for a in writer_matrix(tmp.path()) {
        // From a scan (no index), then through a sidecar, each image written afresh.
        diffs.extend(differences(&a, tmp.path()));
        fs::remove_file(format!("{}.erofs", a.display())).unwrap();
        ok(tarfs().arg("index").arg(&a));
        diffs.extend(differences(&a, tmp.path()));
    }
    assert!(diffs.is_empty(), "{} differences:\n{}", diffs.len(), diffs.join("\n"));
}

/// A `git archive` tarball, and every corpus archive that GNU tar extracts and tarfs indexes.
#[test]
fn git_archive_and_the_corpus_mount_by_the_kernel_as_tar_extracts() {
    if !kernel_has_erofs() {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let ga = common::git_archive(tmp.path());
    let mut diffs = differences(&ga, tmp.path());
    let (mut mounted, mut too_sparse) = (0, Vec::new());
    for e in walkdir::WalkDir::new(common::corpus_dir()).sort_by_file_name() {
        let e = e.unwrap();
        if !e.file_type().is_file() || !e.path().to_string_lossy().ends_with(".tar") {
            continue;
        }
        let a = tmp.path().join("corpus.tar");
        fs::copy(e.path(), &a).unwrap();
        let _ = fs::remove_file(format!("{}.erofs", a.display()));
        let scratch = tempfile::Builder::new().prefix("probe").tempdir_in(tmp.path()).unwrap();
        let probe = Command::new("tar").arg("--numeric-owner").arg("-xpf").arg(&a).arg("-C").arg(scratch.path()).output().unwrap();
        let indexed = tarfs().arg("index").arg(&a).output().unwrap();
        if !probe.status.success() || !indexed.status.success() {
            // What tar or tarfs refuses (checked against the other readers by tests/corpus.rs).
            let _ = fs::remove_file(format!("{}.tarfs", a.display()));
            continue;
        }
        mounted += 1;
        let label = e.path().display().to_string();
        let Some(m) = kernel_mount_unless_too_sparse(&a, tmp.path()) else {
            too_sparse.push(label);
            continue;
        };
        let found = compare(&label, "kernel mount", &snapshot(&m.0), &snapshot(scratch.path()));
        drop(m);
        // Where tarfs reads an archive otherwise than GNU tar (docs/FORMAT.md records each), the
        // FUSE mount, which tests/mount.rs holds to `tarfs extract` there, is the reference: the
        // kernel's tree must be the same tree.
        let chosen = common::trees::reads_otherwise_than_gnu_tar(e.path());
        let found = if found.is_empty() || !chosen { found } else { against_fuse(&a, &label, tmp.path()) };
        diffs.extend(found);
        let _ = fs::remove_file(format!("{}.tarfs", a.display()));
    }
    assert!(mounted >= 95, "only {mounted} corpus archives mounted");
    // Go's two 60 GB sparse members, whose regions are only 512-byte-aligned, would need 117M
    // chunk indexes: those archives go to FUSE, and only those.
    let names: Vec<&str> = too_sparse.iter().filter_map(|p| Path::new(p).file_name()?.to_str()).collect();
    assert_eq!(names, ["gnu-sparse-big.tar", "pax-sparse-big.tar"], "went to FUSE: {too_sparse:?}");
    assert!(diffs.is_empty(), "{} differences:\n{}", diffs.len(), diffs.join("\n"));
}

/// The kernel mount of `archive` (`tarfs mount`, chosen by tarfs), or `None` where tarfs chose
/// FUSE because a sparse member would need too many chunk indexes (then unmounted).
fn kernel_mount_unless_too_sparse(archive: &Path, tmp: &Path) -> Option<Mounted> {
    let mp = tempfile::Builder::new().prefix("mnt").tempdir_in(tmp).unwrap().keep();
    let out = ok(tarfs().arg("mount").arg("-v").arg(archive).arg(&mp));
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    let m = Mounted(mp);
    if said.contains("by the kernel") {
        return Some(m);
    }
    assert!(said.contains("chunk indexes: mounting through FUSE"), "{}: {said}", archive.display());
    None
}

/// The differences between the kernel mount of `archive` and its FUSE mount.
fn against_fuse(archive: &Path, label: &str, tmp: &Path) -> Vec<String> {
    let (k, _) = kernel_mount(archive, tmp);
    let mp = tempfile::Builder::new().prefix("fuse").tempdir_in(tmp).unwrap().keep();
    ok(tarfs().arg("mount").arg("--fuse").arg(archive).arg(&mp));
    let fuse = Mounted(mp);
    compare(label, "kernel mount", &snapshot(&k.0), &snapshot(&fuse.0)).into_iter().map(|d| d.replace("tar -xf", "the FUSE mount")).collect()
}

/// An image bound to an archive that has since changed (replaced by rename; rewritten in place
/// with its mtime put back) is written again, never mounted; an unchanged one is reused.
#[test]
fn a_stale_image_is_written_again_never_mounted() {
    if !kernel_has_erofs() {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let a = tmp.path().join("a.tar");
    let make = |text: &str, to: &Path| {
        fs::write(src.join("f"), text).unwrap();
        ok(Command::new("tar").arg("-cf").arg(to).arg("-C").arg(&src).arg("f"));
    };
    make("first\n", &a);
    let (m, said) = kernel_mount(&a, tmp.path());
    assert!(said.contains("written"), "{said}");
    assert_eq!(fs::read_to_string(m.0.join("f")).unwrap(), "first\n");
    drop(m);
    let (m, said) = kernel_mount(&a, tmp.path());
    assert!(said.contains("reused"), "{said}");
    drop(m);
    // Replaced by rename: another inode.
    let b = tmp.path().join("b.tar");
    make("other\n", &b);
    fs::rename(&b, &a).unwrap();
    let (m, said) = kernel_mount(&a, tmp.path());
    assert!(said.contains("written"), "{said}");
    assert_eq!(fs::read_to_string(m.0.join("f")).unwrap(), "other\n");
    drop(m);
    // Rewritten in place, same length, the mtime put back: the ctime differs.
    let mut bytes = fs::read(&a).unwrap();
    let at = bytes.windows(6).position(|w| w == b"other\n").unwrap();
    bytes[at..at + 6].copy_from_slice(b"third\n");
    let before = fs::metadata(&a).unwrap().modified().unwrap();
    fs::write(&a, &bytes).unwrap();
    fs::File::options().write(true).open(&a).unwrap().set_modified(before).unwrap();
    let (m, said) = kernel_mount(&a, tmp.path());
    assert!(said.contains("written"), "{said}");
    assert_eq!(fs::read_to_string(m.0.join("f")).unwrap(), "third\n");
}

/// `tarfs erofs -o IMAGE` writes an image that the plain `mount` command mounts, with the tar
/// as its device (through loop devices, as util-linux sets them up for files); a compressed
/// archive has no image, and `--kernel` refuses it while a plain `tarfs mount` uses FUSE.
#[test]
fn tarfs_erofs_images_mount_with_mount_and_compressed_archives_go_to_fuse() {
    if !kernel_has_erofs() {
        return;
    }
    let tmp = TempDir::new().unwrap();
    make_tree(tmp.path());
    let a = writer_matrix(tmp.path()).remove(4); // GNU, with sparse files
    let image = tmp.path().join("image.erofs");
    ok(tarfs().arg("erofs").arg(&a).arg("-o").arg(&image));
    let dev = ok(Command::new("losetup").args(["--find", "--show", "--read-only"]).arg(&a));
    let dev = String::from_utf8(dev.stdout).unwrap().trim().to_string();
    let mp = tmp.path().join("plain");
    fs::create_dir_all(&mp).unwrap();
    let mounted = Command::new("mount").args(["-t", "erofs", "-o", &format!("ro,device={dev}")]).arg(&image).arg(&mp).output().unwrap();
    let got = mounted.status.success().then(|| snapshot(&mp));
    let _ = Command::new("umount").arg(&mp).output();
    let _ = Command::new("losetup").arg("-d").arg(&dev).output();
    assert!(mounted.status.success(), "mount: {}", String::from_utf8_lossy(&mounted.stderr));
    let theirs = extracted(&a, tmp.path());
    let diffs = compare("mount(8)", "mount", &got.unwrap(), &snapshot(theirs.path()));
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));

    let z = tmp.path().join("a.tar.gz");
    ok(Command::new("sh").arg("-c").arg(format!("gzip -c {} > {}", a.display(), z.display())));
    let out = tarfs().arg("erofs").arg(&z).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gzip-compressed"), "{}", String::from_utf8_lossy(&out.stderr));
    let mp = tempfile::Builder::new().prefix("z").tempdir_in(tmp.path()).unwrap().keep();
    let out = tarfs().arg("mount").arg("--kernel").arg(&z).arg(&mp).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let out = ok(tarfs().arg("mount").arg("-v").arg(&z).arg(&mp));
    let m = Mounted(mp);
    assert!(String::from_utf8_lossy(&out.stderr).contains("through FUSE"), "{}", String::from_utf8_lossy(&out.stderr));
    let fuse = snapshot(&m.0);
    assert!(compare("FUSE", "mount", &fuse, &snapshot(theirs.path())).is_empty());
}

/// A name of over 255 bytes cannot be a directory entry (the kernel refuses the directory
/// block, as extraction fails for it): it is left out, and said; the rest of its directory is
/// there. `tarfs umount` unmounts. An embedded image leaves it out, and `embed --erofs` says so.
#[test]
fn names_too_long_for_a_directory_are_left_out_and_said() {
    if !kernel_has_erofs() {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let a = tmp.path().join("long.tar");
    let script = "import io, sys, tarfile\nwith tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT) as t:\n    for n in ['d/' + 'x' * 300, 'd/short']:\n        ti = tarfile.TarInfo(n); ti.size = 3; t.addfile(ti, io.BytesIO(b'abc'))\n";
    ok(Command::new("python3").arg("-c").arg(script).arg(&a));
    let mp = tempfile::Builder::new().prefix("mnt").tempdir_in(tmp.path()).unwrap().keep();
    let out = ok(tarfs().arg("mount").arg("--kernel").arg(&a).arg(&mp));
    let m = Mounted(mp);
    assert!(String::from_utf8_lossy(&out.stderr).contains("a name of over 255 bytes"), "{}", String::from_utf8_lossy(&out.stderr));
    let names: Vec<String> = fs::read_dir(m.0.join("d")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["short"]);
    assert_eq!(fs::read(m.0.join("d/short")).unwrap(), b"abc");
    // `tarfs umount` unmounts it.
    let mp = m.0.clone();
    drop(m);
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&format!(" {} ", mp.display())), "still mounted: {}", mp.display());
    // An embedded image leaves it out too, and `embed` says so.
    let out = ok(tarfs().arg("embed").arg("--erofs").arg(&a));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("not in the EROFS image") && said.contains("a name of over 255 bytes"), "{said}");
    let (m, said) = kernel_mount(&a, tmp.path());
    assert!(said.contains("its embedded EROFS image"), "{said}");
    let names: Vec<String> = fs::read_dir(m.0.join("d")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["short"]);
}

// Self-mounting archives (issue #33): `tarfs embed --erofs` puts the image in the archive.

/// `tarfs embed -v --erofs` of `a` (with `--dry-run` first, which says the image's size and
/// writes nothing): the image's offset, from what `-v` says, and what it says.
fn embed_erofs(a: &Path) -> (u64, String) {
    let before = fs::read(a).unwrap();
    let dry = ok(tarfs().arg("embed").arg("-v").arg("--dry-run").arg("--erofs").arg(a));
    assert!(String::from_utf8_lossy(&dry.stderr).contains("EROFS image of"), "{}", String::from_utf8_lossy(&dry.stderr));
    assert!(fs::read(a).unwrap() == before, "a dry run changed {}", a.display());
    let out = ok(tarfs().arg("embed").arg("-v").arg("--erofs").arg(a));
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    let at = said.split("fsoffset=").nth(1).unwrap_or_else(|| panic!("{}: {said}", a.display()));
    let n: u64 = at[..at.find(',').unwrap()].parse().unwrap();
    assert_eq!(n % 4096, 0, "{said}");
    (n, said)
}

/// `tar -xf` of `a`, without the `.tarfs` member (which mounts do not show).
fn extracted_without_index(a: &Path, tmp: &Path) -> TempDir {
    let t = extracted(a, tmp);
    fs::remove_file(t.path().join(".tarfs")).unwrap();
    t
}

/// Loop devices, detached when dropped.
struct Loops(Vec<String>);

impl Drop for Loops {
    fn drop(&mut self) {
        for l in &self.0 {
            let _ = Command::new("losetup").arg("-d").arg(l).output();
        }
    }
}

/// Whether this util-linux's `mount` puts a loop device under a regular file it mounts (before
/// 2.41 it always does, for a type blkid knows; then `device=` must be a block device too).
fn mount_makes_loops() -> bool {
    let v = String::from_utf8(ok(Command::new("mount").arg("--version")).stdout).unwrap();
    let ver = v.split("util-linux ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("0").to_string();
    let mut parts = ver.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) < (2, 41)
}

/// Mounts the self-mounting archive `a` on `mp` with the plain `mount` command, as issue #33
/// writes it: `mount -t erofs -o fsoffset=N,device=ARCHIVE ARCHIVE MNT`. A `mount` that makes
/// loop devices of files cannot pass a file as `device=` to a mount of a loop device: there,
/// after the literal command fails, the same command with both as loop devices of the archive.
fn plain_mount(a: &Path, n: u64, mp: &Path) -> Loops {
    let literal = Command::new("mount").args(["-t", "erofs", "-o", &format!("fsoffset={n},device={}", a.display())]).arg(a).arg(mp).output().unwrap();
    if literal.status.success() {
        return Loops(Vec::new());
    }
    assert!(mount_makes_loops(), "mount -t erofs -o fsoffset={n},device=A A MNT: {}", String::from_utf8_lossy(&literal.stderr));
    eprintln!("\n*** this util-linux (before 2.41) mounts files through loop devices: the literal command cannot pass a file as device=; mounting with two loop devices of the archive ***\n");
    let lo = || String::from_utf8(ok(Command::new("losetup").args(["--find", "--show", "--read-only"]).arg(a)).stdout).unwrap().trim().to_string();
    let loops = Loops(vec![lo(), lo()]);
    ok(Command::new("mount").args(["-t", "erofs", "-o", &format!("ro,fsoffset={n},device={}", loops.0[1])]).arg(&loops.0[0]).arg(mp));
    loops
}

/// An archive with an image embedded: every tar reader lists its members plus `.tarfs` and
/// extracts the same tree as before (`tests/trees.py`); `mount` mounts it at the offset `-v`
/// said, and `tarfs mount` mounts it with no image file, both as `tar -xf` extracts it. GNU
/// tar with sparse files (the tree has hard links, a symbolic link, long names, files over 4
/// KiB), Python's pax, GNU tar with a name twice, and a hard link to the first member (which
/// `embed` shifts the archive for: displacing it would put it after its link).
#[test]
fn a_self_mounting_archive_mounts_with_mount_as_tar_extracts() {
    if !kernel_has_erofs() {
        return;
    }
    let tmp = TempDir::new().unwrap();
    make_tree(tmp.path());
    let (mut diffs, mut how) = (Vec::new(), Vec::new());
    let mut archives: Vec<PathBuf> = writer_matrix(tmp.path()).into_iter().filter(|a| ["gnu-sparse.tar", "python.tar", "dups.tar"].iter().any(|n| a.ends_with(n))).collect();
    archives.push(hard_link_to_the_first(tmp.path()));
    for a in archives {
        let orig = a.with_extension("orig");
        fs::copy(&a, &orig).unwrap();
        let (n, said) = embed_erofs(&a);
        how.push(said);
        ok(tarfs().arg("verify").arg(&a));
        for tool in ["tar", "bsdtar"] {
            let (mut before, mut after) = (common::listing(tool, &orig), common::listing(tool, &a));
            assert_eq!(after.remove(0), ".tarfs", "{tool} {}", a.display());
            before.sort();
            after.sort();
            assert_eq!(after, before, "{tool} {}", a.display());
        }
        assert_eq!(common::python_members(&a).len(), common::python_members(&orig).len() + 1);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/trees.py");
        let trees = Command::new("python3").arg(script).arg(&orig).arg(&a).output().unwrap();
        assert!(trees.status.success(), "{}", String::from_utf8_lossy(&trees.stdout));

        let theirs = snapshot(extracted_without_index(&a, tmp.path()).path());
        let mp = tempfile::Builder::new().prefix("plain").tempdir_in(tmp.path()).unwrap().keep();
        let loops = plain_mount(&a, n, &mp);
        let m = Mounted(mp);
        diffs.extend(compare(&a.display().to_string(), "mount -o fsoffset", &snapshot(&m.0), &theirs));
        drop(m);
        drop(loops);
        if a.ends_with("hl.tar") {
            // Without `device=`, reading a file fails rather than giving other bytes.
            let mp = tempfile::Builder::new().prefix("nodev").tempdir_in(tmp.path()).unwrap().keep();
            ok(Command::new("mount").args(["-t", "erofs", "-o", &format!("ro,fsoffset={n}")]).arg(&a).arg(&mp));
            let m = Mounted(mp);
            let read = fs::read(m.0.join("d/perl"));
            assert!(read.is_err(), "read {} bytes with no device", read.map_or(0, |r| r.len()));
        }
        let (m, said) = kernel_mount(&a, tmp.path());
        assert!(said.contains(&format!("its embedded EROFS image, at byte {n}")), "{said}");
        diffs.extend(compare(&a.display().to_string(), "tarfs mount", &snapshot(&m.0), &theirs));
        assert!(!Path::new(&format!("{}.erofs", a.display())).exists(), "an image file was written for {}", a.display());
    }
    assert!(diffs.is_empty(), "{} differences:\n{}", diffs.len(), diffs.join("\n"));
    // Both ways of making room: members displaced to the end, and the whole archive shifted.
    assert!(how.iter().any(|s| s.contains("displaced")) && how.iter().any(|s| s.contains("shifted")), "{how:?}");
}

/// A GNU tar archive whose first member, of 50 KB, has a hard link last.
fn hard_link_to_the_first(tmp: &Path) -> PathBuf {
    let src = tmp.join("hl");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/perl"), (0..50_000u32).map(|i| (i * 7) as u8).collect::<Vec<u8>>()).unwrap();
    fs::write(src.join("d/small"), "small\n").unwrap();
    fs::hard_link(src.join("d/perl"), src.join("d/perl5")).unwrap();
    let a = tmp.join("hl.tar");
    ok(Command::new("tar").arg("--format=gnu").arg("-cf").arg(&a).arg("-C").arg(&src).arg("--no-recursion").args(["d/perl", "d/small", "d", "d/perl5"]));
    a
}

/// A self-mounting archive changed after `embed` (a member's data rewritten in place, the same
/// length; a member appended) is never mounted by its stale image: `tarfs mount` says so and
/// mounts a sidecar image of the archive as it is. `embed --erofs` makes the image fresh again
/// (re-indexed in place, or with the appended member); `embed` without it that writes the index
/// drops the image.
#[test]
fn a_stale_embedded_image_is_never_mounted() {
    if !kernel_has_erofs() {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/f"), "first\n").unwrap();
    fs::write(src.join("big"), vec![7u8; 9000]).unwrap();
    let a = tmp.path().join("a.tar");
    ok(Command::new("tar").arg("-cf").arg(&a).arg("-C").arg(&src).arg("d").arg("big"));
    let (n, _) = embed_erofs(&a);
    let sidecar = PathBuf::from(format!("{}.erofs", a.display()));
    let read = |m: &Mounted, p: &str| fs::read_to_string(m.0.join(p)).unwrap();

    // The data of d/f rewritten in place, the same length.
    let mut bytes = fs::read(&a).unwrap();
    let at = bytes.windows(6).position(|w| w == b"first\n").unwrap();
    bytes[at..at + 6].copy_from_slice(b"third\n");
    fs::write(&a, &bytes).unwrap();
    let (m, said) = kernel_mount(&a, tmp.path());
    assert!(said.contains("embedded EROFS image is stale (the archive was modified") && said.contains("written"), "{said}");
    assert_eq!(read(&m, "d/f"), "third\n");
    assert!(sidecar.exists());
    drop(m);
    fs::remove_file(&sidecar).unwrap();

    // `embed --erofs` again: the index is up to date, the image is not, and is written again.
    let (again, said) = embed_erofs(&a);
    assert!(again == n && said.contains("re-indexed"), "{said}");
    let (m, said) = kernel_mount(&a, tmp.path());
    assert!(said.contains("its embedded EROFS image"), "{said}");
    assert_eq!(read(&m, "d/f"), "third\n");
    drop(m);

    // A member appended: the length is not the one the image was made for.
    fs::write(src.join("new"), "appended\n").unwrap();
    ok(Command::new("tar").arg("-rf").arg(&a).arg("-C").arg(&src).arg("new"));
    let (m, said) = kernel_mount(&a, tmp.path());
    assert!(said.contains("embedded EROFS image is stale (the archive is "), "{said}");
    assert_eq!(read(&m, "new"), "appended\n");
    drop(m);
    fs::remove_file(&sidecar).unwrap();

    // `embed --erofs` of the grown archive: a new image, with the appended member.
    embed_erofs(&a);
    let (m, said) = kernel_mount(&a, tmp.path());
    assert!(said.contains("its embedded EROFS image"), "{said}");
    assert_eq!(read(&m, "new"), "appended\n");
    drop(m);

    // `embed` without --erofs, writing the index again (`--force`), drops the image.
    ok(tarfs().arg("embed").arg("--force").arg(&a));
    let (m, said) = kernel_mount(&a, tmp.path());
    assert!(!said.contains("embedded EROFS image"), "{said}");
    assert!(said.contains("written"), "{said}");
    assert_eq!(read(&m, "new"), "appended\n");
}

/// An archive past 2 TiB (a sparse file: a member of 2 TiB and 3 MiB of holes, with 4 bytes
/// written past 2 TiB, then a small member) mounts by the kernel through an image with 48-bit
/// block addresses: the small member and the bytes past 2 TiB read back, the holes as zeros.
#[test]
fn an_archive_past_2_tib_mounts_by_the_kernel_with_48_bit_addresses() {
    if !kernel_has_erofs() {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let a = tmp.path().join("big.tar");
    let script = r#"
import sys, tarfile
big = (2 << 40) + (3 << 20)
with open(sys.argv[1], 'wb') as f:
    ti = tarfile.TarInfo('big.bin'); ti.size = big
    f.write(ti.tobuf(format=tarfile.GNU_FORMAT))
    f.seek(512 + (2 << 40) + (1 << 20)); f.write(b'mark')
    f.seek(512 + big); data = b'past 2 TiB\n'
    ti = tarfile.TarInfo('after.txt'); ti.size = len(data)
    f.write(ti.tobuf(format=tarfile.GNU_FORMAT)); f.write(data.ljust(512, b'\0') + bytes(1024))
"#;
    ok(Command::new("python3").arg("-c").arg(script).arg(&a));
    assert!(fs::metadata(&a).unwrap().len() > 2 << 40);
    let (m, _) = kernel_mount(&a, tmp.path());
    assert_eq!(fs::read(m.0.join("after.txt")).unwrap(), b"past 2 TiB\n");
    use std::os::unix::fs::FileExt;
    let big = fs::File::open(m.0.join("big.bin")).unwrap();
    assert_eq!(big.metadata().unwrap().len(), (2 << 40) + (3 << 20));
    let mut buf = [1u8; 8];
    big.read_exact_at(&mut buf, (2 << 40) + (1 << 20)).unwrap();
    assert_eq!(&buf, b"mark\0\0\0\0");
    big.read_exact_at(&mut buf, 1 << 40).unwrap();
    assert_eq!(buf, [0; 8]);
    let image = fs::read(tmp.path().join("big.tar.erofs")).unwrap();
    let incompat = u32::from_le_bytes(image[1024 + 80..1024 + 84].try_into().unwrap());
    assert_ne!(incompat & 0x80, 0, "the image has 48-bit addresses");
}

/// A directory of archives: FUSE shows the tree, and each plain archive (one in a
/// subdirectory too) is covered by a kernel mount that shows what `tar -xf` extracts; the
/// compressed one stays with FUSE. `tarfs umount` unmounts them all.
#[test]
fn a_directory_mounts_its_plain_archives_by_the_kernel_and_the_rest_through_fuse() {
    if !kernel_has_erofs() {
        return;
    }
    let tmp = TempDir::new().unwrap();
    make_tree(tmp.path());
    let archives = writer_matrix(tmp.path());
    let dir = tmp.path().join("archives");
    fs::create_dir_all(dir.join("sub")).unwrap();
    fs::copy(&archives[0], dir.join("a.tar")).unwrap();
    fs::copy(&archives[4], dir.join("sub/b.tar")).unwrap();
    ok(Command::new("sh").arg("-c").arg(format!("gzip -c {} > {}", archives[0].display(), dir.join("c.tar.gz").display())));
    let mp = tempfile::Builder::new().prefix("mnt").tempdir_in(tmp.path()).unwrap().keep();
    let out = ok(tarfs().arg("mount").arg("-v").arg(&dir).arg(&mp));
    let m = Mounted(mp.clone());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("2 of 3 archives mounted by the kernel"), "{said}");
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let fstype = |at: &Path| mounts.lines().find(|l| l.split(' ').nth(4) == Some(&at.display().to_string())).and_then(|l| l.split(" - ").nth(1)).and_then(|t| t.split(' ').next()).map(str::to_string);
    assert_eq!(fstype(&mp.join("a.tar")).as_deref(), Some("erofs"));
    assert_eq!(fstype(&mp.join("sub/b.tar")).as_deref(), Some("erofs"));
    assert_eq!(fstype(&mp.join("c.tar.gz")), None);
    for (archive, under) in [(&archives[0], "a.tar"), (&archives[4], "sub/b.tar"), (&archives[0], "c.tar.gz")] {
        let theirs = extracted(archive, tmp.path());
        let diffs = compare(under, "mount", &snapshot(&mp.join(under)), &snapshot(theirs.path()));
        assert!(diffs.is_empty(), "{}", diffs.join("\n"));
    }
    drop(m);
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&format!(" {}", mp.display())), "left mounted:\n{mounts}");
}

//! `tarfs mount` (issue #16) against `tar -xf` of the same archive: every path's type, mode,
//! owner, size, contents, link target and mtime, and which paths share an inode (hard links),
//! for archives from GNU tar (five formats, and sparse), bsdtar and Python, with duplicate
//! names, compressed, a `git archive` tarball, the corpus archives that GNU tar extracts, a
//! tree of archives, the union of archives (against `tar -xf` of each in turn) and archives
//! inside archives (`--recursive`). Needs /dev/fuse and fusermount3 (`.ci/run` installs fuse3).

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use std::path::{Path, PathBuf};
use std::process::Command;

use common::trees::{extracted, make_tree, snapshot, writer_matrix};
use common::{ok, tarfs};
use tempfile::TempDir;

/// A mounted file system, unmounted when dropped.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        // Busy for a moment while a child another test thread forks holds this process's
        // descriptors (until it execs): try again, as tests/erofs.rs does.
        let mounted = || fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| m.contains(&format!(" {} ", self.0.display())));
        for _ in 0..100 {
            if !mounted() || Command::new("fusermount3").arg("-u").arg(&self.0).output().is_ok_and(|o| o.status.success()) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Mounts `source` at a new directory under `tmp`, with `extra` flags.
fn mount(source: &Path, tmp: &Path, extra: &[&str]) -> Mounted {
    mount_all(&[source], tmp, extra).0
}

/// Mounts `sources` (their union, where there are several) at a new directory under `tmp`, with
/// `extra` flags; what the mount said before it was ready.
fn mount_all(sources: &[&Path], tmp: &Path, extra: &[&str]) -> (Mounted, String) {
    let mp = tempfile::Builder::new().prefix("mnt").tempdir_in(tmp).unwrap().keep();
    let out = ok(tarfs().arg("mount").arg("--fuse").args(extra).args(sources).arg(&mp));
    (Mounted(mp), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The differences between the mount of `archive` and `tar -xf` of it (by `tar_archive`, the
/// same archive uncompressed, when it is compressed).
fn differences(archive: &Path, tar_archive: &Path, tmp: &Path) -> Vec<String> {
    differences_with(archive, tar_archive, tmp, &[])
}

/// [`differences`], mounted with `extra` flags.
fn differences_with(archive: &Path, tar_archive: &Path, tmp: &Path, extra: &[&str]) -> Vec<String> {
    let theirs = extracted(tar_archive, tmp);
    let m = mount(archive, tmp, extra);
    let (ours, our_links) = snapshot(&m.0);
    let (want, want_links) = snapshot(theirs.path());
    let mut diffs = Vec::new();
    for (k, v) in &want {
        match ours.get(k) {
            Some(o) if o == v => {}
            o => diffs.push(format!("{}: {k}: mount has {o:?}, tar -xf {v}", archive.display())),
        }
    }
    for k in ours.keys().filter(|k| !want.contains_key(*k)) {
        diffs.push(format!("{}: {k}: in the mount, not in tar -xf", archive.display()));
    }
    if our_links != want_links {
        diffs.push(format!("{}: hard links: mount {our_links:?}, tar -xf {want_links:?}", archive.display()));
    }
    diffs
}

/// The differences between the mount of `archive` and `tarfs extract --numeric-owner` of it.
fn differences_from_extract(archive: &Path, tmp: &Path) -> Vec<String> {
    let ours = tempfile::Builder::new().prefix("x").tempdir_in(tmp).unwrap();
    ok(tarfs().arg("extract").arg("--numeric-owner").arg(archive).arg("-C").arg(ours.path()));
    let m = mount(archive, tmp, &[]);
    let (got, got_links) = snapshot(&m.0);
    let (want, want_links) = snapshot(ours.path());
    let mut diffs: Vec<String> = want.iter().filter(|(k, v)| got.get(*k) != Some(v)).map(|(k, v)| format!("{k}: mount has {:?}, tarfs extract {v}", got.get(k))).collect();
    diffs.extend(got.keys().filter(|k| !want.contains_key(*k)).map(|k| format!("{k}: in the mount, not in tarfs extract")));
    if got_links != want_links {
        diffs.push(format!("hard links: mount {got_links:?}, tarfs extract {want_links:?}"));
    }
    diffs
}

#[test]
fn the_mount_is_what_tar_extracts() {
    let tmp = TempDir::new().unwrap();
    make_tree(tmp.path());
    let archives = writer_matrix(tmp.path());
    let mut diffs = Vec::new();
    for a in &archives {
        diffs.extend(differences(a, a, tmp.path()));
        // Through a sidecar too (the first run scanned).
        ok(tarfs().arg("index").arg(a));
        diffs.extend(differences(a, a, tmp.path()));
        diffs.extend(differences_with(a, a, tmp.path(), &["--readdirplus"]));
    }
    // Compressed, through the sidecar's seek points.
    for (ext, cmd) in [("gz", "gzip -c"), ("xz", "xz -T2 --block-size=64KiB -c"), ("bz2", "bzip2 -1 -c")] {
        let z = tmp.path().join(format!("posix.tar.{ext}"));
        ok(Command::new("sh").arg("-c").arg(format!("{cmd} {} > {}", archives[2].display(), z.display())));
        ok(tarfs().arg("index").arg("--span").arg("64K").arg(&z));
        diffs.extend(differences(&z, &archives[2], tmp.path()));
    }
    assert!(diffs.is_empty(), "{} differences:\n{}", diffs.len(), diffs.join("\n"));
}

/// The compressions of the matrix of issue #37: the extension, and the command that
/// compresses standard input to standard output.
const COMPRESSORS: [(&str, &str); 4] = [("gz", "gzip -c"), ("zst", "zstd -q -c"), ("xz", "xz -c"), ("bz2", "bzip2 -c")];

/// The regular files of `tar_archive` in archive order (a name once per member that has it),
/// as `tar -tf` lists them and `tar -xf` left them under `theirs`.
fn files_in_archive_order(tar_archive: &Path, theirs: &Path) -> Vec<String> {
    let listing = ok(Command::new("tar").arg("-tf").arg(tar_archive)).stdout;
    let is_file = |n: &&str| fs::symlink_metadata(theirs.join(n)).is_ok_and(|m| m.file_type().is_file());
    String::from_utf8(listing).unwrap().lines().filter(is_file).map(str::to_string).collect()
}

/// `files` in the order `seed` picks (a Fisher-Yates shuffle driven by xorshift).
fn shuffled(files: &[String], seed: u64) -> Vec<String> {
    let mut out = files.to_vec();
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for i in (1..out.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.swap(i, (x % (i as u64 + 1)) as usize);
    }
    out
}

/// `sha256sum` of each list of `orders` (paths relative to `root`), one process per list, all
/// running at once, each reading its files in the order given: each one's output and errors.
fn sums_at_once(root: &Path, orders: &[Vec<String>]) -> Vec<String> {
    use std::process::Stdio;
    let children: Vec<_> = orders.iter().map(|o| Command::new("sha256sum").arg("--").args(o).current_dir(root).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()).collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
        })
        .collect()
}

/// Mounts `archive` (fresh: nothing decoded yet) with its messages logged, runs `read` on the
/// mount point, and unmounts; `read`'s differences, each followed by what the mount logged.
fn with_logged_mount(archive: &Path, tmp: &Path, read: impl FnOnce(&Path) -> Vec<String>) -> Vec<String> {
    let log = tempfile::Builder::new().prefix("log").tempfile_in(tmp).unwrap().into_temp_path();
    let m = mount(archive, tmp, &["--log", log.to_str().unwrap()]);
    let diffs = read(&m.0);
    drop(m);
    let logged = fs::read_to_string(&log).unwrap_or_default();
    diffs.into_iter().map(|d| if logged.is_empty() { d } else { format!("{d}\n  the mount logged:\n{logged}") }).collect()
}

/// What reading the mount of `archive` in other orders than directory order finds other than
/// `theirs` (its `tar -xf`): `diff -r` (directory order, as #37's report read it), every file of
/// `files` (in archive order) read in reverse, and in four random orders by four processes at
/// once. Each on a mount of its own.
fn differences_in_orders(archive: &Path, theirs: &Path, files: &[String], tmp: &Path) -> Vec<String> {
    let mut diffs = with_logged_mount(archive, tmp, |mp| {
        let d = Command::new("diff").arg("-r").arg(theirs).arg(mp).output().unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&d.stdout), String::from_utf8_lossy(&d.stderr));
        if d.status.success() { vec![] } else { vec![format!("{}: diff -r:\n{said}", archive.display())] }
    });
    let reverse = vec![files.iter().rev().cloned().collect::<Vec<_>>()];
    let random: Vec<Vec<String>> = (1..=4).map(|seed| shuffled(files, seed)).collect();
    for (what, orders) in [("in reverse archive order", reverse), ("in random orders by 4 processes at once", random)] {
        let want = sums_at_once(theirs, &orders);
        diffs.extend(with_logged_mount(archive, tmp, |mp| {
            let got = sums_at_once(mp, &orders);
            let wrong = |(g, w): (&String, &String)| g.lines().filter(|l| !w.lines().any(|x| x == *l)).map(str::to_string).collect::<Vec<_>>();
            let bad: Vec<String> = got.iter().zip(&want).flat_map(wrong).collect();
            if bad.is_empty() { vec![] } else { vec![format!("{}: read {what}:\n{}", archive.display(), bad.join("\n"))] }
        }));
    }
    diffs
}

/// Issue #37: a compressed archive with no index, which the mount scans itself, reads as `tar
/// -xf` extracts it, for the writer matrix compressed with gzip, zstd, xz and bzip2: in
/// directory order (`diff -r`, and the types, modes, owners, contents, link targets and mtimes
/// of [`snapshot`]), in reverse archive order, and in random orders from 4 processes at once.
#[test]
fn compressed_archives_without_an_index_read_in_any_order() {
    let tmp = TempDir::new().unwrap();
    make_tree(tmp.path());
    let mut diffs = Vec::new();
    for a in writer_matrix(tmp.path()) {
        let theirs = extracted(&a, tmp.path());
        let files = files_in_archive_order(&a, theirs.path());
        assert!(files.len() >= 8, "{}: only {} files", a.display(), files.len());
        for (ext, cmd) in COMPRESSORS {
            let z = PathBuf::from(format!("{}.{ext}", a.display()));
            ok(Command::new("sh").arg("-c").arg(format!("{cmd} < {} > {}", a.display(), z.display())));
            assert!(!Path::new(&format!("{}.tarfs", z.display())).exists(), "{}: has a sidecar", z.display());
            diffs.extend(differences(&z, &a, tmp.path()));
            diffs.extend(differences_in_orders(&z, theirs.path(), &files, tmp.path()));
        }
    }
    assert!(diffs.is_empty(), "{} differences:\n{}", diffs.len(), diffs.join("\n"));
}

/// A `git archive` tarball (pax global header with the commit), and every corpus archive
/// that GNU tar extracts without error, through a v1 or (every other one) a v2 sidecar. CI
/// mounts every third archive; `TARFS_MOUNT_CORPUS=all` mounts them all.
#[test]
fn git_archive_and_the_corpus_mount_as_tar_extracts() {
    let tmp = TempDir::new().unwrap();
    let ga = common::git_archive(tmp.path());
    let mut diffs = differences(&ga, &ga, tmp.path());
    let step = if std::env::var("TARFS_MOUNT_CORPUS").is_ok_and(|v| v == "all") { 1 } else { 3 };
    let mut mounted = 0;
    let archives = walkdir::WalkDir::new(common::corpus_dir()).sort_by_file_name().into_iter().map(Result::unwrap).filter(|e| e.file_type().is_file() && e.path().to_string_lossy().ends_with(".tar"));
    for (k, e) in archives.enumerate() {
        if k % step != 0 {
            continue;
        }
        let a = tmp.path().join("corpus.tar");
        fs::copy(e.path(), &a).unwrap();
        let scratch = tmp.path().join("probe");
        let _ = fs::remove_dir_all(&scratch);
        fs::create_dir_all(&scratch).unwrap();
        let probe = Command::new("tar").arg("--numeric-owner").arg("-xpf").arg(&a).arg("-C").arg(&scratch).output().unwrap();
        let format = if k % 2 == 0 { "v1" } else { "v2" };
        let indexed = tarfs().args(["index", "--format", format]).arg(&a).output().unwrap();
        if !probe.status.success() || !indexed.status.success() {
            // What tar or tarfs refuses (checked against the other readers by tests/corpus.rs).
            let _ = fs::remove_file(format!("{}.tarfs", a.display()));
            continue;
        }
        mounted += 1;
        let found = differences(&a, &a, tmp.path());
        // Where docs/FORMAT.md records that tarfs reads an archive otherwise than GNU tar (its
        // choice follows other readers), the mount is what `tarfs extract` leaves.
        let chosen = common::trees::reads_otherwise_than_gnu_tar(e.path());
        let found = if found.is_empty() || !chosen { found } else { differences_from_extract(&a, tmp.path()) };
        diffs.extend(found.into_iter().map(|d| format!("{}: {d}", e.path().display())));
        let _ = fs::remove_file(format!("{}.tarfs", a.display()));
    }
    // 95 of all; of every third, 28 (those tar or tarfs refuse fall unevenly).
    let want = if step == 1 { 95 } else { 26 };
    assert!(mounted >= want, "only {mounted} corpus archives mounted (one in {step})");
    assert!(diffs.is_empty(), "{} differences:\n{}", diffs.len(), diffs.join("\n"));
}

/// A directory of archives: each appears as a directory named by its path, loaded when first
/// looked into, and reads as tar extracts it; --uid/--gid override owners; SIGTERM of the
/// foreground process unmounts; a changed archive gives EIO, never other bytes.
#[test]
fn a_tree_of_archives_owners_signals_and_changes() {
    let tmp = TempDir::new().unwrap();
    make_tree(tmp.path());
    let store = tmp.path().join("store");
    fs::create_dir_all(store.join("sub")).unwrap();
    let (a, b) = (store.join("a.tar"), store.join("sub/b.tar.gz"));
    ok(Command::new("sh").arg("-c").arg(format!("cd {} && tar -cf {} tree/dir && tar -czf {} tree", tmp.path().display(), a.display(), b.display())));
    ok(tarfs().arg("index").arg(&store));
    let m = mount(&store, tmp.path(), &["--uid", "4242", "--gid", "4343", "--readdirplus"]);
    let mut names: Vec<String> = walkdir::WalkDir::new(&m.0).max_depth(2).min_depth(1).sort_by_file_name().into_iter().map(|e| e.unwrap().path().strip_prefix(&m.0).unwrap().display().to_string()).collect();
    names.sort();
    assert_eq!(names, ["a.tar", "a.tar/tree", "sub", "sub/b.tar.gz"]);
    let meta = fs::metadata(m.0.join("a.tar/tree/dir/f5")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (4242, 4343));
    assert_eq!(fs::read(m.0.join("sub/b.tar.gz/tree/dir/f5")).unwrap(), fs::read(tmp.path().join("tree/dir/f5")).unwrap());
    assert_eq!(fs::read(m.0.join("a.tar/tree/dir/sparse.img")).unwrap(), fs::read(tmp.path().join("tree/dir/sparse.img")).unwrap());
    drop(m);

    // Files of a plain archive are read with direct I/O; they can still be mapped, and a
    // program in the archive runs from the mount.
    let progs = tmp.path().join("progs");
    fs::create_dir_all(progs.join("bin")).unwrap();
    fs::copy("/bin/true", progs.join("bin/true")).unwrap();
    let pa = tmp.path().join("progs.tar");
    ok(Command::new("tar").arg("-C").arg(&progs).arg("-cf").arg(&pa).arg("bin").arg("-C").arg(tmp.path()).arg("tree/dir/f5"));
    let m = mount(&pa, tmp.path(), &[]);
    ok(&mut Command::new(m.0.join("bin/true")));
    let mapped = Command::new("python3").arg("-c").arg("import mmap,sys; f=open(sys.argv[1],'rb'); sys.stdout.buffer.write(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)[:])").arg(m.0.join("tree/dir/f5")).output().unwrap();
    assert!(mapped.status.success(), "{}", String::from_utf8_lossy(&mapped.stderr));
    assert_eq!(mapped.stdout, fs::read(tmp.path().join("tree/dir/f5")).unwrap());
    drop(m);

    // With no index, --write-index saves what the scan found; a later mount reads through it.
    let fresh = tmp.path().join("fresh.tar");
    fs::copy(&a, &fresh).unwrap();
    let m = mount(&fresh, tmp.path(), &["--write-index"]);
    assert_eq!(fs::read(m.0.join("tree/dir/f5")).unwrap(), fs::read(tmp.path().join("tree/dir/f5")).unwrap());
    drop(m);
    ok(tarfs().arg("verify").arg(&fresh));

    // The foreground process ends on SIGTERM, unmounting.
    let mp = tmp.path().join("fg");
    fs::create_dir_all(&mp).unwrap();
    let mut child = tarfs().arg("mount").arg("-f").arg(&a).arg(&mp).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !mp.join("tree").exists() {
        assert!(std::time::Instant::now() < deadline, "the foreground mount did not come up");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // A changed archive: EIO for what was not read before, never other bytes.
    let f5 = fs::read(mp.join("tree/dir/f5")).unwrap();
    let original = fs::read(&a).unwrap();
    let mut changed = original.clone();
    let at = original.windows(16).position(|w| w == &f5[..16]).unwrap();
    changed[at] ^= 0xff;
    fs::write(&a, &changed).unwrap();
    let err = fs::read(mp.join("tree/dir/f3")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(5), "{err}");
    let again = fs::read(mp.join("tree/dir/f5"));
    assert!(again.is_err() || again.as_ref().unwrap() == &f5, "other bytes after the archive changed");
    ok(Command::new("kill").arg("-TERM").arg(child.id().to_string()));
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!mp.join("tree").exists(), "still mounted after SIGTERM");
}

/// Writes `files` (path, contents; a path ending in `/` is a directory; empty contents leave a
/// file that is there as it is) under `root`, and archives them, in that order, as `archive`
/// (`tar -c` with `flags`).
fn archive_of(root: &Path, archive: &Path, flags: &str, files: &[(&str, &str)]) {
    for (path, contents) in files {
        let at = root.join(path);
        match path.strip_suffix('/') {
            Some(_) => fs::create_dir_all(&at).unwrap(),
            None if contents.is_empty() && at.exists() => {}
            None => {
                fs::create_dir_all(at.parent().unwrap()).unwrap();
                fs::write(&at, contents).unwrap();
            }
        }
    }
    fs::create_dir_all(archive.parent().unwrap()).unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.0).collect();
    ok(Command::new("tar").arg("-C").arg(root).arg(format!("-c{flags}f")).arg(archive).arg("--no-recursion").args(&names));
}

/// Issue #33: `tarfs mount A B C MNT` is the union of the three, the rightmost archive's entry
/// winning: what `tar -xf` of A, then B, then C into one directory leaves (file over file,
/// directory over file, directories merged with the later one's mode, a hard link within C),
/// except where tar refuses to put a file over a directory that is not empty, which the union
/// does (ratarmount's rule): there the expectation is B's file, extracted again. `-v` names each
/// archive loaded; `--kernel` with several archives, and a directory among them, are refused.
#[test]
fn a_union_of_archives_is_tar_xf_of_each_in_turn() {
    let tmp = TempDir::new().unwrap();
    let t = tmp.path();
    let (a, b, c) = (t.join("a.tar"), t.join("b.tar"), t.join("c.tar.gz"));
    archive_of(&t.join("sa"), &a, "", &[("d/", ""), ("d/x", "A's d/x"), ("e/", ""), ("e/g", "A's e/g"), ("f", "A's f"), ("top", "A's top"), ("s", "")]);
    archive_of(&t.join("sb"), &b, "", &[("d", "B's file d"), ("f/", ""), ("f/in", "B's f/in"), ("e/h", "B's e/h"), ("top", "B's top, longer")]);
    fs::create_dir_all(t.join("sc/e")).unwrap();
    fs::set_permissions(t.join("sc/e"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::write(t.join("sc/h1"), "C's h1").unwrap();
    fs::hard_link(t.join("sc/h1"), t.join("sc/h2")).unwrap();
    archive_of(&t.join("sc"), &c, "z", &[("e/", ""), ("e/k", "C's e/k"), ("top", "C's top"), ("h1", "C's h1"), ("h2", "C's h1")]);

    let theirs = tempfile::Builder::new().prefix("tar").tempdir_in(t).unwrap();
    for x in [&a, &b, &c] {
        // B's file d over A's directory d: tar refuses (and goes on), checked below.
        Command::new("tar").arg("--numeric-owner").arg("-xpf").arg(x).arg("-C").arg(theirs.path()).output().unwrap();
    }
    assert!(theirs.path().join("d/x").exists(), "tar put a file over a directory: the expectation below is wrong");
    fs::remove_dir_all(theirs.path().join("d")).unwrap();
    ok(Command::new("tar").arg("--numeric-owner").arg("-xpf").arg(&b).arg("-C").arg(theirs.path()).arg("d"));

    let (m, said) = mount_all(&[&a, &b, &c], t, &["-v"]);
    let diffs = common::trees::compare("union", "mount", &snapshot(&m.0), &snapshot(theirs.path()));
    assert!(diffs.is_empty(), "{} differences:\n{}", diffs.len(), diffs.join("\n"));
    assert_eq!(fs::read_to_string(m.0.join("d")).unwrap(), "B's file d");
    assert_eq!(fs::read_to_string(m.0.join("top")).unwrap(), "C's top");
    assert_eq!(fs::metadata(m.0.join("e")).unwrap().mode() & 0o7777, 0o750);
    assert_eq!(fs::metadata(m.0.join("h2")).unwrap().nlink(), 2);
    for x in [&a, &b, &c] {
        assert!(said.contains(&format!("{}: loaded", x.display())), "-v does not name {}:\n{said}", x.display());
    }
    drop(m);

    let mp = t.join("refused");
    fs::create_dir_all(&mp).unwrap();
    let kernel = tarfs().arg("mount").arg("--kernel").arg(&a).arg(&b).arg(&mp).output().unwrap();
    let dir = tarfs().arg("mount").arg(&a).arg(t.join("sa")).arg(&mp).output().unwrap();
    for (out, says) in [(kernel, "the union of 2 archives is mounted through FUSE"), (dir, "a directory cannot be part of a union")] {
        assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains(says), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

/// `--recursive`: an archive inside an archive is a directory of its name holding its tree,
/// read from the outer archive's bytes: a plain tar, and a gzipped one, in a plain tar (a range
/// of it) and in a gzipped tar (read into memory), and a tar inside the inner tar (nested
/// twice). Without `--recursive` the member is the file it is.
#[test]
fn recursive_shows_archives_inside_archives_as_directories() {
    let tmp = TempDir::new().unwrap();
    let t = tmp.path();
    archive_of(&t.join("deep"), &t.join("in/deeper.tar"), "", &[("d.txt", "two levels down")]);
    archive_of(&t.join("in"), &t.join("outer/inner.tar"), "", &[("a/", ""), ("a/b.txt", "inside inner.tar\n"), ("deeper.tar", "")]);
    archive_of(&t.join("in2"), &t.join("outer/inner2.tar.gz"), "z", &[("x/", ""), ("x/y.txt", "inside inner2.tar.gz")]);
    fs::set_permissions(t.join("outer/inner.tar"), fs::Permissions::from_mode(0o640)).unwrap();
    let outer = t.join("outer.tar");
    archive_of(&t.join("outer"), &outer, "", &[("inner.tar", ""), ("inner2.tar.gz", ""), ("plain.txt", "not an archive")]);
    ok(Command::new("sh").arg("-c").arg(format!("gzip -c {} > {}.gz", outer.display(), outer.display())));
    let theirs = extracted(&t.join("outer/inner2.tar.gz"), t);

    for o in [outer.clone(), t.join("outer.tar.gz")] {
        let (m, _) = mount_all(&[&o], t, &["--recursive"]);
        let b = m.0.join("inner.tar/a/b.txt");
        assert_eq!(fs::read(&b).unwrap(), b"inside inner.tar\n", "{}", o.display());
        assert_eq!((fs::metadata(&b).unwrap().len(), fs::metadata(&b).unwrap().mode() & 0o7777), (17, fs::metadata(t.join("in/a/b.txt")).unwrap().mode() & 0o7777));
        let dir = fs::metadata(m.0.join("inner.tar")).unwrap();
        assert!(dir.is_dir() && dir.mode() & 0o7777 == 0o750, "inner.tar: {:o}", dir.mode());
        assert_eq!(fs::read_to_string(m.0.join("inner.tar/deeper.tar/d.txt")).unwrap(), "two levels down");
        let diffs = common::trees::compare(&o.display().to_string(), "mount", &snapshot(&m.0.join("inner2.tar.gz")), &snapshot(theirs.path()));
        assert!(diffs.is_empty(), "{}", diffs.join("\n"));
        assert_eq!(fs::read_to_string(m.0.join("plain.txt")).unwrap(), "not an archive");
    }
    let m = mount(&outer, t, &[]);
    assert_eq!(fs::read(m.0.join("inner.tar")).unwrap(), fs::read(t.join("outer/inner.tar")).unwrap());
}

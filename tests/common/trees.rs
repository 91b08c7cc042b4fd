//! The trees the mount tests compare (`tests/mount.rs` through FUSE, `tests/erofs.rs` through
//! the kernel): the writer matrix's source tree and archives, `tar -xf` of an archive, and a
//! snapshot of everything extraction decides about each path.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::ok;

/// Everything about each path under `root` that extraction decides: (type and mode, owner,
/// size, contents or link target, mtime or "-" for directories), and the hard-link groups.
pub fn snapshot(root: &Path) -> (BTreeMap<String, String>, Vec<Vec<String>>) {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let e = match e {
            Ok(e) => e,
            Err(err) => {
                out.insert(format!("walk error {err}"), String::new());
                continue;
            }
        };
        let rel = e.path().strip_prefix(root).unwrap().display().to_string();
        let m = fs::symlink_metadata(e.path()).unwrap();
        let ft = m.file_type();
        let what = if ft.is_symlink() {
            format!("link {}", fs::read_link(e.path()).unwrap().display())
        } else if ft.is_file() {
            inodes.entry(m.ino()).or_default().push(rel.clone());
            match digest(e.path()) {
                Ok(h) => format!("file {h:x}"),
                Err(err) => format!("file unreadable: {err}"),
            }
        } else if ft.is_dir() {
            "dir".to_string()
        } else {
            format!("special {:o} {}", m.mode() & 0o170000, m.rdev())
        };
        // Directories' times are those of extraction where no member sets them.
        let mtime = if ft.is_dir() { "-".to_string() } else { m.mtime().to_string() };
        let mode = if ft.is_symlink() { 0 } else { m.mode() & 0o7777 };
        out.insert(rel, format!("{what} mode {mode:o} owner {}:{} size {} mtime {mtime} links {}", m.uid(), m.gid(), if ft.is_dir() { 0 } else { m.len() }, m.nlink()));
    }
    let mut groups: Vec<Vec<String>> = inodes.into_values().filter(|g| g.len() > 1).collect();
    groups.sort();
    (out, groups)
}

/// The xxh3 of a file's contents, read in pieces (the corpus has sparse files of 12 GB).
fn digest(path: &Path) -> std::io::Result<u64> {
    use std::io::Read;
    let mut f = fs::File::open(path)?;
    let (mut h, mut buf) = (xxhash_rust::xxh3::Xxh3::new(), vec![0u8; 1 << 20]);
    loop {
        match f.read(&mut buf)? {
            0 => return Ok(h.digest()),
            n => h.update(&buf[..n]),
        }
    }
}

/// `tar -xpf` of `tar_archive` (owners as numbers) into a new directory under `tmp`.
pub fn extracted(tar_archive: &Path, tmp: &Path) -> TempDir {
    let theirs = tempfile::Builder::new().prefix("tar").tempdir_in(tmp).unwrap();
    let t = Command::new("tar").arg("--numeric-owner").arg("-xpf").arg(tar_archive).arg("-C").arg(theirs.path()).output().unwrap();
    assert!(t.status.success(), "tar -xf {}: {}", tar_archive.display(), String::from_utf8_lossy(&t.stderr));
    theirs
}

/// A tree with what extraction must get right: modes (setuid, a private directory), a
/// symbolic link, hard links, long names, a sparse file, an empty file.
pub fn make_tree(root: &Path) {
    let t = root.join("tree");
    fs::create_dir_all(t.join("dir/sub")).unwrap();
    for (i, len) in [0usize, 1, 511, 512, 513, 70_000].iter().enumerate() {
        let data: Vec<u8> = (0..*len).map(|k| (k * 31 + i * 7) as u8).collect();
        fs::write(t.join(format!("dir/f{i}")), data).unwrap();
    }
    fs::set_permissions(t.join("dir/f1"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::set_permissions(t.join("dir/sub"), fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink("../f3", t.join("dir/sub/link")).unwrap();
    fs::hard_link(t.join("dir/f4"), t.join("dir/hard")).unwrap();
    fs::hard_link(t.join("dir/f4"), t.join("dir/sub/hard2")).unwrap();
    let long = t.join("l".repeat(110)).join("m".repeat(120));
    fs::create_dir_all(&long).unwrap();
    fs::write(long.join("deep.txt"), "deep\n").unwrap();
    let f = fs::File::create(t.join("dir/sparse.img")).unwrap();
    f.set_len(3 << 20).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"start", 0).unwrap();
    f.write_all_at(&[7u8; 5000], 1 << 20).unwrap();
    for p in ["tree/dir/f0", "tree/dir/f2", "tree/dir"] {
        ok(Command::new("touch").arg("-h").arg("-d").arg("@1600000000").arg(root.join(p)));
    }
}

/// The writer matrix, of the tree [`make_tree`] made under `src`: GNU tar in five formats (v7
/// of `tree/dir` alone, ustar without the long names) and with sparse files in two, bsdtar,
/// Python (pax), and a GNU archive with duplicate names appended (which changes `tree/dir/f2`
/// in `src`). In this order; each `NAME.tar` under `src`.
pub fn writer_matrix(src: &Path) -> Vec<PathBuf> {
    let mut archives: Vec<PathBuf> = Vec::new();
    for (name, cmd) in [
        ("gnu", "tar --format=gnu -cf"),
        ("oldgnu", "tar --format=oldgnu -cf"),
        ("posix", "tar --format=posix -cf"),
        ("ustar", "tar --format=ustar -cf"),
        ("gnu-sparse", "tar --format=gnu -S -cf"),
        ("posix-sparse", "tar --format=posix -S -cf"),
        ("bsdtar", "bsdtar -cf"),
    ] {
        let a = src.join(format!("{name}.tar"));
        let excl = if name == "ustar" { "--exclude=tree/llll*" } else { "" };
        ok(Command::new("sh").arg("-c").arg(format!("cd {} && {cmd} {} {excl} tree", src.display(), a.display())));
        archives.push(a);
    }
    // v7 cannot hold the long names.
    let v7 = src.join("v7.tar");
    ok(Command::new("sh").arg("-c").arg(format!("cd {} && tar --format=v7 -cf {} tree/dir", src.display(), v7.display())));
    archives.push(v7);
    let py = src.join("python.tar");
    ok(Command::new("python3").arg("-c").arg("import tarfile, sys, os\nos.chdir(sys.argv[1])\nwith tarfile.open(sys.argv[2], 'w', format=tarfile.PAX_FORMAT) as t:\n    t.add('tree')\n").arg(src).arg(&py));
    archives.push(py);
    // Duplicate names: the same paths appended again with other contents and modes, and a
    // directory given again with another mode.
    let dup = src.join("dups.tar");
    fs::copy(&archives[0], &dup).unwrap();
    fs::write(src.join("tree/dir/f2"), "second f2\n").unwrap();
    fs::set_permissions(src.join("tree/dir/f2"), fs::Permissions::from_mode(0o600)).unwrap();
    ok(Command::new("sh").arg("-c").arg(format!("cd {} && tar -rf {} tree/dir/f2 && tar --no-recursion -rf {} tree/dir/sub", src.display(), dup.display(), dup.display())));
    archives.push(dup);
    archives
}

/// The differences between two snapshots ([`snapshot`]): `ours` (labelled `what`) against
/// `want` (`tar -xf`'s), each prefixed with `label`.
pub fn compare(label: &str, what: &str, ours: &(BTreeMap<String, String>, Vec<Vec<String>>), want: &(BTreeMap<String, String>, Vec<Vec<String>>)) -> Vec<String> {
    let mut diffs = Vec::new();
    for (k, v) in &want.0 {
        match ours.0.get(k) {
            Some(o) if o == v => {}
            o => diffs.push(format!("{label}: {k}: {what} has {o:?}, tar -xf {v}")),
        }
    }
    for k in ours.0.keys().filter(|k| !want.0.contains_key(*k)) {
        diffs.push(format!("{label}: {k}: in the {what}, not in tar -xf"));
    }
    if ours.1 != want.1 {
        diffs.push(format!("{label}: hard links: {what} {:?}, tar -xf {:?}", ours.1, want.1));
    }
    diffs
}

/// Whether docs/FORMAT.md records that tarfs reads the corpus archive at `corpus_path`
/// otherwise than GNU tar (its choice following other readers): there, the mounts are held to
/// what tarfs extracts, not to `tar -xf`.
pub fn reads_otherwise_than_gnu_tar(corpus_path: &Path) -> bool {
    let format_md = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/FORMAT.md")).unwrap();
    let rel = corpus_path.strip_prefix(super::corpus_dir()).unwrap().display().to_string();
    format_md.lines().any(|l| l.starts_with(&format!("| `{rel}`")) && l.contains("GNU tar") && !l.contains("**Go, GNU tar**") && !l.contains("**Python, GNU tar**"))
}

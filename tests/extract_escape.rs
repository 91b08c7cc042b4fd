//! Extraction never changes anything outside the destination when it sets directories' modes
//! and times at the end (issue #29, finding 1): a symbolic link that a directory was created
//! through, replaced later by a link that leads outside, must not carry them there. Each case
//! is compared with GNU tar on the same archive, from a file and from standard input.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use common::{ok, tarfs};
use tempfile::TempDir;

/// Every member's modification time.
const ARCHIVE_MTIME: i64 = 1_234_567_890;
/// The time the directory outside the destination starts with (2001-01-01).
const OUTSIDE_MTIME: i64 = 978_307_200;

/// Writes a GNU-format archive of `members`: (name, `d`irectory or `l`ink, mode, link target).
fn archive(path: &Path, members: &[(&str, char, u32, &str)]) {
    let script = r#"
import json, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.GNU_FORMAT) as t:
    for name, kind, mode, link in json.loads(sys.argv[2]):
        i = tarfile.TarInfo(name)
        i.type = tarfile.DIRTYPE if kind == "d" else tarfile.SYMTYPE
        i.mode, i.linkname, i.mtime = mode, link, int(sys.argv[3])
        t.addfile(i)
"#;
    let spec: Vec<serde_json::Value> = members.iter().map(|(n, k, m, l)| serde_json::json!([n, k.to_string(), m, l])).collect();
    ok(Command::new("python3").arg("-c").arg(script).arg(path).arg(serde_json::to_string(&spec).unwrap()).arg(ARCHIVE_MTIME.to_string()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
}

/// A directory tree as lines `path kind mode [-> target]`, without times (GNU tar sets a
/// directory's time when it moves past it, tarfs at the end, so a directory written into later
/// through a link differs; symbolic links' times tarfs does not set).
fn tree(root: &Path) -> Vec<String> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let m = e.path().symlink_metadata().unwrap();
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            if m.file_type().is_symlink() {
                format!("{rel} link -> {}", fs::read_link(e.path()).unwrap().display())
            } else {
                format!("{rel} {} {:o}", if m.is_dir() { "dir" } else { "file" }, m.mode() & 0o7777)
            }
        })
        .collect()
}

/// The mode and modification time of `path`, not following a link, if it exists.
fn attributes(path: &Path) -> Option<(u32, i64)> {
    path.symlink_metadata().ok().map(|m| (m.mode() & 0o7777, m.mtime()))
}

/// A fresh empty directory `name` under `tmp`, writable by everyone (for runs as another user).
fn fresh(tmp: &Path, name: &str) -> PathBuf {
    let d = tmp.join(name);
    fs::create_dir(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
    d
}

/// GNU tar, `tarfs extract ARCHIVE` and `tarfs extract -` (the archive on standard input), each
/// into its own fresh directory under `tmp`, optionally as user `nobody`; each run's output and
/// destination, GNU tar's first. `after` runs after each extraction (to check and restore
/// whatever is outside the destination).
fn extract_three_ways(tmp: &Path, a: &Path, as_nobody: bool, mut after: impl FnMut(&str)) -> Vec<(Output, PathBuf)> {
    let command = |program: &str| {
        let mut c = if as_nobody { Command::new("setpriv") } else { Command::new(program) };
        if as_nobody {
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(program);
        }
        c
    };
    let tarfs_bin = tarfs().get_program().to_owned();
    let tarfs_bin = tarfs_bin.to_str().unwrap();
    let mut runs = Vec::new();
    for how in ["gnu-tar", "tarfs-file", "tarfs-stdin"] {
        let dest = fresh(tmp, how);
        let out = match how {
            "gnu-tar" => command("tar").arg("-xf").arg(a).arg("-C").arg(&dest).output(),
            "tarfs-file" => command(tarfs_bin).arg("extract").arg(a).arg("-C").arg(&dest).output(),
            _ => command(tarfs_bin).arg("extract").arg("-").arg("-C").arg(&dest).stdin(fs::File::open(a).unwrap()).output(),
        }
        .unwrap();
        after(how);
        runs.push((out, dest));
    }
    runs
}

/// Asserts that tarfs's runs exited as GNU tar's did and left the same tree.
fn same_as_gnu_tar(runs: &[(Output, PathBuf)]) {
    let (gnu, gnu_dest) = &runs[0];
    for (out, dest) in &runs[1..] {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), gnu.status.code(), "{}: {err}", dest.display());
        assert_eq!(tree(dest), tree(gnu_dest), "{}: {err}", dest.display());
    }
}

/// The issue's archive: `sub/`, `l -> sub`, `l/victim/` (mode 0777), then `l -> OUTSIDE`.
/// Extracting it must leave `OUTSIDE/victim` alone, whether or not it exists, and give the
/// directory it did create, `sub/victim`, its mode and time, as GNU tar does.
#[test]
fn a_replaced_link_does_not_carry_directory_attributes_outside() {
    for victim_exists in [true, false] {
        let tmp = TempDir::new().unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let outside = tmp.path().join("outside");
        let victim = outside.join("victim");
        fs::create_dir(&outside).unwrap();
        let reset = || {
            if victim_exists {
                fs::create_dir_all(&victim).unwrap();
                fs::set_permissions(&victim, fs::Permissions::from_mode(0o700)).unwrap();
                fs::File::open(&victim).unwrap().set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(OUTSIDE_MTIME as u64)).unwrap();
            }
        };
        reset();
        let before = (attributes(&outside), attributes(&victim));
        let a = tmp.path().join("evil.tar");
        archive(&a, &[("sub/", 'd', 0o755, ""), ("l", 'l', 0o777, "sub"), ("l/victim/", 'd', 0o777, ""), ("l", 'l', 0o777, outside.to_str().unwrap())]);
        let runs = extract_three_ways(tmp.path(), &a, false, |how| {
            let after = (attributes(&outside), attributes(&victim));
            assert_eq!(after, before, "{how} (victim existed: {victim_exists}) changed {}", outside.display());
            let names: Vec<_> = fs::read_dir(&outside).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(names.len(), usize::from(victim_exists), "{how} created {names:?} in {}", outside.display());
            reset();
        });
        same_as_gnu_tar(&runs);
        for (out, dest) in &runs {
            assert_eq!(out.status.code(), Some(0), "{}: {}", dest.display(), String::from_utf8_lossy(&out.stderr));
            assert_eq!(attributes(&dest.join("sub/victim")), Some((0o777, ARCHIVE_MTIME)), "{}", dest.display());
        }
    }
}

/// A link repointed from one directory inside the destination to another: the directory created
/// through it the first time gets the attributes, the other keeps its own, as with GNU tar.
#[test]
fn a_repointed_link_gives_attributes_only_to_the_directory_created_through_it() {
    let tmp = TempDir::new().unwrap();
    let a = tmp.path().join("swap.tar");
    archive(&a, &[("a/", 'd', 0o755, ""), ("b/", 'd', 0o755, ""), ("b/v/", 'd', 0o700, ""), ("l", 'l', 0o777, "a"), ("l/v/", 'd', 0o777, ""), ("l", 'l', 0o777, "b")]);
    let runs = extract_three_ways(tmp.path(), &a, false, |_| {});
    same_as_gnu_tar(&runs);
    for (_, dest) in &runs {
        assert_eq!(attributes(&dest.join("a/v")), Some((0o777, ARCHIVE_MTIME)), "{}", dest.display());
        assert_eq!(attributes(&dest.join("b/v")), Some((0o700, ARCHIVE_MTIME)), "{}", dest.display());
    }
}

/// A directory its owner may not read (mode 0311), listed twice: the second time it is already
/// unreadable, and still gets its mode and time, as with GNU tar, for a user who is not root.
#[test]
fn a_directory_its_owner_cannot_read_still_gets_its_mode_and_time() {
    let tmp = TempDir::new().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let a = tmp.path().join("unreadable.tar");
    archive(&a, &[("d/", 'd', 0o311, ""), ("d/", 'd', 0o311, "")]);
    let runs = extract_three_ways(tmp.path(), &a, true, |_| {});
    same_as_gnu_tar(&runs);
    for (out, dest) in &runs {
        assert_eq!(out.status.code(), Some(0), "{}: {}", dest.display(), String::from_utf8_lossy(&out.stderr));
        assert_eq!(attributes(&dest.join("d")), Some((0o311, ARCHIVE_MTIME)), "{}", dest.display());
    }
}

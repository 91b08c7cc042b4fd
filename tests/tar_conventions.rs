//! Where GNU tar has a convention, tarfs follows it (issue #30, items 10-12): names quoted as
//! `tar -t` quotes them, `cat DIR` as `tar -xO DIR`, and the metadata `tar -x` restores. Each is
//! compared with the real `tar` on this machine.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ok, tarfs};

/// `DIR/hostile.tar`, written by Python: names with control characters, a backslash, UTF-8 and
/// bytes that are not UTF-8, a symbolic link and a hard link with such targets, and a member
/// whose owner name holds a newline.
fn hostile(dir: &Path) -> PathBuf {
    let p = dir.join("hostile.tar");
    let script = r#"
import io, sys, tarfile
names = ["a\nb", "t\tab", "bell\a", "bs\b", "ff\f", "cr\r", "vt\v", "esc\x1b[31m", "del\x7f",
         "back\\slash", "one\x01", "caf\u00e9", "lat\udce9", "quote\"' sp?", "c1\u009b",
         "emoji\U0001F600", "ls\u2028ps", "rlo\u202e"]
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape") as t:
    for n in names:
        ti = tarfile.TarInfo(n); ti.size = 1; ti.mtime = 1700000000; t.addfile(ti, io.BytesIO(b"x"))
    ti = tarfile.TarInfo("sym\nl"); ti.type = tarfile.SYMTYPE; ti.linkname = "tar\nget"; ti.mtime = 1700000000; t.addfile(ti)
    ti = tarfile.TarInfo("hard\tl"); ti.type = tarfile.LNKTYPE; ti.linkname = "a\nb"; ti.mtime = 1700000000; t.addfile(ti)
"#;
    ok(Command::new("python3").arg("-c").arg(script).arg(&p));
    p
}

/// stdout of `cmd` in locale `lc_all` (and UTC, for `-v` times).
fn out_in(lc_all: &str, cmd: &mut Command) -> Vec<u8> {
    ok(cmd.env("LC_ALL", lc_all).env("TZ", "UTC")).stdout
}

#[test]
fn ls_quotes_names_as_gnu_tar_does() {
    let d = tempfile::tempdir().unwrap();
    let a = hostile(d.path());
    // Before and after an index: the listing through the index is the same.
    for indexed in [false, true] {
        if indexed {
            ok(tarfs().arg("index").arg(&a));
        }
        for lc in ["C.UTF-8", "C"] {
            let tar = out_in(lc, Command::new("tar").arg("-tf").arg(&a));
            assert!(String::from_utf8_lossy(&tar).contains("a\\nb\n"), "GNU tar's escape style: {}", String::from_utf8_lossy(&tar));
            assert_eq!(String::from_utf8_lossy(&out_in(lc, tarfs().arg("ls").arg(&a))), String::from_utf8_lossy(&tar), "ls, LC_ALL={lc}, indexed: {indexed}");
            let tar_v = out_in(lc, Command::new("tar").arg("-tvf").arg(&a));
            assert_eq!(String::from_utf8_lossy(&out_in(lc, tarfs().args(["ls", "-l"]).arg(&a))), String::from_utf8_lossy(&tar_v), "ls -l, LC_ALL={lc}");
            let tar_lit = out_in(lc, Command::new("tar").arg("--quoting-style=literal").arg("-tf").arg(&a));
            assert_eq!(out_in(lc, tarfs().args(["ls", "--quoting-style=literal"]).arg(&a)), tar_lit, "literal, LC_ALL={lc}");
        }
    }
    // Every line of the default listing is one member: no control byte but the newlines.
    let listing = out_in("C.UTF-8", tarfs().arg("ls").arg(&a));
    assert_eq!(listing.iter().filter(|&&b| b == b'\n').count(), 20);
    assert!(!listing.iter().any(|&b| b != b'\n' && (b < 0x20 || b == 0x7f)));
}

/// GNU tar prints owner names as they are; tarfs quotes them like names, so that a hostile
/// owner name cannot forge a line either.
#[test]
fn ls_long_quotes_owner_names_too() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("owner.tar");
    let script = "import io,sys,tarfile\nwith tarfile.open(sys.argv[1],'w',format=tarfile.PAX_FORMAT) as t:\n ti=tarfile.TarInfo('f'); ti.size=1; ti.uname='us\\ner'; ti.gname='g\\x1b'; t.addfile(ti,io.BytesIO(b'x'))\n";
    ok(Command::new("python3").arg("-c").arg(script).arg(&a));
    let line = String::from_utf8(out_in("C.UTF-8", tarfs().args(["ls", "-l"]).arg(&a))).unwrap();
    assert!(line.starts_with("-rw-r--r-- us\\ner/g\\033 ") && line.lines().count() == 1, "{line:?}");
    let raw = out_in("C.UTF-8", tarfs().args(["ls", "-l", "--quoting-style=literal"]).arg(&a));
    assert!(raw.starts_with(b"-rw-r--r-- us\ner/g\x1b "), "{}", String::from_utf8_lossy(&raw));
}

/// Messages on stderr quote the names they hold, whatever the listing's style, as GNU tar's
/// diagnostics do by default.
#[test]
fn messages_quote_member_names() {
    let d = tempfile::tempdir().unwrap();
    let a = hostile(d.path());
    let dest = d.path().join("out");
    std::fs::create_dir(&dest).unwrap();
    let nope = "no\npe\x1b";
    let d_arg = ["-C".as_ref(), dest.as_os_str()];
    let runs: [(&[&str], &[&std::ffi::OsStr]); 4] = [(&["ls"], &[]), (&["ls", "--quoting-style=literal"], &[]), (&["cat"], &[]), (&["extract"], &d_arg)];
    for (args, more) in runs {
        let mut cmd = tarfs();
        cmd.args(args).arg(&a).args(more).arg(nope);
        let out = cmd.env("LC_ALL", "C.UTF-8").output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}: {err}");
        assert!(err.contains(": no\\npe\\033: not found in archive"), "{cmd:?}: {err:?}");
        assert_eq!(err.lines().count(), 1, "{cmd:?}: {err:?}");
    }
}

/// `DIR/tree.tar`, written by GNU tar: directories `d/` (with `d/sub/`, a symbolic link and a
/// hard link in it) and `dd/`, a file `f`, and `d2/x`, whose directory has no member of its own.
fn tree(dir: &Path) -> PathBuf {
    let src = dir.join("tree-src");
    for d in ["d/sub", "dd", "d2"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    for (f, text) in [("d/a", "A\n"), ("d/sub/b", "B\n"), ("dd/c", "C\n"), ("f", "F\n"), ("d2/x", "X\n"), ("d/z", "Z\n")] {
        std::fs::write(src.join(f), text).unwrap();
    }
    std::os::unix::fs::symlink("a", src.join("d/ln")).unwrap();
    std::fs::hard_link(src.join("d/a"), src.join("d/hl")).unwrap();
    let a = dir.join("tree.tar");
    ok(Command::new("tar").arg("--sort=name").arg("-cf").arg(&a).arg("-C").arg(&src).args(["d", "dd", "f", "d2/x"]));
    a
}

/// `cat DIR` prints every regular file under DIR, in archive order, as `tar -xOf a.tar DIR`
/// does (a trailing slash or two changes nothing; links print nothing), through a scan, a
/// sidecar, a compressed archive with and without one, and standard input.
#[test]
fn cat_of_a_directory_prints_the_files_under_it() {
    let d = tempfile::tempdir().unwrap();
    let a = tree(d.path());
    let operands: &[&[&str]] = &[&["d"], &["d/"], &["d//"], &["d/sub"], &["dd/c/"], &["f/"], &["d2"], &["dd", "d"], &["dd", "d/sub/b"]];
    let zst = d.path().join("tree.tar.zst");
    ok(Command::new("zstd").arg("-q").arg(&a).arg("-o").arg(&zst));
    let gz = d.path().join("copy.tar.gz");
    ok(Command::new("sh").arg("-c").arg(format!("gzip -c {} > {}", a.display(), gz.display())));
    for stage in ["scan", "indexed"] {
        if stage == "indexed" {
            ok(tarfs().arg("index").arg(&a).arg(&gz));
        }
        for archive in [&a, &zst, &gz] {
            for ops in operands {
                let theirs = ok(Command::new("tar").arg("-xOf").arg(&a).args(*ops)).stdout;
                assert!(!theirs.is_empty(), "{ops:?}");
                let ours = ok(tarfs().arg("cat").arg(archive).args(*ops)).stdout;
                assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs), "{stage}: {}: {ops:?}", archive.display());
            }
        }
    }
    let stdin = ok(tarfs().args(["cat", "-", "d"]).stdin(std::fs::File::open(&zst).unwrap())).stdout;
    assert_eq!(stdin, b"A\nB\nZ\n");
    // A member that two operands select is printed once (GNU tar prints it once too, and then
    // says that `d/a` was not found: tarfs counts it found).
    assert_eq!(ok(tarfs().args(["cat"]).arg(&a).args(["d", "d/a"])).stdout, b"A\nB\nZ\n");
    // A name that is neither a member nor a directory of members is still not found.
    let out = tarfs().arg("cat").arg(&a).args(["d", "d/nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("d/nope: not found in archive"));
}

/// The mode and time of each path under `dir` (`lstat`: links themselves), the top included.
fn stats(dir: &Path) -> Vec<(String, u32, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        let m = std::fs::symlink_metadata(e.path()).unwrap();
        let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
        // A directory's time is its members' business; a file's too, but files always had it.
        out.push((rel, m.mode() & 0o7777, m.mtime()));
    }
    out
}

/// Extraction restores what `tar -x` restores: a symbolic link's own time and a FIFO's, and the
/// `./` member's mode and time on the destination itself (after everything inside it).
#[test]
fn extract_restores_link_times_and_the_destinations_own_as_tar_does() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/f"), b"x").unwrap();
    std::os::unix::fs::symlink("sub/f", src.join("ln")).unwrap();
    ok(Command::new("mkfifo").arg(src.join("fifo")));
    ok(Command::new("chmod").arg("0750").arg(&src));
    for (path, when) in [("sub/f", "2004-04-04"), ("ln", "2001-01-01"), ("fifo", "2005-05-05"), ("sub", "2002-02-02"), (".", "2003-03-03")] {
        ok(Command::new("touch").arg("-h").arg("-d").arg(format!("{when} 00:00 UTC")).arg(src.join(path)));
    }
    let a = d.path().join("dot.tar");
    ok(Command::new("tar").arg("--sort=name").arg("-cf").arg(&a).arg("-C").arg(&src).arg("."));
    for indexed in [false, true] {
        if indexed {
            ok(tarfs().arg("index").arg(&a));
        }
        let (theirs, ours) = (d.path().join(format!("theirs-{indexed}")), d.path().join(format!("ours-{indexed}")));
        for dest in [&theirs, &ours] {
            std::fs::create_dir(dest).unwrap();
            ok(Command::new("chmod").arg("0700").arg(dest));
        }
        ok(Command::new("tar").arg("-xf").arg(&a).arg("-C").arg(&theirs));
        ok(tarfs().arg("extract").arg(&a).arg("-C").arg(&ours));
        let want = stats(&theirs);
        assert_eq!(want[0], (String::new(), 0o750, 1_046_649_600), "GNU tar gives the destination the ./ member's mode and time");
        assert_eq!(stats(&ours), want, "indexed: {indexed}");
    }
    // With --strip-components, ./ has no component left: the destination keeps its own.
    let dest = d.path().join("stripped");
    std::fs::create_dir(&dest).unwrap();
    ok(Command::new("chmod").arg("0700").arg(&dest));
    ok(tarfs().arg("extract").arg("--strip-components=1").arg(&a).arg("-C").arg(&dest));
    assert_eq!(stats(&dest)[0].1, 0o700);
}

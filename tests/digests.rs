//! Member digests (issue #36): the SHA-256 the index records for each member equals
//! `sha256sum` of the file `tar -xf` extracts (the writer matrix, sparse members included, and
//! the corpus), through `tarfs ls --digest` and `sha256sum -c`; one byte flipped in a member's
//! data (same length, mtime kept) is found by `scrub` (naming the member and its bytes), `cat`,
//! `extract` and the FUSE mount (EIO); compressed archives get their digests in their one
//! decoding pass (a pipe, which cannot be read twice); a grown archive's re-index keeps them.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::trees::{make_tree, writer_matrix};
use common::{corpus_dir, ok, tarfs, truth};

/// `tarfs ls --digest` of `archive` (indexed first with `--digests` in `format`), checked by
/// `sha256sum -c` in a directory where `tar -xf` extracted it: `Err` with what failed.
fn sums_hold(archive: &Path, format: &str, tmp: &Path) -> Result<usize, String> {
    let indexed = tarfs().args(["index", "--force", "--digests", "--format", format]).arg(archive).output().unwrap();
    if !indexed.status.success() {
        return Err(format!("index: {}", String::from_utf8_lossy(&indexed.stderr)));
    }
    let sums = tarfs().args(["ls", "--digest"]).arg(archive).output().unwrap();
    if !sums.status.success() {
        return Err(format!("ls --digest: {}", String::from_utf8_lossy(&sums.stderr)));
    }
    let dir = tempfile::tempdir_in(tmp).unwrap();
    let t = Command::new("tar").arg("-xf").arg(archive).arg("-C").arg(dir.path()).output().unwrap();
    if !t.status.success() {
        return Err(format!("tar -xf: {}", String::from_utf8_lossy(&t.stderr)));
    }
    if sums.stdout.is_empty() {
        return Ok(0); // no regular file (sha256sum -c refuses an empty list)
    }
    let list = dir.path().join("..").join(format!("{}.sums", dir.path().file_name().unwrap().to_string_lossy()));
    fs::write(&list, &sums.stdout).unwrap();
    let check = Command::new("sha256sum").arg("-c").arg("--quiet").arg(&list).current_dir(dir.path()).output().unwrap();
    if !check.status.success() {
        return Err(format!("sha256sum -c: {}{}", String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr)));
    }
    Ok(sums.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count())
}

/// The Python v2 reader (`tests/v2_reader.py`) checks the v2 index of `archive`: the digests
/// part's shape and each member's digests against its data.
fn python_checks(archive: &Path) -> Result<(), String> {
    let index = PathBuf::from(format!("{}.tarfs", archive.display()));
    let out = Command::new("python3").arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/v2_reader.py")).arg(&index).arg(archive).output().unwrap();
    match out.status.success() && String::from_utf8_lossy(&out.stdout).contains("\"sha256\"") {
        true => Ok(()),
        false => Err(format!("v2_reader.py: {}", String::from_utf8_lossy(&out.stderr))),
    }
}

/// An archive with members of several chunks (`big`, 10 MB; `holes`, a sparse 9 MiB file),
/// a small one, and names `sha256sum` escapes.
fn chunky_archive(tmp: &Path) -> PathBuf {
    let src = tmp.join("chunky");
    fs::create_dir_all(&src).unwrap();
    common::write_pattern(&src.join("big"), 10_000_000, 7);
    fs::write(src.join("small"), "hi\n").unwrap();
    fs::write(src.join("back\\slash"), "b").unwrap();
    fs::write(src.join("new\nline"), "n").unwrap();
    let f = fs::File::create(src.join("holes")).unwrap();
    f.set_len(9 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[5u8; 70_000], 5 << 20).unwrap();
    let a = tmp.join("chunky.tar");
    ok(Command::new("tar").arg("--format=gnu").arg("-S").arg("-cf").arg(&a).arg("-C").arg(&src).arg("."));
    a
}

#[test]
fn digests_are_sha256sum_of_what_tar_extracts_for_the_writer_matrix() {
    let tmp = tempfile::tempdir().unwrap();
    make_tree(tmp.path());
    let mut archives = writer_matrix(tmp.path());
    archives.push(chunky_archive(tmp.path()));
    let mut failures = Vec::new();
    for (k, a) in archives.iter().enumerate() {
        for format in ["v1", "v2"] {
            match sums_hold(a, format, tmp.path()) {
                Ok(n) if n >= 5 => {}
                Ok(n) => failures.push(format!("{} ({format}): only {n} files listed", a.display())),
                Err(e) => failures.push(format!("{} ({format}): {e}", a.display())),
            }
        }
        if let Err(e) = python_checks(a) {
            failures.push(format!("{} (k {k}): {e}", a.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn digests_are_sha256sum_of_what_tar_extracts_for_the_corpus() {
    let tmp = tempfile::tempdir().unwrap();
    // CI takes every other archive (the binary stays well under a minute).
    let step = if std::env::var("CI").is_ok() { 2 } else { 1 };
    let (mut checked, mut failures) = (0, Vec::new());
    let archives = truth().into_iter().filter(|t| t["python_ok"] == true && t["go_ok"] == true && t["gnu_ok"] != false).map(|t| corpus_dir().join(t["file"].as_str().unwrap()));
    for (k, original) in archives.enumerate().filter(|(k, _)| k % step == 0) {
        if common::trees::reads_otherwise_than_gnu_tar(&original) {
            continue;
        }
        let a = tmp.path().join(format!("c{k}.{}", original.file_name().unwrap().to_string_lossy()));
        fs::copy(&original, &a).unwrap();
        // A sparse member of tens of GB (pax-sparse) would have sha256sum hash its zeros for
        // minutes: archives of over 64 MiB of content are left out.
        let listed = tarfs().args(["ls", "--json"]).arg(&a).output().unwrap();
        if !listed.status.success() {
            continue; // what tarfs refuses (tests/corpus.rs compares the readers)
        }
        let content: u64 = String::from_utf8_lossy(&listed.stdout).lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["size"].as_u64()).sum();
        let probe = tempfile::tempdir_in(tmp.path()).unwrap();
        if content > 64 << 20 || !Command::new("tar").arg("-xf").arg(&a).arg("-C").arg(probe.path()).output().unwrap().status.success() {
            continue;
        }
        match sums_hold(&a, if k % 2 == 0 { "v1" } else { "v2" }, tmp.path()) {
            Ok(_) => checked += 1,
            Err(e) => failures.push(format!("{}: {e}", original.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked * step >= 60, "only {checked} corpus archives checked");
    eprintln!("{checked} corpus archives: digests equal sha256sum of tar -xf");
}

/// Flips one bit of `archive` at byte `at`, keeping its length and mtime.
fn flip(archive: &Path, at: u64) {
    let mut b = fs::read(archive).unwrap();
    b[at as usize] ^= 1;
    let mtime = fs::metadata(archive).unwrap().modified().unwrap();
    fs::write(archive, b).unwrap();
    fs::File::options().write(true).open(archive).unwrap().set_modified(mtime).unwrap();
}

/// Where member `name`'s data starts in `archive` (Python's tarfile).
fn data_offset(archive: &Path, name: &str) -> u64 {
    common::python_members(archive).iter().find(|m| m["name"].as_str().is_some_and(|n| n.trim_start_matches("./") == name)).unwrap()["offset_data"].as_u64().unwrap()
}

/// Runs tarfs with `args`: (exit code, stdout length, stderr).
fn run(args: &[&str], archive: &Path) -> (i32, usize, String) {
    let out = tarfs().args(args).arg(archive).output().unwrap();
    (out.status.code().unwrap_or(-1), out.stdout.len(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_flipped_byte_is_found_by_scrub_cat_and_extract() {
    for format in ["v1", "v2"] {
        let tmp = tempfile::tempdir().unwrap();
        let a = chunky_archive(tmp.path());
        ok(tarfs().args(["index", "--digests", "--format", format]).arg(&a));
        assert_eq!(run(&["scrub"], &a).0, 0, "{format}: a sound archive scrubs clean");
        // Byte 5,000,000 of big: its second chunk; and the small member's first byte.
        flip(&a, data_offset(&a, "big") + 5_000_000);
        flip(&a, data_offset(&a, "small"));
        let (code, _, err) = run(&["scrub"], &a);
        assert_eq!(code, 1, "{format}: scrub: {err}");
        assert!(err.contains("./big (bytes 4194304..8388608)") && err.contains("./small (bytes 0..3)") && err.contains("2 damaged members"), "{format}: scrub said: {err}");
        // cat gives the first chunk of big, whose digest holds, and nothing of the damaged one.
        let out = tarfs().arg("cat").arg(&a).arg("./big").output().unwrap();
        assert!(!out.status.success() && out.stdout.len() == 4 << 20, "{format}: cat gave {} bytes", out.stdout.len());
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("chunky.tar") && said.contains("./big") && said.contains("bytes 4194304..8388608"), "{format}: cat said {said}");
        let out = tarfs().arg("cat").arg(&a).arg("./small").output().unwrap();
        assert!(!out.status.success() && out.stdout.is_empty(), "{format}: cat of small gave {:?}", out.stdout);
        let out = tarfs().arg("cat").arg("--no-verify").arg(&a).arg("./big").output().unwrap();
        assert!(out.status.success() && out.stdout.len() == 10_000_000, "{format}: cat --no-verify");
        ok(tarfs().arg("cat").arg(&a).arg("./holes"));
        // extract leaves no damaged file, and the others.
        let dest = tmp.path().join("out");
        fs::create_dir_all(&dest).unwrap();
        let out = tarfs().arg("extract").arg(&a).arg("-C").arg(&dest).output().unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && said.contains("./big: damaged") && said.contains("./small: damaged"), "{format}: extract said {said}");
        assert!(!dest.join("big").exists() && !dest.join("small").exists() && dest.join("holes").exists(), "{format}: extract left damaged files");
    }
}

#[test]
fn a_flipped_byte_fails_the_reads_of_the_mount_that_touch_it() {
    use std::os::unix::fs::FileExt;
    if !Path::new("/dev/fuse").exists() || Command::new("fusermount3").arg("-V").output().is_err() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI must have /dev/fuse and fusermount3");
        eprintln!("\n*** SKIPPED: no /dev/fuse or fusermount3 ***\n");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let a = chunky_archive(tmp.path());
    ok(tarfs().args(["index", "--digests"]).arg(&a));
    flip(&a, data_offset(&a, "big") + 5_000_000);
    let mp = tmp.path().join("mnt");
    fs::create_dir_all(&mp).unwrap();
    // Not --fuse: an index with digests mounts through FUSE, which checks them.
    ok(tarfs().arg("mount").arg(&a).arg(&mp));
    let eio = |r: std::io::Result<usize>| r.err().and_then(|e| e.raw_os_error()) == Some(libc::EIO);
    let read = || -> (std::io::Result<usize>, std::io::Result<usize>, std::io::Result<Vec<u8>>, std::io::Result<Vec<u8>>) {
        let f = fs::File::open(mp.join("big")).unwrap();
        let mut buf = vec![0u8; 4096];
        (f.read_at(&mut buf, 1000), f.read_at(&mut buf, 5_000_000), fs::read(mp.join("big")), fs::read(mp.join("small")))
    };
    let (first, damaged, whole, small) = read();
    let _ = Command::new("fusermount3").arg("-u").arg(&mp).output();
    assert_eq!(first.ok(), Some(4096), "a read of the first chunk, whose digest holds");
    assert!(eio(damaged), "a read of the damaged chunk must fail with EIO");
    assert!(whole.is_err_and(|e| e.raw_os_error() == Some(libc::EIO)), "reading all of big must fail with EIO");
    assert_eq!(small.unwrap(), b"hi\n");
}

#[test]
fn compressed_archives_get_digests_in_their_one_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let a = chunky_archive(tmp.path());
    ok(tarfs().args(["index", "--digests"]).arg(&a));
    let want = ok(tarfs().args(["ls", "--digest"]).arg(&a)).stdout;
    for (ext, cmd) in [("gz", "gzip"), ("xz", "xz"), ("zst", "zstd -q"), ("bz2", "bzip2")] {
        let z = tmp.path().join(format!("chunky.tar.{ext}"));
        ok(Command::new("sh").arg("-c").arg(format!("{cmd} -c {} > {}", a.display(), z.display())));
        // No --digests: a compressed archive always gets them.
        ok(tarfs().arg("index").arg(&z));
        assert_eq!(ok(tarfs().args(["ls", "--digest"]).arg(&z)).stdout, want, "{ext}: ls --digest");
        assert_eq!(run(&["scrub"], &z).0, 0, "{ext}: scrub");
        // From a pipe, which cannot be read twice: the digests come from the one pass.
        let side = tmp.path().join(format!("piped-{ext}.tarfs"));
        ok(Command::new("sh").arg("-c").arg(format!("cat {} | {} index - --output {}", z.display(), env!("CARGO_BIN_EXE_tarfs"), side.display())).env("XDG_CACHE_HOME", common::NOWHERE));
        assert_eq!(ok(tarfs().args(["ls", "--digest", "--index"]).arg(&side).arg(&z)).stdout, want, "{ext}: through the piped index");
    }
}

#[test]
fn a_grown_archive_keeps_its_digests_and_adds_the_new_members() {
    let tmp = tempfile::tempdir().unwrap();
    let a = chunky_archive(tmp.path());
    ok(tarfs().args(["index", "--digests"]).arg(&a));
    fs::write(tmp.path().join("later"), "appended\n").unwrap();
    ok(Command::new("tar").arg("-rf").arg(&a).arg("-C").arg(tmp.path()).arg("later"));
    // No --digests: the old index had them, so the new one keeps and extends them.
    let out = ok(tarfs().args(["index", "--json"]).arg(&a));
    assert!(String::from_utf8_lossy(&out.stdout).contains("kept"), "not re-indexed as grown: {}", String::from_utf8_lossy(&out.stdout));
    let sums = String::from_utf8(ok(tarfs().args(["ls", "--digest"]).arg(&a)).stdout).unwrap();
    let later = tarfs::digest::hex(&tarfs::digest::sha256(b"appended\n"));
    assert!(sums.lines().any(|l| l == format!("{later}  later")), "{sums}");
    let dir = tempfile::tempdir_in(tmp.path()).unwrap();
    ok(Command::new("tar").arg("-xf").arg(&a).arg("-C").arg(dir.path()));
    fs::write(tmp.path().join("SUMS"), &sums).unwrap();
    ok(Command::new("sha256sum").arg("-c").arg("--quiet").arg(tmp.path().join("SUMS")).current_dir(dir.path()));
    assert_eq!(sums.lines().count(), 6, "{sums}");
}

#[test]
fn index_json_pins_the_index_by_its_sha256() {
    let tmp = tempfile::tempdir().unwrap();
    let a = chunky_archive(tmp.path());
    let out = ok(tarfs().args(["index", "--json"]).arg(&a));
    let first: serde_json::Value = serde_json::from_slice(out.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    let bytes = fs::read(format!("{}.tarfs", a.display())).unwrap();
    assert_eq!(first["index_sha256"].as_str().unwrap(), tarfs::digest::hex(&tarfs::digest::sha256(&bytes)));
}

/// `embed --digests` records them in the embedded index, in both versions, whichever way the
/// index goes in: by displacement (the chunky archive, whose members over 4 MiB have chunk
/// digests and whose sparse member is hashed as it extracts), into a new file (`--output`),
/// and by a shift (GNU tar's archive with a hard link to its first member); `sha256sum -c`
/// holds for what `tar -xf` extracts, and a byte flipped afterwards is found by `scrub`.
#[test]
fn embed_records_digests_in_the_embedded_index() {
    let tmp = tempfile::tempdir().unwrap();
    // A hard link to the first member: displacing it would put it after its link.
    let linked = tmp.path().join("linked.tar");
    let script = "import io, sys, tarfile\nwith tarfile.open(sys.argv[1], 'w', format=tarfile.GNU_FORMAT) as t:\n    for n, d in [('first', b'x' * 3000), ('tree/dir/f1', b'y' * 700)]:\n        ti = tarfile.TarInfo(n); ti.size = len(d); t.addfile(ti, io.BytesIO(d))\n    ti = tarfile.TarInfo('hard'); ti.type = tarfile.LNKTYPE; ti.linkname = 'first'; t.addfile(ti)\n";
    ok(Command::new("python3").arg("-c").arg(script).arg(&linked));
    for format in ["v1", "v2"] {
        for (name, how) in [("chunky", "in place"), ("chunky", "output"), ("linked", "in place")] {
            let src = if name == "chunky" { chunky_archive(tmp.path()) } else { linked.clone() };
            let a = tmp.path().join(format!("{name}-{format}-{}.tar", how.replace(' ', "-")));
            let mut embed = tarfs();
            embed.args(["embed", "-v", "--digests", "--format", format]);
            let said = match how {
                "output" => String::from_utf8_lossy(&ok(embed.arg("--output").arg(&a).arg(&src)).stderr).into_owned(),
                _ => {
                    fs::copy(&src, &a).unwrap();
                    String::from_utf8_lossy(&ok(embed.arg(&a)).stderr).into_owned()
                }
            };
            let label = format!("{} ({format}, {how}): {said}", a.display());
            let way = match (name, how) {
                (_, "output") => "index first",
                ("linked", _) => "shifted",
                _ => "displaced",
            };
            assert!(said.contains(way), "{label}");
            let sums = ok(tarfs().args(["ls", "--digest"]).arg(&a)).stdout;
            let x = tempfile::tempdir_in(tmp.path()).unwrap();
            ok(Command::new("tar").arg("-xf").arg(&a).arg("-C").arg(x.path()));
            let list = tmp.path().join("SUMS");
            fs::write(&list, &sums).unwrap();
            ok(Command::new("sha256sum").arg("-c").arg("--quiet").arg(&list).current_dir(x.path()));
            assert!(sums.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count() >= 2, "{label}");
            assert_eq!(run(&["scrub"], &a).0, 0, "{label}");
            let member = if name == "chunky" { "small" } else { "tree/dir/f1" };
            flip(&a, data_offset(&a, member));
            let (code, _, err) = run(&["scrub"], &a);
            assert!(code == 1 && err.contains(member), "{label}: scrub after a flip: {err}");
        }
    }
}

//! Readers that never panic, never run away, and never answer wrong (issue "Readers that never
//! panic, never run away, and never answer wrong"): one test per case fixed.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{gnu_archive, header, ok, run, tarfs, write_pattern};
use tempfile::TempDir;

/// A pax record, `LEN key=value\n`.
fn record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while format!("{len}{body}").len() != len {
        len += 1;
    }
    format!("{len}{body}").into_bytes()
}

fn padded(mut v: Vec<u8>) -> Vec<u8> {
    v.resize(v.len().div_ceil(512) * 512, 0);
    v
}

fn pax(records: &[(&str, &str)]) -> Vec<u8> {
    let data: Vec<u8> = records.iter().flat_map(|(k, v)| record(k, v)).collect();
    let mut out = header("PaxHeaders/x", b'x', data.len() as u64, "").to_vec();
    out.extend(padded(data));
    out
}

fn run_with_stdin(args: &[&str], input: &[u8]) -> (Option<i32>, String) {
    let mut c = Command::new("timeout").arg("20").arg(env!("CARGO_BIN_EXE_tarfs")).args(args).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = c.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = c.wait_with_output().unwrap();
    writer.join().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `DIR/NAME.tar` of `n` small files `f000`.. (100 bytes and more), GNU format.
fn small_archive(dir: &Path, name: &str, n: usize) -> PathBuf {
    gnu_archive(dir, name, "gnu", n, |i| (format!("f{i:03}"), 100 + i, i as u64))
}

// Case 1: a pax sparse 1.0 member whose data ends the file with no padding.
#[test]
fn a_sparse_map_cut_short_is_an_error_in_every_command() {
    let tmp = TempDir::new().unwrap();
    let mut bytes = pax(&[("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"), ("GNU.sparse.name", "s"), ("GNU.sparse.realsize", "4096")]);
    bytes.extend(header("GNUSparseFile.0/s", b'0', 612, ""));
    bytes.extend(b"1\n0\n100\n");
    bytes.resize(1636, b'd');
    assert_eq!(bytes.len(), 1636);
    let a = tmp.path().join("sparse.tar");
    fs::write(&a, &bytes).unwrap();
    let out = tmp.path().join("x");
    fs::create_dir_all(&out).unwrap();
    for args in [&["ls"][..], &["ls", "-l"], &["index"], &["verify"], &["cat"], &["extract", "-C"], &["embed"], &["csv"]] {
        let mut c = tarfs();
        c.arg(args[0]).arg(&a).args(&args[1..]);
        if args[0] == "cat" {
            c.arg("s");
        }
        if args[0] == "extract" {
            c.arg(&out);
        }
        let (code, err) = run(&mut c);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        // (verify finds no index to check: index failed above.)
        assert!((err.contains("at byte") || args[0] == "verify") && !err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(fs::read(&a).unwrap(), bytes);
    }
    let (code, err) = run_with_stdin(&["index", "-", "--output", tmp.path().join("s.tarfs").to_str().unwrap()], &bytes);
    assert_eq!(code, Some(1), "{err}");
}

// Case 2: a pax size near 2^64 in a stream.
#[test]
fn a_size_near_two_to_the_64_in_a_stream_ends_at_once() {
    let tmp = TempDir::new().unwrap();
    let mut bytes = header("first", b'0', 3, "").to_vec();
    bytes.extend(padded(b"abc".to_vec()));
    bytes.extend(pax(&[("size", "18446744073709549979")]));
    bytes.extend(header("huge", b'0', 0, ""));
    bytes.extend([0u8; 2048]);
    let (code, err) = run_with_stdin(&["index", "-", "--output", tmp.path().join("s.tarfs").to_str().unwrap()], &bytes);
    assert_eq!(code, Some(1), "{err}");
    assert!(!tmp.path().join("s.tarfs").exists());
    let gz = tmp.path().join("h.tar.gz");
    let mut enc = flate2::write::GzEncoder::new(fs::File::create(&gz).unwrap(), flate2::Compression::default());
    enc.write_all(&bytes).unwrap();
    enc.finish().unwrap();
    for args in [&["index"][..], &["ls"], &["verify"]] {
        let (code, err) = run(Command::new("timeout").arg("20").arg(env!("CARGO_BIN_EXE_tarfs")).args(args).arg(&gz));
        assert_eq!(code, Some(1), "{args:?}: {err}");
    }
}

// Case 5: an unwritable stderr.
#[test]
fn an_unwritable_stderr_stops_nothing() {
    let tmp = TempDir::new().unwrap();
    let d = tmp.path().join("d");
    fs::create_dir_all(&d).unwrap();
    for n in ["a", "b", "c"] {
        small_archive(&d, n, 5);
        fs::remove_dir_all(d.join(format!("{n}-src"))).unwrap();
    }
    fs::write(d.join("bad.tar"), vec![b'x'; 1024]).unwrap();
    let full = || fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = tarfs().arg("index").arg(&d).stderr(full()).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "bad.tar fails; the others are indexed");
    for n in ["a", "b", "c"] {
        assert!(d.join(format!("{n}.tar.tarfs")).exists());
    }
    fs::remove_file(d.join("bad.tar")).unwrap();
    let out = tarfs().arg("verify").arg(&d).stderr(full()).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let out = tarfs().arg("-v").arg("embed").arg(&d).stderr(full()).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let out = tarfs().arg("-v").arg("ls").arg(d.join("a.tar")).stderr(full()).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}

// Case 6: a panic in one archive's job is that archive's failure; SIGTERM is handled.
#[test]
fn a_panic_in_one_archive_does_not_stop_the_batch() {
    let tmp = TempDir::new().unwrap();
    for n in ["a", "b", "c"] {
        small_archive(tmp.path(), n, 5);
        fs::remove_dir_all(tmp.path().join(format!("{n}-src"))).unwrap();
    }
    let out = tarfs().arg("index").arg("--json").arg(tmp.path()).env("TARFS_PANIC_ON", "b.tar").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json = String::from_utf8_lossy(&out.stdout);
    assert_eq!(json.lines().filter(|l| l.contains("\"type\":\"archive\"")).count(), 3, "{json}");
    assert!(json.lines().any(|l| l.contains("b.tar") && l.contains("internal error")), "{json}");
    assert!(tmp.path().join("a.tar.tarfs").exists() && tmp.path().join("c.tar.tarfs").exists());
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 failed"));
}

#[test]
fn sigterm_stops_a_batch_like_sigint() {
    let tmp = TempDir::new().unwrap();
    let d = tmp.path().join("many");
    fs::create_dir_all(&d).unwrap();
    let one = small_archive(tmp.path(), "one", 20);
    for i in 0..400 {
        fs::copy(&one, d.join(format!("a{i:03}.tar"))).unwrap();
    }
    // The batch stalls on one archive (for as long as its marker is there), so that the signal
    // comes while it runs, however fast the machine.
    let marker = d.join("a010.tar.stall");
    fs::write(&marker, b"").unwrap();
    let child = tarfs().args(["index", "-j", "1"]).arg(&d).env("TARFS_STALL_ON", "a010.tar").stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    // Once the batch is under way, terminate it.
    while !fs::read_dir(&d).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".tarfs")) {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    ok(Command::new("kill").arg("-TERM").arg(pid.to_string()));
    std::thread::sleep(std::time::Duration::from_millis(100));
    fs::remove_file(&marker).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let done = fs::read_dir(&d).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".tar.tarfs")).count();
    assert!(done < 400, "the batch finished before the signal: make it longer");
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted") && err.contains("not started"), "{err}");
    // Every sidecar written is whole.
    ok(tarfs().arg("verify").arg(d.join("a000.tar")));
    assert!(!fs::read_dir(&d).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".tarfs-tmp")));
}

// Case 8: an archive replaced by another of the same length.
#[test]
fn a_replaced_archive_of_the_same_length_is_not_read_through_the_old_index() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("x");
    let other = tmp.path().join("y");
    for (d, prefix) in [(&src, "old"), (&other, "new")] {
        fs::create_dir_all(d).unwrap();
        for i in 0..40 {
            write_pattern(&d.join(format!("{prefix}{i:03}")), 1000, i);
        }
        // The same last member in both: checking the last entry alone cannot tell them apart.
        write_pattern(&d.join("zzz-last"), 1000, 99);
    }
    let a = tmp.path().join("a.tar");
    let b = tmp.path().join("b.tar");
    let same = ["--format=gnu", "--sort=name", "--mtime=@1700000000", "--owner=0", "--group=0", "--numeric-owner", "-cf"];
    ok(Command::new("tar").args(same).arg(&a).arg("-C").arg(&src).arg("."));
    ok(Command::new("tar").args(same).arg(&b).arg("-C").arg(&other).arg("."));
    assert_eq!(fs::metadata(&a).unwrap().len(), fs::metadata(&b).unwrap().len());
    ok(tarfs().arg("index").arg(&a));
    fs::copy(&b, &a).unwrap();
    let out = ok(tarfs().arg("ls").arg(&a));
    let names = String::from_utf8_lossy(&out.stdout);
    assert!(names.contains("new000") && !names.contains("old000"), "{names}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("stale"));
    let dest = tmp.path().join("out");
    fs::create_dir_all(&dest).unwrap();
    ok(tarfs().arg("extract").arg(&a).arg("-C").arg(&dest));
    assert!(dest.join("new039").exists());
    let (code, err) = run(tarfs().arg("verify").arg(&a));
    assert_eq!(code, Some(1), "{err}");
}

// Case 9: an unreadable sidecar.
#[test]
fn an_unreadable_sidecar_is_passed_over() {
    let tmp = TempDir::new().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let a = small_archive(tmp.path(), "a", 10);
    fs::set_permissions(&a, fs::Permissions::from_mode(0o644)).unwrap();
    ok(tarfs().arg("index").arg(&a));
    fs::set_permissions(tmp.path().join("a.tar.tarfs"), fs::Permissions::from_mode(0o600)).unwrap();
    for args in [&["ls"][..], &["cat"]] {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(env!("CARGO_BIN_EXE_tarfs")).args(args).arg(&a);
        if args[0] == "cat" {
            c.arg("./f003");
        }
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(err.contains("cannot be read") && err.contains("scanning"), "{err}");
    }
}

// Case 10: a stale embedded index and a fresh CSV index.
#[test]
fn a_stale_embedded_index_gives_way_to_a_fresh_csv_index() {
    let tmp = TempDir::new().unwrap();
    let a = small_archive(tmp.path(), "a", 10);
    ok(tarfs().arg("embed").arg(&a));
    fs::write(tmp.path().join("late.txt"), b"late").unwrap();
    ok(Command::new("tar").arg("-rf").arg(&a).arg("-C").arg(tmp.path()).arg("late.txt"));
    ok(tarfs().arg("csv").arg(&a));
    let out = ok(tarfs().arg("-v").arg("ls").arg(&a));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("using CSV index member .tarindex_0.csv"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("late.txt"));
}

// Case 11: files followed by hard links to themselves.
#[test]
fn self_hard_links_extract_as_tar_does() {
    let tmp = TempDir::new().unwrap();
    let a = tmp.path().join("self.tar");
    let script = "import tarfile,sys,io\nwith tarfile.open(sys.argv[1],'w',format=tarfile.GNU_FORMAT) as t:\n for n in ['d/a','d/b']:\n  i=tarfile.TarInfo(n); i.size=5; t.addfile(i, io.BytesIO(b'hello'))\n for n in ['d/a','d/b']:\n  l=tarfile.TarInfo(n); l.type=tarfile.LNKTYPE; l.linkname=n; t.addfile(l)";
    ok(Command::new("python3").arg("-c").arg(script).arg(&a));
    let ours = tmp.path().join("ours");
    let theirs = tmp.path().join("theirs");
    fs::create_dir_all(&ours).unwrap();
    fs::create_dir_all(&theirs).unwrap();
    ok(tarfs().arg("extract").arg(&a).arg("-C").arg(&ours));
    ok(Command::new("tar").arg("-xf").arg(&a).arg("-C").arg(&theirs));
    for n in ["d/a", "d/b"] {
        assert_eq!(fs::read(ours.join(n)).unwrap(), b"hello");
        assert_eq!(fs::read(theirs.join(n)).unwrap(), b"hello");
    }
}

// Cases 14 and 15: -C must exist; cat of a directory prints the files under it, as tar -xO
// does (issue #30, item 11: it was an error).
#[test]
fn extract_needs_an_existing_directory_and_cat_prints_directories() {
    let tmp = TempDir::new().unwrap();
    let a = small_archive(tmp.path(), "a", 3);
    let missing = tmp.path().join("no/such/dir");
    let (code, err) = run(tarfs().arg("extract").arg(&a).arg("-C").arg(&missing));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no such directory"), "{err}");
    assert!(!tmp.path().join("no").exists());
    let theirs = ok(Command::new("tar").arg("-xOf").arg(&a).arg(".")).stdout;
    assert_eq!(theirs.len(), 100 + 101 + 102);
    assert_eq!(ok(tarfs().arg("cat").arg(&a).arg(".")).stdout, theirs);
}

// Case 16: a 444,749-byte path, as in node-tar's excessively-deep.tar.
#[test]
fn a_path_of_444_749_bytes_is_read() {
    let tmp = TempDir::new().unwrap();
    let a = tmp.path().join("deep.tar");
    let mut name = "a/".repeat(222_374);
    name.push('f');
    assert_eq!(name.len(), 444_749);
    let mut bytes = pax(&[("path", &name)]);
    bytes.extend(header("deep", b'0', 2, ""));
    bytes.extend(padded(b"ok".to_vec()));
    bytes.extend([0u8; 1024]);
    fs::write(&a, &bytes).unwrap();
    let out = ok(tarfs().arg("ls").arg(&a));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end().len(), 444_749);
    let py = ok(Command::new("python3").arg("-c").arg("import tarfile,sys\nprint(len(tarfile.open(sys.argv[1]).getnames()[0]))").arg(&a));
    assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), "444749");
}

// Case 3: pax global headers over a stream: the globals in force are carried, merged, not
// re-parsed per member; memory stays bounded.
#[test]
fn global_headers_over_a_stream_are_carried_in_bounded_memory() {
    let tmp = TempDir::new().unwrap();
    let a = tmp.path().join("g.tar");
    // 300 global headers of 500 KB each (150 MB of globals), each followed by a member.
    let script = "import tarfile,io,sys\nwith open(sys.argv[1],'wb') as f:\n t=tarfile.open(fileobj=f,mode='w',format=tarfile.PAX_FORMAT)\n for i in range(300):\n  f.write(tarfile.TarInfo._create_pax_generic_header({'comment':'x'*500000,'uname':'u%d'%i},tarfile.XGLTYPE,'utf-8'))\n  ti=tarfile.TarInfo('f%d'%i); ti.size=1; t.addfile(ti,io.BytesIO(b'1'))\n t.close()";
    ok(Command::new("python3").arg("-c").arg(script).arg(&a));
    let side = tmp.path().join("s.tarfs");
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(env!("CARGO_BIN_EXE_tarfs"))
        .args(["index", "-", "--output"])
        .arg(&side)
        .stdin(fs::File::open(&a).unwrap())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let kb: u64 = err.lines().last().unwrap().trim().parse().unwrap();
    assert!(kb < 64 * 1024, "indexing 150 MB of global headers from a stream took {kb} KiB");
    // The same index as from the mapped file, where globals are applied as met.
    let mapped = tmp.path().join("m.tarfs");
    ok(tarfs().arg("index").arg(&a).arg("--output").arg(&mapped));
    // The same but for what binds the mapped file's index to that file (its header record's
    // stamp, and so the extension header's hash of the header): a stream has no file to bind.
    assert!(common::unbound_index(&fs::read(&side).unwrap()) == common::unbound_index(&fs::read(&mapped).unwrap()), "the stream's index differs from the mapped file's");
    // A later global that empties a key deletes it.
    let mut state = Vec::new();
    tarfs::format::pax::merge_globals(&mut state, &record("uname", "a"), 1 << 20).unwrap();
    tarfs::format::pax::merge_globals(&mut state, &[record("comment", "c"), record("uname", "")].concat(), 1 << 20).unwrap();
    assert_eq!(state, record("comment", "c"));
    assert!(tarfs::format::pax::merge_globals(&mut state, &record("x", &"y".repeat(2000)), 1000).is_err());
}

// Case 12: owners are restored as GNU tar does for root, and setuid/setgid never stay on a file
// whose owner was not restored.
#[test]
fn owners_are_restored_and_setuid_never_outlives_them() {
    use std::os::unix::fs::MetadataExt;
    let tmp = TempDir::new().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let a = tmp.path().join("suid.tar");
    let script = "import tarfile,sys,io\nwith tarfile.open(sys.argv[1],'w',format=tarfile.GNU_FORMAT) as t:\n for n,uid,un in [('byid',1000,'no-such-user-x'),('byname',1234,'nobody')]:\n  i=tarfile.TarInfo(n); i.size=2; i.mode=0o4755; i.uid=uid; i.gid=uid; i.uname=un; i.gname=un; t.addfile(i, io.BytesIO(b'#!'))";
    ok(Command::new("python3").arg("-c").arg(script).arg(&a));
    fs::set_permissions(&a, fs::Permissions::from_mode(0o644)).unwrap();
    let root_out = tmp.path().join("root");
    fs::create_dir_all(&root_out).unwrap();
    ok(tarfs().arg("extract").arg(&a).arg("-C").arg(&root_out));
    let m = fs::metadata(root_out.join("byid")).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o7777), (1000, 0o4755), "owned by the archive's id, setuid kept");
    assert_eq!(fs::metadata(root_out.join("byname")).unwrap().uid(), 65534, "by name: nobody");
    let numeric = tmp.path().join("numeric");
    fs::create_dir_all(&numeric).unwrap();
    ok(tarfs().arg("extract").arg("--numeric-owner").arg(&a).arg("-C").arg(&numeric));
    assert_eq!(fs::metadata(numeric.join("byname")).unwrap().uid(), 1234);
    // Not root: the owner is not restored, so neither is setuid.
    let user_out = tmp.path().join("user");
    fs::create_dir_all(&user_out).unwrap();
    fs::set_permissions(&user_out, fs::Permissions::from_mode(0o777)).unwrap();
    ok(Command::new("setpriv").args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(env!("CARGO_BIN_EXE_tarfs")).arg("extract").arg(&a).arg("-C").arg(&user_out));
    let m = fs::metadata(user_out.join("byid")).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o7777), (65534, 0o755));
}

// Case 13: sparse members are extracted with holes.
#[test]
fn sparse_members_extract_with_holes() {
    use std::os::unix::fs::MetadataExt;
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let f = fs::File::create(src.join("holes.img")).unwrap();
    f.set_len(50 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"data in the middle", 20 << 20).unwrap();
    let a = tmp.path().join("s.tar");
    ok(Command::new("tar").args(["--format=posix", "--sparse", "-cf"]).arg(&a).arg("-C").arg(&src).arg("holes.img"));
    let out = tmp.path().join("out");
    fs::create_dir_all(&out).unwrap();
    ok(tarfs().arg("extract").arg(&a).arg("-C").arg(&out));
    let m = fs::metadata(out.join("holes.img")).unwrap();
    assert_eq!(m.len(), 50 << 20);
    assert!(m.blocks() * 512 < 1 << 20, "{} bytes allocated", m.blocks() * 512);
    assert_eq!(fs::read(out.join("holes.img")).unwrap(), fs::read(src.join("holes.img")).unwrap());
}

// Case 15: --strip-components.
#[test]
fn strip_components_as_tar_does() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("proj-1.0/lib")).unwrap();
    fs::write(src.join("proj-1.0/lib/a.c"), b"a").unwrap();
    fs::hard_link(src.join("proj-1.0/lib/a.c"), src.join("proj-1.0/b.c")).unwrap();
    let a = tmp.path().join("p.tar");
    ok(Command::new("tar").args(["--sort=name", "-cf"]).arg(&a).arg("-C").arg(&src).arg("proj-1.0"));
    let (ours, theirs) = (tmp.path().join("ours"), tmp.path().join("theirs"));
    fs::create_dir_all(&ours).unwrap();
    fs::create_dir_all(&theirs).unwrap();
    ok(tarfs().arg("extract").arg(&a).arg("-C").arg(&ours).arg("--strip-components").arg("1"));
    ok(Command::new("tar").arg("-xf").arg(&a).arg("-C").arg(&theirs).arg("--strip-components=1"));
    for p in ["lib/a.c", "b.c"] {
        assert_eq!(fs::read(ours.join(p)).unwrap(), fs::read(theirs.join(p)).unwrap(), "{p}");
    }
    assert!(!ours.join("proj-1.0").exists());
}

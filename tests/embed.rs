//! `tarfs embed`: the index in place as the first member, displaced members at the end (or the
//! whole archive shifted forward where moving members would change its meaning), and nothing
//! lost at any crash.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{corpus_dir, drop_pages, listing, ok, python_members, tarfs, truth, write_pattern};
use tempfile::TempDir;

/// Every member's name and content, as GNU tar extracts them (duplicates counted).
fn contents(archive: &Path) -> BTreeMap<String, Vec<Vec<u8>>> {
    let names = String::from_utf8(ok(Command::new("tar").arg("-tf").arg(archive)).stdout).unwrap();
    let py = python_members(archive);
    let mut m: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for (name, p) in names.lines().zip(&py) {
        if name == ".tarfs" {
            continue;
        }
        let data = if p["type"] == "0" && p["sparse"] == false {
            let at = p["offset_data"].as_u64().unwrap() as usize;
            fs::read(archive).unwrap()[at..at + p["size"].as_u64().unwrap() as usize].to_vec()
        } else {
            Vec::new()
        };
        m.entry(name.to_string()).or_default().push(data);
    }
    m
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The checks of the round trip: the tools list the original members plus `.tarfs` first, with
/// the same contents, and `tarfs verify` passes.
fn check_embedded(orig: &Path, a: &Path, gnu: bool, bsd: bool) {
    ok(tarfs().arg("verify").arg(a));
    for (tool, check) in [("tar", gnu), ("bsdtar", bsd)] {
        if !check {
            continue;
        }
        let before = listing(tool, orig);
        let after = listing(tool, a);
        assert_eq!(after[0], ".tarfs", "{tool} {a:?}");
        assert_eq!(sorted(after[1..].to_vec()), sorted(before), "{tool} {a:?}");
    }
    let py_before = python_members(orig);
    let py_after = python_members(a);
    assert_eq!(py_after[0]["name"], ".tarfs");
    assert_eq!(py_after.len(), py_before.len() + 1, "{a:?}");
    if gnu {
        assert_eq!(contents(a), contents(orig), "{a:?}");
        // Modes, owners, times and link targets, as tar -tv shows them.
        let tv = |f: &Path| {
            let out = ok(Command::new("tar").arg("-tvf").arg(f));
            sorted(String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.ends_with(" .tarfs")).map(str::to_string).collect())
        };
        assert_eq!(tv(a), tv(orig), "{a:?}");
    }
}

fn tree(dir: &Path, sizes: &[usize]) {
    fs::create_dir_all(dir).unwrap();
    for (i, len) in sizes.iter().enumerate() {
        write_pattern(&dir.join(format!("m{i:03}")), *len, i as u64);
    }
}

fn tar_of(tmp: &Path, name: &str, sizes: &[usize], format: &str) -> std::path::PathBuf {
    let src = tmp.join(format!("{name}-src"));
    tree(&src, sizes);
    let a = tmp.join(format!("{name}.tar"));
    ok(Command::new("tar").arg(format!("--format={format}")).arg("-C").arg(&src).arg("-cf").arg(&a).arg("."));
    a
}

#[test]
fn round_trip_tool_archives() {
    let tmp = TempDir::new().unwrap();
    let sizes: Vec<usize> = (0..40).map(|i| i * 131 % 3000).collect();
    let mut archives = Vec::new();
    for f in ["gnu", "oldgnu", "posix", "ustar", "v7"] {
        archives.push(tar_of(tmp.path(), f, &sizes, f));
    }
    // Sparse, long names, and bsdtar and Python writers.
    let src = tmp.path().join("x-src");
    tree(&src, &sizes[..10]);
    let f = fs::File::create(src.join("sparse.img")).unwrap();
    f.set_len(3 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"data", 1 << 20).unwrap();
    write_pattern(&src.join("l".repeat(200)), 77, 3);
    for (name, cmd) in [("gnu-sparse", vec!["tar", "--format=gnu", "-S", "-cf"]), ("posix-sparse", vec!["tar", "--format=posix", "-S", "-cf"]), ("bsd", vec!["bsdtar", "-cf"])] {
        let a = tmp.path().join(format!("{name}.tar"));
        ok(Command::new(cmd[0]).args(&cmd[1..]).arg(&a).arg("-C").arg(&src).arg("."));
        archives.push(a);
    }
    for fmt in ["PAX_FORMAT", "GNU_FORMAT", "USTAR_FORMAT"] {
        let a = tmp.path().join(format!("py-{fmt}.tar"));
        let short = tmp.path().join("short-src");
        tree(&short, &sizes[..12]);
        ok(Command::new("python3").arg("-c").arg(format!("import tarfile,sys\nwith tarfile.open(sys.argv[1],'w',format=tarfile.{fmt}) as t: t.add(sys.argv[2],'d')")).arg(&a).arg(&short));
        archives.push(a);
    }
    for a in archives {
        let orig = a.with_extension("orig");
        fs::copy(&a, &orig).unwrap();
        ok(tarfs().arg("embed").arg(&a));
        check_embedded(&orig, &a, true, true);
        // A second run leaves one .tarfs, untouched.
        let before = fs::read(&a).unwrap();
        let out = ok(tarfs().arg("-v").arg("embed").arg(&a));
        assert!(String::from_utf8_lossy(&out.stderr).contains("skipped (index up to date)"), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(fs::read(&a).unwrap(), before);
        assert_eq!(listing("tar", &a).iter().filter(|n| *n == ".tarfs").count(), 1);
        // --force rewrites it anyway, and it still verifies.
        let out = ok(tarfs().arg("-v").arg("embed").arg("--force").arg(&a));
        assert!(String::from_utf8_lossy(&out.stderr).contains("re-indexed in place"), "{}", String::from_utf8_lossy(&out.stderr));
        ok(tarfs().arg("verify").arg(&a));
        // Sparse members still read right through the embedded index.
        if a.to_string_lossy().contains("sparse") {
            let got = ok(tarfs().arg("cat").arg(&a).arg("./sparse.img")).stdout;
            assert_eq!(got, ok(Command::new("tar").arg("-xOf").arg(&orig).arg("./sparse.img")).stdout);
        }
    }
}

#[test]
fn round_trip_corpus_archives() {
    let tmp = TempDir::new().unwrap();
    let (mut embedded, mut refused) = (0, 0);
    for (i, t) in truth().iter().enumerate() {
        let file = t["file"].as_str().unwrap();
        if t["python_ok"] != true || t["expected_outcome"] != "valid" || t["members"].as_array().unwrap().is_empty() {
            continue;
        }
        let a = tmp.path().join(format!("c{i}.tar"));
        fs::copy(corpus_dir().join(file), &a).unwrap();
        fs::set_permissions(&a, fs::Permissions::from_mode(0o644)).unwrap();
        let orig = tmp.path().join(format!("c{i}.orig"));
        fs::copy(&a, &orig).unwrap();
        let out = tarfs().arg("embed").arg(&a).output().unwrap();
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("not changed"), "{file}: {err}");
            assert_eq!(fs::read(&a).unwrap(), fs::read(&orig).unwrap(), "{file}: changed by a refused embed");
            refused += 1;
            continue;
        }
        // Python's own reading quirks (docs/FORMAT.md) make its listing unreliable where GNU tar
        // and bsdtar disagree with it; compare with whichever tools read the original cleanly.
        let gnu = t["gnutar_rc"] == 0 && t["gnutar_stderr"] == "";
        let bsd = t["bsdtar_rc"] == 0 && t["bsdtar_stderr"] == "";
        ok(tarfs().arg("verify").arg(&a));
        for (tool, check) in [("tar", gnu), ("bsdtar", bsd)] {
            if check {
                let after = listing(tool, &a);
                assert_eq!(after[0], ".tarfs", "{file}");
                assert_eq!(sorted(after[1..].to_vec()), sorted(listing(tool, &orig)), "{file}: {tool}");
            }
        }
        embedded += 1;
    }
    assert!(embedded >= 80, "embedded {embedded}, refused {refused}");
}

/// Runs embed stopping after `step`, then checks the states the issue allows, recovers, and
/// checks the result.
fn crash_case(tmp: &Path, orig: &Path, step: &str, name: &str) {
    let a = tmp.join(format!("{name}-{step}.tar"));
    fs::copy(orig, &a).unwrap();
    // v1: the steps and the gaps these cases are built on are v1's (an entry a block).
    let out = tarfs().args(["embed", "--format", "v1"]).arg(&a).env("TARFS_CRASH_AFTER", step).output().unwrap();
    assert_eq!(out.status.code(), Some(86), "{name} {step}: {}", String::from_utf8_lossy(&out.stderr));
    let original = fs::read(orig).unwrap();
    let want = contents(orig);
    if fs::read(&a).unwrap() != original {
        // A valid archive with the same members, possibly duplicated at the end.
        let got = contents(&a);
        for (k, v) in &want {
            let g = got.get(k).unwrap_or_else(|| panic!("{name} {step}: {k} missing"));
            assert!(g.starts_with(v) || g.ends_with(v), "{name} {step}: {k} differs");
        }
        assert!(got.keys().all(|k| want.contains_key(k)), "{name} {step}: extra members");
    }
    let out = ok(tarfs().arg("-v").arg("recover").arg(&a));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    if said.contains("rolled back") {
        assert_eq!(fs::read(&a).unwrap(), original, "{name} {step}: not byte-identical after roll-back");
    } else {
        assert!(said.contains("finished"), "{name} {step}: {said}");
        ok(tarfs().arg("verify").arg(&a));
        assert_eq!(listing("tar", &a)[0], ".tarfs");
    }
    assert_eq!(contents(&a), want, "{name} {step}");
    // And embed completes afterwards.
    ok(tarfs().arg("embed").arg(&a));
    ok(tarfs().arg("verify").arg(&a));
}

const STEPS: [&str; 11] = [
    "embed-journal-written",
    "embed-copy-written",
    "embed-copy-synced",
    "embed-copy-head-written",
    "embed-copy-head-synced",
    "embed-header-written",
    "embed-header-synced",
    "embed-entries-written",
    "embed-entries-synced",
    "embed-index-written",
    "embed-index-synced",
];

#[test]
fn crash_at_every_step_gap_0_1_and_huge() {
    let tmp = TempDir::new().unwrap();
    // 10 one-block members: the index takes 12 blocks, six members cover them exactly (G = 0).
    let g0 = tar_of(tmp.path(), "g0", &[100; 10], "ustar");
    // A first member of two data blocks: seven blocks... 3+2+2+2+2+2 = 13 (G = 1).
    let mut s1 = vec![100; 10];
    s1[0] = 600;
    let g1 = tar_of(tmp.path(), "g1", &s1, "ustar");
    // A 3 MB first member: G is about 6000 blocks.
    let gh = tar_of(tmp.path(), "gh", &[3 << 20, 10, 20], "gnu");
    for (name, orig, gap) in [("g0", &g0, 0u64), ("g1", &g1, 1), ("gh", &gh, 6000)] {
        // The gap is what the case says it is.
        let probe = tmp.path().join(format!("{name}-probe.tar"));
        fs::copy(orig, &probe).unwrap();
        ok(tarfs().args(["embed", "--format", "v1"]).arg(&probe));
        let first = &python_members(&probe)[0];
        let members = python_members(orig).len() as u64;
        let size_blocks = first["size"].as_u64().unwrap() / 512;
        // The index's extension data (a zero block, then the extension) is part of the index.
        let bytes = fs::read(&probe).unwrap();
        let at = first["offset_data"].as_u64().unwrap() as usize;
        let ext_len = u64::from_be_bytes(bytes[at + 112..at + 120].try_into().unwrap());
        let ext_blocks = if bytes[at + 69] & 8 != 0 { 1 + ext_len / 512 } else { 0 };
        let g = size_blocks - (members + 1) - ext_blocks;
        if gap < 6000 {
            assert_eq!(g, gap, "{name}");
        } else {
            assert!(g > gap, "{name}: gap {g}");
        }
        for step in STEPS {
            crash_case(tmp.path(), orig, step, name);
        }
    }
}

#[test]
fn reindex_in_place_and_crashes_there() {
    let tmp = TempDir::new().unwrap();
    let a = tar_of(tmp.path(), "r", &[3 << 20, 10, 20, 30], "gnu");
    ok(tarfs().arg("embed").arg(&a));
    // Append a member: the index no longer covers it, and the big gap has room for a new one.
    write_pattern(&tmp.path().join("new.txt"), 5000, 1);
    ok(Command::new("tar").arg("-rf").arg(&a).arg("-C").arg(tmp.path()).arg("new.txt"));
    assert!(!tarfs().arg("verify").arg(&a).output().unwrap().status.success());
    for step in ["reindex-journal-written", "reindex-header-written", "reindex-entries-written", "reindex-entries-synced", "reindex-index-written"] {
        let c = tmp.path().join(format!("r-{step}.tar"));
        fs::copy(&a, &c).unwrap();
        let out = tarfs().arg("embed").arg(&c).env("TARFS_CRASH_AFTER", step).output().unwrap();
        assert_eq!(out.status.code(), Some(86), "{step}");
        ok(Command::new("tar").arg("-tf").arg(&c));
        ok(tarfs().arg("recover").arg(&c));
        assert_eq!(contents(&c), contents(&a), "{step}");
    }
    let out = ok(tarfs().arg("-v").arg("embed").arg(&a));
    assert!(String::from_utf8_lossy(&out.stderr).contains("re-indexed in place"), "{}", String::from_utf8_lossy(&out.stderr));
    ok(tarfs().arg("verify").arg(&a));
    assert_eq!(ok(tarfs().arg("cat").arg(&a).arg("new.txt")).stdout, fs::read(tmp.path().join("new.txt")).unwrap());
    assert_eq!(listing("tar", &a).iter().filter(|n| *n == ".tarfs").count(), 1);
}

#[test]
fn reindex_that_does_not_fit_displaces_again() {
    let tmp = TempDir::new().unwrap();
    let a = tar_of(tmp.path(), "d", &[100; 10], "ustar");
    let orig = tmp.path().join("d.orig");
    fs::copy(&a, &orig).unwrap();
    ok(tarfs().arg("embed").arg(&a));
    let src = tmp.path().join("more");
    tree(&src, &[100; 30]);
    for i in 0..30 {
        // Distinct names: a name that occurs twice would make moving members change the winner.
        ok(Command::new("tar").arg("-rf").arg(&a).arg("-C").arg(tmp.path()).arg(format!("more/m{i:03}")));
    }
    ok(tarfs().arg("embed").arg(&a));
    ok(tarfs().arg("verify").arg(&a));
    let names = listing("tar", &a);
    assert_eq!(names.iter().filter(|n| *n == ".tarfs").count(), 1);
    assert_eq!(names.len(), 1 + 11 + 30, "the 10 files and ./, then 30 appended");
}

#[test]
fn refusals_leave_the_file_untouched() {
    let tmp = TempDir::new().unwrap();
    let a = tar_of(tmp.path(), "a", &[100, 200], "ustar");
    let ro = tmp.path().join("ro.tar");
    fs::copy(&a, &ro).unwrap();
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o444)).unwrap();
    let gz = tmp.path().join("z.tar");
    ok(Command::new("tar").arg("-czf").arg(&gz).arg("-C").arg(tmp.path()).arg("a-src"));
    let trail = tmp.path().join("t.tar");
    let mut bytes = fs::read(&a).unwrap();
    let n = bytes.len();
    bytes[n - 1] = 1;
    fs::write(&trail, &bytes).unwrap();
    let glob = tmp.path().join("g.tar");
    ok(Command::new("python3")
        .arg("-c")
        .arg("import tarfile,io,sys\nwith tarfile.open(sys.argv[1],'w',format=tarfile.PAX_FORMAT,pax_headers={'uname':'x'}) as t:\n i=tarfile.TarInfo('f'); i.size=1; t.addfile(i, io.BytesIO(b'1'))")
        .arg(&glob));
    let rodir = tmp.path().join("rodir");
    fs::create_dir_all(&rodir).unwrap();
    let in_ro = rodir.join("a.tar");
    fs::copy(&a, &in_ro).unwrap();
    fs::set_permissions(&rodir, fs::Permissions::from_mode(0o555)).unwrap();
    for (f, msg) in [(&ro, "read-only"), (&in_ro, "is not writable"), (&gz, "gzip-compressed"), (&trail, "after the end-of-archive marker"), (&glob, "global headers")] {
        let before = fs::read(f).unwrap();
        // Data after the end marker is refused only without a shift (below).
        let out = tarfs().arg("embed").args((f == &trail).then_some("--no-shift")).arg(f).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(msg) && err.contains("not changed"), "{err}");
        assert_eq!(fs::read(f).unwrap(), before);
    }
    assert!(fs::read_dir(&rodir).unwrap().count() == 1, "nothing was created in the read-only directory");
    fs::set_permissions(&rodir, fs::Permissions::from_mode(0o755)).unwrap();
    let before = fs::read(&trail).unwrap();
    let out = tarfs().arg("embed").arg("--lenient").arg("--no-shift").arg(&trail).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "data after the end marker is never overwritten");
    assert_eq!(fs::read(&trail).unwrap(), before);
    // Shifted, the whole file moves, the data after the end marker with it.
    let out = ok(tarfs().arg("-v").arg("embed").arg(&trail));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shifted the archive"), "{}", String::from_utf8_lossy(&out.stderr));
    ok(tarfs().arg("verify").arg(&trail));
    let now = fs::read(&trail).unwrap();
    let distance = python_members(&trail)[1]["offset"].as_u64().unwrap() as usize;
    assert_eq!(now.len(), distance + before.len());
    assert!(now[distance..] == before[..], "the original bytes, shifted, to the last");
    // The next run finds it up to date, and --force re-indexes it in place, the data after the
    // end marker left as it is.
    let out = ok(tarfs().arg("-v").arg("embed").arg(&trail));
    assert!(String::from_utf8_lossy(&out.stderr).contains("up to date"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = ok(tarfs().arg("-v").arg("embed").arg("--force").arg(&trail));
    assert!(String::from_utf8_lossy(&out.stderr).contains("re-indexed in place"), "{}", String::from_utf8_lossy(&out.stderr));
    ok(tarfs().arg("verify").arg(&trail));
    assert!(fs::read(&trail).unwrap()[distance..] == before[..]);
}

#[test]
fn a_second_process_finds_the_archive_busy() {
    let tmp = TempDir::new().unwrap();
    let a = tar_of(tmp.path(), "b", &[100, 200], "ustar");
    let before = fs::read(&a).unwrap();
    // The lock is on the archive itself.
    let lock = fs::File::open(&a).unwrap();
    lock.try_lock().unwrap();
    let out = tarfs().arg("embed").arg(&a).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("busy") && err.contains("skipped"), "{err}");
    assert_eq!(fs::read(&a).unwrap(), before);
    drop(lock);
    ok(tarfs().arg("embed").arg(&a));
}

#[test]
fn concurrent_embeds_one_works_one_skips() {
    let tmp = TempDir::new().unwrap();
    let a = tar_of(tmp.path(), "c", &[3 << 20, 1, 2], "ustar");
    let mut children: Vec<_> = (0..2).map(|_| tarfs().arg("embed").arg(&a).stderr(std::process::Stdio::piped()).spawn().unwrap()).collect();
    let outs: Vec<_> = children.drain(..).map(|c| c.wait_with_output().unwrap()).collect();
    let errs: Vec<String> = outs.iter().map(|o| String::from_utf8_lossy(&o.stderr).to_string()).collect();
    // Either one was busy, or the second found the work done; never two embeds.
    assert!(outs.iter().any(|o| o.status.success()), "{errs:?}");
    assert!(errs.iter().any(|e| e.contains("busy") || e.contains("up to date")) || outs.iter().all(|o| o.status.success()), "{errs:?}");
    ok(tarfs().arg("verify").arg(&a));
    assert_eq!(listing("tar", &a).iter().filter(|n| *n == ".tarfs").count(), 1);
}

#[test]
fn output_writes_a_new_archive_in_order() {
    let tmp = TempDir::new().unwrap();
    let a = tar_of(tmp.path(), "o", &[100, 5000, 0, 7], "posix");
    let before = fs::read(&a).unwrap();
    let out = tmp.path().join("out.tar");
    ok(tarfs().arg("embed").arg(&a).arg("--output").arg(&out));
    assert_eq!(fs::read(&a).unwrap(), before);
    let mut want = vec![".tarfs".to_string()];
    want.extend(listing("tar", &a));
    assert_eq!(listing("tar", &out), want);
    ok(tarfs().arg("verify").arg(&out));
    check_embedded(&a, &out, true, true);
}

/// `embed` of an archive of members larger than two 2 MiB windows that has left the page cache
/// surveys it header by header: the mapping advised `MADV_RANDOM`, so that a header faults in
/// its own page, with `MADV_WILLNEED` ahead of the walk (not the whole readahead window around
/// every header). Warm, the mapping keeps its normal advice. Either way the result is the same.
#[test]
fn a_cold_archive_of_large_members_is_surveyed_header_by_header_and_embedded_alike() {
    // On the disk under the target directory: a tmpfs /tmp keeps every page.
    let tmp = TempDir::new_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let names: Vec<String> = (0..4).map(|i| format!("m{i:02}")).collect();
    for (i, n) in names.iter().enumerate() {
        write_pattern(&src.join(n), (5 << 20) + i * 4099, i as u64 + 1);
    }
    let warm = tmp.path().join("warm.tar");
    ok(Command::new("tar").args(["--format=gnu", "-cf"]).arg(&warm).arg("-C").arg(&src).args(&names));
    let cold = tmp.path().join("cold.tar");
    fs::copy(&warm, &cold).unwrap();
    let before = contents(&warm);
    let madvise = |a: &Path, name: &str| {
        let log = tmp.path().join(name);
        ok(Command::new("strace").args(["-f", "-qq", "-e", "trace=madvise", "-o"]).arg(&log).arg(env!("CARGO_BIN_EXE_tarfs")).args(["embed", "--dry-run"]).arg(a));
        fs::read_to_string(&log).unwrap()
    };
    let trace = madvise(&warm, "warm.trace");
    assert!(!trace.contains("MADV_RANDOM"), "a warm survey changed the mapping's advice: {trace}");
    drop_pages(&cold);
    let trace = madvise(&cold, "cold.trace");
    assert!(trace.contains("MADV_RANDOM") && trace.contains("MADV_WILLNEED") && trace.contains("MADV_NORMAL"), "a cold survey did not read header by header: {trace}");

    ok(tarfs().arg("embed").arg(&warm));
    drop_pages(&cold);
    ok(tarfs().arg("embed").arg(&cold));
    assert_eq!(fs::metadata(&cold).unwrap().len(), fs::metadata(&warm).unwrap().len());
    assert_eq!(contents(&cold), before);
    assert_eq!(contents(&warm), before);
    ok(tarfs().arg("verify").arg(&cold));
    let ls = |a: &Path| ok(tarfs().args(["ls", "--json"]).arg(a)).stdout;
    assert_eq!(ls(&cold), ls(&warm));
}

/// Issue #29 finding 16: killed after the first 8 MiB piece of the copy of a displaced 20 MB
/// member, the archive must still extract, with GNU tar, as exactly the original members: the
/// copy's first block (its header) is written last, so until then GNU tar stops at the old end
/// marker instead of extracting a truncated copy over the good member. `tarfs recover` then
/// restores the original, and `embed` completes.
#[test]
fn a_crash_inside_the_copy_leaves_the_original_members_for_gnu_tar() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("big-src");
    tree(&src, &[20_000_000, 1000, 2000]);
    let a = tmp.path().join("big.tar");
    ok(Command::new("tar").arg("--format=gnu").arg("--sort=name").arg("-C").arg(&src).arg("-cf").arg(&a).arg("."));
    let original = fs::read(&a).unwrap();
    let out = tarfs().arg("embed").arg(&a).env("TARFS_CRASH_AFTER", "embed-copy-piece-written").output().unwrap();
    assert_eq!(out.status.code(), Some(86), "{}", String::from_utf8_lossy(&out.stderr));
    assert_ne!(fs::read(&a).unwrap(), original, "the crash came after a write");
    let x = tmp.path().join("x");
    fs::create_dir(&x).unwrap();
    let out = Command::new("tar").arg("-xf").arg(&a).arg("-C").arg(&x).output().unwrap();
    assert!(out.status.success(), "GNU tar on the crashed archive: {:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
    let names = |d: &Path| {
        let mut v: Vec<String> = fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    };
    assert_eq!(names(&x), names(&src));
    for n in names(&src) {
        assert!(fs::read(x.join(&n)).unwrap() == fs::read(src.join(&n)).unwrap(), "{n} differs after extraction");
    }
    let said = String::from_utf8_lossy(&ok(tarfs().arg("-v").arg("recover").arg(&a)).stdout).to_string();
    assert!(said.contains("rolled back"), "{said}");
    assert!(fs::read(&a).unwrap() == original, "not byte-identical after the roll-back");
    ok(tarfs().arg("embed").arg(&a));
    ok(tarfs().arg("verify").arg(&a));
    assert_eq!(contents(&a).get("./m000").map(|v| v.len()), Some(1));
}

// Issue #32 part 2: where displacing members would change what readers extract, embed shifts
// the whole archive forward instead.

/// GNU tar, bsdtar and Python's tarfile extract the same tree from `orig` and `changed`
/// (`tests/trees.py`; the `.tarfs` member aside).
fn same_trees(orig: &Path, changed: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/trees.py");
    let out = Command::new("python3").arg(script).arg(orig).arg(changed).output().unwrap();
    assert!(out.status.success(), "{:?} and {:?} extract differently: {}{}", orig, changed, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// A GNU tar archive of a tree in which `d/perl` (50 KB, first) has a hard link, `d/perl5`,
/// which comes last: displacing `d/perl` would put it after its link.
fn gnu_hard_link_first(tmp: &Path) -> std::path::PathBuf {
    let src = tmp.join("hl-src");
    fs::create_dir_all(src.join("d")).unwrap();
    write_pattern(&src.join("d/perl"), 50_000, 1);
    let mut names = vec!["d/perl".to_string()];
    for i in 0..60 {
        write_pattern(&src.join(format!("d/f{i:03}")), 100 + i * 97, i as u64 + 2);
        names.push(format!("d/f{i:03}"));
    }
    fs::hard_link(src.join("d/perl"), src.join("d/perl5")).unwrap();
    names.push("d/perl5".into());
    let a = tmp.join("hl.tar");
    ok(Command::new("tar").arg("--format=gnu").arg("-cf").arg(&a).arg("-C").arg(&src).arg("--no-recursion").args(&names));
    a
}

/// A GNU tar archive updated with `tar -rf`: a newer `f0000` at the end (a name twice).
fn gnu_duplicate_name(tmp: &Path) -> std::path::PathBuf {
    let src = tmp.join("dup-src");
    tree(&src, &[30_000, 100, 200, 300, 400, 500, 600, 700, 800, 900]);
    let a = tmp.join("dup.tar");
    ok(Command::new("tar").arg("--format=gnu").arg("--sort=name").arg("-C").arg(&src).arg("-cf").arg(&a).arg("."));
    write_pattern(&src.join("m000"), 500, 99);
    ok(Command::new("tar").arg("--format=gnu").arg("-rf").arg(&a).arg("-C").arg(&src).arg("./m000"));
    a
}

/// A pax archive written by Python's tarfile: a 40 KB first member with a hard link to it
/// last, and a name that occurs twice.
fn python_hard_link_first(tmp: &Path) -> std::path::PathBuf {
    let a = tmp.join("py.tar");
    let script = r#"
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    def add(name, data=b"", typ=tarfile.REGTYPE, link=""):
        ti = tarfile.TarInfo(name)
        ti.type, ti.linkname, ti.mtime, ti.mode = typ, link, 1700000000, 0o644
        ti.size = len(data) if typ == tarfile.REGTYPE else 0
        t.addfile(ti, io.BytesIO(data) if typ == tarfile.REGTYPE else None)
    add("p/first", bytes(range(256)) * 160)
    for i in range(50):
        add("p/f%03d" % i, bytes([i]) * (100 + i * 37))
    add("p/link", typ=tarfile.LNKTYPE, link="p/first")
    add("p/f001", b"newer")
"#;
    ok(Command::new("python3").arg("-c").arg(script).arg(&a));
    a
}

/// Each member's header position, as `tarfs ls --json` gives it through the index.
fn index_positions(a: &Path) -> Vec<u64> {
    let out = ok(tarfs().args(["ls", "--json"]).arg(a)).stdout;
    String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["header_offset"].as_u64().unwrap()).collect()
}

#[test]
fn archives_whose_members_must_not_move_are_shifted() {
    let tmp = TempDir::new().unwrap();
    let archives = [gnu_hard_link_first(tmp.path()), gnu_duplicate_name(tmp.path()), python_hard_link_first(tmp.path())];
    for a in &archives {
        let before = fs::read(a).unwrap();
        let orig = a.with_extension("orig");
        fs::write(&orig, &before).unwrap();
        // --no-shift keeps the refusal, and changes nothing.
        let out = tarfs().arg("embed").arg("--no-shift").arg(a).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{a:?}: {err}");
        assert!(err.contains("--output") && err.contains("--no-shift") && err.contains("not changed"), "{a:?}: {err}");
        assert_eq!(fs::read(a).unwrap(), before);
        // --dry-run says the way, and the bytes it would move, and writes nothing.
        let out = ok(tarfs().arg("embed").arg("--dry-run").arg("-v").arg(a));
        let err = String::from_utf8_lossy(&out.stderr);
        let moved = python_members(a).last().map(|m| m["offset_data"].as_u64().unwrap() + m["size"].as_u64().unwrap().div_ceil(512) * 512).unwrap();
        assert!(err.contains(&format!("would embed (shifted the archive, {moved} bytes moved; ")), "{a:?}: {err}");
        assert_eq!(fs::read(a).unwrap(), before);
        // The shift.
        let out = ok(tarfs().arg("embed").arg("-v").arg(a));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("embedded (shifted the archive, {moved} bytes moved; ")), "{a:?}: {err}");
        ok(tarfs().arg("verify").arg(a));
        let py = python_members(a);
        assert_eq!(py[0]["name"], ".tarfs");
        // Every member moved by the index member's length, and nothing else changed.
        let distance = py[1]["offset"].as_u64().unwrap();
        let now = fs::read(a).unwrap();
        assert!(now[distance as usize..distance as usize + moved as usize] == before[..moved as usize], "{a:?}: the members are not the original bytes, shifted");
        assert!(now[(distance + moved) as usize..].iter().all(|&b| b == 0), "{a:?}: the end is not zeros");
        assert!(now.len() as u64 >= distance + moved + 1024);
        // The index gives the shifted positions, which Python reads the headers at.
        let want: Vec<u64> = py[1..].iter().map(|m| m["offset"].as_u64().unwrap()).collect();
        assert_eq!(index_positions(a), want, "{a:?}");
        // GNU tar, bsdtar and Python extract the same tree as before (hard links, the newer
        // of two names).
        same_trees(&orig, a);
        // Up to date now.
        let out = ok(tarfs().arg("embed").arg("-v").arg(a));
        assert!(String::from_utf8_lossy(&out.stderr).contains("up to date"), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn a_shift_over_the_growth_limit_is_refused() {
    let tmp = TempDir::new().unwrap();
    let a = gnu_hard_link_first(tmp.path());
    let before = fs::read(&a).unwrap();
    let out = tarfs().arg("embed").arg("--max-growth").arg("1K").arg(&a).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("shift the whole archive") && err.contains("--max-growth") && err.contains("not changed"), "{err}");
    assert_eq!(fs::read(&a).unwrap(), before);
}

/// Stops a shift of `orig` after `step`, checks that nothing reads the half-shifted archive,
/// recovers (which finishes the shift), and checks the result against an uninterrupted run's
/// `done`: the same bytes but for the `.tarfs` header's mtime and the index's write generation.
fn shift_crash_case(tmp: &Path, orig: &Path, done: &[u8], step: &str) {
    let a = tmp.join(format!("{}-{step}.tar", orig.file_stem().unwrap().to_string_lossy()));
    fs::copy(orig, &a).unwrap();
    // v1: the comparison below takes the index's entries as whole blocks.
    let out = tarfs().args(["embed", "--format", "v1"]).arg(&a).env("TARFS_CRASH_AFTER", step).output().unwrap();
    assert_eq!(out.status.code(), Some(86), "{step}: {}", String::from_utf8_lossy(&out.stderr));
    let (code, err) = common::run(tarfs().arg("ls").arg(&a));
    assert!(code == Some(1) && err.contains("tarfs recover"), "{step}: a reader of the half-shifted archive: {err}");
    let said = String::from_utf8_lossy(&ok(tarfs().arg("-v").arg("recover").arg(&a)).stdout).to_string();
    assert!(said.contains("finished"), "{step}: {said}");
    let now = fs::read(&a).unwrap();
    assert_eq!(now.len(), done.len(), "{step}");
    // The same members at the same places, and the same index entries; the `.tarfs` header
    // (its mtime) and the index's and its extension's header blocks (the write generation) aside.
    let py = python_members(&a);
    let base = py[1]["offset"].as_u64().unwrap() as usize;
    let entries = 1024 + 512 * (py.len() - 1);
    assert!(now[base..] == done[base..] && now[1024..entries] == done[1024..entries], "{step}: not the uninterrupted run's result");
    ok(tarfs().arg("verify").arg(&a));
    same_trees(orig, &a);
}

#[test]
fn a_crash_at_every_step_of_a_shift_is_finished_by_recover() {
    let tmp = TempDir::new().unwrap();
    // Direct bands: 50 KB first member and 60 small ones (a few bands of the index's length).
    let direct = gnu_hard_link_first(tmp.path());
    // Staged: a 3 MB member and its hard link, so the index is a few KiB before 3 MB.
    let src = tmp.path().join("st-src");
    fs::create_dir_all(&src).unwrap();
    write_pattern(&src.join("big"), 3_000_000, 7);
    write_pattern(&src.join("small"), 100, 8);
    fs::hard_link(src.join("big"), src.join("zlink")).unwrap();
    let staged = tmp.path().join("st.tar");
    ok(Command::new("tar").arg("--format=gnu").arg("-cf").arg(&staged).arg("-C").arg(&src).args(["big", "small", "zlink"]));
    let direct_steps = ["shift-journal-written", "shift-grown", "shift-band-written", "shift-band-synced", "shift-band-2-synced", "shift-head-written", "shift-head-synced"];
    let staged_steps = ["shift-journal-written", "shift-grown", "shift-staged-written", "shift-staged-synced", "shift-band-written", "shift-band-synced", "shift-head-written", "shift-head-synced", "shift-trimmed"];
    for (orig, steps, staging) in [(&direct, &direct_steps[..], false), (&staged, &staged_steps[..], true)] {
        let probe = tmp.path().join("probe.tar");
        fs::copy(orig, &probe).unwrap();
        let err = String::from_utf8_lossy(&ok(tarfs().args(["embed", "--format", "v1", "-v"]).arg(&probe)).stderr).to_string();
        let moved: u64 = err.split("shifted the archive, ").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{err}"));
        let written: u64 = err.split("bytes moved; ").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()).unwrap();
        // A staged shift writes each moved byte twice.
        assert_eq!(written > 2 * moved, staging, "{err}");
        let done = fs::read(&probe).unwrap();
        for step in steps {
            shift_crash_case(tmp.path(), orig, &done, step);
        }
    }
}

#[test]
fn recover_refuses_a_shift_journal_that_is_not_the_files() {
    let tmp = TempDir::new().unwrap();
    let orig = gnu_hard_link_first(tmp.path());
    let a = tmp.path().join("a.tar");
    fs::copy(&orig, &a).unwrap();
    let out = tarfs().args(["embed", "--format", "v1"]).arg(&a).env("TARFS_CRASH_AFTER", "shift-band-0-synced").output().unwrap();
    assert_eq!(out.status.code(), Some(86));
    // A byte the shift had not reached is no longer the original's.
    let mut bytes = fs::read(&a).unwrap();
    bytes[600] ^= 1;
    fs::write(&a, &bytes).unwrap();
    let (code, err) = common::run(tarfs().arg("recover").arg(&a));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("does not belong to this file") && err.contains("not touched"), "{err}");
    assert!(fs::read(&a).unwrap() == bytes, "recover wrote to a file whose journal is not its own");
}

#[test]
fn a_reindex_that_does_not_fit_and_may_not_displace_shifts_from_the_old_index() {
    let tmp = TempDir::new().unwrap();
    let a = tar_of(tmp.path(), "ro", &[100; 10], "ustar");
    ok(tarfs().arg("embed").arg(&a));
    // Appended: many members (the index no longer fits the old `.tarfs` member), then a newer
    // copy of the first member after the old index (moving it to the end would make the old
    // copy win).
    let first = listing("tar", &a)[1].clone();
    let src = tmp.path().join("ro-more");
    tree(&src, &[200; 60]);
    write_pattern(&tmp.path().join("ro-src").join(&first), 777, 42);
    ok(Command::new("tar").arg("-rf").arg(&a).arg("-C").arg(&src).arg("."));
    ok(Command::new("tar").arg("-rf").arg(&a).arg("-C").arg(tmp.path().join("ro-src")).arg(&first));
    let before = tmp.path().join("ro.before");
    fs::copy(&a, &before).unwrap();
    let out = ok(tarfs().arg("-v").arg("embed").arg(&a));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("shifted the archive"), "{err}");
    ok(tarfs().arg("verify").arg(&a));
    let names = listing("tar", &a);
    assert_eq!(names.iter().filter(|n| *n == ".tarfs").count(), 1);
    assert_eq!(names[1..], listing("tar", &before)[1..], "the order changed");
    assert_eq!(contents(&a), contents(&before));
    // The newer copy is the one extracted.
    let x = ok(Command::new("tar").arg("-xOf").arg(&a).arg(&first)).stdout;
    assert!(x.ends_with(&fs::read(tmp.path().join("ro-src").join(&first)).unwrap()));
}

/// A shift whose result does not read back (`TARFS_TAMPER` flips a byte of the `.tarfs` header
/// before the read-back) cannot be rolled back: recovery in the process writes again, from the
/// journal, what does not hash as planned, and the read-back then passes.
#[test]
fn a_shift_that_does_not_read_back_is_rewritten_from_its_journal() {
    let tmp = TempDir::new().unwrap();
    let a = gnu_hard_link_first(tmp.path());
    let orig = tmp.path().join("hl.orig");
    fs::copy(&a, &orig).unwrap();
    let out = ok(tarfs().arg("-v").arg("embed").arg(&a).env("TARFS_TAMPER", "embed-check"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shifted the archive"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(fs::read_dir(tmp.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with(".tarfs-journal")), "a journal was left");
    ok(tarfs().arg("verify").arg(&a));
    same_trees(&orig, &a);
}

/// A first member whose typeflag not every reader knows (GNU `D` incremental dumpdir, GNU `V`
/// volume label) cannot be displaced, but the whole archive is shifted: every reader extracts
/// what it did before, the `.tarfs` member aside (`tests/trees.py`: GNU tar, bsdtar, Python).
#[test]
fn a_first_member_of_a_type_not_every_reader_knows_is_shifted() {
    let tmp = TempDir::new().unwrap();
    for file in ["go/gnu-incremental.tar", "libarchive/libarchive-test/test_read_format_tar_empty_with_gnulabel.tar"] {
        let orig = tmp.path().join("orig.tar");
        fs::copy(corpus_dir().join(file), &orig).unwrap();
        fs::set_permissions(&orig, fs::Permissions::from_mode(0o644)).unwrap();
        let a = tmp.path().join("a.tar");
        fs::copy(&orig, &a).unwrap();
        let out = ok(tarfs().arg("embed").arg("-v").arg(&a));
        assert!(String::from_utf8_lossy(&out.stderr).contains("shifted the archive"), "{file}: {}", String::from_utf8_lossy(&out.stderr));
        ok(tarfs().arg("verify").arg(&a));
        same_trees(&orig, &a);
        // --no-shift keeps the refusal.
        fs::copy(&orig, &a).unwrap();
        let (code, err) = common::run(tarfs().arg("embed").arg("--no-shift").arg(&a));
        assert!(code == Some(1) && err.contains("read differently"), "{file}: {err}");
    }
}

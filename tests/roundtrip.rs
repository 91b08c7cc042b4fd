//! Round trips against the real tools: archives made by GNU tar (every format, and sparse),
//! bsdtar and Python's tarfile are indexed; `tarfs ls --json` must agree with Python's offsets,
//! `tarfs cat` with `tar -xOf`, and `tarfs extract` with `tar -xf` (contents, modes, links).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ok, python_members, tarfs, tarfs_members, write_pattern};
use tempfile::TempDir;

/// Builds the source tree. `long` adds names that need GNU or pax extensions (over 255 bytes,
/// non-ASCII); `sparse` adds a file with holes; `v7` leaves out the path that needs a ustar
/// prefix (v7 holds 99 bytes).
fn make_tree(root: &Path, long: bool, sparse: bool, v7: bool) {
    let t = root.join("tree");
    fs::create_dir_all(t.join("dir/sub")).unwrap();
    for (i, len) in [0usize, 1, 511, 512, 513, 10_000, 300_000].iter().enumerate() {
        write_pattern(&t.join(format!("dir/f{i}_{len}")), *len, i as u64);
    }
    fs::set_permissions(t.join("dir/f1_1"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::set_permissions(t.join("dir/f2_511"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::set_permissions(t.join("dir/sub"), fs::Permissions::from_mode(0o700)).unwrap();
    symlink("../dir/f3_512", t.join("dir/sub/link")).unwrap();
    fs::hard_link(t.join("dir/f4_513"), t.join("dir/hard")).unwrap();
    // A ustar prefix: a path over 100 bytes whose directory part fits 155.
    if !v7 {
        let deep = t.join("p".repeat(60)).join("q".repeat(60));
        fs::create_dir_all(&deep).unwrap();
        write_pattern(&deep.join("in-prefix.txt"), 700, 9);
    }
    if long {
        let very = t.join("l".repeat(120)).join("m".repeat(120)).join("n".repeat(100));
        fs::create_dir_all(&very).unwrap();
        write_pattern(&very.join("long-name-file.txt"), 1200, 10);
        write_pattern(&t.join("dir/ünïcødé ✓.txt"), 33, 11);
        symlink("t".repeat(150), t.join("dir/long-link")).unwrap();
    }
    if sparse {
        let f = fs::File::create(t.join("dir/sparse.img")).unwrap();
        f.set_len(5 << 20).unwrap();
        use std::os::unix::fs::FileExt;
        f.write_all_at(b"start", 0).unwrap();
        f.write_all_at(&[7u8; 5000], 1 << 20).unwrap();
        f.write_all_at(b"end", (5 << 20) - 3).unwrap();
    }
}

struct Case {
    name: &'static str,
    long: bool,
    sparse: bool,
    create: fn(&Path, &Path),
}

fn gnu(format: &'static str, sparse: bool) -> impl Fn(&Path, &Path) {
    move |src: &Path, out: &Path| {
        let mut c = Command::new("tar");
        c.arg(format!("--format={format}")).arg("-C").arg(src).arg("-cf").arg(out);
        if sparse {
            c.arg("-S");
        }
        ok(c.arg("tree"));
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case { name: "gnu", long: true, sparse: false, create: |s, o| gnu("gnu", false)(s, o) },
        Case { name: "oldgnu", long: true, sparse: false, create: |s, o| gnu("oldgnu", false)(s, o) },
        Case { name: "posix", long: true, sparse: false, create: |s, o| gnu("posix", false)(s, o) },
        Case { name: "ustar", long: false, sparse: false, create: |s, o| gnu("ustar", false)(s, o) },
        Case { name: "v7", long: false, sparse: false, create: |s, o| gnu("v7", false)(s, o) },
        Case { name: "gnu-sparse", long: true, sparse: true, create: |s, o| gnu("gnu", true)(s, o) },
        Case { name: "oldgnu-sparse", long: false, sparse: true, create: |s, o| gnu("oldgnu", true)(s, o) },
        Case { name: "posix-sparse", long: true, sparse: true, create: |s, o| gnu("posix", true)(s, o) },
        Case {
            name: "bsdtar",
            long: true,
            sparse: false,
            create: |s, o| {
                ok(Command::new("bsdtar").arg("-C").arg(s).arg("-cf").arg(o).arg("tree"));
            },
        },
        Case {
            name: "bsdtar-ustar",
            long: false,
            sparse: false,
            create: |s, o| {
                ok(Command::new("bsdtar").arg("--format=ustar").arg("-C").arg(s).arg("-cf").arg(o).arg("tree"));
            },
        },
        Case { name: "python-pax", long: true, sparse: false, create: |s, o| python_create(s, o, "PAX_FORMAT") },
        Case { name: "python-gnu", long: true, sparse: false, create: |s, o| python_create(s, o, "GNU_FORMAT") },
        Case { name: "python-ustar", long: false, sparse: false, create: |s, o| python_create(s, o, "USTAR_FORMAT") },
    ]
}

fn python_create(src: &Path, out: &Path, format: &str) {
    let script = format!(
        "import tarfile, sys, os\nos.chdir(sys.argv[1])\nwith tarfile.open(sys.argv[2], 'w', format=tarfile.{format}) as t:\n    t.add('tree')\n"
    );
    ok(Command::new("python3").arg("-c").arg(script).arg(src).arg(out));
}

fn strip_slash(s: &str) -> &str {
    s.trim_end_matches('/')
}

/// Everything about an extracted tree that tar -xf restores: type, mode, mtime, contents, link
/// targets, and which files are hard links of each other.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut map = BTreeMap::new();
    let mut inodes: BTreeMap<u64, PathBuf> = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
        let m = fs::symlink_metadata(e.path()).unwrap();
        let desc = if m.file_type().is_symlink() {
            format!("link -> {}", fs::read_link(e.path()).unwrap().display())
        } else if m.is_dir() {
            format!("dir {:o}", m.mode() & 0o7777)
        } else {
            let first = inodes.entry(m.ino()).or_insert_with(|| rel.clone()).clone();
            let data = fs::read(e.path()).unwrap();
            let sum: u64 = data.iter().enumerate().map(|(i, &b)| (i as u64 + 1) * b as u64).sum();
            format!("file {:o} mtime {} len {} sum {sum} inode-of {}", m.mode() & 0o7777, m.mtime(), data.len(), first.display())
        };
        map.insert(rel, desc);
    }
    map
}

#[test]
fn real_tools_round_trip() {
    let mut failures = Vec::new();
    for case in cases() {
        let tmp = TempDir::new().unwrap();
        make_tree(tmp.path(), case.long, case.sparse, case.name == "v7");
        let archive = tmp.path().join(format!("{}.tar", case.name));
        (case.create)(tmp.path(), &archive);

        ok(tarfs().arg("index").arg(&archive));
        let sidecar = tmp.path().join(format!("{}.tar.tarfs", case.name));
        assert!(sidecar.is_file(), "{}: no sidecar", case.name);
        ok(tarfs().arg("verify").arg(&archive));
        // Readers use the sidecar (not a fallback scan) for every writer's archives.
        let out = ok(tarfs().arg("-v").arg("ls").arg(&archive));
        let err = String::from_utf8_lossy(&out.stderr);
        if !err.contains("using sidecar index") || err.contains("scanning") {
            failures.push(format!("{}: ls did not use the sidecar: {err}", case.name));
        }
        if !err.contains("read 0 bytes of the archive for the listing") {
            failures.push(format!("{}: ls through the sidecar read the archive: {err}", case.name));
        }
        // ls -l and ls --json through the index are byte-identical to a full scan's.
        for flag in ["-l", "--json"] {
            let indexed = ok(tarfs().arg("ls").arg(flag).arg(&archive)).stdout;
            let aside = tmp.path().join("aside.tarfs");
            fs::rename(&sidecar, &aside).unwrap();
            let scanned = ok(tarfs().arg("ls").arg(flag).arg(&archive)).stdout;
            fs::rename(&aside, &sidecar).unwrap();
            if indexed != scanned {
                failures.push(format!("{}: ls {flag} through the index differs from a scan:\n{}\nvs\n{}", case.name, String::from_utf8_lossy(&indexed), String::from_utf8_lossy(&scanned)));
            }
        }

        // ls --json against Python's offsets.
        let py = python_members(&archive);
        let ours = tarfs_members(&archive);
        if py.len() != ours.len() {
            failures.push(format!("{}: {} members, Python {}", case.name, ours.len(), py.len()));
            continue;
        }
        for (p, o) in py.iter().zip(&ours) {
            let same = strip_slash(p["name"].as_str().unwrap()) == strip_slash(o["name"].as_str().unwrap())
                && p["offset"] == o["header_offset"]
                && p["offset_data"] == o["data_offset"]
                && (p["sparse"] == true || p["size"] == o["size"]);
            if !same {
                failures.push(format!("{}: python {p} vs tarfs {o}", case.name));
            }
        }

        // cat of every regular member against tar -xOf.
        for o in &ours {
            if !matches!(o["type"].as_str().unwrap(), "0" | "S" | "7") {
                continue;
            }
            let name = o["name"].as_str().unwrap();
            let want = ok(Command::new("tar").arg("-xOf").arg(&archive).arg(name)).stdout;
            let got = ok(tarfs().arg("cat").arg(&archive).arg(name)).stdout;
            if want != got {
                failures.push(format!("{}: cat {name}: {} bytes vs tar's {}", case.name, got.len(), want.len()));
            }
        }
        if case.sparse {
            let got = ok(tarfs().arg("cat").arg(&archive).arg("tree/dir/sparse.img")).stdout;
            assert_eq!(got, fs::read(tmp.path().join("tree/dir/sparse.img")).unwrap(), "{}: sparse contents", case.name);
        }

        // extract against tar -xf.
        let b = tmp.path().join("theirs");
        fs::create_dir_all(&b).unwrap();
        ok(Command::new("tar").arg("-xf").arg(&archive).arg("-C").arg(&b));
        let sb = snapshot(&b);
        let compare_extract = |label: &str, from: &Path| {
            let mut failures = Vec::new();
            let a = tmp.path().join(format!("ours-{label}"));
            fs::create_dir_all(&a).unwrap();
            ok(tarfs().arg("extract").arg(from).arg("-C").arg(&a));
            let sa = snapshot(&a);
            for (k, v) in &sb {
                if sa.get(k) != Some(v) {
                    failures.push(format!("{} ({label}): extract {}: ours {:?}, tar's {v}", case.name, k.display(), sa.get(k)));
                }
            }
            for k in sa.keys().filter(|k| !sb.contains_key(*k)) {
                failures.push(format!("{} ({label}): extract made {} which tar does not", case.name, k.display()));
            }
            failures
        };
        failures.extend(compare_extract("plain", &archive));

        // The same archive compressed each way, read through its sidecar and its seek points
        // (gzip checkpoints 64 KiB apart, bzip2 blocks of 100 kB, xz blocks of 16 KiB, zstd
        // frames of 64 KiB): cat of every regular member and extract, against tar on the plain
        // archive.
        let p = archive.display();
        for (ext, cmd) in [
            ("gz", format!("gzip -c {p}")),
            ("bz2", format!("bzip2 -1 -c {p}")),
            ("xz", format!("xz -T2 --block-size=16KiB -c {p}")),
            ("zst", format!("cd {} && split -b 65536 -d {p} part. && for f in part.*; do zstd -q -c $f; done; rm part.*", tmp.path().display())),
        ] {
            let z = tmp.path().join(format!("{}.tar.{ext}", case.name));
            ok(Command::new("sh").arg("-c").arg(format!("({cmd}) > {}", z.display())));
            let out = ok(tarfs().arg("-v").arg("index").arg("--span").arg("64K").arg(&z));
            let err = String::from_utf8_lossy(&out.stderr);
            if !err.contains("seek points") || err.contains("no seek points") {
                failures.push(format!("{} ({ext}): no seek points: {err}", case.name));
            }
            for o in ours.iter().filter(|o| matches!(o["type"].as_str().unwrap(), "0" | "S" | "7")) {
                let name = o["name"].as_str().unwrap();
                let want = ok(Command::new("tar").arg("-xOf").arg(&archive).arg(name)).stdout;
                let got = ok(tarfs().arg("cat").arg(&z).arg(name)).stdout;
                if want != got {
                    failures.push(format!("{} ({ext}): cat {name}: {} bytes vs tar's {}", case.name, got.len(), want.len()));
                }
            }
            failures.extend(compare_extract(ext, &z));
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

//! The index answers on its own (issue #14): listings through an index with extension data read
//! no archive bytes, equal a full scan byte for byte, and every index tarfs writes reads in a
//! plain v1.0 reader written from the specification (`tests/v1_reader.py`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{corpus_dir, drop_pages, ok, tarfs, truth, write_pattern};
use serde_json::Value;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Runs `tarfs -v ARGS` and returns (stdout, stderr); it must succeed.
fn verbose(args: &[&std::ffi::OsStr]) -> (Vec<u8>, String) {
    let out = ok(tarfs().arg("-v").args(args));
    (out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `ls` and `cat` of `archive` through its sidecar: the index is used, the listing reads 0 bytes
/// of the archive, and `cat` of `member` gives `want`. Returns the `ls --json` output.
fn through_index(archive: &Path, member: &str, want: &[u8]) -> Vec<u8> {
    ok(tarfs().args(["index", "--format", "v1"]).arg(archive));
    let (listing, err) = verbose(&["ls".as_ref(), "--json".as_ref(), archive.as_os_str()]);
    assert!(err.contains("using sidecar index"), "{}: {err}", archive.display());
    assert!(err.contains("read 0 bytes of the archive for the listing"), "{}: {err}", archive.display());
    assert!(!err.contains("scanning instead"), "{}: {err}", archive.display());
    let (data, err) = verbose(&["cat".as_ref(), archive.as_os_str(), member.as_ref()]);
    assert!(err.contains("using sidecar index"), "{}: {err}", archive.display());
    assert_eq!(data, want, "{}: cat {member}", archive.display());
    // The same listing as a full scan, with the sidecar set aside.
    let side = PathBuf::from(format!("{}.tarfs", archive.display()));
    let aside = side.with_extension("aside");
    std::fs::rename(&side, &aside).unwrap();
    for flag in ["--json", "-l"] {
        let scan = ok(tarfs().arg("ls").arg(flag).arg(archive)).stdout;
        std::fs::rename(&aside, &side).unwrap();
        let indexed = ok(tarfs().arg("ls").arg(flag).arg(archive)).stdout;
        std::fs::rename(&side, &aside).unwrap();
        assert_eq!(String::from_utf8_lossy(&indexed), String::from_utf8_lossy(&scan), "{}: ls {flag}", archive.display());
    }
    std::fs::rename(&aside, &side).unwrap();
    listing
}

fn compress(path: &Path, tool: &str) -> PathBuf {
    let (args, ext): (&[&str], &str) = match tool {
        "gzip" => (&["-kf"], "gz"),
        "xz" => (&["-kf"], "xz"),
        "zstd" => (&["-qf"], "zst"),
        _ => unreachable!(),
    };
    ok(Command::new(tool).args(args).arg(path));
    PathBuf::from(format!("{}.{ext}", path.display()))
}

#[test]
fn git_archive_tarballs_use_their_index() {
    let d = tmp();
    let repo = d.path().join("repo");
    std::fs::create_dir_all(repo.join("src/deep")).unwrap();
    std::fs::write(repo.join("src/deep/lib.rs"), b"pub fn f() {}\n").unwrap();
    std::fs::write(repo.join("README"), b"read me\n").unwrap();
    let git = |args: &[&str]| ok(Command::new("git").arg("-C").arg(&repo).args(["-c", "user.name=t", "-c", "user.email=t@t"]).args(args));
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "one"]);
    let plain = d.path().join("plain.tar");
    git(&["archive", "-o", plain.to_str().unwrap(), "HEAD"]);
    let prefixed = d.path().join("prefixed.tar");
    git(&["archive", "--prefix=proj-1.0/", "-o", prefixed.to_str().unwrap(), "HEAD"]);
    // git archive writes a pax global header with the commit id.
    assert_eq!(&std::fs::read(&plain).unwrap()[156..157], b"g");
    through_index(&plain, "src/deep/lib.rs", b"pub fn f() {}\n");
    through_index(&prefixed, "proj-1.0/README", b"read me\n");
    through_index(&compress(&plain, "gzip"), "src/deep/lib.rs", b"pub fn f() {}\n");
    through_index(&compress(&prefixed, "gzip"), "proj-1.0/src/deep/lib.rs", b"pub fn f() {}\n");
}

#[test]
fn python_pax_names_of_150_bytes_in_every_compression() {
    let d = tmp();
    let tar = d.path().join("pax.tar");
    let script = r#"
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    for i in range(300):
        name = "dir-%03d/" % (i % 7) + "n" * 150 + "-%d.txt" % i
        data = b"member %d\n" % i * (i % 5)
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = 1700000000.125 + i
        info.uname = "a-user-name-longer-than-thirty-two-bytes"
        t.addfile(info, io.BytesIO(data))
"#;
    ok(Command::new("python3").arg("-c").arg(script).arg(&tar));
    let name = format!("dir-{:03}/{}-{}.txt", 123 % 7, "n".repeat(150), 123);
    let want = b"member 123\n".repeat(123 % 5);
    let listing = through_index(&tar, &name, &want);
    assert_eq!(String::from_utf8_lossy(&listing).lines().count(), 300);
    for tool in ["gzip", "xz", "zstd"] {
        let listed = through_index(&compress(&tar, tool), &name, &want);
        assert_eq!(listed, listing, "{tool}");
    }
}

#[test]
fn gnu_long_names() {
    let d = tmp();
    let src = d.path().join("src");
    let deep = src.join("l".repeat(120)).join("m".repeat(120));
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("file.txt"), b"long\n").unwrap();
    std::os::unix::fs::symlink("t".repeat(150), src.join("link")).unwrap();
    let tar = d.path().join("gnu.tar");
    ok(Command::new("tar").arg("--format=gnu").arg("-cf").arg(&tar).arg("-C").arg(&src).arg("."));
    let member = format!("./{}/{}/file.txt", "l".repeat(120), "m".repeat(120));
    let listing = through_index(&tar, &member, b"long\n");
    assert!(String::from_utf8_lossy(&listing).contains(&"t".repeat(150)), "the long link target is listed");
}

/// A real sdist from PyPI (six 1.16.0, downloaded by scripts/test.sh).
#[test]
fn a_real_sdist() {
    let sdist = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/real-archives/six-1.16.0.tar.gz");
    assert!(sdist.is_file(), "{} is missing: scripts/test.sh downloads it", sdist.display());
    let d = tmp();
    let copy = d.path().join("six-1.16.0.tar.gz");
    std::fs::copy(&sdist, &copy).unwrap();
    let script = "import sys, tarfile; sys.stdout.buffer.write(tarfile.open(sys.argv[1]).extractfile('six-1.16.0/six.py').read())";
    let want = ok(Command::new("python3").arg("-c").arg(script).arg(&copy)).stdout;
    through_index(&copy, "six-1.16.0/six.py", &want);
}

/// Every corpus archive tarfs indexes: `ls -l` and `ls --json` through the sidecar equal a full
/// scan's, and through an embedded index (`embed --output`) equal the scan's but for offsets.
#[test]
fn corpus_listings_through_the_index_equal_a_scan() {
    let d = tmp();
    let mut compared = 0;
    for t in truth() {
        let name = t["file"].as_str().unwrap();
        let src = corpus_dir().join(name);
        let copy = d.path().join(name.replace('/', "_"));
        std::fs::copy(&src, &copy).unwrap();
        let scan_json = tarfs().arg("ls").arg("--json").arg(&copy).output().unwrap();
        if !scan_json.status.success() || !tarfs().args(["index", "--format", "v1"]).arg(&copy).output().unwrap().status.success() {
            continue;
        }
        let scan_long = ok(tarfs().arg("ls").arg("-l").arg(&copy)).stdout;
        let indexed = tarfs().arg("-v").arg("ls").arg("--json").arg(&copy).output().unwrap();
        let err = String::from_utf8_lossy(&indexed.stderr);
        if err.contains("using sidecar index") {
            assert_eq!(String::from_utf8_lossy(&indexed.stdout), String::from_utf8_lossy(&scan_json.stdout), "{name}: ls --json");
            assert_eq!(String::from_utf8_lossy(&ok(tarfs().arg("ls").arg("-l").arg(&copy)).stdout), String::from_utf8_lossy(&scan_long), "{name}: ls -l");
            compared += 1;
        } else {
            panic!("{name}: its fresh sidecar was not used: {err}");
        }
    }
    // Every archive that scans cleanly (the others are the corpus's broken ones) was compared.
    assert!(compared >= 100, "only {compared} corpus archives were compared through their index");
}

/// The v1.0 reader's entries for an index: (position, main header name).
fn v1_entries(kind: &str, path: &Path) -> Vec<(u64, Vec<u8>)> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/v1_reader.py");
    let out = ok(Command::new("python3").arg(script).arg(kind).arg(path));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let hex = v["name_hex"].as_str().unwrap();
            let name = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
            (v["position"].as_u64().unwrap(), name)
        })
        .collect()
}

/// What tarfs lists of `archive`: each member's position and its main header's `prefix/name`.
fn tarfs_positions(archive: &Path) -> Vec<(u64, Vec<u8>)> {
    let bytes = std::fs::read(archive).unwrap();
    common::tarfs_members(archive)
        .iter()
        .map(|m| {
            let at = m["main_header_offset"].as_u64().unwrap() as usize;
            let h = tarfs::format::header::HeaderView::from_slice(&bytes[at..]).unwrap();
            let mut name = h.prefix().to_vec();
            if !name.is_empty() && h.format() == tarfs::format::header::Format::Ustar {
                name.push(b'/');
            } else {
                name.clear();
            }
            name.extend_from_slice(h.name());
            (m["header_offset"].as_u64().unwrap(), name)
        })
        .collect()
}

#[test]
fn a_plain_v1_reader_reads_every_index_tarfs_writes() {
    let d = tmp();
    let mut checked = 0;
    for t in truth() {
        let name = t["file"].as_str().unwrap();
        let copy = d.path().join(name.replace('/', "_"));
        std::fs::copy(corpus_dir().join(name), &copy).unwrap();
        if !tarfs().args(["index", "--format", "v1"]).arg(&copy).output().unwrap().status.success() {
            continue;
        }
        let side = PathBuf::from(format!("{}.tarfs", copy.display()));
        let want = tarfs_positions(&copy);
        assert_eq!(v1_entries("sidecar", &side), want, "{name}: sidecar");
        // The embedded form of the same archive.
        let embedded = d.path().join(format!("{}.embedded.tar", name.replace('/', "_")));
        if tarfs().args(["embed", "--format", "v1"]).arg("--output").arg(&embedded).arg(&copy).output().unwrap().status.success() {
            assert_eq!(v1_entries("embedded", &embedded), tarfs_positions(&embedded), "{name}: embedded");
        }
        checked += 1;
    }
    assert!(checked >= 100, "only {checked} corpus archives were indexed");
    // In place, and from the library's IndexFirstBuilder.
    let tar = d.path().join("inplace.tar");
    let script = "import io,sys,tarfile\nwith tarfile.open(sys.argv[1],'w',format=tarfile.PAX_FORMAT) as t:\n for i in range(40):\n  d=b'x'*(i*37)\n  ti=tarfile.TarInfo('p/'+'q'*(100+i)+str(i)); ti.size=len(d); t.addfile(ti,io.BytesIO(d))\n";
    ok(Command::new("python3").arg("-c").arg(script).arg(&tar));
    ok(tarfs().args(["embed", "--format", "v1"]).arg(&tar));
    assert_eq!(v1_entries("embedded", &tar), tarfs_positions(&tar));
    let built = d.path().join("built.tar");
    let mut b = tarfs::builder::IndexFirstBuilder::new().format(tarfs::ops::index::IndexFormat::V1);
    for i in 0..30 {
        b.add(format!("long/{}/{i}", "z".repeat(120 + i)), &vec![i as u8; i * 100]).unwrap();
    }
    let mut out = Vec::new();
    b.finish(&mut out).unwrap();
    std::fs::write(&built, &out).unwrap();
    assert_eq!(v1_entries("embedded", &built), tarfs_positions(&built));
    // And tarfs lists it from the index alone.
    let (_, err) = verbose(&["ls".as_ref(), built.as_os_str()]);
    assert!(err.contains("using embedded .tarfs index") && err.contains("read 0 bytes of the archive for the listing"), "{err}");
}

/// Damage to the extension data is found where it is read, and named; the reader does not
/// answer from a damaged extension.
#[test]
fn a_damaged_extension_is_an_error_not_an_answer() {
    let d = tmp();
    let tar = d.path().join("a.tar");
    let script = "import io,sys,tarfile\nwith tarfile.open(sys.argv[1],'w',format=tarfile.PAX_FORMAT) as t:\n for i in range(20):\n  ti=tarfile.TarInfo('r/'+'s'*120+str(i)); ti.size=3; t.addfile(ti,io.BytesIO(b'abc'))\n";
    ok(Command::new("python3").arg("-c").arg(script).arg(&tar));
    ok(tarfs().args(["index", "--format", "v1"]).arg(&tar));
    let side = d.path().join("a.tar.tarfs");
    let good = std::fs::read(&side).unwrap();
    // The extension follows the 20 entries and a zero block: flip a byte of its records.
    let mut bad = good.clone();
    bad[(20 + 2) * 512 + 512 + 70] ^= 0x40;
    std::fs::write(&side, &bad).unwrap();
    // The reader finds the damage as it opens the index (the entry digests lie in the damaged
    // piece), says so and scans: the listing is the scan's, never one from the damaged data.
    let out = tarfs().arg("ls").arg(&tar).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("corrupt") || err.contains("bad checksum"), "{err}");
    if out.status.success() {
        std::fs::rename(&side, d.path().join("moved")).unwrap();
        assert_eq!(out.stdout, ok(tarfs().arg("ls").arg(&tar)).stdout, "ls answered from a damaged extension");
        std::fs::rename(d.path().join("moved"), &side).unwrap();
    }
    let out = tarfs().arg("verify").arg(&tar).output().unwrap();
    assert!(!out.status.success(), "verify passed a damaged extension");
}

/// An index without extension data — from an older tarfs (the TFSX record without flag 8) or
/// from another v1.0 writer (no TFSX record) — still works, and `tarfs index` rebuilds the
/// older tarfs one with extension data.
#[test]
fn indexes_without_extension_data_still_work() {
    let d = tmp();
    let tar = d.path().join("a.tar");
    let script = "import io,sys,tarfile\nwith tarfile.open(sys.argv[1],'w',format=tarfile.PAX_FORMAT) as t:\n for i in range(30):\n  d=b'y'*i\n  ti=tarfile.TarInfo(('p/'+'w'*120 if i%2 else 'short')+str(i)); ti.size=len(d); t.addfile(ti,io.BytesIO(d))\n";
    ok(Command::new("python3").arg("-c").arg(script).arg(&tar));
    let scan = ok(tarfs().arg("ls").arg("--json").arg(&tar)).stdout;
    ok(tarfs().args(["index", "--format", "v1"]).arg(&tar));
    let side = d.path().join("a.tar.tarfs");
    let full = std::fs::read(&side).unwrap();
    let entries_end = (30 + 1) * 512;
    // An older tarfs: the record without the extension flag and length, nothing after the entries.
    let mut older = full[..entries_end].to_vec();
    older[68] = 1;
    older[69] &= !8;
    older[112..120].fill(0);
    older[128..512].fill(0);
    // Another v1.0 writer: no TFSX record at all.
    let mut plain = full[..entries_end].to_vec();
    plain[25..512].fill(0);
    for (what, bytes) in [("older tarfs", &older), ("plain v1.0", &plain)] {
        std::fs::write(&side, bytes).unwrap();
        let out = ok(tarfs().arg("-v").arg("ls").arg("--json").arg(&tar));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("using sidecar index"), "{what}: {err}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&scan), "{what}");
        let name = format!("p/{}29", "w".repeat(120));
        assert_eq!(ok(tarfs().arg("cat").arg(&tar).arg(&name)).stdout, b"y".repeat(29), "{what}");
    }
    std::fs::write(&side, &older).unwrap();
    let out = ok(tarfs().arg("-v").args(["index", "--format", "v1"]).arg(&tar));
    assert!(String::from_utf8_lossy(&out.stderr).contains("without extension data"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&side).unwrap(), full, "rebuilt as tarfs writes it now");
}

/// A fixed-seed generator.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Damaged sidecars never give a wrong answer: `ls --json` prints exactly the scan's listing or
/// fails, and `cat` prints the member's true bytes or fails. Mutants flip one byte anywhere in
/// the sidecar, most in the entries and the extension, and some flip an entry byte and fix up
/// its checksum (so only the extension's binding can tell). `TARFS_INDEX_MUTANTS=N` sets the
/// number (default 300; the closing campaign runs 3,000).
#[test]
fn damaged_sidecars_never_answer_wrong() {
    let n: usize = std::env::var("TARFS_INDEX_MUTANTS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let d = tmp();
    let tar = d.path().join("m.tar");
    let script = "import io,sys,tarfile\nwith tarfile.open(sys.argv[1],'w',format=tarfile.PAX_FORMAT) as t:\n for i in range(60):\n  d=bytes([65+i%26])*(i*13)\n  ti=tarfile.TarInfo(('q/'+'v'*(100+i) if i%3 else 'k/s')+str(i)); ti.size=len(d); ti.mtime=1600000000+i; ti.uname='o'*(i%40); t.addfile(ti,io.BytesIO(d))\n";
    ok(Command::new("python3").arg("-c").arg(script).arg(&tar));
    let scan = ok(tarfs().arg("ls").arg("--json").arg(&tar)).stdout;
    ok(tarfs().args(["index", "--format", "v1"]).arg(&tar));
    let side = d.path().join("m.tar.tarfs");
    let good = std::fs::read(&side).unwrap();
    let entries = 60usize;
    let member = format!("q/{}40", "v".repeat(140));
    let want = vec![65 + 40 % 26; 40 * 13];
    let mut rng = Rng(0x14_2026_1202);
    let mut refused = 0;
    for i in 0..n {
        let mut bad = good.clone();
        let what = match rng.below(4) {
            0 => {
                let at = rng.below(bad.len());
                bad[at] ^= 1 << rng.below(8);
                format!("bit at byte {at}")
            }
            1 => {
                let at = (entries + 2) * 512 + rng.below(bad.len() - (entries + 2) * 512);
                bad[at] = bad[at].wrapping_add(1 + rng.below(255) as u8);
                format!("extension byte {at}")
            }
            _ => {
                // An entry field changed, its 24-bit checksum fixed up.
                let e = 1 + rng.below(entries);
                let off = [rng.below(100), 100 + rng.below(48), 148 + rng.below(5), 156 + rng.below(344)][rng.below(4)];
                let at = e * 512 + off;
                bad[at] = bad[at].wrapping_add(1 + rng.below(255) as u8);
                let block = &mut bad[e * 512..(e + 1) * 512];
                let sum: u32 = block[..148].iter().chain(&block[156..]).map(|&b| u32::from(b)).sum::<u32>() + 8 * 32;
                block[153..156].copy_from_slice(&(sum & 0xff_ffff).to_be_bytes()[1..]);
                format!("entry {} byte {off}, checksum fixed", e - 1)
            }
        };
        if bad == good {
            continue;
        }
        std::fs::write(&side, &bad).unwrap();
        let ls = tarfs().arg("ls").arg("--json").arg(&tar).output().unwrap();
        assert!(matches!(ls.status.code(), Some(0 | 1)), "mutant {i} ({what}): ls died: {:?}", ls.status);
        if ls.status.success() {
            assert_eq!(String::from_utf8_lossy(&ls.stdout), String::from_utf8_lossy(&scan), "mutant {i} ({what}): ls answered wrong with exit 0");
        } else {
            refused += 1;
        }
        let cat = tarfs().arg("cat").arg(&tar).arg(&member).output().unwrap();
        assert!(matches!(cat.status.code(), Some(0 | 1)), "mutant {i} ({what}): cat died: {:?}", cat.status);
        if cat.status.success() {
            assert_eq!(cat.stdout, want, "mutant {i} ({what}): cat answered wrong with exit 0");
        }
    }
    eprintln!("index mutants: {n}, of which ls refused {refused}");
}

/// `index` of an archive of large members that has left the page cache plans its scan from a
/// sample read page by page (`MADV_RANDOM`, the first 2 MiB ahead at once), not a whole
/// readahead window around each sampled header, then writes the same index as warm.
#[test]
fn a_cold_archive_is_sampled_page_by_page_and_indexed_as_warm() {
    // On the disk under the target directory: a tmpfs /tmp keeps every page.
    let d = tempfile::TempDir::new_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let src = d.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let names: Vec<String> = (0..4).map(|i| format!("m{i}")).collect();
    for (i, n) in names.iter().enumerate() {
        write_pattern(&src.join(n), (3 << 20) + i * 777, i as u64 + 9);
    }
    let a = d.path().join("a.tar");
    ok(Command::new("tar").args(["--format=pax", "-cf"]).arg(&a).arg("-C").arg(&src).args(&names));
    let index = |out: &str| {
        let log = d.path().join(format!("{out}.trace"));
        ok(Command::new("strace").args(["-f", "-qq", "-e", "trace=madvise", "-o"]).arg(&log).arg(env!("CARGO_BIN_EXE_tarfs")).args(["index", "--format", "v1"]).arg("--output").arg(d.path().join(out)).arg(&a));
        (std::fs::read(d.path().join(out)).unwrap(), std::fs::read_to_string(&log).unwrap())
    };
    let (warm, trace) = index("warm.tarfs");
    assert!(!trace.contains("MADV_RANDOM"), "a warm archive was sampled page by page: {trace}");
    drop_pages(&a);
    let (cold, trace) = index("cold.tarfs");
    assert!(trace.contains("MADV_RANDOM") && trace.contains("MADV_WILLNEED") && trace.contains("MADV_NORMAL"), "a cold archive was not sampled page by page: {trace}");
    assert!(cold == warm, "the cold index differs from the warm one");
}

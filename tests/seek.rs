//! Seek points into compressed archives (issue #15): `cat` through a sidecar's seek points (gzip
//! checkpoints, bzip2 and xz blocks, zstd frames) decodes about one span, gives what `tar -xOf`
//! gives, and never hands out bytes that a seek point got wrong; GZIDX indexes go both ways
//! with indexed_gzip.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ok, tarfs};
use tempfile::TempDir;

/// An archive of `n` members of mixed sizes (10 B to 2 MiB), half compressible text and half
/// random bytes, made by Python with seed `seed`.
fn mixed(dir: &Path, n: usize, seed: u64) -> PathBuf {
    let a = dir.join("m.tar");
    let script = r#"
import io, random, sys, tarfile
r = random.Random(int(sys.argv[3]))
with tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT) as t:
    for i in range(int(sys.argv[2])):
        n = r.choice([10, 700, 5000, 60000, 300000, 2 << 20])
        if i % 2:
            d = r.randbytes(n)
        else:
            d = (('line %d of member %d\n' % (i, i)) * (n // 10 + 1)).encode()[:n]
        ti = tarfile.TarInfo('d%d/member-%05d.dat' % (i % 9, i)); ti.size = n; ti.mtime = 1_600_000_000 + i
        t.addfile(ti, io.BytesIO(d))
"#;
    ok(Command::new("python3").arg("-c").arg(script).arg(&a).arg(n.to_string()).arg(seed.to_string()));
    a
}

fn gzip(plain: &Path, tool: &str) -> PathBuf {
    let z = plain.with_extension(format!("{tool}.tar.gz"));
    ok(Command::new("sh").arg("-c").arg(format!("{tool} -6 -c {} > {}", plain.display(), z.display())));
    z
}

fn members(plain: &Path) -> Vec<String> {
    String::from_utf8(ok(Command::new("tar").arg("-tf").arg(plain)).stdout).unwrap().lines().map(str::to_string).collect()
}

/// `tarfs -v extract` of `z` and `tar -xf` of `plain` into new directories under `tmp` (named
/// after `label`), which must be the same (`diff -r`); tarfs's messages.
fn extract_like_tar(z: &Path, plain: &Path, tmp: &Path, label: &str) -> String {
    let (ours, theirs) = (tmp.join(format!("x-{label}")), tmp.join(format!("t-{label}")));
    fs::create_dir_all(&ours).unwrap();
    fs::create_dir_all(&theirs).unwrap();
    let out = ok(tarfs().arg("-v").arg("extract").arg(z).arg("-C").arg(&ours));
    ok(Command::new("tar").arg("-xf").arg(plain).arg("-C").arg(&theirs));
    ok(Command::new("diff").arg("-r").arg(&ours).arg(&theirs));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `tarfs -v cat`: the bytes, and the decompressed byte count it reports.
fn cat(z: &Path, names: &[&str], extra: &[&str]) -> (Vec<u8>, u64, String) {
    let out = ok(tarfs().arg("-v").arg("cat").args(extra).arg(z).args(names));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let decoded = err.split(" bytes decompressed").next().and_then(|s| s.rsplit(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(u64::MAX);
    (out.stdout, decoded, err)
}

#[test]
fn cat_through_seek_points_decodes_one_span_and_equals_tar() {
    let tmp = TempDir::new().unwrap();
    let plain = mixed(tmp.path(), 120, 7);
    let names = members(&plain);
    let plain_len = fs::metadata(&plain).unwrap().len();
    for tool in ["gzip", "pigz"] {
        let z = gzip(&plain, tool);
        let out = ok(tarfs().arg("-v").arg("index").arg("--span").arg("1M").arg(&z));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("seek points"), "{tool}: {err}");
        // The last member costs about one span (1 MiB), plus the piece it ends in.
        let last = names.last().unwrap();
        let (bytes, decoded, err) = cat(&z, &[last], &[]);
        assert_eq!(bytes, ok(Command::new("tar").arg("-xOf").arg(&plain).arg(last)).stdout, "{tool}: {last}");
        assert!(err.contains("through its seek points"), "{tool}: {err}");
        assert!(decoded <= 5 << 20 && decoded < plain_len / 4, "{tool}: {decoded} bytes decompressed for the last member of {plain_len}");
        // Every member, one at a time and all at once, equals tar's.
        for name in &names {
            let (bytes, _, _) = cat(&z, &[name], &[]);
            assert_eq!(bytes, ok(Command::new("tar").arg("-xOf").arg(&plain).arg(name)).stdout, "{tool}: {name}");
        }
        let all: Vec<&str> = names.iter().map(String::as_str).collect();
        let (bytes, _, _) = cat(&z, &all, &[]);
        assert_eq!(bytes, ok(Command::new("tar").arg("-xOf").arg(&plain)).stdout, "{tool}: all members");
        // extract makes one forward pass through the checkpoints, no temporary copy.
        let err = extract_like_tar(&z, &plain, tmp.path(), tool);
        let decoded: u64 = err.split(" bytes decompressed").next().and_then(|s| s.rsplit(' ').next()).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{err}"));
        assert!(err.contains("through its seek points") && decoded <= plain_len + (4 << 20), "{tool}: {err}");
        // At the default span, the seek section is at most 1% of the decompressed stream.
        ok(tarfs().arg("index").arg("--force").arg(&z));
        let side = fs::read(format!("{}.tarfs", z.display())).unwrap();
        let info = tarfs::format::tarfs::decode_header_as(side[..512].try_into().unwrap(), 2).unwrap().info.unwrap();
        assert!(info.flags & tarfs::format::tarfs::FLAG_SEEK != 0);
        assert!(info.seek_len * 100 <= plain_len, "{tool}: {} bytes of seek data for {plain_len}", info.seek_len);
        // The second reader of v2 (the default, deflated here) lists it; a plain v1.0 reader
        // reads a v1 sidecar with its seek section.
        let v2 = ok(Command::new("python3").arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/v2_reader.py")).arg(format!("{}.tarfs", z.display())));
        assert_eq!(String::from_utf8_lossy(&v2.stdout).lines().count(), names.len(), "{tool}: the v2 reader's entries");
        ok(tarfs().args(["index", "--force", "--format", "v1"]).arg(&z));
        let v1 = ok(Command::new("python3").arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/v1_reader.py")).arg("sidecar").arg(format!("{}.tarfs", z.display())));
        assert_eq!(String::from_utf8_lossy(&v1.stdout).lines().count(), names.len(), "{tool}: the v1.0 reader's entries");
    }
}

/// A byte changed in the middle of the compressed stream (inside a stored block of random data,
/// so the stream still decodes, and its first and last 64 KiB are the same): the checkpoints
/// after it still give the right bytes, and any piece that the change reaches fails its digest.
/// No member is ever printed wrong.
#[test]
fn a_changed_stream_is_an_error_never_wrong_bytes() {
    let tmp = TempDir::new().unwrap();
    let plain = mixed(tmp.path(), 60, 11);
    let names = members(&plain);
    let z = gzip(&plain, "gzip");
    ok(tarfs().arg("index").arg("--span").arg("1M").arg(&z));
    let original = fs::read(&z).unwrap();
    let mut wrong = 0;
    let (mut errors, mut right) = (0, 0);
    for (k, frac) in [0.3f64, 0.5, 0.7].iter().enumerate() {
        let mut bytes = original.clone();
        let at = (bytes.len() as f64 * frac) as usize;
        bytes[at] ^= 0x5a;
        fs::write(&z, &bytes).unwrap();
        for name in &names {
            let want = ok(Command::new("tar").arg("-xOf").arg(&plain).arg(name)).stdout;
            let out = tarfs().arg("cat").arg(&z).arg(name).output().unwrap();
            if out.status.success() {
                if out.stdout == want {
                    right += 1;
                } else {
                    wrong += 1;
                    eprintln!("change {k} at {at}: {name}: wrong bytes");
                }
            } else {
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(err.contains(&z.display().to_string()) && (err.contains("digest") || err.contains("DEFLATE") || err.contains("differs")), "{err}");
                errors += 1;
            }
        }
    }
    assert_eq!(wrong, 0);
    // The changed file is no longer the one indexed (its digest differs): the sidecar does not
    // answer, and reads decode from the start, through the change (#29: a file of the same
    // length is never answered for from the old index).
    assert!(errors > 0, "{errors} errors, {right} right");
    let out = tarfs().arg("-v").arg("ls").arg(&z).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("digest differs"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Damage anywhere in the seek section: the sidecar's seek points are not used (said with -v)
/// or the bytes come out right; never wrong.
#[test]
fn a_damaged_seek_section_is_never_used_wrongly() {
    let tmp = TempDir::new().unwrap();
    let plain = mixed(tmp.path(), 40, 3);
    let names = members(&plain);
    let framed = blocked_and_framed(&plain, tmp.path());
    let pick: Vec<&str> = [0, names.len() / 2, names.len() - 1].iter().map(|&i| names[i].as_str()).collect();
    let want: Vec<Vec<u8>> = pick.iter().map(|n| ok(Command::new("tar").arg("-xOf").arg(&plain).arg(n)).stdout).collect();
    // gzip's checkpoints at length, then bzip2's blocks and zstd's frames.
    for (z, rounds) in [(gzip(&plain, "gzip"), 150), (framed[0].clone(), 50), (framed[3].clone(), 50)] {
    ok(tarfs().arg("index").arg("--span").arg("1M").arg(&z));
    let side = PathBuf::from(format!("{}.tarfs", z.display()));
    let good = fs::read(&side).unwrap();
    let info = tarfs::format::tarfs::decode_header_as(good[..512].try_into().unwrap(), 2).unwrap().info.unwrap();
    let start = good.len() - info.seek_len as usize;
    let mut state = 0x9e3779b97f4a7c15u64;
    let (mut refused, mut same) = (0, 0);
    for round in 0..rounds {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut bytes = good.clone();
        // The header, the digests, and the checkpoint payload: the first rounds hit the header.
        let span = if round < rounds / 4 { 64 } else { info.seek_len as usize };
        let at = start + (state as usize % span);
        bytes[at] ^= 1 << (state >> 60 & 7);
        fs::write(&side, &bytes).unwrap();
        for (name, want) in pick.iter().zip(&want) {
            let out = tarfs().arg("-v").arg("cat").arg(&z).arg(name).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            if out.status.success() {
                assert_eq!(&out.stdout, want, "round {round}: byte {at}: {name}: {err}");
                if err.contains("decompressing from the start instead") || err.contains("scanning instead") {
                    refused += 1;
                } else {
                    same += 1;
                }
            } else {
                assert!(err.contains("seek") || err.contains("digest"), "round {round}: byte {at}: {err}");
                refused += 1;
            }
        }
    }
    fs::write(&side, &good).unwrap();
    assert!(refused > 0, "{}: {refused} refused, {same} read through it", z.display());
    }
}

/// GZIDX both ways with indexed_gzip from PyPI (installed by scripts/test.sh into
/// target/pydeps): it seeks with an index tarfs exports and reads the same bytes, and tarfs
/// reads through an index it writes.
#[test]
fn gzidx_indexes_go_both_ways_with_indexed_gzip() {
    let pydeps = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pydeps");
    let check = Command::new("python3").arg("-c").arg("import indexed_gzip").env("PYTHONPATH", &pydeps).output().unwrap();
    assert!(check.status.success(), "indexed_gzip must be installed in {} (scripts/test.sh does it): {}", pydeps.display(), String::from_utf8_lossy(&check.stderr));
    let tmp = TempDir::new().unwrap();
    let plain = mixed(tmp.path(), 80, 5);
    let z = gzip(&plain, "gzip");
    let ours = tmp.path().join("ours.gzidx");
    ok(tarfs().arg("index").arg("--span").arg("1M").arg("--gzidx").arg(&ours).arg(&z));
    let script = r#"
import hashlib, sys, indexed_gzip
gz, idx, mode, plain = sys.argv[1:5]
if mode == 'read':
    f = indexed_gzip.IndexedGzipFile(gz)
    f.import_index(idx)
    points = list(f.seek_points())
    assert len(points) > 3, points
    data = open(plain, 'rb').read()
    step = max(1, len(data) // 37)
    for off in list(range(0, len(data), step)) + [len(data) - 1000]:
        f.seek(off)
        assert f.read(4096) == data[off:off + 4096], off
    print(len(points))
else:
    f = indexed_gzip.IndexedGzipFile(gz, spacing=1 << 20)
    f.build_full_index()
    f.export_index(idx)
"#;
    let py = |mode: &str, idx: &Path| ok(Command::new("python3").arg("-c").arg(script).arg(&z).arg(idx).arg(mode).arg(&plain).env("PYTHONPATH", &pydeps));
    let points: u64 = String::from_utf8(py("read", &ours).stdout).unwrap().trim().parse().unwrap();
    assert!(points >= 4);
    let theirs = tmp.path().join("theirs.gzidx");
    py("write", &theirs);
    let names = members(&plain);
    for name in [&names[0], &names[names.len() / 2], names.last().unwrap()] {
        let (bytes, decoded, err) = cat(&z, &[name], &["--gzidx", theirs.to_str().unwrap()]);
        assert_eq!(bytes, ok(Command::new("tar").arg("-xOf").arg(&plain).arg(name)).stdout, "{name}");
        assert!(err.contains("GZIDX"), "{err}");
        assert!(decoded <= 4 << 20, "{decoded} bytes decompressed through indexed_gzip's index");
    }
    // An index of another file is refused, not used.
    let other = mixed(&tmp.path().join("o").tap_mkdir(), 10, 9);
    let oz = gzip(&other, "gzip");
    let out = tarfs().arg("cat").arg("--gzidx").arg(&theirs).arg(&oz).arg(&members(&other)[0]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
}

/// An archive of `n` members of prose (words drawn from a vocabulary of 3,000, 100 to 600 KB
/// each), whose DEFLATE stream reaches far back into its window, made by Python with seed
/// `seed`.
fn prose(dir: &Path, n: usize, seed: u64) -> PathBuf {
    let a = dir.join("p.tar");
    let script = r#"
import io, random, sys, tarfile
r = random.Random(int(sys.argv[3]))
words = [('w%d' % i).encode() * r.randint(1, 4) for i in range(3000)]
with tarfile.open(sys.argv[1], 'w', format=tarfile.GNU_FORMAT) as t:
    for i in range(int(sys.argv[2])):
        d = b' '.join(r.choice(words) for _ in range(r.randint(10000, 60000)))
        ti = tarfile.TarInfo('prose-%03d.txt' % i); ti.size = len(d)
        t.addfile(ti, io.BytesIO(d))
"#;
    ok(Command::new("python3").arg("-c").arg(script).arg(&a).arg(n.to_string()).arg(seed.to_string()));
    a
}

/// A GZIDX (version 1) file's seek points: for each, its offset in the decompressed stream and
/// where its window is in the file (after a 35-byte header and one 18-byte record per point,
/// one window for each point that has one).
fn gzidx_points(idx: &[u8]) -> Vec<(u64, Option<std::ops::Range<usize>>)> {
    assert_eq!(&idx[..6], b"GZIDX\x01", "a GZIDX version 1 file");
    let window = u32::from_le_bytes(idx[27..31].try_into().unwrap()) as usize;
    let points = u32::from_le_bytes(idx[31..35].try_into().unwrap()) as usize;
    let mut at = 35 + 18 * points;
    (0..points)
        .map(|i| {
            let rec = &idx[35 + 18 * i..35 + 18 * (i + 1)];
            let out = u64::from_le_bytes(rec[8..16].try_into().unwrap());
            let has = rec[17] != 0;
            at += if has { window } else { 0 };
            (out, has.then(|| at - window..at))
        })
        .collect()
}

/// Issue #29, finding 9: a GZIDX whose windows are damaged (they carry no checksum) never
/// gives wrong bytes with exit 0. With a sidecar, every piece decoded through it is checked
/// against the sidecar's digests; without one, the archive is decoded from its start. Fixed
/// seed: 16 trials (`TARFS_GZIDX_TRIALS` for more), each reading one compressible member alone (so that it is decoded from a
/// seek point) through a copy whose window for that point has a run of bytes flipped at its
/// end (the bytes that back-references reach most).
#[test]
fn a_damaged_gzidx_window_is_an_error_never_wrong_bytes() {
    let tmp = TempDir::new().unwrap();
    let plain = prose(tmp.path(), 40, 17);
    let z = gzip(&plain, "gzip");
    let good = tmp.path().join("good.gzidx");
    ok(tarfs().arg("index").arg("--span").arg("1M").arg("--gzidx").arg(&good).arg(&z));
    let idx = fs::read(&good).unwrap();
    let points = gzidx_points(&idx);
    let listing = String::from_utf8(ok(tarfs().arg("ls").arg("--json").arg(&plain)).stdout).unwrap();
    // Members of 60,000 bytes or more, each with the window its first piece (1 MiB) is decoded
    // from.
    let targets: Vec<(String, std::ops::Range<usize>)> = listing
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|m| m["size"].as_u64().unwrap() >= 60_000)
        .filter_map(|m| {
            let piece = m["data_offset"].as_u64().unwrap() / (1 << 20) * (1 << 20);
            let window = points.iter().rev().find(|(out, _)| *out <= piece)?.1.clone()?;
            Some((m["name"].as_str().unwrap().to_string(), window))
        })
        .collect();
    assert!(targets.len() >= 4, "{} members to read", targets.len());
    let mut rng = common::Rng(0x9d1d_2901);
    let (mut refused, bad) = (0, tmp.path().join("bad.gzidx"));
    let trials: usize = std::env::var("TARFS_GZIDX_TRIALS").map_or(16, |v| v.parse().unwrap());
    for trial in 0..trials {
        let (name, window) = &targets[rng.below(targets.len())];
        let mut damaged = idx.clone();
        let run = 64 + rng.below(4096);
        damaged[window.end - run..window.end].iter_mut().for_each(|b| *b ^= 1 << (trial % 8));
        fs::write(&bad, &damaged).unwrap();
        let want = ok(Command::new("tar").arg("-xOf").arg(&plain).arg(name)).stdout;
        let out = tarfs().arg("cat").arg("--gzidx").arg(&bad).arg(&z).arg(name).output().unwrap();
        if out.status.success() {
            assert!(out.stdout == want, "trial {trial} ({name}, {run} bytes flipped): exit 0 with wrong bytes");
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("do not match the index's digest"), "trial {trial}: {err}");
            refused += 1;
        }
    }
    // The damage mattered: without the digests these copies would have given wrong bytes.
    assert!(refused >= trials / 4, "only {refused} of {trials} damaged GZIDX copies were caught");
    eprintln!("{refused} of {trials} damaged GZIDX copies caught, the rest read right");
    // Without a sidecar there is nothing to check the windows against: the archive is decoded
    // from its start, and the answer is right.
    fs::remove_file(z.with_file_name(format!("{}.tarfs", z.file_name().unwrap().to_str().unwrap()))).unwrap();
    let name = &targets[0].0;
    let out = ok(tarfs().arg("cat").arg("--gzidx").arg(&bad).arg(&z).arg(name));
    assert!(out.stdout == ok(Command::new("tar").arg("-xOf").arg(&plain).arg(name)).stdout, "no sidecar: wrong bytes");
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> Self {
        fs::create_dir_all(&self).unwrap();
        self
    }
}

/// A multi-block xz file (`xz -T2 --block-size`) is read from the block that holds a member; a
/// single-block one, and the formats without seek points yet, say so when indexed.
#[test]
fn multi_block_xz_is_read_from_its_blocks() {
    let tmp = TempDir::new().unwrap();
    let plain = mixed(tmp.path(), 90, 13);
    let names = members(&plain);
    let plain_len = fs::metadata(&plain).unwrap().len();
    let z = plain.with_extension("blocks.tar.xz");
    ok(Command::new("sh").arg("-c").arg(format!("xz -T2 --block-size=1MiB -6 -c {} > {}", plain.display(), z.display())));
    let out = ok(tarfs().arg("-v").arg("index").arg(&z));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("seek points"), "{err}");
    let last = names.last().unwrap();
    let (bytes, decoded, err) = cat(&z, &[last], &[]);
    assert_eq!(bytes, ok(Command::new("tar").arg("-xOf").arg(&plain).arg(last)).stdout);
    assert!(err.contains("through its seek points") && decoded <= 5 << 20 && decoded < plain_len / 4, "{decoded}: {err}");
    for name in &names {
        let (bytes, _, _) = cat(&z, &[name], &[]);
        assert_eq!(bytes, ok(Command::new("tar").arg("-xOf").arg(&plain).arg(name)).stdout, "{name}");
    }
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(cat(&z, &all, &[]).0, ok(Command::new("tar").arg("-xOf").arg(&plain)).stdout);
    extract_like_tar(&z, &plain, tmp.path(), "xz");
    // Two xz files concatenated (multi-stream), each of several blocks.
    let bytes = fs::read(&plain).unwrap();
    let half = bytes.len() / 2 / 512 * 512;
    let (h1, h2) = (tmp.path().join("h1"), tmp.path().join("h2"));
    fs::write(&h1, &bytes[..half]).unwrap();
    fs::write(&h2, &bytes[half..]).unwrap();
    let multi = tmp.path().join("multi.tar.xz");
    ok(Command::new("sh").arg("-c").arg(format!("xz -T2 --block-size=1MiB -c {} > {m}; xz -T2 --block-size=1MiB -c {} >> {m}", h1.display(), h2.display(), m = multi.display())));
    ok(tarfs().arg("index").arg(&multi));
    for name in [&names[0], &names[names.len() / 2], last] {
        let (got, _, err) = cat(&multi, &[name], &[]);
        assert_eq!(got, ok(Command::new("tar").arg("-xOf").arg(&plain).arg(name)).stdout, "multi-stream: {name}");
        assert!(err.contains("through its seek points"), "{err}");
    }
    // One block or frame: no seek points, and the report says so.
    let small = tmp.path().join("small.tar");
    fs::write(tmp.path().join("note.txt"), "one small member\n").unwrap();
    ok(Command::new("tar").arg("-cf").arg(&small).arg("-C").arg(tmp.path()).arg("note.txt"));
    for (ext, cmd, input) in [("single.tar.xz", "xz -T1 -c", &plain), ("tar.zst", "zstd -q -c", &plain), ("tar.bz2", "bzip2 -c", &small)] {
        let z = plain.with_extension(ext);
        ok(Command::new("sh").arg("-c").arg(format!("{cmd} {} > {}", input.display(), z.display())));
        let out = ok(tarfs().arg("index").arg("--json").arg(&z));
        let rec: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
        assert!(rec["reason"].as_str().unwrap().contains("no seek points"), "{ext}: {rec}");
        let first = &members(input)[0];
        assert_eq!(cat(&z, &[first], &[]).0, ok(Command::new("tar").arg("-xOf").arg(input).arg(first)).stdout, "{ext}");
    }
}

/// A zstd file in the seekable format (frames of `frame` bytes of input, then the seek table in
/// a skippable frame), as zeekstd and t2sz write it.
fn seekable_zstd(plain: &Path, dest: &Path, frame: usize) {
    let data = fs::read(plain).unwrap();
    let mut out = Vec::new();
    let mut table = Vec::new();
    for chunk in data.chunks(frame) {
        let c = zstd::bulk::compress(chunk, 3).unwrap();
        table.extend_from_slice(&(c.len() as u32).to_le_bytes());
        table.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
        out.extend_from_slice(&c);
    }
    let frames = (table.len() / 8) as u32;
    table.extend_from_slice(&frames.to_le_bytes());
    table.push(0);
    table.extend_from_slice(&0x8F92_EAB1u32.to_le_bytes());
    out.extend_from_slice(&0x184D_2A5Eu32.to_le_bytes());
    out.extend_from_slice(&(table.len() as u32).to_le_bytes());
    out.extend_from_slice(&table);
    fs::write(dest, out).unwrap();
}

/// `plain` compressed each way whose blocks or frames can be decoded alone: bzip2 at its
/// smallest and largest blocks, two bzip2 streams concatenated, pzstd, zstd files concatenated,
/// and the zstd seekable format.
fn blocked_and_framed(plain: &Path, tmp: &Path) -> Vec<PathBuf> {
    let bytes = fs::read(plain).unwrap();
    let half = bytes.len() / 2 / 512 * 512;
    let (h1, h2) = (tmp.join("h1.tar"), tmp.join("h2.tar"));
    fs::write(&h1, &bytes[..half]).unwrap();
    fs::write(&h2, &bytes[half..]).unwrap();
    let p = plain.display();
    let mut out = Vec::new();
    for (name, cmd) in [
        ("b1.tar.bz2", format!("bzip2 -1 -c {p}")),
        ("b9.tar.bz2", format!("bzip2 -9 -c {p}")),
        ("streams.tar.bz2", format!("bzip2 -c {}; bzip2 -c {}", h1.display(), h2.display())),
        ("pzstd.tar.zst", format!("pzstd -q -p 2 -c {p}")),
        ("frames.tar.zst", format!("zstd -q -c {}; zstd -q -c {}", h1.display(), h2.display())),
    ] {
        let z = tmp.join(name);
        ok(Command::new("sh").arg("-c").arg(format!("({cmd}) > {}", z.display())));
        out.push(z);
    }
    let z = tmp.join("seekable.tar.zst");
    seekable_zstd(plain, &z, 1 << 20);
    out.push(z);
    out
}

/// bzip2 blocks and zstd frames: every member through the seek points equals tar's, the last
/// one costs about a block or a frame, extract and verify go through them too.
#[test]
fn bzip2_blocks_and_zstd_frames_are_seek_points() {
    let tmp = TempDir::new().unwrap();
    let plain = mixed(tmp.path(), 60, 17);
    let names = members(&plain);
    let plain_len = fs::metadata(&plain).unwrap().len();
    let last = names.last().unwrap();
    for z in blocked_and_framed(&plain, tmp.path()) {
        let label = z.file_name().unwrap().to_string_lossy().into_owned();
        let out = ok(tarfs().arg("index").arg("--json").arg(&z));
        let rec: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
        let reason = rec["reason"].as_str().unwrap();
        assert!(reason.contains("seek points") && !reason.contains("no seek points"), "{label}: {rec}");
        let (bytes, decoded, err) = cat(&z, &[last], &[]);
        assert_eq!(bytes, ok(Command::new("tar").arg("-xOf").arg(&plain).arg(last)).stdout, "{label}");
        assert!(err.contains("through its seek points") && decoded <= 5 << 20 && decoded < plain_len / 4, "{label}: {decoded}: {err}");
        for name in &names {
            let (bytes, _, _) = cat(&z, &[name], &[]);
            assert_eq!(bytes, ok(Command::new("tar").arg("-xOf").arg(&plain).arg(name)).stdout, "{label}: {name}");
        }
        let all: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(cat(&z, &all, &[]).0, ok(Command::new("tar").arg("-xOf").arg(&plain)).stdout, "{label}: all");
        assert!(extract_like_tar(&z, &plain, tmp.path(), &label).contains("through its seek points"), "{label}");
        ok(tarfs().arg("verify").arg(&z));
    }
}

/// A byte changed in the middle of a bzip2 or zstd file (so its length and its first and last
/// 64 KiB stay the same): members are printed right or not at all, and the error names the
/// archive.
#[test]
fn a_changed_bzip2_or_zstd_stream_is_an_error_never_wrong_bytes() {
    let tmp = TempDir::new().unwrap();
    let plain = mixed(tmp.path(), 40, 23);
    let names = members(&plain);
    let want: Vec<Vec<u8>> = names.iter().map(|n| ok(Command::new("tar").arg("-xOf").arg(&plain).arg(n)).stdout).collect();
    for z in blocked_and_framed(&plain, tmp.path()) {
        ok(tarfs().arg("index").arg(&z));
        let original = fs::read(&z).unwrap();
        let (mut errors, mut right) = (0, 0);
        for frac in [0.35f64, 0.6] {
            let mut bytes = original.clone();
            let at = (bytes.len() as f64 * frac) as usize;
            bytes[at] ^= 0x5a;
            fs::write(&z, &bytes).unwrap();
            for (name, want) in names.iter().zip(&want) {
                let out = tarfs().arg("cat").arg(&z).arg(name).output().unwrap();
                if out.status.success() {
                    assert_eq!(&out.stdout, want, "{}: change at {at}: {name}: wrong bytes", z.display());
                    right += 1;
                } else {
                    let err = String::from_utf8_lossy(&out.stderr);
                    assert!(err.contains(&z.display().to_string()) && (err.contains("digest") || err.contains("byte")), "{err}");
                    errors += 1;
                }
            }
        }
        fs::write(&z, &original).unwrap();
        // The sidecar no longer answers for the changed file (see above).
        assert!(errors > 0, "{}: {errors} errors, {right} right", z.display());
    }
}

/// The decompressed stream of `z`, by Python's decoders (gzip members, bzip2 streams, xz
/// streams, LZMA alone, each up to what follows its end) and the zstd tool: the reference for
/// what tarfs decodes.
fn reference_decode(z: &Path, kind: &str, out: &Path) {
    if kind == "zstd" {
        ok(Command::new("sh").arg("-c").arg(format!("zstd -q -dc {} > {}", z.display(), out.display())));
        return;
    }
    let script = r#"
import bz2, lzma, sys, zlib
data, kind, out = open(sys.argv[1], 'rb').read(), sys.argv[2], b''
def each(magic, new):
    global data, out
    while data.startswith(magic):
        d = new(); out += d.decompress(data); data = d.unused_data
if kind == 'gzip': each(b'\x1f\x8b', lambda: zlib.decompressobj(31))
elif kind == 'bzip2': each(b'BZh', bz2.BZ2Decompressor)
elif kind == 'xz': each(b'\xfd7zXZ\x00', lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ))
else: out = lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(data)
open(sys.argv[3], 'wb').write(out)
"#;
    ok(Command::new("python3").arg("-c").arg(script).arg(z).arg(kind).arg(out));
}

/// Every compressed archive of the corpus that tarfs decodes (gzip, bzip2, xz, zstd, LZMA
/// alone) is indexed and read through its sidecar (and its seek points, where it has them):
/// cat of every regular member equals `tar -xOf` of the archive decompressed by the reference
/// decoders, and extract equals extracting the decompressed archive. An archive whose
/// decompressed form tarfs refuses is refused compressed too, with its name in the error.
#[test]
fn compressed_corpus_archives_read_as_tar_does() {
    use tarfs::format::compression::Compression;
    let corpus = common::corpus_dir();
    let tmp = TempDir::new().unwrap();
    let mut seen = 0;
    let mut failures = Vec::new();
    for entry in walkdir::WalkDir::new(&corpus).sort_by_file_name() {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() {
            continue;
        }
        let head: Vec<u8> = fs::read(entry.path()).unwrap().into_iter().take(Compression::HEAD).collect();
        let Some(c) = Compression::detect(&head).filter(|c| c.supported()) else { continue };
        seen += 1;
        let name = entry.file_name().to_string_lossy().into_owned();
        let dir = tmp.path().join(format!("{seen}"));
        fs::create_dir_all(&dir).unwrap();
        let z = dir.join(&name);
        fs::copy(entry.path(), &z).unwrap();
        let plain = dir.join("plain.tar");
        reference_decode(&z, c.name(), &plain);
        let plain_ok = tarfs().arg("index").arg(&plain).output().unwrap().status.success();
        let out = tarfs().arg("-v").arg("index").arg(&z).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if !plain_ok {
            if out.status.success() || !err.contains(&name) {
                failures.push(format!("{name}: refused decompressed, but indexed compressed (or the error does not name it): {err}"));
            }
            continue;
        }
        if !out.status.success() {
            failures.push(format!("{name}: {err}"));
            continue;
        }
        let listing: Vec<serde_json::Value> = String::from_utf8(ok(tarfs().arg("ls").arg("--json").arg(&plain)).stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let names: Vec<&str> = listing.iter().map(|m| m["name"].as_str().unwrap()).collect();
        for m in &listing {
            if !matches!(m["type"].as_str().unwrap(), "0" | "S" | "7") {
                continue;
            }
            let member = m["name"].as_str().unwrap();
            // tar -xOf prints every member of a name; tarfs cat the last, as extraction leaves it
            // (checked against tar for plain archives elsewhere).
            let want = if names.iter().filter(|n| **n == member).count() == 1 {
                ok(Command::new("tar").arg("-xOf").arg(&plain).arg(member)).stdout
            } else {
                ok(tarfs().arg("cat").arg(&plain).arg(member)).stdout
            };
            let got = tarfs().arg("cat").arg(&z).arg(member).output().unwrap();
            if got.stdout != want || !got.status.success() {
                failures.push(format!("{name}: cat {member}: {} bytes vs {}: {}", got.stdout.len(), want.len(), String::from_utf8_lossy(&got.stderr)));
            }
        }
        let (a, b) = (dir.join("from-z"), dir.join("from-plain"));
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        let ra = tarfs().arg("extract").arg(&z).arg("-C").arg(&a).output().unwrap();
        let rb = tarfs().arg("extract").arg(&plain).arg("-C").arg(&b).output().unwrap();
        let diff = Command::new("diff").arg("-r").arg("--no-dereference").arg(&a).arg(&b).output().unwrap();
        if ra.status.code() != rb.status.code() || !diff.status.success() {
            failures.push(format!("{name}: extract differs: {} / {}", String::from_utf8_lossy(&ra.stderr), String::from_utf8_lossy(&diff.stdout)));
        }
    }
    assert!(seen >= 17, "only {seen} compressed archives in the corpus");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// A `.tar.gz` followed by bytes that are not gzip (which `gzip -d` ignores with a warning) is
/// indexed without seek points, saying why, and reads as the archive without them; the same
/// archive without the trailing bytes gets its seek points. rapidgzip-core refuses such bytes,
/// and the fallback is decided by the error's type, not its words.
#[test]
fn a_gzip_followed_by_other_data_is_indexed_without_seek_points() {
    let tmp = TempDir::new().unwrap();
    let plain = mixed(tmp.path(), 12, 31);
    let z = gzip(&plain, "gzip");
    let clean = ok(tarfs().arg("-v").arg("index").arg(&z));
    assert!(!String::from_utf8_lossy(&clean.stderr).contains("no seek points"), "{}", String::from_utf8_lossy(&clean.stderr));
    let mut bytes = fs::read(&z).unwrap();
    bytes.extend_from_slice(b"this is not gzip, and gzip -d says so and goes on\n");
    let trailing = tmp.path().join("trailing.tar.gz");
    fs::write(&trailing, &bytes).unwrap();
    let out = ok(tarfs().arg("-v").arg("index").arg(&trailing));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no seek points: data that is not gzip follows the last gzip member"), "{err}");
    for name in members(&plain).iter().step_by(3) {
        let want = ok(Command::new("tar").arg("-xOf").arg(&plain).arg(name)).stdout;
        assert!(ok(tarfs().arg("cat").arg(&trailing).arg(name)).stdout == want, "{name}");
    }
}

/// `recompress --seekable`: a single-frame .tar.zst and a single-block .tar.xz become seekable
/// (the zstd seekable format, xz in blocks), decompress to the same bytes with the reference
/// tools, keep their mode and times, and get a sidecar with seek points. It is idempotent,
/// restores a missing sidecar, and refuses what it must not replace.
#[test]
fn recompress_makes_zstd_and_xz_seekable_keeping_their_bytes() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let tmp = TempDir::new().unwrap();
    let plain = mixed(tmp.path(), 40, 29);
    let bytes = fs::read(&plain).unwrap();
    let names = members(&plain);
    let last = names.last().unwrap();
    let (z, x) = (tmp.path().join("one.tar.zst"), tmp.path().join("one.tar.xz"));
    ok(Command::new("sh").arg("-c").arg(format!("zstd -q -c {p} > {}; xz -T1 -c {p} > {}", z.display(), x.display(), p = plain.display())));
    for f in [&z, &x] {
        fs::set_permissions(f, fs::Permissions::from_mode(0o640)).unwrap();
        ok(Command::new("touch").arg("-d").arg("@1500000000").arg(f));
    }
    let json = |args: &[&str], files: &[&Path]| -> Vec<serde_json::Value> {
        let out = tarfs().arg("recompress").args(args).arg("--json").args(files).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    // A dry run changes nothing.
    let recs = json(&["--seekable", "--dry-run"], &[&z, &x]);
    assert!(recs[..2].iter().all(|r| r["action"] == "would_recompress"), "{recs:?}");
    assert_eq!(fs::read(&z).unwrap(), ok(Command::new("zstd").arg("-q").arg("-c").arg(&plain)).stdout);
    let recs = json(&["--seekable", "--frame-size", "1M"], &[&z, &x]);
    assert!(recs[..2].iter().all(|r| r["action"] == "recompressed" && r["members"] == names.len()), "{recs:?}");
    for (f, tool) in [(&z, "zstd"), (&x, "xz")] {
        assert_eq!(ok(Command::new(tool).arg("-q").arg("-dc").arg(f)).stdout, bytes, "{tool}: other bytes");
        let m = fs::metadata(f).unwrap();
        assert_eq!((m.mode() & 0o7777, m.mtime()), (0o640, 1_500_000_000), "{tool}: mode and mtime");
        let (got, decoded, err) = cat(f, &[last], &[]);
        assert_eq!(got, ok(Command::new("tar").arg("-xOf").arg(&plain).arg(last)).stdout);
        assert!(err.contains("through its seek points") && decoded <= 3 << 20, "{tool}: {err}");
        let all: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(cat(f, &all, &[]).0, ok(Command::new("tar").arg("-xOf").arg(&plain)).stdout, "{tool}");
    }
    assert!(fs::read(&z).unwrap().ends_with(&0x8F92_EAB1u32.to_le_bytes()), "the zstd seekable format's footer");
    // Again: nothing to do. Without its sidecar: indexed, not rewritten.
    let before = fs::read(&x).unwrap();
    let recs = json(&["--seekable"], &[&z, &x]);
    assert!(recs[..2].iter().all(|r| r["action"] == "skipped"), "{recs:?}");
    fs::remove_file(format!("{}.tarfs", x.display())).unwrap();
    let recs = json(&["--seekable"], &[&x]);
    assert_eq!(recs[0]["action"], "indexed", "{recs:?}");
    assert_eq!(fs::read(&x).unwrap(), before);
    // A file with two names is refused, unchanged; through a symbolic link, the file it names
    // is rewritten and the link stays.
    let twin = tmp.path().join("twin.tar.xz");
    fs::hard_link(&x, &twin).unwrap();
    let out = tarfs().arg("recompress").arg("--seekable").arg("--force").arg(&x).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hard links"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(fs::read(&x).unwrap(), before);
    fs::remove_file(&twin).unwrap();
    let link = tmp.path().join("link.tar.zst");
    std::os::unix::fs::symlink(&z, &link).unwrap();
    ok(tarfs().arg("recompress").arg("--seekable").arg("--force").arg("--frame-size").arg("2M").arg(&link));
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(ok(Command::new("zstd").arg("-q").arg("-dc").arg(&z)).stdout, bytes);
    // gzip needs no recompressing.
    let g = gzip(&plain, "gzip");
    let out = tarfs().arg("recompress").arg("--seekable").arg(&g).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("need no recompressing"));
}

/// `recompress` of a file overwritten while it runs (#29 finding 15), paused once the new file
/// is written and verified: the archive is overwritten in place with other bytes of the same
/// length and its mtime put back (`touch -r`), which leaves only its ctime changed. The new
/// file must not replace it: exit 1, the file holds what was written to it byte for byte, and
/// neither a temporary file nor a sidecar is left.
#[test]
fn recompress_leaves_a_file_rewritten_while_it_runs() {
    use std::os::unix::fs::FileExt;
    let tmp = TempDir::new().unwrap();
    let plain = mixed(tmp.path(), 40, 31);
    let dir = tmp.path().join("d");
    fs::create_dir(&dir).unwrap();
    let z = dir.join("one.tar.zst");
    ok(Command::new("sh").arg("-c").arg(format!("zstd -q -c {} > {}", plain.display(), z.display())));
    let other: Vec<u8> = fs::read(&z).unwrap().iter().map(|b| b ^ 0x5a).collect();
    let stamp = tmp.path().join("stamp");
    let out = common::run_paused(tarfs().arg("recompress").arg("--seekable").arg("--frame-size").arg("64K").arg(&z), "recompress-verified", || {
        ok(Command::new("touch").arg("-r").arg(&z).arg(&stamp));
        fs::OpenOptions::new().write(true).open(&z).unwrap().write_all_at(&other, 0).unwrap();
        ok(Command::new("touch").arg("-r").arg(&stamp).arg(&z));
    });
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the file changed while it was being recompressed"), "{err}");
    assert!(fs::read(&z).unwrap() == other, "the file does not hold what was written to it");
    let left: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, [std::ffi::OsString::from("one.tar.zst")], "files left beside it");
}

//! Every reader over thousands of damaged indexes, the archives untouched (issue #29): sidecars,
//! embedded `.tarfs` members and CSV index members of one archive, each mutated with a fixed
//! seed (bit flips, random bytes, swapped bytes, +1/-1 pairs that keep a byte sum, an entry
//! block copied over another, truncation). Every mutant goes through `ls --json`, `cat` of two
//! members and `extract`; every 40th also through a mount.
//!
//! Pass: each run either fails (exit 1, nothing written for `cat`) or answers exactly as the
//! undamaged archive reads (names, offsets, bytes, the extracted tree): 0 wrong answers with exit
//! 0, 0 members missing, 0 panics. CI runs a sample of 200 mutants of each form (600 in all, about
//! a minute); `TARFS_INDEX_MUTANTS=700` runs the full campaign of 2,100 (about 3 minutes here).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ok, tarfs, write_pattern, Rng};
use tempfile::TempDir;

/// Damages `region` of `bytes` in one of seven ways; says which.
fn mutate(bytes: &mut Vec<u8>, region: std::ops::Range<usize>, rng: &mut Rng) -> &'static str {
    let len = region.len();
    let at = |rng: &mut Rng| region.start + rng.below(len);
    match rng.below(7) {
        0 => {
            let i = at(rng);
            bytes[i] ^= 1 << rng.below(8);
            "bit flip"
        }
        1 => {
            for _ in 0..1 + rng.below(3) {
                let i = at(rng);
                bytes[i] ^= 1 << rng.below(8);
            }
            "bit flips"
        }
        2 => {
            let i = at(rng);
            bytes[i] = rng.next() as u8;
            "random byte"
        }
        3 => {
            let (i, j) = (at(rng), at(rng));
            bytes.swap(i, j);
            "swapped bytes"
        }
        4 => {
            let (i, j) = (at(rng), at(rng));
            if i != j && bytes[i] < 255 && bytes[j] > 0 {
                bytes[i] += 1;
                bytes[j] -= 1;
            }
            "+1/-1"
        }
        5 => {
            let blocks = len / 512;
            let (x, y) = (rng.below(blocks), rng.below(blocks));
            let (x, y) = (region.start + x * 512, region.start + y * 512);
            let copy = bytes[x..x + 512].to_vec();
            bytes[y..y + 512].copy_from_slice(&copy);
            "block copied"
        }
        _ => {
            // Truncation, only where the index is a file of its own (region = whole file).
            if region.start == 0 && region.end == bytes.len() {
                bytes.truncate(rng.below(len));
                "truncated"
            } else {
                let i = at(rng);
                bytes[i] ^= 0x80;
                "high bit"
            }
        }
    }
}

/// The tree under `root`: path -> type and contents or link target.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name().into_iter().flatten() {
        let rel = e.path().strip_prefix(root).unwrap().display().to_string();
        // A CSV index is a member: its damaged bytes are the archive's, extracted as they are.
        if rel.starts_with(".tarindex_") {
            continue;
        }
        let m = fs::symlink_metadata(e.path()).unwrap();
        let what = if m.file_type().is_symlink() {
            format!("link {}", fs::read_link(e.path()).unwrap().display())
        } else if m.is_file() {
            format!("file {:x}", xxhash_rust::xxh3::xxh3_64(&fs::read(e.path()).unwrap()))
        } else {
            "dir".into()
        };
        out.insert(rel, what);
    }
    out
}

/// An archive of 150 members: small files, long names, links, a directory.
fn archive(dir: &Path) -> PathBuf {
    let src = dir.join("src");
    fs::create_dir_all(src.join("d")).unwrap();
    let mut names = vec!["d".to_string()];
    for i in 0..140 {
        let name = if i % 17 == 0 { format!("d/{}-{i}", "long-name-".repeat(12)) } else { format!("f{i:03}") };
        write_pattern(&src.join(&name), 1 + (i * 97) % 3000, i as u64);
        names.push(name);
    }
    std::os::unix::fs::symlink("f001", src.join("sym")).unwrap();
    fs::hard_link(src.join("f130"), src.join("hard")).unwrap();
    names.extend(["sym".to_string(), "hard".to_string()]);
    let a = dir.join("base.tar");
    ok(Command::new("tar").arg("--format=posix").arg("--no-recursion").arg("--mtime=@1700000000").arg("-cf").arg(&a).arg("-C").arg(&src).args(&names));
    a
}

/// What the undamaged archive `a` answers: its `ls --json` records (name and offsets), two
/// members' bytes, and its extracted tree.
struct Truth {
    listing: Vec<(String, u64, u64)>,
    cats: Vec<(String, Vec<u8>)>,
    tree: BTreeMap<String, String>,
}

fn listing_of(json: &[u8]) -> Vec<(String, u64, u64)> {
    String::from_utf8_lossy(json)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["name"].as_str().unwrap().to_string(), v["header_offset"].as_u64().unwrap(), v["data_offset"].as_u64().unwrap())
        })
        .collect()
}

fn truth_of(a: &Path, tmp: &Path) -> Truth {
    let listing = listing_of(&ok(tarfs().arg("ls").arg("--json").arg(a)).stdout);
    let cats = ["f005", "f100"].iter().map(|n| (n.to_string(), ok(Command::new("tar").arg("-xOf").arg(a).arg(n)).stdout)).collect();
    let x = tempfile::Builder::new().prefix("ref").tempdir_in(tmp).unwrap();
    ok(Command::new("tar").arg("-xf").arg(a).arg("-C").arg(x.path()).arg("--exclude=.tarfs"));
    Truth { listing, cats, tree: tree(x.path()) }
}

/// Runs every reader over the archive `a` (whose index is damaged); returns what was wrong.
fn check(a: &Path, t: &Truth, tmp: &Path, mount: bool, label: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    let out = tarfs().arg("ls").arg("--json").arg(a).output().unwrap();
    let code = out.status.code();
    if code.is_none() || code == Some(101) || code.unwrap() > 1 {
        wrong.push(format!("{label}: ls died ({:?}): {}", out.status, String::from_utf8_lossy(&out.stderr)));
    } else if out.status.success() && listing_of(&out.stdout) != t.listing {
        let got = listing_of(&out.stdout);
        let first = got.iter().zip(&t.listing).find(|(g, w)| g != w).map(|(g, w)| format!("{g:?} for {w:?}")).unwrap_or_else(|| format!("{} members for {}", got.len(), t.listing.len()));
        wrong.push(format!("{label}: ls --json answered wrong with exit 0: {first}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    for (name, want) in &t.cats {
        let out = tarfs().arg("cat").arg(a).arg(name).output().unwrap();
        if out.status.success() && &out.stdout != want || out.status.code().is_none_or(|c| c > 1) {
            wrong.push(format!("{label}: cat {name}: {:?}, {} bytes", out.status, out.stdout.len()));
        }
    }
    let x = tempfile::Builder::new().prefix("x").tempdir_in(tmp).unwrap();
    let out = tarfs().arg("extract").arg(a).arg("-C").arg(x.path()).output().unwrap();
    if out.status.success() && tree(x.path()) != t.tree || out.status.code().is_none_or(|c| c > 1) {
        wrong.push(format!("{label}: extract: {:?}", out.status));
    }
    if mount {
        let mp = tempfile::Builder::new().prefix("mnt").tempdir_in(tmp).unwrap();
        if tarfs().arg("mount").arg("--fuse").arg(a).arg(mp.path()).output().unwrap().status.success() {
            let got = tree(mp.path());
            let _ = Command::new("fusermount3").arg("-u").arg(mp.path()).output();
            // Files the mount could not read are absent answers, not wrong ones; any it did
            // read must be right.
            for (k, v) in &got {
                if t.tree.get(k) != Some(v) {
                    wrong.push(format!("{label}: mount: {k}: {v}"));
                }
            }
        }
    }
    wrong
}

#[test]
fn no_damaged_index_gives_a_wrong_answer() {
    let n: usize = std::env::var("TARFS_INDEX_MUTANTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let tmp = TempDir::new().unwrap();
    let base = archive(tmp.path());
    // The three forms: a sidecar (its whole file damaged), an embedded index and a CSV index
    // member (the bytes of its data damaged, in the archive).
    let side = tmp.path().join("side.tar");
    fs::copy(&base, &side).unwrap();
    ok(tarfs().arg("index").arg(&side));
    let emb = tmp.path().join("emb.tar");
    fs::copy(&base, &emb).unwrap();
    ok(tarfs().arg("embed").arg(&emb));
    let csv = tmp.path().join("csv.tar");
    fs::copy(&base, &csv).unwrap();
    ok(tarfs().arg("csv").arg(&csv));
    let json = |a: &Path| listing_of(&ok(tarfs().arg("ls").arg("--json").arg(a)).stdout);
    let region_of = |a: &Path, name: &str| {
        let m = common::python_members(a).into_iter().find(|m| m["name"].as_str().unwrap().starts_with(name)).expect("the index member");
        let at = m["offset_data"].as_u64().unwrap() as usize;
        at..at + m["size"].as_u64().unwrap() as usize
    };
    let side_path = PathBuf::from(format!("{}.tarfs", side.display()));
    let emb_region = region_of(&emb, ".tarfs");
    let csv_region = region_of(&csv, ".tarindex_");
    let forms: [(&str, &Path, PathBuf, Option<std::ops::Range<usize>>); 3] = [("sidecar", &side, side_path, None), ("embedded", &emb, emb.clone(), Some(emb_region)), ("csv", &csv, csv.clone(), Some(csv_region))];
    let (mut wrong, mut runs) = (Vec::new(), 0);
    for (form, archive, target, region) in &forms {
        let truth = truth_of(archive, tmp.path());
        assert_eq!(json(archive), truth.listing);
        let good = fs::read(target).unwrap();
        let mut rng = Rng(0x7a12_2026 ^ form.len() as u64);
        for k in 0..n {
            let mut bytes = good.clone();
            let region = region.clone().unwrap_or(0..bytes.len());
            let how = mutate(&mut bytes, region, &mut rng);
            fs::write(target, &bytes).unwrap();
            wrong.extend(check(archive, &truth, tmp.path(), k % 40 == 0, &format!("{form} mutant {k} ({how})")));
            runs += 1;
        }
        fs::write(target, &good).unwrap();
    }
    eprintln!("index mutants: {runs} mutants, {} wrong", wrong.len());
    assert!(wrong.is_empty(), "{} wrong of {runs}:\n{}", wrong.len(), wrong.iter().take(30).cloned().collect::<Vec<_>>().join("\n"));
}

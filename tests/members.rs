//! The owned member index (`tarfs::members`, issue #31): every form of index (a `.tarfs`
//! sidecar, an embedded `.tarfs`, a CSV index member, a compressed archive's sidecar, and a scan
//! when there is none) gives the same members as Python's `tarfile`, and `lookup` and
//! `children` answer alike through each.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ok, python_members, tarfs};
use tarfs::archive::Archive;
use tarfs::members::{open_best, MemberIndex};
use tarfs::ops::read::Source;
use tarfs::scan::ScanOptions;
use tempfile::TempDir;

/// An archive with directories, a duplicate name, a symbolic link, a hard link and a name
/// longer than 100 bytes (a pax record), written by Python.
fn sample(dir: &Path, name: &str) -> PathBuf {
    let a = dir.join(name);
    let script = r#"
import io, sys, tarfile
with tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT) as t:
    def add(name, data=b'', kind=tarfile.REGTYPE, link=''):
        i = tarfile.TarInfo(name); i.type = kind; i.linkname = link; i.mtime = 1700000000
        i.size = len(data) if kind == tarfile.REGTYPE else 0
        t.addfile(i, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    add('top', kind=tarfile.DIRTYPE)
    add('top/a.txt', b'first a')
    add('top/sub', kind=tarfile.DIRTYPE)
    add('top/sub/b.txt', b'b' * 3000)
    add('top/l', kind=tarfile.SYMTYPE, link='a.txt')
    add('top/h', kind=tarfile.LNKTYPE, link='top/a.txt')
    add('top/' + 'long' * 40, b'long name')
    add('top/a.txt', b'second a, longer')
    add('other.txt', b'other')
"#;
    ok(Command::new("python3").arg("-c").arg(script).arg(&a));
    a
}

/// A member as the tests compare it: path, size and type.
type Listed = (String, u64, char);

/// (path, size, type) of each member by `open_best`, in its order, and the source used.
fn through_index(a: &Path) -> (Vec<Listed>, Box<dyn MemberIndex>) {
    let opened = open_best(Box::new(Archive::open(a).unwrap()), None, ScanOptions::default()).unwrap();
    let mut got = Vec::new();
    opened
        .index
        .for_each(&mut |_, m| {
            // Python's tarfile drops a directory's trailing slash.
            got.push((String::from_utf8(m.path.clone()).unwrap().trim_end_matches('/').to_string(), m.size, m.typeflag as char));
            Ok(())
        })
        .unwrap();
    (got, opened.index)
}

fn python(a: &Path) -> Vec<Listed> {
    python_members(a).iter().map(|m| (m["name"].as_str().unwrap().to_string(), m["size"].as_u64().unwrap(), m["type"].as_str().unwrap().chars().next().unwrap())).collect()
}

/// What `lookup` answers (the sizes of the members found, by name) and what `children`
/// answers (the paths found, by directory).
type Answers = (BTreeMap<String, Vec<u64>>, BTreeMap<String, Vec<String>>);

/// `lookup` of every name and `children` of every directory, through `index`, as paths.
fn answers(index: &dyn MemberIndex) -> Answers {
    let path = |i: usize| String::from_utf8(index.get(i).unwrap().path).unwrap();
    let mut looked = BTreeMap::new();
    for name in ["top/a.txt", "./top/a.txt", "top/sub/b.txt", "other.txt", "missing"] {
        looked.insert(name.to_string(), index.lookup(name.as_bytes()).unwrap().iter().map(|&i| index.get(i).unwrap().size).collect());
    }
    let mut kids = BTreeMap::new();
    for dir in ["", "top", "top/sub", "top/a.txt"] {
        let mut names: Vec<String> = index.children(dir.as_bytes()).unwrap().into_iter().map(path).collect();
        names.sort();
        kids.insert(dir.to_string(), names);
    }
    (looked, kids)
}

#[test]
fn every_form_of_index_gives_the_members_tarfile_reads() {
    let tmp = TempDir::new().unwrap();
    let plain = sample(tmp.path(), "plain.tar");
    let want = python(&plain);
    let (scanned, scan_index) = through_index(&plain);
    assert_eq!(scan_index.source(), Source::Scan);
    assert_eq!(scanned, want, "a scan");
    let (looked, kids) = answers(scan_index.as_ref());
    assert_eq!(looked["top/a.txt"], vec![7, 16], "both members named top/a.txt, in archive order");
    assert_eq!(looked["./top/a.txt"], vec![7, 16]);
    assert!(looked["missing"].is_empty());
    assert_eq!(kids["top"].len(), 6, "{:?}", kids["top"]);
    assert_eq!(kids["top/sub"], vec!["top/sub/b.txt"]);
    assert_eq!(kids[""], vec!["other.txt", "top/"], "paths as stored");
    assert!(kids["top/a.txt"].is_empty());

    // A sidecar: the same members and answers, from the index.
    let side = sample(tmp.path(), "side.tar");
    ok(tarfs().arg("index").arg(&side));
    let (listed, index) = through_index(&side);
    assert!(matches!(index.source(), Source::Sidecar(_)), "{}", index.source());
    assert_eq!(listed, want, "a sidecar");
    assert_eq!(index.len(), want.len());
    assert_eq!(answers(index.as_ref()), (looked.clone(), kids.clone()), "a sidecar");

    // Embedded, into a new archive that keeps the order (in place, the leading members may not
    // move behind the hard link to them, so embed would shift the whole archive).
    let emb = tmp.path().join("emb.tar");
    ok(tarfs().arg("embed").arg("--output").arg(&emb).arg(&plain));
    let (listed, index) = through_index(&emb);
    assert_eq!(index.source(), Source::Embedded);
    assert_eq!(listed, want, "an embedded index");
    assert_eq!(answers(index.as_ref()), (looked.clone(), kids.clone()), "an embedded index");

    // A CSV index member: it lists itself too.
    let csv = sample(tmp.path(), "csv.tar");
    ok(tarfs().arg("csv").arg(&csv));
    let (listed, index) = through_index(&csv);
    assert!(matches!(index.source(), Source::Csv(..)), "{}", index.source());
    assert_eq!(listed, python(&csv), "a CSV index");
    assert_eq!(answers(index.as_ref()).0, looked, "a CSV index");

    // A compressed archive's sidecar.
    ok(Command::new("gzip").arg("-k").arg(&side));
    let gz = PathBuf::from(format!("{}.gz", side.display()));
    ok(tarfs().arg("index").arg(&gz));
    let (listed, index) = through_index(&gz);
    assert!(matches!(index.source(), Source::Sidecar(_)), "{}", index.source());
    assert_eq!(listed, want, "a compressed archive's sidecar");
    assert_eq!(answers(index.as_ref()), (looked, kids), "a compressed archive's sidecar");
}

#[test]
fn a_stale_sidecar_is_passed_over_with_its_typed_verdict() {
    let tmp = TempDir::new().unwrap();
    let a = sample(tmp.path(), "a.tar");
    ok(tarfs().arg("index").arg(&a));
    // Another archive in its place: the sidecar no longer answers, and says why as a value.
    let other = sample(tmp.path(), "b.tar");
    ok(Command::new("sh").arg("-c").arg(format!("printf 'x' >> {}", other.display())));
    std::fs::rename(&other, &a).unwrap();
    let opened = open_best(Box::new(Archive::open(&a).unwrap()), None, ScanOptions::default()).unwrap();
    assert_eq!(opened.index.source(), Source::Scan);
    assert_eq!(opened.refusals.len(), 1, "{:?}", opened.refusals);
    assert!(matches!(opened.refusals[0].verdict, tarfs::verdict::Verdict::Stale(tarfs::verdict::Why::Length { .. })), "{:?}", opened.refusals[0]);
}

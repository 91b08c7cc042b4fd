//! The read seam (issue #31, "one source"): an archive that does not lend its bytes whole
//! ([`Unmapped`]: `pread` at offsets, as an object store is read by range) answers as the
//! mapping does, everywhere: the verdict's sample, tail and digest, the locating of embedded and
//! CSV indexes, the scan, the decoded stream and the seek points.
//!
//! For every archive of the conformance corpus that tarfs scans, and for each way it can be
//! indexed (none, a sidecar, an embedded index, a CSV index member), the reader over
//! [`Unmapped`] must choose the same index, list the same members, write the same contents for
//! each, extract the same tree and verify alike as the reader over the mapping. So must
//! compressed archives read through their seek points. Where the two differ, a path still needs
//! the bytes lent whole, or a stream path answers otherwise.

mod common;

use std::path::{Path, PathBuf};

use common::{corpus_dir, ok, tarfs, truth};
use tarfs::archive::{Archive, ArchiveFile, Unmapped};
use tarfs::ops::extract::{extract, ExtractOptions};
use tarfs::ops::read::{cat, Reader, Source};
use tarfs::ops::verify::verify;
use tarfs::ops::select::Selection;
use tarfs::source::Positioned;
use tarfs::ScanOptions;

/// What a reader says of an archive: its members, then the contents of every `step`th regular
/// member (by `cat`, every occurrence of its name), then the tree `extract` leaves.
fn answers(reader: &Reader<'_>, dest: &Path, step: usize) -> Result<(Vec<String>, Vec<Vec<u8>>, Vec<String>), String> {
    let mut members = Vec::new();
    let mut names = Vec::new();
    reader
        .for_each(|e| {
            members.push(format!("{} {} {} {} {}", String::from_utf8_lossy(&e.path()), e.typeflag, e.size, e.data_offset, e.mtime));
            // Contents are compared up to 64 MiB a member (a sparse member may declare gigabytes
            // of holes, which cat would write as zeros).
            if matches!(e.typeflag, b'0' | 0 | b'7') && e.size <= 64 << 20 {
                names.push(e.path().into_owned());
            }
            Ok(())
        })
        .map_err(|e| format!("list: {e}"))?;
    let mut contents = Vec::new();
    for name in names.iter().step_by(step) {
        let mut out = Vec::new();
        cat(reader, std::slice::from_ref(name), &mut out).map_err(|e| format!("cat {}: {e}", String::from_utf8_lossy(name)))?;
        contents.push(out);
    }
    std::fs::create_dir_all(dest).unwrap();
    let report = extract(reader, &ExtractOptions { dest: dest.to_path_buf(), select: Selection::all(), strip_components: 0, numeric_owner: true }).map_err(|e| format!("extract: {e}"))?;
    let mut tree = report.failures.iter().map(|f| format!("failed: {}", f.rsplit(": ").next().unwrap_or(f))).collect::<Vec<_>>();
    for entry in walkdir::WalkDir::new(dest).sort_by_file_name().min_depth(1) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(dest).unwrap().display().to_string();
        let meta = entry.path().symlink_metadata().unwrap();
        let what = if meta.file_type().is_symlink() {
            format!("-> {}", std::fs::read_link(entry.path()).unwrap().display())
        } else if meta.is_file() {
            // The length, and the first 4 MiB (a sparse member may be gigabytes of holes).
            let mut head = Vec::new();
            std::io::Read::read_to_end(&mut std::io::Read::take(std::fs::File::open(entry.path()).unwrap(), 4 << 20), &mut head).unwrap();
            format!("{} {:x}", meta.len(), xxhash_rust::xxh3::xxh3_64(&head))
        } else {
            "dir".to_string()
        };
        tree.push(format!("{rel} {what}"));
    }
    Ok((members, contents, tree))
}

/// The corpus archives that Python and Go both read and that are plain tar (not compressed).
fn plain_archives() -> Vec<PathBuf> {
    truth()
        .iter()
        .filter(|t| t["python_ok"] == true && t["go_ok"] == true)
        .map(|t| corpus_dir().join(t["file"].as_str().unwrap()))
        .filter(|p| std::fs::read(p).is_ok_and(|b| tarfs::format::compression::Compression::detect(&b[..b.len().min(512)]).is_none()))
        .collect()
}

/// The index forms an archive copy can be given, and the command that gives it.
const FORMS: [(&str, Option<&str>); 6] = [("scan", None), ("sidecar", Some("index")), ("sidecar-v2", Some("index --format v2")), ("embedded", Some("embed")), ("embedded-v2", Some("embed --format v2")), ("csv", Some("csv"))];

#[test]
fn a_plain_archive_not_mapped_answers_as_the_mapping_does() {
    let dir = tempfile::tempdir().unwrap();
    let archives = plain_archives();
    assert!(archives.len() > 40, "the corpus has {} plain archives that Python and Go read", archives.len());
    let (mut compared, mut indexed, mut failures, mut v2) = (0, 0, Vec::new(), 0);
    for (k, original) in archives.iter().enumerate() {
        let mut scanned = None;
        for (form, command) in FORMS {
            let copy = dir.path().join(format!("{k}-{form}.tar"));
            std::fs::copy(original, &copy).unwrap();
            // The corpus is read-only; embed and csv change a copy in place.
            std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
            // An archive a form cannot be given (embed refuses some) is compared as it is.
            let given = command.is_some_and(|command| tarfs().args(command.split(' ')).arg(&copy).output().unwrap().status.success());
            let archive = Archive::open(&copy).unwrap();
            let label = format!("{} ({form})", original.strip_prefix(corpus_dir()).unwrap().display());
            let mapped = Reader::open(&archive, None, ScanOptions::default()).unwrap();
            let Ok(want) = answers(&mapped, &dir.path().join(format!("{k}-{form}-mapped")), 1) else { continue };
            if mapped.source() != Source::Scan {
                indexed += 1;
            }
            // A v2 sidecar answers alone, as the scan does (positions and all).
            match form {
                "scan" => scanned = Some(want.clone()),
                "sidecar-v2" if !matches!(mapped.source(), Source::Sidecar(_)) => failures.push(format!("{label}: the v2 sidecar is not used: {:?}", mapped.note())),
                "sidecar-v2" if Some(&want) != scanned.as_ref() => failures.push(format!("{label}: through the v2 sidecar:\n  {want:?}\n  scan {scanned:?}")),
                "sidecar-v2" => v2 += 1,
                "embedded-v2" if given && mapped.source() != Source::Embedded => failures.push(format!("{label}: the embedded v2 index is not used: {:?}", mapped.note())),
                _ => {}
            }
            let unmapped = Unmapped::open(&copy).unwrap();
            let pread = match Reader::open(&unmapped, None, ScanOptions::default()) {
                Ok(r) => r,
                Err(e) => {
                    failures.push(format!("{label}: unmapped: open: {e}"));
                    continue;
                }
            };
            assert!(pread.lent().is_none(), "an unmapped archive lends no bytes");
            if pread.source() != mapped.source() {
                failures.push(format!("{label}: the mapped reader uses {}, the unmapped one {}", mapped.source(), pread.source()));
            }
            let verdicts = [verify(&archive, None, ScanOptions::default()), verify(&unmapped, None, ScanOptions::default())].map(|r| r.map(|v| (v.entries, v.members, v.source)).map_err(|e| e.to_string()));
            if verdicts[0] != verdicts[1] {
                failures.push(format!("{label}: verify: mapped {:?}, unmapped {:?}", verdicts[0], verdicts[1]));
            }
            match answers(&pread, &dir.path().join(format!("{k}-{form}-pread")), 1) {
                Ok(got) if got == want => compared += 1,
                Ok(got) => failures.push(format!("{label}: answers differ:\n  mapped   {want:?}\n  unmapped {got:?}")),
                Err(e) => failures.push(format!("{label}: unmapped: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} differ:\n{}", failures.len(), compared + failures.len(), failures.join("\n"));
    // Every form was exercised: most archives take a sidecar, many an embedded or CSV index.
    assert!(indexed > archives.len() * 2, "only {indexed} indexed readers compared");
    assert!(v2 * 10 >= archives.len() * 9, "only {v2} of {} archives answered through a v2 sidecar as the scan does", archives.len());
    eprintln!("{compared} readers compared ({indexed} through an index, {v2} through a v2 sidecar equal to the scan)");
}

/// The reader over `pread` reads only what it needs where the index answers alone: a lookup
/// through a sidecar with extension data reads no archive bytes, and one member's contents
/// cost its header chain and its data, not a scan.
#[test]
fn through_an_index_pread_reads_one_member_not_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let archive = common::gnu_archive(dir.path(), "many", "gnu", 400, |i| (format!("f{i:03}"), 3000 + i, i as u64));
    ok(tarfs().arg("index").arg(&archive));
    let opened = Archive::open(&archive).unwrap();
    let reader = Reader::open(&opened, None, ScanOptions::default()).unwrap().read_through(Box::new(Positioned::open(&archive).unwrap()));
    assert!(matches!(reader.source(), Source::Sidecar(_)), "{:?}", reader.source());
    let mut out = Vec::new();
    cat(&reader, &[b"f321".to_vec()], &mut out).unwrap();
    assert_eq!(out.len(), 3000 + 321);
    let read = reader.bytes_read();
    assert!(read < 8 * 1024, "read {read} bytes of a {} byte archive for one member", opened.len());
}

/// A compressed archive, not mapped, reads through its seek points as the mapped one does
/// (gzip checkpoints on their decoding thread, xz blocks from the file's own index, zstd frames,
/// bzip2 blocks), verifies alike, and reads one member for about one span, not the whole
/// stream. Without a sidecar both decode the stream from its start.
#[test]
fn a_compressed_archive_not_mapped_reads_through_its_seek_points() {
    let dir = tempfile::tempdir().unwrap();
    // 1,200 members of 4-12 KiB (about 10 MiB): several checkpoints, blocks and frames.
    let plain = common::gnu_archive(dir.path(), "plain", "gnu", 1200, |i| (format!("f{i:04}"), 4096 + (i * 7919) % 8192, i as u64));
    let p = plain.display();
    let kinds = [
        ("tar.gz", format!("gzip -c {p}"), true),
        ("tar.xz", format!("xz -T2 --block-size=1MiB -c {p}"), true),
        ("tar.zst", format!("zstd -q -c {p}"), false),
        ("frames.tar.zst", format!("split -b 3M --filter='zstd -q -c' {p}"), true),
        ("tar.bz2", format!("bzip2 -1 -c {p}"), true),
    ];
    let total = std::fs::metadata(&plain).unwrap().len();
    for (ext, cmd, seekable) in kinds {
        let z = dir.path().join(format!("a.{ext}"));
        ok(std::process::Command::new("sh").arg("-c").arg(format!("{{ {cmd}; }} > {}", z.display())));
        for indexed in [false, true] {
            if indexed {
                ok(tarfs().arg("index").arg(&z));
            }
            let label = format!("{ext} ({})", if indexed { "sidecar" } else { "no index" });
            let mapped_archive = Archive::open(&z).unwrap();
            let unmapped = Unmapped::open(&z).unwrap();
            let mapped = Reader::open(&mapped_archive, None, ScanOptions::default()).unwrap();
            let pread = Reader::open(&unmapped, None, ScanOptions::default()).unwrap();
            assert_eq!(pread.source(), mapped.source(), "{label}");
            assert_eq!(pread.seeking(), mapped.seeking(), "{label}: both read through the same kind of source");
            let want = answers(&mapped, &dir.path().join(format!("{ext}-{indexed}-mapped")), 97).unwrap();
            let got = answers(&pread, &dir.path().join(format!("{ext}-{indexed}-unmapped")), 97).unwrap();
            assert!(got == want, "{label}: answers differ");
            let verdicts = [verify(&mapped_archive, None, ScanOptions::default()), verify(&unmapped, None, ScanOptions::default())].map(|r| r.map(|v| (v.entries, v.members)).map_err(|e| e.to_string()));
            assert_eq!(verdicts[0], verdicts[1], "{label}: verify");
            assert_eq!(verdicts[0].is_ok(), indexed, "{label}: verify passes only with a sidecar");
            // One member near the end: the same bytes decoded either way; through seek points,
            // a span or a block, not the stream.
            let one = |archive: &dyn ArchiveFile| {
                let reader = Reader::open(archive, None, ScanOptions::default()).unwrap();
                let mut out = Vec::new();
                cat(&reader, &[b"f1191".to_vec()], &mut out).unwrap();
                assert_eq!(out.len(), 4096 + (1191 * 7919) % 8192, "{label}");
                reader.bytes_decoded().unwrap_or(0)
            };
            let decoded = one(&unmapped);
            assert_eq!(decoded, one(&mapped_archive), "{label}: decoded bytes for one member");
            if indexed && seekable {
                assert!(decoded < total / 2, "{label}: decoded {decoded} bytes of {total} for one member");
            }
        }
    }
}

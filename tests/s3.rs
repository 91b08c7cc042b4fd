//! Archives on object storage (issue #34), against a real S3 server: SeaweedFS on 127.0.0.1
//! (tests/common/s3.rs), with a counting, fault-injecting proxy in front where requests are
//! counted or 503s injected. Every command is the `tarfs` binary with `--s3-endpoint`.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::process::{Command, Output};

use common::s3::{Proxy, S3Server};
use common::{corpus_dir, tarfs, truth};
use tarfs::archive::Archive;
use tarfs::ops::read::Reader;
use tarfs::ScanOptions;

/// `tarfs --s3-endpoint ENDPOINT ARGS...`, with `cache` as the user's cache (`None`: none).
fn remote(endpoint: &str, cache: Option<&Path>) -> Command {
    let mut c = tarfs();
    c.arg("--s3-endpoint").arg(endpoint).env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_ENDPOINT_URL").env("AWS_REGION", "us-east-1");
    if let Some(cache) = cache {
        c.env("XDG_CACHE_HOME", cache);
    }
    c
}

/// Status, stdout and stderr.
fn said(out: &Output) -> (bool, String, String) {
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The regular members of a local archive, by name (each once).
fn regular_names(archive: &Path) -> Vec<Vec<u8>> {
    let a = Archive::open(archive).unwrap();
    let r = Reader::open(&a, None, ScanOptions::default()).unwrap();
    let mut names = Vec::new();
    let _ = r.for_each(|e| {
        let name = e.path().into_owned();
        if matches!(e.typeflag, b'0' | 0) && e.size <= 8 << 20 && !names.contains(&name) {
            names.push(name);
        }
        Ok(())
    });
    names
}

/// The tree under `dir`: each path with its length and digest, or its link.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    walkdir::WalkDir::new(dir).min_depth(1).into_iter().filter_map(Result::ok).map(|e| {
        let meta = e.path().symlink_metadata().unwrap();
        let what = if meta.file_type().is_symlink() {
            format!("-> {}", std::fs::read_link(e.path()).unwrap().display())
        } else if meta.is_file() {
            // The length, and the first 4 MiB (a sparse member may be gigabytes of holes).
            let mut head = Vec::new();
            std::io::Read::read_to_end(&mut std::io::Read::take(std::fs::File::open(e.path()).unwrap(), 4 << 20), &mut head).unwrap();
            format!("{} {:x}", meta.len(), xxhash_rust::xxh3::xxh3_64(&head))
        } else {
            "dir".into()
        };
        (e.path().strip_prefix(dir).unwrap().display().to_string(), what)
    }).collect()
}

/// The corpus archives Python and Go both read, plain and compressed.
fn corpus() -> Vec<std::path::PathBuf> {
    truth().iter().filter(|t| t["python_ok"] == true && t["go_ok"] == true).map(|t| corpus_dir().join(t["file"].as_str().unwrap())).collect()
}

/// What `tarfs` says of `archive`: `ls`, `cat` of every regular member, `verify`, and the tree
/// `extract` leaves under `out`.
fn answers(cmd: &dyn Fn() -> Command, archive: &std::ffi::OsStr, names: &[Vec<u8>], out: &Path) -> Vec<String> {
    let ls = said(&cmd().arg("ls").arg(archive).output().unwrap());
    let cat = cmd().arg("cat").arg(archive).args(names.iter().map(|n| OsString::from_vec(n.clone()))).output().unwrap();
    let verify = said(&cmd().arg("verify").arg(archive).output().unwrap());
    std::fs::create_dir_all(out).unwrap();
    let x = said(&cmd().arg("extract").arg(archive).arg("-C").arg(out).output().unwrap());
    let cat = format!("cat {} {} bytes {:x}", cat.status.success(), cat.stdout.len(), xxhash_rust::xxh3::xxh3_64(&cat.stdout));
    vec![format!("ls {} {}", ls.0, ls.1), cat, format!("verify {}", verify.0), format!("extract {} {:?}", x.0, tree(out))]
}

#[test]
fn the_corpus_on_s3_answers_as_the_local_files() {
    let Some(server) = S3Server::start() else { return };
    server.bucket("corpus");
    let dir = tempfile::tempdir().unwrap();
    let endpoint = server.endpoint();
    let (mut compared, mut failures) = (0, Vec::new());
    let archives = corpus();
    assert!(archives.len() > 40, "{} corpus archives", archives.len());
    for (k, local) in archives.iter().enumerate() {
        let key = format!("c{k}.tar");
        server.put("corpus", &key, &std::fs::read(local).unwrap());
        let url = OsString::from(format!("s3://corpus/{key}"));
        let names = regular_names(local);
        let want = answers(&|| tarfs(), local.as_os_str(), &names, &dir.path().join(format!("{k}-local")));
        let scanned = answers(&|| remote(&endpoint, None), &url, &names, &dir.path().join(format!("{k}-scan")));
        let index = said(&remote(&endpoint, None).arg("index").arg(&url).output().unwrap());
        let indexed = answers(&|| remote(&endpoint, None), &url, &names, &dir.path().join(format!("{k}-indexed")));
        let label = local.strip_prefix(corpus_dir()).unwrap().display().to_string();
        for (how, got) in [("scanned", scanned), ("indexed", indexed)] {
            // verify of an archive without an index fails alike; once indexed, the remote one passes.
            let fair = |v: &[String]| v.iter().filter(|l| !l.starts_with("verify")).cloned().collect::<Vec<_>>();
            if fair(&got) != fair(&want) {
                failures.push(format!("{label} ({how}): local {want:?}\n  s3 {got:?}"));
            }
        }
        if !index.0 {
            failures.push(format!("{label}: index failed: {}", index.2));
        } else if !said(&remote(&endpoint, None).arg("verify").arg(&url).output().unwrap()).0 {
            failures.push(format!("{label}: verify of the indexed object failed"));
        }
        compared += 1;
    }
    assert!(failures.is_empty(), "{} of {compared} differ:\n{}", failures.len(), failures.join("\n"));
    eprintln!("{compared} corpus archives compared on S3");
}

/// A plain tar of `n` members of `size` bytes each (`fill` their byte), named m0000, m0001...
fn plain_tar(n: usize, size: usize, fill: u8) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for i in 0..n {
        let mut h = tar::Header::new_ustar();
        h.set_size(size as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, format!("m{i:04}"), &vec![fill.wrapping_add(i as u8); size][..]).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn an_object_replaced_by_another_of_the_same_length_answers_anew() {
    let Some(server) = S3Server::start() else { return };
    server.bucket("bkt");
    let cache = tempfile::tempdir().unwrap();
    let old = plain_tar(3, 1000, b'a');
    let new = plain_tar(3, 1000, b'x');
    assert_eq!(old.len(), new.len());
    server.put("bkt", "r.tar", &old);
    let endpoint = server.endpoint();
    let cmd = || remote(&endpoint, Some(cache.path()));
    assert!(said(&cmd().args(["index", "s3://bkt/r.tar"]).output().unwrap()).0);
    let cat = cmd().args(["cat", "s3://bkt/r.tar", "m0001"]).output().unwrap();
    assert_eq!(cat.stdout, vec![b'b'; 1000]);
    server.put("bkt", "r.tar", &new);
    let cat = cmd().args(["cat", "s3://bkt/r.tar", "m0001"]).output().unwrap();
    assert_eq!(cat.stdout, vec![b'y'; 1000], "the new object's bytes, not the old: {}", String::from_utf8_lossy(&cat.stderr));
    // index sees the old sidecar stale (another ETag) and writes a new one over it.
    let (ok, _, err) = said(&cmd().args(["-v", "index", "s3://bkt/r.tar"]).output().unwrap());
    assert!(ok && err.contains("r.tar: indexed (rebuilt: the old index is stale"), "{err}");
    let (ok, _, err) = said(&cmd().args(["-v", "index", "s3://bkt/r.tar"]).output().unwrap());
    assert!(ok && err.contains("r.tar: skipped (fresh)"), "{err}");
    // --force replaces the sidecar object it finds (a conditional put of its ETag).
    let (ok, _, err) = said(&cmd().args(["-v", "index", "--force", "s3://bkt/r.tar"]).output().unwrap());
    assert!(ok && err.contains("r.tar: indexed (forced"), "{err}");
    // The same bytes uploaded again (a new last-modified time, the same ETag): still fresh.
    server.put("bkt", "r.tar", &new);
    let (ok, _, err) = said(&cmd().args(["-v", "index", "s3://bkt/r.tar"]).output().unwrap());
    assert!(ok && err.contains("r.tar: skipped (fresh)"), "{err}");
}

/// The library, in this process (the only test here that is not the binary): two writers of
/// one sidecar, and an object replaced between two reads.
#[test]
fn conditional_puts_and_a_pinned_etag() {
    use tarfs::archive::s3::{S3Error, S3Object};
    use tarfs::archive::ArchiveFile;
    let Some(server) = S3Server::start() else { return };
    server.bucket("bkt");
    let cache = tempfile::tempdir().unwrap();
    std::env::set_var("AWS_ENDPOINT_URL", server.endpoint());
    std::env::set_var("XDG_CACHE_HOME", cache.path());
    std::env::remove_var("AWS_ACCESS_KEY_ID");
    let tar = plain_tar(40, 8192, b'a');
    server.put("bkt", "w.tar", &tar);
    let (a, b) = (S3Object::open("s3://bkt/w.tar").unwrap(), S3Object::open("s3://bkt/w.tar").unwrap());
    let (sa, sb) = (a.index_store().unwrap(), b.index_store().unwrap());
    assert_eq!((sa.load().unwrap(), sb.load().unwrap()), (None, None));
    assert!(sa.store(b"one".to_vec()).unwrap(), "the first create wins");
    assert!(!sb.store(b"two".to_vec()).unwrap(), "the second create loses");
    assert_eq!(sb.refresh().unwrap().as_deref(), Some(&b"one"[..]));
    assert!(sb.store(b"three".to_vec()).unwrap(), "an update of the sidecar it read wins");
    assert!(!sa.store(b"four".to_vec()).unwrap(), "an update of a sidecar replaced since loses");
    assert_eq!(sa.refresh().unwrap().as_deref(), Some(&b"three"[..]));
    // The object replaced after opening: a read of bytes not fetched yet is an error, not new bytes.
    assert_eq!(&*a.read_at(100, 10).unwrap(), &tar[100..110]);
    server.put("bkt", "w.tar", &plain_tar(40, 8192, b'z'));
    let e = a.read_at(300_000, 10).unwrap_err();
    let inner = e.get_ref().and_then(|e| e.downcast_ref::<S3Error>());
    assert!(matches!(inner, Some(S3Error::Changed { .. })), "{e:?}");
    assert!(e.to_string().contains("s3://bkt/w.tar"), "{e}");
}

/// The GET requests of `lines` ("METHOD PATH RANGE STATUS BYTES"), and the bytes they fetched.
fn gets(lines: &[String]) -> (usize, u64) {
    let g: Vec<_> = lines.iter().filter(|l| l.starts_with("GET ")).collect();
    (g.len(), g.iter().map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap()).sum())
}

#[test]
fn requests_are_counted_and_few() {
    let Some(server) = S3Server::start() else { return };
    server.bucket("bkt");
    let big = plain_tar(40, 1 << 20, 0);
    server.put("bkt", "big.tar", &big);
    let proxy = Proxy::start(server.port, 0);
    let endpoint = proxy.endpoint();
    let cache = tempfile::tempdir().unwrap();
    let cmd = || remote(&endpoint, Some(cache.path()));
    let (ok, _, err) = said(&cmd().args(["-v", "index", "s3://bkt/big.tar"]).output().unwrap());
    assert!(ok, "{err}");
    let seen = proxy.requests();
    let (n, bytes) = gets(&seen);
    let share = bytes as f64 / big.len() as f64;
    eprintln!("index of 40 members of 1 MiB: {} requests, {n} GETs, {bytes} bytes fetched ({:.2}% of {}); tarfs -v: {}", seen.len(), share * 100.0, big.len(), err.trim());
    assert!(share <= 0.02, "indexing fetched {:.2}% of the object", share * 100.0);
    // cat of one member, the index cached: one range GET, whose If-Match confirms the ETag
    // remembered with the index.
    let before = proxy.requests().len();
    let cat = cmd().args(["cat", "s3://bkt/big.tar", "m0020"]).output().unwrap();
    assert!(cat.stdout == vec![20u8; 1 << 20]);
    let cat_requests = proxy.requests()[before..].to_vec();
    eprintln!("cat, index cached: {cat_requests:?}");
    assert_eq!(cat_requests.len(), 1, "{cat_requests:?}");
    assert!(cat_requests.iter().all(|l| l.starts_with("GET /bkt/big.tar bytes=") && l.contains(" 206 ")), "{cat_requests:?}");
    // A member of the first bytes (remembered too) and a name not there: each confirmed by one HEAD.
    let before = proxy.requests().len();
    let cat = cmd().args(["cat", "s3://bkt/big.tar", "nothing"]).output().unwrap();
    assert!(!cat.status.success() && cat.stdout.is_empty());
    let seen = proxy.requests()[before..].to_vec();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].starts_with("HEAD /bkt/big.tar"), "{seen:?}");
    // Nothing cached: the index is fetched in one GET more.
    let empty = tempfile::tempdir().unwrap();
    let before = proxy.requests().len();
    let cat = remote(&endpoint, Some(empty.path())).args(["cat", "s3://bkt/big.tar", "m0030"]).output().unwrap();
    assert!(cat.stdout == vec![30u8; 1 << 20]);
    let uncached = proxy.requests()[before..].to_vec();
    eprintln!("cat, nothing cached: {uncached:?}");
    assert!(uncached.len() <= 3, "{uncached:?}");
    // Replaced by another of the same length: the range GET's If-Match fails (412), and the
    // object is opened afresh; the new bytes, never the old.
    server.put("bkt", "big.tar", &plain_tar(40, 1 << 20, 1));
    let before = proxy.requests().len();
    let cat = cmd().args(["cat", "s3://bkt/big.tar", "m0020"]).output().unwrap();
    assert!(cat.status.success(), "{}", String::from_utf8_lossy(&cat.stderr));
    assert!(cat.stdout == vec![21u8; 1 << 20], "the new object's bytes");
    let seen = proxy.requests()[before..].to_vec();
    assert!(seen[0].starts_with("GET /bkt/big.tar bytes=") && seen[0].contains(" 412 "), "{seen:?}");
}

/// A plain tar of `n` members of 1 MiB of random text (which gzip halves), named m0000...
fn noisy_tar(n: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..n {
        let data: Vec<u8> = (0..1 << 20).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b"abcdefghij \n"[(x % 12) as usize]
        }).collect();
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, format!("m{i:04}"), &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// Indexes the object `key` (`compressed`, of the plain tar `tar` of [`noisy_tar`]`(40)`) through
/// a counting proxy, then `cat`s m0038 from it: indexing reads it about once, the `cat` fetches
/// well under a quarter of it, and gives what `tar -xOf` gives of the local file. Returns the
/// GETs and bytes of each.
fn read_from_seek_points(server: &S3Server, key: &str, compressed: &[u8], tar: &[u8]) -> [(usize, u64); 2] {
    server.put("bkt", key, compressed);
    let url = format!("s3://bkt/{key}");
    let proxy = Proxy::start(server.port, 0);
    let endpoint = proxy.endpoint();
    let cache = tempfile::tempdir().unwrap();
    let cmd = || remote(&endpoint, Some(cache.path()));
    let (ok, _, err) = said(&cmd().args(["-v", "index", &url]).output().unwrap());
    assert!(ok, "{err}");
    let index = gets(&proxy.requests());
    eprintln!("index of {key} of {} bytes: {} GETs, {} bytes; {}", compressed.len(), index.0, index.1, err.trim());
    assert!(index.1 < compressed.len() as u64 * 11 / 10, "read once: {} of {}", index.1, compressed.len());
    // cat of a member near the end: from the seek point before it.
    let want = &tar[38 * (512 + (1 << 20)) + 512..][..1 << 20];
    let local = cache.path().join(key);
    std::fs::write(&local, compressed).unwrap();
    let by_tar = Command::new("tar").arg("-xOf").arg(&local).arg("m0038").output().unwrap();
    assert!(by_tar.status.success() && by_tar.stdout == want, "tar -xOf {key} m0038");
    let before = proxy.requests().len();
    let cat = cmd().args(["cat", &url, "m0038"]).output().unwrap();
    assert!(cat.status.success(), "{}", String::from_utf8_lossy(&cat.stderr));
    assert!(cat.stdout == by_tar.stdout, "m0038's bytes, as tar -xOf gives them");
    let seen = proxy.requests()[before..].to_vec();
    let got = gets(&seen);
    eprintln!("cat of m0038 of 40 from {key}: {} GETs, {} bytes of {}: {seen:?}", got.0, got.1, compressed.len());
    assert!(got.1 < compressed.len() as u64 / 4, "{} bytes fetched of {}", got.1, compressed.len());
    [index, got]
}

#[test]
fn a_remote_tar_gz_is_read_from_its_seek_points() {
    let Some(server) = S3Server::start() else { return };
    server.bucket("bkt");
    let tar = noisy_tar(40);
    // (zlib-rs's fastest level writes a stream of few DEFLATE blocks, hence few checkpoints.)
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let gz = gz.finish().unwrap();
    read_from_seek_points(&server, "n.tar.gz", &gz, &tar);
    // Followed by bytes that are not gzip: indexed as a plain stream, and `index -v` says why.
    let small = plain_tar(3, 1 << 10, 9);
    let mut trailing = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut trailing, &small).unwrap();
    let mut trailing = trailing.finish().unwrap();
    trailing.extend_from_slice(b"not gzip at all");
    server.put("bkt", "trailing.tar.gz", &trailing);
    let cache = tempfile::tempdir().unwrap();
    let (ok, _, err) = said(&remote(&server.endpoint(), Some(cache.path())).args(["-v", "index", "s3://bkt/trailing.tar.gz"]).output().unwrap());
    assert!(ok && err.contains("data that is not gzip follows the last gzip member"), "{err}");
    let (ok, out, err) = said(&remote(&server.endpoint(), Some(cache.path())).args(["cat", "s3://bkt/trailing.tar.gz", "m0001"]).output().unwrap());
    assert!(ok && out == "\n".repeat(1 << 10), "{err}");
    // LZMA alone has no seek points at all: read as a plain stream too.
    let mut xz = Command::new("xz").args(["--format=lzma", "-c"]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(xz.stdin.as_mut().unwrap(), &small).unwrap();
    server.put("bkt", "a.tar.lzma", &xz.wait_with_output().unwrap().stdout);
    let (ok, _, err) = said(&remote(&server.endpoint(), Some(cache.path())).args(["index", "s3://bkt/a.tar.lzma"]).output().unwrap());
    assert!(ok, "{err}");
    let (ok, out, err) = said(&remote(&server.endpoint(), Some(cache.path())).args(["cat", "s3://bkt/a.tar.lzma", "m0002"]).output().unwrap());
    assert!(ok && out == "\u{b}".repeat(1 << 10), "{err}");
}

/// A remote multi-frame `.tar.zst` (frames of 2 MiB of input, as `pzstd` writes them), a
/// multi-block `.tar.xz` (`xz -T2 --block-size=2MiB`) and a `.tar.bz2` (blocks of 900 kB) are
/// indexed in one read of the object, with their frames or blocks as seek points, and a member
/// near the end is read from the one before it.
#[test]
fn remote_tar_zst_xz_and_bz2_are_read_from_their_frames_and_blocks() {
    let Some(server) = S3Server::start() else { return };
    server.bucket("bkt");
    let tar = noisy_tar(40);
    let zst: Vec<u8> = tar.chunks(2 << 20).flat_map(|c| zstd::encode_all(c, 3).unwrap()).collect();
    read_from_seek_points(&server, "n.tar.zst", &zst, &tar);
    // One frame: indexed in the same read, without seek points, and `index -v` says why.
    server.put("bkt", "one.tar.zst", &zstd::encode_all(&plain_tar(3, 1 << 10, 7)[..], 3).unwrap());
    let cache = tempfile::tempdir().unwrap();
    let (ok, _, err) = said(&remote(&server.endpoint(), Some(cache.path())).args(["-v", "index", "s3://bkt/one.tar.zst"]).output().unwrap());
    assert!(ok && err.contains("single frame"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("n.tar");
    std::fs::write(&plain, &tar).unwrap();
    let xz = Command::new("xz").args(["-T2", "-1", "--block-size=2MiB", "-c"]).arg(&plain).output().unwrap();
    assert!(xz.status.success());
    read_from_seek_points(&server, "n.tar.xz", &xz.stdout, &tar);
    let bz2 = Command::new("bzip2").args(["-c"]).arg(&plain).output().unwrap();
    assert!(bz2.status.success());
    read_from_seek_points(&server, "n.tar.bz2", &bz2.stdout, &tar);
}

#[test]
fn transient_errors_are_retried_and_lasting_ones_name_the_object() {
    let Some(mut server) = S3Server::start() else { return };
    server.bucket("bkt");
    server.put("bkt", "t.tar", &plain_tar(5, 100, b'a'));
    // The proxy answers its first three requests with 503: retried, then answered.
    let proxy = Proxy::start(server.port, 3);
    let (ok, out, err) = said(&remote(&proxy.endpoint(), None).args(["ls", "s3://bkt/t.tar"]).output().unwrap());
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 5);
    let seen = proxy.requests();
    assert_eq!(seen.iter().filter(|l| l.contains(" 503 ")).count(), 3, "{seen:?}");
    // A 5xx that lasts: the bounded retries (4), then an error naming the object (once) and the
    // status; on opening, and on a read of an object opened (from its cached index).
    server.put("bkt", "u.tar", &plain_tar(3, 50_000, b'a'));
    let cache = tempfile::tempdir().unwrap();
    assert!(said(&remote(&server.endpoint(), Some(cache.path())).args(["index", "s3://bkt/u.tar"]).output().unwrap()).0);
    for cached in [None, Some(cache.path())] {
        let proxy = Proxy::start(server.port, usize::MAX >> 1);
        let (ok, _, err) = said(&remote(&proxy.endpoint(), cached).args(["cat", "s3://bkt/u.tar", "m0002"]).output().unwrap());
        assert!(!ok && err.contains("s3://bkt/u.tar: GET failed: HTTP status 503"), "{err}");
        assert_eq!(err.matches("s3://bkt/u.tar").count(), 1, "the object named once: {err}");
        assert_eq!(proxy.requests().len(), 5, "{:?}", proxy.requests());
    }
    // A missing object: its name and the status.
    let (ok, _, err) = said(&remote(&server.endpoint(), None).args(["ls", "s3://bkt/missing.tar"]).output().unwrap());
    assert!(!ok && err.contains("s3://bkt/missing.tar") && err.contains("404"), "{err}");
    // The server gone: a clear error naming the object, after the bounded retries.
    let endpoint = server.endpoint();
    server.stop();
    let start = std::time::Instant::now();
    let (ok, _, err) = said(&remote(&endpoint, None).args(["cat", "s3://bkt/t.tar", "m0001"]).output().unwrap());
    assert!(!ok && err.contains("s3://bkt/t.tar") && err.contains("no answer"), "{err}");
    assert!(start.elapsed().as_secs() < 30, "retries are bounded");
}

/// Keys SeaweedFS requires: one identity, no anonymous access.
const IDENTITIES: &str = r#"{"identities": [
  {"name": "tester", "credentials": [{"accessKey": "TARFSKEY", "secretKey": "tarfs-secret"}], "actions": ["Admin", "Read", "List", "Write"]}
]}"#;

#[test]
fn credentials_come_from_the_aws_profile_where_the_environment_has_none() {
    let Some(server) = S3Server::start_with(Some(IDENTITIES)) else { return };
    server.put_unchecked("bkt", "p.tar", &plain_tar(2, 100, b'a'));
    let home = tempfile::tempdir().unwrap();
    let aws = home.path().join(".aws");
    std::fs::create_dir(&aws).unwrap();
    let endpoint = server.endpoint();
    std::fs::write(aws.join("credentials"), "[default]\naws_access_key_id = TARFSKEY\naws_secret_access_key = wrong\n\n[good]\naws_access_key_id = TARFSKEY\naws_secret_access_key = tarfs-secret\n").unwrap();
    std::fs::write(aws.join("config"), format!("[default]\nregion = us-east-1\n[profile good]\nregion = us-east-1\nendpoint_url = {endpoint}\ns3 =\n  addressing_style = path\n")).unwrap();
    // The environment without AWS keys or endpoint, HOME the one above.
    let cmd = |profile: Option<&str>| {
        let mut c = tarfs();
        for v in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"] {
            c.env_remove(v);
        }
        c.env("HOME", home.path()).env("XDG_CACHE_HOME", home.path().join("cache"));
        if let Some(p) = profile {
            c.env("AWS_PROFILE", p);
        }
        c
    };
    // The right keys, and the endpoint, from the profile.
    let (ok, out, err) = said(&cmd(Some("good")).args(["ls", "s3://bkt/p.tar"]).output().unwrap());
    assert!(ok && out.lines().count() == 2, "{err}");
    // The default profile's wrong secret: refused, with the object and the status.
    let (ok, _, err) = said(&cmd(None).args(["--s3-endpoint", &endpoint, "ls", "s3://bkt/p.tar"]).output().unwrap());
    assert!(!ok && err.contains("s3://bkt/p.tar") && err.contains("HTTP status 403"), "{err}");
    // A profile named that neither file has.
    let (ok, _, err) = said(&cmd(Some("nosuch")).args(["--s3-endpoint", &endpoint, "ls", "s3://bkt/p.tar"]).output().unwrap());
    assert!(!ok && err.contains("the AWS profile \"nosuch\" (AWS_PROFILE) is in neither"), "{err}");
    // No profile at all: unsigned, refused.
    std::fs::remove_dir_all(&aws).unwrap();
    let (ok, _, err) = said(&cmd(None).args(["--s3-endpoint", &endpoint, "ls", "s3://bkt/p.tar"]).output().unwrap());
    assert!(!ok && err.contains("HTTP status 403"), "{err}");
    // The files elsewhere, named by AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE.
    let elsewhere = home.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("c"), "[x]\naws_access_key_id=TARFSKEY\naws_secret_access_key=tarfs-secret\n").unwrap();
    std::fs::write(elsewhere.join("f"), format!("[profile x]\nendpoint_url={endpoint}\n")).unwrap();
    let mut c = cmd(Some("x"));
    c.env("AWS_SHARED_CREDENTIALS_FILE", elsewhere.join("c")).env("AWS_CONFIG_FILE", elsewhere.join("f"));
    let (ok, _, err) = said(&c.args(["cat", "s3://bkt/p.tar", "m0001"]).output().unwrap());
    assert!(ok, "{err}");
}

#[test]
fn a_batch_over_a_prefix_of_200_objects_survives_the_server_stopping() {
    let Some(mut server) = S3Server::start() else { return };
    server.bucket("bkt");
    for i in 0..200 {
        server.put("bkt", &format!("many/{:02}/a{i:03}.tar", i % 7), &plain_tar(2 + i % 3, 600 + i, b'a'));
    }
    server.put("bkt", "many/not-an-archive.txt", b"x");
    let endpoint = server.endpoint();
    let cmd = || remote(&endpoint, None);
    // Stopped in the middle of the batch (which stops at its first failure, not to retry every
    // archive left): errors name objects; what was written is sound.
    let child = cmd().args(["index", "-j", "2", "--fail-fast", "--json", "s3://bkt/many/"]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    server.stop();
    let out = child.wait_with_output().unwrap();
    let (ok, stdout, err) = said(&out);
    assert!(!ok, "the batch cannot succeed without its server: {stdout}");
    let failed: Vec<_> = archives(&stdout).into_iter().filter(|r| r["action"] == "failed").collect();
    assert!(!failed.is_empty() && failed.iter().all(|r| r["path"].as_str().unwrap().starts_with("s3://bkt/many/")), "{stdout}{err}");
    assert!(err.contains("s3://bkt/many/"), "{err}");
    server.restart();
    let (ok, stdout, err) = said(&cmd().args(["index", "-j", "2", "--json", "s3://bkt/many/"]).output().unwrap());
    assert!(ok, "the rerun completes: {err}");
    let done = archives(&stdout);
    assert_eq!(done.len(), 200, "{stdout}");
    assert!(done.iter().all(|r| r["action"] == "indexed" || r["action"] == "skipped"), "{stdout}");
    // Every sidecar, those of the first run too, verifies; the .txt and the sidecars are not archives.
    let (ok, stdout, err) = said(&cmd().args(["verify", "--json", "s3://bkt/many/"]).output().unwrap());
    assert!(ok, "{err}");
    let verified = archives(&stdout);
    assert_eq!(verified.iter().filter(|r| r["action"] == "verified").count(), 200, "{stdout}");
}

/// The archive records of a batch's `--json` output.
fn archives(stdout: &str) -> Vec<serde_json::Value> {
    stdout.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).filter(|r| r["type"] == "archive").collect()
}

#[test]
fn an_object_mounts_through_fuse_as_its_local_copy_extracts() {
    if !Path::new("/dev/fuse").exists() || Command::new("fusermount3").arg("-V").output().is_err() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI must have /dev/fuse and fusermount3");
        eprintln!("\n*** SKIPPED: no /dev/fuse or fusermount3 ***\n");
        return;
    }
    let Some(server) = S3Server::start() else { return };
    server.bucket("bkt");
    let dir = tempfile::tempdir().unwrap();
    let local = corpus().into_iter().find(|p| p.to_string_lossy().contains("gnu")).unwrap_or_else(|| corpus()[0].clone());
    server.put("bkt", "m.tar", &std::fs::read(&local).unwrap());
    let endpoint = server.endpoint();
    assert!(said(&remote(&endpoint, None).args(["index", "s3://bkt/m.tar"]).output().unwrap()).0);
    let want = dir.path().join("want");
    std::fs::create_dir(&want).unwrap();
    common::ok(tarfs().arg("extract").arg(&local).arg("-C").arg(&want));
    let mp = dir.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    let (ok, _, err) = said(&remote(&endpoint, None).args(["mount", "--fuse", "s3://bkt/m.tar"]).arg(&mp).output().unwrap());
    assert!(ok, "{err}");
    let got = tree(&mp);
    let _ = Command::new("fusermount3").arg("-u").arg(&mp).output();
    assert_eq!(got.keys().collect::<Vec<_>>(), tree(&want).keys().collect::<Vec<_>>(), "{}", local.display());
    let files = |t: &BTreeMap<String, String>| t.iter().filter(|(_, v)| v.as_str() != "dir" && !v.starts_with("->")).map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>();
    assert_eq!(files(&got), files(&tree(&want)));
}

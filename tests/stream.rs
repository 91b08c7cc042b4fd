//! Archives that cannot be mapped: standard input, FIFOs read like tapes, and compressed archives.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{corpus_dir, ok, python_members, tarfs, truth, write_pattern};
use serde_json::Value;
use tempfile::TempDir;

/// `tarfs index -` fed `archive` on standard input.
fn index_stdin(archive: &Path, out: &Path) -> std::process::Output {
    let input = fs::File::open(archive).unwrap();
    tarfs().arg("index").arg("-q").arg("-").arg("--output").arg(out).stdin(input).output().unwrap()
}

#[test]
fn stdin_sidecars_equal_file_sidecars_for_every_corpus_archive() {
    let tmp = TempDir::new().unwrap();
    let mut compared = 0;
    for (i, t) in truth().iter().enumerate() {
        let src = corpus_dir().join(t["file"].as_str().unwrap());
        let a = tmp.path().join(format!("a{i}.tar"));
        fs::copy(&src, &a).unwrap();
        let file = tarfs().arg("index").arg("-q").arg(&a).output().unwrap();
        let piped_out = tmp.path().join(format!("p{i}.tarfs"));
        let piped = index_stdin(&a, &piped_out);
        assert_eq!(file.status.success(), piped.status.success(), "{src:?}: file {:?} / stdin {:?}", String::from_utf8_lossy(&file.stderr), String::from_utf8_lossy(&piped.stderr));
        if file.status.success() {
            // The same but for the file's binding, which a stream does not have.
            let (from_file, from_stdin) = (fs::read(tmp.path().join(format!("a{i}.tar.tarfs"))).unwrap(), fs::read(&piped_out).unwrap());
            assert!(common::unbound_index(&from_file) == common::unbound_index(&from_stdin), "{src:?}");
            compared += 1;
        } else {
            assert!(!piped_out.exists(), "{src:?}: an index was left behind");
        }
    }
    assert!(compared >= 110, "{compared}");
}

#[test]
fn fifo_fed_by_dd_and_record_size_reads() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..30 {
        write_pattern(&src.join(format!("f{i}")), i * 1000, i as u64);
    }
    let a = tmp.path().join("t.tar");
    ok(Command::new("tar").arg("--format=posix").arg("-C").arg(&src).arg("-cf").arg(&a).arg("."));
    ok(tarfs().arg("index").arg(&a));
    let want = fs::read(tmp.path().join("t.tar.tarfs")).unwrap();
    // A FIFO fed in 10240-byte records, as a tape drive delivers them.
    let fifo = tmp.path().join("tape");
    ok(Command::new("mkfifo").arg(&fifo));
    let mut dd = Command::new("dd").arg(format!("if={}", a.display())).arg(format!("of={}", fifo.display())).arg("bs=10240").arg("status=none").spawn().unwrap();
    let out = tmp.path().join("fifo.tarfs");
    ok(tarfs().arg("index").arg(&fifo).arg("--output").arg(&out));
    assert!(dd.wait().unwrap().success());
    assert!(common::unbound_index(&fs::read(&out).unwrap()) == common::unbound_index(&want));
    // A file read in records.
    let out = tmp.path().join("rec.tarfs");
    let input = fs::File::open(&a).unwrap();
    ok(tarfs().arg("index").arg("--record-size").arg("10240").arg("-").arg("--output").arg(&out).stdin(input));
    assert!(common::unbound_index(&fs::read(&out).unwrap()) == common::unbound_index(&want));
    // Standard input needs --output.
    let out = tarfs().arg("index").arg("-").stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --output"));
}

/// Positions in a sidecar, as byte offsets.
fn positions(sidecar: &Path) -> Vec<u64> {
    let bytes = fs::read(sidecar).unwrap();
    if &bytes[11..15] == b"v2.0" {
        // The second reader of v2 (tests/v2_reader.py) gives each record's position.
        let out = ok(Command::new("python3").arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/v2_reader.py")).arg(sidecar));
        return String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["position"].as_u64().unwrap()).collect();
    }
    tarfs::format::tarfs::decode(&bytes).unwrap().entries.iter().map(|e| e.position() * 512).collect()
}

/// Checks a compressed archive against its decompressed form: sidecar positions equal Python's
/// offsets, `cat` equals `tar -xOf`, and `ls` and `verify` work.
fn check_compressed(z: &Path, plain: &Path) -> Result<(), String> {
    let out = tarfs().arg("index").arg("-q").arg(z).output().unwrap();
    let py_ok = Command::new("python3").arg("-c").arg("import tarfile,sys; list(tarfile.open(sys.argv[1]))").arg(plain).output().unwrap().status.success();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        // Only archives that are bad in themselves may fail, and clearly.
        let plain_fails = !tarfs().arg("index").arg("-q").arg(plain).output().unwrap().status.success();
        return if plain_fails && err.contains("at byte") { Ok(()) } else { Err(format!("index failed: {err}")) };
    }
    let sidecar = PathBuf::from(format!("{}.tarfs", z.display()));
    if py_ok {
        let py: Vec<Value> = python_members(plain);
        let want: Vec<u64> = py.iter().map(|m| m["offset"].as_u64().unwrap()).collect();
        if positions(&sidecar) != want {
            return Err(format!("positions {:?} vs Python {:?}", positions(&sidecar), want));
        }
    }
    ok(tarfs().arg("verify").arg(z));
    let listed = String::from_utf8(ok(tarfs().arg("ls").arg(z)).stdout).unwrap();
    for name in listed.lines().filter(|n| !n.ends_with('/')) {
        let theirs = Command::new("tar").arg("-xOf").arg(z).arg(name).output().unwrap();
        if !theirs.status.success() {
            continue; // links and specials, which tar -xO does not print
        }
        let ours = ok(tarfs().arg("cat").arg(z).arg(name)).stdout;
        if ours != theirs.stdout {
            return Err(format!("cat {name}: {} bytes vs tar's {}", ours.len(), theirs.stdout.len()));
        }
    }
    Ok(())
}

#[test]
fn compressed_with_every_tool() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("d")).unwrap();
    for i in 0..20 {
        write_pattern(&src.join(format!("d/f{i}")), i * 2345, i as u64);
    }
    write_pattern(&src.join(format!("d/{}", "long".repeat(40))), 999, 3);
    let f = fs::File::create(src.join("sparse")).unwrap();
    f.set_len(1 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"x", 1 << 19).unwrap();
    let plain = tmp.path().join("p.tar");
    ok(Command::new("tar").arg("--format=gnu").arg("-S").arg("-C").arg(&src).arg("-cf").arg(&plain).arg("."));
    let mut failures = Vec::new();
    for (name, cmd) in [("gz", "gzip -c"), ("pigz.gz", "pigz -c"), ("zst", "zstd -q -c"), ("xz", "xz -c"), ("bz2", "bzip2 -c"), ("lzma", "xz --format=lzma -c")] {
        let z = tmp.path().join(format!("p.tar.{name}"));
        let sh = format!("{cmd} {} > {}", plain.display(), z.display());
        ok(Command::new("sh").arg("-c").arg(&sh));
        if let Err(e) = check_compressed(&z, &plain) {
            failures.push(format!("{name}: {e}"));
        }
    }
    // Multi-member gzip and multi-stream xz: the archive cut in two, each half compressed.
    let bytes = fs::read(&plain).unwrap();
    let half = bytes.len() / 2 / 512 * 512;
    for (name, cmd) in [("multi.gz", "gzip -c"), ("multi.xz", "xz -c")] {
        let (a, b) = (tmp.path().join("h1"), tmp.path().join("h2"));
        fs::write(&a, &bytes[..half]).unwrap();
        fs::write(&b, &bytes[half..]).unwrap();
        let z = tmp.path().join(format!("p.tar.{name}"));
        ok(Command::new("sh").arg("-c").arg(format!("{cmd} {} > {z}; {cmd} {} >> {z}", a.display(), b.display(), z = z.display())));
        if let Err(e) = check_compressed(&z, &plain) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
    // ls answers from the sidecar alone when every entry is self-contained (ustar, short names).
    let ustar = tmp.path().join("u.tar");
    ok(Command::new("tar").arg("--format=ustar").arg("-C").arg(src.join("d")).arg("-cf").arg(&ustar).arg("f1").arg("f2"));
    ok(Command::new("gzip").arg(&ustar));
    let gz = tmp.path().join("u.tar.gz");
    ok(tarfs().arg("index").arg(&gz));
    let out = ok(tarfs().arg("-v").arg("ls").arg(&gz));
    assert!(String::from_utf8_lossy(&out.stderr).contains("using sidecar index"), "{}", String::from_utf8_lossy(&out.stderr));
    // A second batch run skips the fresh sidecar of a compressed archive.
    let out = ok(tarfs().arg("index").arg("--json").arg(&gz));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"skipped\""));
}

#[test]
fn compressed_corpus_archives() {
    let tmp = TempDir::new().unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    for e in walkdir::WalkDir::new(corpus_dir()).sort_by_file_name() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().to_string();
        let head = fs::read(e.path()).map(|b| b[..b.len().min(tarfs::format::compression::Compression::HEAD)].to_vec()).unwrap_or_default();
        let Some(c) = tarfs::format::compression::Compression::detect(&head) else { continue };
        if !c.supported() || !e.file_type().is_file() {
            continue;
        }
        let z = tmp.path().join(&name);
        fs::copy(e.path(), &z).unwrap();
        let plain = tmp.path().join(format!("{name}.plain"));
        let dec = match c.name() {
            "zstd" => format!("zstd -q -dc {} > {}", z.display(), plain.display()),
            "lzma" => format!("xz --format=lzma -dc {} > {}", z.display(), plain.display()),
            n => format!("{n} -dc {} > {}", z.display(), plain.display()),
        };
        if !Command::new("sh").arg("-c").arg(&dec).status().unwrap().success() {
            continue; // not decompressible by the reference tool either
        }
        if let Err(err) = check_compressed(&z, &plain) {
            failures.push(format!("{name}: {err}"));
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(checked >= 18, "{checked} compressed corpus archives checked");
}

#[test]
fn truncated_and_corrupt_streams_fail_clearly() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("s");
    fs::create_dir_all(&src).unwrap();
    write_pattern(&src.join("a"), 300_000, 1);
    let plain = tmp.path().join("a.tar");
    ok(Command::new("tar").arg("-C").arg(&src).arg("-cf").arg(&plain).arg("a"));
    for (name, cmd) in [("gz", "gzip"), ("xz", "xz"), ("zst", "zstd -q"), ("bz2", "bzip2")] {
        let z = tmp.path().join(format!("a.tar.{name}"));
        ok(Command::new("sh").arg("-c").arg(format!("{cmd} -c {} > {}", plain.display(), z.display())));
        let full = fs::read(&z).unwrap();
        let cut = tmp.path().join(format!("cut.tar.{name}"));
        fs::write(&cut, &full[..full.len() / 2]).unwrap();
        let mut bad = full.clone();
        let mid = bad.len() / 3;
        bad[mid..mid + 16].fill(0x55);
        let corrupt = tmp.path().join(format!("bad.tar.{name}"));
        fs::write(&corrupt, &bad).unwrap();
        for f in [&cut, &corrupt] {
            let out = tarfs().arg("index").arg(f).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{f:?}: {err}");
            assert!(err.contains(&f.display().to_string()) && err.contains("at byte"), "{f:?}: {err}");
            assert!(!PathBuf::from(format!("{}.tarfs", f.display())).exists(), "{f:?}: index written");
        }
    }
}

/// Issue #30, item 7: `tarfs index -` of a compressed stream decodes it (it said "does not look
/// like a tar archive"), and its index answers for the file the stream came from through
/// `ls`/`cat`/`extract --index FILE`, bound to the compressed bytes: another file of the same
/// kind is refused with an error naming the index, never answered from it.
#[test]
fn a_compressed_stream_indexed_from_stdin_answers_for_its_file_through_index() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    for i in 0..30 {
        write_pattern(&src.join(format!("f{i:02}")), 1000 + 97 * i, i as u64);
    }
    let plain = tmp.path().join("a.tar");
    ok(Command::new("tar").arg("--sort=name").arg("-cf").arg(&plain).arg("-C").arg(&src).arg("."));
    let other_plain = tmp.path().join("b.tar");
    write_pattern(&src.join("f00"), 1001, 99);
    ok(Command::new("tar").arg("--sort=name").arg("-cf").arg(&other_plain).arg("-C").arg(&src).arg("."));
    for (tool, ext) in [("gzip", "gz"), ("bzip2", "bz2"), ("xz", "xz"), ("zstd", "zst")] {
        let compress = |from: &Path, name: &str| {
            let to = tmp.path().join(format!("{name}.tar.{ext}"));
            let out = ok(Command::new(tool).arg("-c").arg(from).stderr(Stdio::null()));
            fs::write(&to, out.stdout).unwrap();
            to
        };
        let (z, other) = (compress(&plain, "a"), compress(&other_plain, "b"));
        let index = tmp.path().join(format!("a.{ext}.tarfs"));
        let made = index_stdin(&z, &index);
        assert!(made.status.success(), "{tool}: {}", String::from_utf8_lossy(&made.stderr));
        let ls = ok(tarfs().arg("ls").arg("-v").arg(&z).arg("--index").arg(&index));
        assert_eq!(ls.stdout, ok(Command::new("tar").arg("-tf").arg(&z)).stdout, "{tool}");
        assert!(String::from_utf8_lossy(&ls.stderr).contains(&format!("using sidecar index {}", index.display())), "{tool}: {}", String::from_utf8_lossy(&ls.stderr));
        let cat = ok(tarfs().arg("cat").arg(&z).arg("--index").arg(&index).arg("./f17").arg("./f03"));
        assert_eq!(cat.stdout, ok(Command::new("tar").arg("-xOf").arg(&z).arg("./f03").arg("./f17")).stdout, "{tool}");
        let dest = tmp.path().join(format!("x-{ext}"));
        fs::create_dir(&dest).unwrap();
        ok(tarfs().arg("extract").arg(&z).arg("--index").arg(&index).arg("-C").arg(&dest));
        assert_eq!(fs::read(dest.join("f29")).unwrap(), fs::read(src.join("f29")).unwrap(), "{tool}");
        // Another archive is not answered from this index.
        let refused = tarfs().arg("ls").arg(&other).arg("--index").arg(&index).output().unwrap();
        let err = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(1), "{tool}: {err}");
        assert!(err.contains(&index.display().to_string()) && refused.stdout.is_empty(), "{tool}: {err}");
    }
}

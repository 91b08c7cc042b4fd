//! `tarfs ls --digest`: each regular file's SHA-256 from the index, in `sha256sum`'s format, so
//! that `tarfs ls --digest a.tar > SUMS; tar -xf a.tar; sha256sum -c SUMS` passes.

use std::io::{self, BufWriter, Write};

use anyhow::{bail, Result};
use tarfs::archive::open_any;

use super::reading::open_reader;
use crate::cli::LsArgs;
use crate::config::Config;

/// Prints the digests; names the archive when its index has none.
pub fn run(cfg: &Config<'_>, a: &LsArgs) -> Result<bool> {
    let archive = open_any(&a.archive)?;
    let reader = open_reader(cfg, &*archive, a.index.as_deref())?;
    let Some(view) = reader.digests()? else {
        bail!("{}: its index has no member digests (tarfs index --digests records them)", a.archive.display());
    };
    // As tar extracts: the last member of a name is the file left.
    let mut lines: Vec<(Vec<u8>, String)> = Vec::new();
    reader.for_each(|e| {
        if matches!(e.typeflag, b'0' | b'\0' | b'7' | b'S') {
            if let Some(found) = reader.digest_of(&view, e) {
                lines.push((extracted_name(&e.path()), tarfs::digest::hex(found.whole)));
            }
        }
        Ok(())
    })?;
    let mut last = std::collections::HashMap::new();
    for (i, (name, _)) in lines.iter().enumerate() {
        last.insert(name.clone(), i);
    }
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    for (i, (name, digest)) in lines.iter().enumerate() {
        if last.get(name) == Some(&i) {
            out.write_all(&line(digest, name))?;
        }
    }
    out.flush()?;
    Ok(true)
}

/// The name tar extracts a member to: without leading slashes.
fn extracted_name(path: &[u8]) -> Vec<u8> {
    let start = path.iter().position(|&b| b != b'/').unwrap_or(path.len());
    path[start..].to_vec()
}

/// One line of `sha256sum` output: `DIGEST  NAME`. As GNU coreutils does, a name with a
/// backslash, newline or carriage return has them escaped (`\\`, `\n`, `\r`), and the line
/// starts with a backslash.
pub fn line(digest: &str, name: &[u8]) -> Vec<u8> {
    let escape = name.iter().any(|b| matches!(b, b'\\' | b'\n' | b'\r'));
    let mut out = Vec::with_capacity(name.len() + 68);
    if escape {
        out.push(b'\\');
    }
    out.extend_from_slice(digest.as_bytes());
    out.extend_from_slice(b"  ");
    for &b in name {
        match (escape, b) {
            (true, b'\\') => out.extend_from_slice(b"\\\\"),
            (true, b'\n') => out.extend_from_slice(b"\\n"),
            (true, b'\r') => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
    out.push(b'\n');
    out
}

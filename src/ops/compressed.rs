//! Reading compressed archives (`.tar.gz`, `.tar.bz2`, `.tar.xz`, `.tar.lzma`, `.tar.zst`)
//! through their sidecar.
//!
//! Only sidecars are possible for them. A compressed archive's sidecar counts positions in the
//! decompressed stream, and its header records the compressed file's length, so freshness is
//! checked without decompressing.
//!
//! - `ls` answers from the sidecar alone when every entry is self-contained (no extension
//!   headers). Otherwise, or without a sidecar, it decompresses the archive once.
//! - `cat` decompresses from the start up to the members asked for. When the sidecar names every
//!   member, it stops after the last one asked for: O(offset) until seek points are stored.
//! - `verify` checks the sidecar against one streaming pass.
//! - `extract` decompresses to a temporary file and extracts from it.

use std::cell::RefCell;
use std::io::{Cursor, Write};

use crate::archive::{Archive, IndexDir};
use crate::error::{Error, IoContext, Result};
use crate::format::compression::Compression;
use crate::format::header::HeaderView;
use crate::format::tarfs;
use crate::ops::read::{normalize_name, Expander, Reader, Source};
use crate::ops::verify::{Pairing, VerifyReport};
use crate::scan::{Entry, ScanOptions};
use crate::stream::{decoder, scan_stream, scan_stream_with, Visit};

const CHUNK: usize = 1 << 20;

/// The compression of a mapped file, if it is a compressed stream.
pub fn compression(archive: &Archive) -> Option<Compression> {
    Compression::detect(&archive.bytes()[..archive.bytes().len().min(Compression::HEAD)])
}

/// The decompressed stream of a mapped compressed file.
fn stream_of(archive: &Archive, c: Compression) -> Result<Box<dyn std::io::Read + Send + '_>> {
    decoder(Cursor::new(archive.bytes()), Some(c), archive.path())
}

/// A reader through the sidecar, when there is a usable sidecar and every entry is
/// self-contained (so nothing needs decompressing to list members).
fn simple_sidecar<'a>(archive: &'a Archive, index_dir: Option<&IndexDir>, opts: ScanOptions) -> Result<Option<Reader<'a>>> {
    let reader = Reader::open(archive, index_dir, opts)?;
    let (Source::Sidecar(side), Some(bytes)) = (reader.source(), reader.index_bytes()) else { return Ok(None) };
    let index = tarfs::decode(bytes).map_err(|source| Error::Index { index: side, source })?;
    let simple = index.entries.iter().all(|e| e.is_simple());
    drop(index);
    Ok(simple.then_some(reader))
}

/// Lists members: from the sidecar when it alone describes every member, else by decompressing.
/// Returns the source used.
pub fn list(archive: &Archive, c: Compression, index_dir: Option<&IndexDir>, opts: ScanOptions, mut f: impl FnMut(&Entry<'_>) -> Result<()>) -> Result<Source> {
    if let Some(reader) = simple_sidecar(archive, index_dir, opts)? {
        reader.for_each(f)?;
        return Ok(reader.source());
    }
    let mut r = stream_of(archive, c)?;
    scan_stream(&mut r, archive.path(), opts, CHUNK, |e| f(e))?;
    Ok(Source::Scan)
}

/// What `cat` carries between the stream callbacks.
struct CatState<'o> {
    out: &'o mut dyn Write,
    current: Option<Expander>,
    found: Vec<bool>,
}

/// Writes the named members' contents, in archive order, decompressing from the start.
pub fn cat(archive: &Archive, c: Compression, index_dir: Option<&IndexDir>, names: &[Vec<u8>], opts: ScanOptions, out: &mut dyn Write) -> Result<()> {
    let wanted: Vec<&[u8]> = names.iter().map(|n| normalize_name(n)).collect();
    // When the sidecar names every member, stop after the last position a wanted name has.
    let mut stop_after = None;
    if let Some(reader) = simple_sidecar(archive, index_dir, opts)? {
        let index = tarfs::decode(reader.index_bytes().expect("a sidecar reader has index bytes")).map_err(|source| Error::Index { index: archive.path().to_path_buf(), source })?;
        for e in &index.entries {
            let block = e.to_header();
            let h = HeaderView::new(&block);
            let mut full = h.prefix().to_vec();
            if !full.is_empty() {
                full.push(b'/');
            }
            full.extend_from_slice(h.name());
            if wanted.contains(&normalize_name(&full)) {
                stop_after = Some(e.position() * 512);
            }
        }
        stop_after.get_or_insert(0);
    }
    let io = |e: std::io::Error| Error::Io { path: "-".into(), source: e };
    let state = RefCell::new(CatState { out, current: None, found: vec![false; names.len()] });
    let mut r = stream_of(archive, c)?;
    let visit = |e: &Entry<'_>| -> Result<Visit> {
        let mut s = state.borrow_mut();
        let s = &mut *s;
        if let Some(mut x) = s.current.take() {
            x.finish(s.out).map_err(io)?;
        }
        if stop_after.is_some_and(|last| e.position > last) {
            return Ok(Visit::Stop);
        }
        let path = e.path();
        let name = normalize_name(&path);
        let mut hit = false;
        for (i, w) in wanted.iter().enumerate() {
            if *w == name {
                s.found[i] = true;
                hit = true;
            }
        }
        if !hit {
            return Ok(Visit::Skip);
        }
        s.current = Some(Expander::new(e, &opts, archive)?);
        Ok(Visit::Data)
    };
    let data = |chunk: &[u8]| -> Result<()> {
        let mut s = state.borrow_mut();
        let s = &mut *s;
        if let Some(x) = s.current.as_mut() {
            x.feed(chunk, s.out).map_err(io)?;
        }
        Ok(())
    };
    scan_stream_with(&mut r, archive.path(), opts, CHUNK, visit, data)?;
    let mut s = state.into_inner();
    if let Some(mut x) = s.current.take() {
        x.finish(s.out).map_err(io)?;
    }
    match s.found.iter().position(|f| !f) {
        Some(i) => Err(Error::NotFound { path: archive.path().to_path_buf(), name: String::from_utf8_lossy(&names[i]).into_owned() }),
        None => Ok(()),
    }
}

/// Verifies the sidecar of a compressed archive by one streaming pass.
pub fn verify(archive: &Archive, c: Compression, index_dir: Option<&IndexDir>, opts: ScanOptions) -> Result<VerifyReport> {
    let side = crate::archive::sidecar_path(archive.path(), index_dir);
    let bytes = match std::fs::read(&side) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Stale { path: archive.path().to_path_buf(), msg: format!("no index (no sidecar {})", side.display()) })
        }
        Err(e) => return Err(e).at(&side),
    };
    let index = tarfs::decode(&bytes).map_err(|source| Error::Index { index: side.clone(), source })?;
    if let Some(info) = &index.header.info {
        if info.source_len != 0 && info.source_len != archive.len() {
            return Err(Error::Stale {
                path: archive.path().to_path_buf(),
                msg: format!("sidecar {} is stale: made for a compressed file of {} bytes, the file is {} bytes", side.display(), info.source_len, archive.len()),
            });
        }
    }
    let mut pairing = Pairing::new(archive.path(), &index, 0, None)?;
    let mut r = stream_of(archive, c)?;
    scan_stream(&mut r, archive.path(), opts, CHUNK, |e| pairing.member(e))?;
    pairing.finish(Source::Sidecar(side))
}

/// Decompresses the archive into an anonymous temporary file beside it and opens that, for
/// extraction.
pub fn decompressed(archive: &Archive, c: Compression) -> Result<Archive> {
    let dir = archive.path().parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).or_else(|_| tempfile::NamedTempFile::new()).at(dir)?;
    let mut r = stream_of(archive, c)?;
    std::io::copy(&mut r, tmp.as_file_mut()).map_err(|e| Error::Io { path: archive.path().to_path_buf(), source: e })?;
    let opened = Archive::open(tmp.path())?.decompressed_from(archive.path(), archive.len());
    drop(tmp); // unlinked; the map keeps the data
    Ok(opened)
}

//! `cat`: members' contents to standard output, as `tar -xOf` writes them.

use super::*;
use crate::ops::select::selects;

/// Writes the contents of the members named `names` to `out`, in archive order; a sparse member is
/// expanded with its holes as zeros. Every occurrence of a name is written, as `tar -xOf` does,
/// and a name selects what is under it too ([`selects`]): a directory prints every file under
/// it, as `tar -xOf a.tar DIR` does (a directory itself prints nothing). Names not found are an
/// error, after the others are written.
pub fn cat(reader: &Reader<'_>, names: &[Vec<u8>], out: &mut dyn Write) -> Result<()> {
    let stdout = Path::new("-");
    let to_stdout = |err| match err {
        Error::Io { source, .. } if reader.lent().is_some() => Error::Io { path: stdout.to_path_buf(), source },
        other => other,
    };
    let not_found = |i: usize| Error::NotFound { path: reader.archive().path().to_path_buf(), name: crate::quote::diag(&names[i]) };
    let wanted: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
    if reader.reads_members_alone() {
        // Look each name up, then write the members in archive order (so a compressed stream
        // is decoded once, forward). A name that is a directory, or no member's, may have
        // members under it: those are found by listing the index, below. (Under a name that is
        // a file, as GNU tar would print members under it too, none are looked for.)
        let found = reader.lookup_all(&wanted)?;
        if found.iter().all(|f| !f.is_empty() && !f.iter().any(is_directory)) {
            let mut members: Vec<_> = found.into_iter().flatten().collect();
            members.sort_by_key(|e| e.position);
            members.dedup_by_key(|e| e.position);
            for e in &members {
                reader.write_member(e, out).map_err(to_stdout)?;
            }
            return Ok(());
        }
    }
    let mut found = vec![false; names.len()];
    if reader.lent().is_none() && !reader.reads_members_alone() {
        cat_stream(reader, &wanted, &mut found, out)?;
    } else {
        reader.for_each_path(|p| wanted.iter().any(|w| selects(w, p)), |e| {
            if !hits(&wanted, &mut found, &e.path()) || is_directory(e) {
                return Ok(());
            }
            reader.write_member(e, out).map_err(to_stdout)
        })?;
    }
    match found.iter().position(|f| !f) {
        Some(i) => Err(not_found(i)),
        None => Ok(()),
    }
}

/// Whether a member is a directory (GNU tar's dumpdir too), which `cat` prints nothing of.
fn is_directory(e: &Entry<'_>) -> bool {
    matches!(e.typeflag, b'5' | b'D')
}

/// Whether any of `wanted` selects the member named `name` ([`selects`]); marks in `found` each
/// that does.
fn hits(wanted: &[&[u8]], found: &mut [bool], name: &[u8]) -> bool {
    let mut any = false;
    for (i, w) in wanted.iter().enumerate() {
        if selects(w, name) {
            found[i] = true;
            any = true;
        }
    }
    any
}

/// What [`cat_stream`] carries between the stream callbacks.
struct CatState<'o> {
    out: &'o mut dyn Write,
    current: Option<Expander>,
}

/// `cat` of a compressed archive without an index that names its members: one pass over the
/// decoded stream, writing the members named as they pass. With an index whose entries
/// describe every member alone, the pass stops after the last position a wanted name has.
fn cat_stream(reader: &Reader<'_>, wanted: &[&[u8]], found: &mut [bool], out: &mut dyn Write) -> Result<()> {
    let archive = reader.archive();
    let stop_after = reader.form.stop_after(reader, &|name| wanted.iter().any(|w| selects(w, name)));
    let mut r = reader.stream()?;
    cat_pass(&mut r, archive.path(), reader.opts, stop_after, wanted, found, out)
}

/// Writes the members of standard input (a tar stream, compressed or not) named `names`, in
/// stream order, as `tar -xOf -` does: one pass. Names not found are an error, after the others
/// are written.
pub fn cat_stdin(names: &[Vec<u8>], opts: ScanOptions, out: &mut dyn Write) -> Result<()> {
    let wanted: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
    let mut found = vec![false; names.len()];
    let mut r = crate::stream::open_stdin()?;
    cat_pass(&mut r, Path::new("-"), opts, None, &wanted, &mut found, out)?;
    match found.iter().position(|f| !f) {
        Some(i) => Err(Error::NotFound { path: PathBuf::from("-"), name: crate::quote::diag(&names[i]) }),
        None => Ok(()),
    }
}

/// One pass over the tar stream `r` (named `path` in messages): the members whose names are
/// `wanted` are written to `out`, and `found` marks the names met. With `stop_after`, the pass
/// ends after the member at that position.
fn cat_pass(r: &mut dyn std::io::Read, path: &Path, opts: ScanOptions, stop_after: Option<u64>, wanted: &[&[u8]], found: &mut [bool], out: &mut dyn Write) -> Result<()> {
    use crate::stream::{scan_stream_with, Visit};
    use std::cell::RefCell;
    let io = |e: std::io::Error| Error::Io { path: "-".into(), source: e };
    let state = RefCell::new(CatState { out, current: None });
    let met = RefCell::new(found);
    let visit = |e: &Entry<'_>| -> Result<Visit> {
        let mut s = state.borrow_mut();
        let s = &mut *s;
        if let Some(mut x) = s.current.take() {
            x.finish(s.out).map_err(io)?;
        }
        if stop_after.is_some_and(|last| e.position > last) {
            return Ok(Visit::Stop);
        }
        if !hits(wanted, &mut met.borrow_mut(), &e.path()) || is_directory(e) {
            return Ok(Visit::Skip);
        }
        s.current = Some(Expander::new(e, &opts, path)?);
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
    scan_stream_with(r, path, opts, 1 << 20, visit, data)?;
    let mut s = state.into_inner();
    if let Some(mut x) = s.current.take() {
        x.finish(s.out).map_err(io)?;
    }
    Ok(())
}

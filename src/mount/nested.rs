//! `tarfs mount --recursive`: archives inside archives, as ratarmount's `--recursive` shows
//! them. A member whose name matches [`ARCHIVE_GLOBS`] (`x.tar`, `x.tar.gz`, …) and that reads
//! as an archive appears as a directory of that name holding the inner archive's tree, grafted
//! in place of the file ([`crate::mount::tree::TreeBuilder::graft`]); one that does not read as
//! an archive stays the file it is, and the mount says why.
//!
//! - **Eagerly**: inner archives are read when the outer one is loaded (at mount for an
//!   archive, at first look for one in a tree of archives), each through its own reader, so
//!   that one tree and one inode numbering hold them all.
//! - **Bytes**: a plain member of a plain tar is read where it lies, as a byte range of the
//!   outer archive ([`Slice::range`]); any other (a member of a compressed archive, or a sparse
//!   one) is read into memory, up to [`MAX_IN_MEMORY`] bytes ([`Slice::memory`]). Either way
//!   a compressed inner archive is decoded by the readers as any archive is.
//! - **Depth**: archives are looked for inside archives down to [`MAX_DEPTH`] levels; deeper
//!   ones stay files.
//! - **Indexes**: an inner archive has no sidecar; it is read through its embedded index, or
//!   scanned.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use super::loaded::{Build, Opened, Part};
use crate::archive::{ArchiveFile, Slice};
use crate::discover::{Discover, ARCHIVE_GLOBS};
use crate::Result;

/// How many archives deep archives are looked for (the outer archive is level 0).
pub const MAX_DEPTH: usize = 8;

/// The largest inner archive read into memory (one not stored as a plain range of its outer
/// archive).
pub const MAX_IN_MEMORY: u64 = 256 << 20;

/// Why an inner archive is shown as the file it is.
#[derive(Debug, thiserror::Error)]
enum NotGrafted {
    #[error(transparent)]
    Read(#[from] crate::Error),
    #[error("{size} bytes, over the {MAX_IN_MEMORY} that an archive read into memory may have (it is in a compressed archive, or sparse)")]
    TooLarge { size: u64 },
    #[error("the member at byte {position} is not the one listed there")]
    NotListed { position: u64 },
}

/// A member that may be an archive: its number over the mount, path, position, size and
/// fingerprint (its chain's where pax globals apply).
struct Candidate {
    member: u32,
    path: Vec<u8>,
    position: u64,
    size: u64,
    fingerprint: u64,
    globals: bool,
}

/// Adds the archive `o` at level `depth` and, with `--recursive`, the archives inside it.
pub(super) fn add(build: &mut Build<'_>, o: Opened, depth: usize) -> Result<()> {
    let globs = if build.opts.recursive && depth < MAX_DEPTH { Some(Discover::with_globs(&ARCHIVE_GLOBS)?.glob) } else { None };
    let mut found = Vec::new();
    let part = build.add(o, &mut |member, m| {
        let is_file = matches!(m.typeflag, b'0' | b'\0' | b'7');
        let name = std::path::Path::new(OsStr::from_bytes(&m.path)).file_name().unwrap_or_default();
        if is_file && globs.as_ref().is_some_and(|g| g.is_match(name)) {
            found.push(Candidate { member, path: m.path.clone(), position: m.position, size: m.size, fingerprint: m.fingerprint, globals: m.has_globals });
        }
    })?;
    for c in found {
        graft(build, &part, &c, depth);
    }
    Ok(())
}

/// Grafts the archive that member `c` of `part` is in its place, or says why it stays a file.
fn graft(build: &mut Build<'_>, part: &Arc<Part>, c: &Candidate, depth: usize) {
    let shown = crate::quote::diag(&c.path);
    let inner = match open_inner(part, c).and_then(|a| Ok(Opened::inside(a, part.clone(), build.opts)?)) {
        Ok(inner) => inner,
        Err(e) => {
            eprintln!("tarfs: {}: {shown}: shown as a file, not as an archive: {e}", part.path().display());
            return;
        }
    };
    // Another member of its name came later: that one is what is shown.
    let Some(was) = build.b.graft(&c.path, c.member) else { return };
    if let Err(e) = add(build, inner, depth + 1) {
        eprintln!("tarfs: {}: {shown}: {e}", part.path().display());
    } else if build.opts.verbose {
        eprintln!("tarfs: {}: {shown}: loaded the archive inside", part.path().display());
    }
    build.b.restore(was);
}

/// The bytes of the archive that member `c` of `part` is.
fn open_inner(part: &Arc<Part>, c: &Candidate) -> std::result::Result<Box<dyn ArchiveFile>, NotGrafted> {
    let reader = part.reader.reader();
    let layout = reader.layout_at(c.position)?;
    if layout.size != c.size || c.fingerprint != if c.globals { layout.chain } else { layout.fingerprint } {
        return Err(NotGrafted::NotListed { position: c.position });
    }
    let name = part.path().join(OsStr::from_bytes(&c.path));
    let plain = reader.compression().is_none();
    match layout.regions[..] {
        [(0, len, at)] if plain && len == layout.size => Ok(Box::new(Slice::range(name, part.reader.clone(), at, len)?)),
        _ if layout.size > MAX_IN_MEMORY => Err(NotGrafted::TooLarge { size: layout.size }),
        _ => {
            let io = |source| crate::Error::Io { path: name.clone(), source };
            let bytes = layout.read(reader, 0, layout.size as usize).map_err(io)?;
            Ok(Box::new(Slice::memory(name.clone(), reader.archive(), bytes)?))
        }
    }
}

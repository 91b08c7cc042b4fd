//! Writing a `.tarfs` index as v2.0 ([`crate::format::v2`]): each member the scan gives, as a
//! v2 record, and the body after the header block once every member is in.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::format::header::HeaderView;
use crate::format::tarfs::{self, IndexInfo};
use crate::format::v2::{self, Builder};
use crate::ops::index::EntryRec;
use crate::scan::ScanEnd;

/// The extension record's member flags and the v2 record's that say the same, pair by pair.
pub(crate) const FLAGS: [(u8, u8); 3] = [(crate::format::ext::SPARSE, v2::F_SPARSE), (crate::format::ext::XATTRS, v2::F_XATTRS), (crate::format::ext::GLOBALS, v2::F_GLOBALS)];

/// Adds the member of `r` (a record made on a scanning thread) to `b`. Errors name `path`.
///
/// Everything comes from the record as the scan decoded it: its extension record (sizes,
/// times, owners, blocks and the strings the main header does not give), its mode, typeflag and
/// devices, and the main header's own strings; the header is not decoded again here, on the
/// one thread that builds the body.
pub(crate) fn push(b: &mut Builder, r: &EntryRec<'_>, path: &Path) -> Result<()> {
    let index_error = |source: tarfs::IndexError| Error::Index { index: path.to_path_buf(), source };
    let meta = r.meta.as_ref().ok_or_else(|| index_error(v2::V2Error::Entry { entry: b.len() as u64, what: "its header chain is over 2 TiB" }.into()))?;
    let h = HeaderView::new(r.header);
    let mut flags = 0;
    for (ext_flag, v2_flag) in FLAGS {
        if meta.flags & ext_flag != 0 {
            flags |= v2_flag;
        }
    }
    let joined;
    let [member_path, link, uname, gname] = match &r.strings {
        Some(s) => s.parts(),
        None => {
            let member_path: &[u8] = match meta.path {
                Some(p) => p,
                None if h.prefix().is_empty() => h.name(),
                None => {
                    joined = [h.prefix(), b"/", h.name()].concat();
                    &joined
                }
            };
            [member_path, meta.link.unwrap_or_else(|| h.linkname()), meta.uname.unwrap_or_else(|| h.uname()), meta.gname.unwrap_or_else(|| h.gname())]
        }
    };
    let m = v2::Member {
        path: member_path,
        link,
        position: r.position,
        main_blocks: u64::from(meta.main_blocks),
        chain_blocks: u64::from(meta.chain_blocks),
        size: meta.size,
        stored_size: meta.stored_size,
        mtime: (meta.mtime, meta.mtime_nsec),
        mode: r.mode,
        owner: v2::Owner { uid: meta.uid, gid: meta.gid, uname, gname },
        header_sum: r.header_sum,
        typeflag: r.typeflag,
        flags,
        device: r.device,
    };
    // With its strings, the record carries v2's key hash (see `EntryRec::key_hash`).
    let pushed = match r.strings {
        Some(_) => b.push_hashed(&m, r.key_hash),
        None => b.push(&m),
    };
    pushed.map_err(|e| index_error(e.into()))
}

/// Writes the index of `b` to `out`, whose first block (at `start`, a placeholder already
/// written) waits for the header: the body, then the seek section `seek`, then the header block
/// over the placeholder. Returns the header's record.
///
/// The body of a compressed archive's index (the one with a seek section) is deflated
/// ([`v2::DEFLATED`]): beside a small compressed archive its size counts, and reading a member
/// decodes a span of the archive anyway, next to which inflating the index is cheap.
pub(crate) fn finish<W: Write + Seek>(mut b: Builder, mut info: IndexInfo, end: &ScanEnd, seek: Option<&[u8]>, out: &mut W, path: &Path, start: u64) -> Result<IndexInfo> {
    b.globals(end.has_globals, end.global_attributes);
    let body = b.seal(seek.is_some());
    info.ext_len = body.len();
    let header = tarfs::encode_header_as(&info, b"v2.0");
    out.write_all(&body.finish(&header)).at(path)?;
    if let Some(seek) = seek {
        out.write_all(seek).at(path)?;
    }
    let after = out.stream_position().at(path)?;
    out.seek(SeekFrom::Start(start)).at(path)?;
    out.write_all(&header).at(path)?;
    out.seek(SeekFrom::Start(after)).at(path)?;
    Ok(info)
}

/// The whole v2 index (header block and body) of the members `recs` (positions from the
/// index's base), recorded as `info` says, for an embedded index. Errors name `path`.
pub(crate) fn encode<'a>(recs: impl Iterator<Item = EntryRec<'a>>, mut info: IndexInfo, end: &ScanEnd, digests: Option<Vec<u8>>, path: &Path) -> Result<Vec<u8>> {
    let mut b = Builder::default();
    for r in recs {
        push(&mut b, &r, path)?;
    }
    b.globals(end.has_globals, end.global_attributes);
    b.digests(digests);
    // Stored plain: an embedded index's length must not depend on the positions it records.
    let body = b.seal(false);
    info.ext_len = body.len();
    let header = tarfs::encode_header_as(&info, b"v2.0");
    let mut out = header.to_vec();
    out.extend_from_slice(&body.finish(&header));
    Ok(out)
}

/// The length of the v2 body of the members `recs`, with a member digests part of
/// `digests_len` bytes (0: none), which does not depend on their positions.
pub(crate) fn body_len<'a>(recs: impl Iterator<Item = EntryRec<'a>>, digests_len: usize) -> u64 {
    let mut b = Builder::default();
    for r in recs {
        // A member the body cannot hold makes `encode` fail later, with its error.
        let _ = push(&mut b, &r, Path::new(""));
    }
    b.digests((digests_len > 0).then(|| vec![0; digests_len]));
    b.body_len()
}

/// Whether the old index bytes `current` say what the new v2 `index` says: equal but for the
/// header block and the CRCs in the body's head that bind it (both change with the write
/// generation).
pub(crate) fn same(current: &[u8], index: &[u8]) -> bool {
    const HEAD_AT: usize = crate::format::header::BLOCK;
    let at = |o: usize| HEAD_AT + o;
    current.len() >= index.len()
        && index.len() >= at(v2::HEAD)
        && current[at(0)..at(144)] == index[at(0)..at(144)]
        && current[at(148)..at(252)] == index[at(148)..at(252)]
        && current[at(v2::HEAD)..index.len()] == index[at(v2::HEAD)..]
}

//! Writing a `.tarfs` index as v2.0 ([`crate::format::v2`]): each member the scan gives, as a
//! v2 record, and the body after the header block once every member is in.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::format::header::HeaderView;
use crate::format::tarfs::{self, IndexInfo};
use crate::format::v2::{self, Builder};
use crate::ops::index::EntryRec;
use crate::scan::{Entry, ScanEnd};

/// Adds the member of `r` (a record made on a scanning thread) to `b`. Errors name `path`.
pub(crate) fn push(b: &mut Builder, r: &EntryRec<'_>, path: &Path) -> Result<()> {
    let index_error = |source: tarfs::IndexError| Error::Index { index: path.to_path_buf(), source };
    let meta = r.meta.as_ref().ok_or_else(|| index_error(v2::V2Error::Entry { entry: b.len() as u64, what: "its header chain is over 2 TiB" }.into()))?;
    // The member as the index describes it: its main header, with what the header cannot hold.
    let e = Entry::from_index(HeaderView::new(r.header), r.position, meta).map_err(|source| Error::Scan { path: path.to_path_buf(), source })?;
    let mut flags = 0;
    for (ext_flag, v2_flag) in [(crate::format::ext::SPARSE, v2::F_SPARSE), (crate::format::ext::XATTRS, v2::F_XATTRS), (crate::format::ext::GLOBALS, v2::F_GLOBALS)] {
        if meta.flags & ext_flag != 0 {
            flags |= v2_flag;
        }
    }
    let member_path = e.path();
    let m = v2::Member {
        path: &member_path,
        link: e.link(),
        position: e.position,
        main_blocks: u64::from(meta.main_blocks),
        chain_blocks: u64::from(meta.chain_blocks),
        size: e.size,
        stored_size: e.stored_size,
        mtime: (e.mtime, meta.mtime_nsec),
        mode: e.mode,
        owner: v2::Owner { uid: e.uid, gid: e.gid, uname: e.uname(), gname: e.gname() },
        header_sum: r.header_sum,
        typeflag: e.typeflag,
        flags,
        device: e.device,
    };
    b.push(&m).map_err(|e| index_error(e.into()))
}

/// Writes the index of `b` to `out`, whose first block (at `start`, a placeholder already
/// written) waits for the header: the body, then the seek section `seek`, then the header block
/// over the placeholder. Returns the header's record.
pub(crate) fn finish<W: Write + Seek>(mut b: Builder, mut info: IndexInfo, end: &ScanEnd, seek: Option<&[u8]>, out: &mut W, path: &Path, start: u64) -> Result<IndexInfo> {
    b.globals(end.has_globals, end.global_attributes);
    info.ext_len = b.body_len();
    let header = tarfs::encode_header_as(&info, b"v2.0");
    out.write_all(&b.finish(&header)).at(path)?;
    if let Some(seek) = seek {
        out.write_all(seek).at(path)?;
    }
    let after = out.stream_position().at(path)?;
    out.seek(SeekFrom::Start(start)).at(path)?;
    out.write_all(&header).at(path)?;
    out.seek(SeekFrom::Start(after)).at(path)?;
    Ok(info)
}

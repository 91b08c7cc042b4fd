//! A member's logical contents from its stored data: sparse holes written as zeros.

use super::*;

/// Writes one member's logical contents (sparse holes expanded) to `out`, from `bytes`, the
/// archive's bytes lent whole ([`Reader::lent`]; `path` names the archive in errors).
pub fn write_data(bytes: &[u8], path: &Path, e: &Entry<'_>, opts: &ScanOptions, out: &mut dyn Write) -> Result<()> {
    let io = |source| Error::Io { path: PathBuf::from("-"), source };
    let short = || Error::Data { path: path.to_path_buf(), offset: e.position, problem: DataProblem::EndsInData };
    let data = usize::try_from(e.data_offset).ok().zip(usize::try_from(e.data_offset.saturating_add(e.stored_size)).ok()).and_then(|(a, b)| bytes.get(a..b)).ok_or_else(short)?;
    let mut x = Expander::new(e, opts, path)?;
    if x.stored() > data.len() as u64 {
        return Err(Error::Data { path: path.to_path_buf(), offset: e.header_offset, problem: DataProblem::SparseShort { needs: x.stored(), stores: data.len() as u64 } });
    }
    x.feed(data, out).map_err(io)?;
    x.finish(out).map_err(io)
}

/// Writes a member's logical contents as its stored data arrives: a sparse member's holes as
/// zeros, in order.
#[derive(Clone)]
pub(crate) struct Expander {
    map: Vec<Region>,
    region: usize,
    in_region: u64,
    logical: u64,
    size: u64,
}

impl Expander {
    pub(crate) fn new(e: &Entry<'_>, opts: &ScanOptions, path: &Path) -> Result<Expander> {
        let bad = |err| Error::Data { path: path.to_path_buf(), offset: e.header_offset, problem: DataProblem::SparseMap(err) };
        let map = match e.sparse_map(&opts.limits).map_err(bad)? {
            Some(m) => {
                crate::format::sparse::validate(&m, e.size).map_err(bad)?;
                m
            }
            None => vec![(0, e.stored_size)],
        };
        let size = if e.sparse.is_some() { e.size } else { e.stored_size };
        Ok(Expander { map, region: 0, in_region: 0, logical: 0, size })
    }

    /// The `(logical offset, length)` regions of data, in order, checked against the member.
    pub(crate) fn regions(&self) -> &[Region] {
        &self.map
    }

    /// The member's logical size.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Bytes of stored data the map accounts for.
    pub(crate) fn stored(&self) -> u64 {
        self.map.iter().map(|r| r.1).sum()
    }

    pub(super) fn zeros(&mut self, mut n: u64, out: &mut dyn Write) -> std::io::Result<()> {
        let z = [0u8; 8192];
        while n > 0 {
            let k = n.min(z.len() as u64) as usize;
            out.write_all(&z[..k])?;
            n -= k as u64;
            self.logical += k as u64;
        }
        Ok(())
    }

    pub(crate) fn feed(&mut self, mut data: &[u8], out: &mut dyn Write) -> std::io::Result<()> {
        while !data.is_empty() && self.region < self.map.len() {
            let (offset, len) = self.map[self.region];
            if self.in_region == 0 && self.logical < offset {
                self.zeros(offset - self.logical, out)?;
            }
            let k = (len - self.in_region).min(data.len() as u64) as usize;
            out.write_all(&data[..k])?;
            self.logical += k as u64;
            self.in_region += k as u64;
            data = &data[k..];
            if self.in_region == len {
                self.region += 1;
                self.in_region = 0;
            }
        }
        Ok(())
    }

    pub(crate) fn finish(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        let end = self.size;
        self.zeros(end.saturating_sub(self.logical), out)
    }
}

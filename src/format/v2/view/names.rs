//! Paths, extras, owners and lookup of a v2 body.

use super::*;

impl<'d> View<'d> {
    /// The path of entry `i`, into `out`: from its group's first path, front coding undone.
    pub fn path_into(&self, i: usize, out: &mut Vec<u8>) -> Result<(), V2Error> {
        if i >= self.n {
            return Err(V2Error::Entry { entry: i as u64, what: "no such entry" });
        }
        let g = i / RESTART;
        let at = self.restarts.start.saturating_add(g.saturating_mul(4));
        let start = u32_at(self.bytes(at..at.saturating_add(4))?, 0) as usize;
        let mut cursor = self.paths.start.saturating_add(start);
        out.clear();
        for k in g.saturating_mul(RESTART)..=i {
            cursor = self.next_path(k, cursor, out)?;
        }
        Ok(())
    }

    /// Every path in entry order, to `f`, decoded in one pass.
    pub fn for_each_path<E: From<V2Error>>(&self, mut f: impl FnMut(usize, &[u8]) -> Result<(), E>) -> Result<(), E> {
        let mut out = Vec::new();
        let mut cursor = self.paths.start;
        for i in 0..self.n {
            cursor = self.next_path(i, cursor, &mut out)?;
            f(i, &out)?;
        }
        Ok(())
    }

    /// Decodes path `i` at `cursor` over the one before it in `out`; where the next begins.
    fn next_path(&self, i: usize, cursor: usize, out: &mut Vec<u8>) -> Result<usize, V2Error> {
        let bad = |what| V2Error::Entry { entry: i as u64, what };
        // Two LEB128 numbers take at most 20 bytes.
        let window = self.bytes(cursor..cursor.saturating_add(20).min(self.paths.end))?;
        let mut at = 0;
        let shared = read_leb(window, &mut at).ok_or(bad("its path's prefix length"))?;
        let rest = read_leb(window, &mut at).ok_or(bad("its path's length"))?;
        if (i.is_multiple_of(RESTART) && shared != 0) || shared > out.len() as u64 {
            return Err(bad("its path shares more than the path before it has"));
        }
        let from = cursor.saturating_add(at);
        let to = usize::try_from(rest).ok().and_then(|r| from.checked_add(r)).filter(|&t| t <= self.paths.end).ok_or(bad("its path runs past the paths"))?;
        out.truncate(shared as usize);
        out.extend_from_slice(self.bytes(from..to)?);
        Ok(to)
    }

    /// Where the extras of entry `i` start: a binary search of the extras index.
    fn extras_at(&self, i: usize) -> Result<usize, V2Error> {
        let idx = self.bytes(self.extras_index.clone())?;
        let count = idx.len() / 8;
        let k = partition(count, |k| (u32_at(idx, k.saturating_mul(8)) as usize) < i);
        if k == count || u32_at(idx, k.saturating_mul(8)) as usize != i {
            return Err(V2Error::Entry { entry: i as u64, what: "its extras are not in the extras index" });
        }
        Ok(self.extras.start.saturating_add(u32_at(idx, k.saturating_mul(8).saturating_add(4)) as usize))
    }

    /// The extras of entry `i` (whose record has [`super::super::F_EXTRAS`]).
    pub fn extras(&self, i: usize) -> Result<Extras<'d>, V2Error> {
        let bad = |what| V2Error::Entry { entry: i as u64, what };
        let mut at = self.extras_at(i)?;
        let mut x = Extras::default();
        loop {
            let tag = *self.bytes(at..at.saturating_add(1))?.first().ok_or(bad("its extras"))?;
            at = at.saturating_add(1);
            if tag == 0 {
                return Ok(x);
            }
            let window = self.bytes(at..at.saturating_add(10).min(self.extras.end))?;
            let mut k = 0;
            let len = read_leb(window, &mut k).ok_or(bad("an extra's length"))?;
            let from = at.saturating_add(k);
            let to = usize::try_from(len).ok().and_then(|l| from.checked_add(l)).filter(|&t| t <= self.extras.end).ok_or(bad("an extra runs past the extras"))?;
            let v = self.bytes(from..to)?;
            let size = |n: usize| if v.len() == n { Ok(()) } else { Err(bad("an extra has the wrong size")) };
            match tag {
                X_LINK => x.link = v,
                X_STORED => size(8).map(|()| x.stored = Some(u64_at(v, 0)))?,
                X_MAIN => size(8).map(|()| x.main = Some(u64_at(v, 0)))?,
                X_CHAIN => size(8).map(|()| x.chain = Some(u64_at(v, 0)))?,
                X_MTIME => size(12).map(|()| x.mtime = Some((u64_at(v, 0) as i64, u32_at(v, 8))))?,
                X_DEVICE => size(16).map(|()| x.device = (u64_at(v, 0), u64_at(v, 8)))?,
                _ => return Err(bad("an extra of an unknown kind")),
            }
            at = to;
        }
    }

    /// The entries named `name` (normalized as [`key_hash`] does), in entry order: its slot,
    /// then the following ones until an empty one, each candidate's tag and then path compared.
    pub fn lookup(&self, name: &[u8]) -> Result<Vec<usize>, V2Error> {
        let key = crate::format::ext::normalize_name(name);
        let h = key_hash(key);
        let slots = self.hash.len().checked_div(4).unwrap_or(0);
        let mut s = h.checked_rem(slots as u64).unwrap_or(0) as usize;
        let (mut found, mut path) = (Vec::new(), Vec::new());
        for _ in 0..slots {
            let at = self.hash.start.saturating_add(s.saturating_mul(4));
            let v = u32_at(self.bytes(at..at.saturating_add(4))?, 0) as usize;
            let Some(i) = v.checked_sub(1) else { break };
            if self.record(i)?.tag == (h >> 48) as u16 {
                self.path_into(i, &mut path)?;
                if crate::format::ext::normalize_name(&path) == key {
                    found.push(i);
                }
            }
            s = s.saturating_add(1).checked_rem(slots).unwrap_or(0);
        }
        found.sort_unstable();
        Ok(found)
    }

    /// Decodes the owners part: each owner's ids and where its names are.
    #[allow(clippy::type_complexity)]
    pub(super) fn decode_owners(&self, part: Range<usize>) -> Result<Vec<(u64, u64, Range<usize>, Range<usize>)>, V2Error> {
        let b = self.bytes(part.clone())?;
        let count = u32_at(b, 0) as usize;
        let shift = |r: Range<usize>| r.start.saturating_add(part.start)..r.end.saturating_add(part.start);
        (0..count)
            .map(|k| {
                let (uid, gid, u, g) = owner_at(b, u32_at(b, 4usize.saturating_add(k.saturating_mul(4))) as usize).ok_or(V2Error::Part("owners"))?;
                Ok((uid, gid, shift(u), shift(g)))
            })
            .collect()
    }
}

/// The owner whose bytes start at `at` of the owners part `b`: ids, and where its names are in
/// `b`.
fn owner_at(b: &[u8], mut at: usize) -> Option<(u64, u64, Range<usize>, Range<usize>)> {
    let u = |at: usize| Some(u64::from_le_bytes(b.get(at..at.checked_add(8)?)?.try_into().ok()?));
    let (uid, gid) = (u(at)?, u(at.checked_add(8)?)?);
    at = at.checked_add(16)?;
    let mut name = || -> Option<Range<usize>> {
        let len = usize::try_from(read_leb(b, &mut at)?).ok()?;
        let r = at..at.checked_add(len)?;
        b.get(r.clone())?;
        at = r.end;
        Some(r)
    };
    let uname = name()?;
    let gname = name()?;
    Some((uid, gid, uname, gname))
}

/// The first `k` in `0..n` for which `before(k)` is false (`before` true, then false).
fn partition(n: usize, before: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo.saturating_add(hi.saturating_sub(lo).checked_div(2).unwrap_or(0));
        if before(mid) {
            lo = mid.saturating_add(1);
        } else {
            hi = mid;
        }
    }
    lo
}

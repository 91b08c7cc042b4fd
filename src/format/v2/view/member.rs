//! A member of a v2 body given back as a writer gave it ([`Member`]), so that a new index can
//! take the members of an old one without reading the archive (an archive that only grew).

use super::{View, V2Error};
use crate::format::v2::{Member, F_EXTRAS, F_GLOBALS, F_SPARSE, F_XATTRS};

impl<'d> View<'d> {
    /// Entry `i` as the [`Member`] that, pushed into a [`crate::format::v2::Builder`], gives
    /// the same record, path, extras and owner; `path` is its path ([`View::path_into`]).
    pub fn member<'p>(&self, i: usize, path: &'p [u8]) -> Result<Member<'p>, V2Error>
    where
        'd: 'p,
    {
        let bad = |what| V2Error::Entry { entry: i as u64, what };
        let rec = self.record(i)?;
        let x = if rec.flags & F_EXTRAS != 0 { self.extras(i)? } else { super::Extras::default() };
        let owner = self.owner(rec.owner).ok_or(bad("its owner is not in the owners"))?;
        let chain = x.chain.unwrap_or(u64::from(rec.chain));
        let mtime = x.mtime.unwrap_or((rec.mtime_ns.div_euclid(1_000_000_000), rec.mtime_ns.rem_euclid(1_000_000_000) as u32));
        Ok(Member {
            path,
            link: x.link,
            position: rec.position,
            main_blocks: x.main.unwrap_or(chain.saturating_sub(1)),
            chain_blocks: chain,
            size: rec.size,
            stored_size: x.stored.unwrap_or(rec.size),
            mtime,
            mode: rec.mode,
            owner,
            header_sum: rec.header_sum,
            typeflag: rec.typeflag,
            flags: rec.flags & (F_SPARSE | F_XATTRS | F_GLOBALS),
            device: x.device,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::format::v2::{Builder, Member, Owner, Parts, F_SPARSE};

    #[test]
    fn members_taken_from_a_body_make_the_same_body() {
        let mut b = Builder::default();
        let names: Vec<String> = (0..40).map(|i| format!("dir{}/file-{i}", i % 3)).collect();
        for (i, name) in names.iter().enumerate() {
            let i = i as u64;
            let m = Member {
                path: name.as_bytes(),
                link: if i % 5 == 0 { b"target" } else { b"" },
                position: i * 4096,
                main_blocks: if i == 7 { 0 } else { 1 + i % 2 },
                chain_blocks: if i == 9 { 70_000 } else { 2 + i % 2 },
                size: i * 1000,
                stored_size: if i == 3 { 10 } else { i * 1000 },
                mtime: if i == 4 { (i64::MAX / 2, 5) } else { (1_600_000_000 + i as i64, 123) },
                mode: 0o644,
                owner: Owner { uid: i % 2, gid: 7, uname: b"u", gname: b"g" },
                header_sum: 5000 + i as u32,
                typeflag: if i == 6 { b'3' } else { b'0' },
                flags: if i == 3 { F_SPARSE } else { 0 },
                device: if i == 6 { (8, 1) } else { (0, 0) },
            };
            b.push(&m).unwrap();
        }
        let header = [1u8; 512];
        let body = b.seal(false).finish(&header);
        let parts = Parts::open(&body, &header).unwrap();
        let view = parts.on(&body);
        let mut again = Builder::default();
        let mut path = Vec::new();
        for i in 0..view.len() {
            view.path_into(i, &mut path).unwrap();
            let m = view.member(i, &path).unwrap();
            again.push(&m).unwrap();
        }
        assert!(again.seal(false).finish(&header) == body);
    }
}

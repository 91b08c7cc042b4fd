//! Opening a deflated v2 body ([`super::DEFLATED`]): the plain body it stores, made in memory,
//! so that [`super::Parts`] reads it as it reads any other.

use std::io::Read;

use super::{crc32, V2Error, DEFLATED, HEAD};

/// Deflate cannot expand data more than about 1032 times; a head that claims more lies.
const MAX_RATIO: u64 = 1032;

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at.saturating_add(8)).map_or(0, |s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at.saturating_add(4)).map_or(0, |s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
}

/// The plain body that the stored `body` holds, when it is deflated: its head followed by the
/// inflated parts. `None` when the body is stored plain, or when its head does not hold (which
/// [`super::Parts::open`] then reports).
pub fn image(body: &[u8]) -> Result<Option<Vec<u8>>, V2Error> {
    let Some(head) = body.get(..HEAD) else { return Ok(None) };
    if crc32(&head[..252]) != u32_at(head, 252) || u32_at(head, 124) & DEFLATED == 0 {
        return Ok(None);
    }
    let (plain, stored_len) = (u64_at(head, 184), u64_at(head, 192));
    let stored = usize::try_from(stored_len).ok().and_then(|d| body.get(HEAD..HEAD.checked_add(d)?)).ok_or(V2Error::Part("deflated parts"))?;
    if crc32(stored) != u32_at(head, 200) {
        return Err(V2Error::Chunk { start: HEAD as u64, end: (HEAD as u64).saturating_add(stored_len) });
    }
    let want = plain.checked_sub(HEAD as u64).filter(|&w| w <= stored_len.saturating_mul(MAX_RATIO).saturating_add(64)).ok_or(V2Error::Part("deflated parts"))?;
    let mut out = Vec::with_capacity(usize::try_from(plain).map_err(|_| V2Error::Part("deflated parts"))?);
    out.extend_from_slice(head);
    let got = flate2::read::DeflateDecoder::new(stored).take(want.saturating_add(1)).read_to_end(&mut out);
    if got.ok() != Some(want as usize) {
        return Err(V2Error::Head("its deflated parts do not inflate to the length it gives"));
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::v2::{Builder, Member, Parts};

    fn sealed(deflate: bool) -> (Vec<u8>, [u8; 512]) {
        let mut b = Builder::default();
        for i in 0..300u64 {
            let path = format!("package/dir{}/file{i}.js", i % 7);
            b.push(&Member { path: path.as_bytes(), position: i * 1024, chain_blocks: 1, size: 100 + i, stored_size: 100 + i, mode: 0o644, typeflag: b'0', ..Member::default() }).unwrap();
        }
        let header = [7u8; 512];
        (b.seal(deflate).finish(&header), header)
    }

    #[test]
    fn a_deflated_body_opens_to_the_plain_body() {
        let (plain, header) = sealed(false);
        let (small, _) = sealed(true);
        assert!(small.len() < plain.len() / 2, "{} vs {}", small.len(), plain.len());
        assert_eq!(image(&plain).unwrap(), None);
        let img = image(&small).unwrap().expect("deflated");
        assert_eq!(img[HEAD..], plain[HEAD..img.len()]);
        let parts = Parts::open(&img, &header).unwrap();
        let view = parts.on(&img);
        view.check_all().unwrap();
        assert_eq!(view.lookup(b"package/dir3/file10.js").unwrap(), vec![10]);
    }

    #[test]
    fn a_damaged_deflated_body_is_refused() {
        let (small, _) = sealed(true);
        let d = u64_at(&small, 192) as usize;
        for at in [HEAD + 3, HEAD + d / 2, HEAD + d - 1] {
            let mut bad = small.clone();
            bad[at] ^= 0x10;
            assert!(image(&bad).is_err(), "flip at {at}");
        }
        let mut short = small.clone();
        short.truncate(HEAD + 10);
        assert!(image(&short).is_err());
    }
}

//! Property tests: the `.tarfs` codec is an identity, and the scanner reads back exactly what the
//! builder wrote.

use proptest::prelude::*;
use tarfs::builder::{Builder, MemberOptions};
use tarfs::format::header::UstarFields;
use tarfs::format::tarfs::{decode, encode_entry, encode_header, IndexInfo};
use tarfs::{ScanOptions, Scanner};

fn header() -> impl Strategy<Value = [u8; 512]> {
    (proptest::collection::vec(any::<u8>(), 1..100), any::<u32>(), 0u64..1 << 33, any::<u8>()).prop_map(|(name, mode, size, typeflag)| {
        let name: Vec<u8> = name.into_iter().map(|b| b.max(1)).collect();
        UstarFields { path: &name, mode, size, typeflag, mtime: 1, ..Default::default() }.encode()
    })
}

proptest! {
    #[test]
    fn index_encode_decode_identity(
        headers in proptest::collection::vec((header(), 0u64..(1 << 40), 1u64..1000, any::<bool>()), 0..40),
        archive_len in any::<u64>(),
        end_offset in any::<u64>(),
        flags in 0u8..4,
    ) {
        let info = IndexInfo { ext_len: 0, seek_len: 0, entries: headers.len() as u64, archive_len, end_offset, flags, filter: Some("+a*\n-b\n".into()), generation: archive_len ^ end_offset, source_len: archive_len.rotate_left(7), record: 2, stamp: Some(tarfs::format::tarfs::Stamp { ino: end_offset, mtime: (archive_len as i64, 7), ctime: (-(end_offset as i64), 999_999_999) }), source_digest: (flags & 1 != 0).then_some(archive_len ^ 0x5a), erofs: (flags & 2 != 0).then_some((end_offset & !4095, archive_len >> 3)) };
        let mut data = encode_header(&info).to_vec();
        for (h, pos, chain, simple) in &headers {
            data.extend_from_slice(&encode_entry(h, *pos, *chain, *simple).unwrap());
        }
        let idx = decode(&data).unwrap();
        prop_assert_eq!(idx.header.info.as_ref(), Some(&info));
        prop_assert_eq!(idx.entries.len(), headers.len());
        for (e, (h, pos, chain, simple)) in idx.entries.iter().zip(&headers) {
            prop_assert_eq!(e.position(), *pos);
            prop_assert_eq!(e.chain_blocks(), Some(*chain));
            prop_assert_eq!(e.is_simple(), *simple);
            prop_assert!(e.matches_header(h));
            prop_assert!(e.checksum_ok());
        }
    }

    #[test]
    fn builder_then_scan_reads_back(
        members in proptest::collection::vec(
            (proptest::collection::vec(prop_oneof![Just('a'), Just('/'), Just('é'), Just(','), Just('"'), Just('\n'), Just('z')], 1..300),
             prop_oneof![Just(0usize), Just(511), Just(512), Just(513), 0usize..5000]),
            1..20)
    ) {
        let mut b = Builder::new(Vec::new());
        let mut names = Vec::new();
        for (i, (chars, size)) in members.iter().enumerate() {
            let name: String = format!("{i}{}", chars.iter().collect::<String>());
            b.add_with(&name, &vec![i as u8; *size], &MemberOptions::default()).unwrap();
            names.push((name, *size));
        }
        let placed = b.placed().to_vec();
        let tar = b.finish().unwrap();
        let got: Vec<_> = Scanner::new(&tar, ScanOptions::default()).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(got.len(), names.len());
        for (i, ((g, (name, size)), p)) in got.iter().zip(&names).zip(&placed).enumerate() {
            let path = g.path();
            prop_assert_eq!(path.as_ref(), name.as_bytes());
            prop_assert_eq!(g.size, *size as u64);
            prop_assert_eq!((g.position, g.data_offset), (p.position, p.data_offset));
            let data = &tar[g.data_offset as usize..g.data_offset as usize + size];
            prop_assert!(data.iter().all(|&b| b == i as u8));
        }
    }
}

//! xz seek points: the blocks of a multi-block file, found from its own index
//! ([`crate::format::xz`]); each decodes on its own, after its stream's header. The index is
//! at the file's end: of a file not in memory (an object), it is read by a few reads at
//! offsets, after the pass has decoded the stream ([`XzPass`] does not need the file's bytes).

use std::io::{self, Read};

use super::{binding_of_archive, Fetch, Hashing, NoSeekPoints, SeekPointsError, PIECE};
use crate::format::seek;
use crate::format::xz;
use crate::archive::{buffered_from, ArchiveFile};

/// One pass over an xz file: its decoded stream, digested; the blocks come from its index.
pub struct XzPass<'a, R> {
    file: &'a dyn ArchiveFile,
    hashing: Hashing<R>,
}

impl<'a, R: Read> XzPass<'a, R> {
    /// The xz file `file`, whose decoded stream `r` gives.
    pub fn new(file: &'a dyn ArchiveFile, r: R) -> XzPass<'a, R> {
        XzPass { file, hashing: Hashing::new(r) }
    }
}

impl<R: Read> Read for XzPass<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.hashing.read(buf)
    }
}

impl<R: Read> super::SeekPass for XzPass<'_, R> {
    fn finish(self) -> io::Result<(std::result::Result<Vec<u8>, NoSeekPoints>, u64)> {
        let (digests, total) = self.hashing.finish()?;
        Ok(match section(self.file, &digests, total)? {
            Ok((s, n)) => (Ok(s), n),
            Err(why) => (Err(why), 0),
        })
    }
}

/// The seek section of a multi-block xz file whose decompressed stream had `digests` and
/// `total` bytes, and its number of blocks; the reason there is none when the file has one
/// block (no block to start from but the first) or its blocks cannot be read.
/// (An error reading the file is an error, not a reason.)
fn section(file: &dyn ArchiveFile, digests: &[u64], total: u64) -> io::Result<std::result::Result<(Vec<u8>, u64), NoSeekPoints>> {
    let blocks = match blocks_of(file) {
        Err(xz::XzError::Read(kind)) => return Err(io::Error::new(kind, "reading the xz index")),
        Err(e) => return Ok(Err(NoSeekPoints::XzStructure(e))),
        Ok(b) => b,
    };
    if blocks.len() < 2 {
        return Ok(Err(NoSeekPoints::XzSingleBlock));
    }
    let sum: u64 = blocks.iter().map(|b| b.decompressed_len).sum();
    if sum != total {
        return Ok(Err(NoSeekPoints::XzLength { index: sum, stream: total }));
    }
    let payload = seek::encode_words(&[blocks.len() as u64, total]);
    Ok(Ok((seek::encode(seek::KIND_XZ, file.len(), binding_of_archive(file)?, total, PIECE, digests, &payload), blocks.len() as u64)))
}

/// The blocks of the xz file `file`: from its bytes where it lends them, else from its indexes,
/// footers and stream headers read at their offsets.
fn blocks_of(file: &dyn ArchiveFile) -> std::result::Result<Vec<xz::Block>, xz::XzError> {
    match file.lend() {
        Some(bytes) => xz::blocks(bytes),
        None => xz::blocks_with(usize::try_from(file.len()).unwrap_or(usize::MAX), &|start, end| {
            let got = file.read_at(start as u64, end - start).map_err(|e| xz::XzError::Read(e.kind()))?;
            if got.len() != end - start {
                return Err(xz::XzError::Structure("cut short"));
            }
            Ok(got)
        }),
    }
}

/// Decoding from the blocks of an xz file, going on with the decoder last used when a read
/// follows it.
pub struct Blocks<'a> {
    file: &'a dyn ArchiveFile,
    blocks: Vec<xz::Block>,
    current: Option<Cursor<'a>>,
}

/// A block's stream from the block on: its bytes, lent or read at offsets.
type Body<'a> = Box<dyn Read + Send + 'a>;

/// An xz decoder started at a block, and how far it has got.
struct Cursor<'a> {
    stream_start: u64,
    at: u64,
    decoder: liblzma::read::XzDecoder<io::Chain<io::Cursor<Vec<u8>>, Body<'a>>>,
}

impl<'a> Blocks<'a> {
    /// The blocks of the xz file `file`, if they are the ones the section `payload` (of a
    /// stream of `total` bytes) was made for.
    pub fn open(file: &'a dyn ArchiveFile, payload: &[u8], total: u64) -> std::result::Result<Blocks<'a>, SeekPointsError> {
        let blocks = blocks_of(file).map_err(SeekPointsError::XzStructure)?;
        let sum: u64 = blocks.iter().map(|b| b.decompressed_len).sum();
        if seek::words(payload).as_deref() != Some(&[blocks.len() as u64, sum][..]) || sum != total {
            return Err(SeekPointsError::XzBlocks);
        }
        Ok(Blocks { file, blocks, current: None })
    }
}

impl<'a> Fetch for Blocks<'a> {
    fn fetch(&mut self, start: u64, len: usize) -> io::Result<Vec<u8>> {
        let Blocks { file, blocks, current } = self;
        let mut out = Vec::with_capacity(len);
        let end = start.saturating_add(len as u64);
        while (out.len() as u64) < len as u64 {
            let at = start + out.len() as u64;
            let i = blocks.partition_point(|b| b.decompressed_offset + b.decompressed_len <= at);
            let blk = *blocks.get(i).ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "past the last xz block"))?;
            // The decompressed end of this block's stream: a decoder stops there.
            let stream_end = blocks[i..].iter().take_while(|b| b.stream_start == blk.stream_start).last().map_or(0, |b| b.decompressed_offset + b.decompressed_len);
            // Going on from where the last decoder is costs less than starting at this block when it
            // is already inside it (or is this block's start).
            let reuse = current.as_ref().is_some_and(|c| c.stream_start == blk.stream_start && c.at <= at && c.at >= blk.decompressed_offset);
            if !reuse {
                // A stream of its own: its header, then the file from this block on, up
                // to the stream's index.
                let ss = blk.stream_start as usize;
                let header = file.read_at(ss as u64, 12)?.into_owned();
                let body: Body<'a> = Box::new(buffered_from(*file, blk.offset).take(blk.stream_end - blk.offset));
                let decoder = liblzma::read::XzDecoder::new(io::Cursor::new(header).chain(body));
                *current = Some(Cursor { stream_start: blk.stream_start, at: blk.decompressed_offset, decoder });
            }
            let c = current.as_mut().expect("set above");
            io::copy(&mut (&mut c.decoder).take(at - c.at), &mut io::sink())?;
            c.at = at;
            let want = end.min(stream_end) - at;
            let before = out.len();
            (&mut c.decoder).take(want).read_to_end(&mut out)?;
            let got = (out.len() - before) as u64;
            c.at += got;
            if got < want {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "an xz block ended early"));
            }
        }
        Ok(out)
    }
}

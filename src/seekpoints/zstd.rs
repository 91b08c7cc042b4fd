//! zstd seek points: where frames start. Each zstd frame decodes on its own, so a file of
//! several frames (`pzstd`, the zstd seekable format, `t2sz`, concatenated files) can be read
//! from the frame that holds a member. The seekable format's seek table is a skippable frame,
//! so its frames are found like any others; a file of one frame (what `zstd` writes) has none.
//!
//! [`ZstdPass`] decodes the file with one streaming decoder and notes where each frame ends (the
//! decoder says so: it returns 0 exactly at a frame's end, with its input consumed up to
//! there). It reads the compressed bytes as a stream: the mapped bytes of a local file, or an
//! object read once, front to back (issue #34). Frames closer than the span to the last point noted are not noted, so a file of
//! many tiny frames does not get a huge section.

use std::io::{self, BufRead, Read};

use zstd::stream::raw::{Decoder as RawDecoder, InBuffer, Operation, OutBuffer};

use super::{binding_of_archive, Fetch, PIECE};
use crate::format::seek::{self, PieceHasher};
use crate::archive::{buffered_from, ArchiveFile};

/// One pass over a zstd file, noting frame starts.
pub struct ZstdPass<'a> {
    file: &'a dyn ArchiveFile,
    input: Box<dyn BufRead + Send + 'a>,
    decoder: RawDecoder<'static>,
    consumed: u64,
    produced: u64,
    in_frame: bool,
    frames: u64,
    gap: u64,
    /// (offset in the file, offset in the decompressed stream) of each frame start noted.
    points: Vec<(u64, u64)>,
    hasher: PieceHasher,
}

impl<'a> ZstdPass<'a> {
    /// Decodes the zstd file `file`, whose bytes `input` gives from the start, noting frame
    /// starts at least `gap` decompressed bytes apart.
    pub fn new(file: &'a dyn ArchiveFile, input: Box<dyn BufRead + Send + 'a>, gap: u64) -> io::Result<ZstdPass<'a>> {
        Ok(ZstdPass { file, input, decoder: RawDecoder::new()?, consumed: 0, produced: 0, in_frame: false, frames: 0, gap, points: vec![(0, 0)], hasher: PieceHasher::new(PIECE) })
    }

}

impl super::SeekPass for ZstdPass<'_> {
    fn finish(mut self) -> io::Result<(std::result::Result<Vec<u8>, super::NoSeekPoints>, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        let ZstdPass { file, frames, mut points, hasher, gap, .. } = self;
        let (digests, total) = hasher.finish();
        // A frame start after the last byte of output (before a seekable file's seek table, a
        // skippable frame) is no place to start reading.
        points.retain(|p| p.1 < total);
        if frames < 2 {
            return Ok((Err(super::NoSeekPoints::ZstdSingleFrame), 0));
        }
        if points.len() < 2 {
            return Ok((Err(super::NoSeekPoints::ZstdFramesClose { frames, span: gap }), 0));
        }
        let mut words = vec![points.len() as u64, frames];
        words.extend(points.iter().flat_map(|&(c, d)| [c, d]));
        let section = seek::encode(seek::KIND_ZSTD, file.len(), binding_of_archive(file)?, total, PIECE, &digests, &seek::encode_words(&words));
        Ok((Ok(section), points.len() as u64))
    }
}

impl Read for ZstdPass<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut idle = 0;
        loop {
            let rest = self.input.fill_buf()?;
            if rest.is_empty() {
                if self.in_frame {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("byte {} of the zstd file: it ends inside a frame", self.consumed)));
                }
                return Ok(0);
            }
            let mut input = InBuffer::around(rest);
            let mut output = OutBuffer::around(&mut *buf);
            let at = self.consumed;
            let hint = self.decoder.run(&mut input, &mut output).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("byte {at} of the zstd file: {e}")))?;
            let (used, made) = (input.pos(), output.pos());
            self.input.consume(used);
            self.consumed += used as u64;
            self.produced += made as u64;
            self.in_frame = hint != 0;
            if hint == 0 {
                self.frames += 1;
                let last = self.points.last().map_or(0, |p| p.1);
                if self.consumed < self.file.len() && self.produced - last >= self.gap {
                    self.points.push((self.consumed, self.produced));
                }
            }
            if made > 0 {
                self.hasher.update(&buf[..made]);
                crate::watch::at(self.consumed);
                return Ok(made);
            }
            idle = if used == 0 { idle + 1 } else { 0 };
            if idle > 2 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("byte {} of the zstd file: the decoder makes no progress", self.consumed)));
            }
        }
    }
}

/// Decoding from frame starts, going on with the decoder last used when a read follows it.
pub struct Frames<'a> {
    file: &'a dyn ArchiveFile,
    points: Vec<(u64, u64)>,
    current: Option<(u64, zstd::stream::read::Decoder<'static, Box<dyn io::BufRead + Send + 'a>>)>,
}

impl<'a> Frames<'a> {
    /// The frame starts of the seek section `payload`, for the zstd file `file`, whose stream
    /// has `total` bytes; why not, when they do not fit it.
    pub fn open(file: &'a dyn ArchiveFile, payload: &[u8], total: u64) -> std::result::Result<Frames<'a>, super::SeekPointsError> {
        let bad = || super::SeekPointsError::ZstdFrames;
        let (w, n) = seek::records(payload, 2, 2).ok_or_else(bad)?;
        let points: Vec<(u64, u64)> = w.chunks_exact(2).map(|p| (p[0], p[1])).collect();
        let ordered = points.windows(2).all(|p| p[0].0 < p[1].0 && p[0].1 < p[1].1);
        let last = points[n - 1];
        if points[0] != (0, 0) || !ordered || last.0 >= file.len() || last.1 >= total {
            return Err(bad());
        }
        Ok(Frames { file, points, current: None })
    }
}

impl<'a> Fetch for Frames<'a> {
    fn fetch(&mut self, start: u64, len: usize) -> io::Result<Vec<u8>> {
        let i = self.points.partition_point(|p| p.1 <= start).saturating_sub(1);
        let (c, d) = self.points[i];
        let reuse = self.current.as_ref().is_some_and(|(at, _)| *at <= start && *at >= d);
        if !reuse {
            self.current = Some((d, zstd::stream::read::Decoder::with_buffer(buffered_from(self.file, c))?));
        }
        let (at, decoder) = self.current.as_mut().expect("set above");
        let skip = start - *at;
        let skipped = io::copy(&mut decoder.take(skip), &mut io::sink())?;
        *at += skipped;
        let mut out = Vec::with_capacity(len);
        decoder.take(len as u64).read_to_end(&mut out)?;
        *at += out.len() as u64;
        if skipped < skip || out.len() < len {
            self.current = None;
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the zstd stream ended early"));
        }
        Ok(out)
    }
}

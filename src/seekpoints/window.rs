//! The compressed bytes a pass looks at by offset ([`super::Bzip2Pass`], which finds bzip2
//! blocks to the bit): all of a mapped file's, or a window that slides over a file read once as
//! a stream (an object, issue #34), holding from the block being decoded to some way ahead.

use std::borrow::Cow;
use std::io::{self, Read};

/// A file's bytes from `base` on, as far as they have been read.
pub struct Window<'a> {
    base: u64,
    buf: Cow<'a, [u8]>,
    /// The rest of the file, for a window over a stream (none: `buf` is the whole file).
    input: Option<Box<dyn Read + Send + 'a>>,
}

impl<'a> Window<'a> {
    /// All the bytes of a mapped file.
    pub fn lent(bytes: &'a [u8]) -> Window<'a> {
        Window { base: 0, buf: Cow::Borrowed(bytes), input: None }
    }

    /// A window over the file `input` gives from its start.
    pub fn streamed(input: Box<dyn Read + Send + 'a>) -> Window<'a> {
        Window { base: 0, buf: Cow::Owned(Vec::new()), input: Some(input) }
    }

    /// Makes the window start at the file offset `from` (not before its start) and hold at least
    /// `ahead` bytes from there, or all up to the file's end.
    pub fn hold(&mut self, from: u64, ahead: usize) -> io::Result<()> {
        let Some(input) = self.input.as_mut() else { return Ok(()) };
        let buf = self.buf.to_mut();
        let drop = usize::try_from(from.saturating_sub(self.base)).unwrap_or(usize::MAX).min(buf.len());
        buf.drain(..drop);
        self.base += drop as u64;
        while buf.len() < ahead {
            let had = buf.len();
            buf.resize(ahead.max(had + (1 << 20)), 0);
            let n = input.read(&mut buf[had..])?;
            buf.truncate(had + n);
            if n == 0 {
                self.input = None;
                break;
            }
        }
        Ok(())
    }

    /// The bytes held.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The file's bit at which [`Window::bytes`] start.
    pub fn base_bits(&self) -> u64 {
        self.base * 8
    }
}

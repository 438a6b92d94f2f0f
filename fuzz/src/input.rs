//! The targets' input format: a few fixed-width fields and length-prefixed chunks, read
//! with [`arbitrary::Unstructured`]. [`Writer`] writes the same format, so the seed corpus
//! is made from the real fixtures rather than guessed.
//!
//! - a byte: one byte (`0` once the input is exhausted);
//! - a `u16`: two bytes, little-endian;
//! - a chunk: a `u16` length, then that many bytes (fewer when the input ends);
//! - the rest: every remaining byte.

use arbitrary::Unstructured;

/// Reads the format from a fuzz input.
#[derive(Debug)]
pub struct Reader<'a>(Unstructured<'a>);

impl<'a> Reader<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self(Unstructured::new(data))
    }

    /// One byte.
    pub fn byte(&mut self) -> u8 {
        self.0.bytes(1).map_or(0, |b| b[0])
    }

    /// A little-endian `u16`.
    pub fn u16(&mut self) -> u16 {
        let lo = self.byte();
        let hi = self.byte();
        u16::from_le_bytes([lo, hi])
    }

    /// A length-prefixed chunk.
    pub fn chunk(&mut self) -> &'a [u8] {
        let len = usize::from(self.u16()).min(self.0.len());
        self.0.bytes(len).unwrap_or_default()
    }

    /// A chunk as text (invalid UTF-8 replaced).
    pub fn text(&mut self) -> String {
        String::from_utf8_lossy(self.chunk()).into_owned()
    }

    /// A value chosen by `arbitrary` from the next bytes (for fields without a seed
    /// encoding of their own).
    pub fn arbitrary<T: arbitrary::Arbitrary<'a>>(&mut self) -> Option<T> {
        self.0.arbitrary().ok()
    }

    /// Whether any byte is left.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every remaining byte.
    pub fn rest(self) -> &'a [u8] {
        self.0.take_rest()
    }
}

/// Writes the format, for seeds.
#[derive(Debug, Default, Clone)]
pub struct Writer(Vec<u8>);

impl Writer {
    /// An empty input.
    pub fn new() -> Self {
        Self::default()
    }

    /// One byte.
    pub fn byte(mut self, b: u8) -> Self {
        self.0.push(b);
        self
    }

    /// A little-endian `u16`.
    pub fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A length-prefixed chunk (at most 65 535 bytes).
    ///
    /// # Panics
    ///
    /// On a longer chunk.
    pub fn chunk(self, bytes: &[u8]) -> Self {
        let len = u16::try_from(bytes.len()).expect("a chunk of at most 65535 bytes");
        let mut w = self.u16(len);
        w.0.extend_from_slice(bytes);
        w
    }

    /// Raw bytes (the rest, or bytes read by [`Reader::arbitrary`]).
    pub fn raw(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }

    /// The input.
    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_and_reader_agree() {
        let data = Writer::new()
            .byte(7)
            .u16(513)
            .chunk(b"hello")
            .chunk(b"")
            .raw(b"tail")
            .finish();
        let mut r = Reader::new(&data);
        assert_eq!(r.byte(), 7);
        assert_eq!(r.u16(), 513);
        assert_eq!(r.chunk(), b"hello");
        assert_eq!(r.chunk(), b"");
        assert_eq!(r.rest(), b"tail");
        // Exhausted input reads as zeros and empty chunks.
        let mut r = Reader::new(&[0xff]);
        assert_eq!(r.chunk(), b"");
        assert_eq!(r.byte(), 0);
        assert!(r.is_empty());
    }
}

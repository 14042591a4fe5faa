//! Bit-packed coefficients: each value takes exactly its width in bits, least significant
//! bit first, so that a ciphertext occupies the bytes that [`crate::protocol::sizes`]
//! predicts.

/// Appends values of `width` bits (the low `width` bits of each) to a bit stream.
#[derive(Debug, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    acc: u128,
    fill: u32,
}

impl BitWriter {
    pub fn with_capacity_bits(bits: u64) -> BitWriter {
        BitWriter {
            bytes: Vec::with_capacity(bits.div_ceil(8) as usize),
            acc: 0,
            fill: 0,
        }
    }

    /// Writes the low `width` bits of `v` (`width` <= 128).
    pub fn put(&mut self, v: u128, width: u32) {
        debug_assert!(width <= 128);
        let mut v = v & super::he::low_mask(width);
        let mut width = width;
        while width > 0 {
            let take = width.min(64);
            let part = v & ((1u128 << take) - 1);
            self.acc |= part << self.fill;
            self.fill += take;
            v >>= take;
            width -= take;
            while self.fill >= 8 {
                self.bytes.push(self.acc as u8);
                self.acc >>= 8;
                self.fill -= 8;
            }
        }
    }

    /// The bytes written, the last one padded with zero bits.
    pub fn finish(mut self) -> Vec<u8> {
        if self.fill > 0 {
            self.bytes.push(self.acc as u8);
        }
        self.bytes
    }
}

/// Reads values of given widths back from a bit stream.
#[derive(Debug)]
pub struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    acc: u128,
    fill: u32,
}

/// The stream ended before all values were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bit stream too short")]
pub struct ShortStream;

impl<'a> BitReader<'a> {
    pub fn new(bytes: &'a [u8]) -> BitReader<'a> {
        BitReader {
            bytes,
            pos: 0,
            acc: 0,
            fill: 0,
        }
    }

    /// Reads one value of `width` bits (`width` <= 128).
    pub fn get(&mut self, width: u32) -> Result<u128, ShortStream> {
        let mut out = 0u128;
        let mut got = 0;
        while got < width {
            if self.fill == 0 {
                let b = *self.bytes.get(self.pos).ok_or(ShortStream)?;
                self.pos += 1;
                self.acc = b as u128;
                self.fill = 8;
            }
            let take = (width - got).min(self.fill);
            out |= (self.acc & ((1u128 << take) - 1)) << got;
            self.acc >>= take;
            self.fill -= take;
            got += take;
        }
        Ok(out)
    }

    /// Bytes consumed so far (a partly read byte counts).
    pub fn consumed(&self) -> usize {
        self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(vals in proptest::collection::vec((any::<u128>(), 1u32..=128), 0..50)) {
            let mut w = BitWriter::default();
            let total: u64 = vals.iter().map(|v| v.1 as u64).sum();
            for &(v, b) in &vals { w.put(v, b); }
            let bytes = w.finish();
            prop_assert_eq!(bytes.len() as u64, total.div_ceil(8));
            let mut r = BitReader::new(&bytes);
            for &(v, b) in &vals {
                prop_assert_eq!(r.get(b).unwrap(), v & crate::verify::he::low_mask(b));
            }
        }
    }

    #[test]
    fn short_stream_is_an_error() {
        let mut r = BitReader::new(&[0xff]);
        assert_eq!(r.get(4), Ok(0xf));
        assert_eq!(r.get(5), Err(ShortStream));
    }
}

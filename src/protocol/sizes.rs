//! Ciphertext sizes on the wire: the one definition that both the cost model and the
//! verify mode use (the verify mode serialises with exactly these widths and counts).
//!
//! Bit-packed format: every coefficient of a polynomial takes exactly its width in bits,
//! a ciphertext starts on a byte boundary.
//! - Query ciphertext (client -> server), encrypted with the secret key: only the body
//!   polynomial is sent, N coefficients at log2 q bits, plus the seed of the mask
//!   ([`SEED_BYTES`]); a public-key style ciphertext sends both polynomials instead.
//! - Response ciphertext (server -> client), as Cheetah truncates it (docs/protocol-reference.md
//!   section 2.2): the mask polynomial c1 at `c1_bits` for all N coefficients, and of the
//!   body c0 only the `kept` coefficients that hold outputs, at `c0_bits` each.

/// Bytes of the seed from which the receiver regenerates a query's mask polynomial.
pub const SEED_BYTES: u64 = 16;

/// Bits of `count` coefficients of `width` bits.
pub fn coeff_bits(count: u64, width: u32) -> u64 {
    count * width as u64
}

/// Bytes of one query ciphertext.
pub fn query_ct_bytes(n: u64, log_q: u32, seeded: bool) -> u64 {
    if seeded {
        coeff_bits(n, log_q).div_ceil(8) + SEED_BYTES
    } else {
        2 * coeff_bits(n, log_q).div_ceil(8)
    }
}

/// Bytes of one response ciphertext.
pub fn response_ct_bytes(n: u64, c1_bits: u32, kept: u64, c0_bits: u32) -> u64 {
    (coeff_bits(n, c1_bits) + coeff_bits(kept, c0_bits)).div_ceil(8)
}

/// Bytes of a full (untruncated, unseeded) ciphertext: two polynomials at log2 q bits.
pub fn full_ct_bytes(n: u64, log_q: u32) -> u64 {
    2 * coeff_bits(n, log_q).div_ceil(8)
}

/// Extra bits above log2 t that Cheetah keeps in each coefficient of c1 after the
/// modulus switch: floor(log2(12 * N * sqrt(1/18))), which bounds the rounding error
/// times the secret with failure probability about 2^-40 (docs/protocol-reference.md 2.2;
/// 13 at N = 4096).
pub fn response_c1_extra_bits(n: u64) -> u32 {
    (12.0 * n as f64 * (1.0f64 / 18.0).sqrt()).log2().floor() as u32
}

/// Extra bits above log2 t kept in each coefficient of c0 (docs/protocol-reference.md 2.2).
pub const RESPONSE_C0_EXTRA_BITS: u32 = 1;

/// The native wire format of the reference implementations: a SEAL ciphertext serialised
/// with SEAL's zstd compression (docs/protocol-reference.md 2.2).
///
/// SEAL stores every coefficient of every RNS limb as a 64-bit word; OpenCheetah clears
/// the low bits it does not need and the c0 coefficients that hold no output; zstd finds
/// the long runs of zero words (a few bytes each) and codes every other byte with one
/// Huffman table over the whole ciphertext. The size is therefore the words' bytes times
/// the expected Huffman code length of the mixture of their byte distributions, plus the
/// fixed framing. Each byte of a word whose random bits are `low_zero..value_bits` is
/// uniform over its random bits, zero elsewhere.
pub mod seal_zstd {
    use std::collections::VecDeque;

    /// Bits of one RNS limb of SEAL's moduli as OpenCheetah and SCI_HE pick them: 60-bit
    /// primes and a last one for the rest (109 = 60 + 49, 218 = 60 + 60 + 60 + 38).
    pub const LIMB_BITS: u32 = 60;

    /// Fixed bytes of one serialised ciphertext besides its coded words: SEAL's 16-byte
    /// header, the 8-byte length prefix each OpenCheetah message carries, and, compressed
    /// with the words, the ciphertext's 81 bytes of metadata, zstd's frame and block
    /// headers and its Huffman table. 73 B, fitted on OpenCheetah's measured query
    /// (62,423 B, docs/measured/opencheetah-resnet50-conv.csv conv 3) [measured];
    /// docs/protocol-reference.md 2.2 compares every size with the measurements.
    pub const FRAMING_BYTES: u64 = 73;

    /// A 64-bit word whose bits `low_zero..value_bits` are uniform and the others zero.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Word {
        pub value_bits: u32,
        pub low_zero: u32,
    }

    /// The limbs of a `log_q`-bit modulus.
    pub fn limbs(log_q: u32) -> Vec<u32> {
        let mut v = vec![LIMB_BITS; (log_q / LIMB_BITS) as usize];
        if !log_q.is_multiple_of(LIMB_BITS) {
            v.push(log_q % LIMB_BITS);
        }
        v
    }

    /// Adds `weight` words of layout `w` to a histogram of byte probabilities (unnormalised).
    fn add_word(hist: &mut [f64; 256], w: Word, weight: f64) {
        for byte in 0..8u32 {
            let (lo, hi) = (byte * 8, byte * 8 + 8);
            let a = w.low_zero.clamp(lo, hi);
            let b = w.value_bits.min(64).clamp(lo, hi).max(a);
            let k = b - a;
            let share = weight / (1u64 << k) as f64;
            for x in 0..(1usize << k) {
                hist[x << (a - lo)] += share;
            }
        }
    }

    /// Expected length in bits of an optimal Huffman code for the distribution `p`
    /// (unnormalised weights; zero weights take no code).
    pub fn huffman_bits(p: &[f64]) -> f64 {
        let total: f64 = p.iter().sum();
        let mut w: Vec<f64> = p.iter().copied().filter(|&x| x > 0.0).collect();
        if w.len() <= 1 || total <= 0.0 {
            return if w.is_empty() { 0.0 } else { 1.0 };
        }
        w.sort_by(f64::total_cmp);
        // Two-queue Huffman: the sum of the merged weights is the expected length times
        // the total weight.
        let mut merged: VecDeque<f64> = VecDeque::new();
        let mut leaves: VecDeque<f64> = w.into();
        let mut cost = 0.0;
        fn pop(l: &mut VecDeque<f64>, m: &mut VecDeque<f64>) -> f64 {
            match (l.front(), m.front()) {
                (Some(&a), Some(&b)) if a <= b => l.pop_front(),
                (Some(_), None) => l.pop_front(),
                _ => m.pop_front(),
            }
            .unwrap_or(0.0)
        }
        while leaves.len() + merged.len() > 1 {
            let a = pop(&mut leaves, &mut merged);
            let b = pop(&mut leaves, &mut merged);
            cost += a + b;
            merged.push_back(a + b);
        }
        cost / total
    }

    /// Bytes of one serialised ciphertext made of `parts`: (count, layout) of its nonzero
    /// words; zero words cost nothing beyond the framing.
    pub fn bytes(parts: &[(u64, Word)]) -> u64 {
        let mut hist = [0.0f64; 256];
        let mut words = 0u64;
        for &(count, w) in parts {
            if count > 0 {
                add_word(&mut hist, w, count as f64);
                words += count;
            }
        }
        let bits = words as f64 * 8.0 * huffman_bits(&hist);
        (bits / 8.0).ceil() as u64 + FRAMING_BYTES
    }

    /// A query: the body's N coefficients in every limb of q; with `seeded` false, the
    /// mask polynomial too.
    pub fn query(n: u64, log_q: u32, seeded: bool) -> u64 {
        let polys = if seeded { 1 } else { 2 };
        let parts: Vec<(u64, Word)> = limbs(log_q)
            .into_iter()
            .map(|b| {
                (
                    polys * n,
                    Word {
                        value_bits: b,
                        low_zero: 0,
                    },
                )
            })
            .collect();
        bytes(&parts)
    }

    /// A full ciphertext: both polynomials in every limb.
    pub fn full(n: u64, log_q: u32) -> u64 {
        query(n, log_q, false)
    }

    /// A truncated response at the one-limb modulus of `resp_bits`: c1's N words keep
    /// their top `c1_bits`, the `kept` words of c0 their top `c0_bits`, the rest of c0 is
    /// zero.
    pub fn response(n: u64, resp_bits: u32, c1_bits: u32, kept: u64, c0_bits: u32) -> u64 {
        let w = |bits: u32| Word {
            value_bits: resp_bits,
            low_zero: resp_bits.saturating_sub(bits),
        };
        bytes(&[(n, w(c1_bits)), (kept, w(c0_bits))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cheetah_query_is_55808_bytes_plus_seed() {
        // docs/protocol-reference.md 2.2: a seeded query at N = 4096, log q = 109 is the
        // body only, 4096 x 109 = 446,464 bits = 55,808 B, plus a 16-byte seed: 55,824 B.
        assert_eq!(query_ct_bytes(4096, 109, true), 55_824);
        // Unseeded (public-key style): both polynomials, 2 x 55,808 = 111,616 B.
        assert_eq!(query_ct_bytes(4096, 109, false), 111_616);
        assert_eq!(full_ct_bytes(4096, 109), 111_616);
        // A width that does not fill the last byte: 2048 x 43 = 88,064 bits = 11,008 B
        // + 16 = 11,024 B; 1024 x 27 = 27,648 bits = 3,456 B + 16 = 3,472 B.
        assert_eq!(query_ct_bytes(2048, 43, true), 11_024);
        assert_eq!(query_ct_bytes(1024, 27, true), 3_472);
        // 3 x 27 = 81 bits round up to 11 B (+ 16).
        assert_eq!(query_ct_bytes(3, 27, true), 27);
    }

    #[test]
    fn cheetah_c1_margin_is_13_bits_at_4096() {
        // floor(log2(12 N sqrt(1/18))): 12 x 4096 x 0.23570 = 11,585.2, log2 = 13.50 -> 13;
        // at N = 2048, 5,792.6, log2 = 12.50 -> 12.
        assert_eq!(response_c1_extra_bits(4096), 13);
        assert_eq!(response_c1_extra_bits(2048), 12);
    }

    #[test]
    fn cheetah_response_keeps_c1_and_the_outputs_of_c0() {
        // docs/protocol-reference.md 2.2 at l = 37, N = 4096: c1 at 37 + 13 = 50 bits in
        // every coefficient (4096 x 50 = 204,800 bits) and c0 at 37 + 1 = 38 bits in the
        // 56 x 56 = 3136 output coefficients (119,168 bits): 323,968 bits = 40,496 B.
        assert_eq!(response_ct_bytes(4096, 50, 3136, 38), 40_496);
        assert_eq!(RESPONSE_C0_EXTRA_BITS, 1);
    }

    #[test]
    fn seal_limbs_are_60_bit_primes_and_the_rest() {
        use seal_zstd::limbs;
        assert_eq!(limbs(109), vec![60, 49]);
        assert_eq!(limbs(218), vec![60, 60, 60, 38]);
        assert_eq!(limbs(60), vec![60]);
        assert_eq!(limbs(32), vec![32]);
    }

    #[test]
    fn huffman_lengths_by_hand() {
        use seal_zstd::huffman_bits;
        // Four equal symbols: 2 bits each.
        assert_eq!(huffman_bits(&[1.0, 1.0, 1.0, 1.0]), 2.0);
        // 1/4, 1/4, 1/2: codes of 2, 2 and 1 bits, 1.5 on average.
        assert_eq!(huffman_bits(&[1.0, 1.0, 2.0]), 1.5);
        // Zero weights take no code; one symbol alone takes 1 bit.
        assert_eq!(huffman_bits(&[0.0, 3.0]), 1.0);
        assert_eq!(huffman_bits(&[0.0, 0.0]), 0.0);
    }

    #[test]
    fn seal_zstd_sizes_by_hand() {
        use seal_zstd::{FRAMING_BYTES, Word, bytes, full, query};
        // Words uniform in all 64 bits: every byte uniform over 256 values, 8 bits each, so
        // 100 words cost their 800 raw bytes plus the framing.
        let uniform = Word {
            value_bits: 64,
            low_zero: 0,
        };
        assert_eq!(bytes(&[(100, uniform)]), 800 + FRAMING_BYTES);
        // Words of 2 random low bits: per word byte 0 is uniform over {0, 1, 2, 3} and
        // bytes 1-7 are zero, so the byte weights are 7.25 (zero) and 0.25 (1, 2, 3).
        // Huffman merges 0.25 + 0.25 = 0.5, 0.25 + 0.5 = 0.75, 0.75 + 7.25 = 8: 9.25 bits
        // per 8 bytes, i.e. per word. 8 words: 74 bits = 9.25 B, 10 B + the framing.
        let two = Word {
            value_bits: 2,
            low_zero: 0,
        };
        assert_eq!(bytes(&[(8, two)]), 10 + FRAMING_BYTES);
        // The same bits cleared from the bottom leave the same distribution shifted: a word
        // with bits 62..64 random (low_zero 62) has byte 7 over {0, 64, 128, 192}.
        let top = Word {
            value_bits: 64,
            low_zero: 62,
        };
        assert_eq!(bytes(&[(8, top)]), 10 + FRAMING_BYTES);
        // Zero words cost nothing beyond the framing.
        assert_eq!(bytes(&[(0, uniform)]), FRAMING_BYTES);
        // An unseeded query is a full ciphertext: both polynomials.
        assert_eq!(query(4096, 109, false), full(4096, 109));
        assert!(query(4096, 109, true) < full(4096, 109));
    }

    #[test]
    fn response_counts_only_kept_c0() {
        // 8 x 10 = 80 bits of c1 and 2 x 4 = 8 bits of c0: 88 bits = 11 B.
        assert_eq!(response_ct_bytes(8, 10, 2, 4), 11);
        // 8 x 10 + 3 x 4 = 92 bits round up to 12 B.
        assert_eq!(response_ct_bytes(8, 10, 3, 4), 12);
        // c0 follows c1 without a byte boundary: 4 x 3 + 3 x 3 = 21 bits = 3 B (2 + 2 if
        // each polynomial were padded).
        assert_eq!(response_ct_bytes(4, 3, 3, 3), 3);
    }
}

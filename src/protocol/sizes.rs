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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cheetah_query_is_55808_bytes_plus_seed() {
        // docs/protocol-reference.md 2.2: the bit-packed ideal of a 109-bit N = 4096 query is N * 109 / 8.
        assert_eq!(query_ct_bytes(4096, 109, true), 55_808 + SEED_BYTES);
    }

    #[test]
    fn cheetah_c1_margin_is_13_bits_at_4096() {
        assert_eq!(response_c1_extra_bits(4096), 13);
        assert_eq!(response_c1_extra_bits(2048), 12);
    }

    #[test]
    fn response_counts_only_kept_c0() {
        assert_eq!(response_ct_bytes(8, 10, 2, 4), (80u64 + 8).div_ceil(8));
    }
}

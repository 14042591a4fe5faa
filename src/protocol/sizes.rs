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

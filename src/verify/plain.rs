//! The plaintext modulus of a layer: t = 2^log_t (unpacked and bit-slot layers), or an odd t
//! = t_1 ... t_c, the product of pairwise coprime CRT components (docs/protocol-reference.md
//! 4.2), and the BFV encoding of Z_t into Z_q for q = 2^log_q.
//!
//! - Encoding: m -> round(q m / t) (Delta m when t divides q). For an odd t the rounding
//!   leaves an error of at most 1/2 per encoded value, which the products multiply by the
//!   weights' L1 norm (the model's `rounding` term, [`crate::model::linear::evaluate_coeff`]).
//! - Decoding: phase -> round(t phase / q) mod t, with 256-bit intermediate products.
//! - CRT: Z_t = Z_t1 x ... x Z_tc; [`Crt::compose`] and [`Crt::decompose`] map between them.

use serde::{Deserialize, Serialize};

/// A plaintext modulus t below 2^127.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlainModulus {
    pub t: u128,
    /// ceil(log2 t): bits of a value mod t.
    pub log_t: u32,
}

/// Why a plaintext modulus cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlainError {
    #[error("plaintext modulus 2^{0} is outside 1..=126 bits")]
    Width(u32),
    #[error("CRT components {a} and {b} are not coprime (gcd {g})")]
    NotCoprime { a: u64, b: u64, g: u64 },
    #[error("a CRT component must be at least 2, got {0}")]
    TooSmall(u64),
    #[error("the CRT product has {0} bits, more than the 126 a value mod t may take here")]
    ProductTooWide(u32),
    #[error("no CRT components")]
    Empty,
}

/// Largest plaintext modulus width handled (values and sums of two below 2^127 fit a u128).
pub const MAX_LOG_T: u32 = 126;

/// a * b as a 256-bit value (hi, lo).
pub fn mul_wide(a: u128, b: u128) -> (u128, u128) {
    let m = u64::MAX as u128;
    let (a0, a1) = (a & m, a >> 64);
    let (b0, b1) = (b & m, b >> 64);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 64) + (p01 & m) + (p10 & m);
    let lo = (p00 & m) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (hi, lo)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl PlainModulus {
    /// t = 2^log_t.
    pub fn pow2(log_t: u32) -> Result<PlainModulus, PlainError> {
        if log_t == 0 || log_t > MAX_LOG_T {
            return Err(PlainError::Width(log_t));
        }
        Ok(PlainModulus {
            t: 1u128 << log_t,
            log_t,
        })
    }

    /// Any t in 2..2^126.
    pub fn new(t: u128) -> Result<PlainModulus, PlainError> {
        if t < 2 {
            return Err(PlainError::Width(0));
        }
        let log_t = 128 - (t - 1).leading_zeros();
        if log_t > MAX_LOG_T {
            return Err(PlainError::Width(log_t));
        }
        Ok(PlainModulus { t, log_t })
    }

    pub fn is_pow2(&self) -> bool {
        self.t.is_power_of_two()
    }

    pub fn reduce(&self, v: u128) -> u128 {
        v % self.t
    }

    /// (a + b) mod t for a, b < t.
    pub fn add(&self, a: u128, b: u128) -> u128 {
        let s = a + b;
        if s >= self.t { s - self.t } else { s }
    }

    /// (a - b) mod t for a, b < t.
    pub fn sub(&self, a: u128, b: u128) -> u128 {
        if a >= b { a - b } else { a + self.t - b }
    }

    /// a * b mod t for a < t (double and add over the bits of b).
    pub fn mul(&self, a: u128, b: u128) -> u128 {
        let mut r = 0u128;
        let mut a = a % self.t;
        let mut b = b;
        while b > 0 {
            if b & 1 == 1 {
                r = self.add(r, a);
            }
            a = self.add(a, a);
            b >>= 1;
        }
        r
    }

    /// a * w mod t for a signed integer w.
    pub fn mul_signed(&self, a: u128, w: i128) -> u128 {
        let p = self.mul(a, w.unsigned_abs());
        if w < 0 { self.sub(0, p) } else { p }
    }

    /// round(2^log_q m / t) mod 2^log_q, for m < t and log_t < log_q <= 128.
    pub fn encode(&self, m: u128, log_q: u32) -> u128 {
        let qmask = super::he::low_mask(log_q);
        if self.is_pow2() {
            return (m << (log_q - self.log_t)) & qmask;
        }
        // Long division of m * 2^log_q by t, one bit at a time (r < t < 2^127, so 2r fits).
        let (mut quo, mut r) = (0u128, m % self.t);
        for _ in 0..log_q {
            r <<= 1;
            quo <<= 1;
            if r >= self.t {
                r -= self.t;
                quo |= 1;
            }
        }
        if r >= self.t - r {
            quo = quo.wrapping_add(1);
        }
        quo & qmask
    }

    /// The value mod t nearest the phase (mod 2^log_q), and the error: |phase - Delta m| mod q,
    /// for an odd t |phase - q m / t| rounded (within 1 of |phase - encode(m)|).
    pub fn decode(&self, phase: u128, log_q: u32) -> (u128, u128) {
        let qmask = super::he::low_mask(log_q);
        let ph = phase & qmask;
        if self.is_pow2() {
            let delta = log_q - self.log_t;
            let m = (ph.wrapping_add(1u128 << (delta - 1)) >> delta) & (self.t - 1);
            let err = ph.wrapping_sub(m << delta) & qmask;
            return (m, err.min((qmask - err).wrapping_add(1) & qmask));
        }
        // round(t ph / 2^log_q) = (t ph + 2^(log_q - 1)) >> log_q over 256 bits; the low
        // log_q bits of t ph + 2^(log_q - 1), less 2^(log_q - 1), are t times the error.
        let half = 1u128 << (log_q - 1);
        let (hi, lo) = mul_wide(self.t, ph);
        let (lo_h, c) = lo.overflowing_add(half);
        let hi = hi + u128::from(c);
        let v = if log_q == 128 {
            hi
        } else {
            (hi << (128 - log_q)) | (lo_h >> log_q)
        };
        let low = lo_h & qmask;
        let scaled = low.abs_diff(half);
        (v % self.t, (scaled + self.t / 2) / self.t)
    }

    /// A uniform value mod t from 128-bit draws (rejection sampling).
    pub fn uniform(&self, mut draw: impl FnMut() -> u128) -> u128 {
        let mask = super::he::low_mask(self.log_t);
        loop {
            let v = draw() & mask;
            if v < self.t {
                return v;
            }
        }
    }
}

/// The CRT of pairwise coprime components t_1 ... t_c: t and the idempotents e_i (e_i = 1
/// mod t_i, 0 mod t_j for j != i).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crt {
    pub moduli: Vec<u64>,
    pub t: PlainModulus,
    idem: Vec<u128>,
}

impl Crt {
    pub fn new(moduli: &[u64]) -> Result<Crt, PlainError> {
        if moduli.is_empty() {
            return Err(PlainError::Empty);
        }
        for (i, &a) in moduli.iter().enumerate() {
            if a < 2 {
                return Err(PlainError::TooSmall(a));
            }
            for &b in &moduli[i + 1..] {
                let g = gcd(a, b);
                if g != 1 {
                    return Err(PlainError::NotCoprime { a, b, g });
                }
            }
        }
        let bits: u32 = moduli.iter().map(|&m| 64 - m.leading_zeros()).sum();
        if bits > MAX_LOG_T + 1 {
            return Err(PlainError::ProductTooWide(bits));
        }
        let t = moduli
            .iter()
            .try_fold(1u128, |acc, &m| acc.checked_mul(m as u128))
            .ok_or(PlainError::ProductTooWide(bits))?;
        let t = PlainModulus::new(t).map_err(|_| PlainError::ProductTooWide(bits))?;
        let idem = moduli
            .iter()
            .map(|&ti| {
                let mi = t.t / ti as u128;
                // inverse of M_i mod t_i by the extended Euclidean algorithm.
                let inv = inverse((mi % ti as u128) as u64, ti);
                t.mul(mi, inv as u128)
            })
            .collect();
        Ok(Crt {
            moduli: moduli.to_vec(),
            t,
            idem,
        })
    }

    /// The value mod t with the given residues (residue i < t_i).
    pub fn compose(&self, residues: &[u64]) -> u128 {
        residues
            .iter()
            .zip(&self.idem)
            .fold(0u128, |acc, (&r, &e)| {
                self.t.add(acc, self.t.mul(e, r as u128))
            })
    }

    /// The residues of v mod each component.
    pub fn decompose(&self, v: u128) -> Vec<u64> {
        self.moduli
            .iter()
            .map(|&m| (v % m as u128) as u64)
            .collect()
    }
}

/// a^-1 mod m for gcd(a, m) = 1.
fn inverse(a: u64, m: u64) -> u64 {
    let (mut r0, mut r1) = (m as i128, a as i128);
    let (mut s0, mut s1) = (0i128, 1i128);
    while r1 != 0 {
        let q = r0 / r1;
        (r0, r1) = (r1, r0 - q * r1);
        (s0, s1) = (s1, s0 - q * s1);
    }
    s0.rem_euclid(m as i128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sun_tzu() {
        // Sunzi Suanjing, problem 26: a number that leaves 2 mod 3, 3 mod 5 and 2 mod 7 is 23
        // (mod 105), the textbook example, computed by hand.
        let c = Crt::new(&[3, 5, 7]).unwrap();
        assert_eq!(c.t.t, 105);
        assert_eq!(c.compose(&[2, 3, 2]), 23);
        assert_eq!(c.decompose(23), vec![2, 3, 2]);
    }

    #[test]
    fn refuses_moduli_that_share_a_factor() {
        assert_eq!(
            Crt::new(&[6, 35, 15]),
            Err(PlainError::NotCoprime { a: 6, b: 15, g: 3 })
        );
        assert_eq!(Crt::new(&[]), Err(PlainError::Empty));
        assert_eq!(Crt::new(&[1, 3]), Err(PlainError::TooSmall(1)));
        assert!(matches!(
            Crt::new(&[(1 << 61) - 1, (1 << 61) - 3, (1 << 59) - 1]),
            Err(PlainError::ProductTooWide(_))
        ));
    }

    #[test]
    fn encoding_by_hand() {
        // q = 2^8, t = 3: round(256 m / 3) = 0, 85, 171 (85.33 and 170.67 rounded).
        let t = PlainModulus::new(3).unwrap();
        assert_eq!(
            (0..3).map(|m| t.encode(m, 8)).collect::<Vec<_>>(),
            [0, 85, 171]
        );
        // Phase 90 is 4.67 past 256 / 3 = 85.33: value 1, error 5; phase 250 is 6 short of
        // 256 = 0 mod q.
        assert_eq!(t.decode(90, 8), (1, 5));
        assert_eq!(t.decode(250, 8), (0, 6));
        // Phase 89: 3.67 past, error 4 (|89 - encode(1)| = 4 too).
        assert_eq!(t.decode(89, 8), (1, 4));
        // A power of two: the shift.
        let p = PlainModulus::pow2(4).unwrap();
        assert_eq!(p.encode(5, 8), 80);
        assert_eq!(p.decode(83, 8), (5, 3));
    }

    proptest! {
        /// Against exact big-integer arithmetic done with u128 on small moduli: encode is
        /// the nearest integer to q m / t, decode inverts it under any error below Delta / 2.
        #[test]
        fn encode_decode_small(t in 2u128..5000, m in 0u128..5000, log_q in 14u32..40, e in -1000i128..1000) {
            let pm = PlainModulus::new(t).unwrap();
            prop_assume!(pm.log_t + 2 <= log_q);
            let m = m % t;
            let q = 1u128 << log_q;
            let want = (2 * q * m + t) / (2 * t) % q;
            prop_assert_eq!(pm.encode(m, log_q), want);
            let delta_half = q / t / 2;
            prop_assume!(e.unsigned_abs() < delta_half);
            let ph = (want as i128 + e).rem_euclid(q as i128) as u128;
            // The error, exactly: round(|t ph - q m| / t), with ph taken near q m / t.
            let d = (t as i128 * (want as i128 + e) - (q * m) as i128).unsigned_abs();
            let err = if pm.is_pow2() { e.unsigned_abs() } else { (d + t / 2) / t };
            prop_assert_eq!(pm.decode(ph, log_q), (m, err));
        }

        /// 100-bit moduli at q = 2^128: the products need all 256 bits.
        #[test]
        fn encode_decode_wide(t in (1u128 << 99)..(1u128 << 100), m in any::<u128>(), e in -(1i128 << 20)..(1i128 << 20)) {
            let pm = PlainModulus::new(t | 1).unwrap();
            let m = m % pm.t;
            let enc = pm.encode(m, 128);
            let ph = enc.wrapping_add(e as u128);
            let (got, err) = pm.decode(ph, 128);
            prop_assert_eq!(got, m);
            prop_assert!(err.abs_diff(e.unsigned_abs()) <= 1, "{err} against {e}");
        }

        #[test]
        fn wide_product(a in any::<u128>(), b in any::<u128>()) {
            // Checked against four 64 x 64 products recombined through u128 halves.
            let (hi, lo) = mul_wide(a, b);
            prop_assert_eq!(lo, a.wrapping_mul(b));
            let (a1, b1) = (a >> 64, b >> 64);
            if a1 == 0 && b1 == 0 {
                prop_assert_eq!(hi, 0);
            }
            // (a * b) / a = b when a != 0: divide the 256-bit value by bits.
            if a != 0 {
                let (mut q, mut r) = (0u128, 0u128);
                for i in (0..256).rev() {
                    let bit = if i >= 128 { (hi >> (i - 128)) & 1 } else { (lo >> i) & 1 };
                    let top = r >> 127;
                    r = (r << 1) | bit;
                    q <<= 1;
                    if top == 1 || r >= a {
                        r = r.wrapping_sub(a);
                        q |= 1;
                    }
                }
                prop_assert_eq!(q, b);
                prop_assert_eq!(r, 0);
            }
        }

        #[test]
        fn crt_round_trip(w in 2u32..30, k in 1u32..5, v in any::<u128>()) {
            let moduli = crate::model::linear::crt_moduli(w, k).unwrap();
            let c = Crt::new(&moduli).unwrap();
            let v = v % c.t.t;
            prop_assert_eq!(c.compose(&c.decompose(v)), v);
            // Component-wise sums are sums mod t.
            let w = (v * 7 + 3) % c.t.t;
            let s: Vec<u64> = c.decompose(v).iter().zip(c.decompose(w)).zip(&moduli).map(|((a, b), &m)| (a + b) % m).collect();
            prop_assert_eq!(c.compose(&s), c.t.add(v, w));
        }
    }
}

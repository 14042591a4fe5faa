//! Exact negacyclic products of ciphertext polynomials (coefficients mod 2^log_q, up to
//! 2^128) with small signed weight polynomials, by NTTs over several 62-bit primes
//! (`tfhe-ntt`'s `prime64` plans) and CRT reconstruction.
//!
//! Each coefficient of a product sum is an integer V with |V| < 2^bound_bits, where
//! bound_bits = (log_q - 1) + (b_w - 1) + log2 N + log2(terms) + 1 (ciphertext
//! coefficients taken centred). With primes p_i whose product P exceeds 2^(bound_bits + 1),
//! V + 2^bound_bits is recovered exactly by Garner's mixed-radix CRT, evaluated with
//! wrapping arithmetic mod 2^128, which is all that is needed for a result mod 2^log_q.
//! Ciphertexts and weights stay in NTT form, so each extra (ciphertext, weight) pair costs
//! one pointwise multiply-accumulate per prime.

use tfhe_ntt::prime64::Plan;

pub use crate::model::linear::ntt_bound_bits as bound_bits;
use crate::model::linear::{is_prime_u64 as is_prime, ntt_prime_bits, ntt_primes};

fn mul_mod(a: u64, b: u64, p: u64) -> u64 {
    ((a as u128 * b as u128) % p as u128) as u64
}

/// Shoup's precomputed quotient of a constant b < p: floor(b 2^64 / p).
fn shoup(b: u64, p: u64) -> u64 {
    (((b as u128) << 64) / p as u128) as u64
}

/// a b mod p for any a < 2^64 and a constant b < p with its Shoup quotient `bs`: one high
/// and two low products and a conditional subtraction, no division.
#[inline(always)]
fn mul_shoup(a: u64, b: u64, bs: u64, p: u64) -> u64 {
    let q = ((a as u128 * bs as u128) >> 64) as u64;
    let r = a.wrapping_mul(b).wrapping_sub(q.wrapping_mul(p));
    if r >= p { r - p } else { r }
}

/// Constants of one prime for reducing 128-bit integers without a division.
#[derive(Debug, Clone, Copy)]
struct Reducer {
    p: u64,
    /// Shoup quotient of 1: a mod p = mul_shoup(a, 1, one_s, p).
    one_s: u64,
    /// 2^64 mod p and its Shoup quotient.
    r64: u64,
    r64_s: u64,
}

impl Reducer {
    fn new(p: u64) -> Reducer {
        let r64 = ((1u128 << 64) % p as u128) as u64;
        Reducer {
            p,
            one_s: shoup(1, p),
            r64,
            r64_s: shoup(r64, p),
        }
    }

    /// c mod p, in [0, p).
    #[inline(always)]
    fn signed(&self, c: i128) -> u64 {
        let a = c.unsigned_abs();
        let (hi, lo) = ((a >> 64) as u64, a as u64);
        let lo = mul_shoup(lo, 1, self.one_s, self.p);
        let r = if hi == 0 {
            lo
        } else {
            let s = mul_shoup(hi, self.r64, self.r64_s, self.p) + lo;
            if s >= self.p { s - self.p } else { s }
        };
        if c < 0 && r != 0 { self.p - r } else { r }
    }
}

fn pow_mod(mut a: u64, mut e: u64, p: u64) -> u64 {
    let mut r = 1u64;
    a %= p;
    while e > 0 {
        if e & 1 == 1 {
            r = mul_mod(r, a, p);
        }
        a = mul_mod(a, a, p);
        e >>= 1;
    }
    r
}

/// A polynomial in NTT form: one vector per prime.
#[derive(Debug, Clone)]
pub struct NttPoly(pub Vec<Vec<u64>>);

/// NTT plans over enough primes for products bounded by 2^bound_bits.
pub struct CrtNtt {
    n: usize,
    plans: Vec<Plan>,
    primes: Vec<u64>,
    /// inv[j][i] = p_i^-1 mod p_j for i < j, with its Shoup quotient.
    inv: Vec<Vec<(u64, u64)>>,
    red: Vec<Reducer>,
    bound_bits: u32,
    /// 2^bound_bits mod p_i.
    offset_res: Vec<u64>,
}

impl CrtNtt {
    /// Plans for ring degree `n` and sums of absolute value below 2^bound_bits.
    pub fn new(n: usize, bound_bits: u32) -> Option<CrtNtt> {
        Self::with_primes(
            n,
            ntt_primes(bound_bits) as usize,
            ntt_prime_bits(bound_bits),
            bound_bits,
        )
    }

    /// Plans over `k` primes just below 2^bits (None when their product does not exceed
    /// 2^(bound_bits + 1), or no plan exists).
    pub fn with_primes(n: usize, k: usize, bits: u32, bound_bits: u32) -> Option<CrtNtt> {
        if !(20..=62).contains(&bits) || (k as u32) * (bits - 1) < bound_bits + 2 {
            return None;
        }
        let step = 2 * n as u64;
        let mut primes = Vec::with_capacity(k);
        let mut cand = ((1u64 << bits) / step) * step + 1;
        while primes.len() < k {
            cand -= step;
            if is_prime(cand) {
                primes.push(cand);
            }
        }
        let plans: Option<Vec<Plan>> = primes.iter().map(|&p| Plan::try_new(n, p)).collect();
        let plans = plans?;
        let inv = (0..k)
            .map(|j| {
                (0..j)
                    .map(|i| {
                        let v = pow_mod(primes[i] % primes[j], primes[j] - 2, primes[j]);
                        (v, shoup(v, primes[j]))
                    })
                    .collect()
            })
            .collect();
        let offset_res = primes
            .iter()
            .map(|&p| pow_mod(2, bound_bits as u64, p))
            .collect();
        let red = primes.iter().map(|&p| Reducer::new(p)).collect();
        Some(CrtNtt {
            n,
            plans,
            primes,
            inv,
            red,
            bound_bits,
            offset_res,
        })
    }

    pub fn primes(&self) -> usize {
        self.primes.len()
    }

    pub fn zero(&self) -> NttPoly {
        NttPoly(vec![vec![0u64; self.n]; self.primes.len()])
    }

    /// Forward transform of signed integer coefficients.
    pub fn forward(&self, coeffs: &[i128]) -> NttPoly {
        NttPoly(
            self.plans
                .iter()
                .zip(&self.red)
                .map(|(plan, red)| {
                    let mut v: Vec<u64> = coeffs.iter().map(|&c| red.signed(c)).collect();
                    plan.fwd(&mut v);
                    v
                })
                .collect(),
        )
    }

    /// acc += a * b (pointwise, per prime).
    pub fn mul_acc(&self, acc: &mut NttPoly, a: &NttPoly, b: &NttPoly) {
        for (((plan, acc), a), b) in self.plans.iter().zip(&mut acc.0).zip(&a.0).zip(&b.0) {
            plan.mul_accumulate(acc, a, b);
        }
    }

    /// Inverse transform, each coefficient reduced mod 2^128 (wrapping).
    pub fn inverse(&self, mut p: NttPoly) -> Vec<u128> {
        let mut out = Vec::new();
        self.inverse_into(&mut p, &mut out);
        out
    }

    /// [`Self::inverse`] in place: `p` is transformed back (and left so), the coefficients
    /// written to `out`, whose allocation is reused.
    pub fn inverse_into(&self, p: &mut NttPoly, out: &mut Vec<u128>) {
        for (plan, v) in self.plans.iter().zip(&mut p.0) {
            plan.inv(v);
            plan.normalize(v);
        }
        let k = self.primes.len();
        let offset = if self.bound_bits >= 128 {
            0u128
        } else {
            1u128 << self.bound_bits
        };
        let mut y = vec![0u64; k];
        out.clear();
        out.extend((0..self.n).map(|c| {
            // Residues of V + 2^bound_bits, then Garner's mixed radix digits.
            for j in 0..k {
                let red = &self.red[j];
                let pj = red.p;
                let a = p.0[j][c] + self.offset_res[j];
                let mut a = if a >= pj { a - pj } else { a };
                for (&yi, &(inv, inv_s)) in y.iter().zip(&self.inv[j]) {
                    // y_i < p_i < 2^64; reduce it mod p_j, then (a - y_i) p_i^-1.
                    let yi = mul_shoup(yi, 1, red.one_s, pj);
                    let d = if a >= yi { a - yi } else { a + pj - yi };
                    a = mul_shoup(d, inv, inv_s, pj);
                }
                y[j] = a;
            }
            let mut v = 0u128;
            for j in (0..k).rev() {
                v = v
                    .wrapping_mul(self.primes[j] as u128)
                    .wrapping_add(y[j] as u128);
            }
            v.wrapping_sub(offset)
        }));
    }

    /// Sets every coefficient of `p` to zero, keeping its allocation.
    pub fn clear(&self, p: &mut NttPoly) {
        for v in &mut p.0 {
            v.fill(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn schoolbook(a: &[i128], b: &[i128], modbits: u32) -> Vec<u128> {
        let n = a.len();
        let mut out = vec![0u128; n];
        for i in 0..n {
            for j in 0..n {
                let prod = (a[i] as u128).wrapping_mul(b[j] as u128);
                if i + j < n {
                    out[i + j] = out[i + j].wrapping_add(prod);
                } else {
                    out[i + j - n] = out[i + j - n].wrapping_sub(prod);
                }
            }
        }
        let mask = if modbits == 128 {
            u128::MAX
        } else {
            (1u128 << modbits) - 1
        };
        out.iter().map(|v| v & mask).collect()
    }

    #[test]
    fn division_free_reduction_matches_rem_euclid() {
        let ntt = CrtNtt::new(64, 200).unwrap();
        let mut s = 0x2545f4914f6cdd1du64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for red in &ntt.red {
            let p = red.p as i128;
            let edges = [
                0,
                1,
                -1,
                p - 1,
                p,
                p + 1,
                -p,
                -p - 1,
                (1i128 << 64) - 1,
                1i128 << 64,
                -(1i128 << 64),
                i128::MAX,
                i128::MIN,
                i128::MIN + 1,
            ];
            let random = (0..2000).map(|_| ((next() as u128) << 64 | next() as u128) as i128);
            for c in edges.into_iter().chain(random) {
                assert_eq!(red.signed(c) as i128, c.rem_euclid(p), "{c} mod {p}");
            }
            for _ in 0..2000 {
                let (a, b) = (next(), next() % red.p);
                assert_eq!(
                    mul_shoup(a, b, shoup(b, red.p), red.p),
                    mul_mod(a, b, red.p)
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        #[test]
        fn matches_schoolbook(log_q in 20u32..=120, wb in 2u32..=13, terms in 1usize..4, seed in any::<u64>()) {
            let n = 64;
            let mut s = seed;
            let mut next = || { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); s };
            let ntt = CrtNtt::new(n, bound_bits(log_q, wb, n as u64, terms as u64)).unwrap();
            let mut acc = ntt.zero();
            let mask = (1u128 << log_q) - 1;
            let mut expect = vec![0u128; n];
            let half = 1i128 << (log_q - 1);
            let wh = 1i128 << (wb - 1);
            for _ in 0..terms {
                let a: Vec<i128> = (0..n).map(|_| (((next() as u128) << 64 | next() as u128) & mask) as i128 - half).collect();
                let b: Vec<i128> = (0..n).map(|_| (next() as i128).rem_euclid(2 * wh) - wh).collect();
                ntt.mul_acc(&mut acc, &ntt.forward(&a), &ntt.forward(&b));
                for (e, v) in expect.iter_mut().zip(schoolbook(&a, &b, 128)) { *e = e.wrapping_add(v); }
            }
            let got: Vec<u128> = ntt.inverse(acc).iter().map(|v| v & mask).collect();
            let expect: Vec<u128> = expect.iter().map(|v| v & mask).collect();
            prop_assert_eq!(got, expect);
        }
    }
}

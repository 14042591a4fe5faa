//! Per-operation timings of this machine for the latency model (`hequant calibrate`):
//! the operations the verify mode itself runs, at N = 4096, one thread.

use super::he::{ClientKey, PlainModulus};
use super::ntt::{CrtNtt, bound_bits};
use crate::model::linear::NTT_PRIME_BITS;
use std::time::Instant;

/// Ring degree the compute profile is expressed at.
pub const CALIBRATION_N: usize = 4096;
/// Ciphertext modulus of the calibration (a typical quantized layer: u64 container).
pub const CALIBRATION_LOG_Q: u32 = 43;
pub const CALIBRATION_LOG_T: u32 = 26;

/// Median microseconds per operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    pub encrypt_us: f64,
    pub decrypt_us: f64,
    /// One polynomial to NTT form (all CRT primes).
    pub ntt_forward_us: f64,
    /// One pointwise multiply-accumulate of a polynomial pair (all CRT primes).
    pub mul_acc_us: f64,
    /// One polynomial back from NTT form, CRT included.
    pub ntt_inverse_us: f64,
    pub primes: usize,
    /// The same forward, multiply-accumulate and inverse over as many 62-bit primes,
    /// against the small primes above.
    pub wide_prime_factor: f64,
    pub reps: usize,
    /// Encryption and decryption with Cheetah's q = 2^109 in the u128 container (the
    /// compute profile has one figure each; these are for comparison).
    pub encrypt_wide_us: f64,
    pub decrypt_wide_us: f64,
}

fn median_us(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Measures each operation `reps` times and keeps the median.
pub fn calibrate(reps: usize) -> Calibration {
    let n = CALIBRATION_N;
    let mut key = ClientKey::<u64>::new(n);
    let t = PlainModulus::pow2(CALIBRATION_LOG_T).expect("a valid width");
    let t_wide = PlainModulus::pow2(37).expect("a valid width");
    let m: Vec<u128> = (0..n as u128)
        .map(|i| i * 7919 % (1 << CALIBRATION_LOG_T))
        .collect();
    let mut last = None;
    let encrypt_us = median_us(reps, || {
        last = Some(key.encrypt(&m, &t, CALIBRATION_LOG_Q, 3.2));
    });
    let c1: Vec<u128> = last.map(|q| q.body).unwrap_or_else(|| vec![0; n]);
    let c0: Vec<(usize, u128)> = (0..n).map(|i| (i, c1[i] >> 20)).collect();
    let decrypt_us = median_us(reps, || {
        std::hint::black_box(key.decrypt(
            &c1,
            CALIBRATION_LOG_Q,
            &c0,
            CALIBRATION_LOG_T + 1,
            &t,
            CALIBRATION_LOG_Q,
        ));
    });
    let ntt = CrtNtt::new(n, bound_bits(CALIBRATION_LOG_Q, 8, n as u64, 64))
        .expect("NTT primes exist at N = 4096");
    let a: Vec<i128> = c1.iter().map(|&v| v as i128 - (1i128 << 42)).collect();
    let w: Vec<i128> = (0..n as i128).map(|i| (i * 31) % 255 - 127).collect();
    let mut fa = ntt.zero();
    let ntt_forward_us = median_us(reps, || fa = ntt.forward(&a));
    let fw = ntt.forward(&w);
    let mut acc = ntt.zero();
    let mul_acc_us = median_us(reps * 10, || ntt.mul_acc(&mut acc, &fa, &fw));
    let ntt_inverse_us = median_us(reps, || {
        std::hint::black_box(ntt.inverse(acc.clone()));
    });
    let bound = bound_bits(CALIBRATION_LOG_Q, 8, n as u64, 64);
    let wide = CrtNtt::with_primes(n, ntt.primes(), NTT_PRIME_BITS, bound)
        .expect("62-bit NTT primes exist at N = 4096");
    let (mut wa, wfw) = (wide.zero(), wide.forward(&w));
    let wide_fwd = median_us(reps, || wa = wide.forward(&a));
    let mut wacc = wide.zero();
    let wide_mul = median_us(reps * 10, || wide.mul_acc(&mut wacc, &wa, &wfw));
    let wide_inv = median_us(reps, || {
        std::hint::black_box(wide.inverse(wacc.clone()));
    });
    let wide_prime_factor =
        (wide_fwd + wide_mul + wide_inv) / (ntt_forward_us + mul_acc_us + ntt_inverse_us);
    let mut wide = ClientKey::<u128>::new(n);
    let mut last_wide = None;
    let encrypt_wide_us = median_us(reps, || {
        last_wide = Some(wide.encrypt(&m, &t_wide, 109, 3.2));
    });
    let c1w: Vec<u128> = last_wide.map(|q| q.body).unwrap_or_else(|| vec![0; n]);
    let c0w: Vec<(usize, u128)> = (0..n).map(|i| (i, c1w[i] >> 71)).collect();
    let decrypt_wide_us = median_us(reps, || {
        std::hint::black_box(wide.decrypt(&c1w, 109, &c0w, 38, &t_wide, 109));
    });
    Calibration {
        encrypt_wide_us,
        decrypt_wide_us,
        encrypt_us,
        decrypt_us,
        ntt_forward_us,
        mul_acc_us,
        ntt_inverse_us,
        primes: ntt.primes(),
        wide_prime_factor,
        reps,
    }
}

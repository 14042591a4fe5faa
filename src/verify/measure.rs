//! Per-operation timings of this machine for the latency model (`hequant calibrate`):
//! the operations the verify mode itself runs, at N = 4096, one thread.

use super::bitpack::{BitReader, BitWriter};
use super::he::{ClientKey, PlainModulus, Query, decompress};
use super::ntt::{CrtNtt, bound_bits};
use crate::model::EvalOptions;
use crate::model::linear::NTT_PRIME_BITS;
use crate::protocol::{CostModel, Protocol};
use std::time::Instant;

/// Ring degree the compute profile is expressed at.
pub const CALIBRATION_N: usize = 4096;
/// Ciphertext modulus of the calibration (a typical quantized layer: u64 container).
pub const CALIBRATION_LOG_Q: u32 = 43;
pub const CALIBRATION_LOG_T: u32 = 26;

/// Median microseconds per operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    pub encrypt_us: f64,
    pub decrypt_us: f64,
    /// One polynomial to NTT form (all CRT primes).
    pub ntt_forward_us: f64,
    /// One pointwise multiply-accumulate of a polynomial pair (all CRT primes), as the
    /// products of a real layer run ([`server_costs`]; one pair in cache when those fail).
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
    /// The server's reading of a query off the wire and expansion of its mask from the
    /// seed, u64 and u128 container.
    pub decompress_us: f64,
    pub decompress_wide_us: f64,
    /// The server's other online work per query and per response ([`server_costs`]).
    pub server_query_us: f64,
    pub server_response_us: f64,
    /// How much each operation's runs spread (a busy machine spreads them).
    pub spreads: Spreads,
}

/// The spread of each timed operation: (name, 90th over 10th percentile of its runs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spreads(pub Vec<(&'static str, f64)>);

impl Spreads {
    /// Median microseconds of `reps` runs of `f`, its spread recorded under `name`.
    /// One run first, untimed: one-time work (a key's NTT form, a plan) is not a spread.
    fn median_us(&mut self, name: &'static str, reps: usize, mut f: impl FnMut()) -> f64 {
        f();
        let mut v: Vec<f64> = (0..reps.max(1))
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        v.sort_by(f64::total_cmp);
        let (lo, hi) = (v[v.len() / 10], v[(v.len() * 9) / 10]);
        self.0.push((name, if lo > 0.0 { hi / lo } else { 1.0 }));
        v[v.len() / 2]
    }

    /// The widest spread, if any operation spread more than `limit` times.
    pub fn widest_above(&self, limit: f64) -> Option<(&'static str, f64)> {
        self.0
            .iter()
            .copied()
            .filter(|&(_, r)| r > limit)
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// The verify plan of a network of one C x HW x HW -> M convolution with a k x k kernel
/// (stride 1, same padding, w8a8) under `protocol` with the built-in cost model.
pub fn single_conv_plan(
    c: u64,
    hw: u64,
    m: u64,
    k: u64,
    protocol: Protocol,
) -> Result<super::LayerPlan, String> {
    let text = format!(
        "format = \"hequant-network\"\nversion = 1\nname = \"conv\"\ndescription = \"\"\nsource = \"\"\n\
         input = [{c}, {hw}, {hw}]\ndefault_bits = {{ w = 8, a = 8 }}\n\
         [[layer]]\nname = \"conv\"\nkind = \"conv2d\"\nout_channels = {m}\nkernel = {k}\nstride = 1\npadding = {}\n",
        k / 2
    );
    let net = crate::spec::network::from_str("conv.toml", &text).map_err(|e| e.to_string())?;
    let cm = CostModel::builtin().map_err(|e| e.to_string())?;
    let o = EvalOptions::new(protocol, &cm);
    let report = crate::model::evaluate(&net, &o, &cm).map_err(|e| e.to_string())?;
    let plan =
        super::plan(&net, &report, protocol, &cm, &o.link, None).map_err(|e| e.to_string())?;
    plan.layers
        .into_iter()
        .next()
        .ok_or_else(|| "the convolution is not run by the verify mode".into())
}

/// Median seconds of a layer's two online phases (queries, then responses) over `runs`.
fn phases(lp: &super::LayerPlan, runs: usize) -> (f64, f64) {
    use super::server::{LayerSetup, arbitrary_queries, online_phases};
    let data = super::server_data(1, lp, super::DataMode::Random);
    let setup = LayerSetup::new(lp, &data, 0..lp.layout.og, true);
    let q = arbitrary_queries(lp, 5);
    let (mut qs, mut rs): (Vec<f64>, Vec<f64>) = (0..runs.max(1))
        .map(|_| online_phases(lp, &data, &setup, q.clone()))
        .unzip();
    qs.sort_by(f64::total_cmp);
    rs.sort_by(f64::total_cmp);
    (qs[qs.len() / 2], rs[rs.len() / 2])
}

/// The server's online work as its own code runs it, on two layers at Cheetah's parameters
/// (16x30x30 -> 32 and 56x56x64 -> 64, both 3x3: 128 and 4096 products for 32 and 64
/// responses), one thread, N = 4096: per query its time less the two forward NTTs priced
/// from `fwd_us`; the products and the per-response work (inverse NTTs included) solved from
/// the two layers' response phases, so that the products are priced as they stream through
/// a real layer's weights rather than from one pair in cache. Returns (per query beyond the
/// NTTs, per multiply-accumulate at `primes` primes, per response beyond its inverse NTTs),
/// in microseconds; None when the layers cannot be planned.
fn server_costs(reps: usize, fwd_us: f64, inv_us: f64, primes: usize) -> Option<(f64, f64, f64)> {
    let small = single_conv_plan(16, 30, 32, 3, Protocol::Cheetah).ok()?;
    let large = single_conv_plan(64, 56, 64, 3, Protocol::Cheetah).ok()?;
    let runs = reps.clamp(1, 7);
    let (qa, ra) = phases(&small, runs);
    let (_, rb) = phases(&large, runs);
    let (ca, cb) = (&small.cost, &large.cost);
    let f = ca.ntt_primes as f64 / primes.max(1) as f64;
    // ra = 2 Pa x + Ra y, rb = 2 Pb x + Rb y (x per multiply-accumulate, y per response).
    let (pa, pb) = (2.0 * ca.products as f64, 2.0 * cb.products as f64);
    let (na, nb) = (ca.ct_out as f64, cb.ct_out as f64);
    let det = pa * nb - pb * na;
    if det.abs() < 1e-9 {
        return None;
    }
    let x = (ra * nb - rb * na) / det * 1e6;
    let y = (pa * rb - pb * ra) / det * 1e6;
    let per_query = qa * 1e6 / ca.ct_in as f64 - 2.0 * fwd_us * f;
    Some((
        per_query.max(0.0),
        (x / f).max(0.0),
        (y - 2.0 * inv_us * f).max(0.0),
    ))
}

/// A query's body bit-packed at log q bits, as it travels.
fn wire(q: &Query, log_q: u32) -> Vec<u8> {
    let mut w = BitWriter::with_capacity_bits(q.body.len() as u64 * log_q as u64);
    for &v in &q.body {
        w.put(v, log_q);
    }
    w.finish()
}

/// What the server does with a query's bytes: read the body's coefficients off the wire,
/// then expand the mask from the seed.
fn parse_and_decompress<S: super::he::Word>(
    bytes: &[u8],
    n: usize,
    seed: u128,
    log_q: u32,
) -> (Vec<u128>, Vec<u128>) {
    let mut r = BitReader::new(bytes);
    let body = (0..n).map(|_| r.get(log_q).unwrap_or(0)).collect();
    decompress::<S>(&Query { body, seed }, log_q)
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
    let mut sp = Spreads::default();
    let mut last = None;
    let encrypt_us = sp.median_us("encrypt_us", reps, || {
        last = Some(key.encrypt(&m, &t, CALIBRATION_LOG_Q, 3.2));
    });
    let decompress_us = match &last {
        Some(q) => {
            let bytes = wire(q, CALIBRATION_LOG_Q);
            sp.median_us("decompress_us", reps, || {
                std::hint::black_box(parse_and_decompress::<u64>(
                    &bytes,
                    n,
                    q.seed,
                    CALIBRATION_LOG_Q,
                ));
            })
        }
        None => 0.0,
    };
    let c1: Vec<u128> = last.map(|q| q.body).unwrap_or_else(|| vec![0; n]);
    let c0: Vec<(usize, u128)> = (0..n).map(|i| (i, c1[i] >> 20)).collect();
    let decrypt_us = sp.median_us("decrypt_us", reps, || {
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
    let ntt_forward_us = sp.median_us("ntt_forward_us", reps, || fa = ntt.forward(&a));
    let fw = ntt.forward(&w);
    let mut acc = ntt.zero();
    let mul_acc_us = sp.median_us("mul_acc_us", reps * 10, || ntt.mul_acc(&mut acc, &fa, &fw));
    let ntt_inverse_us = sp.median_us("ntt_inverse_us", reps, || {
        std::hint::black_box(ntt.inverse(acc.clone()));
    });
    let bound = bound_bits(CALIBRATION_LOG_Q, 8, n as u64, 64);
    let wide = CrtNtt::with_primes(n, ntt.primes(), NTT_PRIME_BITS, bound)
        .expect("62-bit NTT primes exist at N = 4096");
    let (mut wa, wfw) = (wide.zero(), wide.forward(&w));
    let wide_fwd = sp.median_us("wide_fwd", reps, || wa = wide.forward(&a));
    let mut wacc = wide.zero();
    let wide_mul = sp.median_us("wide_mul", reps * 10, || wide.mul_acc(&mut wacc, &wa, &wfw));
    let wide_inv = sp.median_us("wide_inv", reps, || {
        std::hint::black_box(wide.inverse(wacc.clone()));
    });
    let wide_prime_factor =
        (wide_fwd + wide_mul + wide_inv) / (ntt_forward_us + mul_acc_us + ntt_inverse_us);
    let mut wide = ClientKey::<u128>::new(n);
    let mut last_wide = None;
    let encrypt_wide_us = sp.median_us("encrypt_wide_us", reps, || {
        last_wide = Some(wide.encrypt(&m, &t_wide, 109, 3.2));
    });
    let decompress_wide_us = match &last_wide {
        Some(q) => {
            let bytes = wire(q, 109);
            sp.median_us("decompress_wide_us", reps, || {
                std::hint::black_box(parse_and_decompress::<u128>(&bytes, n, q.seed, 109));
            })
        }
        None => 0.0,
    };
    let c1w: Vec<u128> = last_wide.map(|q| q.body).unwrap_or_else(|| vec![0; n]);
    let c0w: Vec<(usize, u128)> = (0..n).map(|i| (i, c1w[i] >> 71)).collect();
    let decrypt_wide_us = sp.median_us("decrypt_wide_us", reps, || {
        std::hint::black_box(wide.decrypt(&c1w, 109, &c0w, 38, &t_wide, 109));
    });
    // The products as they stream through a layer's weights, when the layers run.
    let (server_query_us, mul_acc_us, server_response_us) =
        server_costs(reps, ntt_forward_us, ntt_inverse_us, ntt.primes())
            .unwrap_or((0.0, mul_acc_us, 0.0));
    Calibration {
        spreads: sp,
        server_query_us,
        server_response_us,
        encrypt_wide_us,
        decrypt_wide_us,
        encrypt_us,
        decrypt_us,
        ntt_forward_us,
        mul_acc_us,
        ntt_inverse_us,
        primes: ntt.primes(),
        wide_prime_factor,
        decompress_us,
        decompress_wide_us,
        reps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_name_the_widest_operation_above_the_limit() {
        let mut sp = Spreads::default();
        // Runs of 1, 2, ..., 20 ms in turn would spread 19 / 2 = 9.5x; a constant one 1x.
        let mut k = 0u64;
        sp.median_us("steady", 21, || std::hint::black_box(()));
        sp.median_us("growing", 21, || {
            k += 1;
            std::thread::sleep(std::time::Duration::from_micros(200 * k));
        });
        let (name, r) = sp.widest_above(1.5).expect("the growing runs spread");
        assert_eq!(name, "growing");
        assert!(r > 3.0, "{r}");
        assert_eq!(sp.0.len(), 2);
        assert!(sp.widest_above(1e9).is_none());
    }
}

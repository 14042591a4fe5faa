//! Server-side HomConv of the verify mode at Cheetah's parameters (N = 4096, q = 2^109,
//! t = 2^37): NTT-form multiply-accumulate over CRT primes, masking and truncation, for a
//! few representative layers, sequential and parallel across output channels (rayon).
//! The weight setup (offline: the weights into NTT form, once per mapping) is timed apart from
//! the online work (the queries into NTT form, the products, the inverse transforms, masking
//! and truncation). The baseline in the same run is one ciphertext-by-plaintext NTT
//! multiply-accumulate; the summary prints the online time beside OpenCheetah's whole
//! HomConv for the same layers on this machine kind, and the share of it that the layer's
//! multiply-accumulates take at the baseline's speed.

use criterion::Criterion;
use hequant::protocol::Protocol;
use hequant::verify::{
    self,
    ntt::CrtNtt,
    server::{LayerSetup, arbitrary_queries, respond},
};
use std::hint::black_box;
use std::time::Instant;

/// OpenCheetah's whole HomConv (both parties, 2 threads, weight encoding included) for the
/// two layers, measured on this project's machine kind (docs/measured/README.md).
const OPENCHEETAH_S: [f64; 2] = [0.35, 1.93];

fn median_s(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[runs / 2]
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    // Baseline: one multiply-accumulate of a polynomial pair in NTT form (3 primes at 109 bits).
    let ntt = CrtNtt::new(4096, verify::ntt::bound_bits(109, 13, 4096, 64)).expect("primes");
    let a = ntt.forward(&(0..4096).map(|i| i as i128 * 977).collect::<Vec<_>>());
    let b = ntt.forward(&(0..4096).map(|i| i as i128 % 100 - 50).collect::<Vec<_>>());
    let mut acc = ntt.zero();
    let mut mul_acc = || ntt.mul_acc(&mut acc, black_box(&a), black_box(&b));
    {
        let mut g = c.benchmark_group("homconv_cheetah");
        g.sample_size(10);
        g.bench_function("baseline: one NTT multiply-accumulate", |bch| {
            bch.iter(&mut mul_acc)
        });
        g.finish();
    }
    let baseline_s = median_s(2001, &mut mul_acc);
    let mut summary = Vec::new();
    for ((name, c_in, hw, m, k), opencheetah_s) in [
        ("56x56x64->64 3x3", 64, 56, 64, 3),
        ("13x13x512->1000 1x1", 512, 13, 1000, 1),
    ]
    .into_iter()
    .zip(OPENCHEETAH_S)
    {
        let lp = verify::measure::single_conv_plan(c_in, hw, m, k, Protocol::Cheetah)
            .expect("the layer plans");
        let data = verify::server_data(1, &lp, verify::DataMode::Random);
        let q = arbitrary_queries(&lp, 0x9e3779b97f4a7c15);
        let lay = &lp.layout;
        let what = format!(
            "{name} ({} queries, {} responses)",
            lp.params.ct_in, lp.params.ct_out
        );
        let setup = LayerSetup::new(&lp, &data, 0..lay.og, true);
        let mut g = c.benchmark_group("homconv_cheetah");
        g.sample_size(10);
        for parallel in [false, true] {
            let threads = if parallel { "rayon" } else { "1 thread" };
            g.bench_function(format!("{what}, online, {threads}"), |bch| {
                bch.iter(|| {
                    black_box(respond(&lp, &data, &setup, q.clone(), parallel).expect("setup"))
                })
            });
        }
        g.bench_function(format!("{what}, offline weight setup, rayon"), |bch| {
            bch.iter(|| black_box(LayerSetup::new(&lp, &data, 0..lay.og, true)))
        });
        g.finish();
        let online_s = median_s(5, || {
            black_box(respond(&lp, &data, &setup, q.clone(), true).expect("setup"));
        });
        let offline_s = median_s(3, || {
            black_box(LayerSetup::new(&lp, &data, 0..lay.og, true));
        });
        // The products the layer needs: every (output group, channel group, tile) pair of
        // weight and query polynomials, mask and body, one multiply-accumulate each.
        let w = lp.packer.pack_weights(&data.weights);
        let used = (0..lay.og)
            .map(|og| {
                (0..lay.cb)
                    .filter(|&cb| lay.weight_poly(&w, og, cb).is_some())
                    .count() as u64
            })
            .sum::<u64>();
        let products = 2 * used * lay.tiles();
        let online_1_s = median_s(5, || {
            black_box(respond(&lp, &data, &setup, q.clone(), false).expect("setup"));
        });
        summary.push(format!(
            "{what}: online {online_s:.3} s on {} threads ({online_1_s:.3} s on one), medians of 5 = \
             {:.2}x OpenCheetah's whole HomConv ({opencheetah_s} s); offline weight setup \
             {offline_s:.3} s; {products} polynomial multiply-accumulates = {:.3} s at the \
             baseline's {:.2} us each, {:.0}% of the one-thread online time",
            rayon::current_num_threads(),
            online_s / opencheetah_s,
            products as f64 * baseline_s,
            baseline_s * 1e6,
            100.0 * products as f64 * baseline_s / online_1_s,
        ));
    }
    c.final_summary();
    for line in summary {
        println!("{line}");
    }
}

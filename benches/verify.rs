//! Server-side HomConv of the verify mode at Cheetah's parameters (N = 4096, q = 2^109,
//! t = 2^37): NTT-form multiply-accumulate over CRT primes, masking and truncation, for a
//! few representative layers, sequential and parallel across output channels (rayon).
//! The baseline in the same run is one ciphertext-by-plaintext NTT multiply-accumulate;
//! compare per-layer times with it (and with OpenCheetah's HomConv on the same machine).

use criterion::{Criterion, criterion_group, criterion_main};
use hequant::model::{self, EvalOptions};
use hequant::protocol::{CostModel, Protocol};
use hequant::verify::{self, ntt::CrtNtt, server::compute_layer};
use std::hint::black_box;

fn one_conv(name: &str, c: u64, hw: u64, m: u64, k: u64) -> hequant::workload::Network {
    let text = format!(
        "format = \"hequant-network\"\nversion = 1\nname = \"{name}\"\ndescription = \"\"\nsource = \"\"\n\
         input = [{c}, {hw}, {hw}]\ndefault_bits = {{ w = 8, a = 8 }}\n\
         [[layer]]\nname = \"{name}\"\nkind = \"conv2d\"\nout_channels = {m}\nkernel = {k}\nstride = 1\npadding = {}\n",
        k / 2
    );
    hequant::spec::network::from_str("bench.toml", &text).expect("a valid network")
}

fn layer_plan(net: &hequant::workload::Network) -> verify::LayerPlan {
    let cm = CostModel::builtin().expect("built-in cost model");
    let o = EvalOptions::new(Protocol::Cheetah, &cm);
    let report = model::evaluate(net, &o, &cm).expect("the model evaluates");
    let plan = verify::plan(net, &report, Protocol::Cheetah, &cm, &o.link, None).expect("plan");
    plan.layers.into_iter().next().expect("one layer")
}

/// Random query polynomials (mask, body) mod 2^log_q: the cost does not depend on values.
fn queries(lp: &verify::LayerPlan) -> Vec<(Vec<u128>, Vec<u128>)> {
    let mut s = 0x9e3779b97f4a7c15u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s as u128) << 64 | s.rotate_left(17) as u128) & ((1u128 << lp.params.log_q) - 1)
    };
    let n = lp.params.n as usize;
    (0..lp.params.ct_in)
        .map(|_| {
            (
                (0..n).map(|_| next()).collect(),
                (0..n).map(|_| next()).collect(),
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("homconv_cheetah");
    g.sample_size(10);
    // Baseline: one multiply-accumulate of a polynomial pair in NTT form (3 primes at 109 bits).
    let ntt = CrtNtt::new(4096, verify::ntt::bound_bits(109, 13, 4096, 64)).expect("primes");
    let a = ntt.forward(&(0..4096).map(|i| i as i128 * 977).collect::<Vec<_>>());
    let b = ntt.forward(&(0..4096).map(|i| i as i128 % 100 - 50).collect::<Vec<_>>());
    let mut acc = ntt.zero();
    g.bench_function("baseline: one NTT multiply-accumulate", |bch| {
        bch.iter(|| ntt.mul_acc(&mut acc, black_box(&a), black_box(&b)))
    });
    for (name, c_in, hw, m, k) in [
        ("56x56x64->64 3x3", 64, 56, 64, 3),
        ("13x13x512->1000 1x1", 512, 13, 1000, 1),
    ] {
        let net = one_conv("l", c_in, hw, m, k);
        let lp = layer_plan(&net);
        let data = verify::server_data(1, &lp, verify::DataMode::Random);
        let q = queries(&lp);
        for parallel in [false, true] {
            let label = format!(
                "{name} ({} queries, {} responses, {})",
                lp.params.ct_in,
                lp.params.ct_out,
                if parallel { "rayon" } else { "1 thread" }
            );
            g.bench_function(label, |bch| {
                bch.iter(|| black_box(compute_layer(&lp, &data, q.clone(), parallel)))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

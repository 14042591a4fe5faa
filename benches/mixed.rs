//! Mixed-precision search speed on ResNet-50 (ImageNet) and DenseNet-121 (Cheetah's).
//!
//! `cargo bench --bench mixed`. Criterion times the whole search (`mapper::mixed::mixed`,
//! widths 2..8, a communication budget) on each network; at the end each search's median is
//! printed as a ratio to the median of one full evaluation of the same network
//! (`model::evaluate`, every layer at w8a8) measured in the same run, the two taking turns.
//! The cost tables of one round hold one entry per weighted layer and width pair: priced
//! with one full evaluation each, as the search once did, a round alone took that many
//! evaluations.

use criterion::Criterion;
use hequant::mapper::mixed::{Budget, Metric, mixed, weighted_layers};
use hequant::mapper::sweep::BitRange;
use hequant::model::{BitsPolicy, EvalOptions, evaluate, parse_bits};
use hequant::protocol::{CostModel, Protocol};
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

const SET: BitRange = BitRange { lo: 2, hi: 8 };

/// Medians of `runs` timings of each function, the functions taking turns run by run so
/// that load from other processes falls on all alike.
fn medians(runs: usize, fs: &[&dyn Fn()]) -> Vec<f64> {
    let mut t = vec![Vec::with_capacity(runs); fs.len()];
    for _ in 0..runs {
        for (k, f) in fs.iter().enumerate() {
            let s = Instant::now();
            f();
            t[k].push(s.elapsed().as_secs_f64());
        }
    }
    t.into_iter()
        .map(|mut v| {
            v.sort_by(f64::total_cmp);
            v[runs / 2]
        })
        .collect()
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let cm = CostModel::builtin().expect("cost model");
    let o = EvalOptions::new(Protocol::Hequant, &cm);
    let mut w8 = o.clone();
    w8.bits = BitsPolicy {
        uniform: Some(parse_bits("w8a8").expect("bits")),
        all_layers: true,
    };
    let cases = [
        ("resnet50-imagenet", 500.0),
        ("densenet121-cheetah", 1200.0),
    ];
    let nets: Vec<_> = cases
        .iter()
        .map(|(name, mb)| {
            let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("networks/{name}.toml"));
            (
                *name,
                Budget::Cost(mb * 1e6),
                hequant::spec::network::load(&p).expect("network"),
            )
        })
        .collect();
    {
        let mut g = c.benchmark_group("mixed");
        g.sample_size(10);
        for (name, budget, net) in &nets {
            g.bench_function(*name, |b| {
                b.iter(|| {
                    black_box(
                        mixed(net, &o, &cm, SET, Metric::Comm, *budget, None, 8).expect("mixed"),
                    )
                })
            });
        }
        g.finish();
    }
    c.final_summary();
    for (name, budget, net) in &nets {
        let m = mixed(net, &o, &cm, SET, Metric::Comm, *budget, None, 8).expect("mixed");
        let search = || {
            black_box(mixed(net, &o, &cm, SET, Metric::Comm, *budget, None, 8).expect("mixed"));
        };
        let one = || {
            black_box(evaluate(net, &w8, &cm).expect("evaluate"));
        };
        let t = medians(7, &[&search, &one]);
        let entries = weighted_layers(net).len() * SET.iter().count().pow(2);
        println!(
            "mixed {name} (budget {}, {} round(s), front of {} points): {:.1} ms = {:.1} full evaluations ({:.1} ms each; medians of 7 interleaved runs); one round's tables hold {entries} entries",
            m.metric.show(match budget {
                Budget::Cost(b) | Budget::Proxy(b) => *b,
            }),
            m.rounds,
            m.front_size,
            t[0] * 1e3,
            t[0] / t[1],
            t[1] * 1e3,
        );
    }
}

//! Search and sweep speed on ResNet-50 (ImageNet).
//!
//! `cargo bench --bench search`. Criterion reports the time and the candidates per second
//! of the mapping search (one bit width, every layer, ring degrees {2048, 4096, 8192}) on
//! one and on two threads, and the time of a sweep over bits 2..16 and five protocols. At
//! the end the 1 -> 2 thread speed-up is printed as a ratio of medians measured in this run.

use criterion::{Criterion, Throughput};
use hequant::mapper::network::search_network;
use hequant::mapper::sweep::{BitRange, sweep};
use hequant::model::{BitsPolicy, EvalOptions, parse_bits, space_options};
use hequant::protocol::{CostModel, Protocol};
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

fn setup() -> (CostModel, hequant::workload::Network, EvalOptions) {
    let cm = CostModel::builtin().expect("cost model");
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("networks/resnet50-imagenet.toml");
    let net = hequant::spec::network::load(&p).expect("network");
    let mut o = EvalOptions::new(Protocol::Hequant, &cm);
    o.bits = BitsPolicy {
        uniform: Some(parse_bits("w4a4").expect("bits")),
        all_layers: true,
    };
    (cm, net, o)
}

fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .expect("thread pool")
}

/// Medians of `runs` timings on each pool, the pools taking turns run by run so that
/// load from other processes falls on both alike.
fn medians(pools: &[&rayon::ThreadPool], runs: usize, f: &(dyn Fn() + Sync)) -> Vec<f64> {
    let mut t = vec![Vec::with_capacity(runs); pools.len()];
    for _ in 0..runs {
        for (k, p) in pools.iter().enumerate() {
            let s = Instant::now();
            p.install(f);
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
    let (cm, net, o) = setup();
    let rings: Vec<u32> = space_options(Protocol::Hequant, &cm)
        .ring_degrees
        .iter()
        .map(|n| n.get())
        .collect();
    let candidates = search_network(&net, &o, &cm, &|| {})
        .expect("search")
        .candidates;
    println!(
        "ResNet-50 w4a4 on every layer, ring degrees {rings:?}: {candidates} candidates per search"
    );
    let search = || {
        black_box(search_network(&net, &o, &cm, &|| {}).expect("search"));
    };
    {
        let mut g = c.benchmark_group("search-resnet50");
        g.throughput(Throughput::Elements(candidates));
        for threads in [1, 2] {
            let p = pool(threads);
            g.bench_function(format!("{threads}-thread"), |b| {
                b.iter(|| p.install(search))
            });
        }
        g.finish();
    }
    let protocols = [
        Protocol::Cheetah,
        Protocol::Cryptflow2,
        Protocol::HequantNaive,
        Protocol::HequantPacked,
        Protocol::Hequant,
    ];
    let range = BitRange { lo: 2, hi: 16 };
    let sweep_once = || {
        black_box(sweep(&net, &o, &cm, &protocols, range, true).expect("sweep"));
    };
    {
        let mut g = c.benchmark_group("sweep-resnet50");
        g.sample_size(10);
        g.throughput(Throughput::Elements(protocols.len() as u64 * 15));
        g.bench_function("bits-2..16-x-5-protocols", |b| b.iter(sweep_once));
        g.finish();
    }
    c.final_summary();
    let (one, two) = (pool(1), pool(2));
    let m = medians(&[&one, &two], 41, &search);
    let (t1, t2) = (m[0], m[1]);
    println!(
        "search speed-up 1 -> 2 threads (medians of 41 interleaved runs each): {:.2}x ({:.2} ms -> {:.2} ms; {:.2e} -> {:.2e} candidates/s)",
        t1 / t2,
        t1 * 1e3,
        t2 * 1e3,
        candidates as f64 / t1,
        candidates as f64 / t2
    );
    // Every slot scheme (paper included) and a batch of 4 against the default search (the
    // sound schemes, batch 1), both on two threads, in this run.
    let mut all = o.clone();
    all.slots = hequant::mapping::SlotScheme::ALL.to_vec();
    all.batch = 4;
    let search_all = || {
        black_box(search_network(&net, &all, &cm, &|| {}).expect("search"));
    };
    let (d, a) = (
        medians(&[&two], 21, &search)[0],
        medians(&[&two], 21, &search_all)[0],
    );
    println!(
        "search with every slot scheme and batch 4 against the default search, 2 threads (medians of 21 runs): {:.2}x ({:.2} ms against {:.2} ms)",
        a / d,
        a * 1e3,
        d * 1e3
    );
    let m = medians(&[&one, &two], 7, &sweep_once);
    let (s1, s2) = (m[0], m[1]);
    println!(
        "sweep speed-up 1 -> 2 threads (medians of 7 interleaved runs each): {:.2}x ({:.1} ms -> {:.1} ms)",
        s1 / s2,
        s1 * 1e3,
        s2 * 1e3
    );
}

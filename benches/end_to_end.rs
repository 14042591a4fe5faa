//! `verify --end-to-end` of ResNet-18 CIFAR-100 under `hequant` at w4a4: secure inference of
//! the whole network as two parties (threads over loopback TCP), HE for the linear layers
//! and OT for the non-linear ones, shares carried from layer to layer. The baseline in the
//! same run is the linear layers alone (`verify --part linear`, the same HE work without the
//! OT steps and without carrying shares); the end-to-end row is a ratio to it. The issue's
//! target: the whole run under 10 minutes on a 2-core machine.

use criterion::{Criterion, criterion_group, criterion_main};
use hequant::model::{self, BitsPolicy, EvalOptions, parse_bits};
use hequant::protocol::{CostModel, Protocol};
use hequant::verify::{self, RunOptions, e2e};
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let path = format!(
        "{}/networks/resnet18-cifar100.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let net = hequant::spec::network::load(std::path::Path::new(&path)).expect("network");
    let cm = CostModel::builtin().expect("cost model");
    let mut o = EvalOptions::new(Protocol::Hequant, &cm);
    o.bits = BitsPolicy {
        uniform: Some(parse_bits("w4a4").expect("bits")),
        all_layers: false,
    };
    let report = model::evaluate(&net, &o, &cm).expect("model");
    let lin = verify::plan(&net, &report, Protocol::Hequant, &cm, &o.link, None).expect("plan");
    let e = e2e::plan(&net, &report, lin.clone(), &cm, false).expect("end-to-end plan");
    let mut g = c.benchmark_group("resnet18_cifar100_w4a4");
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.bench_function("baseline: linear layers only (HE)", |b| {
        b.iter(|| {
            let r = verify::run_local(&lin, &RunOptions::default()).expect("linear run");
            assert!(r.ok);
        })
    });
    g.bench_function("end to end (HE + OT, shares carried)", |b| {
        b.iter(|| {
            let r = e2e::run_local(&e, &o.link, &cm, Duration::from_secs(120), None, &|_| {})
                .expect("end-to-end run");
            assert!(r.ok);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

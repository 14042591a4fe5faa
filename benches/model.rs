//! Evaluating one full mapping of ResNet-50 (issue 2: well under a millisecond).
//! Reported against a baseline measured in the same run: one pass over the network's
//! layers summing their MACs.

use criterion::{Criterion, criterion_group, criterion_main};
use hequant::model::{EvalOptions, evaluate, parse_bits};
use hequant::protocol::{CostModel, Protocol};
use hequant::spec::mapping::MappingFile;
use std::hint::black_box;
use std::path::Path;

fn bench(c: &mut Criterion) {
    let cm = CostModel::builtin().unwrap();
    let net = hequant::spec::network::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("networks/resnet50-imagenet.toml"),
    )
    .unwrap();
    let mut g = c.benchmark_group("resnet50");
    g.bench_function("baseline: sum MACs over layers", |b| {
        b.iter(|| black_box(&net).layers.iter().map(|l| l.macs()).sum::<u64>())
    });
    let cheetah = EvalOptions::new(Protocol::Cheetah, &cm);
    g.bench_function("evaluate cheetah mapping", |b| {
        b.iter(|| evaluate(black_box(&net), &cheetah, &cm).unwrap())
    });
    // A full HEQuant mapping (the search's choice, saved and loaded back): evaluation only.
    let mut o = EvalOptions::new(Protocol::Hequant, &cm);
    o.bits.uniform = Some(parse_bits("w4a4").unwrap());
    let searched = evaluate(&net, &o, &cm).unwrap();
    o.overrides = MappingFile::from_report("resnet50-imagenet", &searched).overrides();
    g.bench_function("evaluate hequant mapping", |b| {
        b.iter(|| evaluate(black_box(&net), &o, &cm).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

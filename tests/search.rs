//! The network search: determinism across thread counts, equality with a brute-force
//! enumeration written here, saved mappings, sweeps and bad input on the command line.

use hequant::mapper::network::{NetworkSearch, search_network};
use hequant::mapper::sweep::{BitRange, sweep};
use hequant::mapper::{Objective, layer_candidates, pareto};
use hequant::mapping::LayerChoice;
use hequant::model::linear::evaluate_coeff;
use hequant::model::{self, BitsPolicy, EvalOptions, mapping_latency, parse_bits};
use hequant::protocol::{CostModel, Protocol};
use hequant::workload::Network;
use std::path::Path;

fn net(name: &str) -> Network {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("networks/{name}.toml"));
    hequant::spec::network::load(&p).expect("shipped network loads")
}

fn options(cm: &CostModel, bits: &str, objective: Objective) -> EvalOptions {
    let mut o = EvalOptions::new(Protocol::Hequant, cm);
    o.link = cm.link("wan").expect("wan");
    o.link_name = "wan".into();
    o.bits = BitsPolicy {
        uniform: Some(parse_bits(bits).expect("bits")),
        all_layers: false,
    };
    o.objective = objective;
    o
}

fn search(n: &Network, o: &EvalOptions, cm: &CostModel) -> NetworkSearch {
    search_network(n, o, cm, &|| {}).expect("search succeeds")
}

/// The parts of a search that are its answer (not its timings).
fn answer(s: &NetworkSearch) -> Vec<String> {
    let mut v: Vec<String> = s
        .layers
        .iter()
        .map(|l| format!("{} {:?} {:?}", l.layer, l.search.best, l.search.infeasible))
        .collect();
    v.push(format!("{:?}", s.report));
    v
}

#[test]
fn same_answer_on_one_thread_and_many() {
    let cm = CostModel::builtin().expect("cost model");
    let n = net("resnet18-cifar100");
    for objective in [
        Objective::Comm,
        Objective::Latency,
        Objective::CommThenLatency { tolerance: 0.01 },
    ] {
        let o = options(&cm, "w4a4", objective);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("pool");
        let a = one.install(|| search(&n, &o, &cm));
        let four = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .expect("pool");
        let b = four.install(|| search(&n, &o, &cm));
        let c = search(&n, &o, &cm);
        assert_eq!(answer(&a), answer(&b), "{objective:?}");
        assert_eq!(answer(&a), answer(&c), "{objective:?}");
    }
}

/// An independent brute force: every candidate of every layer evaluated, the minimum
/// found by a plain loop (first index wins a tie).
#[test]
fn search_equals_brute_force() {
    let cm = CostModel::builtin().expect("cost model");
    let n = net("minionn-cifar10");
    for objective in [Objective::Comm, Objective::Latency] {
        let o = options(&cm, "w4a4", objective);
        let s = search(&n, &o, &cm);
        let problems = model::search_problems(&n, &o, &cm).expect("problems");
        assert_eq!(problems.len(), s.layers.len());
        assert!(problems.len() >= 8, "every conv and the fc are searched");
        let space = model::space_for(&o, &cm);
        for (p, l) in problems.iter().zip(&s.layers) {
            let all = layer_candidates(&p.geom, &p.ctx, &space);
            let mut best: Option<(usize, f64)> = None;
            let mut infeasible = 0u64;
            for (i, m) in all.iter().enumerate() {
                let Ok(c) = evaluate_coeff(&p.geom, m, &p.ctx, &cm) else {
                    infeasible += 1;
                    continue;
                };
                let v = match objective {
                    Objective::Comm => c.total_bytes() as f64,
                    _ => mapping_latency(&o.link, &cm.compute, m, &c),
                };
                if best.is_none_or(|(_, b)| v < b) {
                    best = Some((i, v));
                }
            }
            let (bi, _) = best.expect("a feasible candidate");
            let chosen = l.search.best.expect("search found one").0;
            assert_eq!(chosen, all[bi], "layer {} {objective:?}", p.layer);
            assert_eq!(l.search.evaluated, all.len() as u64);
            assert_eq!(l.search.infeasible.values().sum::<u64>(), infeasible);
        }
    }
}

/// Through the whole model: no candidate of a layer, forced with a saved-mapping
/// override, gives that layer fewer HE bytes than the search's choice.
#[test]
fn no_candidate_beats_the_choice_in_the_full_model() {
    let cm = CostModel::builtin().expect("cost model");
    let n = net("minionn-cifar10");
    let o = options(&cm, "w4a4", Objective::Comm);
    let s = search(&n, &o, &cm);
    let problems = model::search_problems(&n, &o, &cm).expect("problems");
    let p = problems.iter().find(|p| p.layer == "conv5").expect("conv5");
    let chosen = &s.report.layers[p.index];
    let mut feasible = 0;
    for m in layer_candidates(&p.geom, &p.ctx, &model::space_for(&o, &cm)) {
        let mut oo = o.clone();
        oo.overrides.insert(
            p.layer.clone(),
            LayerChoice {
                layer: p.layer.clone(),
                bits: None,
                linear: Some(m),
            },
        );
        if let Ok(r) = model::evaluate(&n, &oo, &cm) {
            feasible += 1;
            assert!(
                r.layers[p.index].bytes_linear >= chosen.bytes_linear,
                "{m:?} beats the search"
            );
        }
    }
    assert!(feasible > 10);
}

#[test]
fn search_report_is_the_estimate() {
    let cm = CostModel::builtin().expect("cost model");
    let n = net("resnet18-cifar100");
    let o = options(&cm, "w4a4", Objective::Comm);
    let s = search(&n, &o, &cm);
    assert_eq!(s.report, model::evaluate(&n, &o, &cm).expect("evaluate"));
}

#[test]
fn saved_mapping_round_trips() {
    let cm = CostModel::builtin().expect("cost model");
    let n = net("minionn-cifar10");
    // Latency objective: the saved mapping must carry the choices, not re-search by comm.
    let o = options(&cm, "w4a4", Objective::Latency);
    let s = search(&n, &o, &cm);
    let dir = std::env::temp_dir().join(format!("hequant-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join("mapping.toml");
    let file = hequant::spec::mapping::MappingFile::from_report("minionn-cifar10", &s.report);
    hequant::io::write_atomic(&path, file.to_toml().as_bytes()).expect("write");
    let back = hequant::spec::mapping::load(&path, Some(&n)).expect("load");
    let mut plain = options(&cm, "w4a4", Objective::Comm);
    plain.overrides = back.overrides();
    let r = model::evaluate(&n, &plain, &cm).expect("evaluate");
    assert_eq!(r.total, s.report.total);
    // And through the command line: estimate --mapping prints the same total.
    let json = dir.join("estimate.json");
    let (ok, err) = hequant(&[
        "estimate",
        "-n",
        "minionn-cifar10",
        "--bits",
        "w4a4",
        "--link",
        "wan",
        "--mapping",
        path.to_str().expect("utf-8"),
        "--format",
        "json",
        "-o",
        json.to_str().expect("utf-8"),
    ]);
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&json).expect("report");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        v["total"]["bytes_client_to_server"].as_u64(),
        Some(s.report.total.bytes_client_to_server)
    );
    assert_eq!(
        v["total"]["bytes_server_to_client"].as_u64(),
        Some(s.report.total.bytes_server_to_client)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn protocols_without_a_search_are_refused() {
    let cm = CostModel::builtin().expect("cost model");
    let n = net("minionn-cifar10");
    let mut o = options(&cm, "w4a4", Objective::Comm);
    o.protocol = Protocol::Cheetah;
    let e = search_network(&n, &o, &cm, &|| {}).unwrap_err().to_string();
    assert!(e.contains("nothing to search"), "{e}");
}

#[test]
fn sweep_points_and_front() {
    let cm = CostModel::builtin().expect("cost model");
    let n = net("minionn-cifar10");
    let o = options(&cm, "w8a8", Objective::Comm);
    let protocols = [Protocol::Cheetah, Protocol::HequantNaive, Protocol::Hequant];
    let range = BitRange::parse("2..10").expect("range");
    let s = sweep(&n, &o, &cm, &protocols, range, true).expect("sweep");
    assert_eq!(s.points.len(), 3 * 9);
    let of = |p: Protocol| -> Vec<_> { s.points.iter().filter(|x| x.protocol == p).collect() };
    // Cheetah is not quantized: the same totals at every width.
    let ch = of(Protocol::Cheetah);
    assert!(ch.iter().all(|x| x.bytes == ch[0].bytes));
    // hequant-naive keeps Cheetah's tiling and cuts the rings to the accumulator width,
    // which grows with the bits: fewer bits never cost more bytes.
    let nv = of(Protocol::HequantNaive);
    for w in nv.windows(2) {
        assert!(w[0].bytes <= w[1].bytes, "w{} vs w{}", w[0].bits, w[1].bits);
    }
    assert!(nv[0].bytes < nv[nv.len() - 1].bytes);
    // Every point is on the front or dominated by a point on it (checked here directly).
    let obj = |x: &hequant::mapper::sweep::SweepPoint| {
        vec![-(x.bits as f64), x.bytes as f64, x.latency_s]
    };
    for p in &s.points {
        let dominated = s.points.iter().any(|q| pareto::dominates(&obj(q), &obj(p)));
        assert_eq!(p.pareto, !dominated, "{} w{}", p.protocol, p.bits);
    }
    // The widest point of the cheapest-at-that-width protocol is on the front.
    assert!(s.points.iter().any(|p| p.pareto && p.bits == 10));
}

fn hequant(args: &[&str]) -> (bool, String) {
    let mut a = vec!["hequant"];
    a.extend(args);
    match hequant::cli::run_from(a) {
        Ok(()) => (true, String::new()),
        Err(e) => (false, e),
    }
}

#[test]
fn bad_input_on_the_command_line() {
    let n = ["-n", "minionn-cifar10"];
    let cases: [(&[&str], &str); 6] = [
        (&["sweep", "--bits", ""], "empty"),
        (&["sweep", "--bits", "16..2"], "reversed"),
        (&["sweep", "--bits", "0..8"], "1..=32"),
        (
            &["search", "--bits", "w4a4", "--objective", "speed"],
            "unknown objective 'speed'",
        ),
        (
            &["search", "--bits", "w4a4", "-p", "cheetah"],
            "nothing to search",
        ),
        (
            &["sweep", "--protocols", "cheetah,bogus"],
            "unknown protocol 'bogus'",
        ),
    ];
    for (args, needle) in cases {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(n);
        let (ok, err) = hequant(&a);
        assert!(!ok, "{args:?} should fail");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn search_save_to_a_missing_directory_fails_cleanly() {
    let (ok, err) = hequant(&[
        "search",
        "-n",
        "minionn-cifar10",
        "--bits",
        "w4a4",
        "--save",
        "/nonexistent-dir/m.toml",
    ]);
    assert!(!ok);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn sweep_is_the_same_on_one_thread_and_many() {
    let cm = CostModel::builtin().expect("cost model");
    let n = net("resnet18-cifar100");
    let o = options(&cm, "w8a8", Objective::Comm);
    let protocols = [
        Protocol::HequantPacked,
        Protocol::Hequant,
        Protocol::Cheetah,
    ];
    let range = BitRange::parse("2..9").expect("range");
    let run = || sweep(&n, &o, &cm, &protocols, range, false).expect("sweep");
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool")
        .install(run);
    let many = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .expect("pool")
        .install(run);
    assert_eq!(one, many);
}

//! Mixed precision: the dynamic program's front equals a brute-force enumeration of every
//! assignment on a small network and bit set; budgets, sensitivities and bad input.

use hequant::mapper::mixed::{Budget, Front, Metric, MixedError, mixed, select, tables};
use hequant::mapper::sweep::BitRange;
use hequant::model::EvalOptions;
use hequant::protocol::{CostModel, Protocol};
use hequant::workload::Network;
use std::path::Path;

fn setup() -> (CostModel, Network, EvalOptions) {
    let cm = CostModel::builtin().expect("cost model");
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("networks/minionn-cifar10.toml");
    let net = hequant::spec::network::load(&p).expect("network");
    let mut o = EvalOptions::new(Protocol::Hequant, &cm);
    o.link = cm.link("wan").expect("wan");
    o.link_name = "wan".into();
    (cm, net, o)
}

fn widest(net: &Network, set: BitRange) -> Vec<hequant::workload::BitWidths> {
    let b = hequant::mapper::sweep::uniform_bits(set.hi).expect("bits");
    vec![b; hequant::mapper::mixed::weighted_layers(net).len()]
}

/// Every assignment of the tables, summed in layer order as the program sums them.
fn brute_force(t: &hequant::mapper::mixed::Tables) -> Vec<(f64, f64)> {
    let sizes: Vec<usize> = t.layers.iter().map(|l| l.options.len()).collect();
    let mut idx = vec![0usize; sizes.len()];
    let mut all = Vec::new();
    loop {
        let mut cost = t.fixed;
        let mut proxy = 0.0;
        for (l, &k) in t.layers.iter().zip(&idx) {
            cost += l.options[k].cost;
            proxy += l.options[k].proxy;
        }
        all.push((cost, proxy));
        // Next assignment (odometer).
        let mut d = 0;
        loop {
            if d == idx.len() {
                return all;
            }
            idx[d] += 1;
            if idx[d] < sizes[d] {
                break;
            }
            idx[d] = 0;
            d += 1;
        }
    }
}

fn pareto(all: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut f: Vec<(f64, f64)> = all
        .iter()
        .filter(|p| {
            !all.iter()
                .any(|q| q.0 <= p.0 && q.1 <= p.1 && (q.0 < p.0 || q.1 < p.1))
        })
        .copied()
        .collect();
    f.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    f.dedup();
    f
}

#[test]
fn front_equals_brute_force() {
    let (cm, net, o) = setup();
    let set = BitRange { lo: 2, hi: 3 };
    for metric in [Metric::Comm, Metric::Latency] {
        let t = tables(&net, &o, &cm, set, metric, None, &widest(&net, set)).expect("tables");
        assert_eq!(t.layers.len(), 8);
        assert!(t.layers.iter().all(|l| l.options.len() == 4));
        let all = brute_force(&t);
        assert_eq!(all.len(), 4usize.pow(8));
        let expect = pareto(&all);
        let front = Front::new(&t);
        assert_eq!(front.points(), expect, "{metric:?}");
        // Budgets: the least proxy under the budget, found by scanning every assignment.
        let (lo, hi) = (expect[0].0, expect[expect.len() - 1].0);
        for k in 0..=10 {
            let b = lo + (hi - lo) * k as f64 / 10.0;
            let best = all
                .iter()
                .filter(|p| p.0 <= b)
                .map(|p| p.1)
                .fold(f64::INFINITY, f64::min);
            let i = select(&t, &front.points(), Budget::Cost(b)).expect("feasible");
            assert_eq!(front.points()[i].1, best, "budget {b}");
            // The assignment behind the point sums to it.
            let a = front.assignment(i);
            let cost = t
                .layers
                .iter()
                .zip(&a)
                .fold(t.fixed, |c, (l, &k)| c + l.options[k].cost);
            assert_eq!(cost, front.points()[i].0);
        }
    }
}

#[test]
fn tables_reproduce_the_reference_total() {
    let (cm, net, o) = setup();
    let set = BitRange { lo: 3, hi: 5 };
    let t = tables(&net, &o, &cm, set, Metric::Comm, None, &widest(&net, set)).expect("tables");
    // Every layer at the reference widths: the attributed shares add back to the total.
    let at_ref: f64 = t
        .layers
        .iter()
        .map(|l| {
            l.options
                .iter()
                .find(|x| x.bits == t.reference[0])
                .expect("reference option")
                .cost
        })
        .sum::<f64>()
        + t.fixed;
    assert_eq!(at_ref, t.reference_total);
}

#[test]
fn chosen_point_meets_the_budget_exactly() {
    let (cm, net, o) = setup();
    let set = BitRange { lo: 2, hi: 6 };
    let t = tables(&net, &o, &cm, set, Metric::Comm, None, &widest(&net, set)).expect("tables");
    let pts = Front::new(&t).points();
    let budget = (pts[0].0 + pts[pts.len() - 1].0) / 2.0;
    let m = mixed(
        &net,
        &o,
        &cm,
        set,
        Metric::Comm,
        Budget::Cost(budget),
        None,
        5,
    )
    .expect("mixed");
    let c = &m.points[m.chosen];
    assert!(c.exact_cost <= budget);
    assert_eq!(c.exact_cost, m.report.total.bytes() as f64);
    assert!(m.points.len() >= 5);
    assert!(
        m.points
            .windows(2)
            .all(|w| w[0].table_cost < w[1].table_cost && w[0].proxy > w[1].proxy)
    );
}

#[test]
fn impossible_budget_names_the_layer_and_the_cheapest_total() {
    let (cm, net, o) = setup();
    let set = BitRange { lo: 2, hi: 4 };
    // The last tables are measured around the narrowest widths.
    let narrowest = vec![
        hequant::mapper::sweep::uniform_bits(2).expect("bits");
        hequant::mapper::mixed::weighted_layers(&net).len()
    ];
    let t = tables(&net, &o, &cm, set, Metric::Comm, None, &narrowest).expect("tables");
    // The layer with the largest share at the narrowest widths, found here directly from
    // the exact report: its cost plus that of the layers since the previous weighted one.
    let mut all2 = o.clone();
    all2.bits = hequant::model::BitsPolicy {
        uniform: Some(hequant::mapper::sweep::uniform_bits(2).expect("bits")),
        all_layers: true,
    };
    let r = hequant::model::evaluate(&net, &all2, &cm).expect("evaluate");
    let mut run = 0u64;
    let mut worst = (String::new(), 0u64);
    for (l, layer) in r.layers.iter().zip(&net.layers) {
        run += l.bytes();
        if layer.kind.has_weights() {
            if run > worst.1 {
                worst = (l.name.clone(), run);
            }
            run = 0;
        }
    }
    assert_eq!(t.reference_total, r.total.bytes() as f64);
    let e = mixed(
        &net,
        &o,
        &cm,
        set,
        Metric::Comm,
        Budget::Cost(1000.0),
        None,
        4,
    )
    .unwrap_err();
    assert!(matches!(e, MixedError::CostBudget { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&format!("layer '{}'", worst.0)), "{msg}");
    assert!(msg.contains("every layer at w2a2"), "{msg}");
    assert!(
        msg.contains(&hequant::units::human_bytes(r.total.bytes())),
        "{msg}"
    );
    let e = mixed(
        &net,
        &o,
        &cm,
        set,
        Metric::Comm,
        Budget::Proxy(1e-12),
        None,
        4,
    )
    .unwrap_err();
    assert!(matches!(e, MixedError::ProxyBudget { .. }), "{e}");
}

#[test]
fn a_sensitive_layer_keeps_its_bits() {
    let (cm, net, o) = setup();
    let set = BitRange { lo: 2, hi: 4 };
    let weighted: Vec<String> = net
        .layers
        .iter()
        .filter(|l| l.kind.has_weights())
        .map(|l| l.name.clone())
        .collect();
    let mut text = String::from("format = \"hequant-sensitivity\"\nversion = 1\n");
    for n in &weighted {
        let s = if n == "conv3" { "1e12" } else { "1.0" };
        text += &format!("[[layer]]\nname = \"{n}\"\nweight = {s}\n");
    }
    let sens = hequant::spec::sensitivity::from_str("s.toml", &text, &net).expect("sensitivity");
    let t = tables(
        &net,
        &o,
        &cm,
        set,
        Metric::Comm,
        Some(&sens),
        &widest(&net, set),
    )
    .expect("tables");
    let pts = Front::new(&t).points();
    let budget = pts[0].0 + (pts[pts.len() - 1].0 - pts[0].0) * 0.3;
    let m = mixed(
        &net,
        &o,
        &cm,
        set,
        Metric::Comm,
        Budget::Cost(budget),
        Some(&sens),
        3,
    )
    .expect("mixed");
    let c = &m.points[m.chosen];
    let conv3 = c.bits.iter().find(|b| b.0 == "conv3").expect("conv3").1;
    assert_eq!((conv3.w.get(), conv3.a.get()), (4, 4), "{:?}", c.bits);
}

#[test]
fn bad_sensitivity_files_are_named() {
    let (_, net, _) = setup();
    let e = hequant::spec::sensitivity::from_str(
        "s.toml",
        "format = \"hequant-sensitivity\"\nversion = 1\n[[layer]]\nname = \"nope\"\nweight = 1.0\n",
        &net,
    )
    .unwrap_err();
    assert!(e.to_string().contains("no layer named 'nope'"), "{e}");
    assert_eq!(e.line, 4);
    let e = hequant::spec::sensitivity::from_str(
        "s.toml",
        "format = \"hequant-sensitivity\"\nversion = 1\n[[layer]]\nname = \"conv1\"\nweight = -1.0\n",
        &net,
    )
    .unwrap_err();
    assert!(e.to_string().contains("not a positive number"), "{e}");
    let e = hequant::spec::sensitivity::from_str(
        "s.toml",
        "format = \"hequant-sensitivity\"\nversion = 1\n[[layer]]\nname = \"conv1\"\nweight = 1.0\n",
        &net,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("no sensitivity for the weighted layer(s) conv2"),
        "{e}"
    );
}

#[test]
fn bad_input_on_the_command_line() {
    let run = |args: &[&str]| {
        let mut a = vec!["hequant", "mixed", "-n", "minionn-cifar10"];
        a.extend(args);
        match hequant::cli::run_from(a) {
            Ok(()) => (true, String::new()),
            Err(e) => (false, e),
        }
    };
    let cases: [(&[&str], &str); 5] = [
        (&[], "--budget-mb"),
        (&["--budget-mb", "40", "--bits-set", "8..2"], "reversed"),
        (&["--budget-mb", "0.001"], "cannot be met"),
        (&["--budget-mb", "0"], "positive"),
        (&["--budget-mb", "40", "-p", "cheetah"], "fixed point"),
    ];
    for (args, needle) in cases {
        let (ok, err) = run(args);
        assert!(!ok, "{args:?}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn a_budget_just_above_the_narrowest_widths_is_met() {
    // Tables around the widest widths overstate the cheap end (the rings of the
    // non-linear layers fall with both neighbours); the search must still find the
    // all-narrowest point, whose exact total is below the budget.
    let (cm, net, o) = setup();
    let set = BitRange { lo: 2, hi: 8 };
    let mut all2 = o.clone();
    all2.bits = hequant::model::BitsPolicy {
        uniform: Some(hequant::mapper::sweep::uniform_bits(2).expect("bits")),
        all_layers: true,
    };
    let exact = hequant::model::evaluate(&net, &all2, &cm)
        .expect("evaluate")
        .total
        .bytes() as f64;
    let budget = exact * 1.0001;
    let m = mixed(
        &net,
        &o,
        &cm,
        set,
        Metric::Comm,
        Budget::Cost(budget),
        None,
        3,
    )
    .expect("feasible");
    assert!(m.points[m.chosen].exact_cost <= budget);
}

#[test]
fn saved_widths_round_trip_through_estimate() {
    let dir = std::env::temp_dir().join(format!("hequant-mixed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (m, j) = (dir.join("m.toml"), dir.join("e.json"));
    let (ms, js) = (m.to_str().expect("utf-8"), j.to_str().expect("utf-8"));
    let run = |a: &[&str]| hequant::cli::run_from(a.iter().copied());
    run(&[
        "hequant",
        "mixed",
        "-n",
        "minionn-cifar10",
        "--budget-mb",
        "8",
        "--link",
        "wan",
        "--bits-set",
        "2..5",
        "--save",
        ms,
    ])
    .expect("mixed");
    run(&[
        "hequant",
        "estimate",
        "-n",
        "minionn-cifar10",
        "--link",
        "wan",
        "--mapping",
        ms,
        "-f",
        "json",
        "-o",
        js,
    ])
    .expect("estimate");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&j).expect("json")).expect("json");
    let bytes = v["total"]["bytes_client_to_server"].as_u64().expect("c>s")
        + v["total"]["bytes_server_to_client"].as_u64().expect("s>c");
    assert!(bytes <= 8_000_000, "{bytes}");
    // The saved widths are the ones the file lists, not the network's defaults.
    let saved = hequant::spec::mapping::load(&m, None).expect("mapping");
    let widths: Vec<u32> = saved
        .layer
        .iter()
        .filter_map(|l| l.bits.map(|b| b.w.get()))
        .collect();
    assert_eq!(widths.len(), 8);
    let layers = v["layers"].as_array().expect("layers");
    for c in &saved.layer {
        let l = layers
            .iter()
            .find(|l| l["name"] == c.layer.as_str())
            .expect("layer");
        assert_eq!(l["bits"]["w"].as_u64(), c.bits.map(|b| b.w.get() as u64));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn same_answer_on_one_thread_and_many() {
    let (cm, net, o) = setup();
    let set = BitRange { lo: 2, hi: 5 };
    let run = || {
        mixed(
            &net,
            &o,
            &cm,
            set,
            Metric::Latency,
            Budget::Proxy(50.0),
            None,
            4,
        )
        .expect("mixed")
    };
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool")
        .install(run);
    let three = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .expect("pool")
        .install(run);
    assert_eq!(one, three);
    assert!(one.points[one.chosen].proxy <= 50.0);
}

// ---------------------------------------------------------------------------------------
// The tables and the front against straightforward references, and the command's output
// against the output the search gave before its tables were priced layer by layer.

fn shipped(name: &str) -> Network {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("networks/{name}.toml"));
    hequant::spec::network::load(&p).expect("network")
}

/// The tables against their definition: one full evaluation of the network per weighted
/// layer and width pair, the other layers at the reference with their reference mappings
/// held.
fn assert_tables_match(
    net: &Network,
    o: &EvalOptions,
    cm: &CostModel,
    set: BitRange,
    metric: Metric,
    reference: &[hequant::workload::BitWidths],
) {
    let full_evaluations = || -> Vec<Vec<Result<f64, String>>> {
        use hequant::mapping::LayerChoice;
        let weighted = hequant::mapper::mixed::weighted_layers(net);
        let fill = hequant::mapper::sweep::uniform_bits(set.hi).expect("bits");
        let mut at_ref = o.clone();
        at_ref.bits = hequant::model::BitsPolicy {
            uniform: Some(fill),
            all_layers: true,
        };
        for (&i, &b) in weighted.iter().zip(reference) {
            let name = net.layers[i].name.clone();
            let choice = LayerChoice {
                layer: name.clone(),
                bits: Some(b),
                linear: None,
            };
            at_ref.overrides.insert(name, choice);
        }
        let r0 = hequant::model::evaluate(net, &at_ref, cm).expect("reference");
        let t0 = metric.of_report(&r0);
        let mut held = at_ref.clone();
        for l in r0.layers.iter().filter(|l| l.mapping.is_some()) {
            let bits = at_ref.overrides.get(&l.name).and_then(|c| c.bits);
            let choice = LayerChoice {
                layer: l.name.clone(),
                bits,
                linear: l.mapping,
            };
            held.overrides.insert(l.name.clone(), choice);
        }
        weighted
            .iter()
            .map(|&i| {
                let name = &net.layers[i].name;
                let mut out = Vec::new();
                for w in set.iter() {
                    for a in set.iter() {
                        let mut x = held.clone();
                        let b = hequant::model::parse_bits(&format!("w{w}a{a}")).expect("bits");
                        let choice = LayerChoice {
                            layer: name.clone(),
                            bits: Some(b),
                            linear: None,
                        };
                        x.overrides.insert(name.clone(), choice);
                        out.push(
                            hequant::model::evaluate(net, &x, cm)
                                .map(|r| metric.of_report(&r) - t0)
                                .map_err(|e| e.to_string()),
                        );
                    }
                }
                out
            })
            .collect()
    };
    let t = tables(net, o, cm, set, metric, None, reference).expect("tables");
    let expect = full_evaluations();
    assert_eq!(t.layers.len(), expect.len());
    for (l, e) in t.layers.iter().zip(&expect) {
        let (mut opts, mut rejected) = (l.options.iter(), l.rejected.iter());
        for (k, (w, a)) in set
            .iter()
            .flat_map(|w| set.iter().map(move |a| (w, a)))
            .enumerate()
        {
            match &e[k] {
                Ok(d) => {
                    let x = opts.next().expect("option");
                    assert_eq!((x.bits.w.get(), x.bits.a.get()), (w, a), "{}", l.layer);
                    // The same sum as the search forms: share + (total - reference total).
                    assert_eq!(x.cost, l.share + d, "{} w{w}a{a} {metric:?}", l.layer);
                }
                Err(msg) => {
                    let x = rejected.next().expect("rejected");
                    assert_eq!(&x.1, msg, "{} w{w}a{a}", l.layer);
                }
            }
        }
        assert!(opts.next().is_none() && rejected.next().is_none());
    }
}

#[test]
fn tables_equal_one_full_evaluation_per_entry() {
    let cm = CostModel::builtin().expect("cost model");
    let lan = EvalOptions::new(Protocol::Hequant, &cm);
    let (_, minionn, wan) = setup();
    let at = |net: &Network, s: &str| {
        vec![
            hequant::model::parse_bits(s).expect("bits");
            hequant::mapper::mixed::weighted_layers(net).len()
        ]
    };
    // Uniform and mixed references (the rings between layers then differ layer by layer),
    // both metrics, three networks (plain chain, residual adds, depthwise and adds).
    let set = BitRange { lo: 2, hi: 4 };
    let mixed_ref: Vec<_> = (0..at(&minionn, "4").len())
        .map(|k| hequant::model::parse_bits(["w2a4", "w4a3", "w3a2"][k % 3]).expect("bits"))
        .collect();
    for metric in [Metric::Comm, Metric::Latency] {
        assert_tables_match(&minionn, &wan, &cm, set, metric, &at(&minionn, "4"));
        assert_tables_match(&minionn, &wan, &cm, set, metric, &mixed_ref);
    }
    let set = BitRange { lo: 4, hi: 5 };
    for name in ["resnet18-cifar100", "mobilenetv2-cifar100"] {
        let net = shipped(name);
        let n = at(&net, "4").len();
        let alt: Vec<_> = (0..n)
            .map(|k| hequant::model::parse_bits(["w5a4", "w4a5"][k % 2]).expect("bits"))
            .collect();
        assert_tables_match(&net, &lan, &cm, set, Metric::Comm, &at(&net, "w4a4"));
        assert_tables_match(&net, &lan, &cm, set, Metric::Latency, &alt);
    }
}

/// The front as its definition reads: every extension of every kept entry, sorted by
/// (cost, proxy, previous entry, option) and kept where its proxy is below every earlier one.
fn front_by_sorting(t: &hequant::mapper::mixed::Tables) -> Vec<Vec<(f64, f64, usize, usize)>> {
    let mut stages: Vec<Vec<(f64, f64, usize, usize)>> = Vec::new();
    let start = vec![(t.fixed, 0.0, 0, 0)];
    for l in &t.layers {
        let prev = stages.last().unwrap_or(&start);
        let mut all = Vec::new();
        for (pi, e) in prev.iter().enumerate() {
            for (oi, o) in l.options.iter().enumerate() {
                all.push((e.0 + o.cost, e.1 + o.proxy, pi, oi));
            }
        }
        all.sort_by(|a, b| {
            a.0.total_cmp(&b.0)
                .then(a.1.total_cmp(&b.1))
                .then(a.2.cmp(&b.2))
                .then(a.3.cmp(&b.3))
        });
        let mut kept: Vec<(f64, f64, usize, usize)> = Vec::new();
        for e in all {
            if kept.last().is_none_or(|k| e.1 < k.1) {
                kept.push(e);
            }
        }
        stages.push(kept);
    }
    stages
}

#[test]
fn front_equals_sorting_every_extension() {
    let cm = CostModel::builtin().expect("cost model");
    let o = EvalOptions::new(Protocol::Hequant, &cm);
    let cases = [
        ("resnet18-cifar100", BitRange { lo: 2, hi: 8 }, Metric::Comm),
        (
            "resnet18-cifar100",
            BitRange { lo: 2, hi: 8 },
            Metric::Latency,
        ),
        (
            "mobilenetv2-cifar100",
            BitRange { lo: 3, hi: 6 },
            Metric::Comm,
        ),
    ];
    for (name, set, metric) in cases {
        let net = shipped(name);
        let t = tables(&net, &o, &cm, set, metric, None, &widest(&net, set)).expect("tables");
        let stages = front_by_sorting(&t);
        let last = stages.last().expect("stages");
        let front = Front::new(&t);
        let pts = front.points();
        assert_eq!(pts.len(), last.len(), "{name} {metric:?}");
        for (i, (p, e)) in pts.iter().zip(last).enumerate() {
            assert_eq!(*p, (e.0, e.1), "{name} {metric:?} point {i}");
        }
        // The same option of every layer behind every point (ties broken alike).
        for i in (0..last.len()).step_by(7).chain([last.len() - 1]) {
            let mut want = vec![0; stages.len()];
            let mut idx = i;
            for (k, s) in stages.iter().enumerate().rev() {
                want[k] = s[idx].3;
                idx = s[idx].2;
            }
            assert_eq!(front.assignment(i), want, "{name} {metric:?} point {i}");
        }
    }
}

/// `hequant mixed` runs and their output, recorded from the search before its tables were
/// priced layer by layer (tests/data/mixed/; the JSON ones with each layer of the chosen
/// report cut to its name, widths, rings, mapping, bytes and latency).
const RECORDED: [(&str, &[&str]); 9] = [
    (
        "r18-40wan.out",
        &[
            "-n",
            "resnet18-cifar100",
            "--budget-mb",
            "40",
            "--link",
            "wan",
            "--points",
            "5",
        ],
    ),
    (
        "r18-s4.json",
        &["-n", "resnet18-cifar100", "--budget-s", "4", "-f", "json"],
    ),
    (
        "r18-proxy10.json",
        &[
            "-n",
            "resnet18-cifar100",
            "--proxy-budget",
            "10",
            "-f",
            "json",
        ],
    ),
    (
        "r18-30-json.err",
        &["-n", "resnet18-cifar100", "--budget-mb", "30", "-f", "json"],
    ),
    (
        "r50-500.out",
        &["-n", "resnet50-imagenet", "--budget-mb", "500"],
    ),
    (
        "r50-s40.json",
        &["-n", "resnet50-imagenet", "--budget-s", "40", "-f", "json"],
    ),
    (
        "r50-50.err",
        &["-n", "resnet50-imagenet", "--budget-mb", "50"],
    ),
    (
        "d121-1200.out",
        &["-n", "densenet121-cheetah", "--budget-mb", "1200"],
    ),
    (
        "d121-500.err",
        &["-n", "densenet121-cheetah", "--budget-mb", "500"],
    ),
];

/// Every number as an f64 (the recorded files were cut with `jq`, which writes 4.0 as 4).
fn numbers_as_f64(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Number(n) => {
            if let Some(x) = n.as_f64().and_then(serde_json::Number::from_f64) {
                *n = x;
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(numbers_as_f64),
        serde_json::Value::Object(m) => m.values_mut().for_each(numbers_as_f64),
        _ => {}
    }
}

fn cut_layers(mut v: serde_json::Value) -> serde_json::Value {
    let keep = [
        "name",
        "bits",
        "ring_bits_in",
        "ring_bits_out",
        "mapping",
        "bytes_client_to_server",
        "bytes_server_to_client",
        "latency_s",
    ];
    if let Some(layers) = v["report"]["layers"].as_array_mut() {
        for l in layers {
            if let Some(m) = l.as_object_mut() {
                m.retain(|k, _| keep.contains(&k.as_str()));
            }
        }
    }
    v
}

#[test]
fn mixed_gives_the_recorded_results() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mixed");
    for (file, args) in RECORDED {
        // The recordings were made with the compute profile shipped then (the tfhe trial's
        // figures, kept in tests/data/mixed/cost-models): the latencies and the budget-s
        // runs depend on it, not on the algorithm under test.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hequant"))
            .arg("--cost-models")
            .arg(dir.join("cost-models"))
            .arg("mixed")
            .args(args)
            .output()
            .expect("run hequant");
        let want = std::fs::read_to_string(dir.join(file)).expect("recorded output");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if file.ends_with(".err") {
            assert!(!out.status.success(), "{file}");
            assert_eq!(stderr, want, "{file}");
        } else if file.ends_with(".json") {
            assert!(out.status.success(), "{file}: {stderr}");
            let mut got = cut_layers(serde_json::from_str(&stdout).expect("json"));
            let mut want: serde_json::Value = serde_json::from_str(&want).expect("recorded json");
            numbers_as_f64(&mut got);
            numbers_as_f64(&mut want);
            for key in ["rounds", "front_size", "reference_cost", "points", "chosen"] {
                assert_eq!(got[key], want[key], "{file}: {key}");
            }
            assert_eq!(got["report"]["total"], want["report"]["total"], "{file}");
            assert!(got == want, "{file}: the chosen report differs");
        } else {
            assert!(out.status.success(), "{file}: {stderr}");
            assert_eq!(stdout, want, "{file}");
        }
    }
}

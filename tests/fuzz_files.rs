//! Structure-aware fuzzing of the TOML inputs: the shipped network, cost-model and mapping files
//! with one to three edits each (a value replaced by a hostile one, a line deleted or
//! duplicated, the file cut short), then loaded and, when they load, evaluated. An error is
//! fine; a panic, or a case that takes more than `CASE_LIMIT`, fails the test. The case
//! count is modest here; `HEQUANT_FILE_FUZZ_CASES=100000 cargo test --release --test
//! fuzz_files` is the long run (README, "Bad input").

use hequant::model::{self, BitsPolicy, EvalOptions, parse_bits};
use hequant::protocol::{CostModel, Protocol};
use hequant::spec::network;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use std::time::{Duration, Instant};

fn cases() -> u32 {
    std::env::var("HEQUANT_FILE_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

/// The longest one case may take: loading and evaluating MiniONN under three protocols
/// takes well under a second.
const CASE_LIMIT: Duration = Duration::from_secs(20);

const HOSTILE: [&str; 28] = [
    // Plausible values, which keep more files valid and reach the model.
    "3",
    "4",
    "8",
    "16",
    "64",
    "256",
    "0",
    "-1",
    "1",
    "2",
    "4294967296",
    "18446744073709551615",
    "9223372036854775807",
    "4611686018427387904",
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "0.5",
    "-0.0",
    "\"x\"",
    "[]",
    "[0, 0, 0]",
    "[1000000000, 1000000000, 3]",
    "[3, 4611686018427387904, 2]",
    "true",
    "{}",
    "\"\u{1b}[2K\"",
];

#[derive(Debug, Clone)]
enum Edit {
    /// Replace the value of line `line` (after its `=`) by `HOSTILE[v]`.
    Value {
        line: prop::sample::Index,
        v: usize,
    },
    Delete {
        line: prop::sample::Index,
    },
    Duplicate {
        line: prop::sample::Index,
    },
    Cut {
        at: prop::sample::Index,
    },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        8 => (any::<prop::sample::Index>(), 0..HOSTILE.len()).prop_map(|(line, v)| Edit::Value { line, v }),
        1 => any::<prop::sample::Index>().prop_map(|line| Edit::Delete { line }),
        1 => any::<prop::sample::Index>().prop_map(|line| Edit::Duplicate { line }),
        1 => any::<prop::sample::Index>().prop_map(|at| Edit::Cut { at }),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for e in edits {
        if lines.is_empty() {
            break;
        }
        match e {
            Edit::Value { line, v } => {
                // Only lines with a number or a list of numbers: `key = value`.
                let with_value: Vec<usize> = (0..lines.len())
                    .filter(|&i| {
                        let l = &lines[i];
                        !l.trim_start().starts_with('#')
                            && l.split_once('=').is_some_and(|(_, v)| {
                                v.trim_start().starts_with(|c: char| {
                                    c.is_ascii_digit() || c == '-' || c == '['
                                })
                            })
                    })
                    .collect();
                if with_value.is_empty() {
                    continue;
                }
                let i = with_value[line.index(with_value.len())];
                let key = lines[i].split('=').next().unwrap_or("").to_string();
                lines[i] = format!("{key}= {}", HOSTILE[*v]);
            }
            Edit::Delete { line } => {
                lines.remove(line.index(lines.len()));
            }
            Edit::Duplicate { line } => {
                let i = line.index(lines.len());
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            Edit::Cut { at } => {
                let s = lines.join("\n");
                let mut k = at.index(s.len().max(1));
                while !s.is_char_boundary(k) {
                    k -= 1;
                }
                lines = s[..k].lines().map(str::to_string).collect();
            }
        }
    }
    lines.join("\n")
}

/// A shipped network file, with its stated `out` shapes left out when `infer` (they are
/// optional): the edited values then reach the shape inference and the model instead of
/// failing the file's own shape check.
fn base(file: &str, infer: bool) -> String {
    let text = shipped(file);
    if !infer {
        return text;
    }
    text.lines()
        .filter(|l| !l.trim_start().starts_with("out ="))
        .collect::<Vec<_>>()
        .join("\n")
}

fn evaluate_all(net: &hequant::workload::Network, cm: &CostModel) {
    for p in [Protocol::Cheetah, Protocol::HequantNaive, Protocol::Hequant] {
        let mut o = EvalOptions::new(p, cm);
        o.bits = BitsPolicy {
            uniform: Some(parse_bits("w4a4").unwrap()),
            all_layers: false,
        };
        let _ = model::evaluate(net, &o, cm);
    }
}

fn shipped(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    /// A mutated network file loads or is refused, and evaluates or is refused, in time.
    #[test]
    fn mutated_network_files_never_panic(edits in prop::collection::vec(edit(), 1..4), which in 0usize..2, infer in any::<bool>()) {
        let file = ["networks/minionn-cifar10.toml", "networks/resnet18-cifar100.toml"][which];
        let text = apply(&base(file, infer), &edits);
        let t = Instant::now();
        if let Ok(net) = network::from_str(file, &text) {
            let cm = CostModel::builtin().unwrap();
            evaluate_all(&net, &cm);
        }
        prop_assert!(t.elapsed() < CASE_LIMIT, "{:?} for {edits:?}", t.elapsed());
    }

    /// A mutated cost-model file in a `--cost-models` directory loads or is refused, and
    /// prices MiniONN or is refused, in time.
    #[test]
    fn mutated_cost_model_files_never_panic(edits in prop::collection::vec(edit(), 1..4), which in 0usize..7) {
        let names = ["cheetah.toml", "cryptflow2.toml", "hequant.toml", "primitives.toml", "security.toml", "links.toml", "compute.toml"];
        let name = names[which];
        let text = apply(&shipped(&format!("cost-models/{name}")), &edits);
        let dir = std::env::temp_dir().join(format!(
            "hequant-fuzz-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), &text).unwrap();
        let t = Instant::now();
        let loaded = CostModel::load_dir(&dir);
        let _ = std::fs::remove_file(dir.join(name));
        if let Ok(cm) = loaded {
            let net = network::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("networks/minionn-cifar10.toml")).unwrap();
            evaluate_all(&net, &cm);
        }
        prop_assert!(t.elapsed() < CASE_LIMIT, "{:?} for {name} {edits:?}", t.elapsed());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    /// A mutated mapping file (the mapping the model chooses for MiniONN under hequant w4a4,
    /// saved as `search --save` writes it) loads or is refused, and prices the network or is
    /// refused, in time.
    #[test]
    fn mutated_mapping_files_never_panic(edits in prop::collection::vec(edit(), 1..4)) {
        let (net, text) = minionn_mapping();
        let text = apply(text, &edits);
        let t = Instant::now();
        if let Ok(m) = hequant::spec::mapping::from_str("mapping.toml", &text, Some(net)) {
            let cm = CostModel::builtin().unwrap();
            let mut o = EvalOptions::new(Protocol::Hequant, &cm);
            o.overrides = m.overrides();
            let _ = model::evaluate(net, &o, &cm);
        }
        prop_assert!(t.elapsed() < CASE_LIMIT, "{:?} for {edits:?}", t.elapsed());
    }
}

/// MiniONN and the TOML of its hequant w4a4 mapping, computed once.
fn minionn_mapping() -> &'static (hequant::workload::Network, String) {
    static M: std::sync::OnceLock<(hequant::workload::Network, String)> =
        std::sync::OnceLock::new();
    M.get_or_init(|| {
        let net = network::from_str("minionn", &shipped("networks/minionn-cifar10.toml")).unwrap();
        let cm = CostModel::builtin().unwrap();
        let mut o = EvalOptions::new(Protocol::Hequant, &cm);
        o.bits = BitsPolicy {
            uniform: Some(parse_bits("w4a4").unwrap()),
            all_layers: false,
        };
        let r = model::evaluate(&net, &o, &cm).unwrap();
        let text =
            hequant::spec::mapping::MappingFile::from_report("minionn-cifar10", &r).to_toml();
        (net, text)
    })
}

/// The mutations reach the model: of 400 mutated network files without their stated shapes
/// (a fixed seed), at least 30 load and evaluate (45 with this seed; most edits are refused
/// by the file checks) and at least 100 are refused, so both paths are exercised.
#[test]
fn the_fuzz_reaches_the_model() {
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strat = prop::collection::vec(edit(), 1..4);
    let text = base("networks/minionn-cifar10.toml", true);
    let cm = CostModel::builtin().unwrap();
    let (mut evaluated, mut refused) = (0, 0);
    for _ in 0..400 {
        let edits = strat.new_tree(&mut runner).unwrap().current();
        match network::from_str("minionn", &apply(&text, &edits)) {
            Ok(net) => {
                let o = EvalOptions::new(Protocol::Cheetah, &cm);
                if model::evaluate(&net, &o, &cm).is_ok() {
                    evaluated += 1;
                }
            }
            Err(_) => refused += 1,
        }
    }
    assert!(evaluated >= 30, "{evaluated} of 400 evaluated");
    assert!(refused >= 100, "{refused} of 400 refused");
}

//! Non-linear layers run with real OT between two threads over loopback TCP, and the
//! first layer's `client` bit slots run with real HE.
//!
//! Expected outputs are plaintext ReLU of the reconstructed input (computed in the verify
//! client from the revealed server share, and here re-checked by a corrupted share that must
//! be caught); expected bytes and rounds are written out by hand below from the formulas of
//! CrypTFlow2's millionaire (CCS 2020, Algorithm 1) on IKNP (CRYPTO 2003) and checked against
//! `ot::sizes` and the measurement.

use hequant::model::{self, BitsPolicy, EvalOptions, parse_bits};
use hequant::protocol::{CostModel, Protocol};
use hequant::verify::nonlinear::{self, NlFault, NlPlan};
use hequant::verify::{self, RunOptions};
use hequant::workload::Network;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn net(name: &str) -> Network {
    let path = format!("{}/networks/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    hequant::spec::network::load(std::path::Path::new(&path)).expect("network loads")
}

fn options(cm: &CostModel) -> EvalOptions {
    let mut o = EvalOptions::new(Protocol::Hequant, cm);
    o.bits = BitsPolicy {
        uniform: Some(parse_bits("w4a4").expect("bits")),
        all_layers: false,
    };
    o
}

fn nl_plan(n: &Network, layers: &[&str]) -> (NlPlan, EvalOptions, CostModel) {
    let cm = CostModel::builtin().expect("cost model");
    let o = options(&cm);
    let report = model::evaluate(n, &o, &cm).expect("model");
    let sel: Vec<String> = layers.iter().map(|s| s.to_string()).collect();
    let p = nonlinear::plan(n, &report, &cm, 1, Some(&sel)).expect("plan");
    (p, o, cm)
}

/// Every layer of a run correct, its payload each way and its rounds as `ot::sizes` predicts.
fn assert_exact_and_sized(r: &nonlinear::NlReport) {
    for l in &r.layers {
        assert!(l.correct && l.mismatches == 0, "{}", l.name);
        let measured = (l.measured_server_to_client, l.measured_client_to_server);
        let predicted = (l.predicted_server_to_client, l.predicted_client_to_server);
        assert_eq!(measured, predicted, "{}", l.name);
        assert_eq!(l.measured_rounds, l.predicted_rounds, "{}", l.name);
    }
}

/// u(n) = 128 ceil(n / 8): the IKNP receiver's u-matrix for n OTs, in bytes.
fn u(n: u64) -> u64 {
    128 * n.div_ceil(8)
}

/// DReLU(18) + MUX(18) with 4-bit digits, written out by hand: the millionaire runs on the
/// low 17 bits, digits 4, 4, 4, 4, 1 (5 leaves); the tree combines 5 leaves in levels of
/// 2, 1 and 1 pairs (a lone node passes up), each level of p pairs taking 2p - 1 AND gates
/// (the last pair needs only lt, the others lt and eq): 3 + 1 + 1 = 5 AND triples.
#[test]
fn relu_bytes_by_hand_match_the_size_formulas() {
    let n = 1000u64;
    // Leaves: 1-out-of-16 OT for each of 4 full digits (2-bit messages, 16 of them) and
    // 1-out-of-2 for the 1-bit top digit: A sends n * 16 * 2 bits per full digit and
    // n * 2 * 2 bits for the 1-bit digit; B sends u(n * m_j) per digit.
    let leaves_a = 4 * (n * 16 * 2).div_ceil(8) + (n * 2 * 2).div_ceil(8);
    let leaves_b = 4 * u(n * 4) + u(n);
    let gates = [3u64, 1, 1];
    let triples: u64 = gates.iter().sum();
    let tree: u64 = gates.iter().map(|g| (2 * g * n).div_ceil(8)).sum();
    let mill_a = u(triples * n) + leaves_a + tree;
    let mill_b = u(triples * n) + leaves_b + tree;
    // MUX(18): one COT each way: u(n) + n * 18 bits each.
    let mux = u(n) + (n * 18).div_ceil(8);
    let c = hequant::ot::sizes::drelu_plan(n, 18, 4)
        .then(&hequant::ot::sizes::mux_plan(n, 18))
        .cost();
    assert_eq!(c.bytes_a_to_b, mill_a + mux);
    assert_eq!(c.bytes_b_to_a, mill_b + mux);
}

/// MiniONN's ReLU layers under hequant w4a4: every output equal to plaintext ReLU, the
/// payload each way equal to `ot::sizes` to the byte, the rounds equal.
#[test]
fn minionn_relu_layers_are_exact_and_sized() {
    let n = net("minionn-cifar10");
    let (p, o, cm) = nl_plan(&n, &["relu1", "relu5", "relu6", "relu7"]);
    assert_eq!(p.layers.len(), 4, "skipped: {:?}", p.skipped);
    let r = nonlinear::run_local(&p, &o.link, &cm, None, &|_| {}).expect("run");
    assert!(r.ok);
    assert_exact_and_sized(&r);
    // Chou-Orlandi: one point, then 128 points, each way (32-byte Ristretto encodings).
    assert_eq!(r.setup_predicted, 2 * (32 + 128 * 32));
    assert_eq!(r.setup_measured, r.setup_predicted);
    // relu7 widens the ring (14 -> 26 bits) and runs an extension after the ReLU.
    let ext = r.layers.iter().find(|l| l.name == "relu7").expect("relu7");
    assert!(ext.steps.contains("extension"), "{}", ext.steps);
}

/// The CRT conversions of ResNet-18 CIFAR-100 under hequant-packed w4a4 at batch 4 (its
/// layer3 and layer4 convolutions and fc in CRT slots over the 4 images): shares of the
/// activations of 3 images go from Z_{2^l} into Z_p and the accumulators come back, with real
/// OT. Every value opens to what the client dealt, and the payload each way is exactly one
/// COT per element, written out here by hand: B sends u(n), A sends n bits(p) (in) or n l
/// bits (out) (docs/protocol-reference.md 4.3).
#[test]
fn crt_conversions_are_exact_and_one_cot_per_element() {
    let n = net("resnet18-cifar100");
    let cm = CostModel::builtin().expect("cost model");
    let mut o = options(&cm);
    o.protocol = Protocol::HequantPacked;
    o.batch = 4;
    let report = model::evaluate(&n, &o, &cm).expect("model");
    let sel: Vec<String> = ["layer4.1.conv1", "fc", "layer1.0.relu1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let p = nonlinear::plan(&n, &report, &cm, 4, Some(&sel)).expect("plan");
    let crt: Vec<_> = p.layers.iter().filter(|l| l.crt.is_some()).collect();
    assert_eq!(crt.len(), 2, "{:?} skipped {:?}", p.layers, p.skipped);
    for l in &crt {
        let c = l.crt.as_ref().unwrap();
        let w = l.l_in as u64;
        let mut a = 0;
        let mut b = 0;
        for &q in &c.moduli {
            assert!(q > 2 << w && q < 4 << w, "{q} for {w}-bit shares");
            let bits = 64 - (q - 1).leading_zeros() as u64;
            a += (c.n_in * bits).div_ceil(8) + (c.n_out * w).div_ceil(8);
            b += u(c.n_in) + u(c.n_out);
        }
        let plan = l.size_plan().cost();
        assert_eq!((plan.bytes_a_to_b, plan.bytes_b_to_a), (a, b), "{}", l.name);
    }
    // layer4.1.conv1: 512 x 4 x 4 in and out, one image per component.
    let c4 = crt[0].crt.as_ref().unwrap();
    assert_eq!((c4.moduli.len(), c4.n_in, c4.n_out), (3, 8192, 8192));
    let r = nonlinear::run_local(&p, &o.link, &cm, None, &|_| {}).expect("run");
    assert!(r.ok, "{:?}", r.layers);
    assert_exact_and_sized(&r);
    // A flipped bit of the server's share of one converted value is caught.
    let fault = NlFault {
        layer: "fc".into(),
        element: 1100,
    };
    let r = nonlinear::run_local(&p, &o.link, &cm, Some(&fault), &|_| {}).expect("run");
    let fc = r.layers.iter().find(|l| l.name == "fc").unwrap();
    assert!(!r.ok);
    assert_eq!(fc.mismatches, 1);
}

/// A flipped bit in one element of the server's output share is caught by the check.
#[test]
fn a_corrupted_share_is_detected() {
    let n = net("minionn-cifar10");
    let (p, o, cm) = nl_plan(&n, &["relu6"]);
    let fault = NlFault {
        layer: "relu6".into(),
        element: 17,
    };
    let r = nonlinear::run_local(&p, &o.link, &cm, Some(&fault), &|_| {}).expect("run");
    assert!(!r.ok);
    assert_eq!(r.layers[0].mismatches, 1);
}

/// A server that stops after the handshake: the client fails with an error naming the
/// step, within the time-out, and does not panic.
#[test]
fn a_peer_that_stops_gives_an_error_naming_the_step() {
    let n = net("minionn-cifar10");
    let (p, o, cm) = nl_plan(&n, &["relu6"]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let srv = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        // Read the client's hello frame, acknowledge it, then hang up.
        let mut h = [0u8; 12];
        s.read_exact(&mut h).expect("header");
        let len = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).expect("body");
        let mut ack = Vec::from(*b"HQV1");
        ack.extend_from_slice(&1u16.to_le_bytes());
        ack.extend_from_slice(&[2, 0]);
        ack.extend_from_slice(&2u32.to_le_bytes());
        ack.extend_from_slice(b"{}");
        s.write_all(&ack).expect("ack");
    });
    let stream = std::net::TcpStream::connect(addr).expect("connect");
    let t = Instant::now();
    let e = nonlinear::run_client(stream, &p, &o.link, &cm, Duration::from_secs(20), &|_| {})
        .expect_err("the peer is gone");
    srv.join().expect("server thread");
    let msg = e.to_string();
    assert!(msg.contains("base OT setup"), "{msg}");
    assert!(t.elapsed() < Duration::from_secs(20), "no hang");
}

/// The first layer reads the client's own image: `client` bit slots sized to the true
/// accumulator, run with real HE, reconstruct every output within the packed tolerance and
/// their ciphertext bytes equal the model's.
#[test]
fn client_slots_of_the_first_layer_run_with_real_he() {
    let n = net("resnet18-cifar100");
    let cm = CostModel::builtin().expect("cost model");
    let o = options(&cm);
    let report = model::evaluate(&n, &o, &cm).expect("model");
    let conv1 = &report.layers[0];
    let m = conv1.mapping.expect("mapping");
    assert_eq!(m.packing.scheme, hequant::mapping::SlotScheme::Client);
    assert!(m.packing.factor > 1);
    let sel = vec!["conv1".to_string()];
    let plan =
        verify::plan(&n, &report, Protocol::Hequant, &cm, &o.link, Some(&sel)).expect("plan");
    assert_eq!(plan.layers.len(), 1, "{:?}", plan.skipped);
    for data in [verify::DataMode::Random, verify::DataMode::WorstCase] {
        let r = verify::run_local(
            &plan,
            &RunOptions {
                data,
                ..Default::default()
            },
        )
        .expect("run");
        assert!(r.ok, "{data:?}: {:?}", r.layers[0].first_mismatches);
        assert_eq!(r.layers[0].payload_bytes, conv1.bytes_linear);
    }
}

/// `hequant verify --part nonlinear --format json`: the non-linear section carries each
/// layer's predicted and measured bytes each way and rounds, equal, and the model's figure.
#[test]
fn cli_json_nonlinear_section() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hequant"))
        .args([
            "verify",
            "--network",
            "minionn-cifar10",
            "--bits",
            "w4a4",
            "--layers",
            "relu5,relu6,pool2",
            "--part",
            "nonlinear",
            "--format",
            "json",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["ok"], true);
    assert_eq!(v["layers"].as_array().map(|a| a.len()), Some(0));
    let nl = &v["nonlinear"];
    let layers = nl["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 2);
    for l in layers {
        assert_eq!(l["correct"], true);
        for (p, m) in [
            ("predicted_server_to_client", "measured_server_to_client"),
            ("predicted_client_to_server", "measured_client_to_server"),
            ("predicted_rounds", "measured_rounds"),
        ] {
            assert!(l[p].as_u64().unwrap() > 0, "{p}");
            assert_eq!(l[p], l[m], "{p}");
        }
        assert!(l["model_bytes"].as_u64().unwrap() > 0);
    }
    let skipped = nl["skipped"].as_array().expect("skipped");
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0]["reason"].as_str().unwrap().contains("avg_pool"));
}

/// A 3x3 stride-2 max-pool with padding (ResNet's), on a small image: every output equal to
/// the plaintext maximum of its window, bytes and rounds equal to `ot::sizes`, and 8
/// comparisons per output in 4 tree levels (k = 9: 4, 2, 1, 1 pairs).
#[test]
fn a_padded_strided_max_pool_is_exact_and_sized() {
    let text = "format = \"hequant-network\"\nversion = 1\nname = \"pool\"\ndescription = \"\"\nsource = \"\"\n\
        input = [3, 9, 9]\ndefault_bits = { w = 4, a = 4 }\n\
        [[layer]]\nname = \"conv\"\nkind = \"conv2d\"\nout_channels = 4\nkernel = 3\nstride = 1\npadding = 1\n\
        [[layer]]\nname = \"pool\"\nkind = \"max_pool\"\nkernel = 3\nstride = 2\npadding = 1\n";
    let n = hequant::spec::network::from_str("pool.toml", text).expect("network");
    let (p, o, cm) = nl_plan(&n, &["pool"]);
    assert_eq!(p.layers.len(), 1, "skipped: {:?}", p.skipped);
    assert_eq!(p.layers[0].n, 4 * 5 * 5);
    let r = nonlinear::run_local(&p, &o.link, &cm, None, &|_| {}).expect("run");
    let l = &r.layers[0];
    assert!(r.ok && l.correct, "{} wrong", l.mismatches);
    assert_eq!(l.measured_server_to_client, l.predicted_server_to_client);
    assert_eq!(l.measured_client_to_server, l.predicted_client_to_server);
    assert_eq!(l.measured_rounds, l.predicted_rounds);
    // Each tree level is a ReLU's structure (DReLU then MUX on the pairs' differences), run
    // for all pairs of the level at once: rounds add up level by level.
    let relu = hequant::ot::sizes::relu(1, p.layers[0].l_in, 4).rounds;
    assert_eq!(l.predicted_rounds, 4 * relu, "4 levels for 9 values");
}

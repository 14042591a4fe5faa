//! The verify mode end to end: real HE between two threads over loopback TCP.
//!
//! Expected values come from the model (`hequant::model::evaluate`: bytes) and from plain
//! integer arithmetic computed from the layer's definition (outputs); never from the
//! verify code itself.

use hequant::model::{self, EvalOptions};
use hequant::protocol::{CostModel, Protocol};
use hequant::verify::{self, DataMode, RunOptions, VerifyReport, server::Fault};
use hequant::workload::Network;
use proptest::prelude::*;

fn minionn() -> Network {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/networks/minionn-cifar10.toml");
    hequant::spec::network::load(std::path::Path::new(path)).expect("minionn loads")
}

fn plan_for(net: &Network, p: Protocol, layers: Option<&[String]>) -> verify::Plan {
    let cm = CostModel::builtin().unwrap();
    let o = EvalOptions::new(p, &cm);
    let report = model::evaluate(net, &o, &cm).expect("the model evaluates");
    verify::plan(net, &report, p, &cm, &o.link, layers).expect("a plan")
}

fn run(net: &Network, p: Protocol, layers: &[&str], opts: &RunOptions) -> VerifyReport {
    let layers: Vec<String> = layers.iter().map(|s| s.to_string()).collect();
    let plan = plan_for(net, p, Some(&layers));
    assert_eq!(
        plan.layers.len(),
        layers.len(),
        "not run: {:?}",
        plan.skipped
    );
    verify::run_local(&plan, opts).expect("the run completes")
}

/// Correct shares and exact byte counts: the ciphertext payloads equal the model's
/// bit-packed prediction byte for byte, and all socket bytes (frame headers and the
/// per-layer parameter set added) are within 1% of it.
fn check_bytes_and_shares(r: &VerifyReport) {
    assert!(r.ok, "wrong outputs: {r:#?}");
    for l in &r.layers {
        assert!(l.correct && l.mismatches == 0, "{}", l.name);
        assert_eq!(l.payload_bytes, l.predicted_bytes, "{}", l.name);
        let ratio = l.measured_bytes as f64 / l.predicted_bytes as f64;
        assert!((1.0..1.01).contains(&ratio), "{}: ratio {ratio}", l.name);
    }
}

const LAYERS: [&str; 4] = ["conv3", "conv6", "conv7", "fc"];

#[test]
fn minionn_cheetah_layers_are_exact() {
    let r = run(
        &minionn(),
        Protocol::Cheetah,
        &LAYERS,
        &RunOptions::default(),
    );
    check_bytes_and_shares(&r);
    // Cheetah's 109-bit modulus runs in the u128 container.
    assert!(r.layers.iter().all(|l| l.log_q == 109 && l.log_t == 37));
}

#[test]
fn minionn_hequant_naive_layers_are_exact() {
    let r = run(
        &minionn(),
        Protocol::HequantNaive,
        &LAYERS,
        &RunOptions::default(),
    );
    check_bytes_and_shares(&r);
    assert!(r.layers.iter().all(|l| l.log_q <= 64));
}

#[test]
fn minionn_hequant_layers_are_exact() {
    // hequant searches N and the tiling: MiniONN's layers get N = 2048 and M_w > 1 here.
    let r = run(
        &minionn(),
        Protocol::Hequant,
        &LAYERS,
        &RunOptions::default(),
    );
    check_bytes_and_shares(&r);
    assert!(r.layers.iter().any(|l| l.tiling.contains('M')));
}

#[test]
fn minionn_hequant_packed_layers_are_exact() {
    // hequant-packed may pack; on MiniONN at w8a8 the model keeps every layer unpacked.
    let r = run(
        &minionn(),
        Protocol::HequantPacked,
        &LAYERS,
        &RunOptions::default(),
    );
    check_bytes_and_shares(&r);
}

#[test]
fn worst_case_data_is_exact_unpacked() {
    // Every share 2^l - 1 and every weight -2^(b_w - 1): with t = 2^l and q a power of
    // two the share wrap vanishes, so the result is exact.
    let opts = RunOptions {
        data: DataMode::WorstCase,
        ..Default::default()
    };
    check_bytes_and_shares(&run(&minionn(), Protocol::HequantNaive, &["conv7"], &opts));
}

#[test]
fn a_corrupted_ciphertext_coefficient_is_detected() {
    // Flip the top bit of the first kept body coefficient of response 0 of conv7: that
    // output moves by t/2 = 2^(l-1), and only that one.
    let net = minionn();
    let plan = plan_for(&net, Protocol::HequantNaive, Some(&["conv7".to_string()]));
    let p = &plan.layers[0].params;
    let bit = (p.n * p.c1_bits as u64 + p.c0_bits as u64 - 1) as usize;
    let opts = RunOptions {
        data: DataMode::Random,
        fault: Some(Fault {
            layer: "conv7".into(),
            response: 0,
            bit,
        }),
        ..Default::default()
    };
    let r = verify::run_local(&plan, &opts).unwrap();
    assert!(!r.ok);
    let l = &r.layers[0];
    assert!(!l.correct);
    assert_eq!(l.mismatches, 1);
    let m = &l.first_mismatches[0];
    let diff = m.got.unwrap().wrapping_sub(m.expected) & ((1u64 << p.ring_bits) - 1);
    assert_eq!(diff, 1u64 << (p.ring_bits - 1));
}

#[test]
fn a_corrupted_mask_coefficient_is_detected() {
    // Flipping bit c1_bits - 2 of c1's coefficient 0 moves the phase of output coefficient
    // j by q/4 wherever the binary secret key has s_j = 1: with 64 outputs in a response of
    // conv7, missing them all would need 64 zero key bits.
    let net = minionn();
    let plan = plan_for(&net, Protocol::Cheetah, Some(&["conv7".to_string()]));
    let p = &plan.layers[0].params;
    let opts = RunOptions {
        data: DataMode::Random,
        fault: Some(Fault {
            layer: "conv7".into(),
            response: 0,
            bit: (p.c1_bits - 2) as usize,
        }),
        ..Default::default()
    };
    let r = verify::run_local(&plan, &opts).unwrap();
    assert!(!r.ok && r.layers[0].mismatches > 0);
}

#[test]
fn parties_with_different_plans_stop_with_a_clear_error() {
    let net = minionn();
    let a = plan_for(&net, Protocol::HequantNaive, Some(&["conv7".to_string()]));
    let b = plan_for(&net, Protocol::Hequant, Some(&["conv7".to_string()]));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let srv = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        verify::server::serve(s, &b, &RunOptions::default())
    });
    let c = std::net::TcpStream::connect(addr).unwrap();
    let e = verify::client::run(c, &a, &RunOptions::default()).unwrap_err();
    let se = srv.join().unwrap().unwrap_err();
    assert!(se.to_string().contains("client runs"), "{se}");
    assert!(e.to_string().contains("aborted"), "{e}");
}

#[test]
fn a_peer_that_hangs_up_is_an_error_naming_the_layer() {
    let net = minionn();
    let plan = plan_for(&net, Protocol::HequantNaive, Some(&["fc".to_string()]));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let srv = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        // Accept the hello, then hang up in the middle of the layer.
        let mut buf = vec![0u8; 4096];
        let _ = std::io::Read::read(&mut s, &mut buf);
        let mut ch = verify::transport::Channel::new(s);
        ch.send(verify::transport::Kind::HelloAck, b"{}").unwrap();
    });
    let c = std::net::TcpStream::connect(addr).unwrap();
    let e = verify::client::run(c, &plan, &RunOptions::default()).unwrap_err();
    srv.join().unwrap();
    let msg = e.to_string();
    assert!(msg.contains("layer 'fc'"), "{msg}");
}

fn single_conv(
    c: u64,
    hw: u64,
    m: u64,
    k: u64,
    stride: u64,
    pad: u64,
    bits: (u32, u32),
) -> Network {
    let text = format!(
        "format = \"hequant-network\"\nversion = 1\nname = \"t\"\ndescription = \"\"\nsource = \"\"\n\
         input = [{c}, {hw}, {hw}]\ndefault_bits = {{ w = {}, a = {} }}\n\
         [[layer]]\nname = \"a\"\nkind = \"conv2d\"\nout_channels = {m}\nkernel = {k}\nstride = {stride}\npadding = {pad}\n\
         [[layer]]\nname = \"r\"\nkind = \"relu\"\n\
         [[layer]]\nname = \"b\"\nkind = \"conv2d\"\nout_channels = 3\nkernel = 1\nstride = 1\npadding = 0\n",
        bits.0, bits.1
    );
    hequant::spec::network::from_str("t.toml", &text).expect("the test network is valid")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]
    /// Random small convolutions (channels, size, kernel, stride, padding, bit widths),
    /// with Cheetah's tiling (hequant-naive) and the searched tiling (hequant, N = 2048
    /// and M_w > 1 allowed): the protocol's output equals plaintext arithmetic and the
    /// payloads equal the model's bytes.
    #[test]
    fn random_small_convs_match_plaintext(
        c in 1u64..20, hw in 3u64..24, m in 1u64..12, k in prop::sample::select(vec![1u64, 3, 5]),
        stride in 1u64..3, wb in 2u32..9, ab in 2u32..9, searched in any::<bool>(),
    ) {
        let k = k.min(hw);
        let pad = k / 2;
        let net = single_conv(c, hw, m, k, stride, pad, (wb, ab));
        let p = if searched { Protocol::Hequant } else { Protocol::HequantNaive };
        let cm = CostModel::builtin().unwrap();
        let o = EvalOptions::new(p, &cm);
        let report = model::evaluate(&net, &o, &cm).expect("the model evaluates");
        let plan = verify::plan(&net, &report, p, &cm, &o.link, Some(&["a".to_string()])).unwrap();
        prop_assume!(!plan.layers.is_empty());
        let r = verify::run_local(&plan, &RunOptions::default()).unwrap();
        prop_assert!(r.ok, "{:?}", r.layers[0].first_mismatches);
        prop_assert_eq!(r.layers[0].payload_bytes, r.layers[0].predicted_bytes);
    }
}

/// MiniONN with one layer forced to a packed mapping at w2a2 (hequant-packed), the way a
/// saved mapping file forces it.
fn packed_plan(layer: &str, dir: hequant::mapping::PackDirection, n: i64) -> verify::Plan {
    use hequant::mapping::{LayerChoice, LinearMapping, Packing, SlotScheme, Tiling};
    use hequant::units::{Bits, RingDegree};
    use hequant::workload::BitWidths;
    let net = minionn();
    let cm = CostModel::builtin().unwrap();
    let mut o = EvalOptions::new(Protocol::HequantPacked, &cm);
    let two = Bits::try_new(2).unwrap();
    o.overrides.insert(
        layer.into(),
        LayerChoice {
            layer: layer.into(),
            bits: Some(BitWidths { w: two, a: two }),
            linear: Some(LinearMapping {
                n: RingDegree::try_new(n).unwrap(),
                tiling: Tiling {
                    c_w: 32,
                    h_w: 8,
                    w_w: 8,
                    m_w: 1,
                },
                packing: Packing::new(dir, 2, SlotScheme::Exact),
            }),
        },
    );
    let report = model::evaluate(&net, &o, &cm).expect("the packed mapping is feasible");
    let plan = verify::plan(
        &net,
        &report,
        Protocol::HequantPacked,
        &cm,
        &o.link,
        Some(&[layer.to_string()]),
    )
    .unwrap();
    assert_eq!(plan.layers.len(), 1, "not run: {:?}", plan.skipped);
    assert!(plan.layers[0].packer.is_packed());
    plan
}

#[test]
fn packed_mappings_are_correct_within_one_unit() {
    use hequant::mapping::PackDirection;
    for (dir, n) in [
        (PackDirection::Spatial, 4096),
        (PackDirection::OutputChannel, 4096),
        (PackDirection::InputChannel, 8192),
    ] {
        let plan = packed_plan("conv7", dir, n);
        for data in [DataMode::Random, DataMode::WorstCase] {
            let r = verify::run_local(
                &plan,
                &RunOptions {
                    data,
                    ..Default::default()
                },
            )
            .unwrap();
            let l = &r.layers[0];
            assert!(r.ok, "{dir:?} {data:?}: {l:#?}");
            assert_eq!(l.tolerance, 1);
            // Exact at the coefficient level: no decryption failure hides in the tolerance.
            assert_eq!(l.coefficient_mismatches, 0);
            assert_eq!(l.payload_bytes, l.predicted_bytes, "{dir:?}");
        }
    }
}

#[test]
fn a_slot_too_narrow_for_worst_case_data_is_detected() {
    // conv7 (fan-in 64, l = 10 at w2a2) packed along output channels: the model's slot
    // is S = l + b_w + log2(fan-in) + 1 bits. Worst-case data (every share 2^l - 1, every
    // weight -2) fill a slot up to -2^(S-1). Decoding tolerates a borrow of one unit from
    // the slot below, which absorbs the sign bit: S - 1 bits still decode within 1, so
    // the narrowest width the data need is S - 1. One bit less than that must be caught.
    let worst = RunOptions {
        data: DataMode::WorstCase,
        ..Default::default()
    };
    let mut plan = packed_plan(
        "conv7",
        hequant::mapping::PackDirection::OutputChannel,
        4096,
    );
    plan.layers[0].packer.s -= 1;
    assert!(verify::run_local(&plan, &worst).unwrap().ok);
    plan.layers[0].packer.s -= 1;
    let r = verify::run_local(&plan, &worst).unwrap();
    assert!(!r.ok);
    assert!(r.layers[0].mismatches > 0);
    // The ciphertexts decrypt as they should: the error is the slots', not the noise's.
    assert_eq!(r.layers[0].coefficient_mismatches, 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]
    /// Random small convolutions with a random packing (direction, factor 2-3) and channel
    /// tile: decrypted coefficients exact, outputs within one unit, bytes as the model says.
    #[test]
    fn random_packed_convs_match_plaintext(
        c in 1u64..9, hw in 4u64..14, m in 1u64..7, k in prop::sample::select(vec![1u64, 3]),
        wb in 2u32..4, ab in 2u32..4, dir in 1usize..4, factor in 2u32..4, c_w in 1u64..4,
    ) {
        use hequant::mapping::{LayerChoice, LinearMapping, PackDirection, Packing, SlotScheme, Tiling};
        use hequant::units::RingDegree;
        let net = single_conv(c, hw, m, k, 1, k / 2, (wb, ab));
        let cm = CostModel::builtin().unwrap();
        let mut o = EvalOptions::new(Protocol::HequantPacked, &cm);
        o.overrides.insert("a".into(), LayerChoice {
            layer: "a".into(),
            bits: None,
            linear: Some(LinearMapping {
                n: RingDegree::try_new(8192).unwrap(),
                tiling: Tiling { c_w, h_w: 64, w_w: 64, m_w: 1 },
                packing: Packing::new(PackDirection::ALL[dir], factor, SlotScheme::Exact),
            }),
        });
        // Mappings the model refuses (capacity, slots, noise, security) are not run.
        let report = model::evaluate(&net, &o, &cm);
        prop_assume!(report.is_ok());
        let report = report.unwrap();
        let plan = verify::plan(&net, &report, Protocol::HequantPacked, &cm, &o.link, Some(&["a".to_string()])).unwrap();
        prop_assume!(!plan.layers.is_empty());
        let r = verify::run_local(&plan, &RunOptions::default()).unwrap();
        let l = &r.layers[0];
        prop_assert!(r.ok, "{:?} {:?}", l.first_mismatches, l.first_coefficient_mismatches);
        prop_assert_eq!(l.payload_bytes, l.predicted_bytes);
    }
}

/// The JSON contract of `hequant verify --format json`: ok, protocol, and per layer name,
/// correct, predicted/measured bytes (both directions) and seconds, noise headroom.
#[test]
fn cli_json_contract() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hequant"))
        .args([
            "verify",
            "--network",
            concat!(env!("CARGO_MANIFEST_DIR"), "/networks/minionn-cifar10.toml"),
            "--protocol",
            "hequant-naive",
            "--layers",
            "conv7,fc",
            "--format",
            "json",
        ])
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["ok"], true);
    assert_eq!(v["protocol"], "hequant-naive");
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    for l in layers {
        assert_eq!(l["correct"], true);
        for k in [
            "predicted_bytes",
            "measured_bytes",
            "predicted_s",
            "measured_s",
            "noise_headroom_bits",
        ] {
            assert!(l[k].is_number(), "{k} in {l}");
        }
        let (p, m) = (
            l["predicted_bytes"].as_u64().unwrap(),
            l["measured_bytes"].as_u64().unwrap(),
        );
        assert_eq!(
            m,
            l["measured_bytes_client_to_server"].as_u64().unwrap()
                + l["measured_bytes_server_to_client"].as_u64().unwrap()
        );
        assert!(m >= p && (m as f64) < p as f64 * 1.01);
    }
}

#[test]
fn cli_refuses_an_unknown_layer() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hequant"))
        .args([
            "verify",
            "--network",
            "minionn-cifar10",
            "--layers",
            "conv99",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no layer named 'conv99'"), "{err}");
}

/// The model's offline work is the verify server's: for every layer of MiniONN under
/// cheetah and hequant, and for the depthwise layers of MobileNetV2 under hequant-naive, the
/// kernel polynomials the model counts (`weight_polys`) equal those the server encodes,
/// counted here from the layout as the (output group, input block) pairs that hold a weight.
#[test]
fn the_models_weight_polynomials_are_those_the_server_encodes() {
    let mobilenet = {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/networks/mobilenetv2-imagenet.toml"
        );
        hequant::spec::network::load(std::path::Path::new(path)).expect("mobilenet loads")
    };
    let dw: Vec<String> = mobilenet
        .layers
        .iter()
        .filter(
            |l| matches!(l.kind, hequant::workload::LayerKind::Conv2d { groups, .. } if groups > 1),
        )
        .take(3)
        .map(|l| l.name.clone())
        .collect();
    assert_eq!(dw.len(), 3);
    let cases = [
        (minionn(), Protocol::Cheetah, None),
        (minionn(), Protocol::Hequant, None),
        (mobilenet, Protocol::HequantNaive, Some(dw)),
    ];
    for (net, p, layers) in cases {
        let plan = plan_for(&net, p, layers.as_deref());
        assert!(!plan.layers.is_empty());
        for lp in &plan.layers {
            let lay = &lp.layout;
            let w = vec![1i128; (lay.g.m * lay.g.c / lay.g.groups * lay.g.kh * lay.g.kw) as usize];
            let encoded = (0..lay.og)
                .flat_map(|og| (0..lay.cb).map(move |cb| (og, cb)))
                .filter(|&(og, cb)| lay.weight_poly(&w, og, cb).is_some())
                .count() as u64;
            assert_eq!(lp.cost.weight_polys, encoded, "{p} {}", lp.layer.name);
        }
    }
}

#[test]
fn a_server_setup_made_beforehand_answers_as_the_layer_does_and_only_for_its_layer() {
    use hequant::verify::server::{
        LayerSetup, arbitrary_queries, compute_layer, compute_layer_in_chunks, respond,
    };
    let plan = plan_for(
        &minionn(),
        Protocol::Cheetah,
        Some(&["conv3".to_string(), "conv6".to_string()]),
    );
    let (a, b) = (&plan.layers[0], &plan.layers[1]);
    let data_a = verify::server_data(7, a, DataMode::Random);
    let q = arbitrary_queries(a, 11);
    // The offline setup (all output groups) then the online answer: the same responses,
    // bit for bit, as the layer computed in one go, sequential or parallel.
    let setup = LayerSetup::new(a, &data_a, 0..a.layout.og, true);
    let (whole, _) = compute_layer(a, &data_a, q.clone(), false);
    assert_eq!(whole.len() as u64, a.params.ct_out);
    for parallel in [false, true] {
        assert_eq!(
            respond(a, &data_a, &setup, q.clone(), parallel).unwrap(),
            whole
        );
        // One output group per chunk of setup: the same again.
        let (chunked, _) = compute_layer_in_chunks(a, &data_a, q.clone(), parallel, 1);
        assert_eq!(chunked, whole);
    }
    // Another layer, other weights, or only some output groups: refused, naming both.
    let data_b = verify::server_data(7, b, DataMode::Random);
    let e = respond(b, &data_b, &setup, arbitrary_queries(b, 3), false).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("\"conv3\"") && msg.contains("\"conv6\""),
        "{msg}"
    );
    let other = verify::server_data(8, a, DataMode::Random);
    assert!(respond(a, &other, &setup, q.clone(), false).is_err());
    if a.layout.og > 1 {
        let part = LayerSetup::new(a, &data_a, 0..a.layout.og - 1, false);
        assert!(respond(a, &data_a, &part, q, false).is_err());
    }
}

//! Batches and CRT slots in the verify mode: real HE between two threads over loopback TCP.
//!
//! Expected values: outputs from plain integer arithmetic on the layer's definition, mod each
//! image's share ring (2^l, or its CRT component t_i); bytes from the model; component sizes
//! from the layer's geometry and bit widths, computed here by hand.

use hequant::mapping::{LayerChoice, LinearMapping, PackDirection, Packing, SlotScheme, Tiling};
use hequant::model::{self, EvalOptions};
use hequant::protocol::{CostModel, Protocol};
use hequant::units::RingDegree;
use hequant::verify::{self, DataMode, RunOptions, server::Fault};
use hequant::workload::Network;
use proptest::prelude::*;

fn load(name: &str) -> Network {
    let path = format!("{}/networks/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    hequant::spec::network::load(std::path::Path::new(&path)).expect("the network loads")
}

/// One layer of `net` at batch `batch`, forced to `packing` (N = 4096, the tile given).
fn forced_plan(
    net: &Network,
    layer: &str,
    batch: u64,
    packing: Packing,
    tiling: Tiling,
) -> verify::Plan {
    let cm = CostModel::builtin().unwrap();
    let mut o = EvalOptions::new(Protocol::HequantPacked, &cm);
    o.batch = batch;
    o.overrides.insert(
        layer.into(),
        LayerChoice {
            layer: layer.into(),
            bits: None,
            linear: Some(LinearMapping {
                n: RingDegree::try_new(4096).unwrap(),
                tiling,
                packing,
            }),
        },
    );
    let report = model::evaluate(net, &o, &cm).expect("the forced mapping is feasible");
    let plan = verify::plan(
        net,
        &report,
        Protocol::HequantPacked,
        &cm,
        &o.link,
        Some(&[layer.to_string()]),
    )
    .unwrap();
    assert_eq!(plan.layers.len(), 1, "not run: {:?}", plan.skipped);
    plan
}

const CONV7_TILE: Tiling = Tiling {
    c_w: 64,
    h_w: 8,
    w_w: 8,
    m_w: 1,
};

#[test]
fn crt_batches_are_exact() {
    // MiniONN conv7 (64 x 8 x 8 -> 64, 3 x 3) on 4 images: 4 components (one run) or 2
    // components (two runs), random and worst-case shares.
    let net = load("minionn-cifar10");
    for c in [4u32, 2] {
        let plan = forced_plan(
            &net,
            "conv7",
            4,
            Packing::new(PackDirection::Batch, c, SlotScheme::Crt),
            CONV7_TILE,
        );
        let p = &plan.layers[0].params;
        assert_eq!(p.crt_moduli.len(), c as usize);
        assert_eq!((p.images, p.runs), (4, 4 / c as u64));
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
            assert!(r.ok, "c = {c}, {data:?}: {l:#?}");
            assert_eq!(l.tolerance, 0, "CRT components are exact");
            assert_eq!(l.coefficient_mismatches, 0);
            assert_eq!(l.payload_bytes, l.predicted_bytes, "c = {c}");
            // The odd t does not divide q: the measured headroom stays positive.
            assert!(l.noise_headroom_bits > 0.0, "{}", l.noise_headroom_bits);
        }
    }
}

#[test]
fn a_batch_without_crt_runs_each_image_and_costs_batch_times_one() {
    // hequant-naive at batch 3: three runs of the batch-1 layout, so three times the bytes
    // the model gives the same layer at batch 1.
    let net = load("minionn-cifar10");
    let cm = CostModel::builtin().unwrap();
    let bytes_at = |batch: u64| {
        let mut o = EvalOptions::new(Protocol::HequantNaive, &cm);
        o.batch = batch;
        let report = model::evaluate(&net, &o, &cm).unwrap();
        verify::plan(
            &net,
            &report,
            Protocol::HequantNaive,
            &cm,
            &o.link,
            Some(&["conv3".to_string()]),
        )
        .unwrap()
    };
    let one = bytes_at(1);
    let three = bytes_at(3);
    let c1 = &one.layers[0].cost;
    let r = verify::run_local(&three, &RunOptions::default()).unwrap();
    let l = &r.layers[0];
    assert!(r.ok, "{l:#?}");
    assert_eq!((l.images, l.runs), (3, 3));
    assert_eq!(l.payload_bytes, 3 * (c1.bytes_in + c1.bytes_out));
    assert_eq!(l.ct_in, 3 * c1.ct_in);
}

#[test]
fn a_corrupted_response_of_the_second_run_is_detected() {
    let net = load("minionn-cifar10");
    let plan = forced_plan(
        &net,
        "conv7",
        4,
        Packing::new(PackDirection::Batch, 2, SlotScheme::Crt),
        CONV7_TILE,
    );
    let per_run = plan.layers[0].layout.responses() as usize;
    // A bit of the second run's first kept body coefficient, high enough to move the value.
    let lp = &plan.layers[0];
    let bit = lp.params.n as usize * lp.params.c1_bits as usize + lp.params.c0_bits as usize - 2;
    let r = verify::run_local(
        &plan,
        &RunOptions {
            fault: Some(Fault {
                layer: "conv7".into(),
                response: per_run,
                bit,
            }),
            ..Default::default()
        },
    )
    .unwrap();
    let l = &r.layers[0];
    assert!(!r.ok);
    assert!(l.coefficient_mismatches >= 1 && l.mismatches >= 1, "{l:#?}");
    // The wrong outputs belong to the second run's images (2 and 3), all at the position
    // of the one wrong coefficient (its CRT components are those two images; a shift of the
    // phase by q / 4, this bit, is t / 4 = 2^(l - 2) p: 0 mod p, so it can spare image 3).
    let per_image = lp.layer.output.elems() as usize;
    let images: std::collections::BTreeSet<usize> = l
        .first_mismatches
        .iter()
        .map(|m| m.index / per_image)
        .collect();
    assert!(
        !images.is_empty() && images.iter().all(|&i| i == 2 || i == 3),
        "{:?}",
        l.first_mismatches
    );
    let positions: std::collections::BTreeSet<[u64; 3]> =
        l.first_mismatches.iter().map(|m| m.position).collect();
    assert_eq!(positions.len(), 1, "{:?}", l.first_mismatches);
}

#[test]
fn crt_components_of_resnet18_hold_the_worst_accumulator() {
    // Every CRT layer hequant-packed picks on resnet18-cifar100 w4a4 at batch 4: each
    // component t_i must hold the largest |sum w x| of the true activations, signed:
    // t_i / 2 > fan_in * 2^(b_w - 1) * (2^b_a - 1), with the fan-in from the layer's shape.
    let net = load("resnet18-cifar100");
    let cm = CostModel::builtin().unwrap();
    let mut o = EvalOptions::new(Protocol::HequantPacked, &cm);
    o.batch = 4;
    o.bits.uniform = Some(model::parse_bits("w4a4").unwrap());
    let report = model::evaluate(&net, &o, &cm).unwrap();
    let plan = verify::plan(&net, &report, Protocol::HequantPacked, &cm, &o.link, None).unwrap();
    let mut crt_layers = 0;
    for lp in &plan.layers {
        if lp.params.crt_moduli.is_empty() {
            continue;
        }
        crt_layers += 1;
        let l = &lp.layer;
        let fan_in = match &l.kind {
            hequant::workload::LayerKind::Conv2d { window, groups, .. } => {
                l.input.c / groups * window.kh * window.kw
            }
            _ => l.input.elems(),
        };
        let (wb, ab) = if lp.params.name == "fc" {
            (8, 8)
        } else {
            (4, 4)
        };
        let worst = fan_in as u128 * (1u128 << (wb - 1)) * ((1u128 << ab) - 1);
        let l_bits = lp.params.ring_bits;
        assert_eq!(
            lp.params.crt_moduli[0],
            1u64 << l_bits,
            "{}",
            lp.params.name
        );
        for (i, &t) in lp.params.crt_moduli.iter().enumerate() {
            assert!(i == 0 || t % 2 == 1, "{}: {t}", lp.params.name);
            assert!(
                t as u128 / 2 > worst,
                "{}: t = {t}, worst {worst}",
                lp.params.name
            );
        }
    }
    assert!(crt_layers >= 8, "{crt_layers} CRT layers");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]
    /// Random small convolutions, batches of 1 to 4, unpacked or CRT over c | batch images:
    /// every output of every image equals plaintext arithmetic exactly, bytes as the model.
    #[test]
    fn random_batched_convs_match_plaintext(
        c in 1u64..9, hw in 4u64..12, m in 1u64..7, k in prop::sample::select(vec![1u64, 3]),
        wb in 2u32..6, ab in 2u32..6, batch in 1u64..5, crt in any::<bool>(),
    ) {
        let text = format!(
            "format = \"hequant-network\"\nversion = 1\nname = \"t\"\ndescription = \"\"\nsource = \"\"\n\
             input = [{c}, {hw}, {hw}]\ndefault_bits = {{ w = {wb}, a = {ab} }}\n\
             [[layer]]\nname = \"a\"\nkind = \"conv2d\"\nout_channels = {m}\nkernel = {k}\nstride = 1\npadding = {}\n\
             [[layer]]\nname = \"r\"\nkind = \"relu\"\n\
             [[layer]]\nname = \"b\"\nkind = \"conv2d\"\nout_channels = 3\nkernel = 1\nstride = 1\npadding = 0\n",
            k / 2
        );
        let net = hequant::spec::network::from_str("t.toml", &text).unwrap();
        let packing = if crt && batch > 1 {
            Packing::new(PackDirection::Batch, batch as u32, SlotScheme::Crt)
        } else {
            Packing::NONE
        };
        let cm = CostModel::builtin().unwrap();
        let mut o = EvalOptions::new(Protocol::HequantPacked, &cm);
        o.batch = batch;
        o.overrides.insert("a".into(), LayerChoice {
            layer: "a".into(),
            bits: None,
            linear: Some(LinearMapping {
                n: RingDegree::try_new(4096).unwrap(),
                tiling: Tiling { c_w: c, h_w: hw, w_w: hw, m_w: 1 },
                packing,
            }),
        });
        let report = model::evaluate(&net, &o, &cm);
        prop_assume!(report.is_ok());
        let report = report.unwrap();
        let plan = verify::plan(&net, &report, Protocol::HequantPacked, &cm, &o.link, Some(&["a".to_string()])).unwrap();
        prop_assume!(!plan.layers.is_empty());
        let r = verify::run_local(&plan, &RunOptions::default()).unwrap();
        let l = &r.layers[0];
        prop_assert!(r.ok, "{:?} {:?}", l.first_mismatches, l.first_coefficient_mismatches);
        prop_assert_eq!(l.images, batch);
        prop_assert_eq!(l.payload_bytes, l.predicted_bytes);
    }
}

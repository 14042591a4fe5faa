//! Property tests of the model's invariants (issue 2, check 6).

use hequant::mapping::space::{SpaceOptions, candidates};
use hequant::mapping::{LinearMapping, PackDirection, Packing, SlotScheme, Tiling};
use hequant::model::linear::{ConvGeom, HeContext, crt_log_t, crt_moduli, evaluate_coeff};
use hequant::model::{EvalOptions, evaluate, parse_bits};
use hequant::protocol::{CostModel, Protocol};
use hequant::units::RingDegree;
use proptest::prelude::*;

fn geom(c: u64, hw: u64, m: u64, k: u64) -> ConvGeom {
    let h = hw + k - 1;
    ConvGeom {
        c,
        h,
        w: h,
        m,
        kh: k,
        kw: k,
        sh: 1,
        sw: 1,
        groups: 1,
        out_h: hw,
        out_w: hw,
        fan_in: c * k * k,
    }
}

fn ctx(ring: u32, wb: u32) -> HeContext {
    HeContext {
        ring_bits: ring,
        weight_bits: wb,
        act_bits: 4,
        fixed_log_q: None,
        response_log_q: 60,
        seeded: true,
        error_std: 3.2,
        failure_log2: -40,
        flood_bits: 0,
        allow_insecure: false,
        client_input: false,
        batch: 1,
        crt_conversion_bytes: 0,
        crt_conversion_rounds: 0,
        weight_l1: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// No mapping the model accepts can exceed the ring, overflow a slot, or break the
    /// security table; every output coefficient is accounted for.
    #[test]
    fn accepted_mappings_fit_ring_slots_and_security(
        c in 1u64..300, hw in 1u64..40, m in 1u64..300, k in prop::sample::select(vec![1u64, 3, 5]),
        logn in 11u32..14, c_w in 1u64..64, h_w in 1u64..80, w_w in 1u64..80, m_w in 1u64..16,
        dir in prop::sample::select(vec![PackDirection::None, PackDirection::Spatial, PackDirection::OutputChannel, PackDirection::InputChannel]), factor in 1u32..6,
        ring in 8u32..40, wb in 1u32..9,
    ) {
        let cm = CostModel::builtin().unwrap();
        let g = geom(c, hw, m, k);
        let n = RingDegree::try_new(1 << logn).unwrap();
        let map = LinearMapping { n, tiling: Tiling { c_w, h_w, w_w, m_w }, packing: Packing::new(dir, factor, SlotScheme::Exact) };
        if let Ok(cost) = evaluate_coeff(&g, &map, &ctx(ring, wb), &cm) {
            let b = if dir == PackDirection::None { 1 } else { factor as u64 };
            let h_eff = if dir == PackDirection::Spatial && b > 1 { hw.div_ceil(b) + k - 1 } else { g.h };
            // Ring capacity.
            prop_assert!(m_w * c_w * h_w.min(h_eff) * w_w.min(g.w) <= n.as_u64());
            // Slots: the worst case fan_in * 2^(b_w-1) * (2^(l+1) - 2) is below 2^(S-1).
            if b > 1 {
                let s = cost.slot_bits;
                let worst = (g.fan_in as f64) * 2f64.powi(wb as i32 - 1) * (2f64.powi(ring as i32 + 1) - 2.0);
                prop_assert!(worst < 2f64.powi(s as i32 - 1), "slot {s} worst {worst}");
                prop_assert!(cost.log_t >= b as u32 * s);
            } else {
                prop_assert_eq!(cost.log_t, ring);
            }
            // Noise headroom and security.
            prop_assert!(cost.headroom_bits >= 0.0);
            prop_assert!(cost.log_q <= cm.max_log_q(n).unwrap());
            // Every output lands in exactly one kept coefficient (packed: b per coefficient).
            prop_assert!(cost.kept * b >= g.out_elems());
            prop_assert!(cost.kept <= g.out_elems());
        }
    }

    /// The search space only proposes mappings that fit the ring.
    #[test]
    fn candidates_respect_capacity(c in 1u64..200, hw in 1u64..70, m in 1u64..200, k in prop::sample::select(vec![1u64, 3])) {
        let g = geom(c, hw, m, k);
        let opts = SpaceOptions {
            ring_degrees: vec![RingDegree::try_new(2048).unwrap(), RingDegree::try_new(4096).unwrap()],
            max_pack_factor: 3,
            max_m_w: 16,
            free_tiling: true,
            pack_directions: PackDirection::ALL.to_vec(),
            schemes: SlotScheme::ALL.to_vec(),
            batch: 4,
        };
        for map in candidates(&g, &opts) {
            prop_assert!(map.tiling.m_w * map.tiling.c_w * map.tiling.h_w * map.tiling.w_w <= map.n.as_u64() || map.tiling.h_w > g.h);
        }
    }
}

proptest! {
    /// CRT slots: the first component is the share ring 2^l, every other one a prime above
    /// it, the primes pairwise distinct (so all components coprime), t is their product, and a batch mapping covers the
    /// batch with batch / c runs of one ciphertext set each.
    #[test]
    fn crt_mappings_use_coprime_components_above_the_ring(
        c in 1u64..64, hw in 1u64..20, m in 1u64..64, ring in 8u32..28, comps in 2u32..6, k in 1u64..5,
    ) {
        let cm = CostModel::builtin().unwrap();
        let g = geom(c, hw, m, 1);
        let n = RingDegree::try_new(8192).unwrap();
        let batch = comps as u64 * k;
        let mut cx = ctx(ring, 4);
        cx.batch = batch;
        let map = LinearMapping { n, tiling: Tiling { c_w: c.min(8), h_w: g.h, w_w: g.w, m_w: 1 }, packing: Packing::new(PackDirection::Batch, comps, SlotScheme::Crt) };
        let moduli = crt_moduli(ring, comps).unwrap();
        prop_assert_eq!(moduli.len(), comps as usize);
        prop_assert_eq!(moduli[0], 1u64 << ring);
        for (i, &t) in moduli.iter().enumerate().skip(1) {
            prop_assert!(t > 1u64 << ring);
            prop_assert!((2..t).take_while(|d| d * d <= t).all(|d| t % d != 0), "{t} not prime");
            prop_assert!(moduli[..i].iter().all(|&u| u != t));
        }
        let product: f64 = moduli.iter().map(|&t| (t as f64).log2()).sum();
        prop_assert_eq!(crt_log_t(&moduli), product.ceil() as u32);
        if let Ok(cost) = evaluate_coeff(&g, &map, &cx, &cm) {
            prop_assert_eq!(cost.log_t, crt_log_t(&moduli));
            prop_assert_eq!(cost.runs, k);
        }
        // A component count that does not divide the batch is refused.
        cx.batch = batch + 1;
        prop_assert!(evaluate_coeff(&g, &map, &cx, &cm).is_err());
    }
}

/// The model is deterministic: the same inputs give bit-identical reports, on one thread
/// or many.
#[test]
fn evaluation_is_deterministic_across_threads() {
    let cm = CostModel::builtin().unwrap();
    let net = hequant::spec::network::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/networks/resnet18-cifar100.toml"
    )))
    .unwrap();
    let mut o = EvalOptions::new(Protocol::Hequant, &cm);
    o.bits.uniform = Some(parse_bits("w4a4").unwrap());
    let a = evaluate(&net, &o, &cm).unwrap();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let b = one.install(|| evaluate(&net, &o, &cm).unwrap());
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
}

/// The property above is not vacuous: packed mappings in each direction are accepted for a
/// small layer at N = 8192.
#[test]
fn packed_mappings_are_accepted_somewhere() {
    let cm = CostModel::builtin().unwrap();
    let g = geom(16, 8, 16, 3);
    let n = RingDegree::try_new(8192).unwrap();
    for dir in [
        PackDirection::Spatial,
        PackDirection::OutputChannel,
        PackDirection::InputChannel,
    ] {
        let map = LinearMapping {
            n,
            tiling: Tiling {
                c_w: 1,
                h_w: g.h,
                w_w: g.w,
                m_w: 1,
            },
            packing: Packing::new(dir, 2, SlotScheme::Exact),
        };
        let c =
            evaluate_coeff(&g, &map, &ctx(12, 2), &cm).unwrap_or_else(|e| panic!("{dir:?}: {e}"));
        assert!(c.slot_bits > 0);
    }
}

proptest! {
    /// The weights' bound at its worst case (L = fan_in * 2^(b_w - 1)) is the worst-case
    /// bound: the same accumulator and the same slot width for every scheme; a smaller L
    /// never widens either.
    #[test]
    fn weights_bound_at_its_worst_is_the_worst_case(
        ab in 1u32..17, wb in 1u32..17, fan_in in 1u64..100_000, ring in 8u32..40, frac in 0.0f64..1.0,
    ) {
        use hequant::model::linear::{accumulator_bits, accumulator_bits_l1, scheme_slot_bits};
        let worst = fan_in << (wb - 1);
        prop_assert_eq!(accumulator_bits_l1(ab, worst), accumulator_bits(ab, wb, fan_in));
        let mut c = ctx(ring, wb);
        c.act_bits = ab;
        let mut cl = c;
        cl.weight_l1 = Some(worst);
        let smaller = ((worst as f64 * frac) as u64).max(1);
        let mut cs = c;
        cs.weight_l1 = Some(smaller);
        for s in SlotScheme::ALL {
            prop_assert_eq!(scheme_slot_bits(s, &cl, fan_in), scheme_slot_bits(s, &c, fan_in), "{:?}", s);
            prop_assert!(scheme_slot_bits(s, &cs, fan_in) <= scheme_slot_bits(s, &c, fan_in));
        }
        prop_assert!(accumulator_bits_l1(ab, smaller) <= accumulator_bits(ab, wb, fan_in));
    }
}

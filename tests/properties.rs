//! Property tests of the model's invariants (issue 2, check 6).

use hequant::mapping::space::{SpaceOptions, candidates};
use hequant::mapping::{LinearMapping, PackDirection, Packing, SlotScheme, Tiling};
use hequant::model::linear::{
    ConvGeom, HeContext, Infeasible, crt_log_t, crt_moduli, evaluate_coeff,
};
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
        stride1_responses: false,
    }
}

/// Largest log2 q at 128-bit security (docs/protocol-reference.md 5, SEAL's table).
fn max_log_q(n: u64) -> u32 {
    match n {
        1024 => 27,
        2048 => 54,
        4096 => 109,
        8192 => 218,
        _ => unreachable!("the strategies draw N in 2048..=8192"),
    }
}

/// ceil(log2 x), by doubling.
fn ceil_lg(x: u64) -> u32 {
    let mut b = 0;
    while (1u64 << b) < x {
        b += 1;
    }
    b
}

/// E[w^2] of weights uniform over the b-bit two's-complement integers -a..=a-1, a = 2^(b-1)
/// (what the verify mode draws): (sum_{k=1..a} k^2 + sum_{k=0..a-1} k^2) / 2a
/// = (a(a+1)(2a+1) + (a-1)a(2a-1)) / 12a = (2a^2 + 1) / 6 = a^2 / 3 + 1/6.
fn second_moment_twos_complement(b: u32) -> f64 {
    let a = 2f64.powi(b as i32 - 1);
    a * a / 3.0 + 1.0 / 6.0
}

/// log2 of the noise bound of evaluate_coeff's doc comment (src/model/linear.rs),
/// worked out here from its parts: z * sigma_out with z = sqrt(2 * 40 * ln 2) (a Gaussian
/// tail of 2^-40), sigma_out = 3.2 * sqrt(M_w * fan_in * E[w^2]), no rounding term (t is a
/// power of two, so it divides q), times 2^((b - 1) S) when the weights' side packs
/// (`amp_bits`).
fn noise_bits(terms: u64, second_moment: f64, amp_bits: u32) -> f64 {
    let z = (2.0 * 40.0 * std::f64::consts::LN_2).sqrt();
    let sigma_out = 3.2 * (terms as f64 * second_moment).sqrt();
    (z * sigma_out).log2() + amp_bits as f64
}

/// A layer and a mapping that the geometry rules accept: C_w at most the (packed) channels,
/// M_w at most the output channels, tiles at least the kernel and within the ring. Only
/// the noise bound and the security table can refuse it.
#[derive(Debug, Clone)]
struct Case {
    g: ConvGeom,
    map: LinearMapping,
    ring: u32,
    wb: u32,
    /// The effective tile: min(H_w, H') x min(W_w, W), H' the packed height.
    th: u64,
    tw: u64,
}

fn accepted_geometry() -> impl Strategy<Value = Case> {
    let dirs = vec![
        PackDirection::None,
        PackDirection::Spatial,
        PackDirection::OutputChannel,
        PackDirection::InputChannel,
    ];
    (
        (
            1u64..300,
            1u64..40,
            1u64..300,
            prop::sample::select(vec![1u64, 3, 5]),
        ),
        (
            11u32..14,
            prop::sample::select(dirs),
            1u32..4,
            8u32..40,
            1u32..9,
        ),
    )
        .prop_flat_map(|((c, hw, m, k), (logn, dir, factor, ring, wb))| {
            let g = geom(c, hw, m, k);
            // Spatial bands need one output row each (hw rows).
            let factor = if dir == PackDirection::Spatial {
                factor.min(hw as u32)
            } else {
                factor
            };
            let b = if dir == PackDirection::None {
                1
            } else {
                factor as u64
            };
            // Packed slots of S = l + b_w + ceil(log2 fan_in) + 1 bits: rings up to 19 bits
            // and N = 8192 (218 bits of q) keep most packed cases under the security table.
            let (ring, n) = if b > 1 {
                (8 + (ring - 8) % 12, 8192)
            } else {
                (ring, 1u64 << logn)
            };
            // Spatial packing by b: b bands of ceil(hw / b) output rows, each with its k - 1
            // halo rows; input-channel packing: ceil(C / b) coefficient groups.
            let h_eff = if dir == PackDirection::Spatial && b > 1 {
                hw.div_ceil(b) + k - 1
            } else {
                g.h
            };
            let c_eff = if dir == PackDirection::InputChannel {
                c.div_ceil(b)
            } else {
                c
            };
            let m_slots = if dir == PackDirection::OutputChannel {
                b
            } else {
                1
            };
            // Tiles at least the kernel; h, w <= 43 so th * tw < 2048 <= N always.
            (
                Just((g, n, dir, factor, ring, wb, c_eff, m_slots, h_eff)),
                k..=h_eff,
                k..=g.w,
            )
        })
        .prop_flat_map(
            |((g, n, dir, factor, ring, wb, c_eff, m_slots, h_eff), th, tw)| {
                let c_max = c_eff.min(n / (th * tw)).min(64);
                (
                    Just((g, n, dir, factor, ring, wb, m_slots, h_eff, th, tw)),
                    1..=c_max,
                    // A tile as tall or as wide as the image may be drawn larger than it.
                    if th == h_eff { th..=th + 20 } else { th..=th },
                    if tw == g.w { tw..=tw + 20 } else { tw..=tw },
                )
            },
        )
        .prop_flat_map(
            |((g, n, dir, factor, ring, wb, m_slots, h_eff, th, tw), c_w, h_w, w_w)| {
                let m_max = (g.m / m_slots).min(n / (c_w * th * tw)).clamp(1, 16);
                (
                    Just((g, n, dir, factor, ring, wb, h_eff, th, tw, c_w, h_w, w_w)),
                    1..=m_max,
                )
            },
        )
        .prop_map(
            |((g, n, dir, factor, ring, wb, _h_eff, th, tw, c_w, h_w, w_w), m_w)| Case {
                g,
                map: LinearMapping {
                    n: RingDegree::try_new(n as i64).unwrap(),
                    tiling: Tiling { c_w, h_w, w_w, m_w },
                    packing: Packing::new(dir, factor, SlotScheme::Exact),
                },
                ring,
                wb,
                th,
                tw,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Every mapping whose geometry fits is accepted unless its modulus breaks the security
    /// table; an accepted one has the slot width, plaintext modulus and smallest ciphertext
    /// modulus of the documented formulas, worked out here independently, and accounts for
    /// every output coefficient. The same tiles in a ring too small for them are refused.
    #[test]
    fn accepted_mappings_fit_ring_slots_and_security(case in accepted_geometry()) {
        let Case { g, map, ring, wb, th, tw } = case;
        let cm = CostModel::builtin().unwrap();
        let n = map.n.as_u64();
        let Tiling { c_w, m_w, .. } = map.tiling;
        let dir = map.packing.direction;
        let b = if map.packing.is_packed() { map.packing.factor } else { 1 };
        // Slots (docs/protocol-reference.md 4.2, exact): S = l + b_w + ceil(log2 fan_in) + 1;
        // log t = b S for spatial and output-channel packing, (2b - 1) S for input
        // channels (the middle slot of the product); the weights' side (output and input
        // channels) multiplies the noise by 2^((b - 1) S).
        let s = ring + wb + ceil_lg(g.fan_in) + 1;
        let (log_t, amp) = match dir {
            _ if b == 1 => (ring, 0),
            PackDirection::Spatial => (b * s, 0),
            PackDirection::OutputChannel => (b * s, (b - 1) * s),
            PackDirection::InputChannel => ((2 * b - 1) * s, (b - 1) * s),
            _ => unreachable!(),
        };
        // Noise bound (evaluate_coeff's doc comment): log q >= log t + 2 + noise bits.
        let terms = m_w * g.fan_in;
        // The weights are the b-bit two's-complement integers (docs/protocol-reference.md 4.4).
        let bound = log_t as f64 + 2.0 + noise_bits(terms, second_moment_twos_complement(wb), amp);
        let need = bound.ceil() as u32;
        match evaluate_coeff(&g, &map, &ctx(ring, wb), &cm) {
            Ok(cost) => {
                // Ring capacity on the effective tile.
                prop_assert!(m_w * c_w * th * tw <= n);
                if b > 1 {
                    prop_assert_eq!(cost.slot_bits, s);
                    // The worst case fan_in * 2^(b_w-1) * (2^(l+1) - 2) is below 2^(S-1).
                    let worst = (g.fan_in as f64) * 2f64.powi(wb as i32 - 1) * (2f64.powi(ring as i32 + 1) - 2.0);
                    prop_assert!(worst < 2f64.powi(s as i32 - 1), "slot {s} worst {worst}");
                }
                prop_assert_eq!(cost.log_t, log_t);
                // The model chose log q (fixed_log_q is None): it meets the bound, and one
                // bit less would not; the headroom it reports is what is left over the bound,
                // under a bit.
                let q = cost.log_q as f64;
                prop_assert!(q >= bound, "log q {q} below the bound {bound}");
                prop_assert!(q - 1.0 < bound, "log q {q} is not the smallest above {bound}");
                prop_assert!((cost.headroom_bits - (q - bound)).abs() < 1e-9, "headroom {} want {}", cost.headroom_bits, q - bound);
                prop_assert!((0.0..1.0).contains(&cost.headroom_bits), "headroom {}", cost.headroom_bits);
                prop_assert!(cost.log_q <= max_log_q(n));
                // Every output lands in exactly one kept coefficient (packed: b per coefficient).
                prop_assert!(cost.kept * b as u64 >= g.out_elems());
                prop_assert!(cost.kept <= g.out_elems());
            }
            Err(Infeasible::Security(e)) => {
                prop_assert!(need > max_log_q(n), "refused at log q {need} <= {} for N = {n}: {e}", max_log_q(n));
            }
            Err(e) => prop_assert!(false, "a mapping that fits was refused: {e}"),
        }
        // The same tiles in the largest ring that cannot hold them.
        let tile = m_w * c_w * th * tw;
        if tile > 256 {
            let small = 1u64 << (63 - (tile - 1).leading_zeros());
            let mut m2 = map;
            m2.n = RingDegree::try_new(small as i64).unwrap();
            let refused = matches!(evaluate_coeff(&g, &m2, &ctx(ring, wb), &cm), Err(Infeasible::Capacity { .. }));
            prop_assert!(refused, "{tile} coefficients accepted at N = {small}");
        }
    }

    /// The search space only proposes mappings that fit the ring: M_w * C_w times the
    /// effective tile min(H_w, H') x min(W_w, W) (H' the packed height) is at most N, for
    /// every candidate of free tiling and of Cheetah's rule.
    #[test]
    fn candidates_respect_capacity(c in 1u64..200, hw in 1u64..70, m in 1u64..200, k in prop::sample::select(vec![1u64, 3]), free_tiling in any::<bool>()) {
        let g = geom(c, hw, m, k);
        let opts = SpaceOptions {
            ring_degrees: vec![RingDegree::try_new(2048).unwrap(), RingDegree::try_new(4096).unwrap()],
            max_pack_factor: 3,
            max_m_w: 16,
            free_tiling,
            pack_directions: PackDirection::ALL.to_vec(),
            schemes: SlotScheme::ALL.to_vec(),
            batch: 4,
        };
        let all = candidates(&g, &opts);
        prop_assert!(!all.is_empty());
        for map in all {
            let b = map.packing.factor as u64;
            let h_eff = if map.packing.direction == PackDirection::Spatial && b > 1 {
                hw.div_ceil(b) + k - 1
            } else {
                g.h
            };
            let t = map.tiling;
            let need = t.m_w * t.c_w * t.h_w.min(h_eff) * t.w_w.min(g.w);
            prop_assert!(need <= map.n.as_u64(), "{map:?} needs {need}");
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
        // S = l + b_w + ceil(log2 fan_in) + 1 = 12 + 2 + ceil(log2 144) + 1 = 12 + 2 + 8 + 1.
        assert_eq!(c.slot_bits, 23, "{dir:?}");
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

/// The noise bound covers the weights the verify mode draws: b-bit two's-complement
/// integers uniform over -2^(b-1)..=2^(b-1)-1 (src/verify/mod.rs server_data), whose
/// second moment is a^2/3 + 1/6 (a = 2^(b-1); [`second_moment_twos_complement`]).
///
/// At b_w = 1 (weights -1 and 0) that is 1/2, and a 1 x 1 layer with fan_in 60, M_w = 1,
/// l = 8 needs, with z = sqrt(80 ln 2) = 7.4446:
///   sigma_out = 3.2 sqrt(60 / 2) = 17.527, log2(z sigma_out) = log2(130.48) = 7.028,
///   log q >= 8 + 2 + 7.028 = 17.03, so 18 bits;
/// a second moment of 4^(b-1)/3 = 1/3 (the model's before docs/protocol-reference.md 4.4) gives sigma_out = 3.2 sqrt(20) = 14.311,
/// log2(106.54) = 6.735 and 17 bits: one bit short. With 17 bits the error may reach
/// 2^(17 - 10) = 128 = 7.303 sigma_out, a tail of exp(-7.303^2 / 2) = 2^-38.5 per
/// coefficient instead of 2^-40 (at b_w = 1 the shortfall can reach log2 sqrt(3/2) = 0.29
/// bits, a tail of 2^(-40 / 1.5) = 2^-26.7).
#[test]
fn noise_bound_covers_twos_complement_weights() {
    let cm = CostModel::builtin().unwrap();
    let g = geom(60, 4, 1, 1);
    let map = LinearMapping {
        n: RingDegree::try_new(2048).unwrap(),
        tiling: Tiling {
            c_w: 60,
            h_w: 4,
            w_w: 4,
            m_w: 1,
        },
        packing: Packing::NONE,
    };
    let cost = evaluate_coeff(&g, &map, &ctx(8, 1), &cm).unwrap();
    let bound = 8.0 + 2.0 + noise_bits(60, second_moment_twos_complement(1), 0);
    assert!((bound - 17.03).abs() < 0.01, "{bound}");
    assert!(
        cost.log_q as f64 >= bound,
        "log q {} below the bound {bound}",
        cost.log_q
    );
}

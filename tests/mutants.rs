//! Tests written against surviving cargo-mutants mutants of `src/model/nonlinear.rs` (the OT
//! cost model of the non-linear layers) and `src/ot/sizes.rs` (the exact byte and round
//! formulas of the OT protocols).
//!
//! Every expected value is worked out by hand from the formulas stated in the doc comments of
//! the functions under test (and the module docs), written as literal arithmetic with the
//! origin of each term; none is copied from the program's output. The primitive costs of
//! [`hand`] are chosen pairwise distinct and not 0, 1 or 2 where that matters, so that a
//! changed operator (`+` for `*`, `-` for `+`, ...) changes the result.

use hequant::model::nonlinear::{OtModel, Step};
use hequant::protocol::{OtCosts, ReluVariant, TruncationKind};
use hequant::workload::{Layer, LayerKind, Padding, Shape, Window};

// ---------------------------------------------------------------------------------------------
// src/model/nonlinear.rs
// ---------------------------------------------------------------------------------------------

/// Hand costs: a 1-out-of-2 COT costs 3 bits, a 1-out-of-16 OT 5, an AND triple 7; 2 messages
/// per COT, 1 round trip per OT; digits of m = 4 bits (so a leaf is 1-out-of-16).
fn hand() -> OtModel {
    OtModel {
        ot: OtCosts {
            cot_bits: 3.0,
            ot16_bits: 5.0,
            and_triple_bits: 7.0,
            messages_per_ot: 2,
            rounds_per_ot: 1,
        },
        digit_bits: 4,
        relu: ReluVariant::Exact,
        approx_relu_bits: 16,
        truncation: TruncationKind::MsbKnown,
        msb0_heuristic_shift: None,
        relu_truncation_shift: None,
    }
}

fn st(bits: f64, rounds: u32, ots: f64) -> Step {
    Step { bits, rounds, ots }
}

// Building blocks under `hand()`, each derived once here and reused below.
//
// millionaire(n): leaves = ceil(n / 4); each leaf one 1-out-of-16 OT (5 bits) plus its 2^4 = 16
// messages of 2 bits (32 bits) = 37 bits and 4 OTs (m = 4 ROTs); 2 (leaves - 1) AND triples of
// 7 bits, one OT each; rounds 1 + ceil(log2 leaves).
//
// M12 = millionaire(12): 3 leaves, 4 ANDs: 3 * 37 + 4 * 7 = 139 bits; rounds 1 + ceil(log2 3)
// = 3; OTs 3 * 4 + 4 = 16.
const M12: Step = Step {
    bits: 3.0 * 37.0 + 4.0 * 7.0,
    rounds: 1 + 2,
    ots: 3.0 * 4.0 + 4.0,
};
// M8 = millionaire(8): 2 leaves, 2 ANDs: 2 * 37 + 2 * 7 = 88; rounds 1 + 1 = 2; OTs 8 + 2 = 10.
const M8: Step = Step {
    bits: 2.0 * 37.0 + 2.0 * 7.0,
    rounds: 1 + 1,
    ots: 2.0 * 4.0 + 2.0,
};
// M4 = millionaire(4): 1 leaf, no AND: 37 bits; rounds 1 + 0; OTs 4.
const M4: Step = Step {
    bits: 37.0,
    rounds: 1,
    ots: 4.0,
};
#[test]
fn millionaire_by_hand() {
    let m = hand();
    assert_eq!(m.millionaire(12), M12);
    assert_eq!(m.millionaire(8), M8);
    assert_eq!(m.millionaire(4), M4);
    // n = 13: ceil(13 / 4) = 4 leaves, 2 * 3 = 6 ANDs: 4 * 37 + 6 * 7 = 190 bits;
    // rounds 1 + ceil(log2 4) = 3; OTs 4 * 4 + 6 = 22.
    assert_eq!(m.millionaire(13), st(4.0 * 37.0 + 6.0 * 7.0, 3, 22.0));
    // n = 1: one leaf (a partial digit still costs a whole 1-out-of-16 OT).
    assert_eq!(m.millionaire(1), M4);
    // Nothing to compare: nothing sent.
    assert_eq!(m.millionaire(0), Step::default());
    // n = 17 with rounds_per_ot = 2: 5 leaves, 8 ANDs; rounds 2 + ceil(log2 5) = 2 + 3 = 5.
    let mut m2 = hand();
    m2.ot.rounds_per_ot = 2;
    assert_eq!(
        m2.millionaire(17),
        st(5.0 * 37.0 + 8.0 * 7.0, 5, 5.0 * 4.0 + 8.0)
    );
}

#[test]
fn drelu_b2a_mux_conversions_by_hand() {
    let m = hand();
    // DReLU(l) = millionaire(l - 1).
    assert_eq!(m.drelu(13), M12);
    // Approximate: only min(l - 1, approx_relu_bits) top bits are compared.
    let mut a = hand();
    a.relu = ReluVariant::Approx;
    a.approx_relu_bits = 4;
    assert_eq!(a.drelu(13), M4);
    assert_eq!(a.drelu(5), M4);
    // B2A(18): 3 + 2 * 18 = 39 bits, 1 round, 1 OT.
    assert_eq!(m.b2a(18), st(3.0 + 36.0, 1, 1.0));
    // MUX(18): 2 * 39 = 78 bits, 1 round, 2 OTs.
    assert_eq!(m.mux(18), st(78.0, 1, 2.0));
    // ring_to_mod(p of 20 bits) and mod_to_ring(18): one COT of that many bits each.
    assert_eq!(m.ring_to_mod(20), st(3.0 + 40.0, 1, 1.0));
    assert_eq!(m.mod_to_ring(18), st(3.0 + 36.0, 1, 1.0));
}

#[test]
fn relu_compare_truncate_by_hand() {
    let m = hand();
    // ReLU(13 -> 9) = DReLU(13) + MUX(9): 139 + 42 bits, rounds 3 + 1, OTs 16 + 2.
    assert_eq!(m.relu(13, 9), st(139.0 + 42.0, 4, 18.0));
    // compare(13) = millionaire(12).
    assert_eq!(m.compare(13), M12);
    // Faithful truncation 13 -> 9: millionaire(12) + 2 * B2A(9) = 139 + 2 * 21 bits; the two
    // B2As run in parallel: rounds 3 + 1; OTs 16 + 2.
    assert_eq!(m.truncate(13, 9), st(139.0 + 42.0, 4, 18.0));
    // Fused approximate ReLU + requantization, l = 21, s = 8, l_out = 9: DReLU(13) + MUX(9) +
    // B2A(9) = 139 + 42 + 21 bits, rounds 3 + 1 + 1, OTs 16 + 2 + 1.
    assert_eq!(
        m.fused_relu_requant(21, 8, 9),
        st(139.0 + 42.0 + 21.0, 5, 19.0)
    );
}

#[test]
fn extend_and_msb_known_truncation_by_hand() {
    let m = hand();
    // Ring extension 8 -> 13: millionaire(8) + B2A(13 - 8 = 5) = 88 + (3 + 10) bits, rounds
    // 2 + 1, OTs 10 + 1.
    assert_eq!(m.extend(8, 13), st(88.0 + 13.0, 3, 11.0));
    // A reduction (or no change) is local.
    assert_eq!(m.extend(13, 8), Step::default());
    assert_eq!(m.extend(8, 8), Step::default());
    // Wrap from a known top bit: one COT (3 bits) with two 1-bit messages: 3 + 2 bits.
    assert_eq!(m.wrap_from_msb(), st(5.0, 1, 1.0));
    // truncate_msb0(12): wrap (5 bits) + B2A(12) (3 + 24 bits); rounds 1 + 1; OTs 1 + 1.
    assert_eq!(m.truncate_msb0(12), st(5.0 + 27.0, 2, 2.0));
    assert_eq!(m.truncate_msb0_heuristic(12), st(5.0 + 27.0, 2, 2.0));
}

fn shape(c: u64) -> Shape {
    Shape::new(c, 1, 1)
}

fn layer(kind: LayerKind, input: Shape, output: Shape) -> Layer {
    Layer {
        name: "x".into(),
        kind,
        inputs: vec![usize::MAX],
        input,
        output,
        bits: None,
        weight_l1: None,
    }
}

fn relu_layer(truncate: bool, relu6: bool) -> Layer {
    layer(LayerKind::Relu { truncate, relu6 }, shape(10), shape(10))
}

/// relu_layer_split of a 10-element relu layer, 13 -> 9 bits, with `kept` ReLUs computed.
fn split(m: &OtModel, l: &Layer, requant: bool, kept: u64, fuse: Option<u32>) -> (Step, Step) {
    m.relu_layer_split(l, 13, 9, requant, kept, fuse)
}

#[test]
fn relu_layer_without_truncation() {
    let m = hand();
    let l = relu_layer(false, false);
    // 4 of 10 kept: 4 ReLUs of 181 bits / 18 OTs, rounds of one ReLU (4); dropped ReLUs
    // are the identity and free; nothing truncated: the truncation part is zero.
    let (t, p) = split(&m, &l, false, 4, None);
    assert_eq!(t, st(4.0 * 181.0, 4, 4.0 * 18.0));
    assert_eq!(p, Step::default());
    // All kept.
    assert_eq!(
        split(&m, &l, false, 10, None),
        (st(10.0 * 181.0, 4, 180.0), Step::default())
    );
    // None kept: nothing sent, no round.
    assert_eq!(
        split(&m, &l, false, 0, None),
        (Step::default(), Step::default())
    );
    // A fuse shift without a requantization or truncation to fuse changes nothing.
    assert_eq!(
        split(&m, &l, false, 10, Some(8)),
        (st(10.0 * 181.0, 4, 180.0), Step::default())
    );
    // relu_layer is the total of relu_layer_split; layer() keeps every ReLU.
    assert_eq!(m.relu_layer(&l, 13, 9, false, 4, None), t);
    assert_eq!(m.layer(&l, 13, 9, false), st(10.0 * 181.0, 4, 180.0));
}

#[test]
fn relu_layer_with_msb_known_truncation_and_budget() {
    let m = hand();
    let l = relu_layer(true, false);
    // Kept ReLU: ReLU(13 -> 9) (181 bits, 4 rounds, 18 OTs) then the truncation with the sign
    // known, B2A(9) (21 bits, 1 round, 1 OT): 202 bits, 5 rounds, 19 OTs.
    // Dropped element: a truncation whose sign is not known, truncate(13, 9): 181 bits,
    // 4 rounds, 18 OTs. 4 kept, 10 - 4 = 6 dropped.
    let (t, p) = split(&m, &l, false, 4, None);
    assert_eq!(
        t,
        st(
            202.0 * 4.0 + 181.0 * 6.0,
            5, // max(5, 4), kept and dropped run in parallel
            19.0 * 4.0 + 18.0 * 6.0
        )
    );
    // The truncation part: B2A(9) of each kept ReLU and the whole truncate(13, 9) of each
    // dropped one; rounds of the kept truncation.
    assert_eq!(p, st(21.0 * 4.0 + 181.0 * 6.0, 1, 1.0 * 4.0 + 18.0 * 6.0));
    // A requantization carries the same truncation.
    assert_eq!(split(&m, &relu_layer(false, false), true, 4, None), (t, p));
    // All kept: only the kept step's rounds.
    assert_eq!(
        split(&m, &l, false, 10, None),
        (st(2020.0, 5, 190.0), st(210.0, 1, 10.0))
    );
}

#[test]
fn relu_layer_rounds_take_the_slower_of_kept_and_dropped() {
    // Approximate ReLU comparing 4 top bits: DReLU(13) = millionaire(4) (37 bits, 1 round,
    // 4 OTs). Kept: 37 + MUX(9) 42 + B2A(9) 21 = 100 bits, rounds 1 + 1 + 1 = 3, OTs 4 + 2 + 1.
    // Dropped: truncate(13, 9) is the full comparison, 181 bits, 4 rounds, 18 OTs.
    let mut m = hand();
    m.relu = ReluVariant::Approx;
    m.approx_relu_bits = 4;
    let l = relu_layer(true, false);
    // All kept: nothing dropped, rounds 3 (the dropped protocol does not run).
    assert_eq!(split(&m, &l, false, 10, None).0, st(1000.0, 3, 70.0));
    // 4 kept, 6 dropped: rounds max(3, 4) = 4.
    assert_eq!(
        split(&m, &l, false, 4, None).0,
        st(100.0 * 4.0 + 181.0 * 6.0, 4, 7.0 * 4.0 + 18.0 * 6.0)
    );
    // None kept: the dropped truncations alone.
    assert_eq!(split(&m, &l, false, 0, None).0, st(1810.0, 4, 180.0));
}

#[test]
fn relu_layer_truncation_kinds() {
    // OpenCheetah's truncate_msb0 by the fixed-point shift 12 after a ReLU carrying a
    // `truncate` flag: wrap (5 bits) + B2A(12) (27 bits) = 32 bits, 2 rounds, 2 OTs.
    // Kept: 181 + 32 bits, 4 + 2 rounds, 18 + 2 OTs.
    let mut m = hand();
    m.relu_truncation_shift = Some(12);
    let (t, p) = split(&m, &relu_layer(true, false), false, 10, None);
    assert_eq!(t, st(2130.0, 6, 200.0));
    assert_eq!(p, st(320.0, 2, 20.0));
    // A requantization is still the B2A into the l_out-bit ring (21 bits, 1 round).
    let (t, p) = split(&m, &relu_layer(false, false), true, 10, None);
    assert_eq!(t, st(2020.0, 5, 190.0));
    assert_eq!(p, st(210.0, 1, 10.0));
    // Faithful truncation (CrypTFlow2): truncate(9, 9) = millionaire(8) + 2 * B2A(9) =
    // 88 + 42 bits, rounds 2 + 1, OTs 10 + 2. Kept: 181 + 130 bits, 4 + 3 rounds, 18 + 12 OTs.
    let mut f = hand();
    f.truncation = TruncationKind::Faithful;
    let (t, p) = split(&f, &relu_layer(true, false), false, 10, None);
    assert_eq!(t, st(3110.0, 7, 300.0));
    assert_eq!(p, st(1300.0, 3, 120.0));
}

#[test]
fn relu_layer_fused_and_relu6() {
    let m = hand();
    let l = layer(
        LayerKind::Relu {
            truncate: false,
            relu6: false,
        },
        shape(10),
        shape(10),
    );
    // Fused, l = 21, s = 8, l_out = 9: kept 202 bits, 5 rounds, 19 OTs (see
    // relu_compare_truncate_by_hand); dropped: truncate(21 - 8 = 13, 9) = 181 bits, 4 rounds,
    // 18 OTs. The comparison does the truncation: the truncation part is zero.
    let (t, p) = m.relu_layer_split(&l, 21, 9, true, 4, Some(8));
    assert_eq!(t, st(202.0 * 4.0 + 181.0 * 6.0, 5, 19.0 * 4.0 + 18.0 * 6.0));
    assert_eq!(p, Step::default());
    // ReLU6 is never fused: ReLU(13 -> 9) + a second ReLU(9 -> 9) + the requantization's
    // B2A(9). ReLU(9 -> 9) = millionaire(8) + MUX(9) = 88 + 42 bits, 2 + 1 rounds, 10 + 2
    // OTs. Kept: 181 + 130 + 21 bits, 4 + 3 + 1 rounds, 18 + 12 + 1 OTs.
    let (t, p) = split(&m, &relu_layer(false, true), true, 10, Some(8));
    assert_eq!(t, st(3320.0, 8, 310.0));
    assert_eq!(p, st(210.0, 1, 10.0));
}

#[test]
fn pooling_argmax_truncate_layers_by_hand() {
    let m = hand();
    // Max-pool 3 x 3 over 6 outputs: 9 - 1 = 8 comparisons per output, each
    // compare(13) + MUX(13) = 139 + 2 * (3 + 26) = 197 bits, 3 + 1 rounds, 16 + 2 OTs;
    // a tournament of 9 values is ceil(log2 9) = 4 comparisons deep.
    let w = Window {
        kh: 3,
        kw: 3,
        sh: 1,
        sw: 1,
        pad: Padding::uniform(0),
    };
    let mp = layer(LayerKind::MaxPool { window: w }, shape(54), shape(6));
    assert_eq!(
        m.layer(&mp, 13, 13, false),
        st(197.0 * 8.0 * 6.0, 4 * 4, 18.0 * 8.0 * 6.0)
    );
    // Argmax over 10 values: 9 comparisons, each compare(13) + two MUX(13) (value and index)
    // = 139 + 58 + 58 bits, 3 + 1 + 1 rounds, 16 + 2 + 2 OTs; ceil(log2 10) = 4 deep.
    let am = layer(LayerKind::Argmax, shape(10), shape(1));
    assert_eq!(
        m.layer(&am, 13, 13, false),
        st(255.0 * 9.0, 5 * 4, 20.0 * 9.0)
    );
    // Average pooling: a local sum and a faithful truncation per output, truncate(13, 9) =
    // 181 bits, 4 rounds, 18 OTs, times 6 outputs (in parallel).
    let ap = layer(LayerKind::AvgPool { window: w }, shape(54), shape(6));
    assert_eq!(m.layer(&ap, 13, 9, false), st(181.0 * 6.0, 4, 18.0 * 6.0));
    // A truncation layer: the same faithful truncation, or, with OpenCheetah's 2025 heuristic
    // and shift 12, truncate_msb0(12) = 32 bits, 2 rounds, 2 OTs per element.
    let tr = layer(LayerKind::Truncate, shape(6), shape(6));
    assert_eq!(m.layer(&tr, 13, 9, false), st(181.0 * 6.0, 4, 18.0 * 6.0));
    let mut h = hand();
    h.msb0_heuristic_shift = Some(12);
    assert_eq!(h.layer(&tr, 13, 9, false), st(32.0 * 6.0, 2, 2.0 * 6.0));
    // A local layer costs nothing.
    let add = layer(LayerKind::Add, shape(6), shape(6));
    assert_eq!(m.layer(&add, 13, 9, false), Step::default());
}

// ---------------------------------------------------------------------------------------------
// src/ot/sizes.rs
// ---------------------------------------------------------------------------------------------
//
// Notation of the module docs: u(n) = 128 ceil(n / 8) bytes (IKNP u-matrix of n OTs),
// pk(k) = ceil(k / 8) bytes (k packed bits). Rounds: a party counts one round each time it
// receives after having sent since its previous receive, the maximum over both parties.
// Flights: the Lamport depth of the message flights (a message is one deeper than the
// deepest message its sender had received).

mod sizes {
    use hequant::ot::sizes::{self, Cost, Plan};

    fn c(a_to_b: u64, b_to_a: u64, rounds: u64, flights: u64) -> Cost {
        Cost {
            bytes_a_to_b: a_to_b,
            bytes_b_to_a: b_to_a,
            rounds,
            flights,
        }
    }

    #[test]
    fn plan_round_and_flight_rule() {
        // A alone sends: nobody receives after sending; one flight.
        assert_eq!(Plan::new().step(5, 0).cost(), c(5, 0, 0, 1));
        // A then B: A receives after having sent (1 round); B's reply is flight 2.
        assert_eq!(Plan::new().step(5, 0).step(0, 7).cost(), c(5, 7, 1, 2));
        // B then A: now B counts the round.
        assert_eq!(Plan::new().step(0, 7).step(5, 0).cost(), c(5, 7, 1, 2));
        // Both at once: one round each, one flight.
        assert_eq!(Plan::new().step(3, 4).cost(), c(3, 4, 1, 1));
        // Bytes add up over steps; an empty step (0, 0) is no message at all.
        // Steps: (3, 4) both send (flight 1, a round each); (0, 0) nothing; (2, 0): A's
        // message is flight 2 (A received B's flight 1), B does not count (it has not sent
        // since its last receive); (0, 6): flight 3, A counts its second round.
        let p = Plan::new().step(3, 4).step(0, 0).step(2, 0).step(0, 6);
        assert_eq!(p.cost(), c(3 + 2, 4 + 6, 2, 3));
        // A chain A -> B -> A -> B: A sends at 1, receives at 2 (round 1), sends at 3,
        // receives at 4 (round 2); B sends at 2, receives at 3 (round 1), then only sends:
        // max(2, 1) = 2 rounds; each message answers the previous one: 4 flights.
        let chain = Plan::new().step(1, 0).step(0, 1).step(1, 0).step(0, 1);
        assert_eq!(chain.cost(), c(2, 2, 2, 4));
        // swapped exchanges the directions (and so who counts the rounds).
        assert_eq!(chain.swapped().cost(), c(2, 2, 2, 4));
        assert_eq!(
            Plan::new().step(5, 0).step(0, 7).swapped().cost(),
            c(7, 5, 1, 2)
        );
        // then concatenates step lists.
        assert_eq!(
            Plan::new().step(5, 0).then(&Plan::new().step(0, 7)).cost(),
            c(5, 7, 1, 2)
        );
    }

    #[test]
    fn base_setup_by_hand() {
        // Step 1 one point (32 bytes) each way, step 2 128 points (4096 bytes) each way:
        // 4128 bytes each way, 2 rounds, 2 flights.
        assert_eq!(sizes::base_setup(), c(32 + 4096, 32 + 4096, 2, 2));
    }

    #[test]
    fn iknp_primitives_by_hand() {
        // n = 20 OTs: u(20) = 128 * ceil(20 / 8) = 128 * 3 = 384.
        // ROT: B sends u(20), nothing back: no round, 1 flight.
        assert_eq!(sizes::rot(20), c(0, 384, 0, 1));
        // COT of 5 bits: B sends u(20), A sends pk(20 * 5) = ceil(100 / 8) = 13.
        assert_eq!(sizes::cot(20, 5), c(13, 384, 1, 2));
        // Chosen-message OT of 5 bits: A sends pk(2 * 20 * 5) = ceil(200 / 8) = 25.
        assert_eq!(sizes::ot(20, 5), c(25, 384, 1, 2));
        // 1-out-of-8 OT (m = 3) of 2-bit messages: B sends u(20 * 3) = 128 * 8 = 1024, A sends
        // pk(20 * 2^3 * 2) = ceil(320 / 8) = 40.
        assert_eq!(sizes::nchoose1(20, 3, 2), c(40, 1024, 1, 2));
        // 20 AND triples: u(20) each way in one step.
        assert_eq!(sizes::and_triples(20), c(384, 384, 1, 1));
        // 20 AND gates: pk(2 * 20) = 5 bytes each way in one step.
        assert_eq!(sizes::and_gates(20), c(5, 5, 1, 1));
    }

    #[test]
    fn digits_and_tree_levels_by_hand() {
        // q = ceil(bits / m) digits, all of m bits but the last (most significant), which
        // holds the rest.
        assert_eq!(sizes::digits(15, 4), vec![4, 4, 4, 3]);
        assert_eq!(sizes::digits(16, 4), vec![4, 4, 4, 4]);
        assert_eq!(sizes::digits(9, 4), vec![4, 4, 1]);
        assert_eq!(sizes::digits(3, 4), vec![3]);
        assert_eq!(sizes::digits(0, 4), Vec::<u32>::new());
        // A digit size of 0 has no digits (and must not divide by zero).
        assert_eq!(sizes::digits(5, 0), Vec::<u32>::new());
        // A level of k nodes: p = floor(k / 2) pairs, 2 p - 1 ANDs, k - p nodes above.
        // q = 2: 1 pair -> [1]. q = 5: p = 2 -> 3, 3 nodes; p = 1 -> 1, 2 nodes; p = 1 -> 1.
        // q = 8: 7, then 4 nodes: 3, then 2 nodes: 1.
        assert_eq!(sizes::tree_levels(2), vec![1]);
        assert_eq!(sizes::tree_levels(5), vec![3, 1, 1]);
        assert_eq!(sizes::tree_levels(8), vec![7, 3, 1]);
        assert_eq!(sizes::tree_levels(0), Vec::<u64>::new());
    }

    /// millionaire(20, 10, 4): digits [4, 4, 2], q = 3, tree levels [1, 1], T = 2.
    /// Step 1: A sends u(T n) = u(40) = 640; B sends u(40) + u(20*4) + u(20*4) + u(20*2) =
    /// 640 + 1280 + 1280 + 640 = 3840.
    /// Step 2: A sends pk(20*16*2) + pk(20*16*2) + pk(20*4*2) = 80 + 80 + 20 = 180.
    /// Levels: and_gates(1 * 20) = pk(40) = 5 bytes each way, twice.
    /// Rounds: A sends 1, receives 1 (1); sends 2, 3, receives 3 (2); sends 4, receives 4 (3).
    /// B: sends 1, receives 1 (1); receives 2 (no send since); sends 3, receives 3 (2); 4 (3).
    /// Flights: step 1 depth 1 both; step 2 A at 2; step 3 A at 2 (it received nothing new),
    /// B at 3 (it received A's 2); step 4 A at 4 (B's 3), B at 3: 4 flights.
    const MILL_20_10: [u64; 4] = [640 + 180 + 5 + 5, 3840 + 5 + 5, 3, 4];

    fn arr(x: Cost) -> [u64; 4] {
        [x.bytes_a_to_b, x.bytes_b_to_a, x.rounds, x.flights]
    }

    #[test]
    fn millionaire_and_drelu_by_hand() {
        assert_eq!(arr(sizes::millionaire(20, 10, 4)), MILL_20_10);
        // DReLU on 11 bits = millionaire on 10.
        assert_eq!(arr(sizes::drelu(20, 11, 4)), MILL_20_10);
        // One digit (bits = 3 < m): T = 0, no triples: step 1 B sends u(20 * 3) = 128 * 8 =
        // 1024; step 2 A sends pk(20 * 2^3 * 2) = 40. B receives after sending: 1 round.
        assert_eq!(sizes::millionaire(20, 3, 4), c(40, 1024, 1, 2));
        // Nothing to compare, or nobody to compare for: nothing sent.
        assert_eq!(sizes::millionaire(20, 0, 4), Cost::default());
        assert_eq!(sizes::millionaire(0, 10, 4), Cost::default());
        assert_eq!(sizes::drelu(20, 1, 4), Cost::default());
    }

    #[test]
    fn b2a_mux_relu_by_hand() {
        // B2A: one COT of l bits: B sends u(20) = 384, A sends pk(20 * 5) = 13.
        assert_eq!(sizes::b2a(20, 5), c(13, 384, 1, 2));
        // MUX: two COTs in opposite directions in parallel: u(20) each way, then pk(100) = 13
        // each way; both parties receive after sending twice: 2 rounds, 2 flights.
        assert_eq!(sizes::mux(20, 5), c(384 + 13, 384 + 13, 2, 2));
        // ReLU(11) = millionaire(20, 10, 4) then MUX(20, 11): u(20) = 384 and pk(220) = 28
        // each way. After the millionaire (A's deepest received flight 3, B's 4), the MUX's
        // first step is A at 4, B at 5 (each party counts a round), the second A at 6, B at 5
        // (another round each): rounds 3 + 2, flights 6.
        assert_eq!(
            sizes::relu(20, 11, 4),
            c(MILL_20_10[0] + 384 + 28, MILL_20_10[1] + 384 + 28, 3 + 2, 6)
        );
    }

    #[test]
    fn conversions_and_truncations_by_hand() {
        // lift_pos 5 -> 12 bits: one COT of 12 - 5 = 7 bits: pk(20 * 7) = ceil(140 / 8) = 18.
        assert_eq!(sizes::lift_pos(20, 5, 12), c(18, 384, 1, 2));
        assert_eq!(sizes::lift_pos(20, 12, 5), Cost::default());
        assert_eq!(sizes::lift_pos(20, 5, 5), Cost::default());
        // trunc_pos by s = 5: one COT of 5 bits: pk(100) = 13; s = 0 is free.
        assert_eq!(sizes::trunc_pos(20, 16, 5), c(13, 384, 1, 2));
        assert_eq!(sizes::trunc_pos(20, 16, 0), Cost::default());
        // ring_to_mod with p = 65537: values below p need 17 bits: pk(20 * 17) = 43.
        assert_eq!(sizes::ring_to_mod(20, 65537), c(43, 384, 1, 2));
        // mod_to_ring into 5 bits: pk(100) = 13.
        assert_eq!(sizes::mod_to_ring(20, 5), c(13, 384, 1, 2));
    }

    /// millionaire(20, 5, 4): digits [4, 1], q = 2, levels [1], T = 1.
    /// Step 1: A sends u(20) = 384; B sends u(20) + u(80) + u(20) = 384 + 1280 + 384 = 2048.
    /// Step 2: A sends pk(20*16*2) + pk(20*2*2) = 80 + 10 = 90. Level: 5 bytes each way.
    /// Flights so far: A's deepest received 3 (B's level message), B's 2.
    #[test]
    fn exact_truncation_and_extension_by_hand() {
        // trunc_pos_exact(20, l = 16, s = 5): the millionaire, then B sends 2 u(20) = 768, then A
        // sends pk(20 * 5) + pk(20 * 16) = 13 + 40 = 53.
        // Rounds: A: 1 (step 1), 2 (level), and no receive after its last send: 2.
        // B: 1, 2 (level), sends 768, receives A's 53: 3. Flights: B's 768 at 3, A's 53 at 4.
        assert_eq!(
            sizes::trunc_pos_exact(20, 16, 5, 4),
            c(384 + 90 + 5 + 53, 2048 + 5 + 768, 3, 4)
        );
        assert_eq!(sizes::trunc_pos_exact(20, 16, 0, 4), Cost::default());
        assert_eq!(sizes::trunc_pos_exact(0, 16, 5, 4), Cost::default());
        // extend 5 -> 12: the same millionaire, then B2A of 7 bits: B sends u(20) = 384, A
        // sends pk(140) = 18; the same round and flight pattern.
        assert_eq!(
            sizes::extend(20, 5, 12, 4),
            c(384 + 90 + 5 + 18, 2048 + 5 + 384, 3, 4)
        );
    }

    #[test]
    fn max_tree_by_hand() {
        // max of k = 5 values for n = 2 elements, l = 5, m = 4. Levels: 5 values -> 2 pairs
        // (3 left), 1 pair (2 left), 1 pair (1 left).
        // drelu(n', 5, 4) = millionaire(n', 4, 4): one digit, B sends u(4 n'), A sends
        // pk(n' * 16 * 2). n' = 4: 256 and 16; n' = 2: 128 and 8.
        // mux(n', 5): u(n') each way, then pk(5 n') each way. n' = 4: 128, pk(20) = 3;
        // n' = 2: 128, pk(10) = 2; with the index n' doubles: n' = 8: 128, pk(40) = 5.
        let a = (16 + 128 + 3) + 2 * (8 + 128 + 2);
        let b = (256 + 128 + 3) + 2 * (128 + 128 + 2);
        let m = sizes::max(2, 5, 5, 4, false);
        assert_eq!((m.bytes_a_to_b, m.bytes_b_to_a), (a, b));
        let a = (16 + 128 + 5) + 2 * (8 + 128 + 3);
        let b = (256 + 128 + 5) + 2 * (128 + 128 + 3);
        let m = sizes::max(2, 5, 5, 4, true);
        assert_eq!((m.bytes_a_to_b, m.bytes_b_to_a), (a, b));
        // One value: nothing to compare.
        assert_eq!(sizes::max(2, 1, 5, 4, false), Cost::default());
    }
}

#[test]
fn an_extend_layer_is_a_ring_extension() {
    // An `extend` layer of 10 elements, 8 -> 13 bits: SiRNN's extension per element,
    // millionaire(8) + B2A(5) = 88 + (3 + 10) bits, 2 + 1 rounds, 10 + 1 OTs (see
    // extend_and_msb_known_truncation_by_hand), the elements in parallel. Before this test
    // the model priced it as a faithful truncation.
    let m = hand();
    let l = layer(LayerKind::Extend, shape(10), shape(10));
    assert_eq!(m.layer(&l, 8, 13, false), st(101.0 * 10.0, 3, 110.0));
}

//! Non-linear layers on OT (docs/protocol-reference.md 2.4). All costs in bits on the wire,
//! both parties' payload, per element; rounds are round trips.
//!
//! Building blocks (CrypTFlow2, CCS 2020, sections 3-4; reused by Cheetah):
//! - millionaire(n): ceil(n / m) leaves, each a 1-out-of-2^m OT with 2-bit messages
//!   (2^m of them), then 2 * (leaves - 1) AND triples; rounds 1 + ceil(log2 leaves);
//! - DReLU(l) = millionaire(l - 1) on the low l - 1 bits;
//! - MUX(l): two correlated OTs with l-bit messages;
//! - B2A(l): one correlated OT with an l-bit message;
//! - ReLU(l_in -> l_out) = DReLU(l_in) + MUX(l_out);
//! - truncation with the sign known (fused in a ReLU, Cheetah): B2A(l_out);
//!   CrypTFlow2 truncates faithfully instead (below);
//! - faithful truncation: millionaire(l_in - 1) + 2 * B2A(l_out);
//! - ring extension l_in -> l_out (SiRNN): millionaire(l_in) + B2A(l_out - l_in); a
//!   reduction to fewer bits is local;
//! - max-pool k x k: k^2 - 1 comparisons (DReLU + MUX) per output;
//! - average pooling: a local sum and a truncation per output;
//! - argmax over n: n - 1 comparisons, each moving value and index (two MUX).
//!
//! Fused approximate ReLU + requantization (opt-in, `--approx`; derived below, after the
//! local truncation of SecureML, S&P 2017, section 4.1, and Cheetah's truncation with the
//! sign known, section 4): a requantizing ReLU keeps only b_a bits of x >> s, so
//! 1. each party shifts its share right by s and keeps it mod 2^(l - s) (local, free):
//!    floor(x_0 / 2^s) + floor(x_1 / 2^s) = floor(x_u / 2^s) - c + w * 2^(l - s), where
//!    x_u is x mod 2^l, w the wrap of the shares (x_0 + x_1 >= 2^l) and c in {0, 1} the
//!    carry of the dropped low bits. Mod 2^(l - s) the wrap term vanishes, so the shares
//!    hold y = floor(x / 2^s) - c exactly: an error of at most 1 LSB (c = 1 with
//!    probability 1 - ((x mod 2^s) + 1) / 2^s for a uniform share) and no wrap error. (A
//!    local truncation kept in Z_2^l, as in SecureML, is off by 2^(l - s) with probability
//!    about |x| / 2^l; working mod 2^(l - s) avoids it.) Values with |x| < 2^s give y in
//!    {-1, 0}: output 0, as the exact requantization gives 0. One exception: for x within
//!    2^s of -2^(l-1), floor(x / 2^s) = -2^(l-s-1) and a carry c = 1 wraps the small ring
//!    to 2^(l-s-1) - 1, so the output is 2^b_a - 1 instead of 0. With the ring sized for
//!    the worst-case accumulator (|x| <= fan_in (2^a - 1) 2^(w-1) < 2^(l-1)), such x need
//!    nearly every product at its extreme (weight -2^(w-1), activation 2^a - 1); for x
//!    uniform on the ring the probability is about 2^-(l-s) / 2 (the window times the
//!    carry's 1/2);
//! 2. DReLU(l - s) on y: millionaire(l - s - 1);
//! 3. MUX(l_out) selects y into the next layer's ring; when y >= 0 its shares wrap iff
//!    either share's top bit is set (the sign is known), so one B2A(l_out) of that bit
//!    lifts it from Z_2^(l - s) to Z_2^l_out exactly (as Cheetah's MSB-known truncation).
//!
//! ReLU budgets (SNL, SENet): a relu layer keeps k of its n ReLUs; the n - k others are the
//! identity and free, except that a requantization or truncation they carried remains,
//! priced as a truncation whose sign is not known: `truncate(l_in, l_out)` (with `--approx`,
//! the local truncation of step 1, then `truncate(l - s, l_out)` to extend the signed
//! value to the next ring).

use crate::protocol::{OtCosts, ReluVariant, TruncationKind};
use crate::units::ceil_log2;
use crate::workload::{Layer, LayerKind};
use serde::Serialize;

/// Bits and round trips of one protocol step.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Step {
    pub bits: f64,
    pub rounds: u32,
    /// OTs used (for the compute estimate).
    pub ots: f64,
}

impl Step {
    fn then(self, o: Step) -> Step {
        Step {
            bits: self.bits + o.bits,
            rounds: self.rounds + o.rounds,
            ots: self.ots + o.ots,
        }
    }
    /// The same step on `k` elements in parallel (rounds do not add up).
    fn times(self, k: f64) -> Step {
        Step {
            bits: self.bits * k,
            rounds: self.rounds,
            ots: self.ots * k,
        }
    }
}

/// The OT costs and options a report uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OtModel {
    pub ot: OtCosts,
    pub digit_bits: u32,
    pub relu: ReluVariant,
    pub approx_relu_bits: u32,
    pub truncation: TruncationKind,
    /// Truncation layers of a Cheetah network priced as OpenCheetah's 2025 code runs them
    /// (`--cheetah 2025`, [`OtModel::truncate_msb0_heuristic`]) with this fixed-point shift;
    /// `None`: the faithful truncation of its 2022 code.
    pub msb0_heuristic_shift: Option<u32>,
    /// The fixed-point shift of the truncation after a ReLU of a non-quantized Cheetah
    /// network (`truncate = true`), which OpenCheetah runs as `truncate_msb0` in both code
    /// versions ([`OtModel::truncate_msb0`]); `None`: a B2A of the wrap into the whole ring.
    pub relu_truncation_shift: Option<u32>,
}

impl OtModel {
    pub fn millionaire(&self, n: u32) -> Step {
        if n == 0 {
            return Step::default();
        }
        let m = self.digit_bits;
        let leaves = n.div_ceil(m) as f64;
        let leaf_msgs = (1u64 << m) as f64 * 2.0;
        let ands = 2.0 * (leaves - 1.0);
        Step {
            bits: leaves * (self.ot.ot16_bits + leaf_msgs) + ands * self.ot.and_triple_bits,
            rounds: self.ot.rounds_per_ot + ceil_log2(leaves as u64),
            ots: leaves * m as f64 + ands,
        }
    }

    pub fn drelu(&self, l: u32) -> Step {
        let bits = match self.relu {
            ReluVariant::Exact => l.saturating_sub(1),
            ReluVariant::Approx => l.saturating_sub(1).min(self.approx_relu_bits),
        };
        self.millionaire(bits)
    }

    pub fn b2a(&self, l: u32) -> Step {
        Step {
            bits: self.ot.cot_bits + self.ot.messages_per_ot as f64 * l as f64,
            rounds: self.ot.rounds_per_ot,
            ots: 1.0,
        }
    }

    pub fn mux(&self, l: u32) -> Step {
        let b = self.b2a(l);
        Step {
            bits: 2.0 * b.bits,
            rounds: b.rounds,
            ots: 2.0,
        }
    }

    /// Shares mod 2^l of a non-negative value to shares mod a CRT component p of `bits`
    /// bits: the wrap of the shares from their top bits (the value's is 0), shared mod p by
    /// one COT of `bits` bits (`ot::arith::ring_to_mod`; docs/protocol-reference.md 4.3).
    pub fn ring_to_mod(&self, bits: u32) -> Step {
        self.b2a(bits)
    }

    /// Shares mod an odd p > 2^(l+1) of a signed l-bit value to shares mod 2^l: offset by
    /// 2^(l-1) the value lies below p / 2, so the wrap follows from which half of Z_p each
    /// share lies in, shared mod 2^l by one COT of l bits (`ot::arith::signed_mod_to_ring`;
    /// docs/protocol-reference.md 4.3).
    pub fn mod_to_ring(&self, l: u32) -> Step {
        self.b2a(l)
    }

    pub fn relu(&self, l_in: u32, l_out: u32) -> Step {
        self.drelu(l_in).then(self.mux(l_out))
    }

    /// The exact comparison of two l-bit values (the sign of their difference): a
    /// millionaire on l - 1 bits. Max-pool and argmax keep it under the approximate ReLU:
    /// OpenCheetah's 2025 code, whose ReLU compares only the top bits, sends the same max-pool
    /// and argmax bytes as its 2022 code (91.17 and 0.11 MiB on ResNet-50, docs/measured).
    pub fn compare(&self, l: u32) -> Step {
        self.millionaire(l.saturating_sub(1))
    }

    /// Ring extension of l_in-bit shares to l_out bits (SiRNN, S&P 2021; signed or
    /// unsigned alike): the wrap bit of the shares by a millionaire on l_in bits, then its
    /// B2A in Z_{2^(l_out - l_in)}. Nothing when l_out <= l_in (a reduction is local).
    pub fn extend(&self, l_in: u32, l_out: u32) -> Step {
        if l_out <= l_in {
            return Step::default();
        }
        self.millionaire(l_in).then(self.b2a(l_out - l_in))
    }

    /// The wrap bit of two shares whose value has a known top bit (OpenCheetah's
    /// `msb0_to_wrap` / `msb1_to_wrap`): one chosen-message 1-out-of-2 OT whose two messages
    /// are one bit each.
    pub fn wrap_from_msb(&self) -> Step {
        Step {
            bits: self.ot.cot_bits + 2.0,
            rounds: self.ot.rounds_per_ot,
            ots: 1.0,
        }
    }

    /// OpenCheetah's truncation by `shift` bits of a value whose top bit is known
    /// (`Truncation::truncate_msb0`): the wrap from the top bit ([`OtModel::wrap_from_msb`]),
    /// then its B2A on the `shift` bits it is multiplied into, since 2^(l - shift) * wrap
    /// mod 2^l needs only wrap mod 2^shift (docs/protocol-reference.md 2.4).
    pub fn truncate_msb0(&self, shift: u32) -> Step {
        self.wrap_from_msb().then(self.b2a(shift))
    }

    /// OpenCheetah's 2025 truncation of a value known to lie in (-2^(l-3), 2^(l-3)) (commit
    /// dc09540, 2023-09-15, `Truncation::truncate` with `apply_msb0_heuristic`; after
    /// SecureQ8, eprint 2019/131): one party adds 2^(l-3), so the top bit is 0, then
    /// [`OtModel::truncate_msb0`] (docs/protocol-reference.md 2.4).
    pub fn truncate_msb0_heuristic(&self, shift: u32) -> Step {
        self.truncate_msb0(shift)
    }

    /// The truncation after a ReLU that carries one: OpenCheetah's `truncate_msb0` by the
    /// fixed-point shift for a non-quantized Cheetah network, otherwise the protocol's own
    /// kind into the `l_out`-bit ring.
    fn relu_truncation(&self, l_out: u32, requant: bool) -> Step {
        match (self.truncation, self.relu_truncation_shift) {
            (TruncationKind::MsbKnown, Some(s)) if !requant => self.truncate_msb0(s),
            (TruncationKind::MsbKnown, _) => self.b2a(l_out),
            (TruncationKind::Faithful, _) => self.truncate(l_out, l_out),
        }
    }

    pub fn truncate(&self, l_in: u32, l_out: u32) -> Step {
        self.millionaire(l_in.saturating_sub(1))
            .then(self.b2a(l_out).times(2.0))
    }

    /// The fused approximate ReLU + requantization of one element (module docs): local
    /// truncation by `s` (free), DReLU on l_in - s bits, MUX into `l_out` bits and the
    /// B2A of the known-sign wrap bit.
    pub fn fused_relu_requant(&self, l_in: u32, s: u32, l_out: u32) -> Step {
        self.drelu(l_in.saturating_sub(s))
            .then(self.mux(l_out))
            .then(self.b2a(l_out))
    }

    /// One relu layer of which `kept` ReLUs are computed (the others are the identity,
    /// module docs); `requant`: a requantization is fused in the ReLU; `fuse_shift`: the
    /// shift s of the fused approximate protocol, when it applies.
    pub fn relu_layer(
        &self,
        layer: &Layer,
        l_in: u32,
        l_out: u32,
        requant: bool,
        kept: u64,
        fuse_shift: Option<u32>,
    ) -> Step {
        self.relu_layer_split(layer, l_in, l_out, requant, kept, fuse_shift)
            .0
    }

    /// [`OtModel::relu_layer`]'s cost, and of it the truncation that runs after the
    /// comparison (the `truncate` flag or a requantization) as a step of its own: the part
    /// OpenCheetah's log counts as truncation (docs/protocol-reference.md 2.4). The part is
    /// zero when nothing is truncated and for a fused approximate ReLU + requantization,
    /// whose comparison does the truncation.
    pub fn relu_layer_split(
        &self,
        layer: &Layer,
        l_in: u32,
        l_out: u32,
        requant: bool,
        kept: u64,
        fuse_shift: Option<u32>,
    ) -> (Step, Step) {
        let LayerKind::Relu { truncate, relu6 } = layer.kind else {
            return (self.layer(layer, l_in, l_out, requant), Step::default());
        };
        let outs = layer.output.elems();
        let kept = kept.min(outs);
        let carries = truncate || requant;
        let fused = fuse_shift.is_some() && !relu6 && carries;
        let trunc = if carries && !fused {
            self.relu_truncation(l_out, requant)
        } else {
            Step::default()
        };
        let keep = match fuse_shift {
            Some(s) if fused => self.fused_relu_requant(l_in, s, l_out),
            _ => {
                let mut s = self.relu(l_in, l_out);
                if relu6 {
                    // ReLU6 = min(max(x, 0), 6): a second comparison and multiplexer.
                    s = s.then(self.relu(l_out, l_out));
                }
                s.then(trunc)
            }
        };
        let drop = match (carries, fuse_shift) {
            (false, _) => Step::default(),
            (true, Some(s)) => self.truncate(l_in.saturating_sub(s), l_out),
            (true, None) => self.truncate(l_in, l_out),
        };
        let dropped = outs - kept;
        let total = Step {
            bits: keep.bits * kept as f64 + drop.bits * dropped as f64,
            rounds: if kept > 0 { keep.rounds } else { 0 }.max(if dropped > 0 {
                drop.rounds
            } else {
                0
            }),
            ots: keep.ots * kept as f64 + drop.ots * dropped as f64,
        };
        // A dropped ReLU (the identity) keeps only its truncation: all of it counts.
        let part = if carries && !fused {
            Step {
                bits: trunc.bits * kept as f64 + drop.bits * dropped as f64,
                rounds: trunc.rounds,
                ots: trunc.ots * kept as f64 + drop.ots * dropped as f64,
            }
        } else {
            Step::default()
        };
        (total, part)
    }

    /// One layer's cost for all its elements; `requant` adds a truncation fused in the ReLU.
    pub fn layer(&self, layer: &Layer, l_in: u32, l_out: u32, requant: bool) -> Step {
        let outs = layer.output.elems() as f64;
        match &layer.kind {
            LayerKind::Relu { .. } => {
                self.relu_layer(layer, l_in, l_out, requant, layer.output.elems(), None)
            }
            LayerKind::MaxPool { window } => {
                let cmps = (window.kh * window.kw).saturating_sub(1) as f64;
                let one = self.compare(l_in).then(self.mux(l_in));
                Step {
                    bits: one.bits * cmps * outs,
                    rounds: one.rounds * ceil_log2(window.kh * window.kw),
                    ots: one.ots * cmps * outs,
                }
            }
            LayerKind::Truncate if self.msb0_heuristic_shift.is_some() => self
                .truncate_msb0_heuristic(self.msb0_heuristic_shift.unwrap_or(0))
                .times(outs),
            LayerKind::AvgPool { .. } | LayerKind::GlobalAvgPool | LayerKind::Truncate => {
                self.truncate(l_in, l_out).times(outs)
            }
            // A ring extension written in the network file: SiRNN's extension, as the
            // planner's own ([`OtModel::extend`]).
            LayerKind::Extend => self.extend(l_in, l_out).times(outs),
            LayerKind::Argmax => {
                let n = layer.input.elems();
                let one = self.compare(l_in).then(self.mux(l_in)).then(self.mux(l_in));
                Step {
                    bits: one.bits * n.saturating_sub(1) as f64,
                    rounds: one.rounds * ceil_log2(n),
                    ots: one.ots * n.saturating_sub(1) as f64,
                }
            }
            _ => Step::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{CostModel, OtFamily};

    fn model(fam: OtFamily) -> OtModel {
        let cm = CostModel::builtin().unwrap();
        OtModel {
            ot: cm.ot_costs(fam),
            digit_bits: 4,
            relu: ReluVariant::Exact,
            approx_relu_bits: 16,
            truncation: TruncationKind::MsbKnown,
            msb0_heuristic_shift: None,
            relu_truncation_shift: None,
        }
    }

    /// Source: docs/protocol-reference.md 2.4 [measured]: Cheetah's 2022 ReLU at l = 37 costs about
    /// 60 B per element on this machine kind. Tolerance 10%.
    #[test]
    fn cheetah_relu_matches_measured_60_bytes() {
        let b = model(OtFamily::Ferret).relu(37, 37).bits / 8.0;
        assert!((54.0..=66.0).contains(&b), "{b} B");
    }

    /// Source: docs/protocol-reference.md 2.4 [measured]: SCI_HE's ReLU costs about 1000 B per element.
    /// Tolerance 10%.
    #[test]
    fn cryptflow2_relu_matches_measured_1000_bytes() {
        let b = model(OtFamily::Iknp).relu(37, 37).bits / 8.0;
        assert!((900.0..=1100.0).contains(&b), "{b} B");
    }

    /// Source: docs/protocol-reference.md 2.4 [measured]: the 2023 approximate ReLU costs about 31.5 B.
    /// Tolerance 15%.
    #[test]
    fn approximate_relu_matches_measured() {
        let mut m = model(OtFamily::Ferret);
        m.relu = ReluVariant::Approx;
        let b = m.relu(37, 37).bits / 8.0;
        assert!((26.8..=36.3).contains(&b), "{b} B");
    }

    #[test]
    fn cost_grows_with_ring_bits() {
        let m = model(OtFamily::Ferret);
        assert!(m.relu(8, 8).bits < m.relu(16, 16).bits);
        assert!(m.relu(16, 16).bits < m.relu(37, 37).bits);
    }

    /// Silent-OT costs with round numbers, for formulas worked out by hand: 1 bit per
    /// 1-out-of-2 COT, 4 per 1-out-of-16 OT, 4 per AND triple, one message per COT (the
    /// shipped calibration's cot_bits is 3.6, cost-models/primitives.toml).
    fn hand_model() -> OtModel {
        OtModel {
            ot: crate::protocol::OtCosts {
                cot_bits: 1.0,
                ot16_bits: 4.0,
                and_triple_bits: 4.0,
                messages_per_ot: 1,
                rounds_per_ot: 1,
            },
            ..model(OtFamily::Ferret)
        }
    }

    /// The fused approximate ReLU + requantization, bits written out by hand from the
    /// formulas ([`hand_model`]'s costs; digits of 4 bits):
    /// l = 21, s = 16, l_out = 18: DReLU on 5 bits = millionaire(4) = one leaf of
    /// 4 + 16 * 2 = 36 bits and no AND; MUX(18) = 2 * (1 + 18) = 38; B2A(18) = 1 + 18 = 19;
    /// total 93 bits against the exact 212 + 38 + 19 = 269 (millionaire(20): 5 leaves of 36,
    /// 8 ANDs of 4).
    /// l = 37, s = 20, l_out = 37: millionaire(16) = 4 leaves * 36 + 6 ANDs * 4 = 168,
    /// MUX(37) = 76, B2A(37) = 38: 282 bits; rounds 1 + ceil(log2 4) = 3, + 1 + 1 = 5.
    #[test]
    fn fused_approx_relu_bits_by_hand() {
        let m = hand_model();
        assert_eq!(m.fused_relu_requant(21, 16, 18).bits, 93.0);
        assert_eq!(m.relu(21, 18).then(m.b2a(18)).bits, 269.0);
        // With a calibrated shift (s = 5 at l = 18, as the end-to-end run's calibration
        // picks): millionaire(12) = 3 leaves * 36 + 4 ANDs * 4 = 124, + 38 + 19 = 181 bits.
        assert_eq!(m.fused_relu_requant(18, 5, 18).bits, 181.0);
        let s = m.fused_relu_requant(37, 20, 37);
        assert_eq!(s.bits, 282.0);
        assert_eq!(s.rounds, 5);
        // On a layer, the fused step replaces the exact one when a shift is given.
        let l = relu_layer_of(64);
        assert_eq!(
            m.relu_layer(&l, 21, 18, true, 64, Some(16)).bits,
            64.0 * 93.0
        );
        assert_eq!(m.relu_layer(&l, 21, 18, true, 64, None).bits, 64.0 * 269.0);
    }

    /// The stated error of the fused protocol, checked on the share arithmetic: shares of x
    /// mod 2^l, each shifted right by s and kept mod 2^(l - s), hold floor(x / 2^s) - c with
    /// c in {0, 1} (no share-wrap error) except at the bottom of the ring, and the
    /// known-sign lift (wrap = either top bit) is exact.
    #[test]
    fn fused_approx_error_is_at_most_one_lsb() {
        let (l, s) = (21u32, 16u32);
        let k = l - s;
        let (ml, mk) = ((1u64 << l) - 1, (1u64 << k) - 1);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut carries, mut bottom) = (0, 0);
        for _ in 0..20000 {
            let x = (next() % (1 << l)) as i64 - (1 << (l - 1));
            let x0 = next() & ml;
            let x1 = ((x as u64).wrapping_sub(x0)) & ml;
            let (y0, y1) = ((x0 >> s) & mk, (x1 >> s) & mk);
            let y = (y0 + y1) & mk;
            let y = if y >> (k - 1) == 1 {
                y as i64 - (1 << k)
            } else {
                y as i64
            };
            let exact = x.div_euclid(1 << s);
            let c = exact - y;
            if x < -(1 << (l - 1)) + (1 << s) && c == -((1 << k) - 1) {
                // The one stated exception: floor(x / 2^s) = -2^(k-1) minus the carry
                // wraps the k-bit ring to 2^(k-1) - 1 = 2^b_a - 1.
                assert_eq!(y, (1 << (k - 1)) - 1);
                bottom += 1;
                continue;
            }
            assert!(c == 0 || c == 1, "x = {x}: y = {y}, floor = {exact}");
            carries += c;
            if y >= 0 {
                let wrap = ((y0 >> (k - 1)) | (y1 >> (k - 1))) as i64;
                assert_eq!(y0 as i64 + y1 as i64 - (wrap << k), y, "lift of {x}");
            }
            let out = y.max(0);
            assert!(exact.max(0) - out <= 1 && exact.max(0) >= out);
        }
        // The carry is set about half of the time for uniform low bits.
        assert!((8000..12000).contains(&carries), "{carries}");
        // x uniform: the bottom window has probability 2^s / 2^l = 1 / 32, the carry 1/2.
        assert!((150..500).contains(&bottom), "{bottom}");
    }

    fn relu_layer_of(elems: u64) -> Layer {
        let shape = crate::workload::Shape::new(elems, 1, 1);
        Layer {
            name: "r".into(),
            kind: LayerKind::Relu {
                truncate: false,
                relu6: false,
            },
            inputs: vec![usize::MAX],
            input: shape,
            output: shape,
            bits: None,
            weight_l1: None,
        }
    }

    /// A budget of k ReLUs costs k / n of the full layer's ReLU bits (no requantization);
    /// with one, the n - k dropped elements cost a truncation without the known sign each.
    #[test]
    fn budget_prices_kept_relus_only() {
        let m = model(OtFamily::Ferret);
        let l = relu_layer_of(1000);
        let full = m.relu_layer(&l, 37, 37, false, 1000, None);
        for k in [0u64, 1, 123, 999, 1000] {
            let b = m.relu_layer(&l, 37, 37, false, k, None);
            assert!((b.bits - full.bits * k as f64 / 1000.0).abs() < 1e-6, "{k}");
        }
        assert_eq!(m.relu_layer(&l, 37, 37, false, 0, None).rounds, 0);
        let keep = m.relu(21, 18).then(m.b2a(18)).bits;
        let drop = m.truncate(21, 18).bits;
        let b = m.relu_layer(&l, 21, 18, true, 250, None).bits;
        assert_eq!(b, 250.0 * keep + 750.0 * drop);
    }
}

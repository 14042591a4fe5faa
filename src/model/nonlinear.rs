//! Non-linear layers on OT (protocol reference 2.4). All costs in bits on the wire,
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
//! - faithful truncation / extension: millionaire(l_in - 1) + 2 * B2A(l_out);
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
//!    {-1, 0}: output 0, as the exact requantization gives 0;
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

    /// Shares mod an odd t (t < 2^w) of a value to shares mod 2^l: the wrap bit
    /// [x_c + x_s >= t] = [x_c > t - 1 - x_s] by a millionaire on w bits, then its B2A into
    /// Z_{2^l}: x = x_c + x_s - t * wrap (protocol reference 4.2; CRT slots).
    pub fn crt_to_ring(&self, w: u32, l: u32) -> Step {
        self.millionaire(w).then(self.b2a(l))
    }

    pub fn relu(&self, l_in: u32, l_out: u32) -> Step {
        self.drelu(l_in).then(self.mux(l_out))
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
        let LayerKind::Relu { truncate, relu6 } = layer.kind else {
            return self.layer(layer, l_in, l_out, requant);
        };
        let outs = layer.output.elems();
        let kept = kept.min(outs);
        let carries = truncate || requant;
        let keep = match fuse_shift {
            Some(s) if !relu6 && carries => self.fused_relu_requant(l_in, s, l_out),
            _ => {
                let mut s = self.relu(l_in, l_out);
                if relu6 {
                    // ReLU6 = min(max(x, 0), 6): a second comparison and multiplexer.
                    s = s.then(self.relu(l_out, l_out));
                }
                if carries {
                    s = s.then(match self.truncation {
                        TruncationKind::MsbKnown => self.b2a(l_out),
                        TruncationKind::Faithful => self.truncate(l_out, l_out),
                    });
                }
                s
            }
        };
        let drop = match (carries, fuse_shift) {
            (false, _) => Step::default(),
            (true, Some(s)) => self.truncate(l_in.saturating_sub(s), l_out),
            (true, None) => self.truncate(l_in, l_out),
        };
        let dropped = outs - kept;
        Step {
            bits: keep.bits * kept as f64 + drop.bits * dropped as f64,
            rounds: if kept > 0 { keep.rounds } else { 0 }.max(if dropped > 0 {
                drop.rounds
            } else {
                0
            }),
            ots: keep.ots * kept as f64 + drop.ots * dropped as f64,
        }
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
                let one = self.relu(l_in, l_in);
                Step {
                    bits: one.bits * cmps * outs,
                    rounds: one.rounds * ceil_log2(window.kh * window.kw),
                    ots: one.ots * cmps * outs,
                }
            }
            LayerKind::AvgPool { .. }
            | LayerKind::GlobalAvgPool
            | LayerKind::Truncate
            | LayerKind::Extend => self.truncate(l_in, l_out).times(outs),
            LayerKind::Argmax => {
                let n = layer.input.elems();
                let one = self.drelu(l_in).then(self.mux(l_in)).then(self.mux(l_in));
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
        }
    }

    /// Source: protocol reference 2.4 [log]: Cheetah's 2022 ReLU at l = 37 costs about
    /// 60 B per element on this machine kind. Tolerance 10%.
    #[test]
    fn cheetah_relu_matches_measured_60_bytes() {
        let b = model(OtFamily::Ferret).relu(37, 37).bits / 8.0;
        assert!((54.0..=66.0).contains(&b), "{b} B");
    }

    /// Source: protocol reference 2.4 [log]: SCI_HE's ReLU costs about 1000 B per element.
    /// Tolerance 10%.
    #[test]
    fn cryptflow2_relu_matches_measured_1000_bytes() {
        let b = model(OtFamily::Iknp).relu(37, 37).bits / 8.0;
        assert!((900.0..=1100.0).contains(&b), "{b} B");
    }

    /// Source: protocol reference 2.4 [log]: the 2023 approximate ReLU costs about 31.5 B.
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
}

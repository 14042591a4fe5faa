//! Whole networks end to end: secure inference of a quantized network as two parties, the
//! linear layers by HE with the model's mappings ([`super::client::exchange`],
//! [`super::server::serve_linear`]), the non-linear ones by OT ([`crate::ot::arith`]), secret
//! shares carried from layer to layer, and the client learning the output at the end.
//!
//! The integer network that runs (and that the plaintext reference computes, step for step):
//! - the input is the client's own data, unsigned b_a-bit integers of the first linear layer;
//! - a convolution or fully connected layer computes the exact integer accumulator of signed
//!   b_w-bit weights (the server's, uniform from its CSPRNG) in its ring Z_{2^l}, l sized for
//!   the worst-case accumulator (the model's `accumulator_bits`); batch norm is folded into
//!   the convolution before it (the model's `--bn auto`);
//! - a ReLU that feeds a linear layer requantizes: y = floor(ReLU(x) / 2^s), with a public
//!   shift s per layer that the server sets from a plaintext run of its own on a calibration
//!   input of the same distribution (s = bits of the largest ReLU output there minus the next
//!   layer's b_a, at least 0: a power-of-two scale, as fixed-point inference uses). Outputs
//!   are not clamped; an activation above 2^b_a - 1 on the client's input is counted and
//!   reported, and the rings keep it exactly (the reference computes in the same rings);
//! - average pooling sums its window locally and truncates by ceil(log2 k) (an exact average
//!   for k a power of two); max-pool takes the window's maximum; an addition adds the shares
//!   locally after extending the narrower input to the wider ring;
//! - shares change rings as the model says (the next linear layer's accumulator): reduced
//!   locally when the target ring is narrower, extended (SiRNN) when it is wider.
//!
//! Protocols (all exact): ReLU = DReLU(l) + MUX(l); requantization = the exact truncation of
//! a non-negative value (millionaire on s bits for the low carry, COT for the wrap and B2A of
//! the carry); ring extension = SiRNN's (millionaire on l bits + B2A). Each step's bytes and
//! rounds are predicted by [`crate::ot::sizes`] of exactly those steps. The only inexact
//! step is the slot decoding of a packed linear layer (up to 1 LSB, as in the linear verify):
//! then the run states it and reports the output difference and the class agreement.
//!
//! Verification only (counted apart): after each step the server reveals its output share,
//! and after the last one the seed of its weights, so that the client can check every step on
//! its own reconstructed input and the whole run against the plaintext inference.

use super::client::{Exchange, Keys, exchange};
use super::otnet::TcpOt;
use super::transport::{Channel, Kind};
use super::{LayerPlan, Plan, VerifyError};
use crate::model::report::Report;
use crate::ot::sizes::{self, Plan as SizePlan};
use crate::ot::{OtChannel, OtError, OtSession, Role, arith, mask, prg};
use crate::protocol::{CostModel, Link};
use crate::workload::{CostClass, LayerKind, Network, Window};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Elements of one step at most (bounds every allocation of a run).
pub const MAX_ELEMENTS: u64 = 1 << 24;
/// Values per reveal frame.
const REVEAL_CHUNK: usize = 1 << 16;

/// What one step computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// The client's data (unsigned, `bits` bits).
    Input { bits: u32 },
    /// A layer that changes nothing (a folded batch norm, a flatten).
    Identity,
    /// A linear layer by HE: index into the linear plan.
    Linear { plan: usize },
    /// ReLU on `l_in` bits, then (when `shift` is set) the requantization by 2^shift for a
    /// next layer of `bits` activation bits; `fused`: the fused approximate ReLU +
    /// requantization (`--approx`) instead of the exact protocols.
    Relu {
        shift: Option<u32>,
        bits: Option<u32>,
        #[serde(default)]
        fused: bool,
    },
    /// Max-pool over a window of a (c, h, w) input.
    MaxPool { window: Window, shape: [u64; 3] },
    /// Average pooling (a window, or the whole image when `None`): window sum, then a
    /// truncation by `shift`.
    AvgPool {
        window: Option<Window>,
        shape: [u64; 3],
        shift: u32,
    },
    /// Element-wise addition of the inputs.
    Add,
    /// The index of the largest (signed) input, lowest index on ties: the client learns
    /// the class. The inputs are first extended by one bit so that no difference wraps.
    Argmax,
}

/// One step of the run: one layer of the network (or the input).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub op: Op,
    /// Steps whose outputs this step reads.
    pub inputs: Vec<usize>,
    /// Ring of the step's input for the protocol (its first input converted).
    pub ring_in: u32,
    /// Ring of the output shares.
    pub ring: u32,
    pub elems: u64,
    /// The output is known to be non-negative (below 2^(ring - 1)).
    pub nonneg: bool,
}

/// The whole run, as both parties build it.
#[derive(Debug, Clone)]
pub struct E2ePlan {
    pub network: String,
    pub protocol: String,
    pub bits: String,
    pub steps: Vec<Step>,
    /// The linear layers' HE plans.
    pub linear: Plan,
    /// The model's bytes (both ways) and rounds per step (0 for the input).
    pub model: Vec<(u64, u32)>,
    /// Digit size of the millionaire.
    pub m: u32,
    /// Steps whose protocol is not exact (packed slot decoding), with the reason.
    pub approximate: Vec<String>,
}

fn refuse(layer: &str, message: impl Into<String>) -> VerifyError {
    VerifyError::Layer {
        layer: layer.to_string(),
        message: message.into(),
    }
}

/// The next linear layer reached from layer `i` through free and pooling layers.
fn next_linear(net: &Network, report: &Report, i: usize) -> Option<usize> {
    let mut j = i;
    for _ in 0..net.layers.len() {
        let &c = net.consumers(j).first()?;
        let r = &report.layers[c];
        match r.class {
            CostClass::Linear => return Some(c),
            CostClass::Free => j = c,
            CostClass::NonLinear
                if matches!(
                    net.layers[c].kind,
                    LayerKind::AvgPool { .. }
                        | LayerKind::GlobalAvgPool
                        | LayerKind::MaxPool { .. }
                ) =>
            {
                j = c
            }
            CostClass::NonLinear => return None,
        }
    }
    None
}

/// Builds the end-to-end run of `net` under `report` (a quantized protocol, batch 1), with
/// the linear layers' HE plan `linear` (every linear layer of the network, none skipped).
pub fn plan(
    net: &Network,
    report: &Report,
    linear: Plan,
    cm: &CostModel,
    approx: bool,
) -> Result<E2ePlan, VerifyError> {
    if let Some(s) = linear.skipped.first() {
        return Err(refuse(
            &s.name,
            format!(
                "the end-to-end run needs every linear layer by HE: {}",
                s.reason
            ),
        ));
    }
    let first_lin = net
        .layers
        .iter()
        .zip(&report.layers)
        .position(|(_, r)| r.class == CostClass::Linear)
        .ok_or_else(|| VerifyError::Setup(format!("'{}' has no linear layer", net.name)))?;
    let first_bits = report.layers[first_lin]
        .bits
        .map(|b| b.a.get())
        .ok_or_else(|| {
            VerifyError::Setup(format!(
                "the end-to-end run needs a quantized protocol (hequant, hequant-naive, ...): under {} the layers have no bit widths to requantize to",
                report.protocol
            ))
        })?;
    let input_ring = report.layers[first_lin].ring_bits_in.max(first_bits + 1);
    let mut steps = vec![Step {
        name: "(input)".into(),
        op: Op::Input { bits: first_bits },
        inputs: Vec::new(),
        ring_in: input_ring,
        ring: input_ring,
        elems: net.input.elems(),
        nonneg: true,
    }];
    let mut model = vec![(0, 0)];
    let mut approximate = Vec::new();
    let mut lin_index = 0usize;
    let mut fused: Vec<String> = Vec::new();
    for (i, (l, r)) in net.layers.iter().zip(&report.layers).enumerate() {
        let inputs: Vec<usize> = l
            .inputs
            .iter()
            .map(|&j| if j == usize::MAX { 0 } else { j + 1 })
            .collect();
        let first = *inputs
            .first()
            .ok_or_else(|| refuse(&l.name, "a layer without input"))?;
        let elems = l.output.elems();
        if elems > MAX_ELEMENTS || l.input.elems() > MAX_ELEMENTS {
            return Err(refuse(
                &l.name,
                format!("more than {MAX_ELEMENTS} elements: beyond the end-to-end run's cap"),
            ));
        }
        let src = &steps[first];
        let (src_ring, src_nonneg) = (src.ring, src.nonneg);
        let (op, ring_in, ring, nonneg) = match (&l.kind, r.class) {
            (_, CostClass::Free) if r.note.starts_with("folded into") => {
                (Op::Identity, src_ring, src_ring, src_nonneg)
            }
            (LayerKind::Flatten, _) => (Op::Identity, src_ring, src_ring, src_nonneg),
            (LayerKind::Argmax, _) => {
                let k = l.input.elems();
                if !(2..=1 << 20).contains(&k)
                    || src_ring + 1 > 64
                    || (k as u128) >= 1u128 << src_ring
                {
                    return Err(refuse(
                        &l.name,
                        "the end-to-end run takes an argmax over 2 to 2^20 values whose index fits their ring",
                    ));
                }
                (Op::Argmax, src_ring + 1, src_ring + 1, true)
            }
            (LayerKind::Add, _) => {
                let ring = inputs.iter().map(|&j| steps[j].ring).max().unwrap_or(0);
                let nonneg = inputs.iter().all(|&j| steps[j].nonneg);
                (Op::Add, ring, ring, nonneg)
            }
            (LayerKind::BatchNorm, CostClass::Linear) => {
                return Err(refuse(
                    &l.name,
                    "a separate batch norm needs the convolution's accumulator requantized first, which the end-to-end run does not do: use --bn auto (folded)",
                ));
            }
            (_, CostClass::Linear) => {
                let lp: &LayerPlan = linear
                    .layers
                    .get(lin_index)
                    .filter(|p| p.params.name == l.name)
                    .ok_or_else(|| refuse(&l.name, "no HE plan for this linear layer"))?;
                let ring = lp.params.ring_bits;
                if ring < src_ring && !src_nonneg {
                    return Err(refuse(
                        &l.name,
                        format!(
                            "its input arrives as signed {src_ring}-bit shares and its ring has {ring} bits: that needs a requantization (a ReLU or truncation layer before it), which the network does not have"
                        ),
                    ));
                }
                if lp.packer.is_packed() {
                    approximate.push(format!(
                        "{}: packed slots ({}) decode with up to 1 LSB error per output",
                        l.name, lp.params.packing
                    ));
                }
                lin_index += 1;
                (
                    Op::Linear {
                        plan: lin_index - 1,
                    },
                    ring,
                    ring,
                    false,
                )
            }
            (
                LayerKind::Relu {
                    relu6: false,
                    truncate: false,
                },
                _,
            ) => {
                let bits = next_linear(net, report, i)
                    .and_then(|c| report.layers[c].bits)
                    .map(|b| b.a.get());
                let ring = r.ring_bits_out.max(bits.map_or(0, |b| b + 1));
                (
                    Op::Relu {
                        shift: bits.map(|_| 0),
                        bits,
                        fused: approx && bits.is_some(),
                    },
                    src_ring,
                    ring,
                    true,
                )
            }
            (LayerKind::MaxPool { window }, _) => {
                let k = window.kh * window.kw;
                if !(2..=1024).contains(&k) || src_ring < 4 || !src_nonneg {
                    return Err(refuse(
                        &l.name,
                        "the end-to-end run takes max-pools of 2 to 1024 non-negative elements on at least 4 bits",
                    ));
                }
                (
                    Op::MaxPool {
                        window: *window,
                        shape: [l.input.c, l.input.h, l.input.w],
                    },
                    src_ring,
                    r.ring_bits_out,
                    true,
                )
            }
            (LayerKind::AvgPool { .. } | LayerKind::GlobalAvgPool, _) => {
                let window = match &l.kind {
                    LayerKind::AvgPool { window } => Some(*window),
                    _ => None,
                };
                let k = window.map_or(l.input.h * l.input.w, |w| w.kh * w.kw).max(1);
                let shift = crate::units::ceil_log2(k);
                if !src_nonneg || shift + 2 > src_ring {
                    return Err(refuse(
                        &l.name,
                        "the end-to-end run averages non-negative values only (after a ReLU)",
                    ));
                }
                (
                    Op::AvgPool {
                        window,
                        shape: [l.input.c, l.input.h, l.input.w],
                        shift,
                    },
                    src_ring,
                    r.ring_bits_out,
                    true,
                )
            }
            _ => {
                return Err(refuse(
                    &l.name,
                    format!(
                        "{} layers are not run end to end yet",
                        match l.kind {
                            LayerKind::Relu { relu6: true, .. } => "ReLU6",
                            LayerKind::Relu { truncate: true, .. } => "ReLU-with-truncation",
                            _ => l.kind.name(),
                        }
                    ),
                ));
            }
        };
        if !(2..=64).contains(&ring) || !(2..=64).contains(&ring_in) {
            return Err(refuse(
                &l.name,
                format!("rings of {ring_in} -> {ring} bits: outside 2..=64"),
            ));
        }
        if let Op::Relu { fused: true, .. } = op {
            fused.push(l.name.clone());
        }
        steps.push(Step {
            name: l.name.clone(),
            op,
            inputs,
            ring_in,
            ring,
            elems,
            nonneg,
        });
        model.push((r.bytes(), r.rounds));
    }
    if !fused.is_empty() {
        approximate.push(format!(
            "fused approximate ReLU + requantization (--approx) on {} layers ({}): up to 1 LSB low per output (the dropped carry)",
            fused.len(),
            fused.join(", ")
        ));
    }
    Ok(E2ePlan {
        network: net.name.clone(),
        protocol: report.protocol.clone(),
        bits: report.bits.clone(),
        steps,
        linear,
        model,
        m: cm.primitives.digit_bits,
        approximate,
    })
}

// ---------------------------------------------------------------------------------------
// Plaintext semantics (shared by the calibration, the per-step check and the reference).

fn signed(v: u64, l: u32) -> i64 {
    let v = v & mask(l);
    if l < 64 && v >> (l - 1) & 1 == 1 {
        (v as i64)
            .wrapping_sub(1i64 << (l - 1))
            .wrapping_sub(1i64 << (l - 1))
    } else {
        v as i64
    }
}

/// Values of `from` bits into `to` bits: reduced, or extended (sign-extended if `signed_`).
fn convert(x: &[u64], from: u32, to: u32, signed_: bool) -> Vec<u64> {
    x.iter()
        .map(|&v| {
            let w = if signed_ {
                signed(v, from) as u64
            } else {
                v & mask(from)
            };
            w & mask(to)
        })
        .collect()
}

/// Window elements of every pooling output, k per output; padded positions are `None`.
pub(crate) fn windows(w: &Window, [c, h, wd]: [u64; 3]) -> Vec<Vec<Option<usize>>> {
    let Some((oh, ow)) = w.out_hw(h, wd) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity((c * oh * ow) as usize);
    for ch in 0..c {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut win = Vec::with_capacity((w.kh * w.kw) as usize);
                for ky in 0..w.kh {
                    for kx in 0..w.kw {
                        let y = (oy * w.sh + ky).checked_sub(w.pad.top).filter(|&y| y < h);
                        let x = (ox * w.sw + kx).checked_sub(w.pad.left).filter(|&x| x < wd);
                        win.push(y.zip(x).map(|(y, x)| (ch * h * wd + y * wd + x) as usize));
                    }
                }
                out.push(win);
            }
        }
    }
    out
}

fn global_windows([c, h, w]: [u64; 3]) -> Vec<Vec<Option<usize>>> {
    (0..c)
        .map(|ch| {
            (0..h * w)
                .map(|i| Some((ch * h * w + i) as usize))
                .collect()
        })
        .collect()
}

/// Local window sums of shares (or values) mod 2^l.
fn window_sums(x: &[u64], wins: &[Vec<Option<usize>>], l: u32) -> Vec<u64> {
    wins.iter()
        .map(|win| {
            win.iter()
                .flatten()
                .fold(0u64, |a, &i| a.wrapping_add(x[i]))
                & mask(l)
        })
        .collect()
}

/// Max-pool gathering: k values per output, a padded position repeating the window's first
/// element inside the image (which leaves the maximum unchanged).
pub(crate) fn gather_max(x: &[u64], wins: &[Vec<Option<usize>>]) -> Vec<u64> {
    let mut out = Vec::new();
    for win in wins {
        let first = win.iter().flatten().next().copied().unwrap_or(0);
        out.extend(win.iter().map(|p| x[p.unwrap_or(first)]));
    }
    out
}

/// The plaintext output of step `s` from its inputs' values; `weights` of its linear layer.
/// Also returns, for a requantizing ReLU, the largest ReLU output before the shift.
fn plain_step(p: &E2ePlan, s: &Step, ins: &[&[u64]], weights: &[i64]) -> (Vec<u64>, u64) {
    let (Some(&first), Some(&in0)) = (s.inputs.first(), ins.first()) else {
        return (Vec::new(), 0);
    };
    let src = &p.steps[first];
    let ins0 = in0;
    let x = convert(ins0, src.ring, s.ring_in, !src.nonneg);
    match &s.op {
        Op::Input { .. } => (ins0.to_vec(), 0),
        Op::Identity => (x, 0),
        Op::Linear { plan } => {
            let lp = &p.linear.layers[*plan];
            (
                super::encoding::reference(&lp.layer, &x, weights, &lp.share_ring(0)),
                0,
            )
        }
        Op::Relu { shift, .. } => {
            let r: Vec<u64> = x
                .iter()
                .map(|&v| signed(v, s.ring_in).max(0) as u64)
                .collect();
            let top = r.iter().copied().max().unwrap_or(0);
            let sh = shift.unwrap_or(0);
            (
                convert(
                    &r.iter().map(|v| v >> sh).collect::<Vec<_>>(),
                    s.ring_in,
                    s.ring,
                    false,
                ),
                top,
            )
        }
        Op::MaxPool { window, shape } => {
            let wins = windows(window, *shape);
            let k = (window.kh * window.kw) as usize;
            let g = gather_max(&x, &wins);
            let y: Vec<u64> = g
                .chunks(k)
                .map(|c| c.iter().map(|&v| signed(v, s.ring_in)).max().unwrap_or(0) as u64)
                .collect();
            (convert(&y, s.ring_in, s.ring, false), 0)
        }
        Op::AvgPool {
            window,
            shape,
            shift,
        } => {
            let wins = match window {
                Some(w) => windows(w, *shape),
                None => global_windows(*shape),
            };
            let y: Vec<u64> = window_sums(&x, &wins, s.ring_in)
                .iter()
                .map(|v| v >> shift)
                .collect();
            (convert(&y, s.ring_in, s.ring, false), 0)
        }
        Op::Add => {
            let mut acc = vec![0u64; s.elems as usize];
            for (&j, v) in s.inputs.iter().zip(ins) {
                let st = &p.steps[j];
                for (a, b) in acc.iter_mut().zip(convert(v, st.ring, s.ring, !st.nonneg)) {
                    *a = a.wrapping_add(b);
                }
            }
            (acc.iter().map(|v| v & mask(s.ring)).collect(), 0)
        }
        Op::Argmax => {
            let best = x
                .iter()
                .enumerate()
                .max_by_key(|(i, v)| (signed(**v, s.ring_in), std::cmp::Reverse(*i)))
                .map_or(0, |(i, _)| i as u64);
            (vec![best], 0)
        }
    }
}

/// The plaintext inference of the plan on `input`: every step's output.
fn plain_run(p: &E2ePlan, input: &[u64], weights: &[Vec<i64>]) -> Vec<Vec<u64>> {
    let mut out: Vec<Vec<u64>> = Vec::with_capacity(p.steps.len());
    for s in &p.steps {
        let y = if let Op::Input { .. } = s.op {
            input.to_vec()
        } else {
            let ins: Vec<&[u64]> = s.inputs.iter().map(|&j| out[j].as_slice()).collect();
            let w = linear_weights(s, weights);
            plain_step(p, s, &ins, w).0
        };
        out.push(y);
    }
    out
}

fn linear_weights<'a>(s: &Step, weights: &'a [Vec<i64>]) -> &'a [i64] {
    match s.op {
        Op::Linear { plan } => weights.get(plan).map_or(&[], |w| w.as_slice()),
        _ => &[],
    }
}

/// The server's calibration: the requantization shift of every requantizing ReLU from a
/// plaintext run on an input of its own.
fn calibrate(p: &mut E2ePlan, input: &[u64], weights: &[Vec<i64>]) {
    let mut out: Vec<Vec<u64>> = Vec::with_capacity(p.steps.len());
    for i in 0..p.steps.len() {
        let s = p.steps[i].clone();
        let y = if let Op::Input { .. } = s.op {
            input.to_vec()
        } else {
            let ins: Vec<&[u64]> = s.inputs.iter().map(|&j| out[j].as_slice()).collect();
            let (y0, top) = plain_step(p, &s, &ins, linear_weights(&s, weights));
            if let Op::Relu {
                bits: Some(b),
                fused,
                ..
            } = s.op
            {
                let need = 64 - top.leading_zeros();
                let sh = need.saturating_sub(b).min(s.ring_in.saturating_sub(2));
                p.steps[i].op = Op::Relu {
                    shift: Some(sh),
                    bits: Some(b),
                    fused,
                };
                let ins: Vec<&[u64]> = s.inputs.iter().map(|&j| out[j].as_slice()).collect();
                plain_step(p, &p.steps[i], &ins, &[]).0
            } else {
                y0
            }
        };
        out.push(y);
    }
}

// ---------------------------------------------------------------------------------------
// The protocol.

/// The OT steps a step runs, in order (party A = server), for the predicted sizes.
pub fn size_plan(p: &E2ePlan, s: &Step) -> SizePlan {
    let m = p.m;
    let n = s.elems;
    let mut plan = SizePlan::new();
    let conv = |from: u32, to: u32, n: u64| {
        if to > from {
            sizes::extend_plan(n, from, to, m)
        } else {
            SizePlan::new()
        }
    };
    match &s.op {
        Op::Input { .. } | Op::Identity => {}
        Op::Linear { .. } => {
            let src = &p.steps[s.inputs[0]];
            plan = conv(src.ring, s.ring_in, src.elems);
        }
        Op::Relu {
            shift: Some(sh),
            fused: true,
            ..
        } => {
            let k = s.ring_in - sh;
            plan = sizes::drelu_plan(n, k, m)
                .then(&sizes::lift_pos_plan(n, k, s.ring))
                .then(&sizes::mux_plan(n, s.ring));
        }
        Op::Relu { shift, .. } => {
            plan = sizes::relu_plan(n, s.ring_in, m);
            if let Some(sh) = shift.filter(|&x| x > 0) {
                plan = plan.then(&sizes::trunc_pos_exact_plan(n, s.ring_in, sh, m));
            }
            plan = plan.then(&conv(s.ring_in, s.ring, n));
        }
        Op::MaxPool { window, .. } => {
            plan = sizes::max_plan(n, window.kh * window.kw, s.ring_in, m, false)
                .then(&conv(s.ring_in, s.ring, n));
        }
        Op::AvgPool { shift, .. } => {
            if *shift > 0 {
                plan = sizes::trunc_pos_exact_plan(n, s.ring_in, *shift, m);
            }
            plan = plan.then(&conv(s.ring_in, s.ring, n));
        }
        Op::Add => {
            for &j in &s.inputs {
                plan = plan.then(&conv(p.steps[j].ring, s.ring, s.elems));
            }
        }
        Op::Argmax => {
            let src = &p.steps[s.inputs[0]];
            plan = conv(src.ring, s.ring_in, src.elems)
                .then(&sizes::max_plan(1, src.elems, s.ring_in, m, true));
        }
    }
    plan
}

/// Shares of `from` bits to `to` bits (this party's side of the conversion).
fn to_ring<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    x: &[u64],
    from: u32,
    to: u32,
    nonneg: bool,
    m: u32,
) -> Result<Vec<u64>, OtError> {
    if to > from {
        arith::extend(sess, ch, x, from, to, !nonneg, m)
    } else {
        Ok(x.iter().map(|&v| v & mask(to)).collect())
    }
}

/// This party's share of a linear step's input, moved into the layer's ring.
fn linear_input<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    p: &E2ePlan,
    s: &Step,
    shares: &[Vec<u64>],
) -> Result<Vec<u64>, VerifyError> {
    let src = &p.steps[s.inputs[0]];
    to_ring(
        sess,
        ch,
        &shares[s.inputs[0]],
        src.ring,
        s.ring_in,
        src.nonneg,
        p.m,
    )
    .map_err(|e| ot_err(&s.name, e))
}

/// One non-linear or free step on this party's shares of its inputs.
fn run_shares<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    p: &E2ePlan,
    s: &Step,
    ins: &[&[u64]],
) -> Result<Vec<u64>, OtError> {
    let m = p.m;
    let src = &p.steps[s.inputs[0]];
    match &s.op {
        Op::Input { .. } | Op::Linear { .. } => {
            Err(OtError::Param("not a non-linear step (internal)".into()))
        }
        Op::Identity => Ok(ins[0].to_vec()),
        Op::Argmax => {
            let x = to_ring(sess, ch, ins[0], src.ring, s.ring_in, src.nonneg, m)?;
            let (_, idx) = arith::max(sess, ch, &x, x.len(), s.ring_in, m, true)?;
            Ok(idx)
        }
        Op::Add => {
            let mut acc = vec![0u64; s.elems as usize];
            for (&j, v) in s.inputs.iter().zip(ins) {
                let st = &p.steps[j];
                let c = to_ring(sess, ch, v, st.ring, s.ring, st.nonneg, m)?;
                for (a, b) in acc.iter_mut().zip(c) {
                    *a = a.wrapping_add(b) & mask(s.ring);
                }
            }
            Ok(acc)
        }
        Op::Relu {
            shift: Some(sh),
            fused: true,
            ..
        } => {
            // The fused approximate ReLU + requantization (src/model/nonlinear.rs): each
            // party shifts its share and keeps it mod 2^k (k = l - s, local), DReLU on k
            // bits, the known-sign lift into the output ring, then the MUX.
            let k = s.ring_in - sh;
            let y: Vec<u64> = convert(ins[0], src.ring, s.ring_in, false)
                .iter()
                .map(|&v| (v >> sh) & mask(k))
                .collect();
            let d = arith::drelu(sess, ch, &y, k, m)?;
            let lifted = if s.ring > k {
                arith::lift_pos(sess, ch, &y, k, s.ring)?
            } else {
                y.iter().map(|&v| v & mask(s.ring)).collect()
            };
            arith::mux(sess, ch, &d, &lifted, s.ring)
        }
        Op::Relu { shift, .. } => {
            let x = convert(ins[0], src.ring, s.ring_in, false);
            let mut y = arith::relu(sess, ch, &x, s.ring_in, m)?;
            if let Some(sh) = shift.filter(|&v| v > 0) {
                y = arith::trunc_pos_exact(sess, ch, &y, s.ring_in, sh, m)?;
            }
            to_ring(sess, ch, &y, s.ring_in, s.ring, true, m)
        }
        Op::MaxPool { window, shape } => {
            let wins = windows(window, *shape);
            let g = gather_max(ins[0], &wins);
            let k = (window.kh * window.kw) as usize;
            let (y, _) = arith::max(sess, ch, &g, k, s.ring_in, m, false)?;
            to_ring(sess, ch, &y, s.ring_in, s.ring, true, m)
        }
        Op::AvgPool {
            window,
            shape,
            shift,
        } => {
            let wins = match window {
                Some(w) => windows(w, *shape),
                None => global_windows(*shape),
            };
            let mut y = window_sums(ins[0], &wins, s.ring_in);
            if *shift > 0 {
                y = arith::trunc_pos_exact(sess, ch, &y, s.ring_in, *shift, m)?;
            }
            to_ring(sess, ch, &y, s.ring_in, s.ring, true, m)
        }
    }
}

/// The client's opening message: the run, step by step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Hello {
    network: String,
    protocol: String,
    bits: String,
    steps: Vec<(String, String, u32, u32, u64)>,
}

impl Hello {
    fn of(p: &E2ePlan) -> Hello {
        Hello {
            network: p.network.clone(),
            protocol: p.protocol.clone(),
            bits: p.bits.clone(),
            steps: p
                .steps
                .iter()
                .map(|s| {
                    (
                        s.name.clone(),
                        format!("{:?}", s.op),
                        s.ring_in,
                        s.ring,
                        s.elems,
                    )
                })
                .collect(),
        }
    }
}

/// The server's answer: the public requantization shifts of its calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Ack {
    shifts: Vec<Option<u32>>,
}

/// What the server reveals at the end (verification only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FinalReveal {
    /// Seed of the server's weights (hex).
    weight_seed: String,
    /// Server seconds per step on the client's data (linear layers: HE compute).
    server_s: Vec<f64>,
}

fn apply_shifts(p: &mut E2ePlan, shifts: &[Option<u32>]) -> Result<(), VerifyError> {
    if shifts.len() != p.steps.len() {
        return Err(VerifyError::Mismatch(format!(
            "the server sent {} requantization shifts for {} steps",
            shifts.len(),
            p.steps.len()
        )));
    }
    for (s, &sh) in p.steps.iter_mut().zip(shifts) {
        if let Op::Relu { shift, bits, .. } = &mut s.op {
            match (sh, *bits) {
                (Some(v), Some(_)) if v + 2 <= s.ring_in => *shift = Some(v),
                (None, None) => {}
                _ => {
                    return Err(VerifyError::Mismatch(format!(
                        "step '{}': requantization shift {sh:?} does not fit its {}-bit ring",
                        s.name, s.ring_in
                    )));
                }
            }
        } else if sh.is_some() {
            return Err(VerifyError::Mismatch(format!(
                "step '{}' is not a requantizing ReLU but got a shift",
                s.name
            )));
        }
    }
    Ok(())
}

fn shifts_of(p: &E2ePlan) -> Vec<Option<u32>> {
    p.steps
        .iter()
        .map(|s| match s.op {
            Op::Relu { shift, .. } => shift,
            _ => None,
        })
        .collect()
}

/// The weights of every linear layer from the server's weight seed (signed b_w-bit,
/// uniform, ChaCha20).
fn weights_from_seed(p: &E2ePlan, seed: [u8; 32]) -> Vec<Vec<i64>> {
    let mut g = ChaCha20Rng::from_seed(seed);
    p.linear
        .layers
        .iter()
        .map(|lp| {
            let wb = lp.params.weight_bits.clamp(1, 63);
            let count = super::encoding::weight_count(&lp.layer).unwrap_or(0);
            let half = 1i64 << (wb - 1);
            (0..count)
                .map(|_| (g.next_u64() >> (64 - wb)) as i64 - half)
                .collect()
        })
        .collect()
}

fn random_input(g: &mut ChaCha20Rng, n: u64, bits: u32) -> Vec<u64> {
    (0..n).map(|_| g.next_u64() & mask(bits)).collect()
}

fn ot_err(layer: &str, e: OtError) -> VerifyError {
    VerifyError::Layer {
        layer: layer.to_string(),
        message: format!("OT: {e}"),
    }
}

/// Flip bit 0 of the server's output share of one element of a step (mutation testing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct E2eFault {
    pub step: String,
    pub element: usize,
}

fn send_shares(ch: &mut Channel<TcpStream>, name: &str, y: &[u64]) -> Result<(), VerifyError> {
    for c in y.chunks(REVEAL_CHUNK) {
        let b: Vec<u8> = c.iter().flat_map(|v| v.to_le_bytes()).collect();
        ch.send(Kind::Reveal, &b)
            .map_err(VerifyError::frame(name, "revealing the server's share"))?;
    }
    if y.is_empty() {
        ch.send(Kind::Reveal, &[])
            .map_err(VerifyError::frame(name, "revealing the server's share"))?;
    }
    Ok(())
}

fn recv_shares(ch: &mut Channel<TcpStream>, name: &str, n: usize) -> Result<Vec<u64>, VerifyError> {
    let mut out = Vec::with_capacity(n);
    let frames = n.div_ceil(REVEAL_CHUNK).max(1);
    for k in 0..frames {
        let b = ch
            .recv(Kind::Reveal)
            .map_err(VerifyError::frame(name, "reading the server's share"))?;
        let want = REVEAL_CHUNK.min(n - k * REVEAL_CHUNK) * 8;
        if b.len() != want {
            return Err(refuse(
                name,
                format!(
                    "the server's share frame has {} bytes, expected {want}",
                    b.len()
                ),
            ));
        }
        out.extend(
            b.chunks(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))),
        );
    }
    Ok(out)
}

/// The server party.
pub fn serve(
    he_stream: TcpStream,
    ot_stream: TcpStream,
    plan: &E2ePlan,
    timeout: Duration,
    fault: Option<&E2eFault>,
) -> Result<(), VerifyError> {
    let mut p = plan.clone();
    he_stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| VerifyError::Setup(format!("socket: {e}")))?;
    let mut ch = Channel::new(he_stream);
    let hello = ch.recv(Kind::Hello).map_err(VerifyError::frame(
        "(handshake)",
        "reading the client's hello",
    ))?;
    let theirs: Hello = serde_json::from_slice(&hello)
        .map_err(|e| VerifyError::Mismatch(format!("the client's hello is not valid: {e}")))?;
    if theirs != Hello::of(&p) {
        let msg = "the client's end-to-end run differs from the server's (network, protocol, bits or steps)";
        let _ = ch.send(Kind::Abort, msg.as_bytes());
        return Err(VerifyError::Mismatch(msg.into()));
    }
    let mut os = prg::os_rng().map_err(|e| ot_err("server randomness", e))?;
    let mut weight_seed = [0u8; 32];
    os.fill_bytes(&mut weight_seed);
    let weights = weights_from_seed(&p, weight_seed);
    let bits = match p.steps[0].op {
        Op::Input { bits } => bits,
        _ => 8,
    };
    let calib = random_input(&mut os, p.steps[0].elems, bits);
    calibrate(&mut p, &calib, &weights);
    let ack = serde_json::to_vec(&Ack {
        shifts: shifts_of(&p),
    })
    .map_err(|e| VerifyError::Setup(e.to_string()))?;
    ch.send(Kind::HelloAck, &ack).map_err(VerifyError::frame(
        "(handshake)",
        "sending the acknowledgement",
    ))?;
    ch.flush()
        .map_err(VerifyError::frame("(handshake)", "flushing"))?;
    let mut ot = TcpOt::new(ot_stream, timeout).map_err(|e| ot_err("OT channel", e))?;
    let mut sess = OtSession::setup(&mut ot, Role::A).map_err(|e| ot_err("base OT setup", e))?;
    let mut shares: Vec<Vec<u64>> = Vec::with_capacity(p.steps.len());
    let mut server_s = Vec::with_capacity(p.steps.len());
    for s in &p.steps {
        let t = Instant::now();
        let mut y = match &s.op {
            // The client's own data: the server's share is zero.
            Op::Input { .. } => vec![0u64; s.elems as usize],
            Op::Linear { plan } => {
                let lp = &p.linear.layers[*plan];
                let x = linear_input(&mut sess, &mut ot, &p, s, &shares)?;
                let mut seed = [0u8; 16];
                os.fill_bytes(&mut seed);
                let mut data =
                    super::server_data(u128::from_le_bytes(seed), lp, super::DataMode::Random);
                data.weights = weights[*plan].clone();
                data.x_s = if lp.params.client_input_bits.is_some() {
                    vec![0; x.len()]
                } else {
                    x
                };
                super::server::serve_linear(&mut ch, lp, &data, None, true)?;
                lp.real_shares(&data.mask, true)
            }
            _ => {
                let ins: Vec<&[u64]> = s.inputs.iter().map(|&j| shares[j].as_slice()).collect();
                run_shares(&mut sess, &mut ot, &p, s, &ins).map_err(|e| ot_err(&s.name, e))?
            }
        };
        server_s.push(t.elapsed().as_secs_f64());
        if let Some(f) = fault.filter(|f| f.step == s.name)
            && let Some(v) = y.get_mut(f.element)
        {
            *v ^= 1;
        }
        send_shares(&mut ch, &s.name, &y)?;
        ch.flush()
            .map_err(VerifyError::frame(&s.name, "flushing"))?;
        shares.push(y);
    }
    // The client learns the output: the server's share of the last step.
    let last = p.steps.len() - 1;
    ot.send_msg(&prg::pack(&shares[last], p.steps[last].ring))
        .map_err(|e| ot_err("(output)", e))?;
    let fin = serde_json::to_vec(&FinalReveal {
        weight_seed: weight_seed.iter().map(|b| format!("{b:02x}")).collect(),
        server_s,
    })
    .map_err(|e| VerifyError::Setup(e.to_string()))?;
    ch.send(Kind::Reveal, &fin)
        .map_err(VerifyError::frame("(end)", "sending the weight seed"))?;
    ch.flush()
        .map_err(VerifyError::frame("(end)", "flushing"))?;
    ot.finish().map_err(|e| ot_err("closing", e))?;
    Ok(())
}

/// Measured against predicted, for one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepResult {
    pub name: String,
    pub what: String,
    pub elems: u64,
    pub ring_in: u32,
    pub ring: u32,
    /// The step's output equals its plaintext function of its reconstructed input (within
    /// `tolerance`).
    pub correct: bool,
    pub mismatches: u64,
    /// Outputs that differ from the exact value at all (within the tolerance or not).
    pub inexact: u64,
    pub tolerance: u64,
    /// Bytes both ways: predicted (HE: the model's sizes; OT: `ot::sizes`), measured (HE:
    /// ciphertext payloads; OT: payloads), and the model's figure for the layer.
    pub predicted_bytes: u64,
    pub measured_bytes: u64,
    pub model_bytes: u64,
    pub predicted_rounds: u64,
    pub measured_rounds: u64,
    pub model_rounds: u32,
    pub predicted_s: f64,
    pub measured_s: f64,
}

/// The result of an end-to-end run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct E2eReport {
    pub network: String,
    pub protocol: String,
    pub bits: String,
    pub link: String,
    pub steps: Vec<StepResult>,
    /// Every step correct on its own input.
    pub steps_ok: bool,
    /// The output the client learnt equals the plaintext inference's, element for element.
    pub output_exact: bool,
    pub output_elems: u64,
    pub output_differ: u64,
    pub output_max_abs_diff: u64,
    /// Largest output (argmax of the signed output) of the run and of the plaintext.
    pub class: usize,
    pub plaintext_class: usize,
    /// Requantized activations above 2^b_a - 1 in the plaintext inference (unclamped).
    pub activation_overflows: u64,
    pub approximate: Vec<String>,
    pub shifts: Vec<(String, u32)>,
    pub setup_bytes: u64,
    /// Parameters below 128-bit security were accepted (`--allow-insecure`).
    pub insecure: bool,
    pub predicted_bytes: u64,
    pub measured_bytes: u64,
    pub model_bytes: u64,
    pub predicted_s: f64,
    pub measured_s: f64,
    pub ok: bool,
}

fn describe(p: &E2ePlan, s: &Step) -> String {
    let src = p.steps.get(s.inputs.first().copied().unwrap_or(0));
    let conv = |from: u32, to: u32| {
        if to > from {
            format!(" + ext {from}->{to}")
        } else if to < from {
            format!(" mod 2^{to}")
        } else {
            String::new()
        }
    };
    match &s.op {
        Op::Input { bits } => format!("client data, {bits} bits"),
        Op::Identity => "identity".into(),
        Op::Linear { plan } => {
            let lp = &p.linear.layers[*plan];
            let c = src.map_or(String::new(), |x| conv(x.ring, s.ring_in));
            format!(
                "HE N={} {}{}{}",
                lp.params.n,
                lp.params.tiling,
                if lp.packer.is_packed() {
                    format!(" {}", lp.params.packing)
                } else {
                    String::new()
                },
                c
            )
        }
        Op::Relu {
            shift: Some(sh),
            fused: true,
            ..
        } => format!(
            "fused approx ReLU({}) of x>>{sh}{}",
            s.ring_in - sh,
            if s.ring > s.ring_in - sh {
                format!(" + lift {}->{}", s.ring_in - sh, s.ring)
            } else {
                String::new()
            }
        ),
        Op::Relu { shift, .. } => format!(
            "ReLU({}){}{}",
            s.ring_in,
            shift
                .filter(|&v| v > 0)
                .map_or(String::new(), |v| format!(" >>{v}")),
            conv(s.ring_in, s.ring)
        ),
        Op::MaxPool { window, .. } => format!(
            "max of {}{}",
            window.kh * window.kw,
            conv(s.ring_in, s.ring)
        ),
        Op::AvgPool { shift, .. } => format!("sum >>{shift}{}", conv(s.ring_in, s.ring)),
        Op::Argmax => format!(
            "argmax of {} (ext {}->{})",
            src.map_or(0, |x| x.elems),
            s.ring_in - 1,
            s.ring_in
        ),
        Op::Add => {
            let ext: Vec<String> = s
                .inputs
                .iter()
                .filter(|&&j| p.steps[j].ring < s.ring)
                .map(|&j| format!("ext {}->{} of {}", p.steps[j].ring, s.ring, p.steps[j].name))
                .collect();
            if ext.is_empty() {
                "add".into()
            } else {
                format!("add after {}", ext.join(", "))
            }
        }
    }
}

/// The client party: runs the network on a random input of its own, then checks.
pub fn run_client(
    he_stream: TcpStream,
    ot_stream: TcpStream,
    plan: &E2ePlan,
    link: &Link,
    cm: &CostModel,
    timeout: Duration,
    progress: &dyn Fn(&str),
) -> Result<E2eReport, VerifyError> {
    let mut p = plan.clone();
    he_stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| VerifyError::Setup(format!("socket: {e}")))?;
    let mut ch = Channel::new(he_stream);
    let hello =
        serde_json::to_vec(&Hello::of(&p)).map_err(|e| VerifyError::Setup(e.to_string()))?;
    ch.send(Kind::Hello, &hello)
        .map_err(VerifyError::frame("(handshake)", "sending the hello"))?;
    ch.flush()
        .map_err(VerifyError::frame("(handshake)", "flushing"))?;
    let ack = ch.recv(Kind::HelloAck).map_err(VerifyError::frame(
        "(handshake)",
        "waiting for the server's acknowledgement",
    ))?;
    let ack: Ack = serde_json::from_slice(&ack).map_err(|e| {
        VerifyError::Mismatch(format!("the server's acknowledgement is not valid: {e}"))
    })?;
    apply_shifts(&mut p, &ack.shifts)?;
    let mut ot = TcpOt::new(ot_stream, timeout).map_err(|e| ot_err("OT channel", e))?;
    let mut sess = OtSession::setup(&mut ot, Role::B).map_err(|e| ot_err("base OT setup", e))?;
    let setup = ot.counters;
    let mut g = prg::os_rng().map_err(|e| ot_err("client randomness", e))?;
    let bits = match p.steps[0].op {
        Op::Input { bits } => bits,
        _ => 8,
    };
    let input = random_input(&mut g, p.steps[0].elems, bits);
    let mut keys = Keys::default();
    let mut mine: Vec<Vec<u64>> = Vec::with_capacity(p.steps.len());
    let mut theirs: Vec<Vec<u64>> = Vec::with_capacity(p.steps.len());
    // Per step: measured bytes, rounds, seconds; predicted bytes, rounds, seconds.
    let mut meas = Vec::with_capacity(p.steps.len());
    let total = p.steps.len();
    for (i, s) in p.steps.iter().enumerate() {
        let before = ot.counters;
        let t = Instant::now();
        let mut he_bytes = 0u64;
        let mut he_pred = 0u64;
        let mut he_pred_s = 0.0;
        let y = match &s.op {
            Op::Input { .. } => input.clone(),
            Op::Linear { plan } => {
                let lp = &p.linear.layers[*plan];
                let x = linear_input(&mut sess, &mut ot, &p, s, &mine)?;
                let Exchange {
                    y, payload_bytes, ..
                } = exchange(&mut ch, lp, &x, &mut keys)?;
                he_bytes = payload_bytes;
                he_pred = lp.cost.bytes_in + lp.cost.bytes_out;
                he_pred_s = lp.predicted_s;
                lp.real_shares(&y, false)
            }
            _ => {
                let ins: Vec<&[u64]> = s.inputs.iter().map(|&j| mine[j].as_slice()).collect();
                run_shares(&mut sess, &mut ot, &p, s, &ins).map_err(|e| ot_err(&s.name, e))?
            }
        };
        let secs = t.elapsed().as_secs_f64();
        let after = ot.counters;
        let theirs_y = recv_shares(&mut ch, &s.name, y.len())?;
        // The reveal is not part of the protocol: the rounds restart from `after`.
        ot.counters.rounds = after.rounds;
        let ot_bytes = (after.payload_sent - before.payload_sent)
            + (after.payload_received - before.payload_received);
        let pred = size_plan(&p, s).cost();
        let ot_pred = pred.bytes_a_to_b + pred.bytes_b_to_a;
        let compute = ot_pred as f64 * 8.0 * cm.compute.ot_ns_per_bit * 1e-9;
        let pred_s = he_pred_s
            + if ot_pred > 0 {
                crate::model::step_latency(link, ot_pred, pred.rounds as u32, compute)
            } else {
                0.0
            };
        let linear = matches!(s.op, Op::Linear { .. });
        meas.push((
            he_bytes + ot_bytes,
            after.rounds - before.rounds + u64::from(linear),
            secs,
            he_pred + ot_pred,
            pred.rounds + u64::from(linear),
            pred_s,
        ));
        if i > 0 {
            progress(&format!(
                "[{i}/{}] {}: {} ({} elements): {} B in {:.2} s",
                total - 1,
                s.name,
                describe(&p, s),
                s.elems,
                he_bytes + ot_bytes,
                secs
            ));
        }
        mine.push(y);
        theirs.push(theirs_y);
    }
    // The client learns the output from the server's share of the last step.
    let last = p.steps.len() - 1;
    let l_out = p.steps[last].ring;
    let n_out = mine[last].len();
    let before = ot.counters;
    let t = Instant::now();
    let out_len = (n_out as u64 * l_out as u64).div_ceil(8) as usize;
    let b = ot
        .recv_msg(out_len, "the server's share of the output")
        .map_err(|e| ot_err("(output)", e))?;
    let server_out = prg::unpack(&b, n_out, l_out, "the server's share of the output")
        .map_err(|e| ot_err("(output)", e))?;
    let output: Vec<u64> = mine[last]
        .iter()
        .zip(&server_out)
        .map(|(a, b)| a.wrapping_add(*b) & mask(l_out))
        .collect();
    let out_secs = t.elapsed().as_secs_f64();
    let out_bytes = ot.counters.payload_received - before.payload_received;
    let fin = ch
        .recv(Kind::Reveal)
        .map_err(VerifyError::frame("(end)", "reading the weight seed"))?;
    let fin: FinalReveal = serde_json::from_slice(&fin)
        .map_err(|e| VerifyError::Mismatch(format!("the final reveal is not valid: {e}")))?;
    let seed_bytes: Vec<u8> = (0..fin.weight_seed.len() / 2)
        .filter_map(|i| u8::from_str_radix(fin.weight_seed.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    let seed: [u8; 32] = seed_bytes
        .try_into()
        .map_err(|_| VerifyError::Mismatch("the revealed weight seed is not 32 bytes".into()))?;
    ot.finish().map_err(|e| ot_err("closing", e))?;
    let weights = weights_from_seed(&p, seed);
    // Reconstruct every step, check each on its own reconstructed inputs.
    let recon: Vec<Vec<u64>> = p
        .steps
        .iter()
        .zip(mine.iter().zip(&theirs))
        .map(|(s, (a, b))| {
            a.iter()
                .zip(b)
                .map(|(x, y)| x.wrapping_add(*y) & mask(s.ring))
                .collect()
        })
        .collect();
    let mut steps = Vec::new();
    for (i, s) in p.steps.iter().enumerate().skip(1) {
        let ins: Vec<&[u64]> = s.inputs.iter().map(|&j| recon[j].as_slice()).collect();
        let (want, _) = plain_step(&p, s, &ins, linear_weights(s, &weights));
        let tolerance = match s.op {
            Op::Linear { plan } => u64::from(p.linear.layers[plan].packer.is_packed()),
            Op::Relu { fused: true, .. } => 1,
            _ => 0,
        };
        let ml = mask(s.ring);
        let mut mismatches = (want.len() as u64).abs_diff(recon[i].len() as u64);
        let mut inexact = 0u64;
        for (a, b) in recon[i].iter().zip(&want) {
            let d = a.wrapping_sub(*b) & ml;
            if d != 0 {
                inexact += 1;
            }
            if d.min(ml - d + 1) > tolerance {
                mismatches += 1;
            }
        }
        let (mb, mr, ms, pb, pr, ps) = meas[i];
        let (model_bytes, model_rounds) = p.model[i];
        steps.push(StepResult {
            name: s.name.clone(),
            what: describe(&p, s),
            elems: s.elems,
            ring_in: s.ring_in,
            ring: s.ring,
            correct: mismatches == 0,
            mismatches,
            inexact,
            tolerance,
            predicted_bytes: pb,
            measured_bytes: mb,
            model_bytes,
            predicted_rounds: pr,
            measured_rounds: mr,
            model_rounds,
            predicted_s: ps,
            measured_s: ms,
        });
    }
    steps.push(StepResult {
        name: "(output)".into(),
        what: "server's output share to the client (one message)".into(),
        elems: n_out as u64,
        ring_in: l_out,
        ring: l_out,
        correct: output == recon[last],
        mismatches: output
            .iter()
            .zip(&recon[last])
            .filter(|(a, b)| a != b)
            .count() as u64,
        inexact: 0,
        tolerance: 0,
        predicted_bytes: out_len as u64,
        measured_bytes: out_bytes,
        model_bytes: 0,
        predicted_rounds: 0,
        measured_rounds: 0,
        model_rounds: 0,
        predicted_s: crate::model::step_latency(link, out_len as u64, 0, 0.0) + link.rtt_s / 2.0,
        measured_s: out_secs,
    });
    // The plaintext inference on the same input.
    let plain = plain_run(&p, &input, &weights);
    let (got, want) = (&output, &plain[last]);
    let mut differ = 0u64;
    let mut max_diff = 0u64;
    for (a, b) in got.iter().zip(want) {
        let d = signed(*a, l_out).abs_diff(signed(*b, l_out));
        if d > 0 {
            differ += 1;
            max_diff = max_diff.max(d);
        }
    }
    let argmax = |v: &[u64]| {
        v.iter()
            .enumerate()
            .max_by_key(|(i, x)| (signed(**x, l_out), std::cmp::Reverse(*i)))
            .map_or(0, |(i, _)| i)
    };
    let mut overflows = 0u64;
    for (s, v) in p.steps.iter().zip(&plain) {
        if let Op::Relu { bits: Some(b), .. } = s.op {
            overflows += v.iter().filter(|&&x| x >> b != 0).count() as u64;
        }
    }
    let last_is_argmax = matches!(p.steps[last].op, Op::Argmax);
    let steps_ok = steps.iter().all(|s| s.correct);
    let output_exact = differ == 0 && got.len() == want.len();
    let ok = steps_ok && (output_exact || !p.approximate.is_empty());
    Ok(E2eReport {
        network: p.network.clone(),
        protocol: p.protocol.clone(),
        bits: p.bits.clone(),
        link: p.linear.link.clone(),
        steps_ok,
        output_exact,
        output_elems: got.len() as u64,
        output_differ: differ,
        output_max_abs_diff: max_diff,
        class: if last_is_argmax {
            got.first().map_or(0, |&v| v as usize)
        } else {
            argmax(got)
        },
        plaintext_class: if last_is_argmax {
            want.first().map_or(0, |&v| v as usize)
        } else {
            argmax(want)
        },
        activation_overflows: overflows,
        approximate: p.approximate.clone(),
        shifts: p
            .steps
            .iter()
            .filter_map(|s| match s.op {
                Op::Relu { shift: Some(v), .. } => Some((s.name.clone(), v)),
                _ => None,
            })
            .collect(),
        setup_bytes: setup.payload_sent + setup.payload_received,
        insecure: p.linear.insecure,
        predicted_bytes: steps.iter().map(|s| s.predicted_bytes).sum(),
        measured_bytes: steps.iter().map(|s| s.measured_bytes).sum(),
        model_bytes: steps.iter().map(|s| s.model_bytes).sum(),
        predicted_s: steps.iter().map(|s| s.predicted_s).sum(),
        measured_s: steps.iter().map(|s| s.measured_s).sum(),
        steps,
        ok,
    })
}

/// Both parties as threads of this process over two loopback TCP connections (one for the
/// HE messages, one for the OT messages).
pub fn run_local(
    p: &E2ePlan,
    link: &Link,
    cm: &CostModel,
    timeout: Duration,
    fault: Option<&E2eFault>,
    progress: &dyn Fn(&str),
) -> Result<E2eReport, VerifyError> {
    super::loopback_with(
        accept_pair,
        connect_pair,
        |(he, ot)| serve(he, ot, p, timeout, fault),
        |(he, ot)| run_client(he, ot, p, link, cm, timeout, progress),
    )
}

/// The server's two connections, HE first.
pub fn accept_pair(
    listener: &std::net::TcpListener,
) -> Result<(TcpStream, TcpStream), VerifyError> {
    let one = || super::accept(listener, super::DEFAULT_TIMEOUT).map(|(s, _)| s);
    let he = one()?;
    let ot = one()?;
    Ok((he, ot))
}

/// The client's two connections, HE first.
pub fn connect_pair(addr: &str) -> Result<(TcpStream, TcpStream), VerifyError> {
    let one = || super::connect(addr, super::DEFAULT_TIMEOUT);
    let he = one()?;
    let ot = one()?;
    Ok((he, ot))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Padding;

    #[test]
    fn ring_conversions_by_hand() {
        assert_eq!(signed(0b1000, 4), -8);
        assert_eq!(signed(0b0111, 4), 7);
        assert_eq!(signed(u64::MAX, 64), -1);
        // -1 on 4 bits sign-extends to 0xFF on 8 bits; unsigned it stays 15.
        assert_eq!(convert(&[0b1111], 4, 8, true), vec![0xFF]);
        assert_eq!(convert(&[0b1111], 4, 8, false), vec![0x0F]);
        // A reduction keeps the low bits: 0x1F3 mod 2^4 = 3.
        assert_eq!(convert(&[0x1F3], 9, 4, false), vec![3]);
        assert_eq!(convert(&[0x1F3], 9, 4, true), vec![3]);
    }

    #[test]
    fn pooling_windows_by_hand() {
        let w = Window {
            kh: 2,
            kw: 2,
            sh: 2,
            sw: 2,
            pad: Padding::uniform(0),
        };
        let x: Vec<u64> = (0..16).collect();
        let wins = windows(&w, [1, 4, 4]);
        // 0+1+4+5, 2+3+6+7, 8+9+12+13, 10+11+14+15.
        assert_eq!(window_sums(&x, &wins, 16), vec![10, 18, 42, 50]);
        // The sum is taken mod 2^l.
        assert_eq!(window_sums(&x, &wins, 4), vec![10, 2, 10, 2]);
        assert_eq!(window_sums(&x, &global_windows([1, 4, 4]), 16), vec![120]);
        // A 3x3 window with padding 1 on a 2x2 image: 4 real positions, the 5 padded ones
        // repeat the first real one (which leaves the maximum unchanged).
        let w3 = Window {
            kh: 3,
            kw: 3,
            sh: 1,
            sw: 1,
            pad: Padding::uniform(1),
        };
        let y = [7u64, 3, 9, 1];
        let g = gather_max(&y, &windows(&w3, [1, 2, 2]));
        assert_eq!(g.len(), 4 * 9);
        assert_eq!(&g[..9], &[7, 7, 7, 7, 7, 3, 7, 9, 1]);
        let maxes: Vec<u64> = g.chunks(9).map(|c| *c.iter().max().unwrap()).collect();
        assert_eq!(maxes, vec![9, 9, 9, 9]);
    }
}

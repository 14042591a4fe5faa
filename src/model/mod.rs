//! The pure evaluation: network + protocol + options -> per-layer report.
//! No I/O, no clock, no threads of its own beyond rayon's data parallelism, which
//! does not change any result.

pub mod bits;
pub mod linear;
pub mod nonlinear;
pub mod report;

use crate::mapper::{LayerSearch, Objective, explain_infeasible, search_layer};
use crate::mapping::space::SpaceOptions;
use crate::mapping::{LayerChoice, LinearMapping, PackDirection, SlotScheme};
use crate::protocol::{
    ComputeProfile, CostModel, Link, NativeFormat, Protocol, ProtocolFile, ReluVariant, WireFormat,
};
use crate::units::Bits;
use crate::workload::{BitWidths, CostClass, LayerKind, Network};
pub use bits::BitsSpec;
use linear::{
    ConvGeom, HeContext, LinearCost, accumulator_bits, accumulator_bits_l1, cheetah_tiling,
    evaluate_coeff,
};
use nonlinear::OtModel;
use rayon::prelude::*;
use report::{LayerReport, LinkInfo, Report, SCHEMA_VERSION, Totals};
use std::collections::HashMap;

/// How batch norms are priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BnPolicy {
    /// Fold a batch norm that directly follows a convolution into it; price the rest with HE.
    #[default]
    Auto,
    /// Price every batch norm as its own HE layer.
    Separate,
}

/// Where per-layer bit widths come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BitsPolicy {
    /// Uniform widths for every weighted layer (`--bits w4a4`); `None`: the network file.
    pub uniform: Option<BitWidths>,
    /// Apply `uniform` to the first and last weighted layers too (otherwise they take 8 bits).
    pub all_layers: bool,
}

impl BitsPolicy {
    pub fn describe(&self) -> String {
        match self.uniform {
            None => "from the network file".into(),
            Some(b) if self.all_layers => format!("{b} on every layer"),
            Some(b) => format!("{b} (first and last layer w8a8)"),
        }
    }
}

/// Parses `w4a4`, `w8a4`, or a single number (`4` = w4a4).
pub fn parse_bits(s: &str) -> Result<BitWidths, String> {
    let err = || {
        format!("bit widths '{s}': expected wXaY (for example w4a4) or one number, each in 1..=32")
    };
    let num = |t: &str| -> Result<Bits, String> {
        let v: i64 = t.parse().map_err(|_| err())?;
        Bits::try_new(v).map_err(|e| format!("bit widths '{s}': {e}"))
    };
    if let Some(rest) = s.strip_prefix('w') {
        let (w, a) = rest.split_once('a').ok_or_else(err)?;
        Ok(BitWidths {
            w: num(w)?,
            a: num(a)?,
        })
    } else {
        let b = num(s)?;
        Ok(BitWidths { w: b, a: b })
    }
}

/// Everything besides the network and the cost model that a prediction depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOptions {
    pub protocol: Protocol,
    pub wire: WireFormat,
    pub link_name: String,
    pub link: Link,
    pub bits: BitsPolicy,
    pub bn: BnPolicy,
    pub relu: Option<ReluVariant>,
    pub allow_insecure: bool,
    pub objective: Objective,
    /// Per-layer choices that replace the protocol's own (a saved mapping).
    pub overrides: HashMap<String, LayerChoice>,
    /// Images per inference: every count and byte of a report covers all of them.
    pub batch: u64,
    /// Slot schemes the searched protocols may pack with.
    pub slots: Vec<SlotScheme>,
    /// Price requantizing ReLUs with the fused approximate ReLU + requantization
    /// (`--approx`, [`nonlinear`] module docs); off: the exact protocol.
    pub approx: bool,
    /// ReLUs kept over the whole network (`--relu-budget`), replacing the network file's.
    pub relu_budget: Option<u64>,
    /// How each linear layer's accumulator is bounded.
    pub accumulator: AccumulatorBound,
    /// Which OpenCheetah code the `cheetah` protocol models.
    pub cheetah: CheetahVersion,
}

impl EvalOptions {
    /// Whether the two options are the same apart from `overrides`.
    pub fn same_but_overrides(&self, o: &EvalOptions) -> bool {
        let EvalOptions {
            protocol,
            wire,
            link_name,
            link,
            bits,
            bn,
            relu,
            allow_insecure,
            objective,
            overrides: _,
            batch,
            slots,
            approx,
            relu_budget,
            accumulator,
            cheetah,
        } = self;
        *protocol == o.protocol
            && *wire == o.wire
            && *link_name == o.link_name
            && *link == o.link
            && *bits == o.bits
            && *bn == o.bn
            && *relu == o.relu
            && *allow_insecure == o.allow_insecure
            && *objective == o.objective
            && *batch == o.batch
            && *slots == o.slots
            && *approx == o.approx
            && *relu_budget == o.relu_budget
            && *accumulator == o.accumulator
            && *cheetah == o.cheetah
    }
}

/// What a layer search reads besides the cost model.
struct SearchKey {
    ctx: HeContext,
    space: SpaceOptions,
    objective: Objective,
    link: Link,
}

/// The searches of one geometry, by the rest of what they read.
type Searched = Vec<(SearchKey, std::sync::Arc<LayerSearch>)>;

/// Layer searches already run, for evaluations under one cost model that search the same
/// layers again ([`Evaluation::new`], [`Evaluation::totals_with`]): a search is a pure function of the
/// layer's geometry, its HE context, the mapspace, the objective and the link (and of the
/// cost model the memo was made for), so two layers or two evaluations that agree on those
/// share one, and an evaluation with a memo gives the report it gives without. Under
/// another cost model the memo is not used.
pub struct SearchMemo {
    /// The cost model's address.
    cm: usize,
    done: std::sync::Mutex<HashMap<ConvGeom, Searched>>,
}

impl SearchMemo {
    pub fn new(cm: &CostModel) -> SearchMemo {
        SearchMemo {
            cm: std::ptr::from_ref(cm) as usize,
            done: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The search of these inputs: the one run before, or `run`'s (then kept).
    fn search(
        &self,
        cm: &CostModel,
        geom: ConvGeom,
        ctx: HeContext,
        space: &SpaceOptions,
        opts: &EvalOptions,
        run: impl FnOnce() -> LayerSearch,
    ) -> std::sync::Arc<LayerSearch> {
        if std::ptr::from_ref(cm) as usize != self.cm {
            return std::sync::Arc::new(run());
        }
        let key = SearchKey {
            ctx,
            space: space.clone(),
            objective: opts.objective,
            link: opts.link,
        };
        let same = |k: &SearchKey| {
            k.ctx == key.ctx
                && k.space == key.space
                && k.objective == key.objective
                && k.link == key.link
        };
        let found = self.done.lock().ok().and_then(|d| {
            d.get(&geom)?
                .iter()
                .find(|e| same(&e.0))
                .map(|e| e.1.clone())
        });
        if let Some(s) = found {
            return s;
        }
        // Run outside the lock; a search another thread ran meanwhile is the same.
        let s = std::sync::Arc::new(run());
        if let Ok(mut d) = self.done.lock() {
            let v = d.entry(geom).or_default();
            if !v.iter().any(|e| same(&e.0)) {
                v.push((key, s.clone()));
            }
        }
        s
    }
}

/// How a quantized linear layer's accumulator (and so its ring, slots and CRT components)
/// is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccumulatorBound {
    /// b_a + b_w + ceil(log2 fan_in): any weights of b_w bits.
    #[default]
    Worst,
    /// b_a + 1 + ceil(log2 L), L the largest output channel's L1 norm of the layer's own
    /// weights quantized to b_w bits (a network imported from an ONNX model with weights).
    Weights,
}

impl AccumulatorBound {
    pub fn describe(self) -> &'static str {
        match self {
            AccumulatorBound::Worst => "worst case (b_a + b_w + ceil(log2 fan_in))",
            AccumulatorBound::Weights => {
                "the weights' own L1 norms (b_a + 1 + ceil(log2 max_o sum |W_o|), weights quantized per output channel)"
            }
        }
    }
}

/// What a report says about the fused approximate ReLU + requantization (derived in the
/// [`nonlinear`] module docs).
pub const APPROX_ERROR: &str = "approximate fused ReLU+requant: error up to 1 LSB (+ wrap probability: the share wrap, probability about |x|/2^l, drops out mod 2^(l-s); only x within 2^s of -2^(l-1), nearly every accumulator product at its extreme, can wrap the (l-s)-bit ring, with probability below 1/2, and give 2^b_a - 1 instead of 0)";

/// The slot schemes searched by default: the sound ones.
pub const DEFAULT_SLOTS: [SlotScheme; 3] = [SlotScheme::Exact, SlotScheme::Crt, SlotScheme::Client];

/// What the non-linear options of `opts` say in outputs without a full report (a sweep):
/// empty without `--approx` and `--relu-budget`.
pub fn option_notes(opts: &EvalOptions) -> Vec<String> {
    let mut v = Vec::new();
    if opts.approx {
        v.push(APPROX_ERROR.to_string());
    }
    if let Some(b) = opts.relu_budget {
        v.push(format!("ReLU budget: {b} ReLUs kept (--relu-budget)"));
    }
    v
}

/// Largest batch a report prices.
pub const MAX_BATCH: u64 = 1 << 16;

/// Parses `--slots exact,crt,client,paper`.
pub fn parse_slots(s: &str) -> Result<Vec<SlotScheme>, String> {
    let mut v = Vec::new();
    for p in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let x = SlotScheme::parse(p).map_err(|e| format!("--slots: {e}"))?;
        if !v.contains(&x) {
            v.push(x);
        }
    }
    if v.is_empty() {
        return Err("--slots: no scheme given (known: exact, client, paper, crt)".into());
    }
    Ok(v)
}

impl EvalOptions {
    pub fn new(protocol: Protocol, cm: &CostModel) -> EvalOptions {
        EvalOptions {
            protocol,
            wire: WireFormat::Native,
            link_name: "lan".into(),
            link: cm.link("lan").expect("the shipped links file defines lan"),
            bits: BitsPolicy::default(),
            bn: BnPolicy::Auto,
            relu: None,
            allow_insecure: false,
            objective: Objective::Comm,
            overrides: HashMap::new(),
            batch: 1,
            slots: DEFAULT_SLOTS.to_vec(),
            approx: false,
            relu_budget: None,
            accumulator: AccumulatorBound::Worst,
            cheetah: CheetahVersion::Code2025,
        }
    }
}

/// Why a network cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("layer '{layer}': {message}")]
    Layer { layer: String, message: String },
    #[error("{0}; pass --allow-insecure to accept it (every output is then marked insecure)")]
    Insecure(crate::protocol::Insecure),
    #[error("{0}")]
    Options(String),
}

/// Seconds of compute for a linear mapping on a profile (client encrypt/decrypt, server
/// NTTs and multiply-accumulates), scaled linearly in N from the profile's N = 4096.
/// A calibrated profile also scales the NTT work with the CRT primes the mapping needs
/// and prices encryption and decryption above 2^64 with its wide-container figures.
pub fn linear_compute_s(p: &ComputeProfile, n: u64, c: &LinearCost, ntt: bool) -> f64 {
    let scale = n as f64 / 4096.0;
    let wide = c.log_q > 64;
    // Per query: the client's encryption, the server's reading of it and expansion of its
    // mask from the seed, and the server's other per-query work; per response: the
    // server's per-response work and the client's decryption.
    let (enc, dec, decompress) = if wide {
        (
            p.encrypt_wide_us.unwrap_or(p.encrypt_us),
            p.decrypt_wide_us.unwrap_or(p.decrypt_us),
            p.decompress_wide_us.or(p.decompress_us),
        )
    } else {
        (p.encrypt_us, p.decrypt_us, p.decompress_us)
    };
    let per_query = enc + decompress.unwrap_or(0.0) + p.server_query_us.unwrap_or(0.0);
    let per_response = dec + p.server_response_us.unwrap_or(0.0);
    let primes = ntt_prime_factor(p, c);
    let us = if ntt {
        c.ct_in as f64 * (per_query + 2.0 * p.ntt_forward_us * primes)
            + c.products as f64 * 2.0 * p.mul_acc_us * primes
            + c.ct_out as f64 * (2.0 * p.ntt_inverse_us * primes + per_response)
    } else {
        c.ct_in as f64 * per_query
            + c.products as f64 * 2.0 * p.mul_acc_us
            + c.ct_out as f64 * per_response
    };
    us * scale * 1e-6 / p.threads.max(1) as f64
}

/// Seconds of the server's offline work for a linear mapping: every kernel polynomial
/// taken to NTT form once per CRT prime, before the client's input exists (the weight
/// encoding the verify mode measures apart), scaled as [`linear_compute_s`].
pub fn linear_offline_s(p: &ComputeProfile, n: u64, c: &LinearCost) -> f64 {
    c.weight_polys as f64 * p.ntt_forward_us * ntt_prime_factor(p, c) * (n as f64 / 4096.0) * 1e-6
        / p.threads.max(1) as f64
}

/// How much more NTT work a mapping's primes take than the profile's measured NTTs: the
/// ratio of prime counts for a calibrated profile (1 for one that did not count them),
/// times the profile's measured cost of a 62-bit prime against a small one when the
/// mapping needs 62-bit primes (the profile's NTTs run on small ones).
fn ntt_prime_factor(p: &ComputeProfile, c: &LinearCost) -> f64 {
    let count = p
        .ntt_primes
        .map_or(1.0, |m| c.ntt_primes as f64 / m.max(1) as f64);
    let kind = if c.ntt_prime_bits > linear::NTT_SMALL_PRIME_BITS {
        p.wide_prime_factor.unwrap_or(1.0)
    } else {
        1.0
    };
    count * kind
}

/// Latency of a step: compute + transfer + round trips.
pub fn step_latency(link: &Link, bytes: u64, rounds: u32, compute_s: f64) -> f64 {
    compute_s + bytes as f64 * 8.0 / link.bandwidth_bps.get() + rounds as f64 * link.rtt_s
}

#[derive(PartialEq)]
struct Planned {
    bits: Option<BitWidths>,
    /// The convolution a batch norm is folded into.
    folded_into: Option<usize>,
    ring_in: u32,
    ring_out: u32,
    /// The linear layer's own ring (accumulator), if linear.
    acc: Option<u32>,
    /// Kept ReLUs of a relu layer under a budget (`None`: all).
    kept: Option<u64>,
    /// Shift of the fused approximate ReLU + requantization, where it applies.
    fuse_shift: Option<u32>,
}

/// Resolves bit widths, batch-norm folding and the ring of every layer.
fn plan(net: &Network, opts: &EvalOptions, cm: &CostModel) -> Result<Vec<Planned>, ModelError> {
    let consumers = net.consumer_table();
    plan_with(net, opts, cm, &consumers, &|i| {
        opts.overrides.get(&net.layers[i].name)
    })
}

/// [`plan`], with the network's consumer table and layer `i`'s entry of the overrides
/// `choice(i)`.
fn plan_with<'c>(
    net: &Network,
    opts: &EvalOptions,
    cm: &CostModel,
    consumers: &[Vec<usize>],
    choice: &dyn Fn(usize) -> Option<&'c LayerChoice>,
) -> Result<Vec<Planned>, ModelError> {
    let pf = cm.protocol_file(opts.protocol);
    let quant = opts.protocol.is_quantized();
    let weighted: Vec<usize> = (0..net.layers.len())
        .filter(|&i| net.layers[i].kind.has_weights())
        .collect();
    let (first, last) = (weighted.first().copied(), weighted.last().copied());
    let eight = BitWidths {
        w: Bits::try_new(8).expect("8 is a bit width"),
        a: Bits::try_new(8).expect("8"),
    };
    let mut plans: Vec<Planned> = Vec::with_capacity(net.layers.len());
    let default_w = opts.bits.uniform.or(net.default_bits);
    for (i, l) in net.layers.iter().enumerate() {
        let bits = if let Some(o) = choice(i).and_then(|o| o.bits) {
            Some(o)
        } else if l.kind.has_weights() {
            match opts.bits.uniform {
                Some(_) if !opts.bits.all_layers && (Some(i) == first || Some(i) == last) => {
                    Some(eight)
                }
                Some(u) => Some(u),
                None => l.bits.or(net.default_bits),
            }
        } else if matches!(l.kind, LayerKind::BatchNorm) {
            default_w
        } else {
            None
        };
        if quant
            && (l.kind.has_weights() || matches!(l.kind, LayerKind::BatchNorm))
            && bits.is_none()
        {
            return Err(ModelError::Layer {
                layer: l.name.clone(),
                message: format!(
                    "{} needs bit widths: the network file gives none, pass --bits (for example --bits w8a8)",
                    opts.protocol
                ),
            });
        }
        let folded_into = match (&l.kind, opts.bn) {
            (LayerKind::BatchNorm, BnPolicy::Auto) => {
                let src = l.inputs[0];
                (src != usize::MAX
                    && matches!(net.layers[src].kind, LayerKind::Conv2d { .. })
                    && consumers[src] == [i])
                .then_some(src)
            }
            _ => None,
        };
        plans.push(Planned {
            bits,
            folded_into,
            ring_in: 0,
            ring_out: 0,
            acc: None,
            kept: None,
            fuse_shift: None,
        });
    }
    // Accumulator rings of the linear layers.
    let base = pf.he.log_t.get();
    for (i, l) in net.layers.iter().enumerate() {
        let is_lin = l.kind.cost_class() == CostClass::Linear && plans[i].folded_into.is_none();
        if is_lin {
            plans[i].acc = Some(if quant {
                let b = plans[i].bits.expect("checked above");
                match l.kind {
                    LayerKind::BatchNorm => b.a.get() + b.w.get(),
                    _ => match layer_weight_l1(l, b, opts.accumulator)? {
                        Some(l1) => accumulator_bits_l1(b.a.get(), l1),
                        None => accumulator_bits(b.a.get(), b.w.get(), l.fan_in()),
                    },
                }
            } else {
                base
            });
        }
    }
    // Ring each non-linear layer must deliver: the accumulator of the next linear layer
    // reached through free layers; otherwise its input ring.
    let next_linear = |i: usize, plans: &Vec<Planned>| -> Option<usize> {
        let mut j = i;
        loop {
            let cons = &consumers[j];
            let &c = cons.first()?;
            if plans[c].acc.is_some() {
                return Some(c);
            }
            match net.layers[c].kind.cost_class() {
                CostClass::Free => j = c,
                _ if plans[c].folded_into.is_some() => j = c,
                _ => return None,
            }
        }
    };
    let first_acc = plans.iter().find_map(|p| p.acc).unwrap_or(base);
    for i in 0..net.layers.len() {
        let l = &net.layers[i];
        let ring_in = l
            .inputs
            .iter()
            .map(|&j| {
                if j == usize::MAX {
                    first_acc
                } else {
                    plans[j].ring_out
                }
            })
            .max()
            .unwrap_or(base);
        let next = next_linear(i, &plans);
        let ring_out = if let Some(a) = plans[i].acc {
            a
        } else if l.kind.cost_class() == CostClass::NonLinear && quant {
            next.and_then(|c| plans[c].acc).unwrap_or(ring_in)
        } else {
            ring_in
        };
        plans[i].ring_in = ring_in;
        plans[i].ring_out = ring_out;
        // The fused approximate ReLU + requantization: the output keeps the next layer's
        // b_a activation bits of a signed l_in-bit accumulator value, so the shift is
        // s = l_in - 1 - b_a [derived: the ring is sized for the worst-case accumulator,
        // `accumulator_bits`, and the output scale keeps its top b_a magnitude bits].
        if opts.approx
            && quant
            && matches!(l.kind, LayerKind::Relu { relu6: false, .. })
            && let Some(b) = next.and_then(|c| plans[c].bits)
        {
            plans[i].fuse_shift = ring_in.checked_sub(1 + b.a.get()).filter(|&s| s > 0);
        }
    }
    let kept = net
        .relu_kept(opts.relu_budget)
        .map_err(ModelError::Options)?;
    for (p, k) in plans.iter_mut().zip(kept) {
        p.kept = k;
    }
    Ok(plans)
}

/// The HE context of a linear layer under a protocol.
pub fn he_context(
    protocol: Protocol,
    cm: &CostModel,
    ring: u32,
    bits: Option<BitWidths>,
    allow_insecure: bool,
) -> HeContext {
    let pf = cm.protocol_file(protocol);
    let quant = protocol.is_quantized();
    HeContext {
        ring_bits: ring,
        weight_bits: if quant {
            bits.map_or(pf.he.weight_bits, |b| b.w.get())
        } else {
            pf.he.weight_bits
        },
        act_bits: bits.map_or(ring, |b| b.a.get()),
        fixed_log_q: if quant { None } else { Some(pf.he.log_q.get()) },
        response_log_q: pf.he.response_log_q.get(),
        seeded: pf.he.seeded_query,
        error_std: pf.he.error_std,
        failure_log2: pf.he.failure_log2,
        flood_bits: pf.he.flood_bits,
        allow_insecure,
        client_input: false,
        batch: 1,
        crt_conversion_bytes: 0,
        crt_conversion_rounds: 0,
        weight_l1: None,
        stride1_responses: pf.he.response_keeps == crate::protocol::ResponseKeeps::Stride1,
    }
}

/// The OT model of a report under the options.
pub fn ot_model(opts: &EvalOptions, cm: &CostModel) -> OtModel {
    let pf = cm.protocol_file(opts.protocol);
    let v2025 = opts.protocol == Protocol::Cheetah && opts.cheetah == CheetahVersion::Code2025;
    OtModel {
        ot: cm.ot_costs(pf.nonlinear.ot),
        digit_bits: cm.primitives.digit_bits,
        relu: opts.relu.unwrap_or(if v2025 {
            ReluVariant::Approx
        } else {
            pf.nonlinear.relu
        }),
        approx_relu_bits: pf.nonlinear.approx_relu_bits,
        truncation: pf.nonlinear.truncation,
        msb0_heuristic_shift: v2025.then_some(CHEETAH_FIXED_POINT_SHIFT),
        relu_truncation_shift: (opts.protocol == Protocol::Cheetah)
            .then_some(CHEETAH_FIXED_POINT_SHIFT),
    }
}

/// OpenCheetah's fixed-point scale (`kScale = 12` in its networks; docs/protocol-reference.md 2).
pub const CHEETAH_FIXED_POINT_SHIFT: u32 = 12;

/// Which OpenCheetah code a `cheetah` report models (docs/protocol-reference.md 2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum CheetahVersion {
    /// The code of the paper (2022; commit 09fe195, library unchanged up to 0b63d6f): exact
    /// ReLU, faithful truncation.
    Code2022,
    /// The current code (from commit dc09540, 2023-09-15, to the 2025 head), the default:
    /// the approximate ReLU on 16 top bits, the msb0-heuristic truncation; max-pool and
    /// argmax exact.
    #[default]
    Code2025,
}

impl CheetahVersion {
    pub fn parse(s: &str) -> Result<CheetahVersion, String> {
        match s {
            "2022" => Ok(CheetahVersion::Code2022),
            "2025" => Ok(CheetahVersion::Code2025),
            _ => Err(format!("unknown Cheetah version '{s}' (known: 2022, 2025)")),
        }
    }
    pub fn describe(self) -> &'static str {
        match self {
            CheetahVersion::Code2022 => "OpenCheetah 2022 code (exact ReLU, faithful truncation)",
            CheetahVersion::Code2025 => {
                "OpenCheetah 2025 code (approximate ReLU, msb0-heuristic truncation)"
            }
        }
    }
}

/// The OT steps that CRT slots add to a linear layer whose shares need `w` bits, per
/// element of a converted image: in, the activation's shares mod 2^w into Z_{t_i}
/// (t_i < 2^(w+2), [`crate::model::linear::crt_moduli`]); out, the accumulator's shares mod
/// t_i back to Z_{2^w}. One COT each (docs/protocol-reference.md 4.2, 4.3).
pub fn crt_conversion_steps(ot: &OtModel, w: u32) -> (nonlinear::Step, nonlinear::Step) {
    (ot.ring_to_mod(w + 2), ot.mod_to_ring(w))
}

/// Elements of one image that CRT slots convert on linear layer `i` of `net`: its input
/// activations into Z_{t_i} (none when it reads the client's own data, which the client
/// encodes mod t_i directly) and its outputs back to Z_{2^w}. The model prices these and the
/// verify mode runs exactly these; `None` for a layer without a convolution geometry.
pub fn crt_conversion_elems(net: &Network, i: usize) -> Option<(u64, u64)> {
    let l = &net.layers[i];
    let g = ConvGeom::of(l)?;
    let into = if reads_client_data(net, i) {
        0
    } else {
        l.input.elems()
    };
    Some((into, g.out_elems()))
}

/// Whether layer `i` reads the client's own data: the network input, possibly through
/// free layers (padding, flatten), so no secret share of it exists yet.
pub fn reads_client_data(net: &Network, i: usize) -> bool {
    let mut todo = vec![i];
    let mut seen = std::collections::HashSet::new();
    while let Some(j) = todo.pop() {
        if !seen.insert(j) {
            continue;
        }
        for &k in &net.layers[j].inputs {
            if k == usize::MAX {
                continue;
            }
            if net.layers[k].kind.cost_class() != CostClass::Free {
                return false;
            }
            todo.push(k);
        }
    }
    true
}

/// The largest output-channel L1 norm of layer `l`'s weights at its weight width, when the
/// options bound accumulators by the weights; an error when the layer carries no such table.
pub fn layer_weight_l1(
    l: &crate::workload::Layer,
    b: BitWidths,
    bound: AccumulatorBound,
) -> Result<Option<u64>, ModelError> {
    if bound == AccumulatorBound::Worst || !l.kind.has_weights() {
        return Ok(None);
    }
    let err = |m: String| ModelError::Layer {
        layer: l.name.clone(),
        message: m,
    };
    let table = l.weight_l1.as_ref().ok_or_else(|| {
        err("--accumulator weights needs the layer's weights: the network file has no weight_l1 for it (import an ONNX model that carries its weights)".into())
    })?;
    table.at(b.w.get()).map(Some).ok_or_else(|| {
        err(format!(
            "--accumulator weights: weight_l1 covers {}..={} weight bits, not {}",
            crate::workload::WEIGHT_L1_MIN_BITS,
            crate::workload::WEIGHT_L1_MAX_BITS,
            b.w.get()
        ))
    })
}

/// The HE context of linear layer `i` of `net` under the options: [`he_context`] plus the
/// batch and whether its input is the client's own data.
pub fn layer_context(
    net: &Network,
    i: usize,
    opts: &EvalOptions,
    cm: &CostModel,
    ring: u32,
    bits: Option<BitWidths>,
) -> HeContext {
    let mut ctx = he_context(opts.protocol, cm, ring, bits, opts.allow_insecure);
    ctx.client_input = reads_client_data(net, i);
    ctx.batch = opts.batch.max(1);
    let l = &net.layers[i];
    if opts.protocol.is_quantized()
        && let Some(b) = bits
    {
        // Checked when the rings were planned; a table that does not cover the width
        // falls back to the worst case there too.
        ctx.weight_l1 = layer_weight_l1(l, b, opts.accumulator).ok().flatten();
    }
    if let Some((per_in, per_out)) = crt_conversion_elems(net, i) {
        let (into, out) = crt_conversion_steps(&ot_model(opts, cm), ring);
        let in_elems = per_in * ctx.batch;
        let bits = into.bits * in_elems as f64 + out.bits * (per_out * ctx.batch) as f64;
        ctx.crt_conversion_bytes = (bits / 8.0).ceil() as u64;
        ctx.crt_conversion_rounds = (if in_elems > 0 { into.rounds } else { 0 }) + out.rounds;
    }
    ctx
}

/// The mapspace a protocol searches for one layer.
pub fn space_options(protocol: Protocol, cm: &CostModel) -> SpaceOptions {
    let pf = cm.protocol_file(protocol);
    let packing = matches!(protocol, Protocol::HequantPacked | Protocol::Hequant);
    SpaceOptions {
        ring_degrees: if protocol == Protocol::Hequant && !pf.he.ring_degrees.is_empty() {
            pf.he.ring_degrees.clone()
        } else {
            vec![pf.he.ring_degree]
        },
        max_pack_factor: if packing { pf.packing.max_factor } else { 1 },
        max_m_w: if protocol == Protocol::Hequant {
            pf.packing.max_output_channel_block as u64
        } else {
            1
        },
        free_tiling: protocol == Protocol::Hequant,
        pack_directions: if packing {
            PackDirection::ALL.to_vec()
        } else {
            vec![PackDirection::None]
        },
        schemes: if packing {
            DEFAULT_SLOTS.to_vec()
        } else {
            Vec::new()
        },
        batch: 1,
    }
}

/// The mapspace of the options: [`space_options`] with their slot schemes and batch.
pub fn space_for(opts: &EvalOptions, cm: &CostModel) -> SpaceOptions {
    let mut s = space_options(opts.protocol, cm);
    if !s.schemes.is_empty() {
        s.schemes = opts.slots.clone();
    }
    s.batch = opts.batch.max(1);
    s
}

/// The latency a search charges a linear mapping: its compute, its bytes and one round.
pub fn mapping_latency(link: &Link, p: &ComputeProfile, m: &LinearMapping, c: &LinearCost) -> f64 {
    step_latency(
        link,
        c.total_bytes(),
        1 + c.conversion_rounds,
        linear_compute_s(p, m.n.as_u64(), c, true)
            + c.conversion_bytes as f64 * 8.0 * p.ot_ns_per_bit * 1e-9,
    )
}

/// One linear layer whose mapping [`evaluate`] searches: the inputs it hands to
/// [`search_layer`].
#[derive(Debug, Clone, PartialEq)]
pub struct SearchProblem {
    /// Index of the layer in the network.
    pub index: usize,
    pub layer: String,
    pub geom: ConvGeom,
    pub ctx: HeContext,
}

/// The per-layer searches [`evaluate`] runs under the options, in layer order: every
/// linear layer that is not folded and has no saved mapping, for the protocols that
/// search (`hequant-packed`, `hequant`); none for the others.
pub fn search_problems(
    net: &Network,
    opts: &EvalOptions,
    cm: &CostModel,
) -> Result<Vec<SearchProblem>, ModelError> {
    if !matches!(opts.protocol, Protocol::HequantPacked | Protocol::Hequant) {
        return Ok(Vec::new());
    }
    let plans = plan(net, opts, cm)?;
    let mut out = Vec::new();
    for (i, l) in net.layers.iter().enumerate() {
        let p = &plans[i];
        let Some(acc) = p.acc else { continue };
        if p.folded_into.is_some() || opts.overrides.get(&l.name).and_then(|o| o.linear).is_some() {
            continue;
        }
        let Some(geom) = ConvGeom::of(l) else {
            continue;
        };
        out.push(SearchProblem {
            index: i,
            layer: l.name.clone(),
            geom,
            ctx: layer_context(net, i, opts, cm, acc, p.bits),
        });
    }
    Ok(out)
}

/// Evaluates a network under the options: the per-layer report and its totals.
pub fn evaluate(net: &Network, opts: &EvalOptions, cm: &CostModel) -> Result<Report, ModelError> {
    Ok(Evaluation::new(net, opts, cm, None)?.report(net, cm))
}

/// What pricing a layer takes from the options and the cost model besides the plan.
struct Pricing<'a> {
    pf: &'a ProtocolFile,
    ot: OtModel,
    /// Wire overhead of the ciphertexts.
    overhead: f64,
    seal_zstd: bool,
    profile: &'a ComputeProfile,
    link: Link,
    space: SpaceOptions,
    batch: f64,
}

impl Pricing<'_> {
    fn wire_bytes(&self, b: u64) -> u64 {
        (b as f64 * self.overhead).round() as u64
    }
}

/// The checks of the options against the cost model (security, error width, batch) and what
/// pricing takes from them; `true` when an insecure parameter set was accepted.
fn pricing<'a>(opts: &EvalOptions, cm: &'a CostModel) -> Result<(Pricing<'a>, bool), ModelError> {
    let pf = cm.protocol_file(opts.protocol);
    let mut insecure = false;
    if !opts.protocol.is_quantized()
        && let Err(e) = cm.check_security(pf.he.ring_degree, pf.he.log_q.get())
    {
        if !opts.allow_insecure {
            return Err(ModelError::Insecure(e));
        }
        insecure = true;
    }
    // The 128-bit table holds for the error width it was computed with; a narrower fresh
    // error is weaker whatever the modulus (docs/protocol-reference.md 5).
    if pf.he.error_std < cm.security.error_std {
        if !opts.allow_insecure {
            return Err(ModelError::Options(format!(
                "{}: he.error_std = {} is below the error width {} of the security table (cost-models/security.toml), so its 128-bit bounds do not hold; pass --allow-insecure to accept it (every output is then marked insecure)",
                opts.protocol, pf.he.error_std, cm.security.error_std
            )));
        }
        insecure = true;
    }
    if opts.batch == 0 || opts.batch > MAX_BATCH {
        return Err(ModelError::Options(format!(
            "--batch {}: must be between 1 and {MAX_BATCH}",
            opts.batch
        )));
    }
    Ok((Pricing::of(opts, cm), insecure))
}

impl<'a> Pricing<'a> {
    /// What pricing takes from options that passed [`pricing`]'s checks.
    fn of(opts: &EvalOptions, cm: &'a CostModel) -> Pricing<'a> {
        let pf = cm.protocol_file(opts.protocol);
        Pricing {
            pf,
            ot: ot_model(opts, cm),
            overhead: match (opts.wire, pf.wire.native_format) {
                (WireFormat::Native, NativeFormat::Factor) => pf.wire.native_overhead,
                _ => 1.0,
            },
            seal_zstd: opts.wire == WireFormat::Native
                && pf.wire.native_format == NativeFormat::SealZstd,
            profile: &cm.compute,
            link: opts.link,
            space: space_for(opts, cm),
            batch: opts.batch as f64,
        }
    }
}

/// Prices layer `i` under the plan, with `choice` its entry of the overrides. It reads the
/// network, the options apart from the overrides, its own plan and its inputs' plans and
/// `choice`, nothing else: [`Evaluation::totals_with`] relies on that.
#[allow(clippy::too_many_arguments)]
fn price_layer(
    net: &Network,
    i: usize,
    plans: &[Planned],
    opts: &EvalOptions,
    cm: &CostModel,
    pr: &Pricing,
    memo: Option<&SearchMemo>,
    choice: Option<&LayerChoice>,
) -> Result<LayerReport, ModelError> {
    let l = &net.layers[i];
    let (ot, profile, batch, link, space, seal_zstd) = (
        &pr.ot,
        pr.profile,
        pr.batch,
        pr.link,
        &pr.space,
        pr.seal_zstd,
    );
    let wire_bytes = |b: u64| pr.wire_bytes(b);
    let p = &plans[i];
    let mut r = LayerReport {
        name: l.name.clone(),
        kind: l.kind.name().to_string(),
        class: l.kind.cost_class(),
        shape: l.shape_text(),
        input: l.input,
        output: l.output,
        bits: p.bits.filter(|_| opts.protocol.is_quantized()),
        ring_bits_in: p.ring_in,
        ring_bits_out: p.ring_out,
        mapping: None,
        he: None,
        ct_client_to_server: 0,
        ct_server_to_client: 0,
        bytes_client_to_server: 0,
        bytes_server_to_client: 0,
        bytes_linear: 0,
        bytes_nonlinear: 0,
        bytes_truncation: 0,
        rounds: 0,
        compute_s: 0.0,
        offline_s: 0.0,
        latency_s: 0.0,
        note: String::new(),
        schemes: Vec::new(),
        seal_zstd: None,
    };
    if let Some(into) = &p.folded_into {
        r.class = CostClass::Free;
        r.note = format!("folded into {}", net.layers[*into].name);
        return Ok(r);
    }
    match l.kind.cost_class() {
        CostClass::Free => {
            // An addition of shares in different rings extends the narrower ones
            // first (the end-to-end run does; SiRNN's extension).
            if opts.protocol.is_quantized() && matches!(l.kind, LayerKind::Add) {
                for &j in &l.inputs {
                    if j != usize::MAX && plans[j].ring_out < p.ring_in {
                        let s = ot.extend(plans[j].ring_out, p.ring_in);
                        add_nonlinear(&mut r, s, l.output.elems() * opts.batch, profile);
                        r.note = join(
                            &r.note,
                            &format!(
                                "extend {} {} -> {} bits",
                                net.layers[j].name, plans[j].ring_out, p.ring_in
                            ),
                        );
                    }
                }
                if r.bytes_nonlinear > 0 {
                    r.class = CostClass::NonLinear;
                }
            }
        }
        CostClass::NonLinear => {
            let requant = opts.protocol.is_quantized() && matches!(l.kind, LayerKind::Relu { .. });
            let n = l.output.elems();
            let (s, t) = ot.relu_layer_split(
                l,
                p.ring_in,
                p.ring_out,
                requant,
                p.kept.unwrap_or(n),
                p.fuse_shift,
            );
            if let Some(k) = p.kept {
                r.note = format!("ReLU budget: {k} of {n} kept");
            }
            if let Some(sh) = p.fuse_shift {
                r.note = join(&r.note, &format!("fused approx ReLU+requant, s = {sh}"));
            }
            let bytes = (s.bits * batch / 8.0).ceil() as u64;
            r.bytes_truncation = ((t.bits * batch / 8.0).ceil() as u64).min(bytes);
            r.bytes_client_to_server = bytes / 2;
            r.bytes_server_to_client = bytes - bytes / 2;
            r.bytes_nonlinear = bytes;
            r.rounds = s.rounds;
            r.compute_s = s.bits * batch * profile.ot_ns_per_bit * 1e-9;
        }
        CostClass::Linear => {
            let saved = choice.and_then(|c| c.linear);
            linear_layer(net, i, p, opts, cm, space, &mut r, ot, memo, saved)?;
            r.ct_client_to_server = r.he.map_or(r.ct_client_to_server, |c| c.ct_in);
            r.ct_server_to_client = r.he.map_or(r.ct_server_to_client, |c| c.ct_out);
        }
    }
    // Wire overhead applies to the ciphertexts only.
    let (lin_in, lin_out) = if let Some(b) = r.seal_zstd.filter(|_| seal_zstd) {
        b
    } else {
        (
            wire_bytes(
                r.bytes_client_to_server
                    .saturating_sub(r.bytes_nonlinear / 2),
            ),
            wire_bytes(
                r.bytes_server_to_client
                    .saturating_sub(r.bytes_nonlinear - r.bytes_nonlinear / 2),
            ),
        )
    };
    if r.class == CostClass::Linear {
        r.bytes_client_to_server = lin_in + r.bytes_nonlinear / 2;
        r.bytes_server_to_client = lin_out + (r.bytes_nonlinear - r.bytes_nonlinear / 2);
        r.bytes_linear = lin_in + lin_out;
    }
    r.latency_s = step_latency(&link, r.bytes(), r.rounds, r.compute_s);
    Ok(r)
}

/// The totals of the layer reports, in layer order, with the protocol's one-time setup.
fn totals<'l>(
    opts: &EvalOptions,
    pr: &Pricing,
    layers: impl Iterator<Item = &'l LayerReport>,
) -> Totals {
    let (pf, link, seal_zstd) = (pr.pf, pr.link, pr.seal_zstd);
    let wire_bytes = |b: u64| pr.wire_bytes(b);
    let mut total = Totals::default();
    if opts.protocol == Protocol::Cryptflow2 && pf.he.galois_keys > 0 {
        // Rotation keys, sent once by the client: each key has one component per
        // special-prime decomposition level (primes - 1 = 3 at 218 bits) of two polynomials.
        let n = pf.he.ring_degree.as_u64();
        let levels = (pf.he.log_q.get() as u64)
            .div_ceil(60)
            .saturating_sub(1)
            .max(1);
        let key = levels
            * if seal_zstd {
                crate::protocol::sizes::seal_zstd::full(n, pf.he.log_q.get())
            } else {
                wire_bytes(crate::protocol::sizes::full_ct_bytes(n, pf.he.log_q.get()))
            };
        total.bytes_setup = pf.he.galois_keys as u64 * key;
        total.bytes_client_to_server += total.bytes_setup;
        total.bytes_linear += total.bytes_setup;
        total.latency_s += total.bytes_setup as f64 * 8.0 / link.bandwidth_bps.get();
    }
    for r in layers {
        total.add(r);
    }
    total
}

/// An evaluation kept in its parts (the options, the planned rings, every layer's report),
/// so that the totals under options that change a few layers' entries can be had by
/// pricing only the layers the change reaches ([`Evaluation::totals_with`]).
pub struct Evaluation {
    opts: EvalOptions,
    /// Each layer's entry of `opts.overrides`.
    choices: Vec<Option<LayerChoice>>,
    consumers: Vec<Vec<usize>>,
    plans: Vec<Planned>,
    layers: Vec<LayerReport>,
    insecure: bool,
}

impl Evaluation {
    /// Prices every layer (in parallel), as [`evaluate`] does, taking the layer searches it
    /// needs from `memo` where they were run before (and adding those it runs).
    pub fn new(
        net: &Network,
        opts: &EvalOptions,
        cm: &CostModel,
        memo: Option<&SearchMemo>,
    ) -> Result<Evaluation, ModelError> {
        let consumers = net.consumer_table();
        let choices: Vec<Option<LayerChoice>> = net
            .layers
            .iter()
            .map(|l| opts.overrides.get(&l.name).cloned())
            .collect();
        let plans = plan_with(net, opts, cm, &consumers, &|i| choices[i].as_ref())?;
        let (pr, insecure) = pricing(opts, cm)?;
        let layers = (0..net.layers.len())
            .into_par_iter()
            .map(|i| price_layer(net, i, &plans, opts, cm, &pr, memo, choices[i].as_ref()))
            .collect::<Result<Vec<LayerReport>, ModelError>>()?;
        Ok(Evaluation {
            opts: opts.clone(),
            choices,
            consumers,
            plans,
            layers,
            insecure,
        })
    }

    /// The totals of this evaluation.
    pub fn totals(&self, cm: &CostModel) -> Totals {
        totals(&self.opts, &Pricing::of(&self.opts, cm), self.layers.iter())
    }

    /// The totals of `evaluate(net, opts, cm)` exactly (the same sums in the same order),
    /// where `opts` are this evaluation's options with the entry of layer `layer` in
    /// `overrides` set to `choice`: a layer whose plan, inputs' plans and entry are those of
    /// this evaluation keeps its report, the others are priced again.
    pub fn totals_with(
        &self,
        net: &Network,
        cm: &CostModel,
        memo: Option<&SearchMemo>,
        layer: usize,
        choice: &LayerChoice,
    ) -> Result<Totals, ModelError> {
        if self.layers.len() != net.layers.len() || layer >= net.layers.len() {
            return Err(ModelError::Options(format!(
                "an evaluation of {} layers changed at layer {layer} of a network of {}",
                self.layers.len(),
                net.layers.len()
            )));
        }
        let pick = |i: usize| {
            if i == layer {
                Some(choice)
            } else {
                self.choices[i].as_ref()
            }
        };
        let opts = &self.opts;
        let plans = plan_with(net, opts, cm, &self.consumers, &pick)?;
        // The options passed `pricing`'s checks when this evaluation was made.
        let pr = Pricing::of(opts, cm);
        let same = |i: usize| {
            plans[i] == self.plans[i]
                && net.layers[i]
                    .inputs
                    .iter()
                    .all(|&j| j == usize::MAX || plans[j] == self.plans[j])
                && (i != layer || self.choices[i].as_ref() == Some(choice))
        };
        let mut fresh: Vec<(usize, LayerReport)> = Vec::new();
        for i in (0..net.layers.len()).filter(|&i| !same(i)) {
            fresh.push((
                i,
                price_layer(net, i, &plans, opts, cm, &pr, memo, pick(i))?,
            ));
        }
        let mut next = fresh.iter().peekable();
        let layers =
            self.layers
                .iter()
                .enumerate()
                .map(|(i, kept)| match next.next_if(|f| f.0 == i) {
                    Some(f) => &f.1,
                    None => kept,
                });
        Ok(totals(opts, &pr, layers))
    }

    /// The full report.
    pub fn report(self, net: &Network, cm: &CostModel) -> Report {
        let Evaluation {
            opts,
            choices: _,
            consumers: _,
            plans,
            layers,
            mut insecure,
        } = self;
        let opts = &opts;
        let pr = Pricing::of(opts, cm);
        let total = totals(opts, &pr, layers.iter());
        insecure |= layers.iter().any(|r| r.he.is_some_and(|h| h.insecure));
        let (pf, ot, link) = (pr.pf, &pr.ot, pr.link);
        let mut warnings = Vec::new();
        if !net.skipped.is_empty() {
            warnings.push(format!(
                "PARTIAL: {} operator(s) of the imported model were left out as free: {}",
                net.skipped.len(),
                net.skipped.join(", ")
            ));
        }
        if opts.approx {
            let fused = plans.iter().filter(|p| p.fuse_shift.is_some()).count();
            warnings.push(if fused > 0 {
            format!("{APPROX_ERROR}; {fused} relu layer(s) fused")
        } else {
            format!(
                "{APPROX_ERROR}; it applies to no layer here: only ReLUs that requantize to a next layer's bit width (quantized protocols) are fused, ReLU6 excepted"
            )
        });
        }
        if plans.iter().any(|p| p.kept.is_some()) {
            let relus: Vec<usize> = (0..net.layers.len())
                .filter(|&i| matches!(net.layers[i].kind, LayerKind::Relu { .. }))
                .collect();
            let all: u64 = relus.iter().map(|&i| net.layers[i].output.elems()).sum();
            let kept: u64 = relus
                .iter()
                .map(|&i| plans[i].kept.unwrap_or(net.layers[i].output.elems()))
                .sum();
            let source = if opts.relu_budget.is_some() {
                "--relu-budget"
            } else if net.relu_budget_total.is_some() {
                "relu_budget_total of the network file"
            } else {
                "relu_budget keys of the network file"
            };
            warnings.push(format!(
            "ReLU budget ({source}): {kept} of {all} ReLUs kept; the others are the identity (free, but a requantization they carried is still priced, as a truncation without the known sign)"
        ));
            if kept == 0 && all > 0 {
                warnings.push(
                    "ReLU budget 0: every ReLU of the network is dropped, so the network is linear"
                        .into(),
                );
            }
        }
        if insecure {
            warnings.push(
                "INSECURE: a parameter set below 128-bit security was accepted (--allow-insecure)"
                    .into(),
            );
        }
        if let Some(f) = &cm.security_replaced {
            warnings.push(format!(
            "security table replaced: {f} is not the shipped HE-standard table (docs/protocol-reference.md 5); every 128-bit claim rests on it"
        ));
        }
        let paper_used = layers.iter().any(|r| {
            r.mapping
                .is_some_and(|m| m.packing.is_packed() && m.packing.scheme == SlotScheme::Paper)
        });
        let paper_allowed = opts.protocol.is_quantized() && opts.slots.contains(&SlotScheme::Paper);
        if paper_used || paper_allowed {
            warnings.push(report::PAPER_WARNING.into());
        }
        let per_image = report::PerImage::of(&total, opts.batch);
        Report {
            schema_version: SCHEMA_VERSION,
            cheetah_code: (opts.protocol == Protocol::Cheetah)
                .then(|| opts.cheetah.describe().into()),
            accumulator: if opts.protocol.is_quantized() {
                opts.accumulator.describe().into()
            } else {
                "the protocol's fixed ring".into()
            },
            network: net.name.clone(),
            protocol: opts.protocol.name().into(),
            wire: match opts.wire {
                WireFormat::Native => pf.wire.native_name.clone(),
                WireFormat::Packed => "bit-packed".into(),
            },
            relu: {
                let base = match ot.relu {
                    ReluVariant::Exact => "exact".to_string(),
                    ReluVariant::Approx => format!("approx (top {} bits)", ot.approx_relu_bits),
                };
                let base = if opts.approx {
                    format!("{base}; {APPROX_ERROR}")
                } else {
                    base
                };
                match opts.relu_budget.or(net.relu_budget_total) {
                    Some(t) => format!("{base}; budget {t} ReLUs"),
                    None if !net.relu_budget.is_empty() => format!("{base}; per-layer budgets"),
                    None => base,
                }
            },
            bits: if opts.protocol.is_quantized() {
                opts.bits.describe()
            } else {
                format!("{}-bit fixed point", pf.he.log_t)
            },
            link: LinkInfo {
                name: opts.link_name.clone(),
                bandwidth_bps: link.bandwidth_bps.get(),
                rtt_s: link.rtt_s,
            },
            insecure,
            warnings,
            layers,
            batch: opts.batch,
            total,
            per_image,
        }
    }
}

/// Prices one linear layer (conv, fully connected or batch norm) into `r`.
#[allow(clippy::too_many_arguments)]
fn linear_layer(
    net: &Network,
    i: usize,
    p: &Planned,
    opts: &EvalOptions,
    cm: &CostModel,
    space: &SpaceOptions,
    r: &mut LayerReport,
    ot: &OtModel,
    memo: Option<&SearchMemo>,
    saved: Option<LinearMapping>,
) -> Result<(), ModelError> {
    let l = &net.layers[i];
    let pf = cm.protocol_file(opts.protocol);
    let acc = p.acc.expect("linear layers have an accumulator ring");
    let err = |m: String| ModelError::Layer {
        layer: l.name.clone(),
        message: m,
    };
    let geom = ConvGeom::of(l).ok_or_else(|| err("not a linear layer".into()))?;
    let profile = &cm.compute;
    let link = opts.link;
    // Shares arriving in another ring are requantized first (a truncation or extension).
    // An activation a ReLU or pooling layer has already requantized to b_a bits fits any
    // accumulator ring: a narrower ring is a local reduction, a wider one an extension.
    if opts.protocol.is_quantized() && p.ring_in != acc {
        if requantized_input(net, i) {
            if p.ring_in < acc {
                let s = ot.extend(p.ring_in, acc);
                add_nonlinear(r, s, l.input.elems() * opts.batch, profile);
                r.note = format!("extend {} -> {} bits", p.ring_in, acc);
            } else {
                r.note = format!("shares reduced {} -> {} bits locally", p.ring_in, acc);
            }
        } else {
            let s = ot.truncate(p.ring_in, acc);
            add_nonlinear(r, s, l.input.elems() * opts.batch, profile);
            r.note = format!("requantize {} -> {} bits", p.ring_in, acc);
        }
    }
    r.rounds += 1;
    let n = pf.he.ring_degree;
    let b = opts.batch.max(1);
    let is_bn = matches!(l.kind, LayerKind::BatchNorm);
    match opts.protocol {
        Protocol::Cryptflow2 => {
            let nn = n.as_u64();
            let (ci, co, bi, bo, prods) = if is_bn {
                let s = linear::simd_elementwise(
                    l.input.elems(),
                    n,
                    acc,
                    pf.bn.stat_bits,
                    pf.bn.max_prime_bits,
                    pf.he.log_q.get(),
                    false,
                    false,
                );
                (s.cts, s.cts, s.bytes_in, s.bytes_out, s.cts)
            } else {
                linear::cryptflow2_conv(&geom, nn, pf.he.log_q.get())
            };
            let (ci, co, bi, bo, prods) = (ci * b, co * b, bi * b, bo * b, prods * b);
            set_counts(r, ci, co, bi, bo);
            let full = crate::protocol::sizes::seal_zstd::full(nn, pf.he.log_q.get());
            r.seal_zstd = Some((ci * full, co * full));
            r.compute_s += (ci as f64 * profile.encrypt_us
                + prods as f64 * 2.0 * profile.mul_acc_us * 4.0
                + co as f64 * profile.decrypt_us)
                * nn as f64
                / 4096.0
                * 1e-6
                / profile.threads.max(1) as f64;
            r.note = join(&r.note, "SIMD packing, full ciphertexts");
            return Ok(());
        }
        Protocol::Cheetah if is_bn => {
            let nn = n.as_u64();
            let s = linear::simd_elementwise(
                l.input.elems(),
                n,
                acc,
                pf.bn.stat_bits,
                pf.bn.max_prime_bits,
                pf.he.log_q.get(),
                true,
                true,
            );
            let x = l.input;
            if !linear::cheetah_bn_coefficient_encoded(x.c, x.h, x.w, nn, s.primes) {
                let (ci, co, bi, bo) = (s.cts * b, s.cts * b, s.bytes_in * b, s.bytes_out * b);
                set_counts(r, ci, co, bi, bo);
                let resp_bits = pf.he.response_log_q.get();
                r.seal_zstd = Some((
                    ci * crate::protocol::sizes::seal_zstd::query(
                        nn,
                        pf.he.log_q.get(),
                        pf.he.seeded_query,
                    ),
                    co * crate::protocol::sizes::seal_zstd::response(
                        nn, resp_bits, s.c1_bits, nn, s.c0_bits,
                    ),
                ));
                r.compute_s += (ci as f64 * (profile.encrypt_us + 2.0 * profile.ntt_forward_us)
                    + co as f64 * (profile.decrypt_us + 2.0 * profile.ntt_inverse_us))
                    * 1e-6
                    / profile.threads.max(1) as f64;
                r.note = join(
                    &r.note,
                    &format!(
                        "HomBN in SIMD slots over {} CRT primes of {} bits",
                        s.primes, s.prime_bits
                    ),
                );
                return Ok(());
            }
            r.note = join(
                &r.note,
                "HomBN coefficient-encoded, one channel per ciphertext",
            );
        }
        _ => {}
    }
    let ctx = layer_context(net, i, opts, cm, acc, p.bits);
    let lat = |m: &LinearMapping, c: &LinearCost| mapping_latency(&link, profile, m, c);
    let (mapping, cost) = if let Some(m) = saved {
        let c = evaluate_coeff(&geom, &m, &ctx, cm)
            .map_err(|e| err(format!("the saved mapping is infeasible: {e}")))?;
        (m, c)
    } else if opts.protocol == Protocol::Cheetah || opts.protocol == Protocol::HequantNaive {
        // OpenCheetah runs a batch norm as HomBN's `bn_direct`: per channel, tiles of
        // sqrt(N) x sqrt(N) positions each scaled by the channel's factor
        // (docs/protocol-reference.md 2.3).
        let tiling = if is_bn && opts.protocol == Protocol::Cheetah {
            linear::cheetah_bn_tiling(&geom, n.as_u64())
        } else {
            cheetah_tiling(&geom, n.as_u64())
        };
        let m = LinearMapping {
            n,
            tiling,
            packing: crate::mapping::Packing::NONE,
        };
        let c = evaluate_coeff(&geom, &m, &ctx, cm)
            .map_err(|e| err(format!("{} mapping is infeasible: {e}", opts.protocol)))?;
        (m, c)
    } else {
        let search = || search_layer(&geom, &ctx, cm, space, opts.objective, &lat);
        let s = match memo {
            Some(m) => m.search(cm, geom, ctx, space, opts, search),
            None => std::sync::Arc::new(search()),
        };
        r.schemes = s.schemes.clone();
        match s.best {
            Some(b) => b,
            None => return Err(err(explain_infeasible(&s))),
        }
    };
    set_counts(r, cost.ct_in, cost.ct_out, cost.bytes_in, cost.bytes_out);
    r.seal_zstd = Some(seal_zstd_mapping(mapping.n.as_u64(), &cost, pf));
    if cost.conversion_bytes > 0 {
        // Shares of component i live in Z_{t_i} ([`crt_conversion_steps`]).
        let bytes = cost.conversion_bytes;
        r.bytes_nonlinear += bytes;
        r.bytes_client_to_server += bytes / 2;
        r.bytes_server_to_client += bytes - bytes / 2;
        r.rounds += cost.conversion_rounds;
        r.compute_s += bytes as f64 * 8.0 * profile.ot_ns_per_bit * 1e-9;
        r.note = join(&r.note, "CRT conversions in and out of Z_t_i");
    }
    r.compute_s += linear_compute_s(profile, mapping.n.as_u64(), &cost, true);
    r.offline_s = linear_offline_s(profile, mapping.n.as_u64(), &cost);
    r.mapping = Some(mapping);
    r.he = Some(cost);
    Ok(())
}

/// Adds an OT step on `elems` elements to a layer's non-linear part (bytes split evenly
/// between the directions, rounds added once).
/// Whether layer `i`'s input is an activation already requantized to its b_a bits: the
/// network's input, or the output of a ReLU or pooling layer reached through free layers
/// (flatten, pad); not an accumulator or a sum of them.
fn requantized_input(net: &Network, i: usize) -> bool {
    let mut j = net.layers[i].inputs.first().copied().unwrap_or(usize::MAX);
    for _ in 0..net.layers.len() {
        if j == usize::MAX {
            return true;
        }
        let l = &net.layers[j];
        match l.kind {
            LayerKind::Relu { .. }
            | LayerKind::MaxPool { .. }
            | LayerKind::AvgPool { .. }
            | LayerKind::GlobalAvgPool => return true,
            LayerKind::Flatten | LayerKind::Pad { .. } => {
                j = l.inputs.first().copied().unwrap_or(usize::MAX)
            }
            _ => return false,
        }
    }
    false
}

fn add_nonlinear(r: &mut LayerReport, s: nonlinear::Step, elems: u64, profile: &ComputeProfile) {
    let bytes = (s.bits * elems as f64 / 8.0).ceil() as u64;
    r.bytes_nonlinear += bytes;
    r.bytes_client_to_server += bytes / 2;
    r.bytes_server_to_client += bytes - bytes / 2;
    r.rounds += s.rounds;
    r.compute_s += s.bits * elems as f64 * profile.ot_ns_per_bit * 1e-9;
}

/// A coefficient mapping's ciphertext bytes each way in SEAL's zstd-compressed
/// serialisation ([`crate::protocol::sizes::seal_zstd`]): queries at every limb of q (the
/// body only when seeded), truncated responses at the response prime, each with the
/// layer's average kept body coefficients.
fn seal_zstd_mapping(n: u64, c: &LinearCost, pf: &ProtocolFile) -> (u64, u64) {
    use crate::protocol::sizes::seal_zstd;
    let resp_bits = c.log_q.min(pf.he.response_log_q.get()).max(c.c1_bits);
    let kept = if c.ct_out > 0 {
        (c.kept as f64 / c.ct_out as f64).round() as u64
    } else {
        0
    };
    (
        c.ct_in * seal_zstd::query(n, c.log_q, pf.he.seeded_query),
        c.ct_out * seal_zstd::response(n, resp_bits, c.c1_bits, kept, c.c0_bits),
    )
}

fn set_counts(r: &mut LayerReport, ci: u64, co: u64, bi: u64, bo: u64) {
    r.ct_client_to_server = ci;
    r.ct_server_to_client = co;
    r.bytes_client_to_server += bi;
    r.bytes_server_to_client += bo;
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}; {b}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{LinearMapping, Packing, Tiling};
    use crate::model::linear::{ConvGeom, evaluate_coeff};
    use crate::units::RingDegree;

    fn cost(log_q_fixed: Option<u32>) -> LinearCost {
        let cm = CostModel::builtin().unwrap();
        let g = ConvGeom {
            c: 16,
            h: 10,
            w: 10,
            m: 16,
            kh: 3,
            kw: 3,
            sh: 1,
            sw: 1,
            groups: 1,
            out_h: 8,
            out_w: 8,
            fan_in: 144,
        };
        let mut ctx = he_context(Protocol::Cheetah, &cm, 37, None, false);
        ctx.fixed_log_q = log_q_fixed;
        let m = LinearMapping {
            n: RingDegree::try_new(4096).unwrap(),
            tiling: Tiling {
                c_w: 16,
                h_w: 10,
                w_w: 10,
                m_w: 1,
            },
            packing: Packing::NONE,
        };
        evaluate_coeff(&g, &m, &ctx, &cm).unwrap()
    }

    /// A calibrated profile prices a 109-bit modulus with its wide-container figures and
    /// scales the NTT work with the primes the mapping needs (3 at 109 bits: the bound is
    /// 108 + 12 + 12 + 1 bits); an uncalibrated one keeps its single figures.
    /// The shipped profile without its optional figures (an uncalibrated one).
    fn bare_profile() -> crate::protocol::ComputeProfile {
        let mut p = CostModel::builtin().unwrap().compute;
        p.ntt_primes = None;
        p.wide_prime_factor = None;
        p.encrypt_wide_us = None;
        p.decrypt_wide_us = None;
        p.decompress_us = None;
        p.decompress_wide_us = None;
        p.server_query_us = None;
        p.server_response_us = None;
        p
    }

    #[test]
    fn calibrated_profile_prices_wide_moduli_and_ntt_primes() {
        let c = cost(Some(109));
        assert_eq!(c.ntt_primes, 3);
        let mut p = bare_profile();
        let plain = linear_compute_s(&p, 4096, &c, true);
        p.encrypt_wide_us = Some(p.encrypt_us * 2.0);
        p.decrypt_wide_us = Some(p.decrypt_us * 2.0);
        p.ntt_primes = Some(3);
        let wide = linear_compute_s(&p, 4096, &c, true);
        let enc_dec = (c.ct_in as f64 * p.encrypt_us + c.ct_out as f64 * p.decrypt_us) * 1e-6;
        assert!(
            (wide - plain - enc_dec).abs() < 1e-9,
            "{wide} {plain} {enc_dec}"
        );
        p.ntt_primes = Some(1);
        assert!(linear_compute_s(&p, 4096, &c, true) > wide);
    }

    #[test]
    fn the_servers_per_ciphertext_work_is_priced_per_query_and_per_response() {
        let c = cost(Some(109));
        let mut p = bare_profile();
        let base = linear_compute_s(&p, 4096, &c, true);
        // 109 bits: the wide decompression, not the narrow one.
        p.decompress_us = Some(1000.0);
        p.decompress_wide_us = Some(100.0);
        p.server_query_us = Some(10.0);
        p.server_response_us = Some(1.0);
        let with = linear_compute_s(&p, 4096, &c, true);
        let want = (c.ct_in as f64 * 110.0 + c.ct_out as f64 * 1.0) * 1e-6;
        assert!(((with - base) - want).abs() < 1e-12, "{with} {base} {want}");
        // Twice the ring degree, twice the work.
        assert!((linear_compute_s(&p, 8192, &c, true) - 2.0 * with).abs() < 1e-12);
    }

    #[test]
    fn the_wide_prime_factor_prices_only_mappings_on_62_bit_primes() {
        // Cheetah's q = 2^109 with 8-bit weights: a bound of 109 - 1 + 7 + 12 + ... bits,
        // which 3 small primes (3 x 49 bits) cover; 5 bits more of q need 62-bit ones.
        let small = cost(Some(109));
        assert_eq!((small.ntt_primes, small.ntt_prime_bits), (3, 50));
        let mut wide = small;
        wide.ntt_prime_bits = 62;
        let mut p = bare_profile();
        p.ntt_primes = Some(3);
        p.wide_prime_factor = None;
        let base = linear_compute_s(&p, 4096, &small, true);
        assert_eq!(linear_compute_s(&p, 4096, &wide, true), base);
        p.wide_prime_factor = Some(2.0);
        assert_eq!(linear_compute_s(&p, 4096, &small, true), base);
        // Only the NTT terms double: encryption and decryption stay.
        let enc_dec =
            (small.ct_in as f64 * p.encrypt_us + small.ct_out as f64 * p.decrypt_us) * 1e-6;
        let doubled = linear_compute_s(&p, 4096, &wide, true);
        assert!(
            ((doubled - enc_dec) - 2.0 * (base - enc_dec)).abs() < 1e-9,
            "{doubled} {base}"
        );
        assert_eq!(
            linear_offline_s(&p, 4096, &wide),
            2.0 * linear_offline_s(&p, 4096, &small)
        );
    }
}

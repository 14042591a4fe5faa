//! The workload: a network's layers, their shapes, MACs and bit widths.
//!
//! A [`Network`] is built only through [`Network::build`] (from a spec file, an
//! ONNX import or code), which infers every shape from the input and checks that
//! the shapes chain. Downstream code can therefore trust every shape it sees.

use crate::units::Bits;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// Largest accepted kernel, stride, padding and group count of a layer; the ONNX importer
/// checks its dimensions against the same bound.
pub const MAX_DIM: u64 = 1 << 20;
/// Largest accepted channel count of the input and `out_channels` / `out_features` of a
/// layer (shipped networks: at most 2048; ImageNet-21k heads: 21,843). The verify mode's
/// memory grows with the output channels (65,536 on an 8 x 8 input: 3.4 GB; 10^6 took
/// all of a 24 GB machine).
pub const MAX_CHANNELS: u64 = 1 << 16;
/// Largest accepted height or width of any tensor (the input and every layer's output).
/// The model's work per mapping grows with the tiles of an axis, so this bounds the run
/// time (a 3 x 4096 x 4096 conv: 2 s to estimate or search, 8192: 8 s and 1 GB; ONNX
/// inputs of 65536 x 65536 hung). Shipped networks stay below 256.
pub const MAX_SPATIAL: u64 = 1 << 12;
/// Largest accepted number of elements of one tensor.
pub const MAX_ELEMS: u64 = 1 << 36;
/// Largest accepted multiply-accumulate count of one layer.
pub const MAX_MACS: u64 = 1 << 50;
/// Largest accepted number of layers (the planner's time grows with its square: 10,000
/// layers take half a second). Shipped networks have at most a few hundred.
pub const MAX_LAYERS: usize = 1 << 14;

/// A tensor shape, channels x height x width (batch 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shape {
    pub c: u64,
    pub h: u64,
    pub w: u64,
}

impl Shape {
    pub fn new(c: u64, h: u64, w: u64) -> Self {
        Shape { c, h, w }
    }
    pub fn elems(&self) -> u64 {
        self.c * self.h * self.w
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.c, self.h, self.w)
    }
}

/// Weight and activation bit widths of one layer (activations: the layer's input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BitWidths {
    pub w: Bits,
    pub a: Bits,
}

impl fmt::Display for BitWidths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "w{}a{}", self.w, self.a)
    }
}

/// Padding on each side: top, bottom, left, right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Padding {
    pub top: u64,
    pub bottom: u64,
    pub left: u64,
    pub right: u64,
}

impl Padding {
    pub fn uniform(p: u64) -> Self {
        Padding {
            top: p,
            bottom: p,
            left: p,
            right: p,
        }
    }
    pub fn is_zero(&self) -> bool {
        self.top == 0 && self.bottom == 0 && self.left == 0 && self.right == 0
    }
}

/// Whether a batch norm is folded into the convolution before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BnFold {
    #[default]
    None,
    Folded,
}

/// A 2-D window (convolution kernel or pooling window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Window {
    pub kh: u64,
    pub kw: u64,
    pub sh: u64,
    pub sw: u64,
    pub pad: Padding,
}

impl Window {
    /// Output size along one axis, or `None` if the window does not fit.
    fn out_dim(input: u64, pad_a: u64, pad_b: u64, k: u64, s: u64) -> Option<u64> {
        let padded = input.checked_add(pad_a)?.checked_add(pad_b)?;
        if k == 0 || s == 0 || padded < k {
            return None;
        }
        Some((padded - k) / s + 1)
    }
    pub fn out_hw(&self, h: u64, w: u64) -> Option<(u64, u64)> {
        Some((
            Self::out_dim(h, self.pad.top, self.pad.bottom, self.kh, self.sh)?,
            Self::out_dim(w, self.pad.left, self.pad.right, self.kw, self.sw)?,
        ))
    }
}

/// What a layer computes. Each kind is priced by the model as linear (HE),
/// non-linear (OT) or free (local to each party).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LayerKind {
    Conv2d {
        out_channels: u64,
        window: Window,
        groups: u64,
        bn: BnFold,
    },
    Linear {
        out_features: u64,
    },
    BatchNorm,
    Relu {
        truncate: bool,
        relu6: bool,
    },
    MaxPool {
        window: Window,
    },
    AvgPool {
        window: Window,
    },
    GlobalAvgPool,
    Add,
    Concat,
    Truncate,
    Extend,
    BiasAdd,
    Pad {
        pad: Padding,
    },
    Flatten,
    Argmax,
}

/// How the model prices a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostClass {
    /// Computed with homomorphic encryption (conv, fully connected, batch norm).
    Linear,
    /// Computed with OT-based protocols on secret shares.
    NonLinear,
    /// Local to each party: no communication.
    Free,
}

impl LayerKind {
    pub fn name(&self) -> &'static str {
        match self {
            LayerKind::Conv2d { .. } => "conv2d",
            LayerKind::Linear { .. } => "linear",
            LayerKind::BatchNorm => "batch_norm",
            LayerKind::Relu { .. } => "relu",
            LayerKind::MaxPool { .. } => "max_pool",
            LayerKind::AvgPool { .. } => "avg_pool",
            LayerKind::GlobalAvgPool => "global_avg_pool",
            LayerKind::Add => "add",
            LayerKind::Concat => "concat",
            LayerKind::Truncate => "truncate",
            LayerKind::Extend => "extend",
            LayerKind::BiasAdd => "bias_add",
            LayerKind::Pad { .. } => "pad",
            LayerKind::Flatten => "flatten",
            LayerKind::Argmax => "argmax",
        }
    }

    pub fn cost_class(&self) -> CostClass {
        match self {
            LayerKind::Conv2d { .. } | LayerKind::Linear { .. } | LayerKind::BatchNorm => {
                CostClass::Linear
            }
            LayerKind::Relu { .. }
            | LayerKind::MaxPool { .. }
            | LayerKind::AvgPool { .. }
            | LayerKind::GlobalAvgPool
            | LayerKind::Truncate
            | LayerKind::Extend
            | LayerKind::Argmax => CostClass::NonLinear,
            LayerKind::Add
            | LayerKind::Concat
            | LayerKind::BiasAdd
            | LayerKind::Pad { .. }
            | LayerKind::Flatten => CostClass::Free,
        }
    }

    /// Whether the layer has weights (and so a weight bit width).
    pub fn has_weights(&self) -> bool {
        matches!(self, LayerKind::Conv2d { .. } | LayerKind::Linear { .. })
    }
}

/// One layer with its inferred shapes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    pub name: String,
    pub kind: LayerKind,
    /// Indices of the layers whose outputs feed this one (`usize::MAX` = network input).
    pub inputs: Vec<usize>,
    pub input: Shape,
    pub output: Shape,
    /// Bit widths declared for this layer in the file (conv / linear only).
    pub bits: Option<BitWidths>,
    /// The layer's own weights, summarised: entry `b - WEIGHT_L1_MIN_BITS` is the largest L1
    /// norm over output channels of the weights quantized to b bits ([`WeightL1`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_l1: Option<WeightL1>,
}

/// Smallest and largest weight width a [`WeightL1`] table covers.
pub const WEIGHT_L1_MIN_BITS: u32 = 2;
pub const WEIGHT_L1_MAX_BITS: u32 = 16;

/// Largest L1 norms of a layer's output channels with its weights quantized to b bits, for b
/// in [`WEIGHT_L1_MIN_BITS`]..=[`WEIGHT_L1_MAX_BITS`]: each output channel o quantized on its
/// own, symmetrically, q = round(w / s_o) with s_o = max |w_o| / (2^(b-1) - 1), so |q| <=
/// 2^(b-1) - 1 (docs/protocol-reference.md 4.1: the HEQuant authors bound the accumulator by
/// max_o sum |W_o| of the integer weights). Per-channel symmetric quantization does not change
/// when a batch norm is folded into the channel (it scales w_o by one factor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightL1(pub Vec<u64>);

impl WeightL1 {
    /// The table of weights laid out as `channels` rows of `per_channel` values.
    pub fn of(weights: &[f32], channels: usize, per_channel: usize) -> Option<WeightL1> {
        if channels == 0 || per_channel == 0 || weights.len() != channels * per_channel {
            return None;
        }
        if weights.iter().any(|w| !w.is_finite()) {
            return None;
        }
        let mut table = vec![0u64; (WEIGHT_L1_MAX_BITS - WEIGHT_L1_MIN_BITS + 1) as usize];
        for row in weights.chunks_exact(per_channel) {
            let top = row.iter().fold(0f64, |m, &w| m.max((w as f64).abs()));
            if top == 0.0 {
                continue;
            }
            for (i, t) in table.iter_mut().enumerate() {
                let qmax = ((1u64 << (i as u32 + WEIGHT_L1_MIN_BITS - 1)) - 1) as f64;
                let l1: u64 = row
                    .iter()
                    .map(|&w| ((w as f64).abs() / top * qmax).round() as u64)
                    .sum();
                *t = (*t).max(l1);
            }
        }
        Some(WeightL1(table))
    }

    /// The largest output channel's L1 norm at `b` bits, if the table covers `b`.
    pub fn at(&self, b: u32) -> Option<u64> {
        if !(WEIGHT_L1_MIN_BITS..=WEIGHT_L1_MAX_BITS).contains(&b) {
            return None;
        }
        self.0.get((b - WEIGHT_L1_MIN_BITS) as usize).copied()
    }
}

impl Layer {
    /// Multiply-accumulates of the layer (conv and linear only).
    pub fn macs(&self) -> u64 {
        match &self.kind {
            LayerKind::Conv2d { window, groups, .. } => {
                self.output.elems() * (self.input.c / groups) * window.kh * window.kw
            }
            LayerKind::Linear { out_features } => self.input.elems() * out_features,
            _ => 0,
        }
    }

    /// Number of terms summed into one output (the accumulation depth).
    pub fn fan_in(&self) -> u64 {
        match &self.kind {
            LayerKind::Conv2d { window, groups, .. } => {
                (self.input.c / groups) * window.kh * window.kw
            }
            LayerKind::Linear { .. } => self.input.elems(),
            LayerKind::BatchNorm => 1,
            _ => 0,
        }
    }

    pub fn shape_text(&self) -> String {
        match &self.kind {
            LayerKind::Conv2d {
                out_channels,
                window,
                groups,
                ..
            } => {
                let g = if *groups > 1 {
                    format!(" g{groups}")
                } else {
                    String::new()
                };
                format!(
                    "{} -> {} k{}x{} s{}{}",
                    self.input, out_channels, window.kh, window.kw, window.sh, g
                )
            }
            LayerKind::Linear { out_features } => {
                format!("{} -> {}", self.input.elems(), out_features)
            }
            _ => format!("{}", self.input),
        }
    }
}

/// Why a shape is beyond the limits ([`MAX_SPATIAL`], [`MAX_ELEMS`]), or `None` when it is
/// within them.
fn shape_limit(s: &Shape) -> Option<String> {
    if s.h > MAX_SPATIAL || s.w > MAX_SPATIAL {
        return Some(format!(
            "{s} is more than {MAX_SPATIAL} high or wide (the limit of this tool)"
        ));
    }
    match s.c.checked_mul(s.h).and_then(|v| v.checked_mul(s.w)) {
        Some(e) if e <= MAX_ELEMS => None,
        _ => Some(format!(
            "{s} has more than {MAX_ELEMS} elements (the limit of this tool)"
        )),
    }
}

/// Checks every parameter of a layer against [`MAX_DIM`] and [`MAX_CHANNELS`]: (key at
/// fault, message).
fn check_params(kind: &LayerKind) -> Result<(), (&'static str, String)> {
    let limit = |key: &'static str, v: u64, max: u64| {
        if v > max {
            Err((key, format!("{key} = {v} is more than the limit of {max}")))
        } else {
            Ok(())
        }
    };
    let dim = |key: &'static str, v: u64| limit(key, v, MAX_DIM);
    let pad = |p: &Padding| {
        for v in [p.top, p.bottom, p.left, p.right] {
            dim("padding", v)?;
        }
        Ok(())
    };
    let window = |w: &Window| {
        dim("kernel", w.kh)?;
        dim("kernel", w.kw)?;
        dim("stride", w.sh)?;
        dim("stride", w.sw)?;
        pad(&w.pad)
    };
    match kind {
        LayerKind::Conv2d {
            out_channels,
            window: w,
            groups,
            ..
        } => {
            limit("out_channels", *out_channels, MAX_CHANNELS)?;
            dim("groups", *groups)?;
            window(w)
        }
        LayerKind::Linear { out_features } => limit("out_features", *out_features, MAX_CHANNELS),
        LayerKind::MaxPool { window: w } | LayerKind::AvgPool { window: w } => window(w),
        LayerKind::Pad { pad: p } => pad(p),
        _ => Ok(()),
    }
}

/// A layer as described before shape inference.
#[derive(Debug, Clone)]
pub struct LayerDef {
    pub name: String,
    pub kind: LayerKind,
    /// Names of the source layers; empty = the previous layer (or the input).
    pub from: Vec<String>,
    pub declared_output: Option<Shape>,
    pub bits: Option<BitWidths>,
    pub weight_l1: Option<WeightL1>,
}

/// Why a network description is inconsistent. `layer` is the index in the definition list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("layer {layer} ('{name}'): {message}")]
pub struct WorkloadError {
    pub layer: usize,
    pub name: String,
    /// Which key of the layer is at fault (for pointing at it in a file).
    pub key: &'static str,
    pub message: String,
}

/// A validated network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    pub description: String,
    pub source: String,
    pub input: Shape,
    pub default_bits: Option<BitWidths>,
    pub layers: Vec<Layer>,
    /// Operators of an imported model left out as free (unsupported, skipped on request):
    /// when not empty, every cost of the network is partial.
    #[serde(default)]
    pub skipped: Vec<String>,
    /// ReLU budgets (SNL / SENet / DeepReDuce-style networks that keep only some ReLUs):
    /// kept ReLUs of a relu layer by name (`relu_budget = N` in the network file). Layers
    /// not named keep every ReLU unless [`Network::relu_budget_total`] is given.
    #[serde(default)]
    pub relu_budget: std::collections::BTreeMap<String, u64>,
    /// ReLUs kept over the whole network (`relu_budget_total = N`), spread over the relu
    /// layers by [`spread_budget`].
    #[serde(default)]
    pub relu_budget_total: Option<u64>,
}

/// Spreads `total` kept ReLUs over layers of `elems` elements in proportion to their
/// element counts, by largest remainder (Hamilton's rule): layer i gets
/// floor(total * e_i / E) (E = sum of e_i), and the units left over go one each to the
/// layers with the largest remainders (total * e_i mod E), ties to the earlier layer.
/// The shares sum to exactly `total`; with total <= E no layer gets more than its
/// elements (floor(total * e_i / E) < e_i whenever a remainder is left). `None` when
/// total > E.
pub fn spread_budget(total: u64, elems: &[u64]) -> Option<Vec<u64>> {
    let e: u128 = elems.iter().map(|&x| x as u128).sum();
    if total as u128 > e {
        return None;
    }
    if e == 0 {
        return Some(vec![0; elems.len()]);
    }
    let t = total as u128;
    let mut out: Vec<u64> = elems.iter().map(|&x| (t * x as u128 / e) as u64).collect();
    let left = total - out.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..elems.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(t * elems[i] as u128 % e), i));
    for &i in order.iter().take(left as usize) {
        out[i] += 1;
    }
    Some(out)
}

/// Summary counts of a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NetworkStats {
    pub layers: usize,
    pub linear_layers: usize,
    pub macs: u64,
    pub relu_elements: u64,
}

impl Network {
    /// Infers all shapes, checks that they chain, and builds the network.
    pub fn build(
        name: String,
        description: String,
        source: String,
        input: Shape,
        default_bits: Option<BitWidths>,
        defs: Vec<LayerDef>,
    ) -> Result<Network, WorkloadError> {
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut layers: Vec<Layer> = Vec::with_capacity(defs.len());
        let input_error = |message: String| WorkloadError {
            layer: 0,
            name: "input".into(),
            key: "input",
            message,
        };
        if input.c == 0 || input.h == 0 || input.w == 0 {
            return Err(input_error(format!(
                "the input shape {input} has a zero dimension"
            )));
        }
        if input.c > MAX_CHANNELS {
            return Err(input_error(format!(
                "the input has {} channels, more than the limit of {MAX_CHANNELS}",
                input.c
            )));
        }
        if let Some(m) = shape_limit(&input) {
            return Err(input_error(format!("the input {m}")));
        }
        if defs.len() > MAX_LAYERS {
            return Err(WorkloadError {
                layer: MAX_LAYERS,
                name: name.clone(),
                key: "layer",
                message: format!(
                    "the network has {} layers, more than the limit of {MAX_LAYERS}",
                    defs.len()
                ),
            });
        }
        let mut total_macs = 0u64;
        for (i, def) in defs.into_iter().enumerate() {
            let err = |key: &'static str, message: String| WorkloadError {
                layer: i,
                name: def.name.clone(),
                key,
                message,
            };
            if def.name.is_empty() {
                return Err(err("name", "a layer needs a non-empty name".into()));
            }
            if index.contains_key(&def.name) || def.name == "input" {
                return Err(err(
                    "name",
                    format!("the name '{}' is used twice", def.name),
                ));
            }
            let mut inputs = Vec::new();
            if def.from.is_empty() {
                inputs.push(if i == 0 { usize::MAX } else { i - 1 });
            } else {
                for f in &def.from {
                    if f == "input" {
                        inputs.push(usize::MAX);
                    } else {
                        match index.get(f) {
                            Some(&j) => inputs.push(j),
                            None => {
                                return Err(err(
                                    "from",
                                    format!("'{f}' is not the name of an earlier layer"),
                                ));
                            }
                        }
                    }
                }
            }
            let shape_of = |j: usize| {
                if j == usize::MAX {
                    input
                } else {
                    layers[j].output
                }
            };
            let in_shapes: Vec<Shape> = inputs.iter().map(|&j| shape_of(j)).collect();
            let x = in_shapes[0];
            let multi = matches!(def.kind, LayerKind::Add | LayerKind::Concat);
            if !multi && inputs.len() != 1 {
                return Err(err(
                    "from",
                    format!(
                        "a {} layer takes one input, got {}",
                        def.kind.name(),
                        inputs.len()
                    ),
                ));
            }
            if let Err((key, m)) = check_params(&def.kind) {
                return Err(err(key, m));
            }
            let output = match &def.kind {
                LayerKind::Conv2d {
                    out_channels,
                    window,
                    groups,
                    ..
                } => {
                    if *out_channels == 0 {
                        return Err(err("out_channels", "must be at least 1".into()));
                    }
                    if *groups == 0
                        || !x.c.is_multiple_of(*groups)
                        || !out_channels.is_multiple_of(*groups)
                    {
                        return Err(err(
                            "groups",
                            format!(
                                "groups = {groups} must divide the input channels ({}) and out_channels ({out_channels})",
                                x.c
                            ),
                        ));
                    }
                    let (oh, ow) = window.out_hw(x.h, x.w).ok_or_else(|| {
                        err(
                            "kernel",
                            format!(
                                "a {}x{} kernel with stride {}x{} does not fit the {}x{} input (with padding)",
                                window.kh, window.kw, window.sh, window.sw, x.h, x.w
                            ),
                        )
                    })?;
                    Shape::new(*out_channels, oh, ow)
                }
                LayerKind::Linear { out_features } => {
                    if *out_features == 0 {
                        return Err(err("out_features", "must be at least 1".into()));
                    }
                    Shape::new(*out_features, 1, 1)
                }
                LayerKind::MaxPool { window } | LayerKind::AvgPool { window } => {
                    let (oh, ow) = window.out_hw(x.h, x.w).ok_or_else(|| {
                        err(
                            "kernel",
                            format!(
                                "a {}x{} window does not fit the {}x{} input",
                                window.kh, window.kw, x.h, x.w
                            ),
                        )
                    })?;
                    Shape::new(x.c, oh, ow)
                }
                LayerKind::GlobalAvgPool => Shape::new(x.c, 1, 1),
                LayerKind::Add => {
                    if inputs.len() < 2 {
                        return Err(err("from", "an add needs at least two inputs".into()));
                    }
                    if let Some(s) = in_shapes.iter().find(|s| **s != x) {
                        return Err(err(
                            "from",
                            format!("the inputs of an add must have one shape, got {x} and {s}"),
                        ));
                    }
                    x
                }
                LayerKind::Concat => {
                    if inputs.len() < 2 {
                        return Err(err("from", "a concat needs at least two inputs".into()));
                    }
                    if let Some(s) = in_shapes.iter().find(|s| s.h != x.h || s.w != x.w) {
                        return Err(err(
                            "from",
                            format!(
                                "the inputs of a concat must agree in height and width, got {x} and {s}"
                            ),
                        ));
                    }
                    let c = in_shapes
                        .iter()
                        .try_fold(0u64, |a, s| a.checked_add(s.c))
                        .ok_or_else(|| err("from", "the concat has too many channels".into()))?;
                    Shape::new(c, x.h, x.w)
                }
                LayerKind::Pad { pad } => {
                    let padded = |len: u64, a: u64, b: u64| {
                        len.checked_add(a)
                            .and_then(|v| v.checked_add(b))
                            .filter(|&v| v <= MAX_SPATIAL)
                            .ok_or_else(|| {
                                err(
                                    "padding",
                                    format!(
                                        "padding {x} by {a} + {b} gives more than the limit of {MAX_SPATIAL} rows or columns"
                                    ),
                                )
                            })
                    };
                    Shape::new(
                        x.c,
                        padded(x.h, pad.top, pad.bottom)?,
                        padded(x.w, pad.left, pad.right)?,
                    )
                }
                LayerKind::Flatten => Shape::new(x.elems(), 1, 1),
                LayerKind::Argmax => Shape::new(1, 1, 1),
                LayerKind::BatchNorm
                | LayerKind::Relu { .. }
                | LayerKind::Truncate
                | LayerKind::Extend
                | LayerKind::BiasAdd => x,
            };
            if let Some(m) = shape_limit(&output) {
                let key = match &def.kind {
                    LayerKind::Conv2d { .. }
                        if output.h > MAX_SPATIAL || output.w > MAX_SPATIAL =>
                    {
                        "padding"
                    }
                    LayerKind::Conv2d { .. } => "out_channels",
                    LayerKind::Linear { .. } => "out_features",
                    LayerKind::MaxPool { .. }
                    | LayerKind::AvgPool { .. }
                    | LayerKind::Pad { .. } => "padding",
                    LayerKind::Add | LayerKind::Concat => "from",
                    _ => "kind",
                };
                return Err(err(key, format!("the output {m}")));
            }
            let macs = match &def.kind {
                LayerKind::Conv2d { window, groups, .. } => output
                    .elems()
                    .checked_mul(x.c / groups)
                    .and_then(|v| v.checked_mul(window.kh))
                    .and_then(|v| v.checked_mul(window.kw)),
                LayerKind::Linear { .. } => x.elems().checked_mul(output.c),
                _ => Some(0),
            };
            match macs.and_then(|v| v.checked_add(total_macs)) {
                Some(v) if v <= MAX_MACS => total_macs = v,
                _ => {
                    let key = if matches!(def.kind, LayerKind::Linear { .. }) {
                        "out_features"
                    } else {
                        "out_channels"
                    };
                    return Err(err(
                        key,
                        format!(
                            "the network has more than {MAX_MACS} multiply-accumulates up to this layer, the limit of this tool"
                        ),
                    ));
                }
            }
            if let Some(d) = def.declared_output
                && d != output
            {
                return Err(err(
                    "out",
                    format!(
                        "declared output shape {d} does not match the shape inferred from its input ({output})"
                    ),
                ));
            }
            if def.bits.is_some() && !def.kind.has_weights() {
                return Err(err(
                    "bits",
                    format!(
                        "a {} layer has no weights to give bit widths to",
                        def.kind.name()
                    ),
                ));
            }
            if let Some(t) = &def.weight_l1 {
                if !def.kind.has_weights() {
                    return Err(err(
                        "weight_l1",
                        format!(
                            "a {} layer has no weights to take norms of",
                            def.kind.name()
                        ),
                    ));
                }
                let n = (WEIGHT_L1_MAX_BITS - WEIGHT_L1_MIN_BITS + 1) as usize;
                if t.0.len() != n {
                    return Err(err(
                        "weight_l1",
                        format!(
                            "{} entries; one per weight width {WEIGHT_L1_MIN_BITS}..={WEIGHT_L1_MAX_BITS} ({n}) are expected",
                            t.0.len()
                        ),
                    ));
                }
                let fan_in = match &def.kind {
                    LayerKind::Conv2d { window, groups, .. } => {
                        (x.c / groups) * window.kh * window.kw
                    }
                    _ => x.elems(),
                };
                for (i, &v) in t.0.iter().enumerate() {
                    let b = i as u32 + WEIGHT_L1_MIN_BITS;
                    let most = fan_in.saturating_mul((1u64 << (b - 1)) - 1);
                    if v > most {
                        return Err(err(
                            "weight_l1",
                            format!(
                                "the {b}-bit entry {v} exceeds what {fan_in} weights of at most {} can sum to ({most})",
                                (1u64 << (b - 1)) - 1
                            ),
                        ));
                    }
                }
            }
            index.insert(def.name.clone(), i);
            let input_shape = if matches!(def.kind, LayerKind::Concat) {
                Shape::new(output.c, x.h, x.w)
            } else {
                x
            };
            layers.push(Layer {
                name: def.name,
                kind: def.kind,
                inputs,
                input: input_shape,
                output,
                bits: def.bits,
                weight_l1: def.weight_l1,
            });
        }
        if layers.is_empty() {
            return Err(WorkloadError {
                layer: 0,
                name: name.clone(),
                key: "layer",
                message: "the network has no layers".into(),
            });
        }
        Ok(Network {
            name,
            description,
            source,
            input,
            default_bits,
            layers,
            skipped: Vec::new(),
            relu_budget: Default::default(),
            relu_budget_total: None,
        })
    }

    pub fn stats(&self) -> NetworkStats {
        NetworkStats {
            layers: self.layers.len(),
            linear_layers: self.layers.iter().filter(|l| l.kind.has_weights()).count(),
            macs: self.layers.iter().map(Layer::macs).sum(),
            relu_elements: self
                .layers
                .iter()
                .filter(|l| matches!(l.kind, LayerKind::Relu { .. }))
                .map(|l| l.output.elems())
                .sum(),
        }
    }

    /// Kept ReLUs of every layer (`None`: not a relu layer, or every ReLU kept): the
    /// total `over` (the `--relu-budget` flag) when given, spread over all relu layers by
    /// [`spread_budget`] (it replaces the file's budgets); otherwise the file's
    /// `relu_budget_total`, spread the same way; otherwise the per-layer `relu_budget`s.
    pub fn relu_kept(&self, over: Option<u64>) -> Result<Vec<Option<u64>>, String> {
        let relus: Vec<usize> = (0..self.layers.len())
            .filter(|&i| matches!(self.layers[i].kind, LayerKind::Relu { .. }))
            .collect();
        let mut out = vec![None; self.layers.len()];
        let (total, what) = match (over, self.relu_budget_total) {
            (Some(t), _) => (Some(t), "--relu-budget"),
            (None, Some(t)) => (Some(t), "relu_budget_total"),
            (None, None) => (None, ""),
        };
        if let Some(t) = total {
            let elems: Vec<u64> = relus
                .iter()
                .map(|&i| self.layers[i].output.elems())
                .collect();
            let all: u64 = elems.iter().sum();
            let v = spread_budget(t, &elems).ok_or_else(|| {
                format!(
                    "{what} = {t}: more than the {all} ReLU elements of {}",
                    self.name
                )
            })?;
            for (&i, k) in relus.iter().zip(v) {
                out[i] = Some(k);
            }
            return Ok(out);
        }
        for &i in &relus {
            out[i] = self.relu_budget.get(&self.layers[i].name).copied();
        }
        Ok(out)
    }

    pub fn layer_index(&self, name: &str) -> Option<usize> {
        self.layers.iter().position(|l| l.name == name)
    }

    /// Indices of the layers that read the output of layer `i`.
    pub fn consumers(&self, i: usize) -> Vec<usize> {
        self.layers
            .iter()
            .enumerate()
            .filter(|(_, l)| l.inputs.contains(&i))
            .map(|(j, _)| j)
            .collect()
    }

    /// [`Network::consumers`] of every layer at once, in one pass (linear in the layers).
    pub fn consumer_table(&self) -> Vec<Vec<usize>> {
        let mut t = vec![Vec::new(); self.layers.len()];
        for (j, l) in self.layers.iter().enumerate() {
            for &i in &l.inputs {
                if let Some(v) = t.get_mut(i)
                    && v.last() != Some(&j)
                {
                    v.push(j);
                }
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(name: &str, m: u64, k: u64, s: u64, p: u64) -> LayerDef {
        LayerDef {
            name: name.into(),
            kind: LayerKind::Conv2d {
                out_channels: m,
                window: Window {
                    kh: k,
                    kw: k,
                    sh: s,
                    sw: s,
                    pad: Padding::uniform(p),
                },
                groups: 1,
                bn: BnFold::None,
            },
            from: vec![],
            declared_output: None,
            bits: None,
            weight_l1: None,
        }
    }

    #[test]
    fn shapes_chain_and_macs() {
        let net = Network::build(
            "t".into(),
            String::new(),
            String::new(),
            Shape::new(3, 32, 32),
            None,
            vec![conv("c1", 16, 3, 1, 1), conv("c2", 32, 3, 2, 1)],
        )
        .unwrap();
        assert_eq!(net.layers[1].output, Shape::new(32, 16, 16));
        assert_eq!(net.layers[0].macs(), 16 * 32 * 32 * 3 * 9);
    }

    #[test]
    fn declared_shape_mismatch_names_layer_and_key() {
        let mut c = conv("c1", 16, 3, 1, 0);
        c.declared_output = Some(Shape::new(16, 32, 32));
        let e = Network::build(
            "t".into(),
            String::new(),
            String::new(),
            Shape::new(3, 32, 32),
            None,
            vec![c],
        )
        .unwrap_err();
        assert_eq!(e.key, "out");
        assert!(e.message.contains("16x30x30"), "{}", e.message);
    }

    #[test]
    fn kernel_too_large_is_an_error() {
        let e = Network::build(
            "t".into(),
            String::new(),
            String::new(),
            Shape::new(3, 4, 4),
            None,
            vec![conv("c1", 16, 7, 1, 0)],
        )
        .unwrap_err();
        assert_eq!(e.key, "kernel");
    }

    fn build(input: Shape, defs: Vec<LayerDef>) -> Result<Network, WorkloadError> {
        Network::build("t".into(), String::new(), String::new(), input, None, defs)
    }

    #[test]
    fn window_arithmetic_does_not_wrap() {
        let w = Window {
            kh: 3,
            kw: 3,
            sh: 1,
            sw: 1,
            pad: Padding::uniform(u64::MAX / 2),
        };
        assert_eq!(w.out_hw(8, 8), None);
    }

    #[test]
    fn limits_name_the_key_at_fault() {
        let small = Shape::new(3, 8, 8);
        let e = build(small, vec![conv("c1", 4, 3, 1, 1 << 62)]).unwrap_err();
        assert_eq!(e.key, "padding", "{e}");
        let e = build(small, vec![conv("c1", 4, 3, 1, i64::MAX as u64)]).unwrap_err();
        assert_eq!(e.key, "padding", "{e}");
        let e = build(small, vec![conv("c1", MAX_CHANNELS + 1, 3, 1, 1)]).unwrap_err();
        assert_eq!(e.key, "out_channels", "{e}");
        // Within each parameter's limit, but the output too wide.
        let e = build(small, vec![conv("c1", 4, 1, 1, MAX_SPATIAL)]).unwrap_err();
        assert_eq!(e.key, "padding", "{e}");
        for input in [
            Shape::new(3, MAX_SPATIAL + 1, 8),
            Shape::new(u64::MAX, 32, 32),
            Shape::new(MAX_CHANNELS, MAX_SPATIAL, MAX_SPATIAL),
        ] {
            let e = build(input, vec![conv("c1", 4, 1, 1, 0)]).unwrap_err();
            assert_eq!(e.key, "input", "{input}: {e}");
        }
        let pad = LayerDef {
            name: "p".into(),
            kind: LayerKind::Pad {
                pad: Padding::uniform(100_000),
            },
            from: vec![],
            declared_output: None,
            bits: None,
            weight_l1: None,
        };
        let e = build(small, vec![pad]).unwrap_err();
        assert_eq!((e.layer, e.key), (0, "padding"), "{e}");
        let many: Vec<LayerDef> = (0..=MAX_LAYERS)
            .map(|i| conv(&format!("c{i}"), 3, 1, 1, 0))
            .collect();
        assert_eq!(build(small, many).unwrap_err().key, "layer");
        // The largest of everything at once still builds, with exact counts.
        let n = build(
            Shape::new(MAX_CHANNELS, 1024, 1024),
            vec![conv("c1", 64, 1, 1, 0)],
        )
        .unwrap();
        assert_eq!(n.stats().macs, 64 * 1024 * 1024 * MAX_CHANNELS);
    }

    /// The spreading rule gives every layer floor or ceil of its proportional share, never
    /// more than its elements, and the shares sum to exactly the total.
    #[test]
    fn spread_budget_sums_exactly_to_the_total() {
        let sizes: [&[u64]; 4] = [
            &[65536, 65536, 32768, 16384, 8192],
            &[7, 3, 1],
            &[1, 1, 1],
            &[0, 5, 0],
        ];
        for elems in sizes {
            let all: u64 = elems.iter().sum();
            for total in [0, 1, 2, all / 3, all / 2 + 1, all.saturating_sub(1), all] {
                let v = spread_budget(total, elems).unwrap();
                assert_eq!(v.iter().sum::<u64>(), total, "{elems:?} {total}");
                for (k, e) in v.iter().zip(elems) {
                    assert!(k <= e);
                    let q = total as f64 * *e as f64 / all as f64;
                    assert!((*k as f64 - q).abs() < 1.0, "{k} vs {q}");
                }
            }
            assert!(spread_budget(all + 1, elems).is_none());
        }
        // 10 over [7, 3, 1] (E = 11): quotas 6.36, 2.73, 0.91 -> floors 6, 2, 0; the two
        // units left go to the remainders 8/11 and 10/11: [6, 3, 1].
        assert_eq!(spread_budget(10, &[7, 3, 1]).unwrap(), vec![6, 3, 1]);
    }
}

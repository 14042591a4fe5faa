//! Graph checks, topological order, shape inference and the node -> layer translation.

use super::proto::{AttributeProto, ModelProto, NodeProto, TensorProto, data_type as dt};
use super::{ImportOptions, ImportSummary, Imported, NodeRef, OnnxError, Unsupported};
use crate::units::Bits;
use crate::workload::{
    BitWidths, BnFold, LayerDef, LayerKind, Network, Padding, Shape, WeightL1, Window,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Largest accepted tensor dimension (and input-shape dimension).
pub const MAX_DIM: u64 = crate::workload::MAX_DIM;
/// Largest accepted number of elements of one tensor.
const MAX_ELEMS: u64 = crate::workload::MAX_ELEMS;
/// Largest accepted multiply-accumulate count of one layer.
const MAX_MACS: u64 = crate::workload::MAX_MACS;
/// Constants with at most this many elements have their values read (shapes, Clip bounds).
const MAX_CONST_VALUES: usize = 64;

/// An activation: a run-time tensor, produced by a hequant layer (`src`) or the input.
#[derive(Debug, Clone)]
struct Act {
    /// ONNX shape, batch first (batch 1).
    shape: Vec<u64>,
    /// The hequant layer that produces it ("input" for the network input).
    src: String,
    /// Bit width when it is a quantized tensor (after QuantizeLinear).
    bits: Option<u32>,
    /// Index of the conv definition whose direct output this is (for folding BN).
    conv: Option<usize>,
}

/// A constant: an initializer, a `Constant` node, or a value computed only from those.
#[derive(Debug, Clone, Default)]
struct Const {
    dims: Vec<i64>,
    dtype: i32,
    ints: Option<Vec<i64>>,
    floats: Option<Vec<f32>>,
    /// Bit width of the quantized integers behind it (after DequantizeLinear).
    bits: Option<u32>,
    /// A float weight's largest L1 norms once quantized (`WeightL1`), over the rows (dim 0:
    /// a conv's output channels, a transposed Gemm's outputs) and, for a matrix, over the
    /// columns (dim 1: a MatMul's outputs).
    l1_rows: Option<WeightL1>,
    l1_cols: Option<WeightL1>,
}

#[derive(Debug, Clone)]
enum Val {
    Act(Act),
    Const(Const),
}

/// Why a node could not be translated.
enum Issue {
    /// The operator, or this use of it, is outside what the importer models.
    Unsupported(String),
    /// The file is inconsistent.
    Hard(String),
}

type R<T> = Result<T, Issue>;

fn unsup<T>(m: impl Into<String>) -> R<T> {
    Err(Issue::Unsupported(m.into()))
}

fn hard<T>(m: impl Into<String>) -> R<T> {
    Err(Issue::Hard(m.into()))
}

/// The bit width of an integer element type (None for float and unknown types).
fn dtype_bits(t: i32) -> Option<u32> {
    match t {
        dt::INT8 | dt::UINT8 => Some(8),
        dt::INT16 | dt::UINT16 => Some(16),
        dt::INT4 | dt::UINT4 => Some(4),
        dt::INT2 | dt::UINT2 => Some(2),
        dt::FLOAT8E4M3FN..=dt::FLOAT8E5M2FNUZ => Some(8),
        _ => None,
    }
}

fn tensor_const(t: &TensorProto) -> Const {
    let all = weight_floats(t);
    let dtype = t.data_type.unwrap_or(0);
    let raw = t.raw_data.as_deref().unwrap_or(&[]);
    let small = |n: usize| n <= MAX_CONST_VALUES;
    let ints = match dtype {
        dt::INT64 if !t.int64_data.is_empty() && small(t.int64_data.len()) => {
            Some(t.int64_data.clone())
        }
        dt::INT64 if !raw.is_empty() && small(raw.len() / 8) => raw
            .chunks_exact(8)
            .map(|c| <[u8; 8]>::try_from(c).map(i64::from_le_bytes))
            .collect::<Result<Vec<_>, _>>()
            .ok(),
        dt::INT32 if !t.int32_data.is_empty() && small(t.int32_data.len()) => {
            Some(t.int32_data.iter().map(|&v| v as i64).collect())
        }
        dt::INT32 if !raw.is_empty() && small(raw.len() / 4) => raw
            .chunks_exact(4)
            .map(|c| <[u8; 4]>::try_from(c).map(|b| i32::from_le_bytes(b) as i64))
            .collect::<Result<Vec<_>, _>>()
            .ok(),
        _ => None,
    };
    let floats = match dtype {
        dt::FLOAT if !t.float_data.is_empty() && small(t.float_data.len()) => {
            Some(t.float_data.clone())
        }
        dt::FLOAT if !raw.is_empty() && small(raw.len() / 4) => raw
            .chunks_exact(4)
            .map(|c| <[u8; 4]>::try_from(c).map(f32::from_le_bytes))
            .collect::<Result<Vec<_>, _>>()
            .ok(),
        _ => None,
    };
    Const {
        dims: t.dims.clone(),
        dtype,
        ints,
        floats,
        bits: None,
        l1_rows: all.as_ref().and_then(|v| {
            let rows = *t.dims.first()? as usize;
            (rows > 0).then(|| WeightL1::of(v, rows, v.len() / rows))?
        }),
        l1_cols: all.as_ref().and_then(|v| {
            let [r, c] = t.dims.as_slice() else {
                return None;
            };
            let (r, c) = (*r as usize, *c as usize);
            let mut tr = vec![0f32; v.len()];
            for i in 0..r {
                for j in 0..c {
                    tr[j * r + i] = *v.get(i * c + j)?;
                }
            }
            WeightL1::of(&tr, c, r)
        }),
    }
}

/// Every value of a float tensor of rank 2 or more (a weight), read whole.
fn weight_floats(t: &TensorProto) -> Option<Vec<f32>> {
    if t.data_type != Some(dt::FLOAT) || t.dims.len() < 2 || t.dims.iter().any(|&d| d <= 0) {
        return None;
    }
    let count = t
        .dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d as usize))?;
    let raw = t.raw_data.as_deref().unwrap_or(&[]);
    let v: Vec<f32> = if !t.float_data.is_empty() {
        t.float_data.clone()
    } else {
        raw.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    (v.len() == count).then_some(v)
}

fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name.as_deref() == Some(name))
}

fn attr_i(n: &NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).and_then(|a| a.i).unwrap_or(default)
}

fn attr_ints(n: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(n, name).map(|a| a.ints.clone())
}

fn attr_s(n: &NodeProto, name: &str) -> String {
    attr(n, name)
        .and_then(|a| a.s.as_ref())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .unwrap_or_default()
}

/// A positive size (kernel, stride, channel count) from a file value.
fn pos(v: i64, what: &str) -> R<u64> {
    if v >= 1 && v as u64 <= MAX_DIM {
        Ok(v as u64)
    } else {
        hard(format!("{what} = {v} is not in 1..={MAX_DIM}"))
    }
}

fn nonneg(v: i64, what: &str) -> R<u64> {
    if v >= 0 && v as u64 <= MAX_DIM {
        Ok(v as u64)
    } else {
        hard(format!("{what} = {v} is not in 0..={MAX_DIM}"))
    }
}

fn elems(shape: &[u64]) -> R<u64> {
    shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .filter(|&e| e <= MAX_ELEMS)
        .map_or_else(
            || hard(format!("the tensor {shape:?} has too many elements")),
            Ok,
        )
}

/// The hequant shape of a batch-1 ONNX activation shape.
fn hshape(s: &[u64]) -> R<Shape> {
    match s {
        [1, c, h, w] => Ok(Shape::new(*c, *h, *w)),
        [1, f] => Ok(Shape::new(*f, 1, 1)),
        _ => unsup(format!(
            "a tensor of shape {s:?}: only [1, C, H, W] and [1, F] activations are modelled"
        )),
    }
}

/// Output size along one axis (None when the window does not fit).
fn out_dim(input: u64, pb: u64, pe: u64, k: u64, s: u64, ceil: bool) -> Option<u64> {
    let padded = input + pb + pe;
    if padded < k {
        return None;
    }
    let span = padded - k;
    let mut out = if ceil { span.div_ceil(s) } else { span / s } + 1;
    // ONNX and PyTorch drop a last window that would start in the end padding.
    if ceil && (out - 1) * s >= input + pb {
        out -= 1;
    }
    Some(out)
}

/// A 2-D window from the usual Conv / pool attributes; `kernel` from the weight or attribute.
fn window(n: &NodeProto, x: &[u64], kernel: (u64, u64), allow_ceil: bool) -> R<Window> {
    let (kh, kw) = kernel;
    let strides = attr_ints(n, "strides").unwrap_or_else(|| vec![1, 1]);
    let [sh, sw] = strides.as_slice() else {
        return hard(format!("strides {strides:?} must have two values"));
    };
    let (sh, sw) = (pos(*sh, "stride")?, pos(*sw, "stride")?);
    if let Some(d) = attr_ints(n, "dilations")
        && d.iter().any(|&v| v != 1)
    {
        return unsup(format!("dilations {d:?}: only dilation 1 is supported"));
    }
    let (h, w) = (x[2], x[3]);
    let auto_pad = attr_s(n, "auto_pad");
    let mut pad = match auto_pad.as_str() {
        "" | "NOTSET" => {
            let p = attr_ints(n, "pads").unwrap_or_else(|| vec![0; 4]);
            let [t, l, b, r] = p.as_slice() else {
                return hard(format!("pads {p:?} must have four values"));
            };
            Padding {
                top: nonneg(*t, "pad")?,
                left: nonneg(*l, "pad")?,
                bottom: nonneg(*b, "pad")?,
                right: nonneg(*r, "pad")?,
            }
        }
        "VALID" => Padding::default(),
        "SAME_UPPER" | "SAME_LOWER" => {
            let total = |i: u64, k: u64, s: u64| ((i.div_ceil(s) - 1) * s + k).saturating_sub(i);
            let (th, tw) = (total(h, kh, sh), total(w, kw, sw));
            let upper = auto_pad == "SAME_UPPER";
            let split = |t: u64| {
                if upper {
                    (t / 2, t - t / 2)
                } else {
                    (t - t / 2, t / 2)
                }
            };
            let ((top, bottom), (left, right)) = (split(th), split(tw));
            Padding {
                top,
                bottom,
                left,
                right,
            }
        }
        other => return hard(format!("auto_pad '{other}' is not an ONNX value")),
    };
    let ceil = attr_i(n, "ceil_mode", 0) != 0;
    if ceil && !allow_ceil {
        return hard("ceil_mode is not an attribute of this operator");
    }
    let fit = |i: u64, pb: u64, pe: u64, k: u64, s: u64| {
        out_dim(i, pb, pe, k, s, ceil).ok_or_else(|| {
            Issue::Hard(format!(
                "a {kh}x{kw} window with stride {sh}x{sw} does not fit the {h}x{w} input (with padding)"
            ))
        })
    };
    let oh = fit(h, pad.top, pad.bottom, kh, sh)?;
    let ow = fit(w, pad.left, pad.right, kw, sw)?;
    if ceil {
        // Model ceil mode as extra end padding: the floor formula then gives the same size,
        // and the extra padding of a pooling window costs nothing.
        pad.bottom = pad
            .bottom
            .max(((oh - 1) * sh + kh).saturating_sub(h + pad.top));
        pad.right = pad
            .right
            .max(((ow - 1) * sw + kw).saturating_sub(w + pad.left));
    }
    Ok(Window {
        kh,
        kw,
        sh,
        sw,
        pad,
    })
}

fn widths(w: Option<u32>, a: Option<u32>) -> Option<BitWidths> {
    let (w, a) = match (w, a) {
        (None, None) => return None,
        (Some(w), None) => (w, w),
        (None, Some(a)) => (a, a),
        (Some(w), Some(a)) => (w, a),
    };
    Some(BitWidths {
        w: Bits::try_new(w as i64).ok()?,
        a: Bits::try_new(a as i64).ok()?,
    })
}

struct Ctx<'a> {
    values: HashMap<String, Val>,
    consumers: HashMap<&'a str, usize>,
    defs: Vec<LayerDef>,
    names: HashSet<String>,
    folded: Vec<String>,
    absorbed: BTreeMap<String, usize>,
    opset: i64,
}

const SUPPORTED: &[&str] = &[
    "Conv",
    "QLinearConv",
    "Gemm",
    "MatMul",
    "QLinearMatMul",
    "BatchNormalization",
    "Relu",
    "Clip",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "ReduceMean",
    "Add",
    "Concat",
    "Flatten",
    "Reshape",
    "QuantizeLinear",
    "DequantizeLinear",
    "Identity",
    "Dropout",
    "Constant",
];

impl<'a> Ctx<'a> {
    fn val(&self, name: &str) -> R<&Val> {
        self.values.get(name).map_or_else(
            || hard(format!("the value '{name}' has no known shape")),
            Ok,
        )
    }

    fn input<'n>(&self, n: &'n NodeProto, i: usize) -> Option<&'n str> {
        n.input.get(i).map(String::as_str).filter(|s| !s.is_empty())
    }

    fn act(&self, n: &NodeProto, i: usize) -> R<Act> {
        let Some(name) = self.input(n, i) else {
            return hard(format!("input {i} is missing"));
        };
        match self.val(name)? {
            Val::Act(a) => Ok(a.clone()),
            Val::Const(_) => unsup(format!(
                "input {i} ('{name}') is a constant where an activation is expected"
            )),
        }
    }

    fn konst(&self, n: &NodeProto, i: usize) -> R<Option<Const>> {
        let Some(name) = self.input(n, i) else {
            return Ok(None);
        };
        match self.val(name)? {
            Val::Const(c) => Ok(Some(c.clone())),
            Val::Act(_) => unsup(format!(
                "input {i} ('{name}') is computed at run time, a constant (weight) is expected"
            )),
        }
    }

    fn need_konst(&self, n: &NodeProto, i: usize) -> R<Const> {
        self.konst(n, i)?
            .map_or_else(|| hard(format!("input {i} (a constant) is missing")), Ok)
    }

    fn set(&mut self, n: &NodeProto, v: Val) {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            self.values.insert(o.clone(), v.clone());
        }
    }

    fn absorb(&mut self, n: &NodeProto, op: &str, v: Val) {
        *self.absorbed.entry(op.to_string()).or_insert(0) += 1;
        self.set(n, v);
    }

    fn unique_name(&mut self, idx: usize, n: &NodeProto) -> String {
        let base = match n.name.as_deref() {
            Some(s) if !s.trim().is_empty() => s.to_string(),
            _ => format!("{}_{idx}", n.op_type.as_deref().unwrap_or("node")),
        };
        let mut name = base.clone();
        let mut k = 1;
        while name == "input" || self.names.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.names.insert(name.clone());
        name
    }

    /// Adds a layer computing `kind` from `from`, with ONNX output shape `out`.
    fn emit(
        &mut self,
        idx: usize,
        n: &NodeProto,
        kind: LayerKind,
        from: Vec<String>,
        out: Vec<u64>,
        bits: Option<BitWidths>,
    ) -> R<usize> {
        elems(&out)?;
        let declared = hshape(&out)?;
        let name = self.unique_name(idx, n);
        self.defs.push(LayerDef {
            name: name.clone(),
            kind,
            from,
            declared_output: Some(declared),
            bits,
            weight_l1: None,
        });
        self.set(
            n,
            Val::Act(Act {
                shape: out,
                src: name,
                bits: None,
                conv: None,
            }),
        );
        Ok(self.defs.len() - 1)
    }

    /// Conv and QLinearConv: `xi`, `wi` are the input and weight positions; `zps` the zero
    /// points of the input, weight and output (QLinearConv only).
    fn conv(&mut self, idx: usize, n: &NodeProto, op: &str, xi: usize, wi: usize) -> R<()> {
        let x = self.act(n, xi)?;
        if x.shape.len() != 4 {
            return unsup(format!(
                "a convolution over a rank-{} tensor: only 2-D convolutions are supported",
                x.shape.len()
            ));
        }
        let w = self.need_konst(n, wi)?;
        let [m, cg, kh, kw] = w.dims.as_slice() else {
            return hard(format!(
                "the weight has dims {:?}, expected [M, C/groups, kh, kw]",
                w.dims
            ));
        };
        let (m, cg) = (pos(*m, "output channels")?, pos(*cg, "weight channels")?);
        let kernel = (pos(*kh, "kernel")?, pos(*kw, "kernel")?);
        if let Some(ks) = attr_ints(n, "kernel_shape")
            && ks != [kernel.0 as i64, kernel.1 as i64]
        {
            return hard(format!(
                "kernel_shape {ks:?} does not match the weight's {}x{}",
                kernel.0, kernel.1
            ));
        }
        let groups = pos(attr_i(n, "group", 1), "group")?;
        if cg * groups != x.shape[1] || !m.is_multiple_of(groups) {
            return hard(format!(
                "the weight [{m}, {cg}, ..] with group = {groups} does not fit {} input channels",
                x.shape[1]
            ));
        }
        let win = window(n, &x.shape, kernel, false)?;
        let (oh, ow) = win
            .out_hw(x.shape[2], x.shape[3])
            .map_or_else(|| hard("the kernel does not fit the input"), Ok)?;
        let out = vec![1, m, oh, ow];
        let macs = elems(&out)?
            .checked_mul(cg * kernel.0 * kernel.1)
            .filter(|&v| v <= MAX_MACS);
        if macs.is_none() {
            return hard("the convolution is too large (multiply-accumulates overflow)");
        }
        let (wbits, abits, ybits) = if op == "QLinearConv" {
            (
                self.zp_bits(n, 5, Some(&w)),
                self.zp_bits(n, 2, None).or(x.bits),
                self.zp_bits(n, 7, None),
            )
        } else {
            (w.bits, x.bits, None)
        };
        let kind = LayerKind::Conv2d {
            out_channels: m,
            window: win,
            groups,
            bn: BnFold::None,
        };
        let d = self.emit(idx, n, kind, vec![x.src], out, widths(wbits, abits))?;
        self.defs[d].weight_l1 = w.l1_rows.clone();
        let mut a = self.act_out(n)?;
        a.conv = Some(d);
        a.bits = ybits;
        self.set(n, Val::Act(a));
        Ok(())
    }

    /// Bits of the zero point at input `i` (its element type), else of `fallback`'s type.
    fn zp_bits(&self, n: &NodeProto, i: usize, fallback: Option<&Const>) -> Option<u32> {
        match self.konst(n, i) {
            Ok(Some(zp)) => dtype_bits(zp.dtype),
            _ => fallback.and_then(|c| c.bits.or(dtype_bits(c.dtype))),
        }
    }

    fn act_out(&self, n: &NodeProto) -> R<Act> {
        match n.output.first().and_then(|o| self.values.get(o)) {
            Some(Val::Act(a)) => Ok(a.clone()),
            _ => hard("the node has no output"),
        }
    }

    /// Gemm, MatMul, QLinearMatMul: an activation [1, K] times a constant [K, N].
    fn linear(&mut self, idx: usize, n: &NodeProto, op: &str, ai: usize, bi: usize) -> R<()> {
        let a = self.act(n, ai)?;
        let b = self.need_konst(n, bi)?;
        if op == "Gemm" && attr_i(n, "transA", 0) != 0 {
            return unsup("Gemm with transA = 1");
        }
        let [1, k] = a.shape.as_slice() else {
            return unsup(format!(
                "a {op} on an activation of shape {:?}: only [1, K] inputs are supported",
                a.shape
            ));
        };
        let [r, c] = b.dims.as_slice() else {
            return hard(format!("the weight has dims {:?}, expected 2", b.dims));
        };
        let (r, c) = (pos(*r, "weight rows")?, pos(*c, "weight columns")?);
        let trans_b = op == "Gemm" && attr_i(n, "transB", 0) != 0;
        let (bk, nout) = if trans_b { (c, r) } else { (r, c) };
        if bk != *k {
            return hard(format!(
                "the weight [{r}, {c}] does not fit an input of {k} features"
            ));
        }
        if k.checked_mul(nout).is_none_or(|m| m > MAX_MACS) {
            return hard("the layer is too large (multiply-accumulates overflow)");
        }
        let (wbits, abits, ybits) = if op == "QLinearMatMul" {
            (
                self.zp_bits(n, 5, Some(&b)),
                self.zp_bits(n, 2, None).or(a.bits),
                self.zp_bits(n, 7, None),
            )
        } else {
            (b.bits, a.bits, None)
        };
        let kind = LayerKind::Linear { out_features: nout };
        let d = self.emit(
            idx,
            n,
            kind,
            vec![a.src],
            vec![1, nout],
            widths(wbits, abits),
        )?;
        self.defs[d].weight_l1 = if trans_b { b.l1_rows } else { b.l1_cols };
        let mut o = self.act_out(n)?;
        o.bits = ybits;
        self.set(n, Val::Act(o));
        Ok(())
    }

    fn scalar_f(&self, n: &NodeProto, i: usize, attr_name: &str) -> R<Option<f32>> {
        if self.opset < 11 {
            return Ok(attr(n, attr_name).and_then(|a| a.f));
        }
        match self.konst(n, i)? {
            None => Ok(None),
            Some(c) => match c.floats.as_deref() {
                Some([v]) => Ok(Some(*v)),
                _ => unsup(format!(
                    "Clip bound (input {i}) is not a float scalar constant"
                )),
            },
        }
    }

    fn node(&mut self, idx: usize, n: &NodeProto) -> R<()> {
        let op = n.op_type.as_deref().unwrap_or("");
        let domain = n.domain.as_deref().unwrap_or("");
        if !(domain.is_empty() || domain == "ai.onnx") {
            return unsup(format!("operator domain '{domain}' is not standard ONNX"));
        }
        if !SUPPORTED.contains(&op) {
            return unsup(format!("operator '{op}' is not supported"));
        }
        if n.output.first().is_none_or(|o| o.is_empty()) {
            return hard("the node has no output");
        }
        match op {
            "Conv" => self.conv(idx, n, op, 0, 1),
            "QLinearConv" => self.conv(idx, n, op, 0, 3),
            "Gemm" | "MatMul" => self.linear(idx, n, op, 0, 1),
            "QLinearMatMul" => self.linear(idx, n, op, 0, 3),
            "BatchNormalization" => {
                let x = self.act(n, 0)?;
                let only = self
                    .input(n, 0)
                    .is_some_and(|i| self.consumers.get(i) == Some(&1));
                if let (Some(d), true) = (x.conv, only)
                    && let Some(LayerKind::Conv2d { bn, .. }) =
                        self.defs.get_mut(d).map(|l| &mut l.kind)
                {
                    *bn = BnFold::Folded;
                    let conv_name = self.defs[d].name.clone();
                    self.folded.push(conv_name);
                    self.set(n, Val::Act(Act { conv: None, ..x }));
                    return Ok(());
                }
                self.emit(idx, n, LayerKind::BatchNorm, vec![x.src], x.shape, None)?;
                Ok(())
            }
            "Relu" | "Clip" => {
                let x = self.act(n, 0)?;
                let relu6 = if op == "Clip" {
                    let lo = self.scalar_f(n, 1, "min")?;
                    let hi = self.scalar_f(n, 2, "max")?;
                    match (lo, hi) {
                        (Some(l), Some(h)) if l == 0.0 && h == 6.0 => true,
                        (Some(0.0), None) => false,
                        (Some(l), Some(h)) if l == 0.0 && h.is_infinite() && h > 0.0 => false,
                        _ => {
                            return unsup(format!(
                                "Clip to [{}, {}] is neither a ReLU nor a ReLU6",
                                lo.map_or("-inf".into(), |v| v.to_string()),
                                hi.map_or("inf".into(), |v| v.to_string())
                            ));
                        }
                    }
                } else {
                    false
                };
                let kind = LayerKind::Relu {
                    truncate: false,
                    relu6,
                };
                self.emit(idx, n, kind, vec![x.src], x.shape, None)?;
                Ok(())
            }
            "MaxPool" | "AveragePool" => {
                let x = self.act(n, 0)?;
                if x.shape.len() != 4 {
                    return unsup(format!("{op} over a rank-{} tensor", x.shape.len()));
                }
                if n.output.get(1).is_some_and(|o| !o.is_empty()) {
                    return unsup("MaxPool with an indices output");
                }
                let ks = attr_ints(n, "kernel_shape").unwrap_or_default();
                let [kh, kw] = ks.as_slice() else {
                    return hard(format!("kernel_shape {ks:?} must have two values"));
                };
                let win = window(
                    n,
                    &x.shape,
                    (pos(*kh, "kernel")?, pos(*kw, "kernel")?),
                    true,
                )?;
                let (oh, ow) = win
                    .out_hw(x.shape[2], x.shape[3])
                    .map_or_else(|| hard("the window does not fit the input"), Ok)?;
                let kind = if op == "MaxPool" {
                    LayerKind::MaxPool { window: win }
                } else {
                    LayerKind::AvgPool { window: win }
                };
                let out = vec![1, x.shape[1], oh, ow];
                self.emit(idx, n, kind, vec![x.src], out, None)?;
                Ok(())
            }
            "GlobalAveragePool" => {
                let x = self.act(n, 0)?;
                if x.shape.len() != 4 {
                    return unsup(format!("{op} over a rank-{} tensor", x.shape.len()));
                }
                let out = vec![1, x.shape[1], 1, 1];
                self.emit(idx, n, LayerKind::GlobalAvgPool, vec![x.src], out, None)?;
                Ok(())
            }
            "ReduceMean" => {
                // The mean over both spatial axes (torch.mean(x, (2, 3)), the newer
                // exporter's adaptive average pool to 1x1) is a global average pool.
                let x = self.act(n, 0)?;
                let axes = if self.opset >= 18 {
                    self.konst(n, 1)?.and_then(|c| c.ints)
                } else {
                    attr_ints(n, "axes")
                };
                let mut axes: Vec<i64> = axes
                    .unwrap_or_default()
                    .iter()
                    .map(|&a| if a < 0 { a + x.shape.len() as i64 } else { a })
                    .collect();
                axes.sort_unstable();
                if x.shape.len() != 4 || axes != [2, 3] {
                    return unsup(format!(
                        "ReduceMean over axes {axes:?} of a rank-{} tensor: only the mean over both spatial axes is supported",
                        x.shape.len()
                    ));
                }
                let out = if attr_i(n, "keepdims", 1) != 0 {
                    vec![1, x.shape[1], 1, 1]
                } else {
                    vec![1, x.shape[1]]
                };
                self.emit(idx, n, LayerKind::GlobalAvgPool, vec![x.src], out, None)?;
                Ok(())
            }
            "Add" => {
                let vals = [self.input(n, 0), self.input(n, 1)];
                let [Some(a), Some(b)] = vals else {
                    return hard("Add needs two inputs");
                };
                match (self.val(a)?.clone(), self.val(b)?.clone()) {
                    (Val::Act(x), Val::Act(y)) => {
                        if x.shape != y.shape {
                            return unsup(format!(
                                "an Add that broadcasts {:?} and {:?}",
                                x.shape, y.shape
                            ));
                        }
                        self.emit(idx, n, LayerKind::Add, vec![x.src, y.src], x.shape, None)?;
                    }
                    (Val::Act(x), Val::Const(_)) | (Val::Const(_), Val::Act(x)) => {
                        // Adding a constant (a bias) is local to the server: free.
                        self.absorb(n, "Add (constant)", Val::Act(Act { conv: None, ..x }));
                    }
                    (Val::Const(c), Val::Const(_)) => {
                        self.absorb(n, "Add (constant)", Val::Const(c));
                    }
                }
                Ok(())
            }
            "Concat" => {
                let mut xs = Vec::new();
                for i in 0..n.input.len() {
                    xs.push(self.act(n, i)?);
                }
                let Some(first) = xs.first() else {
                    return hard("Concat without inputs");
                };
                let rank = first.shape.len() as i64;
                let axis = attr_i(n, "axis", 1);
                if axis != 1 && axis != 1 - rank {
                    return unsup(format!(
                        "Concat along axis {axis}: only the channel axis (1) is supported"
                    ));
                }
                let mut out = first.shape.clone();
                for x in &xs[1..] {
                    if x.shape.len() != out.len()
                        || x.shape
                            .iter()
                            .enumerate()
                            .any(|(i, &d)| i != 1 && d != out[i])
                    {
                        return hard(format!(
                            "Concat inputs {:?} and {:?} differ outside the channel axis",
                            first.shape, x.shape
                        ));
                    }
                    out[1] += x.shape[1];
                }
                if xs.len() == 1 {
                    self.absorb(
                        n,
                        op,
                        Val::Act(Act {
                            conv: None,
                            ..xs.remove(0)
                        }),
                    );
                    return Ok(());
                }
                let from = xs.into_iter().map(|x| x.src).collect();
                self.emit(idx, n, LayerKind::Concat, from, out, None)?;
                Ok(())
            }
            "Flatten" => {
                let x = self.act(n, 0)?;
                let rank = x.shape.len() as i64;
                let axis = attr_i(n, "axis", 1);
                if axis != 1 && axis != 1 - rank {
                    return unsup(format!("Flatten at axis {axis}: only axis 1 is supported"));
                }
                self.flatten(idx, n, op, x)
            }
            "Reshape" => {
                let x = self.act(n, 0)?;
                let s = self.need_konst(n, 1)?;
                let Some(target) = s.ints else {
                    return unsup("Reshape to a shape that is not a small integer constant");
                };
                let total = elems(&x.shape)?;
                let mut dims = Vec::with_capacity(target.len());
                let mut infer = None;
                for (i, &d) in target.iter().enumerate() {
                    match d {
                        0 => match x.shape.get(i) {
                            Some(&v) => dims.push(v),
                            None => return hard(format!("Reshape copies axis {i}, absent")),
                        },
                        -1 if infer.is_none() => {
                            infer = Some(i);
                            dims.push(1);
                        }
                        d => dims.push(pos(d, "Reshape dimension")?),
                    }
                }
                let known = elems(&dims)?;
                if let Some(i) = infer {
                    if known == 0 || !total.is_multiple_of(known) {
                        return hard(format!("cannot reshape {:?} to {target:?}", x.shape));
                    }
                    dims[i] = total / known;
                } else if known != total {
                    return hard(format!("cannot reshape {:?} to {target:?}", x.shape));
                }
                if dims == x.shape {
                    self.absorb(n, op, Val::Act(x));
                    return Ok(());
                }
                if dims == [1, total] {
                    return self.flatten(idx, n, op, x);
                }
                unsup(format!(
                    "Reshape from {:?} to {dims:?}: only flattening to [1, n] is supported",
                    x.shape
                ))
            }
            "Identity" | "Dropout" => {
                let Some(name) = self.input(n, 0) else {
                    return hard("input 0 is missing");
                };
                let v = self.val(name)?.clone();
                self.absorb(n, op, v);
                Ok(())
            }
            "QuantizeLinear" => {
                let Some(name) = self.input(n, 0) else {
                    return hard("input 0 is missing");
                };
                let out_t = attr_i(n, "output_dtype", 0);
                let bits = if out_t != 0 {
                    dtype_bits(out_t as i32)
                } else {
                    match self.konst(n, 2)? {
                        Some(zp) => dtype_bits(zp.dtype),
                        None => Some(8), // the default output type is uint8
                    }
                };
                let v = match self.val(name)?.clone() {
                    Val::Act(a) => Val::Act(Act {
                        bits,
                        conv: None,
                        ..a
                    }),
                    Val::Const(c) => Val::Const(Const { bits, ..c }),
                };
                self.absorb(n, op, v);
                Ok(())
            }
            "DequantizeLinear" => {
                let Some(name) = self.input(n, 0) else {
                    return hard("input 0 is missing");
                };
                let zp = self
                    .konst(n, 2)
                    .ok()
                    .flatten()
                    .and_then(|z| dtype_bits(z.dtype));
                let v = match self.val(name)?.clone() {
                    Val::Act(a) => Val::Act(Act {
                        bits: a.bits.or(zp),
                        conv: None,
                        ..a
                    }),
                    Val::Const(c) => Val::Const(Const {
                        bits: c.bits.or(dtype_bits(c.dtype)).or(zp),
                        ints: None,
                        floats: None,
                        ..c
                    }),
                };
                self.absorb(n, op, v);
                Ok(())
            }
            "Constant" => {
                let c = if let Some(t) = attr(n, "value").and_then(|a| a.t.as_ref()) {
                    tensor_const(t)
                } else if let Some(a) = attr(n, "value_float") {
                    Const {
                        dtype: dt::FLOAT,
                        floats: a.f.map(|f| vec![f]),
                        ..Const::default()
                    }
                } else if let Some(a) = attr(n, "value_int") {
                    Const {
                        dtype: dt::INT64,
                        ints: a.i.map(|i| vec![i]),
                        ..Const::default()
                    }
                } else if let Some(a) = attr(n, "value_ints") {
                    Const {
                        dims: vec![a.ints.len() as i64],
                        dtype: dt::INT64,
                        ints: Some(a.ints.clone()),
                        ..Const::default()
                    }
                } else if let Some(a) = attr(n, "value_floats") {
                    Const {
                        dims: vec![a.floats.len() as i64],
                        dtype: dt::FLOAT,
                        floats: Some(a.floats.clone()),
                        ..Const::default()
                    }
                } else {
                    return unsup("a Constant of a kind other than a tensor, int(s) or float(s)");
                };
                self.absorb(n, op, Val::Const(c));
                Ok(())
            }
            _ => unsup(format!("operator '{op}' is not supported")),
        }
    }

    fn flatten(&mut self, idx: usize, n: &NodeProto, op: &str, x: Act) -> R<()> {
        let total = elems(&x.shape)?;
        if x.shape.len() == 2 {
            self.absorb(n, op, Val::Act(x));
            return Ok(());
        }
        if x.shape.first() != Some(&1) {
            return unsup(format!("flattening a tensor of shape {:?}", x.shape));
        }
        self.emit(
            idx,
            n,
            LayerKind::Flatten,
            vec![x.src],
            vec![1, total],
            None,
        )?;
        Ok(())
    }
}

fn node_ref(index: usize, n: &NodeProto) -> NodeRef {
    NodeRef {
        index,
        name: n.name.clone().unwrap_or_default(),
        op_type: n.op_type.clone().unwrap_or_default(),
        inputs: n.input.clone(),
        outputs: n.output.clone(),
    }
}

/// Kahn's algorithm in file order; nodes left over sit on (or behind) a cycle.
fn topo_order(nodes: &[NodeProto], known: &HashSet<&str>) -> Result<Vec<usize>, OnnxError> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            if known.contains(o.as_str()) || producer.insert(o.as_str(), i).is_some() {
                return Err(OnnxError::Node {
                    node: Box::new(node_ref(i, n)),
                    message: format!("the value '{o}' is produced twice"),
                });
            }
        }
    }
    let mut indeg = vec![0usize; nodes.len()];
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        let mut deps: BTreeSet<usize> = BTreeSet::new();
        for inp in n.input.iter().filter(|s| !s.is_empty()) {
            match producer.get(inp.as_str()) {
                Some(&p) => {
                    deps.insert(p);
                }
                None if known.contains(inp.as_str()) => {}
                None => {
                    return Err(OnnxError::Node {
                        node: Box::new(node_ref(i, n)),
                        message: format!(
                            "the input '{inp}' is neither a graph input, an initializer nor the output of a node"
                        ),
                    });
                }
            }
        }
        indeg[i] = deps.len();
        for p in deps {
            succ[p].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = (0..nodes.len()).filter(|&i| indeg[i] == 0).collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &s in &succ[i] {
            indeg[s] -= 1;
            if indeg[s] == 0 {
                ready.insert(s);
            }
        }
    }
    if order.len() < nodes.len() {
        // Peel the nodes downstream of a cycle (no successor left): what stays is on a cycle.
        let mut left: BTreeSet<usize> = (0..nodes.len()).filter(|&i| indeg[i] > 0).collect();
        loop {
            let dead: Vec<usize> = left
                .iter()
                .copied()
                .filter(|&i| !succ[i].iter().any(|s| left.contains(s)))
                .collect();
            if dead.is_empty() {
                break;
            }
            for d in dead {
                left.remove(&d);
            }
        }
        return Err(OnnxError::Cycle(
            left.into_iter().map(|i| node_ref(i, &nodes[i])).collect(),
        ));
    }
    Ok(order)
}

/// The batch-first input shape: the file's, or the user's where the file leaves it open.
fn input_shape(
    name: &str,
    file: Option<Vec<Option<u64>>>,
    given: Option<&Vec<u64>>,
) -> Result<Vec<u64>, OnnxError> {
    let err = |m: String| Err(OnnxError::Input(format!("'{name}': {m}")));
    let shape = match (file, given) {
        (None, None) => {
            return err(
                "the file gives no shape for the input; pass --input-shape (e.g. 1x3x224x224) to `hequant import`"
                    .into(),
            );
        }
        (None, Some(g)) => g.clone(),
        (Some(f), Some(g)) => {
            if f.len() != g.len() {
                return err(format!(
                    "--input-shape has {} dimensions, the file's input has {}",
                    g.len(),
                    f.len()
                ));
            }
            for (i, (fd, gd)) in f.iter().zip(g).enumerate() {
                if let Some(v) = fd
                    && v != gd
                {
                    return err(format!(
                        "the file fixes axis {i} to {v}, --input-shape gives {gd}"
                    ));
                }
            }
            g.clone()
        }
        (Some(f), None) => {
            let mut s = Vec::with_capacity(f.len());
            for (i, d) in f.iter().enumerate() {
                match d {
                    Some(v) => s.push(*v),
                    // A dynamic batch axis is the usual export; the model is per inference.
                    None if i == 0 => s.push(1),
                    None => {
                        return err(format!(
                            "axis {i} is dynamic; pass the shape with `hequant import --input-shape` (e.g. 1x3x224x224) and use the imported network file"
                        ));
                    }
                }
            }
            s
        }
    };
    if shape.len() != 4 && shape.len() != 2 {
        return err(format!(
            "shape {shape:?}: only [N, C, H, W] and [N, F] inputs are supported"
        ));
    }
    if shape[0] != 1 {
        return err(format!(
            "batch {} in {shape:?}: the cost model is per inference (batch 1); pass --input-shape with batch 1",
            shape[0]
        ));
    }
    if let Some(d) = shape.iter().find(|&&d| d == 0 || d > MAX_DIM) {
        return err(format!(
            "dimension {d} in {shape:?} is not in 1..={MAX_DIM}"
        ));
    }
    Ok(shape)
}

pub(super) fn translate(model: &ModelProto, opts: &ImportOptions) -> Result<Imported, OnnxError> {
    let graph = model.graph.as_ref().ok_or(OnnxError::NoGraph)?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| {
            o.domain
                .as_deref()
                .is_none_or(|d| d.is_empty() || d == "ai.onnx")
        })
        .and_then(|o| o.version)
        .unwrap_or(0);
    let mut values: HashMap<String, Val> = HashMap::new();
    for t in &graph.initializer {
        if let Some(name) = t.name.as_deref().filter(|s| !s.is_empty()) {
            values.insert(name.to_string(), Val::Const(tensor_const(t)));
        }
    }
    let inputs: Vec<_> = graph
        .input
        .iter()
        .filter(|v| {
            v.name
                .as_deref()
                .is_some_and(|n| !n.is_empty() && !values.contains_key(n))
        })
        .collect();
    let [input] = inputs.as_slice() else {
        let names: Vec<&str> = inputs.iter().filter_map(|v| v.name.as_deref()).collect();
        return Err(OnnxError::Input(format!(
            "the graph has {} inputs besides its initializers ({}); a network has exactly one",
            inputs.len(),
            names.join(", ")
        )));
    };
    let in_name = input.name.clone().unwrap_or_default();
    let file_dims = input
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .and_then(|t| t.shape.as_ref())
        .map(|s| {
            s.dim
                .iter()
                .map(|d| d.dim_value.filter(|&v| v > 0).map(|v| v as u64))
                .collect::<Vec<_>>()
        });
    let shape = input_shape(&in_name, file_dims, opts.input_shape.as_ref())?;
    values.insert(
        in_name.clone(),
        Val::Act(Act {
            shape: shape.clone(),
            src: "input".into(),
            bits: None,
            conv: None,
        }),
    );
    let known: HashSet<&str> = values.keys().map(String::as_str).collect();
    let order = topo_order(&graph.node, &known)?;
    let mut consumers: HashMap<&str, usize> = HashMap::new();
    for n in &graph.node {
        for i in n.input.iter().filter(|s| !s.is_empty()) {
            *consumers.entry(i.as_str()).or_insert(0) += 1;
        }
    }
    for o in &graph.output {
        if let Some(name) = o.name.as_deref() {
            *consumers.entry(name).or_insert(0) += 1;
        }
    }
    let mut ctx = Ctx {
        values,
        consumers,
        defs: Vec::new(),
        names: HashSet::new(),
        folded: Vec::new(),
        absorbed: BTreeMap::new(),
        opset,
    };
    let mut unsupported = Vec::new();
    for i in order {
        let n = &graph.node[i];
        match ctx.node(i, n) {
            Ok(()) => {}
            Err(Issue::Unsupported(reason)) => {
                unsupported.push(Unsupported {
                    node: node_ref(i, n),
                    reason,
                });
                // Identity: the first input's value flows on (so that the rest can be checked).
                if let Some(v) = n
                    .input
                    .iter()
                    .find_map(|s| ctx.values.get(s).filter(|v| matches!(v, Val::Act(_))))
                    .or_else(|| n.input.iter().find_map(|s| ctx.values.get(s)))
                    .cloned()
                {
                    ctx.set(n, v);
                }
            }
            Err(Issue::Hard(message)) => {
                if !unsupported.is_empty() && !opts.skip_unsupported {
                    return Err(OnnxError::Unsupported(unsupported));
                }
                let message = if unsupported.is_empty() {
                    message
                } else {
                    let names: Vec<&str> =
                        unsupported.iter().map(|u| u.node.name.as_str()).collect();
                    format!(
                        "{message} (after treating the unsupported node(s) {} as identity)",
                        names.join(", ")
                    )
                };
                return Err(OnnxError::Node {
                    node: Box::new(node_ref(i, n)),
                    message,
                });
            }
        }
    }
    if !unsupported.is_empty() && !opts.skip_unsupported {
        return Err(OnnxError::Unsupported(unsupported));
    }
    let name = opts
        .name
        .clone()
        .or_else(|| graph.name.clone().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "onnx".into());
    let producer = format!(
        "{} {}",
        model.producer_name.as_deref().unwrap_or("unknown"),
        model.producer_version.as_deref().unwrap_or("")
    )
    .trim()
    .to_string();
    let description = format!("imported from ONNX (producer {producer}, opset {opset})");
    let hin = match shape.as_slice() {
        [_, c, h, w] => Shape::new(*c, *h, *w),
        [_, f] => Shape::new(*f, 1, 1),
        _ => return Err(OnnxError::Input(format!("shape {shape:?}"))),
    };
    let mut network = Network::build(
        name,
        description,
        opts.source.clone(),
        hin,
        None,
        std::mem::take(&mut ctx.defs),
    )?;
    network.skipped = unsupported
        .iter()
        .map(|u| format!("{} ({})", u.node.name, u.node.op_type))
        .collect();
    let stats = network.stats();
    let mut by_kind = BTreeMap::new();
    for l in &network.layers {
        *by_kind.entry(l.kind.name().to_string()).or_insert(0) += 1;
    }
    let summary = ImportSummary {
        layers: stats.layers,
        layers_by_kind: by_kind,
        macs: stats.macs,
        relu_elements: stats.relu_elements,
        folded_bn: ctx.folded,
        absorbed: ctx.absorbed,
        partial: !unsupported.is_empty(),
        skipped: unsupported,
        quantized_layers: network.layers.iter().filter(|l| l.bits.is_some()).count(),
        input_shape: shape,
        producer,
        opset,
    };
    Ok(Imported { network, summary })
}

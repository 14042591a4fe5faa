//! ONNX import: an `.onnx` file -> the same [`Network`] the rest of the tool uses.
//!
//! The file is decoded with a hand-written subset of `onnx.proto` ([`proto`]); shapes are
//! inferred here from the input shape alone (no inference engine, no weights needed: the
//! initializers' `dims` give the weight shapes). The translation is in [`translate`]:
//!
//! | ONNX | hequant layer |
//! |---|---|
//! | Conv, QLinearConv | `conv2d` (a BatchNormalization that is its conv's only consumer is folded: `bn = "folded"`) |
//! | Gemm, MatMul, QLinearMatMul | `linear` |
//! | BatchNormalization (not foldable) | `batch_norm` |
//! | Relu; Clip(0, 6) | `relu`; `relu` with `relu6` |
//! | MaxPool, AveragePool, GlobalAveragePool, ReduceMean over H and W | `max_pool`, `avg_pool`, `global_avg_pool` |
//! | Add (two activations), Concat (channels) | `add`, `concat` |
//! | Flatten, Reshape to `[1, n]` | `flatten` |
//! | QuantizeLinear, DequantizeLinear, Identity, Dropout, Add of a constant (bias) | nothing (free) |
//!
//! Bit widths: a conv or linear layer whose input activation passed a QuantizeLinear, or whose
//! weight is the output of a DequantizeLinear, or that is a QLinearConv / QLinearMatMul, takes
//! its bit widths from the element type of the zero point (or the quantized tensor): int8 and
//! uint8 give 8 bits, int4/uint4 4, int16/uint16 16.

pub mod proto;
mod translate;

use crate::workload::{Network, WorkloadError};
use prost::Message;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

pub use translate::MAX_DIM;

/// How to import a file.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The input shape (batch first, e.g. `[1, 3, 224, 224]`) when the file leaves it dynamic.
    pub input_shape: Option<Vec<u64>>,
    /// Treat unsupported operators as identity (free) instead of failing; the network is then
    /// marked partial.
    pub skip_unsupported: bool,
    /// The network's name (defaults to the graph's name, then "onnx").
    pub name: Option<String>,
    /// Where the file came from, for the network's `source` field.
    pub source: String,
}

/// A node of the graph, as named in errors and summaries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeRef {
    /// Position in the file's node list (0-based).
    pub index: usize,
    pub name: String,
    pub op_type: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

impl fmt::Display for NodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "node #{} '{}' (op {}), inputs [{}] -> outputs [{}]",
            self.index,
            self.name,
            self.op_type,
            self.inputs.join(", "),
            self.outputs.join(", ")
        )
    }
}

/// A node that the importer could not translate, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unsupported {
    pub node: NodeRef,
    pub reason: String,
}

/// Why an ONNX file could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("{path}: cannot read the file: {message}")]
    Io { path: String, message: String },
    #[error("not a valid ONNX model (truncated or corrupt protobuf): {0}")]
    Decode(String),
    #[error("the ONNX model has no graph")]
    NoGraph,
    #[error("input: {0}")]
    Input(String),
    #[error("{}", unsupported_text(.0))]
    Unsupported(Vec<Unsupported>),
    #[error("{node}: {message}")]
    Node { node: Box<NodeRef>, message: String },
    #[error("the graph has a cycle through {}", .0.iter().map(|n| n.to_string()).collect::<Vec<_>>().join("; "))]
    Cycle(Vec<NodeRef>),
    #[error("the imported network is inconsistent: {0}")]
    Workload(#[from] WorkloadError),
}

fn unsupported_text(v: &[Unsupported]) -> String {
    let mut s = format!(
        "{} unsupported node{} (use `hequant import --skip-unsupported` to treat {} as free and mark the result partial):",
        v.len(),
        if v.len() == 1 { "" } else { "s" },
        if v.len() == 1 { "it" } else { "them" }
    );
    for u in v {
        s.push_str(&format!("\n  {}: {}", u.node, u.reason));
    }
    s
}

/// What an import produced, besides the network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportSummary {
    /// Number of layers of the network.
    pub layers: usize,
    pub layers_by_kind: BTreeMap<String, usize>,
    /// Multiply-accumulates of the conv and linear layers.
    pub macs: u64,
    pub relu_elements: u64,
    /// Convolutions into which a BatchNormalization was folded.
    pub folded_bn: Vec<String>,
    /// Nodes that became no layer because they are free (quantization, identity, bias adds),
    /// by op type.
    pub absorbed: BTreeMap<String, usize>,
    /// Unsupported nodes treated as identity (`--skip-unsupported`).
    pub skipped: Vec<Unsupported>,
    /// Whether the network leaves out unsupported nodes.
    pub partial: bool,
    /// Conv and linear layers that carry bit widths taken from quantization nodes.
    pub quantized_layers: usize,
    /// The batch-first input shape used.
    pub input_shape: Vec<u64>,
    pub producer: String,
    pub opset: i64,
}

/// A network imported from ONNX, with what the import did.
#[derive(Debug, Clone)]
pub struct Imported {
    pub network: Network,
    pub summary: ImportSummary,
}

/// Decodes and translates an ONNX model held in memory.
pub fn import_bytes(bytes: &[u8], opts: &ImportOptions) -> Result<Imported, OnnxError> {
    let model = proto::ModelProto::decode(bytes).map_err(|e| OnnxError::Decode(e.to_string()))?;
    translate::translate(&model, opts)
}

/// Reads and translates an ONNX file.
pub fn load(path: &Path, opts: &ImportOptions) -> Result<Imported, OnnxError> {
    let bytes = std::fs::read(path).map_err(|e| OnnxError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let mut o = opts.clone();
    if o.source.is_empty() {
        o.source = format!(
            "ONNX file {}",
            path.file_name().map_or_else(
                || path.display().to_string(),
                |f| f.to_string_lossy().into()
            )
        );
    }
    if o.name.is_none() {
        o.name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    }
    import_bytes(&bytes, &o)
}

/// Parses an input shape written `1x3x224x224` (or with commas).
pub fn parse_shape(s: &str) -> Result<Vec<u64>, String> {
    let dims: Result<Vec<u64>, String> = s
        .split(['x', 'X', ','])
        .map(|d| {
            let d = d.trim();
            match d.parse::<u64>() {
                Ok(v) if v > 0 && v <= MAX_DIM => Ok(v),
                _ => Err(format!(
                    "'{d}' in the shape '{s}' is not a dimension (an integer in 1..={MAX_DIM})"
                )),
            }
        })
        .collect();
    let dims = dims?;
    if dims.len() != 4 && dims.len() != 2 {
        return Err(format!(
            "the shape '{s}' must be NxCxHxW (or NxF for a fully connected network), batch first"
        ));
    }
    Ok(dims)
}

/// `1814073344` -> `1,814,073,344`.
fn grouped(v: u64) -> String {
    let s = v.to_string();
    let mut o = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            o.push(',');
        }
        o.push(ch);
    }
    o
}

impl ImportSummary {
    /// The human-readable summary `hequant import` prints.
    pub fn text(&self) -> String {
        let shape: Vec<String> = self.input_shape.iter().map(u64::to_string).collect();
        let mut t = format!(
            "producer {}, opset {}, input {}\n",
            self.producer,
            self.opset,
            shape.join("x")
        );
        let kinds: Vec<String> = self
            .layers_by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        t.push_str(&format!("layers: {} ({})\n", self.layers, kinds.join(", ")));
        t.push_str(&format!(
            "MACs (conv2d + linear): {}\nReLU elements: {}\n",
            grouped(self.macs),
            grouped(self.relu_elements)
        ));
        t.push_str(&format!(
            "quantized layers (bit widths from the file): {}\n",
            self.quantized_layers
        ));
        match self.folded_bn.len() {
            0 => t.push_str("batch norms folded into their conv: none\n"),
            n => t.push_str(&format!(
                "batch norms folded into their conv: {n} (first: {})\n",
                self.folded_bn[0]
            )),
        }
        if !self.absorbed.is_empty() {
            let a: Vec<String> = self
                .absorbed
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            t.push_str(&format!("free nodes (no layer): {}\n", a.join(", ")));
        }
        if self.partial {
            t.push_str(&format!(
                "PARTIAL: {} unsupported node(s) treated as free (identity); costs leave them out:\n",
                self.skipped.len()
            ));
            for u in &self.skipped {
                t.push_str(&format!("  {}: {}\n", u.node, u.reason));
            }
        } else {
            t.push_str("skipped: none\n");
        }
        t
    }
}

//! The one result type every exporter, plot and view reads.

use crate::mapping::LinearMapping;
use crate::model::linear::LinearCost;
use crate::workload::{BitWidths, CostClass, Shape};
use serde::Serialize;

pub const SCHEMA_VERSION: u32 = 1;

/// One layer's predicted cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerReport {
    pub name: String,
    pub kind: String,
    pub class: CostClass,
    pub shape: String,
    pub input: Shape,
    pub output: Shape,
    pub bits: Option<BitWidths>,
    /// Ring of the shares coming in and going out (l).
    pub ring_bits_in: u32,
    pub ring_bits_out: u32,
    pub mapping: Option<LinearMapping>,
    pub he: Option<LinearCost>,
    pub ct_client_to_server: u64,
    pub ct_server_to_client: u64,
    pub bytes_client_to_server: u64,
    pub bytes_server_to_client: u64,
    /// Of the bytes above, those of HE (linear) and of OT (non-linear) protocols.
    pub bytes_linear: u64,
    pub bytes_nonlinear: u64,
    pub rounds: u32,
    pub compute_s: f64,
    pub latency_s: f64,
    pub note: String,
    /// For a searched layer: the best candidate of each slot scheme, or why none was
    /// feasible (empty for fixed mappings).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schemes: Vec<SchemeOutcome>,
}

/// The best a slot scheme could do on one layer, or the constraint that ruled it out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemeOutcome {
    /// `unpacked`, or a scheme name (`exact`, `client`, `paper`, `crt`).
    pub scheme: String,
    pub evaluated: u64,
    pub feasible: u64,
    /// Bytes (both directions, whole batch) of the scheme's best candidate.
    pub best_bytes: Option<u64>,
    /// That candidate, described.
    pub best: Option<String>,
    /// When none is feasible: the constraint that ruled out most candidates, with an example.
    pub binding: Option<String>,
}

impl LayerReport {
    pub fn bytes(&self) -> u64 {
        self.bytes_client_to_server + self.bytes_server_to_client
    }
}

/// Totals of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Totals {
    pub ct_client_to_server: u64,
    pub ct_server_to_client: u64,
    pub bytes_client_to_server: u64,
    pub bytes_server_to_client: u64,
    pub bytes_linear: u64,
    pub bytes_nonlinear: u64,
    /// One-time setup (CrypTFlow2's rotation keys), included in the totals above.
    pub bytes_setup: u64,
    pub rounds: u32,
    pub compute_s: f64,
    pub latency_s: f64,
}

impl Totals {
    pub fn bytes(&self) -> u64 {
        self.bytes_client_to_server + self.bytes_server_to_client
    }
}

/// The link a report's latency is computed for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkInfo {
    pub name: String,
    pub bandwidth_bps: f64,
    pub rtt_s: f64,
}

/// A full prediction for one network under one protocol.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub network: String,
    pub protocol: String,
    /// The serialisation the byte counts use.
    pub wire: String,
    pub relu: String,
    pub bits: String,
    pub link: LinkInfo,
    /// Set when a parameter set below 128-bit security was accepted with --allow-insecure.
    pub insecure: bool,
    pub warnings: Vec<String>,
    pub layers: Vec<LayerReport>,
    pub total: Totals,
}

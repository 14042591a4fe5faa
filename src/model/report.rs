//! The one result type every exporter, plot and view reads.

use crate::mapping::LinearMapping;
use crate::model::linear::LinearCost;
use crate::units::human_bytes;
use crate::workload::{BitWidths, CostClass, Shape};
use serde::Serialize;

pub const SCHEMA_VERSION: u32 = 1;

fn is_zero(x: &u64) -> bool {
    *x == 0
}

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
    /// Of the non-linear bytes, those of a truncation that runs inside this layer as a
    /// step of its own (a ReLU's `truncate`): what OpenCheetah's log counts as truncation.
    #[serde(skip_serializing_if = "is_zero")]
    pub bytes_truncation: u64,
    pub rounds: u32,
    pub compute_s: f64,
    pub latency_s: f64,
    /// The server's input-independent work, once per network and mapping (its weights
    /// in NTT form), not part of `latency_s`: 0 where the model does not price it.
    #[serde(default)]
    pub offline_s: f64,
    pub note: String,
    /// For a searched layer: the best candidate of each slot scheme, or why none was
    /// feasible (empty for fixed mappings).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schemes: Vec<SchemeOutcome>,
    /// Ciphertext bytes (client to server, server to client) of a linear layer in SEAL's
    /// zstd-compressed serialisation, used when the report's wire format is a
    /// `native_format = "seal_zstd"` protocol's native one.
    #[serde(skip)]
    pub seal_zstd: Option<(u64, u64)>,
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
    /// When none is feasible: that constraint's reason alone, for one-line summaries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The warning every output carries when the `paper` slot scheme may be used.
pub const PAPER_WARNING: &str = "slot scheme paper: not sound for secret-shared inputs (HEQuant ILP.py rule); outputs may be wrong";

/// Why one slot scheme lost against the layer's choice.
#[derive(Debug, Clone, PartialEq)]
pub struct WhyLost {
    pub scheme: String,
    /// `best X (+Y% over the choice)` or `infeasible: <binding>`.
    pub text: String,
}

impl LayerReport {
    pub fn bytes(&self) -> u64 {
        self.bytes_client_to_server + self.bytes_server_to_client
    }

    /// The slot scheme of the layer's mapping (`unpacked` when it does not pack), for a
    /// searched layer; `None` for layers without scheme outcomes.
    pub fn scheme_used(&self) -> Option<&'static str> {
        let m = self.mapping?;
        if self.schemes.is_empty() {
            return None;
        }
        Some(if m.packing.is_packed() {
            m.packing.scheme.name()
        } else {
            "unpacked"
        })
    }

    /// For every scheme other than the one used, why it lost: its best candidate's bytes
    /// against the chosen candidate's (both as the search counts them: ciphertexts both
    /// ways and CRT conversions, whole batch), or the constraint that ruled it out.
    pub fn why_lost(&self) -> Vec<WhyLost> {
        let Some(used) = self.scheme_used() else {
            return Vec::new();
        };
        let chosen = self.he.map(|h| h.total_bytes()).or_else(|| {
            self.schemes
                .iter()
                .find(|s| s.scheme == used)
                .and_then(|s| s.best_bytes)
        });
        self.schemes
            .iter()
            .filter(|s| s.scheme != used)
            .map(|s| {
                let text = match (s.best_bytes, chosen) {
                    (Some(b), Some(c)) if c > 0 => format!(
                        "best {} ({:+.1}% over the choice)",
                        human_bytes(b),
                        (b as f64 / c as f64 - 1.0) * 100.0
                    ),
                    (Some(b), _) => format!("best {}", human_bytes(b)),
                    (None, _) => format!(
                        "infeasible: {}",
                        s.reason
                            .as_deref()
                            .or(s.binding.as_deref())
                            .unwrap_or("no candidate")
                    ),
                };
                WhyLost {
                    scheme: s.scheme.clone(),
                    text,
                }
            })
            .collect()
    }

    /// The why-lost lines joined into one compact field (`scheme: why; ...`).
    pub fn why_lost_compact(&self) -> String {
        self.why_lost()
            .iter()
            .map(|w| format!("{}: {}", w.scheme, w.text))
            .collect::<Vec<_>>()
            .join("; ")
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
    /// The server's offline work (weights in NTT form), once, not in `latency_s`.
    #[serde(default)]
    pub offline_s: f64,
}

impl Totals {
    /// Adds one layer's counts, bytes, rounds and times.
    pub fn add(&mut self, l: &LayerReport) {
        self.ct_client_to_server += l.ct_client_to_server;
        self.ct_server_to_client += l.ct_server_to_client;
        self.bytes_client_to_server += l.bytes_client_to_server;
        self.bytes_server_to_client += l.bytes_server_to_client;
        self.bytes_linear += l.bytes_linear;
        self.bytes_nonlinear += l.bytes_nonlinear;
        self.rounds += l.rounds;
        self.compute_s += l.compute_s;
        self.latency_s += l.latency_s;
        self.offline_s += l.offline_s;
    }

    pub fn bytes(&self) -> u64 {
        self.bytes_client_to_server + self.bytes_server_to_client
    }
}

/// Totals divided by the batch: what one image costs.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct PerImage {
    pub bytes: f64,
    pub bytes_client_to_server: f64,
    pub bytes_server_to_client: f64,
    pub bytes_linear: f64,
    pub bytes_nonlinear: f64,
    pub latency_s: f64,
}

impl PerImage {
    pub fn of(t: &Totals, batch: u64) -> PerImage {
        let b = batch.max(1) as f64;
        PerImage {
            bytes: t.bytes() as f64 / b,
            bytes_client_to_server: t.bytes_client_to_server as f64 / b,
            bytes_server_to_client: t.bytes_server_to_client as f64 / b,
            bytes_linear: t.bytes_linear as f64 / b,
            bytes_nonlinear: t.bytes_nonlinear as f64 / b,
            latency_s: t.latency_s / b,
        }
    }
}

/// The link a report's latency is computed for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkInfo {
    pub name: String,
    pub bandwidth_bps: f64,
    pub rtt_s: f64,
}

impl Report {
    /// Bytes of the OT conversions of CRT-packed layers (whole batch; counted among the
    /// non-linear bytes of those layers).
    pub fn crt_conversion_bytes(&self) -> u64 {
        self.layers
            .iter()
            .filter_map(|l| l.he.map(|h| h.conversion_bytes))
            .sum()
    }

    /// What the linear layers cost one image: their HE bytes and their CRT conversions,
    /// over the batch.
    pub fn linear_with_conversions_per_image(&self) -> f64 {
        (self.total.bytes_linear + self.crt_conversion_bytes()) as f64 / self.batch.max(1) as f64
    }
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
    /// How the accumulators (rings, slots, CRT components) are bounded.
    #[serde(default)]
    pub accumulator: String,
    /// The OpenCheetah code a `cheetah` report models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cheetah_code: Option<String>,
    pub link: LinkInfo,
    /// Set when a parameter set below 128-bit security was accepted with --allow-insecure.
    pub insecure: bool,
    pub warnings: Vec<String>,
    pub layers: Vec<LayerReport>,
    /// Images per inference; `total` is per inference.
    pub batch: u64,
    pub total: Totals,
    /// `total` divided by `batch`.
    pub per_image: PerImage,
}

//! Search over the mapspace of each layer. The search only proposes candidates and
//! receives their costs from the model; infeasible candidates are counted by the
//! constraint they violate.

pub mod mixed;
pub mod network;
pub mod pareto;
pub mod sweep;

use crate::mapping::space::{SpaceOptions, candidates};
use crate::mapping::{LinearMapping, SlotScheme};
use crate::model::linear::{ConvGeom, HeContext, Infeasible, LinearCost, evaluate_coeff};
use crate::model::report::SchemeOutcome;
use crate::protocol::CostModel;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a search minimises.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Bytes in both directions.
    Comm,
    /// Predicted latency on the chosen link.
    Latency,
    /// Communication first; among candidates within `tolerance` (relative) of the best,
    /// the lowest latency.
    CommThenLatency { tolerance: f64 },
}

impl Objective {
    pub fn parse(s: &str) -> Result<Objective, String> {
        match s {
            "comm" => Ok(Objective::Comm),
            "latency" => Ok(Objective::Latency),
            "comm,latency" => Ok(Objective::CommThenLatency { tolerance: 0.01 }),
            other => Err(format!(
                "unknown objective '{other}' (known: comm, latency, comm,latency)"
            )),
        }
    }
    pub fn name(&self) -> &'static str {
        match self {
            Objective::Comm => "comm",
            Objective::Latency => "latency",
            Objective::CommThenLatency { .. } => "comm,latency",
        }
    }
}

/// The result of searching one layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerSearch {
    pub best: Option<(LinearMapping, LinearCost)>,
    pub evaluated: u64,
    pub infeasible: BTreeMap<&'static str, u64>,
    /// One example of each violated constraint, for "why is nothing feasible?".
    pub examples: BTreeMap<&'static str, String>,
    /// Per slot scheme (and `unpacked`): its best candidate or why none was feasible.
    pub schemes: Vec<SchemeOutcome>,
}

/// The slot-scheme family a candidate belongs to, for the per-scheme summary.
fn scheme_key(m: &LinearMapping) -> &'static str {
    if m.packing.is_packed() {
        m.packing.scheme.name()
    } else {
        "unpacked"
    }
}

/// The candidates of one layer: the mapspace, without `client` bit slots where the layer's
/// input is a secret share rather than the client's own data.
pub fn layer_candidates(g: &ConvGeom, ctx: &HeContext, opts: &SpaceOptions) -> Vec<LinearMapping> {
    let mut cands = candidates(g, opts);
    if !ctx.client_input {
        cands.retain(|m| !(m.packing.is_packed() && m.packing.scheme == SlotScheme::Client));
    }
    cands
}

/// Exhaustive search of one layer's candidates. `latency` prices a candidate's latency.
/// Deterministic: ties are broken by candidate index.
pub fn search_layer(
    g: &ConvGeom,
    ctx: &HeContext,
    cm: &CostModel,
    opts: &SpaceOptions,
    objective: Objective,
    latency: &(dyn Fn(&LinearMapping, &LinearCost) -> f64 + Sync),
) -> LayerSearch {
    let cands = layer_candidates(g, ctx, opts);
    let mut infeasible = BTreeMap::new();
    let mut examples = BTreeMap::new();
    let mut feasible: Vec<(usize, LinearMapping, LinearCost, f64)> = Vec::new();
    // Per scheme: evaluated, feasible, infeasible counts with one example each.
    type PerScheme = (u64, u64, BTreeMap<&'static str, (u64, String)>);
    let mut per: BTreeMap<&'static str, PerScheme> = BTreeMap::new();
    for (i, m) in cands.iter().enumerate() {
        let e = per.entry(scheme_key(m)).or_default();
        e.0 += 1;
        match evaluate_coeff(g, m, ctx, cm) {
            Ok(c) => {
                e.1 += 1;
                let lat = latency(m, &c);
                feasible.push((i, *m, c, lat));
            }
            Err(err) => {
                let k = err.constraint();
                *infeasible.entry(k).or_insert(0) += 1;
                // Only the first example of each constraint is kept (per scheme, and over
                // all of them: the first over all is the first of its scheme too).
                let x =
                    e.2.entry(k)
                        .or_insert_with(|| (0, format!("{}: {}", describe(m), err)));
                x.0 += 1;
                examples.entry(k).or_insert_with(|| x.1.clone());
            }
        }
    }
    let comm = |c: &LinearCost| c.total_bytes();
    let best = match objective {
        Objective::Comm => feasible
            .iter()
            .min_by(|a, b| (comm(&a.2), a.0).cmp(&(comm(&b.2), b.0))),
        Objective::Latency => feasible
            .iter()
            .min_by(|a, b| a.3.total_cmp(&b.3).then(a.0.cmp(&b.0))),
        Objective::CommThenLatency { tolerance } => {
            let min = feasible.iter().map(|f| comm(&f.2)).min().unwrap_or(0);
            let limit = (min as f64 * (1.0 + tolerance)).floor() as u64;
            feasible
                .iter()
                .filter(|f| comm(&f.2) <= limit)
                .min_by(|a, b| a.3.total_cmp(&b.3).then(a.0.cmp(&b.0)))
        }
    };
    let schemes = per
        .into_iter()
        .map(|(name, (evaluated, nfeas, inf))| {
            let mine = feasible.iter().filter(|f| scheme_key(&f.1) == name);
            let top = match objective {
                Objective::Latency => mine.min_by(|a, b| a.3.total_cmp(&b.3).then(a.0.cmp(&b.0))),
                _ => mine.min_by(|a, b| (comm(&a.2), a.0).cmp(&(comm(&b.2), b.0))),
            };
            let top_inf = if nfeas == 0 {
                inf.iter()
                    .max_by(|a, b| a.1.0.cmp(&b.1.0).then(b.0.cmp(a.0)))
            } else {
                None
            };
            let binding =
                top_inf.map(|(k, (count, ex))| format!("{k} ({count} of {evaluated}; e.g. {ex})"));
            let reason = top_inf.map(|(_, (count, ex))| {
                let err = ex.split_once(": ").map_or(ex.as_str(), |(_, e)| e);
                format!("{err} ({count} of {evaluated})")
            });
            SchemeOutcome {
                scheme: name.to_string(),
                evaluated,
                feasible: nfeas,
                best_bytes: top.map(|f| comm(&f.2)),
                best: top.map(|f| describe(&f.1)),
                binding,
                reason,
            }
        })
        .collect();
    LayerSearch {
        best: best.map(|f| (f.1, f.2)),
        evaluated: cands.len() as u64,
        infeasible,
        examples,
        schemes,
    }
}

/// A one-line description of a mapping.
pub fn describe(m: &LinearMapping) -> String {
    format!("N={} tile {} pack {}", m.n, m.tiling, m.packing)
}

/// Why nothing was feasible, as one sentence.
pub fn explain_infeasible(s: &LayerSearch) -> String {
    let parts: Vec<String> = s
        .infeasible
        .iter()
        .map(|(k, v)| {
            format!(
                "{v} by {k} (e.g. {})",
                s.examples.get(k).map_or("", |x| x.as_str())
            )
        })
        .collect();
    format!(
        "all {} candidates are infeasible: {}",
        s.evaluated,
        parts.join("; ")
    )
}

impl From<&Infeasible> for String {
    fn from(e: &Infeasible) -> String {
        e.to_string()
    }
}

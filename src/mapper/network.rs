//! Searching a whole network: every linear layer's mapspace exhaustively, the layers in
//! parallel (rayon). Each layer's search is sequential with ties broken by candidate
//! index, so the answer does not depend on the number of threads.

use super::{LayerSearch, explain_infeasible, search_layer};
use crate::mapping::LayerChoice;
use crate::model::report::Report;
use crate::model::{self, EvalOptions, ModelError, mapping_latency};
use crate::protocol::CostModel;
use crate::workload::Network;
use rayon::prelude::*;
use serde::Serialize;
use std::time::Instant;

/// One layer of a network search.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerResult {
    pub layer: String,
    /// Index of the layer in the network.
    pub index: usize,
    pub search: LayerSearch,
    /// Wall-clock seconds the layer's search took (not part of the answer).
    pub seconds: f64,
}

/// The result of searching a network: the per-layer searches and the report of the
/// network under the chosen mappings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkSearch {
    pub objective: &'static str,
    pub layers: Vec<LayerResult>,
    /// Candidates evaluated over all layers.
    pub candidates: u64,
    /// Wall-clock seconds of the whole search.
    pub seconds: f64,
    pub report: Report,
}

/// Searches every linear layer of `net` under `opts` (its protocol must be one that
/// searches: `hequant-packed` or `hequant`), calling `progress` once per finished layer.
pub fn search_network(
    net: &Network,
    opts: &EvalOptions,
    cm: &CostModel,
    progress: &(dyn Fn() + Sync),
) -> Result<NetworkSearch, ModelError> {
    let start = Instant::now();
    let problems = model::search_problems(net, opts, cm)?;
    if problems.is_empty() {
        return Err(ModelError::Options(format!(
            "protocol {} has a fixed mapping per layer: nothing to search (use hequant-packed or hequant)",
            opts.protocol
        )));
    }
    let space = model::space_for(opts, cm);
    let (link, profile) = (opts.link, &cm.compute);
    let lat = |m: &_, c: &_| mapping_latency(&link, profile, m, c);
    let layers: Vec<LayerResult> = problems
        .par_iter()
        .map(|p| {
            let t = Instant::now();
            let search = search_layer(&p.geom, &p.ctx, cm, &space, opts.objective, &lat);
            progress();
            LayerResult {
                layer: p.layer.clone(),
                index: p.index,
                search,
                seconds: t.elapsed().as_secs_f64(),
            }
        })
        .collect();
    let mut o = opts.clone();
    for l in &layers {
        let Some((m, _)) = l.search.best else {
            return Err(ModelError::Layer {
                layer: l.layer.clone(),
                message: explain_infeasible(&l.search),
            });
        };
        o.overrides.insert(
            l.layer.clone(),
            LayerChoice {
                layer: l.layer.clone(),
                bits: None,
                linear: Some(m),
            },
        );
    }
    let mut report = model::evaluate(net, &o, cm)?;
    // The report of a pinned mapping carries no search: give it the one that ran.
    for l in &layers {
        if let Some(r) = report.layers.get_mut(l.index) {
            r.schemes = l.search.schemes.clone();
        }
    }
    Ok(NetworkSearch {
        objective: opts.objective.name(),
        candidates: layers.iter().map(|l| l.search.evaluated).sum(),
        layers,
        seconds: start.elapsed().as_secs_f64(),
        report,
    })
}

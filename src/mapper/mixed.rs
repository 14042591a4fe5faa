//! Mixed precision: per-layer weight and activation bit widths that minimise a
//! precision-loss proxy under a communication or latency budget (or the cost under a
//! proxy budget), with the whole Pareto front of (cost, proxy).
//!
//! # The cost tables (the one approximation)
//!
//! A layer's cost depends on its own widths and, through the ring that the non-linear
//! layers before it must deliver, on its neighbours'. The search uses per-layer tables
//! measured on the full model around a reference assignment `A` (one width pair per
//! weighted layer): layer l's entry for (w, a) is its share of the reference cost plus the
//! change of the network's total when only l is set to (w, a):
//!
//! `c_l(w, a) = share_l(A) + T(A with l <- (w, a)) - T(A)`
//!
//! where `share_l` is the cost of l and of the layers between the previous weighted layer
//! and l (the non-linear layers that feed it), and everything after the last weighted
//! layer is a fixed part. The predicted total of an assignment is `fixed + sum_l c_l(b_l)`:
//! exact at `A`, approximate away from it. So the search runs in rounds (at most
//! [`MAX_ROUNDS`]): tables around `A` (first the widest widths), the point the budget
//! selects on their front, that point evaluated exactly with [`crate::model::evaluate`];
//! if its exact cost breaks a cost budget, the front is bisected between its cheapest point
//! and the selected one for a point whose exact cost meets the budget. The next round
//! measures the tables around the point found; the search stops when a round returns its
//! own reference or no better point, and keeps the best exactly-feasible point. If the
//! first tables find nothing under the budget, they are measured around the narrowest
//! widths. Every reported point shows both the table cost and the exact cost.
//!
//! # The proxy
//!
//! `loss_l(w, a) = s_w,l * 2^(-2w) + s_a,l * 2^(-2a)`: uniform quantization noise has a
//! variance proportional to `2^(-2b)`, and an output sums `fan_in` noisy products, so by
//! default `s_w,l = s_a,l = fan_in_l`. A sensitivity file replaces both per layer
//! (see [`crate::spec::sensitivity`]).
//!
//! # Exactness
//!
//! For the tables and the proxy above the front is exact: a dynamic program over the
//! layers keeps, after each layer, every (cost, proxy) pair no other pair dominates;
//! dominated partial assignments can never complete to a better one, so the last stage
//! is the exact Pareto front of all `|set|^(2L)` assignments.

use super::sweep::{BitRange, uniform_bits};
use crate::mapping::LayerChoice;
use crate::model::report::{LayerReport, Report, Totals};
use crate::model::{BitsPolicy, EvalOptions, Evaluation, ModelError, SearchMemo};
use crate::protocol::CostModel;
use crate::spec::sensitivity::Sensitivity;
use crate::units::{Bits, human_bytes, human_seconds};
use crate::workload::{BitWidths, CostClass, Network};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;

/// What the budget and the cost tables measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Bytes in both directions.
    Comm,
    /// Seconds on the link of the options.
    Latency,
}

impl Metric {
    pub fn of_report(self, r: &Report) -> f64 {
        self.of_totals(&r.total)
    }
    pub fn of_totals(self, t: &Totals) -> f64 {
        match self {
            Metric::Comm => t.bytes() as f64,
            Metric::Latency => t.latency_s,
        }
    }
    fn of_layer(self, l: &LayerReport) -> f64 {
        match self {
            Metric::Comm => l.bytes() as f64,
            Metric::Latency => l.latency_s,
        }
    }
    pub fn show(self, v: f64) -> String {
        match self {
            Metric::Comm => human_bytes(v.max(0.0).round() as u64),
            Metric::Latency => human_seconds(v),
        }
    }
}

/// The constraint of the search.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// Minimise the proxy with the cost (bytes or seconds) at most this.
    Cost(f64),
    /// Minimise the cost with the proxy at most this.
    Proxy(f64),
}

/// Why a mixed-precision search has no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MixedError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(
        "the budget of {} cannot be met: with {reference} the network costs {} (exact), and the per-layer tables around that point predict no assignment below {}; layer '{layer}' takes the largest part, {} with the non-linear layers that feed it",
        metric.show(*budget), metric.show(*reference_cost), metric.show(*table_cheapest), metric.show(*layer_cost)
    )]
    CostBudget {
        metric: Metric,
        budget: f64,
        reference: String,
        reference_cost: f64,
        table_cheapest: f64,
        layer: String,
        layer_cost: f64,
    },
    #[error(
        "the proxy budget {budget:.3e} cannot be met: the lowest proxy is {lowest:.3e} (every layer at the widest widths); layer '{layer}' alone contributes {layer_proxy:.3e}, the most of any layer"
    )]
    ProxyBudget {
        budget: f64,
        lowest: f64,
        layer: String,
        layer_proxy: f64,
    },
    #[error("layer '{layer}': no width of the set can be evaluated: {reason}")]
    NoWidths { layer: String, reason: String },
    #[error("{0}")]
    Options(String),
}

/// One choice of widths for one layer, with its table cost and proxy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LayerOption {
    pub bits: BitWidths,
    pub cost: f64,
    pub proxy: f64,
}

/// The cost table of one weighted layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerTable {
    pub layer: String,
    /// Index of the layer in the network.
    pub index: usize,
    /// The layer's share of the reference total: its own cost and that of the layers
    /// between the previous weighted layer and it.
    pub share: f64,
    /// Every evaluable width pair of the set.
    pub options: Vec<LayerOption>,
    /// Width pairs the model rejected, with the reason.
    pub rejected: Vec<(BitWidths, String)>,
}

/// The per-layer tables of a network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tables {
    pub metric: Metric,
    /// The reference assignment, one width pair per weighted layer (in layer order).
    pub reference: Vec<BitWidths>,
    /// The network's total at the reference.
    pub reference_total: f64,
    /// Widths of batch norms that are not folded (the widest of the set).
    pub fill: BitWidths,
    /// Cost no weighted layer's widths change in the attribution (after the last one).
    pub fixed: f64,
    pub layers: Vec<LayerTable>,
}

fn proxy(fan_in: u64, s: Option<&Sensitivity>, b: BitWidths) -> f64 {
    let (sw, sa) = s.map_or((fan_in as f64, fan_in as f64), |s| (s.weight, s.activation));
    sw * (-2.0 * b.w.get() as f64).exp2() + sa * (-2.0 * b.a.get() as f64).exp2()
}

/// The weighted layers of a network (those that take bit widths), in layer order.
pub fn weighted_layers(net: &Network) -> Vec<usize> {
    (0..net.layers.len())
        .filter(|&i| net.layers[i].kind.has_weights())
        .collect()
}

/// Options that give each weighted layer its widths from `assign` (in layer order) and the
/// other layers `held` choices; batch norms that are not folded take `fill`.
fn assigned(
    base: &EvalOptions,
    net: &Network,
    weighted: &[usize],
    assign: &[BitWidths],
    fill: BitWidths,
) -> EvalOptions {
    let mut o = base.clone();
    o.bits = BitsPolicy {
        uniform: Some(fill),
        all_layers: true,
    };
    for (&i, &b) in weighted.iter().zip(assign) {
        let name = net.layers[i].name.clone();
        o.overrides.insert(
            name.clone(),
            LayerChoice {
                layer: name,
                bits: Some(b),
                linear: None,
            },
        );
    }
    o
}

/// Measures the cost tables around the reference assignment `reference` (one pair per
/// weighted layer): one evaluation of the network per weighted layer and width pair of
/// the set (in parallel), the other layers at the reference with their reference mappings
/// held fixed (their costs do not depend on the layer that changes).
pub fn tables(
    net: &Network,
    base: &EvalOptions,
    cm: &CostModel,
    set: BitRange,
    metric: Metric,
    sensitivity: Option<&HashMap<String, Sensitivity>>,
    reference: &[BitWidths],
) -> Result<Tables, MixedError> {
    let memo = SearchMemo::new(cm);
    let run = Run {
        memo: &memo,
        progress: &|| {},
    };
    tables_with_progress(net, base, cm, set, metric, sensitivity, reference, &run)
}

/// What the rounds of one search share: the layer searches run so far, and the call after
/// each evaluation.
struct Run<'a> {
    memo: &'a SearchMemo,
    progress: &'a (dyn Fn() + Sync),
}

/// [`tables`], sharing the layer searches of `run` and calling its `progress` after each
/// evaluation.
#[allow(clippy::too_many_arguments)]
fn tables_with_progress(
    net: &Network,
    base: &EvalOptions,
    cm: &CostModel,
    set: BitRange,
    metric: Metric,
    sensitivity: Option<&HashMap<String, Sensitivity>>,
    reference: &[BitWidths],
    run: &Run,
) -> Result<Tables, MixedError> {
    let Run { memo, progress } = *run;
    let weighted = weighted_layers(net);
    if weighted.is_empty() {
        return Err(MixedError::Options(format!(
            "the network '{}' has no weighted layer",
            net.name
        )));
    }
    if reference.len() != weighted.len() {
        return Err(MixedError::Options(format!(
            "the reference assignment has {} widths but the network has {} weighted layers",
            reference.len(),
            weighted.len()
        )));
    }
    let fill = uniform_bits(set.hi).map_err(MixedError::Options)?;
    let ref_opts = assigned(base, net, &weighted, reference, fill);
    let r0 = Evaluation::new(net, &ref_opts, cm, Some(memo))?.report(net, cm);
    let t0 = metric.of_report(&r0);
    // Shares: each layer's reference cost goes to the next weighted layer.
    let mut shares = vec![0.0; weighted.len()];
    let mut k = 0;
    let mut fixed = 0.0;
    for (i, l) in r0.layers.iter().enumerate() {
        if k < weighted.len() {
            shares[k] += metric.of_layer(l);
            if i == weighted[k] {
                k += 1;
            }
        } else {
            fixed += metric.of_layer(l);
        }
    }
    fixed += t0 - r0.layers.iter().map(|l| metric.of_layer(l)).sum::<f64>();
    // Hold every other linear layer's reference mapping fixed.
    let mut held = ref_opts.overrides.clone();
    for l in &r0.layers {
        if l.class == CostClass::Linear && l.mapping.is_some() {
            let bits = held.get(&l.name).and_then(|c| c.bits);
            held.insert(
                l.name.clone(),
                LayerChoice {
                    layer: l.name.clone(),
                    bits,
                    linear: l.mapping,
                },
            );
        }
    }
    // Each change of one layer is priced from the evaluation with every mapping held: only
    // the layers the change reaches are priced again (the same totals as a full evaluation).
    let mut held_opts = ref_opts.clone();
    held_opts.overrides = held;
    let held_eval = Evaluation::new(net, &held_opts, cm, Some(memo));
    let mut jobs: Vec<(usize, u32, u32)> = Vec::new();
    for k in 0..weighted.len() {
        for w in set.iter() {
            for a in set.iter() {
                jobs.push((k, w, a));
            }
        }
    }
    let results: Vec<Result<f64, String>> = jobs
        .par_iter()
        .map(|&(k, w, a)| {
            let l = &net.layers[weighted[k]];
            let b = BitWidths {
                w: Bits::try_new(w as i64).map_err(|e| e.to_string())?,
                a: Bits::try_new(a as i64).map_err(|e| e.to_string())?,
            };
            let choice = LayerChoice {
                layer: l.name.clone(),
                bits: Some(b),
                linear: None,
            };
            let totals = match &held_eval {
                Ok(e) => e.totals_with(net, cm, Some(memo), weighted[k], &choice),
                Err(_) => {
                    let mut o = held_opts.clone();
                    o.overrides.insert(l.name.clone(), choice);
                    Evaluation::new(net, &o, cm, Some(memo)).map(|e| e.totals(cm))
                }
            };
            let r = totals
                .map(|t| metric.of_totals(&t))
                .map_err(|e| e.to_string());
            progress();
            r
        })
        .collect();
    let mut layers: Vec<LayerTable> = weighted
        .iter()
        .zip(&shares)
        .map(|(&i, &share)| LayerTable {
            layer: net.layers[i].name.clone(),
            index: i,
            share,
            options: Vec::new(),
            rejected: Vec::new(),
        })
        .collect();
    for (&(k, w, a), res) in jobs.iter().zip(results) {
        let b = BitWidths {
            w: Bits::try_new(w as i64).map_err(|e| MixedError::Options(e.to_string()))?,
            a: Bits::try_new(a as i64).map_err(|e| MixedError::Options(e.to_string()))?,
        };
        let l = &net.layers[weighted[k]];
        match res {
            Ok(t) => layers[k].options.push(LayerOption {
                bits: b,
                cost: shares[k] + (t - t0),
                proxy: proxy(l.fan_in(), sensitivity.and_then(|s| s.get(&l.name)), b),
            }),
            Err(e) => layers[k].rejected.push((b, e)),
        }
    }
    for t in &layers {
        if t.options.is_empty() {
            return Err(MixedError::NoWidths {
                layer: t.layer.clone(),
                reason: t.rejected.first().map_or(String::new(), |r| r.1.clone()),
            });
        }
    }
    Ok(Tables {
        metric,
        reference: reference.to_vec(),
        reference_total: t0,
        fill,
        fixed,
        layers,
    })
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    cost: f64,
    proxy: f64,
    prev: u32,
    opt: u32,
}

/// The exact Pareto front of (cost, proxy) over all assignments of the tables.
pub struct Front {
    stages: Vec<Vec<Entry>>,
}

/// The options whose extensions of `prev` can be kept ([`extend_by`]), in order: an option `o` is left
/// out when another option `d` has no higher cost and no higher proxy and, for every entry
/// `e`, `e + d` comes before `e + o` in the order (the sums rounded, and rounding is
/// monotone): always when `d` is the earlier option (ties go to the earlier one), and when
/// the two differ in cost or proxy by more than the rounding of any sum can close.
fn undominated(prev: &[Entry], options: &[LayerOption]) -> Vec<usize> {
    let reach = |f: fn(&Entry) -> f64| prev.iter().map(|e| f(e).abs()).fold(0.0, f64::max);
    let (cost_at, proxy_at) = (reach(|e| e.cost), reach(|e| e.proxy));
    // Two sums a + x < a + y (exactly) round to one value only if y - x is within an ulp of
    // the sum; 2^-50 of |a| + |y| is more than that.
    let apart =
        |x: f64, y: f64, at: f64| y - x > (at + y.abs()) * (-50f64).exp2() + f64::MIN_POSITIVE;
    (0..options.len())
        .filter(|&o| {
            let x = &options[o];
            !options.iter().enumerate().any(|(d, y)| {
                d != o
                    && y.cost <= x.cost
                    && y.proxy <= x.proxy
                    && (d < o
                        || apart(y.cost, x.cost, cost_at)
                        || apart(y.proxy, x.proxy, proxy_at))
            })
        })
        .collect()
}

/// The entries that `prev` extended by one of `options` gives and that no other such entry
/// dominates, cost rising and proxy strictly falling: those that, in the order of
/// (cost, proxy, prev, opt), have a lower proxy than every entry before them.
///
/// `prev` is such a list itself (cost and proxy strictly monotone), so for one option the
/// sums run in cost order (rounding is monotone) with the proxy falling or level: the lists
/// of the options are merged by cost, entries of one cost sorted among themselves, and a
/// list's entries whose proxy is no lower than the lowest kept so far are skipped at once
/// (a binary search): they come later in the order and cannot be kept. Only the options of
/// `live` are extended.
fn extend_by(prev: &[Entry], options: &[LayerOption], live: &[usize]) -> Vec<Entry> {
    use std::cmp::{Ordering, Reverse};
    use std::collections::BinaryHeap;
    /// A cost ordered by `total_cmp`, with its option.
    #[derive(PartialEq)]
    struct Head(f64, usize);
    impl Eq for Head {}
    impl PartialOrd for Head {
        fn partial_cmp(&self, o: &Head) -> Option<Ordering> {
            Some(self.cmp(o))
        }
    }
    impl Ord for Head {
        fn cmp(&self, o: &Head) -> Ordering {
            self.0.total_cmp(&o.0).then(self.1.cmp(&o.1))
        }
    }
    let at = |o: usize, p: usize| Entry {
        cost: prev[p].cost + options[o].cost,
        proxy: prev[p].proxy + options[o].proxy,
        prev: p as u32,
        opt: o as u32,
    };
    let mut pos = vec![0usize; options.len()];
    let mut heap: BinaryHeap<Reverse<Head>> = BinaryHeap::with_capacity(live.len());
    if !prev.is_empty() {
        for &o in live {
            heap.push(Reverse(Head(at(o, 0).cost, o)));
        }
    }
    let mut out: Vec<Entry> = Vec::new();
    let mut group: Vec<Entry> = Vec::new();
    let mut touched: Vec<usize> = Vec::new();
    // Skips the entries of option `o` from `pos` on whose proxy is no lower than `low`: a
    // prefix of them, found by an exponential and then a binary search.
    let skip = |pos: &mut usize, o: usize, low: f64| {
        let keeps =
            |e: &Entry| (e.proxy + options[o].proxy).partial_cmp(&low) == Some(Ordering::Less);
        if *pos >= prev.len() || keeps(&prev[*pos]) {
            return;
        }
        let (mut lo, mut step) = (*pos, 1);
        let hi = loop {
            let probe = lo + step;
            if probe >= prev.len() {
                break prev.len();
            }
            if keeps(&prev[probe]) {
                break probe;
            }
            lo = probe;
            step *= 2;
        };
        *pos = lo + 1 + prev[lo + 1..hi].partition_point(|e| !keeps(e));
    };
    while let Some(Reverse(Head(first, o))) = heap.pop() {
        let mut c = first;
        touched.clear();
        touched.push(o);
        while let Some(Reverse(Head(k, o))) = heap.peek() {
            if k.total_cmp(&c) != Ordering::Equal {
                break;
            }
            touched.push(*o);
            heap.pop();
        }
        loop {
            group.clear();
            for &o in &touched {
                while pos[o] < prev.len() && at(o, pos[o]).cost.total_cmp(&c) == Ordering::Equal {
                    group.push(at(o, pos[o]));
                    pos[o] += 1;
                }
            }
            if group.len() > 1 {
                group.sort_by(|a, b| {
                    a.proxy
                        .total_cmp(&b.proxy)
                        .then(a.prev.cmp(&b.prev))
                        .then(a.opt.cmp(&b.opt))
                });
            }
            for e in &group {
                if out.last().is_none_or(|l| e.proxy < l.proxy) {
                    out.push(*e);
                }
            }
            if let Some(low) = out.last().map(|l| l.proxy) {
                for &o in &touched {
                    skip(&mut pos[o], o, low);
                }
            }
            // One option whose next entry still comes before every other head: go on with
            // it without the heap.
            if let [o] = touched[..]
                && pos[o] < prev.len()
            {
                let next = at(o, pos[o]).cost;
                if heap
                    .peek()
                    .is_none_or(|Reverse(h)| next.total_cmp(&h.0) == Ordering::Less)
                {
                    c = next;
                    continue;
                }
            }
            break;
        }
        for &o in &touched {
            if pos[o] < prev.len() {
                heap.push(Reverse(Head(at(o, pos[o]).cost, o)));
            }
        }
    }
    out
}

/// The kept extensions of `prev` by `options` ([`extend_by`]). A long stage is split: each
/// half of the options is extended on its own (in parallel), and the two lists are merged in
/// the same order, keeping the entries with a lower proxy than every one before them. That
/// keeps the same entries: one that its half does not keep has an earlier entry of no
/// higher proxy, and so it is not kept in the whole either.
fn extend(prev: &[Entry], options: &[LayerOption]) -> Vec<Entry> {
    let live = undominated(prev, options);
    if prev.len() < 2048 || live.len() < 4 {
        return extend_by(prev, options, &live);
    }
    let (a, b) = live.split_at(live.len() / 2);
    let (a, b) = rayon::join(
        || extend_by(prev, options, a),
        || extend_by(prev, options, b),
    );
    let order = |x: &Entry, y: &Entry| {
        x.cost
            .total_cmp(&y.cost)
            .then(x.proxy.total_cmp(&y.proxy))
            .then(x.prev.cmp(&y.prev))
            .then(x.opt.cmp(&y.opt))
    };
    let mut out: Vec<Entry> = Vec::with_capacity(a.len().max(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let e = if j == b.len() || (i < a.len() && order(&a[i], &b[j]).is_lt()) {
            i += 1;
            a[i - 1]
        } else {
            j += 1;
            b[j - 1]
        };
        if out.last().is_none_or(|l| e.proxy < l.proxy) {
            out.push(e);
        }
    }
    out
}

impl Front {
    /// The dynamic program over the layers.
    pub fn new(t: &Tables) -> Front {
        let mut stages: Vec<Vec<Entry>> = Vec::with_capacity(t.layers.len());
        let start = vec![Entry {
            cost: t.fixed,
            proxy: 0.0,
            prev: 0,
            opt: 0,
        }];
        for layer in &t.layers {
            let prev = stages.last().unwrap_or(&start);
            stages.push(extend(prev, &layer.options));
        }
        Front { stages }
    }

    /// The front's points as (cost, proxy), cost rising and proxy falling.
    pub fn points(&self) -> Vec<(f64, f64)> {
        self.stages.last().map_or(Vec::new(), |s| {
            s.iter().map(|e| (e.cost, e.proxy)).collect()
        })
    }

    /// The option index of every layer for front point `i`.
    pub fn assignment(&self, i: usize) -> Vec<usize> {
        let mut out = vec![0; self.stages.len()];
        let mut idx = i;
        for (k, stage) in self.stages.iter().enumerate().rev() {
            let e = stage[idx];
            out[k] = e.opt as usize;
            idx = e.prev as usize;
        }
        out
    }
}

/// The front point a budget selects, or why none can.
pub fn select(t: &Tables, points: &[(f64, f64)], budget: Budget) -> Result<usize, MixedError> {
    match budget {
        Budget::Cost(b) => points.iter().rposition(|p| p.0 <= b).ok_or_else(|| {
            let layer = t
                .layers
                .iter()
                .max_by(|a, b| a.share.total_cmp(&b.share))
                .expect("tables have layers");
            let first = t.reference.first().copied();
            let reference = match first {
                Some(w) if t.reference.iter().all(|&x| x == w) => format!("every layer at {w}"),
                _ => "the reference widths".into(),
            };
            MixedError::CostBudget {
                metric: t.metric,
                budget: b,
                reference,
                reference_cost: t.reference_total,
                table_cheapest: points.first().map_or(t.fixed, |p| p.0),
                layer: layer.layer.clone(),
                layer_cost: layer.share,
            }
        }),
        Budget::Proxy(p) => points.iter().position(|q| q.1 <= p).ok_or_else(|| {
            let lowest = points.last().map_or(0.0, |q| q.1);
            let (layer, option) = t
                .layers
                .iter()
                .filter_map(|l| {
                    l.options
                        .iter()
                        .min_by(|a, b| a.proxy.total_cmp(&b.proxy))
                        .map(|o| (l, *o))
                })
                .max_by(|a, b| a.1.proxy.total_cmp(&b.1.proxy))
                .expect("tables have layers with options");
            MixedError::ProxyBudget {
                budget: p,
                lowest,
                layer: layer.layer.clone(),
                layer_proxy: option.proxy,
            }
        }),
    }
}

/// One reported point of the front, evaluated exactly.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MixedPoint {
    /// Predicted from the tables.
    pub table_cost: f64,
    /// From the full model with these widths.
    pub exact_cost: f64,
    pub proxy: f64,
    /// Widths of every weighted layer, in layer order.
    pub bits: Vec<(String, BitWidths)>,
}

/// The result of a mixed-precision search.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mixed {
    pub network: String,
    pub protocol: String,
    pub metric: Metric,
    pub budget: Budget,
    pub set: BitRange,
    /// Rounds of tables measured (each around the previous round's selection).
    pub rounds: usize,
    /// The reference assignment of the tables the chosen point comes from, and the total there.
    pub reference: Vec<(String, BitWidths)>,
    pub reference_cost: f64,
    /// Points on the exact front of the tables.
    pub front_size: usize,
    /// Evenly spread points of the front, the chosen one included, cost rising.
    pub points: Vec<MixedPoint>,
    /// Index into `points`.
    pub chosen: usize,
    /// The full report of the chosen widths.
    pub report: Report,
}

fn options_for(base: &EvalOptions, net: &Network, t: &Tables, assign: &[usize]) -> EvalOptions {
    let bits: Vec<BitWidths> = t
        .layers
        .iter()
        .zip(assign)
        .map(|(l, &k)| l.options[k].bits)
        .collect();
    assigned(base, net, &weighted_layers(net), &bits, t.fill)
}

/// Rounds of tables at most (each around the previous selection).
pub const MAX_ROUNDS: usize = 4;

/// Runs the whole search: tables, front, selection, exact evaluation of `shown` points.
#[allow(clippy::too_many_arguments)]
pub fn mixed(
    net: &Network,
    base: &EvalOptions,
    cm: &CostModel,
    set: BitRange,
    metric: Metric,
    budget: Budget,
    sensitivity: Option<&HashMap<String, Sensitivity>>,
    shown: usize,
) -> Result<Mixed, MixedError> {
    mixed_with_progress(
        net,
        base,
        cm,
        set,
        metric,
        budget,
        sensitivity,
        shown,
        &|| {},
    )
}

/// [`mixed`], calling `progress` after each evaluation of the network.
#[allow(clippy::too_many_arguments)]
pub fn mixed_with_progress(
    net: &Network,
    base: &EvalOptions,
    cm: &CostModel,
    set: BitRange,
    metric: Metric,
    budget: Budget,
    sensitivity: Option<&HashMap<String, Sensitivity>>,
    shown: usize,
    progress: &(dyn Fn() + Sync),
) -> Result<Mixed, MixedError> {
    let weighted = weighted_layers(net);
    let widest = uniform_bits(set.hi).map_err(MixedError::Options)?;
    let narrowest = uniform_bits(set.lo).map_err(MixedError::Options)?;
    let mut reference = vec![widest; weighted.len()];
    let mut tried_narrowest = false;
    let mut rounds = 0;
    let mut last_err = None;
    // The best point found so far: its round's tables and front, its index, exact report.
    let mut best: Option<(Tables, Front, usize, Report, f64)> = None;
    // Layer searches are shared by every round and every exact evaluation.
    let memo = SearchMemo::new(cm);
    let run = Run {
        memo: &memo,
        progress,
    };
    while rounds < MAX_ROUNDS {
        rounds += 1;
        let t = tables_with_progress(net, base, cm, set, metric, sensitivity, &reference, &run)?;
        let front = Front::new(&t);
        let pts = front.points();
        let exact = |i: usize| -> Result<(Report, f64), MixedError> {
            let o = options_for(base, net, &t, &front.assignment(i));
            let r = Evaluation::new(net, &o, cm, Some(&memo))?.report(net, cm);
            let c = metric.of_report(&r);
            Ok((r, c))
        };
        let found = match select(&t, &pts, budget) {
            Ok(i) => {
                let (r, c) = exact(i)?;
                match budget {
                    Budget::Cost(b) if c > b => {
                        // The tables were optimistic here: bisect the front between the
                        // cheapest point (if it meets the budget exactly) and this one.
                        let (r0, c0) = exact(0)?;
                        if c0 > b {
                            None
                        } else {
                            let (mut lo, mut hi) = (0, i);
                            let mut at_lo = (r0, c0);
                            while hi - lo > 1 {
                                let mid = (lo + hi) / 2;
                                let (rm, cm_) = exact(mid)?;
                                if cm_ <= b {
                                    lo = mid;
                                    at_lo = (rm, cm_);
                                } else {
                                    hi = mid;
                                }
                            }
                            Some((lo, at_lo.0, at_lo.1))
                        }
                    }
                    _ => Some((i, r, c)),
                }
            }
            Err(e @ MixedError::CostBudget { .. }) => {
                last_err = Some(e);
                None
            }
            Err(e) => return Err(e),
        };
        let Some((i, r, c)) = found else {
            if best.is_some() || tried_narrowest {
                break;
            }
            // The tables may overstate the cheap end: measure around the narrowest widths.
            tried_narrowest = true;
            reference = vec![narrowest; weighted.len()];
            continue;
        };
        let picked: Vec<BitWidths> = t
            .layers
            .iter()
            .zip(front.assignment(i))
            .map(|(l, k)| l.options[k].bits)
            .collect();
        // Better: a lower proxy under a cost budget, a lower exact cost under a proxy budget.
        let key = |proxy: f64, cost: f64| match budget {
            Budget::Cost(_) => (proxy, cost),
            Budget::Proxy(_) => (cost, proxy),
        };
        let improves = best
            .as_ref()
            .is_none_or(|(_, bf, bi, _, bc)| key(pts[i].1, c) < key(bf.points()[*bi].1, *bc));
        let converged = picked == reference;
        if improves {
            best = Some((t, front, i, r, c));
        }
        if converged || !improves {
            break;
        }
        reference = picked;
    }
    let Some((t, front, chosen, report, cost)) = best else {
        return Err(last_err.unwrap_or_else(|| {
            MixedError::Options("no assignment of the set meets the budget".into())
        }));
    };
    let pts = front.points();
    let exact = |i: usize| -> Result<f64, MixedError> {
        let o = options_for(base, net, &t, &front.assignment(i));
        let r = Evaluation::new(net, &o, cm, Some(&memo))?.report(net, cm);
        Ok(metric.of_report(&r))
    };
    let n = pts.len();
    let mut idx: Vec<usize> = (0..shown.max(2))
        .map(|k| k * (n - 1) / (shown.max(2) - 1))
        .collect();
    idx.push(chosen);
    idx.sort_unstable();
    idx.dedup();
    let mut points = Vec::new();
    let mut chosen_at = 0;
    for &i in &idx {
        let assign = front.assignment(i);
        let exact_cost = if i == chosen { cost } else { exact(i)? };
        if i == chosen {
            chosen_at = points.len();
        }
        points.push(MixedPoint {
            table_cost: pts[i].0,
            exact_cost,
            proxy: pts[i].1,
            bits: t
                .layers
                .iter()
                .zip(&assign)
                .map(|(l, &k)| (l.layer.clone(), l.options[k].bits))
                .collect(),
        });
    }
    Ok(Mixed {
        network: net.name.clone(),
        protocol: base.protocol.name().into(),
        metric,
        budget,
        set,
        rounds,
        reference: t
            .layers
            .iter()
            .zip(&t.reference)
            .map(|(l, &b)| (l.layer.clone(), b))
            .collect(),
        reference_cost: t.reference_total,
        front_size: n,
        points,
        chosen: chosen_at,
        report,
    })
}
